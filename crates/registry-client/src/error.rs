//! Errors of the registry client, in the words dockerd uses for them.

use berth_errdefs::{Category, HasCategory};

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry has no such manifest (tag or digest).
    #[error("manifest for {reference} not found: {detail}")]
    ManifestUnknown {
        /// The reference as the user gave it.
        reference: String,
        /// The registry's error text (`manifest unknown: manifest unknown`).
        detail: String,
    },
    /// The registry refused our credentials, or we had none.
    #[error("{0}")]
    Unauthorized(String),
    /// The registry answered with an error status we do not handle specially.
    #[error("{method} {url}: {status}{detail}")]
    Status {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// `: <registry error text>` when the body had one.
        detail: String,
    },
    /// The registry could not be reached, or the connection broke (worded as Go's
    /// `url.Error`, `Get "https://…": …`, which scripts match).
    #[error("{} \"{url}\": {source}", go_method(method))]
    Http {
        /// The request method.
        method: &'static str,
        /// The request URL.
        url: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// Downloaded bytes do not hash to the digest the manifest promised; nothing was stored.
    #[error("filesystem layer verification failed for digest {0}")]
    Verification(String),
    /// A manifest (or token answer) is larger than we accept.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A manifest or index is malformed or of an unsupported kind.
    #[error("invalid manifest {reference}: {reason}")]
    InvalidManifest {
        /// Which manifest.
        reference: String,
        /// Why.
        reason: String,
    },
    /// No entry of a manifest list matches the wanted platform.
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoMatchingPlatform(String),
    /// A platform string (`os/arch[/variant]`) does not parse.
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
    /// The `X-Registry-Auth` header is not base64 JSON.
    #[error("invalid X-Registry-Auth header: {0}")]
    InvalidAuthHeader(String),
    /// The registry's `WWW-Authenticate` challenge or token answer cannot be used.
    #[error("{0}")]
    AuthProtocol(String),
    /// A blob could not be fetched whole after several attempts.
    #[error("download of {digest} failed after {attempts} attempts: {last}")]
    Incomplete {
        /// The blob.
        digest: String,
        /// How many requests were made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] berth_content::ContentError),
    /// A local file could not be read.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// `GET` → `Get`, as Go's net/http names methods in its errors.
fn go_method(method: &str) -> String {
    let mut out = String::with_capacity(method.len());
    for (i, c) in method.chars().enumerate() {
        out.push(if i == 0 { c } else { c.to_ascii_lowercase() });
    }
    out
}

impl HasCategory for ClientError {
    fn category(&self) -> Category {
        match self {
            ClientError::ManifestUnknown { .. } | ClientError::NoMatchingPlatform(_) => {
                Category::NotFound
            }
            ClientError::Unauthorized(_) => Category::Unauthorized,
            ClientError::Status { status, .. } => match status.as_u16() {
                401 => Category::Unauthorized,
                403 => Category::Forbidden,
                404 => Category::NotFound,
                _ => Category::Unknown,
            },
            ClientError::InvalidPlatform(_) | ClientError::InvalidAuthHeader(_) => {
                Category::InvalidParameter
            }
            ClientError::Verification(_)
            | ClientError::TooLarge { .. }
            | ClientError::InvalidManifest { .. }
            | ClientError::AuthProtocol(_)
            | ClientError::Incomplete { .. }
            | ClientError::Http { .. }
            | ClientError::Content(_)
            | ClientError::Io { .. } => Category::System,
        }
    }
}

/// The client's result type.
pub type Result<T> = std::result::Result<T, ClientError>;
