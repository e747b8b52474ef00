//! The one error type of this crate. Messages keep Docker's wording where Docker has one,
//! because clients and scripts match on them; the engine turns them into 400s through
//! [`HasCategory`].

use std::io;

use berth_errdefs::{Category, HasCategory};

/// Why a container configuration could not be turned into an OCI spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The configuration is invalid; the message is Docker's where Docker has one.
    #[error("{0}")]
    Invalid(String),
    /// `--cap-add`/`--cap-drop` names a capability that does not exist (name after
    /// normalisation, as Docker prints it: `unknown capability: "CAP_FOO"`).
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    /// A `-v` / `Binds` entry is malformed.
    #[error("invalid volume specification: '{0}'")]
    InvalidVolumeSpec(String),
    /// A `-v` / `Binds` mode field holds an unknown or repeated option.
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// A `--mount` / `Mounts` entry (or a bind/tmpfs target) is invalid.
    #[error("invalid mount config for type {kind:?}: {reason}")]
    InvalidMountConfig {
        /// `bind`, `volume` or `tmpfs`.
        kind: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two mounts want the same destination.
    #[error("Duplicate mount point: {0}")]
    DuplicateMountPoint(String),
    /// `--user NAME` names no entry of the container's `/etc/passwd`.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UserNotFound(String),
    /// `--user …:GROUP` or `--group-add GROUP` names no entry of the container's `/etc/group`.
    #[error("unable to find group {0}: no matching entries in group file")]
    GroupNotFound(String),
    /// A numeric uid or gid that is negative or too large; never mapped to root.
    #[error("invalid user/group id {0:?}: uids and gids must be in range 0-2147483647")]
    IdOutOfRange(String),
    /// A seccomp profile given with `--security-opt seccomp=…` could not be used.
    #[error("Decoding seccomp profile failed: {0}")]
    SeccompProfile(String),
    /// A `--device` could not be looked up on the host.
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    Device {
        /// The host path given.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// Reading a file of the container's root filesystem (`/etc/passwd`, `/etc/group`) failed
    /// for a reason other than its absence.
    #[error("reading {path} in the container's root filesystem: {source}")]
    Rootfs {
        /// The path inside the container.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The volume callback refused or failed to provide a volume.
    #[error("{message}")]
    Volume {
        /// The category the volume layer gave.
        category: Category,
        /// Its message.
        message: String,
    },
}

impl SpecError {
    /// Shorthand for [`SpecError::Invalid`].
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        SpecError::Invalid(message.into())
    }

    /// Shorthand for [`SpecError::InvalidMountConfig`].
    pub(crate) fn mount_config(kind: &str, reason: impl Into<String>) -> Self {
        SpecError::InvalidMountConfig {
            kind: kind.to_owned(),
            reason: reason.into(),
        }
    }
}

impl HasCategory for SpecError {
    fn category(&self) -> Category {
        match self {
            SpecError::Rootfs { .. } => Category::System,
            SpecError::Volume { category, .. } => *category,
            _ => Category::InvalidParameter,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = SpecError> = std::result::Result<T, E>;
