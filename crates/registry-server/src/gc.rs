//! Offline garbage collection: mark every blob a manifest revision of any repository
//! references (the revision itself, its config and layers), then sweep the rest from the
//! content store, along with repository links to swept blobs. It takes the root's lock
//! exclusively, so it refuses to run while a server is serving the root. Upload sessions
//! older than [`STALE_UPLOAD_AGE`] are purged too, with their partial data.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_content::Digest;

use crate::manifest::{self, MAX_MANIFEST_SIZE, Reference};
use crate::storage::{Links, open_staging, open_store};
use crate::{OpenError, Registry, open_lock};

/// Upload sessions untouched for this long are abandoned (distribution purges after a week).
pub const STALE_UPLOAD_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Default)]
pub struct Report {
    /// Blobs swept, sorted.
    pub removed: Vec<Digest>,
    /// Their total size.
    pub bytes: u64,
    /// Blobs kept.
    pub kept: usize,
    /// Stale upload sessions purged, as `<repository>/<id>`.
    pub stale_uploads: Vec<String>,
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
    let staging = open_staging(root)?;
    report.stale_uploads = purge_stale_uploads(&staging, &links, dry_run)?;
    if !dry_run {
        // Served-store ingests belong to single requests (monolithic uploads, manifests);
        // with no server running, any left are from a crash.
        store.cleanup_ingests(Duration::ZERO)?;
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

fn purge_stale_uploads(
    staging: &berth_content::ContentStore,
    links: &Links,
    dry_run: bool,
) -> Result<Vec<String>, GcError> {
    let cutoff = SystemTime::now().checked_sub(STALE_UPLOAD_AGE);
    let mut purged = Vec::new();
    for name in links.all_repositories()? {
        for (id, started) in links.uploads(&name)? {
            if cutoff.is_none_or(|c| started > c) {
                continue;
            }
            if !dry_run {
                staging.abort(&Registry::ingest_ref(&id))?;
                links.remove_upload(&name, &id)?;
            }
            purged.push(format!("{name}/{id}"));
        }
    }
    if !dry_run {
        // Leftovers of a crash between verifying a staged blob and promoting it.
        for digest in staging.list()? {
            staging.delete(&digest)?;
        }
        staging.cleanup_ingests(STALE_UPLOAD_AGE)?;
    }
    Ok(purged)
}
