//! The runtime's error type. Each variant names the object it is about, so the one-line message
//! the command line prints is enough to act on.

use std::path::PathBuf;

/// Everything the runtime can fail at.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '-' and '.', not starting with '.' or '-'"
    )]
    InvalidId(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container with id {0:?} already exists")]
    Exists(String),
    #[error("container {id:?} is {status}: {action} needs it to be {wanted}")]
    WrongState {
        id: String,
        status: String,
        action: &'static str,
        wanted: &'static str,
    },
    #[error("invalid config {path}: {message}")]
    InvalidConfig { path: PathBuf, message: String },
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    #[error("cgroups: {0}")]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error("seccomp: {0}")]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// The container's init (or an exec'd process) failed before running the user's program.
    /// `exit_code` is what `run` exits with: 127 for a missing executable, 126 when it cannot be
    /// executed, 1 otherwise — the codes Docker reports for the same failures.
    #[error("{message}")]
    Init { message: String, exit_code: i32 },
    #[error("hook {path} ({phase}): {message}")]
    Hook {
        phase: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl RuntimeError {
    /// The exit status the command line should use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Init { exit_code, .. } => *exit_code,
            _ => 1,
        }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Adds a description of what was being done to an I/O or system error.
pub trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| RuntimeError::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| RuntimeError::Sys {
            context: context(),
            source,
        })
    }
}
