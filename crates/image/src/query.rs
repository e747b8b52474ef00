//! Read-side operations and tagging: `docker images`, `image inspect`, `history`, `tag`.
//! The result types serialise to the Engine API's JSON (field names and nulls as Docker's),
//! so the API layer can pass them through or map them one to one.

use std::collections::BTreeMap;

use berth_reference::{Filters, ImageId, Reference};
use serde::Serialize;

use crate::config::{ContainerConfig, ImageConfig, now_rfc3339, parse_rfc3339};
use crate::error::{ImageError, Result};
use crate::store::{Image, ImageStore, State, resolve_in, store_key};

/// One entry of `docker images` (`GET /images/json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// Always -1: not computed (as Docker without `?shared-size`).
    pub containers: i64,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// `sha256:<hex>`.
    pub id: String,
    /// The config's labels (`null` when none).
    pub labels: Option<BTreeMap<String, String>>,
    /// The parent image id, or empty.
    pub parent_id: String,
    /// `name@digest` references, familiar form; `["<none>@<none>"]` for a dangling image.
    pub repo_digests: Option<Vec<String>>,
    /// `name:tag` references, familiar form; `["<none>:<none>"]` for a dangling image.
    pub repo_tags: Option<Vec<String>>,
    /// Always -1: not computed.
    pub shared_size: i64,
    /// Sum of the layers' file sizes.
    pub size: i64,
    /// Same as `size` (API < 1.44).
    pub virtual_size: i64,
}

/// What `docker images` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `-a`: include intermediate (untagged parent) images.
    pub all: bool,
    /// `reference`, `dangling`, `label`, `before`, `since`.
    pub filters: Filters,
}

/// `docker image inspect` (`GET /images/{name}/json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// `sha256:<hex>`.
    pub id: String,
    /// Tags, familiar form.
    pub repo_tags: Vec<String>,
    /// Digest references, familiar form.
    pub repo_digests: Vec<String>,
    /// Parent image id, or empty.
    pub parent: String,
    /// The config's comment.
    pub comment: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The build container, if any.
    pub container: String,
    /// The build container's config.
    pub container_config: ContainerConfig,
    /// Docker version that built it.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// Defaults for containers.
    pub config: ContainerConfig,
    /// CPU architecture.
    pub architecture: String,
    /// Architecture variant.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Operating system.
    pub os: String,
    /// Sum of the layers' file sizes.
    pub size: i64,
    /// Same as `size`.
    pub virtual_size: i64,
    /// Where the layers are on disk.
    pub graph_driver: GraphDriver,
    /// The layers by diff id.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFsInfo,
    /// Store metadata.
    pub metadata: Metadata,
}

/// `GraphDriver` of an image inspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// `LowerDir`, `UpperDir`, … as Docker's overlay2 reports them.
    pub data: BTreeMap<String, String>,
    /// `overlay2`, the name Docker clients know for an overlayfs store.
    pub name: String,
}

/// `RootFS` of an image inspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsInfo {
    /// `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Diff ids, bottom first.
    pub layers: Vec<String>,
}

/// `Metadata` of an image inspect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// When a tag last moved to this image (Go's zero time if never).
    pub last_tag_time: String,
}

/// One entry of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The history entry's comment.
    pub comment: String,
    /// Unix seconds.
    pub created: i64,
    /// The step's command.
    pub created_by: String,
    /// The image id for the top entry of each image in the parent chain, else `<missing>`.
    pub id: String,
    /// Bytes the step's layer adds (0 for an empty step).
    pub size: i64,
    /// Tags of that image (`null` if none or `<missing>`).
    pub tags: Option<Vec<String>>,
}

const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl State {
    pub(crate) fn size_of(&self, img: &Image) -> u64 {
        img.chain
            .iter()
            .filter_map(|c| self.layers.get(c))
            .map(|l| l.diff_size)
            .sum()
    }

    /// (tags, digests) of an image in familiar form.
    pub(crate) fn familiar_refs(&self, id: &ImageId) -> (Vec<String>, Vec<String>) {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for r in self.tags.refs_of(id) {
            if r.digest().is_some() {
                digests.push(r.familiar_string());
            } else {
                tags.push(r.familiar_string());
            }
        }
        (tags, digests)
    }

    pub(crate) fn children(&self, id: &ImageId) -> usize {
        self.images
            .values()
            .filter(|i| i.record.parent.as_ref() == Some(id))
            .count()
    }
}

impl ImageStore {
    /// `docker images`: newest first.
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<ImageSummary>> {
        let f = &opts.filters;
        f.validate(&["dangling", "label", "before", "since", "reference"])?;
        let dangling_only = f.get_bool_or_default("dangling", false)?;
        let st = self.lock();
        let before = created_of_refs(&st, f, "before")?.into_iter().min();
        let since = created_of_refs(&st, f, "since")?.into_iter().max();
        let mut out = Vec::new();
        for img in st.images.values() {
            let created = img.config.created_unix();
            if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                continue;
            }
            if f.contains("label") {
                let Some(labels) = img.config.labels() else {
                    continue;
                };
                if !f.match_kv_list("label", labels) {
                    continue;
                }
            }
            if let Some(summary) = summarize(&st, img, opts, dangling_only)? {
                out.push(summary);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `docker image inspect`.
    pub fn inspect(&self, name_or_id: &str) -> Result<ImageInspect> {
        let st = self.lock();
        let id = resolve_in(&st, name_or_id)?;
        let img = &st.images[&id];
        let (tags, digests) = st.familiar_refs(&id);
        let size = st.size_of(img) as i64;
        let c = &img.config;
        Ok(ImageInspect {
            id: id.to_string(),
            repo_tags: tags,
            repo_digests: digests,
            parent: img
                .record
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            comment: c.comment.clone(),
            created: c.created.clone().unwrap_or_else(|| GO_ZERO_TIME.to_owned()),
            container: c.container.clone(),
            container_config: c.container_config.clone().unwrap_or_default(),
            docker_version: c.docker_version.clone(),
            author: c.author.clone(),
            config: c.config.clone().unwrap_or_default(),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            size,
            virtual_size: size,
            graph_driver: self.graph_driver(img),
            root_fs: RootFsInfo {
                kind: "layers".to_owned(),
                layers: c.rootfs.diff_ids.iter().map(ToString::to_string).collect(),
            },
            metadata: Metadata {
                last_tag_time: img
                    .record
                    .last_tag_time
                    .clone()
                    .unwrap_or_else(|| GO_ZERO_TIME.to_owned()),
            },
        })
    }

    /// The parsed config of an image (for the engine's container defaults).
    pub fn config(&self, id: &ImageId) -> Result<ImageConfig> {
        let st = self.lock();
        st.images
            .get(id)
            .map(|i| i.config.clone())
            .ok_or_else(|| crate::store::no_such_id(id))
    }

    fn graph_driver(&self, img: &Image) -> GraphDriver {
        let dirs: Vec<String> = img
            .chain
            .iter()
            .rev()
            .filter_map(|c| self.snapshots.fs_dir(c.as_str()).ok())
            .map(|p| p.display().to_string())
            .collect();
        let mut data = BTreeMap::new();
        if let Some((upper, lower)) = dirs.split_first() {
            data.insert("UpperDir".to_owned(), upper.clone());
            if !lower.is_empty() {
                data.insert("LowerDir".to_owned(), lower.join(":"));
            }
        }
        GraphDriver {
            data,
            name: "overlay2".to_owned(),
        }
    }

    /// `docker history`: one entry per config history entry, newest first.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryItem>> {
        let st = self.lock();
        let id = resolve_in(&st, name_or_id)?;
        let img = &st.images[&id];
        let mut items = Vec::new();
        let mut layer = 0;
        for h in &img.config.history {
            let mut size = 0;
            if !h.empty_layer {
                let chain = img.chain.get(layer).ok_or_else(|| ImageError::Corrupt {
                    path: self.image_record_path(&id),
                    reason: "more non-empty history entries than layers".to_owned(),
                })?;
                size = st.layers.get(chain).map_or(0, |l| l.diff_size as i64);
                layer += 1;
            }
            items.push(HistoryItem {
                comment: h.comment.clone(),
                created: h.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                created_by: h.created_by.clone(),
                id: "<missing>".to_owned(),
                size,
                tags: None,
            });
        }
        items.reverse();
        // Each image of the parent chain names the newest entry that belongs to it.
        let mut cur = Some(id);
        for item in &mut items {
            let Some(id) = cur.take() else { break };
            let (tags, _) = st.familiar_refs(&id);
            item.id = id.to_string();
            item.tags = (!tags.is_empty()).then_some(tags);
            cur = st.images.get(&id).and_then(|i| i.record.parent.clone());
        }
        Ok(items)
    }

    /// `docker tag source target`: points `target` (`latest` if untagged) at the image
    /// `source` names, moving it from any other image.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest().is_some() {
            return Err(ImageError::InvalidTag {
                reason: "refusing to create a tag with a digest reference".to_owned(),
            });
        }
        if target.familiar_name() == "sha256" {
            return Err(ImageError::InvalidTag {
                reason: "refusing to create an ambiguous tag using digest algorithm as name"
                    .to_owned(),
            });
        }
        let mut st = self.lock();
        let id = resolve_in(&st, source)?;
        let mut record = st.images[&id].record.clone();
        record.last_tag_time = Some(now_rfc3339());
        self.write_image_record(&id, &record)?;
        if let Some(img) = st.images.get_mut(&id) {
            img.record = record;
        }
        let key = store_key(target.clone());
        st.tags.update(|t| t.insert(key, id))?;
        Ok(())
    }

    /// Records that `reference` (`name@sha256:…`, the manifest digest a registry serves the
    /// image under) names `image`, as a pull or push does; `docker images --digests` shows
    /// it. A digest reference never moves to another image.
    pub fn add_digest(&self, reference: &Reference, image: &ImageId) -> Result<()> {
        let Some(digest) = reference.digest().cloned() else {
            return Err(ImageError::InvalidTag {
                reason: format!("{} is not a digest reference", reference.familiar_string()),
            });
        };
        let key = reference.clone().name_only().with_digest(digest.clone());
        let mut st = self.lock();
        if !st.images.contains_key(image) {
            return Err(crate::store::no_such_id(image));
        }
        match st.tags.get(&key) {
            Some(existing) if existing == image => Ok(()),
            Some(_) => Err(ImageError::InvalidTag {
                reason: format!("Cannot overwrite digest {digest}"),
            }),
            None => st.tags.update(|t| {
                t.insert(key, image.clone());
            }),
        }
    }

    /// Removes one tag or digest reference (never the image). Returns the image it named.
    pub fn untag(&self, reference: &Reference) -> Result<ImageId> {
        let key = store_key(reference.clone());
        let mut st = self.lock();
        let missing = || ImageError::NoSuchImage {
            reference: key.familiar_string(),
        };
        st.tags.get(&key).ok_or_else(missing)?;
        st.tags.update(|t| t.remove(&key))?.ok_or_else(missing)
    }
}

/// Builds one `docker images` row, or `None` if the image is filtered out. Follows moby's
/// `Images`: references are filtered by `reference`, untagged images show `<none>`.
fn summarize(
    st: &State,
    img: &Image,
    opts: &ListOptions,
    dangling_only: bool,
) -> Result<Option<ImageSummary>> {
    let f = &opts.filters;
    let patterns = f.get("reference");
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for r in st.tags.refs_of(&img.id) {
        if !patterns.is_empty() && !patterns.iter().any(|p| familiar_match(p, &r)) {
            continue;
        }
        if r.digest().is_some() {
            digests.push(r.familiar_string());
        } else {
            tags.push(r.familiar_string());
        }
    }
    if tags.is_empty() && digests.is_empty() {
        if !(opts.all || st.children(&img.id) == 0) {
            return Ok(None);
        }
        // dangling=false, or a reference filter, hides untagged images.
        if (f.contains("dangling") && !dangling_only) || f.contains("reference") {
            return Ok(None);
        }
        tags.push("<none>:<none>".to_owned());
        digests.push("<none>@<none>".to_owned());
    } else if dangling_only && !tags.is_empty() {
        return Ok(None);
    }
    let size = st.size_of(img) as i64;
    Ok(Some(ImageSummary {
        containers: -1,
        created: img.config.created_unix(),
        id: img.id.to_string(),
        labels: img.config.labels().cloned(),
        parent_id: img
            .record
            .parent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        repo_digests: Some(digests).filter(|d| !d.is_empty()),
        repo_tags: Some(tags).filter(|t| !t.is_empty()),
        shared_size: -1,
        size,
        virtual_size: size,
    }))
}

/// The creation times of the images named by filter `key` (`before`, `since`).
fn created_of_refs(st: &State, f: &Filters, key: &str) -> Result<Vec<i64>> {
    f.get(key)
        .into_iter()
        .map(|name| {
            let id = resolve_in(st, name)?;
            Ok(st.images[&id].config.created_unix())
        })
        .collect()
}

/// Docker's `reference.FamiliarMatch`: the glob against the familiar string, then against
/// the familiar name.
pub(crate) fn familiar_match(pattern: &str, r: &Reference) -> bool {
    glob(pattern.as_bytes(), r.familiar_string().as_bytes())
        || glob(pattern.as_bytes(), r.familiar_name().as_bytes())
}

/// Go's `path.Match`: `*` and `?` do not cross `/`; `[...]` classes with ranges and `^`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob(&p[1..], &s[i..])),
        Some(b'?') => s.first().is_some_and(|&c| c != b'/') && glob(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some((&c, rest)) = s.split_first() else {
                return false;
            };
            match class(&p[1..], c) {
                Some((matched, after)) => matched && glob(after, rest),
                None => false,
            }
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob(&p[2..], &s[1..]),
        Some(&pc) => s.first() == Some(&pc) && glob(&p[1..], &s[1..]),
    }
}

/// Matches `c` against a class body; returns (matched, pattern after `]`).
fn class(p: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negated, mut p) = match p.first() {
        Some(b'^') => (true, &p[1..]),
        _ => (false, p),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        match p {
            [b']', rest @ ..] if !first => return Some((matched != negated, rest)),
            [lo, b'-', hi, rest @ ..] if *hi != b']' => {
                matched |= (*lo..=*hi).contains(&c);
                p = rest;
            }
            [x, rest @ ..] => {
                matched |= *x == c;
                p = rest;
            }
            [] => return None,
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reference_filter_globs_like_docker() {
        let r = Reference::parse_normalized("busybox:1.36").unwrap();
        assert!(familiar_match("busybox", &r));
        assert!(familiar_match("busy*", &r));
        assert!(familiar_match("busybox:1.*", &r));
        assert!(!familiar_match("alpine", &r));
        let r = Reference::parse_normalized("localhost:5000/a/b:1").unwrap();
        assert!(!familiar_match("*", &r), "* does not cross /");
        assert!(familiar_match("localhost:5000/a/*", &r));
        assert!(familiar_match("localhost:5000/a/[a-c]", &r));
        assert!(!familiar_match("localhost:5000/a/[^b]", &r));
    }
}
