//! Offline garbage collection: mark every blob a manifest revision of any repository
//! references (the revision itself, its config and layers), then sweep the rest from the
//! content store, along with repository links to swept blobs. It takes the root's lock
//! exclusively, so it refuses to run while a server is serving the root.

use std::collections::BTreeSet;
use std::path::Path;

use berth_content::Digest;

use crate::manifest::{self, MAX_MANIFEST_SIZE, Reference};
use crate::storage::{Links, open_store};
use crate::{OpenError, open_lock};

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Default)]
pub struct Report {
    /// Blobs swept, sorted.
    pub removed: Vec<Digest>,
    /// Their total size.
    pub bytes: u64,
    /// Blobs kept.
    pub kept: usize,
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The root could not be opened or is in use.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] berth_content::ContentError),
    /// Reading the repository links failed.
    #[error("registry links: {0}")]
    Io(#[from] std::io::Error),
}

/// Collects garbage under `root`; with `dry_run`, only reports.
pub fn collect(root: &Path, dry_run: bool) -> Result<Report, GcError> {
    let lock = open_lock(root)?;
    if lock.try_lock().is_err() {
        return Err(OpenError::Locked(root.to_owned()).into());
    }
    let store = open_store(root)?;
    let links = Links::new(root);
    let marked = mark(&store, &links)?;
    let mut report = Report::default();
    for digest in store.list()? {
        if marked.contains(&digest) {
            report.kept += 1;
            continue;
        }
        report.bytes += store.info(&digest).map(|i| i.size).unwrap_or(0);
        if !dry_run {
            store.delete(&digest)?;
        }
        report.removed.push(digest);
    }
    if !dry_run {
        for name in links.repositories()? {
            for digest in &report.removed {
                links.unlink_blob(&name, digest)?;
            }
        }
    }
    Ok(report)
}

fn mark(store: &berth_content::ContentStore, links: &Links) -> Result<BTreeSet<Digest>, GcError> {
    let mut marked = BTreeSet::new();
    for name in links.repositories()? {
        for revision in links.revisions(&name)? {
            marked.insert(revision.clone());
            let Ok(body) = store.read_all(&revision, MAX_MANIFEST_SIZE as u64) else {
                continue; // a missing or corrupt manifest references nothing we can know
            };
            let Ok(parsed) = manifest::parse(&body, None) else {
                continue;
            };
            for reference in parsed.references {
                let (Reference::Blob(d) | Reference::Manifest(d)) = reference;
                marked.insert(d);
            }
        }
    }
    Ok(marked)
}
