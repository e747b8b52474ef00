//! Registering an image whose blobs are already in the content store: what a registry
//! client does after fetching (and verifying) a manifest's config and layers.

use berth_reference::{Digest, ImageId, Reference};

use crate::config::{ImageConfig, chain_ids};
use crate::error::{ImageError, Result};
use crate::layers::BlobMode;
use crate::store::{ImageStore, MAX_JSON_SIZE, store_key, to_content};

impl ImageStore {
    /// Registers the image whose config blob is `config` and whose layer blobs (compressed
    /// or not, bottom first) are `layers`, all already in [`ImageStore::content`]. Each
    /// layer is unpacked unless already present and must match the config's diff id; then
    /// `tags` point at the image. On error nothing new stays registered.
    pub fn register(
        &self,
        config: &Digest,
        layers: &[Digest],
        tags: &[Reference],
    ) -> Result<ImageId> {
        let bytes = self.content.read_all(&to_content(config)?, MAX_JSON_SIZE)?;
        let diff_ids = ImageConfig::parse(&bytes)
            .map_err(|e| ImageError::archive(format!("invalid image config: {e}")))?
            .rootfs
            .diff_ids;
        if diff_ids.len() != layers.len() {
            return Err(ImageError::archive(format!(
                "config {config} lists {} layers, the manifest {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        let tags: Vec<Reference> = tags.iter().cloned().map(store_key).collect();
        let chain = chain_ids(&diff_ids);
        let mut created = Vec::new();
        for (i, blob) in layers.iter().enumerate() {
            let parent = i.checked_sub(1).map(|j| &chain[j]);
            let result = self
                .content
                .get(&to_content(blob)?)
                .map_err(ImageError::from)
                .and_then(|mut f| {
                    let mode = BlobMode::AsIs {
                        digest: Some(blob.clone()),
                        size: None,
                    };
                    self.add_layer(i, parent, Some(&diff_ids[i]), &mut f, mode)
                });
            match result {
                Ok(added) if added.created => created.push(added.record.chain_id),
                Ok(_) => {}
                Err(e) => {
                    self.rollback_layers(&created);
                    return Err(e);
                }
            }
        }
        self.register_image(&bytes, None, &tags)
            .inspect_err(|_| self.rollback_layers(&created))
    }
}
