//! `docker save`, in the layout Docker 25+ writes, which is at once a docker-archive and an
//! OCI image layout:
//!
//! ```text
//! blobs/sha256/<config hex>     the config, byte for byte (so the id survives)
//! blobs/sha256/<diff id hex>    each layer as an uncompressed tar (its digest is its diff id)
//! blobs/sha256/<manifest hex>   an OCI manifest per image
//! index.json, oci-layout        the OCI layout: one entry per tag, annotated with the name
//! manifest.json                 [{"Config","RepoTags","Layers"}] for every docker load
//! ```
//!
//! Docker 20.10 loads it through `manifest.json` (it accepts any layer paths there),
//! Docker 25+, containerd and skopeo through either file. No `repositories` file: every
//! loader since Docker 1.10 reads `manifest.json` instead.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use berth_reference::{AnyReference, Digest, ImageId, Reference, Sha256Digester};
use serde_json::json;

use crate::error::{ImageError, Result};
use crate::layers::decompress;
use crate::store::{
    ImageStore, LayerRecord, MAX_JSON_SIZE, State, resolve_in, store_key, to_content,
};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// One image to write, with the tags to record for it.
struct Target {
    id: ImageId,
    tags: Vec<Reference>,
    layers: Vec<LayerRecord>,
}

impl ImageStore {
    /// Writes the images `names` name (tags, ids, or a repository for all its tags) to
    /// `out` as a tar archive.
    pub fn save(&self, names: &[&str], out: &mut dyn Write) -> Result<()> {
        let targets = {
            let st = self.lock();
            save_targets(&st, names)?
        };
        let mut tar = tar::Builder::new(out);
        let mut written = BTreeSet::new();
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0);
            h.set_mode(0o755);
            tar.append_data(&mut h, dir, io::empty())
                .map_err(write_err)?;
        }
        let mut index = Vec::new();
        let mut manifest = Vec::new();
        for t in &targets {
            let (desc, entry) = self.save_image(&mut tar, t, &mut written)?;
            if t.tags.is_empty() {
                index.push(desc.clone());
            }
            for tag in &t.tags {
                let mut d = desc.clone();
                d["annotations"] = json!({
                    "io.containerd.image.name": tag.to_string(),
                    "org.opencontainers.image.ref.name": tag.tag().unwrap_or_default(),
                });
                index.push(d);
            }
            manifest.push(entry);
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index,
        });
        append_json(&mut tar, "index.json", &index)?;
        append_json(&mut tar, "manifest.json", &json!(manifest))?;
        append_json(
            &mut tar,
            "oci-layout",
            &json!({"imageLayoutVersion": "1.0.0"}),
        )?;
        tar.into_inner().and_then(|w| w.flush()).map_err(write_err)
    }

    /// Writes one image's blobs; returns its index descriptor and `manifest.json` entry.
    fn save_image(
        &self,
        tar: &mut tar::Builder<&mut dyn Write>,
        t: &Target,
        written: &mut BTreeSet<Digest>,
    ) -> Result<(serde_json::Value, serde_json::Value)> {
        let config = self
            .content
            .read_all(&to_content(t.id.digest())?, MAX_JSON_SIZE)?;
        append_blob(tar, written, t.id.digest(), &config)?;
        let mut layer_descs = Vec::new();
        let mut layer_paths = Vec::new();
        for l in &t.layers {
            if written.insert(l.diff_id.clone()) {
                self.append_layer(tar, l)?;
            }
            layer_descs
                .push(json!({"mediaType": LAYER_TYPE, "digest": l.diff_id, "size": l.tar_size}));
            layer_paths.push(format!("blobs/sha256/{}", l.diff_id.hex()));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": t.id.digest(), "size": config.len()},
            "layers": layer_descs,
        });
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| ImageError::archive(e.to_string()))?;
        let digest = Digest::sha256_of(&bytes);
        append_blob(tar, written, &digest, &bytes)?;
        let tags: Vec<String> = t.tags.iter().map(Reference::familiar_string).collect();
        let entry = json!({
            "Config": format!("blobs/sha256/{}", t.id.hex()),
            "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { json!(tags) },
            "Layers": layer_paths,
        });
        let desc = json!({"mediaType": MANIFEST_TYPE, "digest": digest, "size": bytes.len()});
        Ok((desc, entry))
    }

    /// Streams a layer's blob, decompressed, into the archive, checking its length and that
    /// it still hashes to its diff id.
    fn append_layer(&self, tar: &mut tar::Builder<&mut dyn Write>, l: &LayerRecord) -> Result<()> {
        let mut blob = self.content.get(&to_content(&l.blob)?)?;
        let plain =
            decompress(&mut blob).map_err(ImageError::io("read layer", l.blob.to_string()))?;
        let verified = Verified {
            inner: plain,
            left: l.tar_size,
            expected: &l.diff_id,
            hasher: Some(Sha256Digester::new()),
        };
        let mut h = header(tar::EntryType::Regular, l.tar_size);
        tar.append_data(
            &mut h,
            format!("blobs/sha256/{}", l.diff_id.hex()),
            verified,
        )
        .map_err(write_err)
    }
}

/// moby's save name rules: a repository name alone means all its tags; a tag or digest
/// reference that one image; an id (prefix) the image without tags.
fn save_targets(st: &State, names: &[&str]) -> Result<Vec<Target>> {
    let mut order: Vec<ImageId> = Vec::new();
    let mut tags: BTreeMap<ImageId, Vec<Reference>> = BTreeMap::new();
    let mut add = |id: ImageId, tag: Option<Reference>| {
        if !order.contains(&id) {
            order.push(id.clone());
        }
        let list = tags.entry(id).or_default();
        if let Some(t) = tag.filter(|t| t.digest().is_none() && !list.contains(t)) {
            list.push(t);
        }
    };
    for name in names {
        match AnyReference::parse(name)? {
            AnyReference::Named(r) if r.is_name_only() => {
                let refs = st.tags.by_name(&r.name());
                if refs.is_empty() {
                    add(resolve_in(st, name)?, None);
                }
                for (r, id) in refs {
                    add(id, Some(r));
                }
            }
            AnyReference::Named(r) => add(resolve_in(st, name)?, Some(store_key(r))),
            AnyReference::Digest(_) => add(resolve_in(st, name)?, None),
        }
    }
    order
        .into_iter()
        .map(|id| {
            let img = &st.images[&id];
            let layers = img
                .chain
                .iter()
                .map(|c| {
                    st.layers
                        .get(c)
                        .cloned()
                        .ok_or_else(|| ImageError::Corrupt {
                            path: c.to_string().into(),
                            reason: "layer record missing".to_owned(),
                        })
                })
                .collect::<Result<_>>()?;
            Ok(Target {
                tags: tags.remove(&id).unwrap_or_default(),
                id,
                layers,
            })
        })
        .collect()
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_blob(
    tar: &mut tar::Builder<&mut dyn Write>,
    written: &mut BTreeSet<Digest>,
    d: &Digest,
    data: &[u8],
) -> Result<()> {
    if !written.insert(d.clone()) {
        return Ok(());
    }
    let mut h = header(tar::EntryType::Regular, data.len() as u64);
    tar.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), data)
        .map_err(write_err)
}

fn append_json(
    tar: &mut tar::Builder<&mut dyn Write>,
    name: &str,
    v: &serde_json::Value,
) -> Result<()> {
    let data = serde_json::to_vec(v).map_err(|e| ImageError::archive(e.to_string()))?;
    let mut h = header(tar::EntryType::Regular, data.len() as u64);
    tar.append_data(&mut h, name, data.as_slice())
        .map_err(write_err)
}

fn write_err(e: io::Error) -> ImageError {
    ImageError::Io {
        op: "write archive",
        path: "-".into(),
        source: e,
    }
}

/// Yields exactly `left` bytes that must hash to `expected`; anything else is an error
/// before the tar entry is finished, so a corrupt store never produces a wrong archive.
struct Verified<'a, R> {
    inner: R,
    left: u64,
    expected: &'a Digest,
    hasher: Option<Sha256Digester>,
}

impl<R: Read> Read for Verified<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut extra = [0u8; 1];
            if self.inner.read(&mut extra)? != 0 {
                return Err(io::Error::other("stored layer is longer than recorded"));
            }
            if let Some(h) = self.hasher.take()
                && h.finish() != *self.expected
            {
                return Err(io::Error::other(format!(
                    "stored layer no longer hashes to {}",
                    self.expected
                )));
            }
            return Ok(0);
        }
        let room = self.left.min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        if n == 0 {
            return Err(io::Error::other("stored layer is shorter than recorded"));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}
