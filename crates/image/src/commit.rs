//! New images on top of existing ones: `docker commit` of a container's changes, and the
//! builder's steps. The caller builds the config (it knows the parent's and the step's);
//! the store adds the layer, fills in `rootfs` and the parent link, and registers it.

use std::io::Read;

use berth_reference::{ImageId, Reference};

use crate::config::{ImageConfig, RootFs};
use crate::error::{ImageError, Result};
use crate::layers::BlobMode;
use crate::store::{ImageStore, no_such_id, store_key};

impl ImageStore {
    /// Registers a child of `parent` (or a base image): `diff`, a layer tar such as
    /// [`berth_snapshot::write_diff`] makes, becomes one more layer (`None` for a step that
    /// changes no files). `config.rootfs` is replaced by the parent's diff ids plus the new
    /// one and `config.parent` by the parent's id; everything else (history included) is
    /// the caller's.
    pub fn commit(
        &self,
        parent: Option<&ImageId>,
        diff: Option<&mut dyn Read>,
        mut config: ImageConfig,
        tags: &[Reference],
    ) -> Result<ImageId> {
        let tags: Vec<Reference> = tags
            .iter()
            .map(|t| match t.digest() {
                Some(_) => Err(ImageError::InvalidTag {
                    reason: "refusing to create a tag with a digest reference".to_owned(),
                }),
                None => Ok(store_key(t.clone())),
            })
            .collect::<Result<_>>()?;
        let (mut diff_ids, chain) = match parent {
            Some(p) => {
                let st = self.lock();
                let img = st.images.get(p).ok_or_else(|| no_such_id(p))?;
                (img.config.rootfs.diff_ids.clone(), img.chain.clone())
            }
            None => (Vec::new(), Vec::new()),
        };
        let mut created = None;
        if let Some(diff) = diff {
            // Kept uncompressed, as Docker's own layer store keeps them: a build step's
            // layer is read back far more often than it is pushed, and gzip of a large
            // layer costs seconds (compression belongs to push).
            let mode = BlobMode::AsIs {
                digest: None,
                size: None,
            };
            let added = self.add_layer(diff_ids.len(), chain.last(), None, diff, mode)?;
            diff_ids.push(added.record.diff_id.clone());
            created = added.created.then_some(added.record.chain_id);
        }
        config.rootfs = RootFs {
            kind: "layers".to_owned(),
            diff_ids,
        };
        config.parent = parent.map(ToString::to_string).unwrap_or_default();
        let bytes = serde_json::to_vec(&config).map_err(|e| ImageError::archive(e.to_string()))?;
        let result = self.register_image(&bytes, parent.cloned(), &tags);
        if let (Err(_), Some(layer)) = (&result, created) {
            self.rollback_layers(&[layer]);
        }
        result
    }
}
