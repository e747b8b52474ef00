//! Small file helpers: atomic record writes, apparent directory sizes, a tee reader.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{ImageError, Result};

/// Writes `data` to `path` so that readers see the old file or the new one, never a part:
/// tmp → fsync → rename → fsync(dir).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", random_hex(8)));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp); // the write error is the one worth reporting
        return Err(ImageError::io("write", &tmp)(e));
    }
    fs::rename(&tmp, path).map_err(ImageError::io("rename", path))?;
    sync_dir(dir)
}

/// Removes `path` (if present) and makes the removal durable.
pub(crate) fn remove_durable(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io("remove", path)(e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::io("fsync", dir))
}

/// `n` random bytes as hex, for temporary names.
pub(crate) fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // A failing kernel RNG is not recoverable; fall back to the pid, which is still unique
    // enough for a temporary name guarded by O_EXCL or a fresh directory.
    if getrandom::fill(&mut buf).is_err() {
        return format!("{:x}", std::process::id());
    }
    hex::encode(buf)
}

/// The bytes of the files and symlinks under `dir`, each inode once, directories not
/// counted: how Docker's overlay2 driver measures a layer's `DiffSize`.
pub(crate) fn apparent_size(dir: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?; // does not follow symlinks
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.len() > 0 && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Copies everything read from `inner` into `sink`, so one pass over a layer both unpacks
/// it and stores its blob.
pub(crate) struct TeeReader<R, W> {
    pub(crate) inner: R,
    pub(crate) sink: W,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}
