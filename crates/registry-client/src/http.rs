//! One repository on one registry, as a session: where it is (scheme, host), how to
//! authenticate (answering the first 401 and reusing the result), and the registry's error
//! bodies turned into Docker's wording.

use std::sync::Mutex;

use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::auth::{Challenge, Credentials, fetch_token};
use crate::error::{ClientError, Result};

/// Largest error body read from a registry.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Where Docker Hub's API lives for `docker.io` names.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The registry API host for a reference domain (`docker.io` → `registry-1.docker.io`).
pub fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => DOCKER_HUB_API,
        d => d,
    }
}

/// Whether a registry host (with optional port) is on loopback, where plain HTTP is allowed
/// as Docker allows it (`127.0.0.0/8` is an insecure registry by default).
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An authenticated conversation with one repository.
pub(crate) struct Repo<'a> {
    pub(crate) http: &'a reqwest::Client,
    /// `http://host:port` or `https://host`.
    pub(crate) base: String,
    /// The repository path (`library/busybox`).
    pub(crate) path: String,
    creds: Option<Credentials>,
    /// `pull` or `pull,push`: the scope we ask a token server for.
    actions: &'static str,
    /// More scopes to ask a token for (`repository:<from>:pull` for mounts).
    pub(crate) extra_scopes: Vec<String>,
    authorization: Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

pub(crate) enum ReadError {
    Http(reqwest::Error),
    Client(ClientError),
}

/// Reads a whole response body, refusing one over `limit` bytes (by its `Content-Length`
/// first, then by what actually arrives).
pub(crate) async fn read_limited(
    mut response: Response,
    limit: usize,
    what: &str,
) -> std::result::Result<Vec<u8>, ReadError> {
    let too_large = || {
        ReadError::Client(ClientError::TooLarge {
            what: what.to_owned(),
            limit: limit as u64,
        })
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `<code in words>: <message>` for the first error of a distribution error body, as
/// Docker prints them (`manifest unknown: manifest unknown`).
pub(crate) async fn error_text(response: Response) -> String {
    let Ok(body) = read_limited(response, MAX_ERROR_BODY, "error body").await else {
        return String::new();
    };
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(&body) else {
        return String::new();
    };
    parsed
        .errors
        .first()
        .map(|e| {
            let words = e.code.to_ascii_lowercase().replace('_', " ");
            if e.message.is_empty() {
                words
            } else {
                format!("{words}: {}", e.message)
            }
        })
        .unwrap_or_default()
}

impl<'a> Repo<'a> {
    pub(crate) fn new(
        http: &'a reqwest::Client,
        base: String,
        path: String,
        creds: Option<Credentials>,
        push: bool,
    ) -> Self {
        let authorization = creds
            .as_ref()
            .and_then(|c| c.registry_token.as_ref())
            .map(|t| format!("Bearer {t}"));
        Repo {
            http,
            base,
            path,
            creds,
            actions: if push { "pull,push" } else { "pull" },
            extra_scopes: Vec::new(),
            authorization: Mutex::new(authorization),
        }
    }

    /// `<base>/v2/<path>/<rest>`.
    pub(crate) fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.path)
    }

    fn current_auth(&self) -> Option<String> {
        self.authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends the request `build` makes; on a 401 answers the challenge once and sends it
    /// again. `build` is called again for the retry, so bodies must be re-creatable.
    pub(crate) async fn send(
        &self,
        method: &'static str,
        url: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let response = self.send_once(method, url, &build).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        let Some(challenge) = challenge else {
            return Err(self.unauthorized(response).await);
        };
        self.authenticate(challenge).await?;
        let response = self.send_once(method, url, &build).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(response).await);
        }
        Ok(response)
    }

    async fn send_once(
        &self,
        method: &'static str,
        url: &str,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let mut request = build(self.http);
        if let Some(auth) = self.current_auth() {
            request = request.header(AUTHORIZATION, auth);
        }
        request.send().await.map_err(|source| ClientError::Http {
            method,
            url: url.to_owned(),
            source,
        })
    }

    async fn unauthorized(&self, response: Response) -> ClientError {
        let text = error_text(response).await;
        ClientError::Unauthorized(if text.is_empty() {
            "unauthorized: authentication required".to_owned()
        } else {
            text
        })
    }

    async fn authenticate(&self, challenge: Challenge) -> Result<()> {
        let header = match challenge {
            Challenge::Basic => match &self.creds {
                Some(c) => c.basic_header(),
                // dockerd's words for a Basic challenge it has nothing for.
                None => {
                    return Err(ClientError::Unauthorized(
                        "no basic auth credentials".to_owned(),
                    ));
                }
            },
            Challenge::Bearer { realm, service, .. } => {
                // Docker asks for the scope it needs rather than the one the 401 named, so
                // one token serves every request of the session.
                // A login (no repository) asks for no scope at all.
                let mut scopes: Vec<String> = if self.path.is_empty() {
                    Vec::new()
                } else {
                    vec![format!("repository:{}:{}", self.path, self.actions)]
                };
                scopes.extend(self.extra_scopes.iter().cloned());
                let token = fetch_token(
                    self.http,
                    &realm,
                    service.as_deref(),
                    &scopes,
                    self.creds.as_ref(),
                )
                .await?;
                format!("Bearer {token}")
            }
        };
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(header);
        Ok(())
    }

    /// The error for an unexpected status.
    pub(crate) async fn status_error(
        &self,
        method: &'static str,
        url: &str,
        response: Response,
    ) -> ClientError {
        let status = response.status();
        let text = error_text(response).await;
        ClientError::Status {
            method,
            url: url.to_owned(),
            status,
            detail: if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for yes in [
            "127.0.0.1:5000",
            "127.3.4.5",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "10.0.0.1:5000",
            "registry.example",
            "[::2]:80",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
    }
}
