//! Repository references (tags and digests) → image ids, persisted as one
//! `repositories.json` in moby's reference-store shape:
//! `{"Repositories":{"docker.io/library/busybox":{"docker.io/library/busybox:latest":"sha256:…"}}}`.
//!
//! The file is rewritten atomically on every change, and only after the image records it
//! points to are durable, so a crash never leaves a tag naming a missing image.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_reference::{ImageId, Reference};
use serde::{Deserialize, Serialize};

use crate::error::{ImageError, Result};
use crate::fsutil::write_atomic;

#[derive(Serialize, Deserialize, Default)]
struct File {
    #[serde(rename = "Repositories", default)]
    repositories: BTreeMap<String, BTreeMap<String, ImageId>>,
}

/// The in-memory reference store.
#[derive(Debug, Clone)]
pub(crate) struct Tags {
    path: PathBuf,
    refs: BTreeMap<Reference, ImageId>,
}

impl Tags {
    /// Loads `path` (empty if it does not exist). Entries that no longer parse are dropped.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let file: File = match fs::read(path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| ImageError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(ImageError::io("read", path)(e)),
        };
        let refs = file
            .repositories
            .into_values()
            .flatten()
            .filter_map(|(r, id)| Reference::parse_normalized(&r).ok().map(|r| (r, id)))
            .collect();
        Ok(Tags {
            path: path.to_owned(),
            refs,
        })
    }

    /// Applies `change` to a copy, writes the copy atomically, and only then makes it the
    /// live state: memory never shows a tag the disk does not have.
    pub(crate) fn update<R>(&mut self, change: impl FnOnce(&mut Tags) -> R) -> Result<R> {
        let mut next = self.clone();
        let out = change(&mut next);
        next.save()?;
        *self = next;
        Ok(out)
    }

    /// Writes the whole store atomically.
    fn save(&self) -> Result<()> {
        let mut file = File::default();
        for (r, id) in &self.refs {
            file.repositories
                .entry(r.name())
                .or_default()
                .insert(r.to_string(), id.clone());
        }
        let data = serde_json::to_vec(&file).map_err(|e| ImageError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.path, &data)
    }

    pub(crate) fn get(&self, r: &Reference) -> Option<&ImageId> {
        self.refs.get(r)
    }

    /// Points `r` at `id`; returns the image it pointed to before, if another.
    pub(crate) fn insert(&mut self, r: Reference, id: ImageId) -> Option<ImageId> {
        self.refs.insert(r, id.clone()).filter(|old| *old != id)
    }

    pub(crate) fn remove(&mut self, r: &Reference) -> Option<ImageId> {
        self.refs.remove(r)
    }

    /// Every reference to `id`, sorted.
    pub(crate) fn refs_of(&self, id: &ImageId) -> Vec<Reference> {
        self.refs
            .iter()
            .filter(|(_, i)| *i == id)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Every reference in the repository `name` (`docker.io/library/busybox`).
    pub(crate) fn by_name(&self, name: &str) -> Vec<(Reference, ImageId)> {
        self.refs
            .iter()
            .filter(|(r, _)| r.name() == name)
            .map(|(r, i)| (r.clone(), i.clone()))
            .collect()
    }

    /// Drops every reference whose image `keep` rejects; returns how many went.
    pub(crate) fn retain(&mut self, keep: impl Fn(&ImageId) -> bool) -> usize {
        let before = self.refs.len();
        self.refs.retain(|_, id| keep(id));
        before - self.refs.len()
    }
}
