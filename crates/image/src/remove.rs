//! `docker rmi` and `docker image prune`, with Docker's rules (moby's `ImageDelete`):
//!
//! - By name: that reference goes. If it was the last one, the image goes too, unless a
//!   container uses it (the last reference of an image in use needs `force`).
//! - By id (or prefix): if all references are in one repository they go with the image;
//!   otherwise `image is referenced in multiple repositories` unless `force`.
//! - A running container's image cannot be removed even with `force`; a stopped
//!   container's needs `force`; an image with children never.
//! - Layers no other image uses are removed with the image and reported as `Deleted`.

use berth_reference::{Digest, Filters, ImageId, Reference, truncate_id};
use serde::Serialize;

use crate::config::parse_rfc3339;
use crate::error::{ImageError, Result};
use crate::fsutil::remove_durable;
use crate::store::{ImageStore, State, resolve_in, store_key};

/// One line of `docker rmi`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeleteItem {
    /// A reference removed (familiar form).
    Untagged(String),
    /// An image id or layer chain id removed.
    Deleted(String),
}

/// A container that uses an image, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The container's id.
    pub container_id: String,
    /// Whether it is running (which makes removal impossible even with force).
    pub running: bool,
}

/// Asks the engine whether any container uses an image.
pub type InUse<'a> = &'a dyn Fn(&ImageId) -> Option<ImageUse>;

/// What `docker image prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    /// Untagged references and deleted images/layers.
    pub images_deleted: Vec<DeleteItem>,
    /// Bytes of layer files removed.
    pub space_reclaimed: u64,
}

const CHILD: u8 = 1;
const RUNNING: u8 = 2;
const ACTIVE_REFERENCE: u8 = 4;
const STOPPED: u8 = 8;
const HARD: u8 = CHILD | RUNNING;
const SOFT: u8 = ACTIVE_REFERENCE | STOPPED;

struct Conflict {
    error: ImageError,
    /// A container uses the image.
    used: bool,
}

impl ImageStore {
    /// `docker rmi name_or_id` (`force`: `-f`; `prune`: remove untagged parents too, Docker's
    /// default).
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        prune: bool,
        in_use: InUse<'_>,
    ) -> Result<Vec<DeleteItem>> {
        let mut st = self.lock();
        let id = resolve_in(&st, name_or_id)?;
        let mut records = Vec::new();
        let refs = st.tags.refs_of(&id);
        let by_id = id.as_str().starts_with(&format!("sha256:{name_or_id}"))
            || id.as_str().starts_with(name_or_id);
        let mut quiet = false;
        if !by_id {
            if !force
                && is_single_reference(&refs)
                && let Some(user) = in_use(&id)
            {
                return Err(ImageError::ReferenceInUse {
                    reference: name_or_id.to_owned(),
                    container: truncate_id(&user.container_id).to_owned(),
                    image: id.short().to_owned(),
                });
            }
            let parsed = store_key(Reference::parse_normalized(name_or_id)?);
            if !self.untag_for_remove(&mut st, &id, &parsed, &mut records)? {
                return Ok(records);
            }
            quiet = true;
        } else if is_single_reference(&refs) {
            let mask = if force {
                HARD
            } else {
                HARD | (SOFT & !ACTIVE_REFERENCE)
            };
            if let Some(c) = check_conflict(&st, &id, mask, in_use) {
                return Err(c.error);
            }
            untag_all(&mut st, &id, &mut records)?;
        }
        self.delete_image(&mut st, &id, force, prune, quiet, in_use, &mut records)?;
        Ok(records)
    }

    /// Removes `parsed` and, if no tag of its repository is left, that repository's digest
    /// references. Returns whether the image is left without references.
    fn untag_for_remove(
        &self,
        st: &mut State,
        id: &ImageId,
        parsed: &Reference,
        records: &mut Vec<DeleteItem>,
    ) -> Result<bool> {
        if st.tags.get(parsed) != Some(id) {
            return Err(ImageError::NoSuchImage {
                reference: parsed.familiar_string(),
            });
        }
        let removed = st.tags.update(|t| {
            t.remove(parsed);
            let mut removed = vec![parsed.clone()];
            let refs = t.refs_of(id);
            let tag_left = refs
                .iter()
                .any(|r| r.digest().is_none() && r.name() == parsed.name());
            if parsed.digest().is_none() && !tag_left {
                for r in refs
                    .into_iter()
                    .filter(|r| r.digest().is_some() && r.name() == parsed.name())
                {
                    t.remove(&r);
                    removed.push(r);
                }
            }
            removed
        })?;
        records.extend(
            removed
                .iter()
                .map(|r| DeleteItem::Untagged(r.familiar_string())),
        );
        Ok(st.tags.refs_of(id).is_empty())
    }

    /// moby's `imageDeleteHelper`: checks conflicts, drops every reference, deletes the
    /// image and its unused layers, then (with `prune`) its parent, quietly.
    #[allow(clippy::too_many_arguments)]
    fn delete_image(
        &self,
        st: &mut State,
        id: &ImageId,
        force: bool,
        prune: bool,
        quiet: bool,
        in_use: InUse<'_>,
        records: &mut Vec<DeleteItem>,
    ) -> Result<()> {
        let mask = if force { HARD } else { HARD | SOFT };
        if let Some(c) = check_conflict(st, id, mask, in_use) {
            let dangling = st.tags.refs_of(id).is_empty() && st.children(id) == 0;
            if quiet && (!dangling || c.used) {
                return Ok(()); // the untag was what was asked for
            }
            return Err(c.error);
        }
        let parent = st.images.get(id).and_then(|i| i.record.parent.clone());
        untag_all(st, id, records)?;
        let removed_layers = self.delete_record(st, id)?;
        records.push(DeleteItem::Deleted(id.to_string()));
        records.extend(
            removed_layers
                .iter()
                .map(|l| DeleteItem::Deleted(l.to_string())),
        );
        match parent {
            Some(p) if prune && st.images.contains_key(&p) => {
                self.delete_image(st, &p, false, true, true, in_use, records)
            }
            _ => Ok(()),
        }
    }

    /// Deletes the image record, its config blob and the layers only it used.
    fn delete_record(&self, st: &mut State, id: &ImageId) -> Result<Vec<Digest>> {
        remove_durable(&self.image_record_path(id))?;
        let Some(img) = st.images.remove(id) else {
            return Ok(Vec::new());
        };
        self.delete_blob(id.digest());
        self.remove_unused_layers(st, &img.chain)
    }

    /// `docker image prune`: dangling images (or, with `dangling=false`, every image no
    /// container uses), filtered by `until` and `label`.
    pub fn prune(&self, filters: &Filters, in_use: InUse<'_>) -> Result<PruneReport> {
        filters.validate(&["dangling", "until", "label", "label!"])?;
        let dangling_only = filters.get_bool_or_default("dangling", true)?;
        let until = until(filters)?;
        let mut st = self.lock();
        let candidates: Vec<ImageId> = st
            .images
            .values()
            .filter(|img| {
                let refs = st.tags.refs_of(&img.id);
                let children = st.children(&img.id);
                !(refs.is_empty() && children > 0)
                    && !(dangling_only && (!refs.is_empty() || children > 0))
                    && until.is_none_or(|u| img.config.created_unix() < u)
                    && match img.config.labels() {
                        Some(labels) => filters.match_labels(labels),
                        None => !filters.contains("label"),
                    }
            })
            .map(|img| img.id.clone())
            .collect();
        let mut report = PruneReport::default();
        for id in candidates {
            if !st.images.contains_key(&id) || in_use(&id).is_some() {
                continue;
            }
            let before: u64 = st.layers.values().map(|l| l.diff_size).sum();
            let mut records = Vec::new();
            untag_all(&mut st, &id, &mut records)?;
            match self.delete_image(&mut st, &id, false, true, false, in_use, &mut records) {
                Ok(()) | Err(ImageError::DeleteConflict { .. }) => {}
                Err(e) => return Err(e),
            }
            let after: u64 = st.layers.values().map(|l| l.diff_size).sum();
            report.space_reclaimed += before - after;
            report.images_deleted.extend(records);
        }
        Ok(report)
    }
}

fn untag_all(st: &mut State, id: &ImageId, records: &mut Vec<DeleteItem>) -> Result<()> {
    let refs = st.tags.refs_of(id);
    if refs.is_empty() {
        return Ok(());
    }
    st.tags.update(|t| {
        for r in &refs {
            t.remove(r);
        }
    })?;
    records.extend(
        refs.iter()
            .map(|r| DeleteItem::Untagged(r.familiar_string())),
    );
    Ok(())
}

/// moby's `isSingleReference`: exactly one tag, or only digest references, all in the one
/// repository of that tag.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical = std::collections::BTreeSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical.insert(r.name());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical.len() == 1 && canonical.contains(&single.name())
}

fn check_conflict(st: &State, id: &ImageId, mask: u8, in_use: InUse<'_>) -> Option<Conflict> {
    let conflict = |hard: bool, used: bool, reason: String| Conflict {
        error: ImageError::DeleteConflict {
            image: id.short().to_owned(),
            hard,
            reason,
        },
        used,
    };
    if mask & CHILD != 0 && st.children(id) > 0 {
        return Some(conflict(
            true,
            false,
            "image has dependent child images".to_owned(),
        ));
    }
    let user = in_use(id);
    if mask & RUNNING != 0
        && let Some(u) = user.as_ref().filter(|u| u.running)
    {
        let reason = format!(
            "image is being used by running container {}",
            truncate_id(&u.container_id)
        );
        return Some(conflict(true, true, reason));
    }
    if mask & ACTIVE_REFERENCE != 0 && !st.tags.refs_of(id).is_empty() {
        return Some(conflict(
            false,
            false,
            "image is referenced in multiple repositories".to_owned(),
        ));
    }
    if mask & STOPPED != 0
        && let Some(u) = user.as_ref().filter(|u| !u.running)
    {
        let reason = format!(
            "image is being used by stopped container {}",
            truncate_id(&u.container_id)
        );
        return Some(conflict(false, true, reason));
    }
    None
}

/// The `until` prune filter: Unix seconds, RFC 3339, or a Go duration before now (`24h`).
fn until(filters: &Filters) -> Result<Option<i64>> {
    let values = filters.get("until");
    let Some(value) = values.first() else {
        return Ok(None);
    };
    if values.len() > 1 {
        return Err(ImageError::InvalidArgument {
            reason: "more than one until filter specified".to_owned(),
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let parsed = value
        .parse::<f64>()
        .ok()
        .map(|f| f as i64)
        .or_else(|| parse_rfc3339(value))
        .or_else(|| go_duration(value).map(|d| now - d));
    parsed.map(Some).ok_or_else(|| ImageError::InvalidArgument {
        reason: format!("failed to parse value \"{value}\" as a timestamp or duration"),
    })
}

/// Seconds in a Go duration made of `h`, `m` and `s` parts (`1h30m`).
fn go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = num.parse().ok()?;
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
            }
            _ => return None,
        }
    }
    (num.is_empty() && !s.is_empty()).then_some(total as i64)
}
