//! berth's own OCI runtime, linked into the shim: the same operations as
//! [`crate::runtime::ExternalRuntime`], without an exec of a runtime binary per operation.
//!
//! Container creation forks from the shim, which is single-threaded, as the runtime requires;
//! the shim is the child subreaper, so the container's init becomes its child.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_runtime::container::{self, CreateOptions, ExecOptions, Io};
use nix::sys::signal::Signal;

use crate::error::ShimError;
use crate::runtime::{ProcessIo, Runtime};

/// The built-in runtime, keeping its state under `root` like `berth runtime --root`.
#[derive(Debug, Clone)]
pub struct BuiltinRuntime {
    /// The runtime's state directory.
    pub root: PathBuf,
}

impl BuiltinRuntime {
    /// A built-in runtime with its state under `root`.
    pub fn new(root: impl Into<PathBuf>) -> BuiltinRuntime {
        BuiltinRuntime { root: root.into() }
    }
}

fn failed(op: &'static str) -> impl Fn(berth_runtime::RuntimeError) -> ShimError {
    move |e| ShimError::Runtime {
        op,
        message: e.to_string().replace(['\n', '\r'], " "),
    }
}

fn io_for(op: &'static str, io: &ProcessIo) -> Result<Io, ShimError> {
    let dup = |fd: &OwnedFd| {
        fd.try_clone().map_err(|e| ShimError::Runtime {
            op,
            message: format!("dup stdio: {e}"),
        })
    };
    Ok(match io {
        ProcessIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            let stdin = match stdin {
                Some(fd) => dup(fd)?,
                None => std::fs::File::open("/dev/null")
                    .map(OwnedFd::from)
                    .map_err(|e| ShimError::Runtime {
                        op,
                        message: format!("open /dev/null: {e}"),
                    })?,
            };
            Io::Fds([stdin, dup(stdout)?, dup(stderr)?])
        }
        ProcessIo::Console { socket } => Io::ConsoleSocket(socket.clone()),
    })
}

impl Runtime for BuiltinRuntime {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        io: &ProcessIo,
        pid_file: &Path,
    ) -> Result<i32, ShimError> {
        let opts = CreateOptions {
            root: self.root.clone(),
            id: id.to_owned(),
            bundle: bundle.to_path_buf(),
            io: io_for("create", io)?,
            pid_file: Some(pid_file.to_path_buf()),
            no_pivot: false,
            preserve_fds: 0,
        };
        container::create(opts)
            .map(|(pid, _warnings)| pid)
            .map_err(failed("create"))
    }

    fn start(&self, id: &str) -> Result<(), ShimError> {
        // poststart hook failures are warnings; the shim has no one to show them to.
        container::start(&self.root, id)
            .map(drop)
            .map_err(failed("start"))
    }

    fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        io: &ProcessIo,
        pid_file: &Path,
    ) -> Result<i32, ShimError> {
        let opts = ExecOptions {
            root: self.root.clone(),
            id: id.to_owned(),
            process: process.clone(),
            io: io_for("exec", io)?,
            pid_file: Some(pid_file.to_path_buf()),
            preserve_fds: 0,
        };
        container::exec(opts)
            .map(|(pid, _warnings)| pid)
            .map_err(failed("exec"))
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), ShimError> {
        let signal = Signal::try_from(signal)
            .map_err(|_| ShimError::BadRequest(format!("invalid signal {signal}")))?;
        container::kill(&self.root, id, signal, all).map_err(failed("kill"))
    }

    fn pause(&self, id: &str) -> Result<(), ShimError> {
        container::pause(&self.root, id).map_err(failed("pause"))
    }

    fn resume(&self, id: &str) -> Result<(), ShimError> {
        container::resume(&self.root, id).map_err(failed("resume"))
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), ShimError> {
        container::delete(&self.root, id, force)
            .map(drop)
            .map_err(failed("delete"))
    }
}
