//! berth's OCI runtime: turns an OCI bundle (`config.json` + root filesystem) into a running
//! container the way runc and crun do — namespaces, mounts, pivot_root, cgroups, capabilities,
//! seccomp, rlimits — without re-executing itself for the container's init.
//!
//! This crate must stay free of async code and threads: it forks, and forking is only sound in
//! a single-threaded process. It imports nothing above it (no shim, no engine).

pub mod container;
pub mod error;
pub mod features;
pub mod foreground;
pub mod hooks;
mod init;
pub mod namespaces;
pub mod process;
pub mod protect;
pub mod rootfs;
pub mod seccomp;
pub mod state;
mod sync;
pub mod sysctl;
pub mod tty;

pub use container::{Container, CreateOptions, ExecOptions, Io};
pub use error::{Result, RuntimeError};
pub use state::Status;
