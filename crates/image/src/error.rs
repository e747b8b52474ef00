//! The image store's one error type. Messages a Docker client shows keep Docker's words
//! (`No such image: x:latest`, the `conflict: …` lines of `docker rmi`), because scripts grep
//! them.

use std::io;
use std::path::PathBuf;

use berth_content::ContentError;
use berth_errdefs::{Category, HasCategory};
use berth_reference::{FilterError, ReferenceError};
use berth_snapshot::{ApplyError, MountError, SnapshotError};

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image answers to this reference or id (prefix). `reference` is what Docker prints:
    /// the familiar form with the default tag added (`busybox:latest`), or the id as given.
    #[error("No such image: {reference}")]
    NoSuchImage {
        /// The reference as Docker shows it.
        reference: String,
    },
    /// The text is not a valid image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A tag that cannot be created (a digest reference, a tag in an archive without a tag).
    #[error("{reason}")]
    InvalidTag {
        /// Docker's wording of the problem.
        reason: String,
    },
    /// `docker rmi <name>` of the last reference to an image a container uses.
    #[error(
        "conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}"
    )]
    ReferenceInUse {
        /// The reference as the user typed it.
        reference: String,
        /// The container's short id.
        container: String,
        /// The image's short id.
        image: String,
    },
    /// `docker rmi` refused: `hard` conflicts cannot be forced.
    #[error(
        "conflict: unable to delete {image} ({}) - {reason}",
        if *hard { "cannot be forced" } else { "must be forced" }
    )]
    DeleteConflict {
        /// The image's short id.
        image: String,
        /// Whether `force` could not override it.
        hard: bool,
        /// Docker's explanation (`image is referenced in multiple repositories`, …).
        reason: String,
    },
    /// Another argument that cannot be used (a `--change` instruction, an `until` value).
    #[error("{reason}")]
    InvalidArgument {
        /// Docker's wording of the problem.
        reason: String,
    },
    /// A filter the endpoint does not take, or a value it cannot use.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A `docker load` archive (or `docker import` tarball) is malformed or hostile; nothing
    /// from it was registered.
    #[error("invalid archive: {reason}")]
    InvalidArchive {
        /// What is wrong with it.
        reason: String,
    },
    /// A layer's content does not hash to the diff id its image config promises.
    #[error(
        "layer {index} does not match its image config: expected diff id {expected}, got {actual}"
    )]
    LayerMismatch {
        /// Position of the layer in the image (0 = bottom).
        index: usize,
        /// The diff id in the config.
        expected: String,
        /// What the layer's uncompressed bytes hash to.
        actual: String,
    },
    /// A layer tar was refused or could not be unpacked.
    #[error("unpack layer: {0}")]
    Apply(#[from] ApplyError),
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// The snapshotter failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Mounting a root filesystem failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// A stored record is unreadable (disk corruption or a foreign file).
    #[error("corrupt image store record {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    pub(crate) fn archive(reason: impl Into<String>) -> Self {
        ImageError::InvalidArchive {
            reason: reason.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }
}

impl HasCategory for ImageError {
    fn category(&self) -> Category {
        match self {
            ImageError::NoSuchImage { .. } => Category::NotFound,
            ImageError::Reference(e) => e.category(),
            ImageError::Filter(e) => e.category(),
            ImageError::InvalidTag { .. }
            | ImageError::InvalidArgument { .. }
            | ImageError::InvalidArchive { .. }
            | ImageError::LayerMismatch { .. } => Category::InvalidParameter,
            ImageError::ReferenceInUse { .. } | ImageError::DeleteConflict { .. } => {
                Category::Conflict
            }
            ImageError::Apply(ApplyError::Io { .. }) => Category::System,
            ImageError::Apply(_) => Category::InvalidParameter,
            ImageError::Content(ContentError::DigestMismatch { .. })
            | ImageError::Content(ContentError::SizeMismatch { .. })
            | ImageError::Content(ContentError::TooLarge { .. })
            | ImageError::Content(ContentError::InvalidDigest(_)) => Category::InvalidParameter,
            ImageError::Content(ContentError::Corrupt { .. }) | ImageError::Corrupt { .. } => {
                Category::DataLoss
            }
            ImageError::Content(e) if e.is_not_found() => Category::NotFound,
            ImageError::Content(_)
            | ImageError::Snapshot(_)
            | ImageError::Mount(_)
            | ImageError::Io { .. } => Category::System,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
