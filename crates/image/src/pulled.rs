//! Registering an image whose blobs are already in the content store: what a registry
//! client does after fetching (and verifying) a manifest's config and layers.

use std::collections::HashMap;
use std::io::{self, Read};

use berth_reference::{Digest, ImageId, Reference};
use berth_snapshot::apply_layer;

use crate::config::{ImageConfig, chain_ids};
use crate::error::{ImageError, Result};
use crate::fsutil::{apparent_size, random_hex};
use crate::layers::{Added, chain_of};
use crate::store::{ImageStore, LayerRecord, MAX_JSON_SIZE, from_content, store_key, to_content};

/// A layer unpacked into its own snapshot ahead of registration, typically while its blob
/// was still downloading. It becomes part of an image only through
/// [`ImageStore::register_unpacked`], after its blob verified and its diff id matched;
/// otherwise hand it to [`ImageStore::discard`] (start-up repair removes what a crash left).
#[derive(Debug)]
pub struct Unpacked {
    key: String,
    diff_id: Digest,
    compression: String,
    tar_size: u64,
}

impl Unpacked {
    /// The digest of the uncompressed tar that was unpacked.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }
}

impl ImageStore {
    /// Unpacks the layer tar `input` (plain, gzip or zstd) into a new parentless snapshot,
    /// within the store's unpack limits. The parent is set when the layer is committed.
    pub fn unpack_detached(&self, input: &mut dyn Read) -> Result<Unpacked> {
        let key = format!("extract-{}", random_hex(12));
        self.snapshots.prepare(&key, None)?;
        let unpacked = self
            .snapshots
            .fs_dir(&key)
            .map_err(ImageError::from)
            .and_then(|dir| Ok(apply_layer(input, &dir, &self.apply_options())?));
        match unpacked {
            Ok(stats) => Ok(Unpacked {
                key,
                diff_id: from_content(&stats.diff_id)?,
                compression: format!("{:?}", stats.compression).to_lowercase(),
                tar_size: stats.size,
            }),
            Err(e) => {
                let _ = self.snapshots.remove(&key); // the unpack error is the one to report
                Err(e)
            }
        }
    }

    /// Throws away a layer unpacked ahead that will not be registered.
    pub fn discard(&self, unpacked: Unpacked) {
        // Best effort: repair removes `extract-` snapshots left behind.
        let _ = self.snapshots.remove(&unpacked.key);
    }

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
        self.register_unpacked(config, layers, tags, &mut HashMap::new())
    }

    /// [`ImageStore::register`], taking the layers `unpacked` ahead (by blob digest) from
    /// the map instead of unpacking their blobs again. Entries it does not use are left in
    /// the map for the caller to [`ImageStore::discard`].
    pub fn register_unpacked(
        &self,
        config: &Digest,
        layers: &[Digest],
        tags: &[Reference],
        unpacked: &mut HashMap<Digest, Unpacked>,
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
            let result = if self.lock().layers.contains_key(&chain[i]) {
                self.add_stored_layer(i, parent, &diff_ids[i], blob)
            } else if let Some(ahead) = unpacked.remove(blob) {
                self.commit_unpacked(i, parent, &diff_ids[i], blob, ahead)
            } else {
                self.add_stored_layer(i, parent, &diff_ids[i], blob)
            };
            match result {
                Ok(added) if added.created => created.push(added.record.chain_id),
                Ok(_) => {}
                Err(e) => {
                    self.rollback_layers(&created);
                    self.forget_blobs(config, layers);
                    return Err(e);
                }
            }
        }
        self.register_image(&bytes, None, &tags)
            .inspect_err(|_| self.rollback_layers(&created))
    }

    /// After a refused image (a bomb, a diff id mismatch): deletes its blobs that no
    /// image or layer refers to, so nothing of it stays stored.
    fn forget_blobs(&self, config: &Digest, layers: &[Digest]) {
        let st = self.lock();
        if !st.images.keys().any(|id| id.digest() == config) {
            self.delete_blob(config);
        }
        for blob in layers {
            if !st.layers.values().any(|l| l.blob == *blob) {
                self.delete_blob(blob);
            }
        }
    }

    /// Commits a layer unpacked ahead once its diff id is the one the config promises.
    fn commit_unpacked(
        &self,
        index: usize,
        parent: Option<&Digest>,
        expected: &Digest,
        blob: &Digest,
        ahead: Unpacked,
    ) -> Result<Added> {
        if ahead.diff_id != *expected {
            let actual = ahead.diff_id.to_string();
            self.discard(ahead);
            return Err(ImageError::LayerMismatch {
                index,
                expected: expected.to_string(),
                actual,
            });
        }
        let result = self.snapshots.fs_dir(&ahead.key).map_err(ImageError::from);
        let result = result.and_then(|dir| {
            let diff_size = apparent_size(&dir).map_err(ImageError::io("measure", &dir))?;
            let record = LayerRecord {
                chain_id: chain_of(parent, expected),
                diff_id: expected.clone(),
                parent: parent.cloned(),
                blob: blob.clone(),
                compression: ahead.compression.clone(),
                tar_size: ahead.tar_size,
                diff_size,
            };
            self.commit_layer(&ahead.key, record)
        });
        if result.is_err() {
            self.discard(ahead);
        }
        result
    }

    /// Registers a layer from its stored (verified) blob: unpacked, not stored again.
    fn add_stored_layer(
        &self,
        index: usize,
        parent: Option<&Digest>,
        expected: &Digest,
        blob: &Digest,
    ) -> Result<Added> {
        let chain_id = chain_of(parent, expected);
        if let Some(record) = self.lock().layers.get(&chain_id) {
            return Ok(Added {
                record: record.clone(),
                created: false,
            });
        }
        let mut file =
            std::io::BufReader::with_capacity(1 << 20, self.content.get(&to_content(blob)?)?);
        let ahead = self.unpack_detached(&mut file)?;
        self.commit_unpacked(index, parent, expected, blob, ahead)
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

/// How a push compresses layers stored uncompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushCompression {
    /// gzip, as dockerd pushes them.
    #[default]
    Gzip,
    /// Zstandard (OCI's `tar+zstd` media type): faster to unpack, smaller.
    Zstd,
}

impl PushCompression {
    /// `gzip` or `zstd`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gzip" => Some(PushCompression::Gzip),
            "zstd" => Some(PushCompression::Zstd),
            _ => None,
        }
    }

    /// The name a layer record keeps (`gzip`, `zstd`).
    pub fn name(self) -> &'static str {
        match self {
            PushCompression::Gzip => "gzip",
            PushCompression::Zstd => "zstd",
        }
    }
}

impl ImageStore {
    /// A gzip copy of the stored uncompressed layer blob `blob`, for a registry push
    /// (Docker compresses such layers too).
    pub fn gzip_blob(&self, blob: &Digest) -> Result<(Digest, u64)> {
        self.compress_blob(blob, PushCompression::Gzip)
    }

    /// A compressed copy of the stored uncompressed layer blob `blob`, for a registry push.
    /// The copy goes into the content store; the compression is deterministic (no
    /// timestamps, fixed level), so pushing again finds the same digest.
    pub fn compress_blob(&self, blob: &Digest, kind: PushCompression) -> Result<(Digest, u64)> {
        let mut input = self.content.get(&to_content(blob)?)?;
        let root = self.content.root().to_owned();
        let writer = self.content.writer(None, None)?;
        let buffered = io::BufWriter::with_capacity(1 << 20, writer);
        let compressed = match kind {
            PushCompression::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(buffered, flate2::Compression::default());
                io::copy(&mut input, &mut gz).and_then(|_| gz.finish())
            }
            PushCompression::Zstd => zstd::stream::write::Encoder::new(buffered, 3)
                .and_then(|mut z| io::copy(&mut input, &mut z).and_then(|_| z.finish())),
        };
        let writer = compressed
            .and_then(|b| b.into_inner().map_err(io::IntoInnerError::into_error))
            .map_err(ImageError::io("compress blob", &root))?;
        let size = writer.offset();
        let digest = crate::store::from_content(&writer.commit()?)?;
        Ok((digest, size))
    }
}
