//! Start-up repair: after a crash, removes whatever a half-done import, load or removal left,
//! so that only complete images are visible. Run it before anything else uses the store
//! (it assumes no load or import is in flight).
//!
//! Blobs that no image config or layer record names are deleted: the image store owns the
//! content store's garbage collection, so anything else keeping blobs there (a registry
//! client's manifests) must be recorded through the image store first.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use berth_reference::ImageId;
use berth_snapshot::{Kind, SnapshotError};

use crate::error::{ImageError, Result};
use crate::fsutil::remove_durable;
use crate::store::{ImageStore, from_content};

/// What [`ImageStore::repair`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Scratch directories of interrupted loads.
    pub temp_dirs: usize,
    /// Partial blob writes.
    pub ingests: usize,
    /// Snapshots of interrupted unpacks, or committed layers without a record.
    pub snapshots: usize,
    /// Layer records without their files, or used by no image.
    pub layers: usize,
    /// Image records whose config or layers are missing.
    pub images: usize,
    /// Tags naming a missing image.
    pub tags: usize,
    /// Blobs nothing refers to.
    pub blobs: usize,
}

impl ImageStore {
    /// Removes half-done work; see the module docs.
    pub fn repair(&self) -> Result<RepairReport> {
        let mut report = RepairReport {
            temp_dirs: self.clear_tmp()?,
            ingests: self.content.cleanup_ingests(Duration::ZERO)?,
            ..RepairReport::default()
        };
        for info in self.snapshots.list() {
            if info.key.starts_with("extract-") && info.kind == Kind::Active {
                self.snapshots.remove(&info.key)?;
                report.snapshots += 1;
            }
        }
        let mut st = self.lock();
        let missing: Vec<_> = st
            .layers
            .keys()
            .filter(|c| {
                matches!(
                    self.snapshots.stat(c.as_str()),
                    Err(SnapshotError::NotFound(_))
                )
            })
            .cloned()
            .collect();
        for chain_id in missing {
            remove_durable(&self.layer_record_path(&chain_id))?;
            st.layers.remove(&chain_id);
            report.layers += 1;
        }
        let broken: Vec<ImageId> = st
            .images
            .values()
            .filter(|i| i.chain.iter().any(|c| !st.layers.contains_key(c)))
            .map(|i| i.id.clone())
            .collect();
        for id in &broken {
            remove_durable(&self.image_record_path(id))?;
            st.images.remove(id);
        }
        report.images = broken.len() + self.remove_unloaded_records(&st.images)?;
        let state = &mut *st;
        let images = &state.images;
        report.tags = state
            .tags
            .update(|t| t.retain(|id| images.contains_key(id)))?;
        // Stacks are removed top-most first; a parent whose child came later in the list
        // goes on the next pass.
        loop {
            let all: Vec<_> = st.layers.keys().cloned().collect();
            let removed = self.remove_unused_layers(&mut st, &all)?.len();
            report.layers += removed;
            if removed == 0 {
                break;
            }
        }
        report.snapshots += self.remove_unrecorded_layers(&st.layers);
        report.blobs = self.remove_unreferenced_blobs(&st)?;
        Ok(report)
    }

    fn clear_tmp(&self) -> Result<usize> {
        let dir = self.root.join("tmp");
        let mut n = 0;
        for entry in fs::read_dir(&dir).map_err(ImageError::io("list", &dir))? {
            let path = entry.map_err(ImageError::io("list", &dir))?.path();
            // Scratch directories hold only files and directories berth created.
            fs::remove_dir_all(&path).map_err(ImageError::io("remove", &path))?;
            n += 1;
        }
        Ok(n)
    }

    /// Image records on disk that did not load (config blob missing or unreadable).
    fn remove_unloaded_records(
        &self,
        loaded: &std::collections::BTreeMap<ImageId, crate::store::Image>,
    ) -> Result<usize> {
        let dir = self.root.join("imagedb");
        let mut n = 0;
        for entry in fs::read_dir(&dir).map_err(ImageError::io("list", &dir))? {
            let path = entry.map_err(ImageError::io("list", &dir))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let id = name
                .strip_suffix(".json")
                .and_then(|h| ImageId::parse(h).ok());
            if id.is_none_or(|id| !loaded.contains_key(&id)) {
                remove_durable(&path)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Committed layer snapshots (keyed by chain id) that have no record: committed by a
    /// run that crashed before writing it. Removed top-most first.
    fn remove_unrecorded_layers(
        &self,
        layers: &std::collections::BTreeMap<berth_reference::Digest, crate::store::LayerRecord>,
    ) -> usize {
        let mut removed = 0;
        loop {
            let orphans: Vec<String> = self
                .snapshots
                .list()
                .into_iter()
                .filter(|i| i.kind == Kind::Committed && i.key.starts_with("sha256:"))
                .filter(|i| !layers.keys().any(|c| c.as_str() == i.key))
                .map(|i| i.key)
                .collect();
            let before = removed;
            for key in orphans {
                if self.snapshots.remove(&key).is_ok() {
                    removed += 1;
                }
            }
            if removed == before {
                return removed;
            }
        }
    }

    fn remove_unreferenced_blobs(&self, st: &crate::store::State) -> Result<usize> {
        let mut used = BTreeSet::new();
        used.extend(st.images.keys().map(|id| id.digest().clone()));
        used.extend(st.layers.values().map(|l| l.blob.clone()));
        let mut n = 0;
        for blob in self.content.list()? {
            if !used.contains(&from_content(&blob)?) {
                self.content.delete(&blob)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
