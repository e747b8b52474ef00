//! Crash-consistent files in the state directory: tmp → fsync → rename → fsync(dir), so a
//! reader (a daemon started after a power loss) sees either the old file or the whole new one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::ShimError;

/// Atomically replaces `path` with `data` (mode 0600), durably.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ShimError> {
    write_replace(path, data, true)
}

/// Atomically replaces `path` with `data` (mode 0600) without fsync: for files that describe
/// a live process (`shim.pid`), which a crash takes with it.
pub fn write_volatile(path: &Path, data: &[u8]) -> Result<(), ShimError> {
    write_replace(path, data, false)
}

fn write_replace(path: &Path, data: &[u8], durable: bool) -> Result<(), ShimError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| ShimError::io("create", &tmp, e))?;
    f.write_all(data)
        .and_then(|()| if durable { f.sync_all() } else { Ok(()) })
        .map_err(|e| ShimError::io("write", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| ShimError::io("rename to", path, e))?;
    if !durable {
        return Ok(());
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ShimError::io("fsync", dir, e))
}

/// Atomically writes `value` as JSON followed by a newline.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ShimError> {
    let mut data = serde_json::to_vec(value).map_err(|e| ShimError::BadRequest(e.to_string()))?;
    data.push(b'\n');
    write_atomic(path, &data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
