//! Unix sockets the shim listens on: filesystem sockets only (an abstract socket is reachable
//! from any container sharing the host network namespace, CVE-2020-15257), mode 0600, and
//! every peer checked with `SO_PEERCRED`.

use std::io::{ErrorKind, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, getsockopt, recvmsg, sockopt};
use nix::sys::stat::{Mode, umask};

use crate::error::ShimError;

pub use berth_runtime::tty::SocketPath;

/// Connects to the unix socket at `path`, however deep it is.
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let addr = SocketPath::new(path)?;
    UnixStream::connect(addr.as_path())
}

/// Binds a listening socket at `path` with mode 0600, replacing a stale socket file.
/// Fails when another process still serves `path` (a live shim for the same state dir).
pub fn bind_private(path: &Path) -> Result<UnixListener, ShimError> {
    let addr = SocketPath::new(path).map_err(|e| ShimError::io("socket path", path, e))?;
    if connect(path).is_ok() {
        return Err(ShimError::Conflict(format!(
            "{} is in use by another process",
            path.display()
        )));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(ShimError::io("remove stale socket", path, e)),
    }
    // The umask closes the window between bind and chmod; the shim is single-threaded, so
    // changing it briefly affects nothing else.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(addr.as_path());
    umask(old);
    let listener = bound.map_err(|e| ShimError::io("bind", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ShimError::io("chmod", path, e))?;
    Ok(listener)
}

/// Whether the peer of `stream` may talk to the shim: root or the shim's own user.
pub fn peer_allowed(stream: &UnixStream) -> bool {
    match getsockopt(stream, sockopt::PeerCredentials) {
        Ok(cred) => cred.uid() == 0 || cred.uid() == nix::unistd::geteuid().as_raw(),
        Err(_) => false,
    }
}

/// Waits up to `timeout` for `fd` to become readable.
pub fn wait_readable(fd: &impl AsFd, timeout: Duration) -> Result<bool, ShimError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::Error::EINTR) if !left.is_zero() => continue,
            Err(e) => return Err(ShimError::sys("poll", e)),
        }
    }
}

/// The listening socket a runtime sends a new process's pty master to (`--console-socket`).
/// The socket file is removed when this is dropped.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens at `path`.
    pub fn bind(path: PathBuf) -> Result<ConsoleSocket, ShimError> {
        let listener = bind_private(&path)?;
        Ok(ConsoleSocket { listener, path })
    }

    /// The socket's path, for the runtime's command line.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and receives the pty master. The runtime has sent it
    /// before its `create`/`exec` returned, so this only waits for a slow kernel or a broken
    /// runtime, bounded by `timeout`.
    pub fn receive(&self, timeout: Duration) -> Result<OwnedFd, ShimError> {
        let no_master = |why: &str| ShimError::Runtime {
            op: "console",
            message: format!("no pty master received on {}: {why}", self.path.display()),
        };
        if !wait_readable(&self.listener, timeout)? {
            return Err(no_master("timed out"));
        }
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| ShimError::io("accept", &self.path, e))?;
        if !peer_allowed(&stream) {
            return Err(no_master("peer not allowed"));
        }
        if !wait_readable(&stream, timeout)? {
            return Err(no_master("timed out"));
        }
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| ShimError::sys("recvmsg console", e))?;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for cmsg in msg
            .cmsgs()
            .map_err(|e| ShimError::sys("recvmsg console", e))?
        {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                for fd in raw {
                    // SAFETY: SCM_RIGHTS just installed `fd` in our table; nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // Extra descriptors (none expected) are closed when `fds` drops.
        if fds.is_empty() {
            return Err(no_master("message carried no file descriptor"));
        }
        Ok(fds.swap_remove(0))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        // Best effort: a leftover socket file is replaced on the next bind.
        let _ = std::fs::remove_file(&self.path);
    }
}

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// Sets the window size of the terminal behind `master`.
pub fn set_winsize(master: &impl AsFd, width: u16, height: u16) -> Result<(), ShimError> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for the call.
    unsafe { tiocswinsz(master.as_fd().as_raw_fd(), &ws) }
        .map(drop)
        .map_err(|e| ShimError::sys("TIOCSWINSZ", e))
}
