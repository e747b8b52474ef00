//! The builder's one error type. Messages a docker client shows keep Docker's words
//! (`COPY failed: …`, `The command '…' returned a non-zero code: N`).

use berth_errdefs::{Category, HasCategory};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile is malformed or an expansion failed.
    #[error("{0}")]
    Parse(String),
    /// A request or Dockerfile value is not acceptable (`--target` unknown, bad `--chown`, …).
    #[error("{0}")]
    Invalid(String),
    /// A source of COPY/ADD is missing, excluded, or leaves the build context.
    #[error("{0}")]
    Source(String),
    /// The build context tar is malformed or too large.
    #[error("{0}")]
    Context(String),
    /// A base image is neither in the local store nor pullable.
    #[error("{0}")]
    NotFound(String),
    /// A RUN command exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as Docker prints it (`/bin/sh -c false`).
        command: String,
        /// Its exit code (the docker CLI exits with it).
        code: i64,
    },
    /// The backend (the engine) could not run a step's container.
    #[error("{0}")]
    Backend(String),
    /// Something in the image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    /// The exit code the docker CLI should exit with (`errorDetail.code`).
    pub fn code(&self) -> i64 {
        match self {
            BuildError::RunFailed { code, .. } => *code,
            _ => 1,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<std::path::Path>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.as_ref().display().to_string();
        move |source| BuildError::Io { op, path, source }
    }
}

impl HasCategory for BuildError {
    fn category(&self) -> Category {
        match self {
            BuildError::Parse(_)
            | BuildError::Invalid(_)
            | BuildError::Source(_)
            | BuildError::Context(_)
            | BuildError::RunFailed { .. } => Category::InvalidParameter,
            BuildError::NotFound(_) => Category::NotFound,
            BuildError::Image(e) => e.category(),
            BuildError::Backend(_) | BuildError::Io { .. } => Category::System,
        }
    }
}

/// The builder's result type.
pub type Result<T> = std::result::Result<T, BuildError>;
