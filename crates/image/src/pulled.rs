//! Registering an image whose blobs are already in the content store: what a registry
//! client does after fetching (and verifying) a manifest's config and layers.

use std::io;

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

/// What a push sends for an image: its config blob and its layer blobs, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// The image id.
    pub id: ImageId,
    /// The config blob's size (its digest is the id).
    pub config_size: u64,
    /// The layers, bottom first.
    pub layers: Vec<DistributionLayer>,
}

/// One layer of a [`Distribution`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionLayer {
    /// The stored blob.
    pub blob: Digest,
    /// Its size.
    pub size: u64,
    /// `gzip`, `zstd` or `none`.
    pub compression: String,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
}

impl ImageStore {
    /// The blobs of the image `name_or_id` names, as a registry push needs them.
    pub fn distribution(&self, name_or_id: &str) -> Result<Distribution> {
        let (id, records) = {
            let st = self.lock();
            let id = crate::store::resolve_in(&st, name_or_id)?;
            let image = st
                .images
                .get(&id)
                .ok_or_else(|| crate::store::no_such_id(&id))?;
            let records: Vec<_> = image
                .chain
                .iter()
                .map(|c| {
                    st.layers
                        .get(c)
                        .cloned()
                        .ok_or_else(|| ImageError::Corrupt {
                            path: self.layer_record_path(c),
                            reason: format!("layer {c} of image {id} is not registered"),
                        })
                })
                .collect::<Result<_>>()?;
            (id, records)
        };
        let config_size = self.content.info(&to_content(id.digest())?)?.size;
        let layers = records
            .into_iter()
            .map(|r| {
                let size = self.content.info(&to_content(&r.blob)?)?.size;
                Ok(DistributionLayer {
                    blob: r.blob,
                    size,
                    compression: r.compression,
                    diff_id: r.diff_id,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Distribution {
            id,
            config_size,
            layers,
        })
    }
}

impl ImageStore {
    /// A gzip copy of the stored uncompressed layer blob `blob`, for a registry push
    /// (Docker compresses such layers too). The copy goes into the content store; the
    /// compression is deterministic, so pushing again finds the same digest.
    pub fn gzip_blob(&self, blob: &Digest) -> Result<(Digest, u64)> {
        let mut input = self.content.get(&to_content(blob)?)?;
        let root = self.content.root().to_owned();
        let writer = self.content.writer(None, None)?;
        let mut gz = flate2::write::GzEncoder::new(
            io::BufWriter::with_capacity(1 << 20, writer),
            flate2::Compression::default(),
        );
        io::copy(&mut input, &mut gz).map_err(ImageError::io("compress blob", &root))?;
        let writer = gz
            .finish()
            .and_then(|b| b.into_inner().map_err(io::IntoInnerError::into_error))
            .map_err(ImageError::io("compress blob", &root))?;
        let size = writer.offset();
        let digest = crate::store::from_content(&writer.commit()?)?;
        Ok((digest, size))
    }
}
