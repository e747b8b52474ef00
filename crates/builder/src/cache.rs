//! The build cache: step key → the image that step produced, one small file per key under
//! `<builder>/cache/`. A key is the sha256 of the parent image id, the step's history text,
//! its resulting container config and, for COPY/ADD, the sources' content checksum; an
//! entry whose image is gone is a miss.

use std::path::{Path, PathBuf};

use berth_image::ImageStore;
use berth_reference::ImageId;
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};

pub(crate) struct Cache {
    dir: PathBuf,
}

/// The key of a step.
pub(crate) fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Cache {
    pub(crate) fn open(dir: &Path) -> Result<Cache> {
        std::fs::create_dir_all(dir).map_err(BuildError::io("create", dir))?;
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    /// The image recorded for `key`, if it is still in the store.
    pub(crate) fn get(&self, store: &ImageStore, key: &str) -> Option<ImageId> {
        let text = std::fs::read_to_string(self.dir.join(key)).ok()?;
        let id = ImageId::parse(text.trim()).ok()?;
        store.config(&id).ok().map(|_| id)
    }

    /// Records `id` for `key` (tmp → rename: a crash leaves the old entry or the new one).
    pub(crate) fn put(&self, key: &str, id: &ImageId) -> Result<()> {
        let tmp = self.dir.join(format!(".{key}.tmp"));
        std::fs::write(&tmp, id.as_str()).map_err(BuildError::io("write", &tmp))?;
        let path = self.dir.join(key);
        std::fs::rename(&tmp, &path).map_err(BuildError::io("rename", &path))
    }

    /// Forgets every entry (`POST /build/prune`); returns how many there were.
    pub(crate) fn clear(&self) -> Result<usize> {
        let mut n = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(BuildError::io("read", &self.dir))? {
            let entry = entry.map_err(BuildError::io("read", &self.dir))?;
            if std::fs::remove_file(entry.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}
