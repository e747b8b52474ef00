//! Terminals: the container's pty is created inside its own devpts, and the master is handed to
//! whoever listens on `--console-socket` with SCM_RIGHTS, as runc does.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::stat::Mode;

use crate::error::{Context, Result, RuntimeError};

/// Opens a new pty in the current mount namespace's `/dev/ptmx` and returns (master, slave).
/// The slave comes from TIOCGPTPEER, not from a path lookup, so an image cannot swap
/// `/dev/pts/N` for something else (CVE-2025-52565).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(|| "open /dev/ptmx".into())?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from a valid pointer.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) })
        .context(|| "unlock pty".into())?;
    // SAFETY: TIOCGPTPEER returns a new fd or -1.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    let slave = Errno::result(slave).context(|| "open pty peer".into())?;
    // SAFETY: the ioctl returned a fresh fd we now own.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// Makes `slave` the controlling terminal and stdin/stdout/stderr of this process.
pub fn become_terminal_session(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().context(|| "setsid".into())?;
    // SAFETY: TIOCSCTTY with argument 0 on a valid tty fd.
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .context(|| "set controlling terminal".into())?;
    dup_stdio(&[slave.as_raw_fd(); 3])
}

/// Installs three fds as 0, 1 and 2.
pub fn dup_stdio(fds: &[RawFd; 3]) -> Result<()> {
    for (target, fd) in fds.iter().enumerate() {
        if *fd == target as RawFd {
            // dup2 onto itself keeps FD_CLOEXEC set; clear it so the fd survives exec.
            // SAFETY: F_SETFD on a valid fd.
            unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) };
            continue;
        }
        // SAFETY: dup2 between fds this process owns.
        Errno::result(unsafe { libc::dup2(*fd, target as RawFd) })
            .context(|| format!("dup2 onto fd {target}"))?;
    }
    Ok(())
}

/// Sends `fd` over a unix socket with SCM_RIGHTS; the payload names it, as runc does.
pub fn send_fd(socket: &UnixStream, fd: &OwnedFd, name: &str) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context(|| "send pty master over the console socket".into())?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(socket: &impl AsFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context(|| "receive fd".into())?;
    for cmsg in msg.cmsgs().context(|| "read control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel installed this fd in our table for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(RuntimeError::Init {
        message: "console socket message carried no fd".into(),
        exit_code: 1,
    })
}

/// The longest socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A socket path short enough for `sun_path`. A longer one is reached through an O_PATH handle
/// on its directory (`/proc/self/fd/N/name`), so deep state directories work; the handle must
/// stay open while the path is used.
pub struct SocketPath {
    _dir: Option<OwnedFd>,
    path: std::path::PathBuf,
}

impl SocketPath {
    /// The address to bind or connect to for `path`.
    pub fn new(path: &std::path::Path) -> std::io::Result<SocketPath> {
        if path.as_os_str().len() <= MAX_SOCKET_PATH {
            return Ok(SocketPath {
                _dir: None,
                path: path.to_path_buf(),
            });
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "socket path has no file name",
            ));
        };
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        let short = std::path::Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())).join(name);
        if short.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "socket file name too long",
            ));
        }
        Ok(SocketPath {
            _dir: Some(fd),
            path: short,
        })
    }

    /// The path to hand to bind(2) or connect(2).
    pub fn as_path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Connects to the unix socket at `path`, however deep it is.
pub fn connect(path: &std::path::Path) -> std::io::Result<UnixStream> {
    let addr = SocketPath::new(path)?;
    UnixStream::connect(addr.as_path())
}

/// Sets a terminal's window size.
pub fn resize(fd: &impl AsFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct from a valid pointer.
    Errno::result(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) })
        .context(|| "set window size".into())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn pty_master_travels_over_a_socket_and_still_talks_to_the_slave() {
        let (master, slave) = open_pty().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        send_fd(&a, &master, "/dev/ptmx").unwrap();
        drop(master);
        let received = recv_fd(&b).unwrap();
        let mut slave_file = std::fs::File::from(slave);
        slave_file.write_all(b"ping\n").unwrap();
        let mut master_file = std::fs::File::from(received);
        let mut buf = [0u8; 16];
        let n = master_file.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("ping"));
        resize(&master_file, 30, 100).unwrap();
    }

    #[test]
    fn sockets_in_directories_deeper_than_sun_path_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("shim.sock");
        assert!(path.as_os_str().len() > MAX_SOCKET_PATH);
        let addr = SocketPath::new(&path).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(addr.as_path()).unwrap();
        assert!(path.exists(), "bound at the real path");
        let mut client = connect(&path).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"x");
    }
}
