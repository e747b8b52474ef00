//! The store itself: image records, layer records and tags, kept in memory under one lock
//! and persisted under `<images>/`:
//!
//! ```text
//! imagedb/<config hex>.json   one per image: parent, last tag time (the config is a blob)
//! layerdb/<chain hex>.json    one per layer: diff id, blob, sizes (the files are a snapshot)
//! repositories.json           tags and digests → image ids
//! tmp/                        scratch space of `load`, emptied by `repair`
//! ```
//!
//! Order of writes, so a crash never exposes half-done work: blobs (verified by the content
//! store) → layers (committed to the snapshotter only after their diff id matched, then
//! their record) → the image record → tags. Removal runs the other way.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_content::ContentStore;
use berth_reference::{AnyReference, Digest, ImageId, Reference, resolve_prefix};
use berth_snapshot::{Mount, SnapshotError, Snapshotter};
use serde::{Deserialize, Serialize};

use crate::config::{ImageConfig, chain_ids, now_rfc3339};
use crate::error::{ImageError, Result};
use crate::fsutil::{remove_durable, write_atomic};
use crate::tags::Tags;

/// Largest image config (or manifest, index) read into memory; containerd's limit for
/// untrusted JSON (CVE-2023-25153).
pub const MAX_JSON_SIZE: u64 = 20 << 20;

/// The local image store: see the module docs for its files.
#[derive(Debug)]
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) content: ContentStore,
    pub(crate) snapshots: Arc<Snapshotter>,
    state: Mutex<State>,
    limits: Mutex<UnpackLimits>,
}

/// Bounds on what one layer may expand to when unpacked (gzip and zstd bombs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most uncompressed bytes of one layer.
    pub max_size: u64,
    /// Most uncompressed bytes per compressed byte (judged past the first 16 MiB), `None`
    /// for no ratio check.
    pub max_ratio: Option<u64>,
}

impl Default for UnpackLimits {
    /// 64 GiB, and 2048:1: gzip cannot exceed about 1032:1, so only zstd (or plain tars,
    /// which have no ratio) reach the ratio, and a real layer of that ratio is all zeros.
    fn default() -> Self {
        UnpackLimits {
            max_size: 64 << 30,
            max_ratio: Some(2048),
        }
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) images: BTreeMap<ImageId, Image>,
    pub(crate) layers: BTreeMap<Digest, LayerRecord>,
    pub(crate) tags: Tags,
}

/// An image as held in memory.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) id: ImageId,
    pub(crate) config: ImageConfig,
    /// Chain ids of its layers, bottom first; the top one is the rootfs' parent snapshot.
    pub(crate) chain: Vec<Digest>,
    pub(crate) record: ImageRecord,
}

/// `imagedb/<hex>.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    #[serde(default)]
    pub(crate) parent: Option<ImageId>,
    #[serde(default)]
    pub(crate) last_tag_time: Option<String>,
}

/// `layerdb/<chain hex>.json`: one committed layer, shared by every image whose stack
/// starts with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    pub(crate) chain_id: Digest,
    pub(crate) diff_id: Digest,
    pub(crate) parent: Option<Digest>,
    /// The stored blob (as received, or gzip for imports).
    pub(crate) blob: Digest,
    /// `none`, `gzip` or `zstd`: how the blob is compressed.
    pub(crate) compression: String,
    /// Length of the uncompressed tar.
    pub(crate) tar_size: u64,
    /// Bytes of its files (Docker's `DiffSize`).
    pub(crate) diff_size: u64,
}

impl ImageStore {
    /// Opens the store of a daemon's data root: records under `<data_root>/images`, blobs
    /// in `<data_root>/content`, layer files in the snapshotter at `<data_root>/snapshotter`.
    pub fn open(data_root: &Path) -> Result<Self> {
        let content = ContentStore::open(data_root.join("content"))?;
        let snapshots = Arc::new(Snapshotter::open(data_root.join("snapshotter"))?);
        Self::with_parts(&data_root.join("images"), content, snapshots)
    }

    /// Opens the store with its records in `dir` over an existing content store and
    /// snapshotter (which the engine shares for container snapshots).
    pub fn with_parts(
        dir: &Path,
        content: ContentStore,
        snapshots: Arc<Snapshotter>,
    ) -> Result<Self> {
        for sub in ["imagedb", "layerdb", "tmp"] {
            let d = dir.join(sub);
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .map_err(ImageError::io("create directory", &d))?;
        }
        let layers = load_layers(&dir.join("layerdb"))?;
        let tags = Tags::load(&dir.join("repositories.json"))?;
        let store = ImageStore {
            root: dir.to_owned(),
            content,
            snapshots,
            state: Mutex::new(State {
                images: BTreeMap::new(),
                layers,
                tags,
            }),
            limits: Mutex::new(UnpackLimits::default()),
        };
        let images = store.load_images()?;
        store.lock().images = images;
        Ok(store)
    }

    /// The snapshotter holding image layers; the engine prepares container snapshots on it.
    pub fn snapshotter(&self) -> &Arc<Snapshotter> {
        &self.snapshots
    }

    /// Sets how far a layer may expand when unpacked (loads, imports and pulls).
    pub fn set_unpack_limits(&self, limits: UnpackLimits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    /// The options every layer is unpacked with.
    pub(crate) fn apply_options(&self) -> berth_snapshot::ApplyOptions {
        let limits = *self.limits.lock().unwrap_or_else(|p| p.into_inner());
        berth_snapshot::ApplyOptions {
            max_size: limits.max_size,
            max_ratio: limits.max_ratio,
            ..berth_snapshot::ApplyOptions::default()
        }
    }

    /// The content store holding configs and layer blobs.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // State is only changed after the files behind it are written, so what a panicking
        // holder left is still consistent with disk.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn image_record_path(&self, id: &ImageId) -> PathBuf {
        self.root.join("imagedb").join(format!("{}.json", id.hex()))
    }

    pub(crate) fn layer_record_path(&self, chain_id: &Digest) -> PathBuf {
        self.root
            .join("layerdb")
            .join(format!("{}.json", chain_id.hex()))
    }

    /// Reads every image record whose config blob is present and parses; the others are
    /// left for [`ImageStore::repair`].
    fn load_images(&self) -> Result<BTreeMap<ImageId, Image>> {
        let dir = self.root.join("imagedb");
        let mut out = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(ImageError::io("list", &dir))? {
            let entry = entry.map_err(ImageError::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|hex| ImageId::parse(hex).ok())
            else {
                continue;
            };
            let Ok(data) = fs::read(entry.path()) else {
                continue;
            };
            let Ok(record) = serde_json::from_slice::<ImageRecord>(&data) else {
                continue;
            };
            if let Ok(image) = self.read_image(&id, record) {
                out.insert(id, image);
            }
        }
        Ok(out)
    }

    fn read_image(&self, id: &ImageId, record: ImageRecord) -> Result<Image> {
        let bytes = self
            .content
            .read_all(&to_content(id.digest())?, MAX_JSON_SIZE)?;
        let config = ImageConfig::parse(&bytes).map_err(|e| ImageError::Corrupt {
            path: self.image_record_path(id),
            reason: e.to_string(),
        })?;
        let chain = chain_ids(&config.rootfs.diff_ids);
        Ok(Image {
            id: id.clone(),
            config,
            chain,
            record,
        })
    }

    /// The id `name_or_id` names, as `docker image inspect` and `docker rmi` look it up: a
    /// full id or digest, a tag (`busybox` = `busybox:latest`), a `name@digest`, or a
    /// unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageId> {
        resolve_in(&self.lock(), name_or_id)
    }

    /// Stores `config` as a blob, then the image record, then points `tags` at it. Every
    /// layer must already be registered.
    pub(crate) fn register_image(
        &self,
        config_bytes: &[u8],
        parent: Option<ImageId>,
        tags: &[Reference],
    ) -> Result<ImageId> {
        let id = ImageId::from_config(config_bytes);
        let config = ImageConfig::parse(config_bytes)
            .map_err(|e| ImageError::archive(format!("invalid image config: {e}")))?;
        self.put_blob(id.digest(), config_bytes)?;
        let chain = chain_ids(&config.rootfs.diff_ids);
        let mut st = self.lock();
        if let Some(missing) = chain.iter().find(|c| !st.layers.contains_key(*c)) {
            return Err(ImageError::archive(format!(
                "layer {missing} is not registered"
            )));
        }
        let mut record = st
            .images
            .get(&id)
            .map(|i| i.record.clone())
            .unwrap_or(ImageRecord {
                parent,
                last_tag_time: None,
            });
        if !tags.is_empty() {
            record.last_tag_time = Some(now_rfc3339());
        }
        self.write_image_record(&id, &record)?;
        st.images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                config,
                chain,
                record,
            },
        );
        if !tags.is_empty() {
            st.tags.update(|t| {
                for tag in tags {
                    t.insert(tag.clone(), id.clone());
                }
            })?;
        }
        Ok(id)
    }

    pub(crate) fn write_image_record(&self, id: &ImageId, record: &ImageRecord) -> Result<()> {
        let data = serde_json::to_vec(record).map_err(|e| ImageError::Corrupt {
            path: self.image_record_path(id),
            reason: e.to_string(),
        })?;
        write_atomic(&self.image_record_path(id), &data)
    }

    /// Writes a small blob through the content store's verified path.
    pub(crate) fn put_blob(&self, digest: &Digest, data: &[u8]) -> Result<()> {
        let cd = to_content(digest)?;
        if self.content.exists(&cd) {
            return Ok(());
        }
        let mut w = self.content.writer(Some(cd), Some(data.len() as u64))?;
        io::Write::write_all(&mut w, data)
            .map_err(ImageError::io("write blob", self.content.root()))?;
        w.commit()?;
        Ok(())
    }

    /// Creates the writable snapshot `container_key` over the image's layers and returns how
    /// to mount it: an overlay with the committed layers as lower directories and a fresh
    /// upper directory (a plain bind of an empty directory for an image without layers).
    /// Keys starting with `sha256:` or `extract-` are the store's own and are refused.
    pub fn prepare_rootfs(&self, image: &ImageId, container_key: &str) -> Result<Mount> {
        check_container_key(container_key)?;
        let top = {
            let st = self.lock();
            let img = st.images.get(image).ok_or_else(|| no_such_id(image))?;
            img.chain.last().cloned()
        };
        let parent = top.as_ref().map(Digest::as_str);
        Ok(self.snapshots.prepare(container_key, parent)?)
    }

    /// Removes a container's snapshot made by [`ImageStore::prepare_rootfs`] (it must be
    /// unmounted). A missing snapshot is not an error.
    pub fn remove_rootfs(&self, container_key: &str) -> Result<()> {
        check_container_key(container_key)?;
        match self.snapshots.remove(container_key) {
            Err(SnapshotError::NotFound(_)) => Ok(()),
            r => Ok(r?),
        }
    }

    /// Removes layers in `chain_ids` that no image uses any more: record first, then the
    /// snapshot, then the blob, so a crash leaves only debris that [`ImageStore::repair`]
    /// recognises. Returns the chain ids removed, top-most first.
    pub(crate) fn remove_unused_layers(
        &self,
        st: &mut State,
        chain_ids: &[Digest],
    ) -> Result<Vec<Digest>> {
        let mut removed = Vec::new();
        for chain_id in chain_ids.iter().rev() {
            let used = st.images.values().any(|i| i.chain.contains(chain_id));
            let Some(layer) = st.layers.get(chain_id).cloned() else {
                continue;
            };
            if used {
                continue;
            }
            match self.snapshots.remove(chain_id.as_str()) {
                // A container (or a layer of another stack) still sits on it: keep it all.
                Err(SnapshotError::HasChildren { .. }) => continue,
                Err(SnapshotError::NotFound(_)) | Ok(()) => {}
                Err(e) => return Err(e.into()),
            }
            remove_durable(&self.layer_record_path(chain_id))?;
            st.layers.remove(chain_id);
            let blob_used = st.layers.values().any(|l| l.blob == layer.blob);
            if !blob_used {
                self.delete_blob(&layer.blob);
            }
            removed.push(chain_id.clone());
        }
        Ok(removed)
    }

    /// Deletes a blob no record refers to. A failure only leaves garbage for `repair`.
    pub(crate) fn delete_blob(&self, digest: &Digest) {
        if let Ok(cd) = to_content(digest) {
            let _ = self.content.delete(&cd);
        }
    }
}

/// Image layers are keyed by chain id and unpacks in progress by `extract-…`; a container
/// key that looked like either could remove a layer or be swept by repair.
fn check_container_key(key: &str) -> Result<()> {
    if key.starts_with("sha256:") || key.starts_with("extract-") {
        return Err(ImageError::InvalidArgument {
            reason: format!("snapshot key {key:?} is reserved for image layers"),
        });
    }
    Ok(())
}

/// The lookup behind [`ImageStore::resolve`], moby's `GetImage`.
pub(crate) fn resolve_in(st: &State, name_or_id: &str) -> Result<ImageId> {
    match AnyReference::parse(name_or_id)? {
        AnyReference::Digest(d) => {
            let missing = || ImageError::NoSuchImage {
                reference: d.as_str().to_owned(),
            };
            let id = ImageId::from_digest(d.clone()).map_err(|_| missing())?;
            if st.images.contains_key(&id) {
                Ok(id)
            } else {
                Err(missing())
            }
        }
        AnyReference::Named(named) => {
            let key = store_key(named);
            if let Some(id) = st.tags.get(&key).filter(|id| st.images.contains_key(*id)) {
                return Ok(id.clone());
            }
            let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
            if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                // Docker reports an ambiguous prefix as a missing image too.
                if let Ok(id) = resolve_prefix(st.images.keys(), &format!("sha256:{hex}")) {
                    return Ok(id.clone());
                }
            }
            Err(ImageError::NoSuchImage {
                reference: key.familiar_string(),
            })
        }
    }
}

/// How a reference is keyed in the tag store: `name@digest` when it has a digest (a tag next
/// to it is dropped), otherwise `name:tag` with `latest` by default.
pub(crate) fn store_key(r: Reference) -> Reference {
    match r.digest().cloned() {
        Some(d) => r.name_only().with_digest(d),
        None => r.with_default_tag(),
    }
}

pub(crate) fn no_such_id(id: &ImageId) -> ImageError {
    ImageError::NoSuchImage {
        reference: id.to_string(),
    }
}

fn load_layers(dir: &Path) -> Result<BTreeMap<Digest, LayerRecord>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(ImageError::io("list", dir))? {
        let entry = entry.map_err(ImageError::io("list", dir))?;
        let Ok(data) = fs::read(entry.path()) else {
            continue;
        };
        if let Ok(rec) = serde_json::from_slice::<LayerRecord>(&data) {
            out.insert(rec.chain_id.clone(), rec);
        }
    }
    Ok(out)
}

/// berth-content has its own digest type; both validate the same text, so converting is a
/// re-parse that cannot fail for sha256.
pub(crate) fn to_content(d: &Digest) -> Result<berth_content::Digest> {
    Ok(berth_content::Digest::parse(d.as_str()).map_err(berth_content::ContentError::from)?)
}

pub(crate) fn from_content(d: &berth_content::Digest) -> Result<Digest> {
    Digest::parse(&d.to_string()).map_err(|e| ImageError::Corrupt {
        path: PathBuf::from(d.to_string()),
        reason: e.to_string(),
    })
}
