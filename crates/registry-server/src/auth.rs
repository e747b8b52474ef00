//! htpasswd Basic auth: `user:$2y$…` bcrypt lines, checked on every request (the `/v2/`
//! probe included, so clients discover the challenge there).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::Registry;
use crate::error::{Code, RegistryError};

const CHALLENGE: &str = "Basic realm=\"berth-registry\"";

/// Users and their bcrypt hashes.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// Hashes of credentials already verified: bcrypt costs ~100 ms on purpose, and a push
    /// sends dozens of requests.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish()
    }
}

/// Why an htpasswd file was refused.
#[derive(Debug, thiserror::Error)]
pub enum HtpasswdError {
    /// The file could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `user:bcrypt-hash`.
    #[error("htpasswd line {line}: only bcrypt entries (user:$2y$…) are supported")]
    Entry {
        /// 1-based line number.
        line: usize,
    },
}

impl Htpasswd {
    /// Reads an htpasswd file.
    pub fn load(path: &Path) -> Result<Self, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| HtpasswdError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses htpasswd text; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, HtpasswdError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = HtpasswdError::Entry { line: i + 1 };
            let (user, hash) = line.split_once(':').ok_or(entry)?;
            if !hash.starts_with("$2") {
                return Err(HtpasswdError::Entry { line: i + 1 });
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether an `Authorization: Basic …` header names a user with the right password.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let key: [u8; 32] = Sha256::digest(format!("{user}\0{password}").as_bytes()).into();
        if self.lock().contains(&key) {
            return true;
        }
        let ok = self
            .users
            .get(&user)
            .is_some_and(|hash| bcrypt::verify(&password, hash).unwrap_or(false));
        if ok {
            self.lock().insert(key);
        }
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Middleware: lets a request through when no htpasswd is configured or its credentials
/// check out; otherwise 401 `UNAUTHORIZED` with the Basic challenge.
pub(crate) async fn require(
    State(reg): State<Arc<Registry>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(htpasswd) = reg.options.htpasswd.clone() else {
        return next.run(request).await;
    };
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let ok = tokio::task::spawn_blocking(move || htpasswd.check(authorization.as_ref()))
        .await
        .unwrap_or(false);
    if ok {
        return next.run(request).await;
    }
    let mut response =
        RegistryError::new(Code::Unauthorized, "authentication required").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
}
