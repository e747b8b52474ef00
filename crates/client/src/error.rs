//! The client's errors: transport failures and the daemon's own error answers.

use berth_errdefs::{Category, HasCategory};

/// Everything a call to the daemon can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `-H` / `DOCKER_HOST` names something other than a unix socket.
    #[error("unsupported host {0:?}: only unix:// sockets are supported")]
    InvalidHost(String),
    /// Nobody listens on the socket (Docker's wording, with our name).
    #[error("Cannot connect to the berth daemon at {host}. Is the berth daemon running?")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange itself broke.
    #[error("error during connect: {0}")]
    Http(#[from] hyper::Error),
    /// The daemon answered with an error status and `{"message": …}`.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// A body that should have been JSON of a known shape was not.
    #[error("unexpected answer from the daemon: {0}")]
    Decode(#[from] serde_json::Error),
    /// Reading or writing a local stream failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A JSON message stream carried an `error` (pull, push, load, import).
    #[error("{message}")]
    Stream { code: Option<i64>, message: String },
    /// The daemon did not switch protocols for an attach or exec.
    #[error("the daemon did not upgrade the connection (status {0})")]
    NoUpgrade(u16),
}

impl ClientError {
    /// The daemon's HTTP status, when the daemon answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 from the daemon (no such container/image).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

impl HasCategory for ClientError {
    fn category(&self) -> Category {
        match self {
            ClientError::InvalidHost(_) => Category::InvalidParameter,
            ClientError::Connect { .. } | ClientError::Http(_) | ClientError::NoUpgrade(_) => {
                Category::Unavailable
            }
            ClientError::Daemon { status, .. } => category_of_status(*status),
            ClientError::Decode(_) | ClientError::Stream { .. } => Category::Unknown,
            ClientError::Io(_) => Category::System,
        }
    }
}

/// The inverse of `Category::http_status` for the statuses the daemon sends.
fn category_of_status(status: u16) -> Category {
    Category::ALL
        .into_iter()
        .find(|c| c.http_status() == status && *c != Category::Unknown)
        .unwrap_or(Category::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_statuses_map_back_to_categories() {
        let e = |status| ClientError::Daemon {
            status,
            message: String::new(),
        };
        assert_eq!(e(404).category(), Category::NotFound);
        assert_eq!(e(409).category(), Category::Conflict);
        assert_eq!(e(400).category(), Category::InvalidParameter);
        assert_eq!(e(500).category(), Category::System);
        assert_eq!(e(418).category(), Category::Unknown);
        assert!(e(404).is_not_found());
    }
}
