//! The OCI runtime the shim drives, behind a trait so the built-in runtime can replace the
//! external binary without touching the event loop.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::SigSet;

use crate::error::ShimError;

/// How long one runtime command may take before the shim kills it and reports a failure.
/// `create` of a large bundle is the slowest case; a minute is far beyond it.
pub const RUNTIME_TIMEOUT: Duration = Duration::from_secs(60);

/// The standard streams the runtime gives a new process.
#[derive(Debug)]
pub enum ProcessIo {
    /// Pipes (or any fds): these become the process's stdin, stdout and stderr. A missing
    /// stdin means `/dev/null`.
    Pipes {
        /// The read end the process reads its input from.
        stdin: Option<OwnedFd>,
        /// The write end for its stdout.
        stdout: OwnedFd,
        /// The write end for its stderr.
        stderr: OwnedFd,
    },
    /// A pty: the runtime connects to this listening unix socket and sends the pty master
    /// with `SCM_RIGHTS` (the runc `--console-socket` contract).
    Console {
        /// The socket's path.
        socket: PathBuf,
    },
}

/// The OCI runtime operations the shim needs. Every call is synchronous; implementations
/// must not leave children behind except the container's processes.
pub trait Runtime {
    /// Creates the container from `bundle` without starting its user process, writes the
    /// init's pid to `pid_file` and returns it.
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        io: &ProcessIo,
        pid_file: &Path,
    ) -> Result<i32, ShimError>;
    /// Starts the user process of a created container.
    fn start(&self, id: &str) -> Result<(), ShimError>;
    /// Runs an extra process in the container, detached, and returns its pid.
    fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        io: &ProcessIo,
        pid_file: &Path,
    ) -> Result<i32, ShimError>;
    /// Sends `signal` to the init (or to every process of the container when `all`).
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), ShimError>;
    /// Freezes the container.
    fn pause(&self, id: &str) -> Result<(), ShimError>;
    /// Thaws the container.
    fn resume(&self, id: &str) -> Result<(), ShimError>;
    /// Removes the container's runtime state (and kills it first when `force`).
    fn delete(&self, id: &str, force: bool) -> Result<(), ShimError>;
}

/// Drives a runc-compatible binary (`runc`, `crun`, `berth runtime`).
#[derive(Debug, Clone)]
pub struct ExternalRuntime {
    /// The runtime binary.
    pub binary: PathBuf,
    /// Its state directory (`--root`).
    pub root: PathBuf,
}

/// Where the runtime's own diagnostics go: two anonymous memory files, so nothing is left on
/// disk and no reader thread is needed (a pipe could fill up, or be held open by the container).
struct Diagnostics {
    /// `--log` target, JSON lines.
    log: File,
    /// The runtime's stderr (unused by `create`/`exec` with pipes, where stderr is the
    /// container's).
    stderr: File,
}

impl Diagnostics {
    fn new() -> Result<Diagnostics, ShimError> {
        let mk = |name: &str| {
            memfd_create(name, MFdFlags::MFD_CLOEXEC)
                .map(File::from)
                .map_err(|e| ShimError::sys("memfd_create", e))
        };
        Ok(Diagnostics {
            log: mk("berth-runtime-log")?,
            stderr: mk("berth-runtime-stderr")?,
        })
    }

    /// The path the runtime opens for `--log`. Going through our pid (not `self`) lets the
    /// memfd stay close-on-exec: the runtime reopens it rather than inheriting it.
    fn log_path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.log.as_raw_fd())
    }

    fn stderr_stdio(&self) -> Result<Stdio, ShimError> {
        self.stderr
            .try_clone()
            .map(Stdio::from)
            .map_err(|e| ShimError::stream("dup stderr", e))
    }

    /// One line: the runtime's logged errors, else its stderr, else `fallback`.
    fn message(&mut self, fallback: String) -> String {
        let log = read_all(&mut self.log);
        let mut errors: Vec<String> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal" | "panic")))
            .filter_map(|v| v["msg"].as_str().map(str::to_owned))
            .collect();
        errors.dedup();
        if errors.is_empty() {
            let stderr = read_all(&mut self.stderr);
            errors = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if errors.is_empty() {
            return fallback;
        }
        one_line(&errors.join("; "))
    }
}

fn read_all(f: &mut File) -> String {
    let mut s = String::new();
    // Diagnostics are best-effort: an unreadable memfd just yields no message.
    let _ = f
        .seek(SeekFrom::Start(0))
        .and_then(|_| f.take(64 * 1024).read_to_string(&mut s));
    s
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

impl ExternalRuntime {
    /// A driver for `binary` keeping its state in `root`.
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> ExternalRuntime {
        ExternalRuntime {
            binary: binary.into(),
            root: root.into(),
        }
    }

    fn command(&self, diag: &Diagnostics) -> Command {
        let mut cmd = Command::new(&self.binary);
        // The shim blocks SIGCHLD (it reads it from a signalfd) and std does not reset the
        // mask for children. The runtime, and through it the container, would inherit it.
        // SAFETY: the closure only calls sigprocmask, which is async-signal-safe, in the child
        // between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                SigSet::empty()
                    .thread_set_mask()
                    .map_err(std::io::Error::from)
            });
        }
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(diag.log_path())
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// Runs a command whose stdio the shim does not care about.
    fn simple(&self, op: &'static str, args: &[&str]) -> Result<(), ShimError> {
        let mut diag = Diagnostics::new()?;
        let mut cmd = self.command(&diag);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(diag.stderr_stdio()?);
        run(op, cmd, &mut diag)
    }

    /// Sets the runtime's stdio for a process it starts: the process's pipes (stderr goes to
    /// the container then) or, for a console, nothing but our diagnostics.
    fn process_stdio(
        cmd: &mut Command,
        io: &ProcessIo,
        diag: &Diagnostics,
    ) -> Result<(), ShimError> {
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|e| ShimError::stream("dup stdio", e))
        };
        match io {
            ProcessIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                cmd.stdin(match stdin {
                    Some(fd) => dup(fd)?,
                    None => Stdio::null(),
                })
                .stdout(dup(stdout)?)
                .stderr(dup(stderr)?);
            }
            ProcessIo::Console { socket } => {
                cmd.arg("--console-socket")
                    .arg(socket)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(diag.stderr_stdio()?);
            }
        }
        Ok(())
    }
}

/// Spawns `cmd`, waits (bounded by [`RUNTIME_TIMEOUT`]) and turns a failure into one message.
fn run(op: &'static str, mut cmd: Command, diag: &mut Diagnostics) -> Result<(), ShimError> {
    let mut child = cmd.spawn().map_err(|e| ShimError::Runtime {
        op,
        message: format!("cannot run {:?}: {e}", cmd.get_program()),
    })?;
    // The child holds its own copies of the stdio fds; drop ours now so the container's pipes
    // see EOF when the container closes them.
    drop(cmd);
    let deadline = Instant::now() + RUNTIME_TIMEOUT;
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // Best effort: it is being abandoned either way.
                let _ = child.kill();
                let _ = child.wait();
                return Err(ShimError::Runtime {
                    op,
                    message: format!("timed out after {}s", RUNTIME_TIMEOUT.as_secs()),
                });
            }
            Ok(None) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(ShimError::stream("wait for runtime", e)),
        }
    };
    if status.success() {
        return Ok(());
    }
    Err(ShimError::Runtime {
        op,
        message: diag.message(format!("exited with {status}")),
    })
}

fn read_pid_file(op: &'static str, path: &Path) -> Result<i32, ShimError> {
    let text = std::fs::read_to_string(path).map_err(|e| ShimError::io("read", path, e))?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ShimError::Runtime {
            op,
            message: format!("bad pid file {}: {text:?}", path.display()),
        })
}

impl Runtime for ExternalRuntime {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        io: &ProcessIo,
        pid_file: &Path,
    ) -> Result<i32, ShimError> {
        let mut diag = Diagnostics::new()?;
        let mut cmd = self.command(&diag);
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        Self::process_stdio(&mut cmd, io, &diag)?;
        cmd.arg(id);
        run("create", cmd, &mut diag)?;
        read_pid_file("create", pid_file)
    }

    fn start(&self, id: &str) -> Result<(), ShimError> {
        self.simple("start", &["start", id])
    }

    fn exec(
        &self,
        id: &str,
        process: &oci_spec::runtime::Process,
        io: &ProcessIo,
        pid_file: &Path,
    ) -> Result<i32, ShimError> {
        let mut spec_path = pid_file.as_os_str().to_owned();
        spec_path.push(".process.json");
        let spec_path = PathBuf::from(spec_path);
        let json = serde_json::to_vec(process).map_err(|e| ShimError::BadRequest(e.to_string()))?;
        crate::persist::write_atomic(&spec_path, &json)?;
        let mut diag = Diagnostics::new()?;
        let mut cmd = self.command(&diag);
        cmd.arg("exec")
            .arg("--detach")
            .arg("--process")
            .arg(&spec_path)
            .arg("--pid-file")
            .arg(pid_file);
        Self::process_stdio(&mut cmd, io, &diag)?;
        cmd.arg(id);
        let r = run("exec", cmd, &mut diag);
        // The spec is only needed by the runtime call; a leftover file is harmless.
        let _ = std::fs::remove_file(&spec_path);
        r?;
        read_pid_file("exec", pid_file)
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), ShimError> {
        let sig = signal.to_string();
        if all {
            self.simple("kill", &["kill", "--all", id, &sig])
        } else {
            self.simple("kill", &["kill", id, &sig])
        }
    }

    fn pause(&self, id: &str) -> Result<(), ShimError> {
        self.simple("pause", &["pause", id])
    }

    fn resume(&self, id: &str) -> Result<(), ShimError> {
        self.simple("resume", &["resume", id])
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), ShimError> {
        if force {
            self.simple("delete", &["delete", "--force", id])
        } else {
            self.simple("delete", &["delete", id])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n  b\r\n\nc"), "a; b; c");
    }
}
