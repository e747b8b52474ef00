//! Which daemon to talk to: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default.

use std::path::PathBuf;

use crate::ClientError;

/// The daemon's socket when nothing else is said.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// A daemon address: only unix sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// As the user wrote it, normalised to `unix://…` (used in messages).
    pub url: String,
    pub socket: PathBuf,
}

impl Host {
    /// Parses `unix:///path` or a bare absolute path.
    pub fn parse(s: &str) -> Result<Host, ClientError> {
        let path = match s.strip_prefix("unix://") {
            Some(p) => p,
            None if s.starts_with('/') => s,
            None => return Err(ClientError::InvalidHost(s.to_owned())),
        };
        if path.is_empty() || path.contains('\0') {
            return Err(ClientError::InvalidHost(s.to_owned()));
        }
        Ok(Host {
            url: format!("unix://{path}"),
            socket: PathBuf::from(path),
        })
    }

    /// The host from a `-H` flag, else the environment, else [`DEFAULT_HOST`].
    pub fn resolve(flag: Option<&str>) -> Result<Host, ClientError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let chosen = flag
            .map(str::to_owned)
            .or_else(|| env("BERTH_HOST"))
            .or_else(|| env("DOCKER_HOST"))
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        Host::parse(&chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_urls_and_paths() {
        let h = Host::parse("unix:///run/x.sock").expect("parse");
        assert_eq!(h.socket, PathBuf::from("/run/x.sock"));
        assert_eq!(h.url, "unix:///run/x.sock");
        assert_eq!(Host::parse("/a/b").expect("path").url, "unix:///a/b");
    }

    #[test]
    fn other_schemes_and_garbage_are_refused() {
        for bad in [
            "tcp://127.0.0.1:2375",
            "unix://",
            "relative.sock",
            "",
            "unix:///a\0b",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_flag_wins() {
        let h = Host::resolve(Some("unix:///flag.sock")).expect("resolve");
        assert_eq!(h.socket, PathBuf::from("/flag.sock"));
    }
}
