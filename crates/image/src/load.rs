//! `docker load`: a docker-archive (`manifest.json` + configs + layer tars, as `docker save`
//! of every Docker version writes) or an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/`). A `repositories` file (pre-1.10 archives) is ignored.
//!
//! Three phases, so a bad archive registers nothing:
//! 1. unpack into a scratch directory ([`crate::archive`]) and read and check every
//!    manifest, config and tag, with the names of configs and layers confined to digest
//!    shapes (CVE-2014-9358);
//! 2. register the layers, each verified against its diff id (and blob digest, when the
//!    archive names it) before it is committed; on failure the new layers are removed;
//! 3. register the images, then their tags. A loaded tag moves that tag and nothing else.

use std::io::Read;

use berth_reference::{Digest, ImageId, Reference};
use serde::Deserialize;

use crate::archive::{Extracted, extract};
use crate::config::{ImageConfig, chain_ids};
use crate::error::{ImageError, Result};
use crate::import::host_arch;
use crate::layers::BlobMode;
use crate::store::{ImageStore, MAX_JSON_SIZE};

/// Most images one archive may hold.
const MAX_IMAGES: usize = 10_000;
/// How deep OCI indexes may nest.
const MAX_INDEX_DEPTH: usize = 4;

/// An image `load` registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Its id.
    pub id: ImageId,
    /// The tags the archive gave it (now pointing at it).
    pub tags: Vec<Reference>,
    /// Tags that pointed at another image before, with that image: Docker reports each as
    /// `The image <tag> already exists, renaming the old one with ID <id> to empty string`.
    pub replaced: Vec<(Reference, ImageId)>,
}

/// One image found in an archive, checked but not yet registered.
struct Pending {
    config: Vec<u8>,
    diff_ids: Vec<Digest>,
    tags: Vec<Reference>,
    layers: Vec<PendingLayer>,
}

struct PendingLayer {
    path: String,
    /// The digest and size the archive names the blob by, verified when stored.
    digest: Option<Digest>,
    size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default)]
    annotations: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

impl ImageStore {
    /// Loads every image of a `docker save` archive or OCI layout tar.
    pub fn load(&self, archive: &mut dyn Read) -> Result<Vec<LoadedImage>> {
        let ex = extract(archive, &self.root.join("tmp"))?;
        let pending = if ex.has("manifest.json") {
            docker_archive(&ex)?
        } else if ex.has("index.json") {
            oci_layout(&ex)?
        } else {
            return Err(ImageError::archive(
                "neither manifest.json nor index.json found: not a docker save or OCI layout archive",
            ));
        };
        let created = self.load_layers(&ex, &pending)?;
        let mut loaded = Vec::new();
        for p in &pending {
            let replaced = self.previous_owners(&p.tags, &ImageId::from_config(&p.config));
            match self.register_image(&p.config, None, &p.tags) {
                Ok(id) => loaded.push(LoadedImage {
                    id,
                    tags: p.tags.clone(),
                    replaced,
                }),
                Err(e) => {
                    self.rollback_layers(&created);
                    return Err(e);
                }
            }
        }
        Ok(loaded)
    }

    /// The images other than `id` that `tags` name now.
    fn previous_owners(&self, tags: &[Reference], id: &ImageId) -> Vec<(Reference, ImageId)> {
        let st = self.lock();
        tags.iter()
            .filter_map(|t| {
                st.tags
                    .get(t)
                    .filter(|old| *old != id)
                    .map(|old| (t.clone(), old.clone()))
            })
            .collect()
    }

    /// Phase 2: registers every layer; on failure removes the ones this load created.
    fn load_layers(&self, ex: &Extracted, pending: &[Pending]) -> Result<Vec<Digest>> {
        let mut created = Vec::new();
        for p in pending {
            let chain = chain_ids(&p.diff_ids);
            for (i, layer) in p.layers.iter().enumerate() {
                let parent = i.checked_sub(1).map(|j| &chain[j]);
                let result = ex.open(&layer.path).and_then(|mut f| {
                    let mode = BlobMode::AsIs {
                        digest: layer.digest.clone(),
                        size: layer.size,
                    };
                    self.add_layer(i, parent, Some(&p.diff_ids[i]), &mut f, mode)
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
        }
        Ok(created)
    }
}

/// Phase 1 for a docker-archive.
fn docker_archive(ex: &Extracted) -> Result<Vec<Pending>> {
    let data = ex.read_limited("manifest.json", MAX_JSON_SIZE)?;
    let items: Vec<ManifestItem> = serde_json::from_slice(&data)
        .map_err(|e| ImageError::archive(format!("manifest.json: {e}")))?;
    if items.len() > MAX_IMAGES {
        return Err(ImageError::archive("manifest.json lists too many images"));
    }
    items.iter().map(|item| docker_item(ex, item)).collect()
}

fn docker_item(ex: &Extracted, item: &ManifestItem) -> Result<Pending> {
    let config_digest = config_name_digest(&item.config)?;
    let config = ex.read_limited(&item.config, MAX_JSON_SIZE)?;
    if Digest::sha256_of(&config) != config_digest {
        return Err(ImageError::archive(format!(
            "config {} does not match its name",
            item.config
        )));
    }
    let diff_ids = parse_config(&config)?;
    if diff_ids.len() != item.layers.len() {
        return Err(ImageError::archive(format!(
            "config {} lists {} layers, the manifest {}",
            item.config,
            diff_ids.len(),
            item.layers.len()
        )));
    }
    let layers = item
        .layers
        .iter()
        .map(|path| {
            Ok(PendingLayer {
                digest: layer_name_digest(path)?,
                path: path.clone(),
                size: None,
            })
        })
        .collect::<Result<_>>()?;
    let tags = item
        .repo_tags
        .iter()
        .flatten()
        .map(|t| archive_tag(t))
        .collect::<Result<_>>()?;
    Ok(Pending {
        config,
        diff_ids,
        tags,
        layers,
    })
}

/// `<64 hex>.json` (Docker ≤ 24) or `blobs/sha256/<64 hex>` (Docker 25+); the hex is the
/// config's digest.
fn config_name_digest(name: &str) -> Result<Digest> {
    let hex = name
        .strip_suffix(".json")
        .or_else(|| name.strip_prefix("blobs/sha256/"));
    hex.and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
        .ok_or_else(|| ImageError::archive(format!("invalid config name {name:?}: not a digest")))
}

/// `<64 hex>/layer.tar` (a v1 layer id, unrelated to the content), `<64 hex>.tar`, or
/// `blobs/sha256/<64 hex>` (the blob's digest, verified).
fn layer_name_digest(name: &str) -> Result<Option<Digest>> {
    let invalid = || ImageError::archive(format!("invalid layer name {name:?}"));
    let hex_digest = |h: &str| Digest::parse(&format!("sha256:{h}")).map_err(|_| invalid());
    if let Some(h) = name.strip_prefix("blobs/sha256/") {
        return hex_digest(h).map(Some);
    }
    if let Some(h) = name
        .strip_suffix("/layer.tar")
        .or_else(|| name.strip_suffix(".tar"))
    {
        hex_digest(h)?;
        return Ok(None);
    }
    Err(invalid())
}

/// A `RepoTags` entry: a valid, tagged, digest-free reference.
fn archive_tag(t: &str) -> Result<Reference> {
    let r = Reference::parse_normalized(t)?;
    if r.tag().is_none() || r.digest().is_some() {
        return Err(ImageError::InvalidTag {
            reason: format!("invalid tag {t:?}"),
        });
    }
    Ok(r)
}

fn parse_config(config: &[u8]) -> Result<Vec<Digest>> {
    let c = ImageConfig::parse(config)
        .map_err(|e| ImageError::archive(format!("invalid image config: {e}")))?;
    Ok(c.rootfs.diff_ids)
}

/// Phase 1 for an OCI layout.
fn oci_layout(ex: &Extracted) -> Result<Vec<Pending>> {
    if !ex.has("oci-layout") {
        return Err(ImageError::archive("index.json without oci-layout"));
    }
    let data = ex.read_limited("index.json", MAX_JSON_SIZE)?;
    let index: Index = serde_json::from_slice(&data)
        .map_err(|e| ImageError::archive(format!("index.json: {e}")))?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        let tags = oci_tags(desc)?;
        collect_manifests(ex, desc, &tags, 0, &mut out)?;
    }
    Ok(out)
}

/// The tag a top-level `index.json` entry names: `io.containerd.image.name` (a full
/// reference), else `org.opencontainers.image.ref.name` when it is a full reference too (a
/// bare tag has no repository to go with it).
fn oci_tags(desc: &Descriptor) -> Result<Vec<Reference>> {
    let Some(a) = &desc.annotations else {
        return Ok(Vec::new());
    };
    if let Some(name) = a.get("io.containerd.image.name") {
        return Ok(vec![archive_tag(name)?]);
    }
    match a.get("org.opencontainers.image.ref.name") {
        Some(name) if name.contains(['/', ':']) => Ok(vec![archive_tag(name)?]),
        _ => Ok(Vec::new()),
    }
}

/// Reads a blob named by a descriptor, checking its size and digest.
fn read_blob(ex: &Extracted, desc: &Descriptor) -> Result<Vec<u8>> {
    if desc.size > MAX_JSON_SIZE {
        return Err(ImageError::archive(format!("{} is too large", desc.digest)));
    }
    let data = ex.read_limited(&blob_path(&desc.digest), MAX_JSON_SIZE)?;
    if data.len() as u64 != desc.size || Digest::sha256_of(&data) != desc.digest {
        return Err(ImageError::archive(format!(
            "blob {} does not match its descriptor",
            desc.digest
        )));
    }
    Ok(data)
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn collect_manifests(
    ex: &Extracted,
    desc: &Descriptor,
    tags: &[Reference],
    depth: usize,
    out: &mut Vec<Pending>,
) -> Result<()> {
    if depth > MAX_INDEX_DEPTH || out.len() >= MAX_IMAGES {
        return Err(ImageError::archive(
            "indexes nest too deep or list too many images",
        ));
    }
    let data = read_blob(ex, desc)?;
    if INDEX_TYPES.contains(&desc.media_type.as_str()) {
        let index: Index = serde_json::from_slice(&data)
            .map_err(|e| ImageError::archive(format!("index {}: {e}", desc.digest)))?;
        // Of a multi-platform index, only the host's image is loaded (as `docker load`).
        for child in index.manifests.iter().filter(|d| is_host_platform(d)) {
            collect_manifests(ex, child, tags, depth + 1, out)?;
        }
        return Ok(());
    }
    let manifest: Manifest = serde_json::from_slice(&data)
        .map_err(|e| ImageError::archive(format!("manifest {}: {e}", desc.digest)))?;
    let config = read_blob(ex, &manifest.config)?;
    let diff_ids = parse_config(&config)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::archive(format!(
            "config {} lists {} layers, the manifest {}",
            manifest.config.digest,
            diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let layers = manifest
        .layers
        .iter()
        .map(|l| PendingLayer {
            path: blob_path(&l.digest),
            digest: Some(l.digest.clone()),
            size: Some(l.size),
        })
        .collect();
    out.push(Pending {
        config,
        diff_ids,
        tags: tags.to_vec(),
        layers,
    });
    Ok(())
}

fn is_host_platform(d: &Descriptor) -> bool {
    d.platform
        .as_ref()
        .is_none_or(|p| p.os == "linux" && p.architecture == host_arch())
}
