//! Binding the API's unix socket the way dockerd does (a stale socket file is replaced, the
//! socket is mode 0660 and owned by the API group), and the other kinds of listener the API
//! is served on: TCP, and TCP with TLS (mutual when the configuration verifies clients).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixListener;

/// Binds a unix socket at `path`, replacing a stale socket file left by a daemon that died,
/// but refusing if a live server answers on it. The socket gets mode 0660 and group `gid`.
/// Must be called inside a tokio runtime.
pub fn bind_unix(path: &Path, gid: Option<u32>) -> io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{}: another daemon is listening on this socket",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    Ok(listener)
}

/// Where the API is served.
pub enum ApiListener {
    /// A unix socket from [`bind_unix`].
    Unix(UnixListener),
    /// Plain TCP (the daemon allows it on loopback only).
    Tcp(tokio::net::TcpListener),
    /// TCP with TLS; the configuration decides whether clients need certificates.
    Tls(
        tokio::net::TcpListener,
        std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    ),
}
