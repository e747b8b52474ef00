//! The one error type of the shim.

use std::path::PathBuf;

/// Everything that can go wrong in the shim, its runtime driver and its client.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A command-line flag was missing, unknown or malformed.
    #[error("invalid arguments: {0}")]
    Usage(String),
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys {
        /// What the shim was doing.
        context: String,
        /// The errno.
        source: nix::Error,
    },
    /// A file operation failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What the shim was doing.
        context: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A socket or pipe operation failed (no single path to name).
    #[error("{context}: {source}")]
    Stream {
        /// What the shim was doing.
        context: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The OCI runtime failed; the message is the runtime's own error.
    #[error("runtime {op} failed: {message}")]
    Runtime {
        /// The runtime command (`create`, `start`, …).
        op: &'static str,
        /// The runtime's error message, on one line.
        message: String,
    },
    /// A request was well-formed but not allowed in the current state.
    #[error("{0}")]
    Conflict(String),
    /// A request or response could not be understood.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A named exec process does not exist.
    #[error("no such exec: {0}")]
    NoSuchExec(String),
    /// The shim answered a client request with an error.
    #[error("shim: {0}")]
    Remote(String),
}

impl ShimError {
    /// Wraps an errno with a description of what failed.
    pub(crate) fn sys(context: impl Into<String>, source: nix::Error) -> ShimError {
        ShimError::Sys {
            context: context.into(),
            source,
        }
    }

    /// Wraps an I/O error on `path`.
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> ShimError {
        ShimError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// Wraps an I/O error on a stream.
    pub(crate) fn stream(context: &'static str, source: std::io::Error) -> ShimError {
        ShimError::Stream { context, source }
    }
}
