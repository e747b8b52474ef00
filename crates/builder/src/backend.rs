//! What the builder needs from the layer above it: running a RUN step's command in a
//! container. The engine implements [`Backend`] with its containers service; the builder
//! itself never starts a process.

use std::path::PathBuf;

use berth_reference::ImageId;

use crate::error::Result;

/// The container of one RUN step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The image the step runs on (the previous step's).
    pub image: ImageId,
    /// The full command (`["/bin/sh", "-c", "make"]`); no entrypoint applies.
    pub cmd: Vec<String>,
    /// `KEY=value`: the stage's ENV, then ARG values.
    pub env: Vec<String>,
    /// `USER`.
    pub user: String,
    /// `WORKDIR`.
    pub working_dir: String,
    /// The build's network mode (`default`, `host`, `none`).
    pub network_mode: String,
    /// `RUN --mount=…`, resolved to host paths.
    pub mounts: Vec<RunMount>,
}

/// One `RUN --mount`, as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// A host directory or file bound in (`None`: an empty tmpfs).
    pub source: Option<PathBuf>,
    /// Where, in the container.
    pub target: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// Output of a RUN step's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What an `ADD <url>` download gave besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The `Last-Modified` time (seconds since the epoch), the file's mtime.
    pub last_modified: Option<i64>,
    /// A file name from `Content-Disposition`, preferred over the URL's last segment.
    pub filename: Option<String>,
}

/// Runs build containers, and reaches the network for the builder.
pub trait Backend: Send + Sync {
    /// Creates (does not start) the container for `spec`; returns its id.
    fn create(&self, spec: &RunSpec) -> Result<String>;
    /// Starts the container, hands its output to `output` as it comes, waits for the exit
    /// and returns the exit code.
    fn run(&self, id: &str, output: &mut dyn FnMut(OutputStream, &[u8])) -> Result<i64>;
    /// The directory holding the container's file-system changes (its overlay upper
    /// directory), read after it exited; mount points the image did not have (the
    /// runtime's, and `mount_points`, the step's `--mount` targets) are removed from it.
    fn changes(&self, id: &str, mount_points: &[String]) -> Result<PathBuf>;
    /// Removes the container and its file system.
    fn remove(&self, id: &str) -> Result<()>;
    /// Downloads `url` (http or https) into `out`, at most `max` bytes; a status other
    /// than 2xx is an error with Docker's words.
    fn fetch(&self, url: &str, max: u64, out: &mut dyn std::io::Write) -> Result<Fetched> {
        let _ = (max, out);
        Err(crate::error::BuildError::Invalid(format!(
            "this builder cannot download {url}"
        )))
    }
    /// Pulls `reference` (a `FROM` image missing locally, or `--pull`), reporting
    /// progress lines; returns the image id.
    fn pull(&self, reference: &str, output: &mut dyn FnMut(String)) -> Result<ImageId> {
        let _ = output;
        Err(crate::error::BuildError::NotFound(format!(
            "pull access denied for {reference}, repository does not exist or may require 'docker login'"
        )))
    }
}
