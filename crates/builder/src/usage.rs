//! What the build cache holds, for `GET /system/df` (`BuildCache`): the step cache (each
//! entry names an image, whose size the images count), the context file cache, and
//! `RUN --mount=type=cache` directories.

use std::path::Path;
use std::time::SystemTime;

/// One build-cache record, in the terms of Docker's `BuildCache` objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    /// A stable id (the step key, the cached file's key, the mount's directory name).
    pub id: String,
    /// `regular` (a step), `source.local` (a context file), `exec.cachemount`.
    pub kind: &'static str,
    /// Bytes it holds itself (0 for a step: its image's layers are the images').
    pub size: u64,
    /// When a build last used it.
    pub last_used: Option<SystemTime>,
    /// Whether a running build uses it now.
    pub in_use: bool,
    /// Whether its data is also something else's (a step's image).
    pub shared: bool,
}

pub(crate) fn list(root: &Path) -> Vec<CacheRecord> {
    let mut out = Vec::new();
    steps(&root.join("cache"), &mut out);
    files(&root.join("files"), &mut out);
    mounts(&root.join("mounts"), &mut out);
    out
}

fn entries(dir: &Path) -> impl Iterator<Item = (String, std::fs::Metadata, std::path::PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            (!name.starts_with('.')).then(|| (name, meta, e.path()))
        })
}

fn steps(dir: &Path, out: &mut Vec<CacheRecord>) {
    for (name, meta, _) in entries(dir) {
        out.push(CacheRecord {
            id: name,
            kind: "regular",
            size: 0,
            last_used: meta.modified().ok(),
            in_use: false,
            shared: true,
        });
    }
}

fn files(dir: &Path, out: &mut Vec<CacheRecord>) {
    use std::os::unix::fs::MetadataExt;
    for (name, meta, _) in entries(dir) {
        let used = SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(meta.ctime()).unwrap_or(0));
        out.push(CacheRecord {
            id: name,
            kind: "source.local",
            size: meta.len(),
            last_used: Some(used),
            // Linked from a context being built.
            in_use: meta.nlink() > 1,
            shared: false,
        });
    }
}

fn mounts(dir: &Path, out: &mut Vec<CacheRecord>) {
    for (name, meta, path) in entries(dir) {
        let mut budget = 1_000_000usize;
        out.push(CacheRecord {
            id: name,
            kind: "exec.cachemount",
            size: du(&path, &mut budget),
            last_used: meta.modified().ok(),
            in_use: false,
            shared: false,
        });
    }
}

/// Bytes under `path` (not following links), counting at most `budget` entries.
fn du(path: &Path, budget: &mut usize) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        total += du(&entry.path(), budget);
    }
    total
}
