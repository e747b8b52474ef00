//! Credentials and the registry auth handshake: `X-Registry-Auth` decoding, Basic auth, and
//! the Bearer token flow driven by `WWW-Authenticate` (as Docker Hub does it: a token from
//! `realm?service=…&scope=repository:<name>:<actions>`, fetched with Basic credentials when
//! we have them).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::error::{ClientError, Result};

/// Largest token answer read into memory.
const MAX_TOKEN_ANSWER: usize = 1 << 20;

/// What a client presents to a registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Basic-auth user.
    pub username: String,
    /// Basic-auth password.
    pub password: String,
    /// A registry token to send as `Bearer` as is (`registrytoken`).
    pub registry_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never log secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The JSON inside `X-Registry-Auth` (Docker's `registry.AuthConfig`).
#[derive(Deserialize, Default)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// `base64(user:pass)`, what `~/.docker/config.json` stores.
    #[serde(default)]
    auth: String,
    #[serde(default)]
    registrytoken: String,
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header: base64url (padded or not, standard alphabet
    /// tolerated) of Docker's auth JSON. `{}` or an empty header means anonymous (`None`).
    pub fn from_header(header: &str) -> Result<Option<Credentials>> {
        let header = header.trim();
        if header.is_empty() {
            return Ok(None);
        }
        let bytes = decode_base64(header)
            .ok_or_else(|| ClientError::InvalidAuthHeader("not base64".to_owned()))?;
        let config: AuthConfig = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::InvalidAuthHeader(e.to_string()))?;
        Self::from_config(config)
    }

    /// Parses the JSON body of `POST /auth` (the same fields as `X-Registry-Auth`).
    pub fn from_json(body: &[u8]) -> Result<Option<Credentials>> {
        let config: AuthConfig = serde_json::from_slice(body)
            .map_err(|e| ClientError::InvalidAuthHeader(e.to_string()))?;
        Self::from_config(config)
    }

    fn from_config(mut config: AuthConfig) -> Result<Option<Credentials>> {
        if config.username.is_empty() && !config.auth.is_empty() {
            let pair = decode_base64(&config.auth)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ClientError::InvalidAuthHeader("auth is not base64".to_owned()))?;
            let (user, pass) = pair.split_once(':').ok_or_else(|| {
                ClientError::InvalidAuthHeader("auth is not user:password".to_owned())
            })?;
            config.username = user.to_owned();
            config.password = pass.to_owned();
        }
        let token = Some(config.registrytoken).filter(|t| !t.is_empty());
        if config.username.is_empty() && token.is_none() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: config.username,
            password: config.password,
            registry_token: token,
        }))
    }

    pub(crate) fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .or_else(|_| STANDARD.decode(text))
        .ok()
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`.
    Bearer {
        /// Where to get a token.
        realm: String,
        /// The `service` parameter to pass back.
        service: Option<String>,
        /// The `scope` the registry asked for, if it said.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses the first challenge of a `WWW-Authenticate` value (RFC 7235 auth-params,
    /// quoted strings with `\` escapes).
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            });
        }
        None
    }
}

/// `k="v", k2=v2` → pairs; a malformed tail is ignored.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_owned();
        if name.is_empty() || chars.next() != Some('=') {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        out.push((name, value));
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

/// Fetches a Bearer token from `realm` for `scopes` (Docker's GET flow).
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<String> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = service {
        query.push(("service", s));
    }
    for s in scopes {
        query.push(("scope", s));
    }
    if let Some(c) = creds {
        query.push(("account", &c.username));
    }
    let mut request = http.get(realm).query(&query);
    if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
        request = request.header(reqwest::header::AUTHORIZATION, c.basic_header());
    }
    let http_err = |source| ClientError::Http {
        method: "GET",
        url: realm.to_owned(),
        source,
    };
    let response = request.send().await.map_err(http_err)?;
    let status = response.status();
    let body = crate::http::read_limited(response, MAX_TOKEN_ANSWER, "token answer")
        .await
        .map_err(|e| match e {
            crate::http::ReadError::Http(source) => http_err(source),
            crate::http::ReadError::Client(e) => e,
        })?;
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(ClientError::Unauthorized(format!(
            "Get \"{realm}\": unauthorized: incorrect username or password"
        )));
    }
    if !status.is_success() {
        return Err(ClientError::AuthProtocol(format!(
            "token server {realm} answered {status}"
        )));
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|e| ClientError::AuthProtocol(format!("token answer from {realm}: {e}")))?;
    let token = if answer.token.is_empty() {
        answer.access_token
    } else {
        answer.token
    };
    if token.is_empty() {
        return Err(ClientError::AuthProtocol(format!(
            "token server {realm} gave no token"
        )));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_docker_hub_sends_them() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let escaped = Challenge::parse(r#"bearer realm="http://a/\"t\"", service=x"#);
        assert_eq!(
            escaped,
            Some(Challenge::Bearer {
                realm: "http://a/\"t\"".into(),
                service: Some("x".into()),
                scope: None
            })
        );
    }

    #[test]
    fn hostile_challenges_yield_nothing_usable() {
        for bad in [
            "",
            "Bearer",
            "Bearer service=\"x\"",
            "Digest realm=\"x\"",
            "Bearer realm",
            "Bearer =\"x\"",
            "Bearer realm=\"unterminated",
        ] {
            match Challenge::parse(bad) {
                None => {}
                Some(Challenge::Bearer { realm, .. }) => assert_eq!(realm, "unterminated"),
                Some(other) => panic!("{bad:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn registry_auth_header_decodes_as_the_cli_encodes_it() {
        assert_eq!(Credentials::from_header("e30=").ok(), Some(None));
        assert_eq!(Credentials::from_header("").ok(), Some(None));
        let json =
            r#"{"username":"wireuser","password":"secretpw","serveraddress":"127.0.0.1:5055"}"#;
        let c = Credentials::from_header(&URL_SAFE.encode(json))
            .ok()
            .flatten()
            .map(|c| (c.username, c.password));
        assert_eq!(c, Some(("wireuser".into(), "secretpw".into())));
        let auth = format!(r#"{{"auth":"{}"}}"#, STANDARD.encode("u:p:q"));
        let c = Credentials::from_header(&URL_SAFE_NO_PAD.encode(auth))
            .ok()
            .flatten()
            .map(|c| (c.username, c.password));
        assert_eq!(c, Some(("u".into(), "p:q".into())));
        assert!(Credentials::from_header("!!!").is_err());
        assert!(Credentials::from_header(&URL_SAFE.encode("[1,2]")).is_err());
        assert!(Credentials::from_header(&URL_SAFE.encode(r#"{"auth":"bm9jb2xvbg=="}"#)).is_err());
    }

    #[test]
    fn credentials_do_not_print_the_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
            registry_token: None,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
