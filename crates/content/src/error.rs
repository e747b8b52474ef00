//! Errors of the content store.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};

/// Everything that can go wrong in the content store. Each variant names the digest, ingest
/// ref or path it is about.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A string was offered as a digest and is not one.
    #[error(transparent)]
    InvalidDigest(#[from] DigestError),
    /// No blob with this digest is stored.
    #[error("content {0} not found")]
    NotFound(Digest),
    /// The bytes written do not hash to the expected digest; nothing was stored.
    #[error("unexpected commit digest {actual}, expected {expected}: nothing stored")]
    DigestMismatch {
        /// What the caller said the content is.
        expected: Digest,
        /// What the bytes written hash to.
        actual: Digest,
    },
    /// The number of bytes written differs from the expected size; nothing was stored.
    #[error(
        "unexpected commit size {actual} for ingest {ingest_ref:?}, expected {expected}: nothing stored"
    )]
    SizeMismatch {
        /// The ingest ref.
        ingest_ref: String,
        /// The size the caller announced.
        expected: u64,
        /// The bytes actually written.
        actual: u64,
    },
    /// A blob is larger than a caller-imposed limit.
    #[error("content {digest} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The blob.
        digest: Digest,
        /// Its size, or a lower bound of it.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A stored blob no longer hashes to its name (disk corruption or tampering).
    #[error("content {expected} is corrupt: it hashes to {actual}")]
    Corrupt {
        /// The name of the blob.
        expected: Digest,
        /// What it hashes to.
        actual: Digest,
    },
    /// Another writer holds this ingest ref.
    #[error("ingest {0:?} is locked by another writer")]
    IngestLocked(String),
    /// An ingest ref is empty or too long.
    #[error("invalid ingest ref {0:?}: must be 1 to 256 bytes")]
    InvalidRef(String),
    /// A system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ContentError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: impl Into<io::Error>,
    ) -> Self {
        ContentError::Io {
            op,
            path: path.into(),
            source: source.into(),
        }
    }

    /// Whether this is a [`ContentError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, ContentError::NotFound(_))
    }
}
