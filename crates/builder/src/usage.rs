//! What the build cache holds, for `docker system df`: step-cache entries (key → image, whose
//! layers the image store counts) and `RUN --mount=type=cache` directories.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::build::Builder;

/// One build-cache record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The step key, or the cache mount's directory name.
    pub id: String,
    /// What it is.
    pub kind: CacheKind,
    /// Last written.
    pub modified: SystemTime,
}

/// The kinds of build-cache records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheKind {
    /// A step's result: the image id it names (its bytes are the image's).
    Step {
        /// `sha256:…` as recorded.
        image: String,
    },
    /// A `RUN --mount=type=cache` directory, kept across builds.
    Mount {
        /// Where it is.
        dir: PathBuf,
    },
}

impl Builder {
    /// Every step-cache entry and cache-mount directory; unreadable entries are skipped.
    pub fn cache_entries(&self) -> Vec<CacheEntry> {
        let mut out = Vec::new();
        for (sub, is_mount) in [("cache", false), ("mounts", true)] {
            let Ok(entries) = std::fs::read_dir(self.root().join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(meta) = entry.metadata() else { continue };
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let kind = if is_mount {
                    if !meta.is_dir() || !name.starts_with("cache-") {
                        continue;
                    }
                    CacheKind::Mount { dir: entry.path() }
                } else {
                    // `.…tmp` files are writes in progress.
                    if !meta.is_file() || name.starts_with('.') {
                        continue;
                    }
                    let image = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    CacheKind::Step {
                        image: image.trim().to_owned(),
                    }
                };
                out.push(CacheEntry {
                    id: name,
                    kind,
                    modified,
                });
            }
        }
        out
    }
}
