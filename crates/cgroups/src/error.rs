//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong managing a cgroup. Every variant that touches the filesystem
/// names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup hierarchy (v1 controller or cgroup2) is mounted.
    #[error("no cgroup hierarchy is mounted (looked in {path})")]
    NoHierarchy {
        /// The mount table that was searched.
        path: PathBuf,
    },

    /// The cgroup path given to [`crate::Cgroup::new`] is unusable.
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A requested resource value is out of range or malformed; nothing was written.
    #[error("invalid {setting}: {reason}")]
    InvalidResource {
        /// The OCI setting, e.g. `cpu.period`.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A setting was requested that this hierarchy cannot express at all.
    #[error("{setting} is not supported on {hierarchy}")]
    Unsupported {
        /// The OCI setting, e.g. `memory.swappiness`.
        setting: String,
        /// Which kind of hierarchy, e.g. `cgroup v2`.
        hierarchy: &'static str,
    },

    /// A controller that a requested setting needs is not mounted or not enabled.
    #[error("the {controller} cgroup controller is not available (needed for {setting})")]
    ControllerMissing {
        /// The controller, e.g. `hugetlb`.
        controller: String,
        /// The OCI setting that needed it.
        setting: String,
    },

    /// A requested setting's file does not exist: the kernel lacks the feature (for example
    /// swap accounting) or the controller is not enabled for this cgroup.
    #[error(
        "{setting} is not available: {path} does not exist (kernel feature or controller missing)"
    )]
    MissingFile {
        /// The OCI setting that was requested.
        setting: String,
        /// The interface file that is missing.
        path: PathBuf,
    },

    /// The kernel refused a memory limit below what the cgroup already uses.
    #[error(
        "cannot set memory limit to {limit} bytes in {path}: current usage is {usage} bytes (peak {peak})"
    )]
    MemoryBelowUsage {
        /// The directory of the memory cgroup.
        path: PathBuf,
        /// The limit that was refused.
        limit: i64,
        /// Current usage in bytes.
        usage: u64,
        /// Peak usage in bytes.
        peak: u64,
    },

    /// Reading an interface file or directory failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Writing a value to an interface file failed.
    #[error("writing {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The value that the kernel refused.
        value: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Creating a cgroup directory failed.
    #[error("creating {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Removing a cgroup directory failed (after bounded retries on EBUSY).
    #[error("removing {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// An interface file did not have the expected format.
    #[error("parsing {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was unexpected.
        reason: String,
    },

    /// The cgroup did not reach the frozen state within the time bound.
    #[error("{path}: cgroup did not freeze within {millis} ms")]
    FreezeTimeout {
        /// The freezer file that was polled.
        path: PathBuf,
        /// How long we waited.
        millis: u128,
    },

    /// A bpf(2) call for the cgroup v2 device filter failed.
    #[error("bpf {op} for {path}: {source}{log}")]
    Bpf {
        /// The bpf command, e.g. `BPF_PROG_LOAD`.
        op: &'static str,
        /// The cgroup directory the program is for.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
        /// The verifier log (prefixed with a newline), empty when there is none.
        log: String,
    },
}
