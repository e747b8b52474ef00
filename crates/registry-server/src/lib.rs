//! berth's registry server: the OCI distribution spec (`/v2/…`) over axum, with blobs in
//! berth's content store and per-repository links on disk (`storage`).
//!
//! - Pull: manifests and blobs by tag or digest, `HEAD`, `Range` reads.
//! - Push: monolithic, chunked (`PATCH` with `Content-Range`) and streamed uploads,
//!   cross-repository mounts; every blob is verified against its digest before it becomes
//!   visible, and every manifest against its media type, size limit and referenced blobs.
//! - Discovery: tags list and `_catalog` with `n`/`last` pagination, referrers API.
//! - Management: deletes (with `delete_enabled`), and [`gc::collect`] offline.
//! - Auth: htpasswd (bcrypt) Basic auth; HTTPS with a PEM certificate and key ([`tls`]).
//!
//! Layer 4: it imports `berth-content` and `berth-reference`, never the engine.

pub mod auth;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod names;
mod routes;
pub mod storage;
pub mod tls;
mod upload;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use berth_content::{ContentStore, Writer};

pub use auth::Htpasswd;
pub use error::{Code, RegistryError};

/// How a registry behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allow `DELETE` of manifests, tags and blob links (off: 405 `UNSUPPORTED`).
    pub delete_enabled: bool,
    /// Require Basic auth against these users.
    pub htpasswd: Option<Arc<Htpasswd>>,
}

/// A registry rooted at one directory: the state every request handler shares.
#[derive(Debug)]
pub struct Registry {
    store: ContentStore,
    /// Where upload sessions write; see [`storage::open_staging`].
    staging: ContentStore,
    links: storage::Links,
    options: Options,
    /// Open upload writers by session id, kept between `PATCH`es so that a chunk does not
    /// re-hash what came before; a session missing here is reopened from its ingest.
    sessions: Mutex<HashMap<String, Writer>>,
    /// Held shared while serving, so that `gc` (which takes it exclusively) never sweeps
    /// under a live push.
    _lock: File,
}

/// Why a registry root cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The content store failed to open.
    #[error(transparent)]
    Content(#[from] berth_content::ContentError),
    /// The lock file failed.
    #[error("registry root {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A server or `gc` holds the root.
    #[error("registry root {0} is in use (by a server or a garbage collection)")]
    Locked(PathBuf),
}

impl Registry {
    /// Opens (creating) a registry root.
    pub fn open(root: &Path, options: Options) -> Result<Arc<Self>, OpenError> {
        let store = storage::open_store(root)?;
        let staging = storage::open_staging(root)?;
        let lock = open_lock(root)?;
        if lock.try_lock_shared().is_err() {
            return Err(OpenError::Locked(root.to_owned()));
        }
        Ok(Arc::new(Registry {
            store,
            staging,
            links: storage::Links::new(root),
            options,
            sessions: Mutex::new(HashMap::new()),
            _lock: lock,
        }))
    }

    /// The axum router serving `/v2/`.
    pub fn router(self: &Arc<Self>) -> Router {
        routes::router(Arc::clone(self))
    }

    fn ingest_ref(upload_id: &str) -> String {
        format!("upload-{upload_id}")
    }
}

pub(crate) fn open_lock(root: &Path) -> Result<File, OpenError> {
    let path = root.join("registry.lock");
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| OpenError::Io { path, source })
}

/// Serves the registry on a bound listener until the future is dropped or fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
) -> std::io::Result<()> {
    axum::serve(listener, registry.router()).await
}
