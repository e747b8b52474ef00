//! What every request and response share: the `/v1.NN` prefix and Docker's response headers.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_api_types::{API_VERSION, MIN_API_VERSION};

use crate::error::ApiError;

/// The API version a request asked for through its path prefix, put in the request's
/// extensions by [`strip_version`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedVersion {
    /// No prefix: served as the newest version, as dockerd does.
    Newest,
    /// `/v<major>.<minor>/…`; `text` is the version as the client wrote it.
    Given {
        /// Before the dot.
        major: u32,
        /// After the dot.
        minor: u32,
        /// As written, for error messages.
        text: String,
    },
}

/// Response extension: leave `Api-Version` off (dockerd's router-level 404 has none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoApiVersionHeader;

/// Removes a `/v1.NN` prefix from the request path (keeping the query) and records the
/// version in a [`RequestedVersion`] extension. Runs before routing, so every route is
/// declared once, without the prefix.
pub fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path().to_owned();
    let requested = match split_version(&path) {
        Some((major, minor, text, rest)) => {
            let rest = if rest.is_empty() { "/" } else { rest };
            let path_and_query = match req.uri().query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_owned(),
            };
            let mut parts = req.uri().clone().into_parts();
            if let Ok(pq) = path_and_query.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
            RequestedVersion::Given {
                major,
                minor,
                text: text.to_owned(),
            }
        }
        None => RequestedVersion::Newest,
    };
    req.extensions_mut().insert(requested);
    req
}

/// `/v1.41/containers/json` → (1, 41, "1.41", "/containers/json").
fn split_version(path: &str) -> Option<(u32, u32, &str, &str)> {
    let after_v = path.strip_prefix("/v")?;
    let end = after_v.find('/').unwrap_or(after_v.len());
    let (text, rest) = after_v.split_at(end);
    let (major, minor) = text.split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(major) || !all_digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?, text, rest))
}

fn parse_version(text: &str) -> (u32, u32) {
    split_version(&format!("/v{text}")).map_or((0, 0), |(major, minor, _, _)| (major, minor))
}

/// Refuses versions outside what berth serves, then adds Docker's headers to the response.
pub(crate) async fn common(req: Request, next: Next) -> Response {
    let refused = match req.extensions().get::<RequestedVersion>() {
        Some(RequestedVersion::Given { major, minor, text }) => {
            version_refusal((*major, *minor), text)
        }
        _ => None,
    };
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let mut response = match refused {
        Some(response) => response,
        None => next.run(req).await,
    };
    tracing::debug!(%method, path, status = response.status().as_u16(), "API request");
    let with_api_version = response.extensions().get::<NoApiVersionHeader>().is_none();
    add_docker_headers(response.headers_mut(), with_api_version);
    response
}

fn version_refusal(asked: (u32, u32), text: &str) -> Option<Response> {
    if asked > parse_version(API_VERSION) {
        return Some(
            ApiError::invalid(format!(
                "client version {text} is too new. Maximum supported API version is {API_VERSION}"
            ))
            .into_response(),
        );
    }
    if asked < parse_version(MIN_API_VERSION) {
        // dockerd sends this one as text/plain, not JSON.
        let message = format!(
            "client version {text} is too old. Minimum supported API version is \
             {MIN_API_VERSION}, please upgrade your client to a newer version\n"
        );
        return Some(
            (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response(),
        );
    }
    None
}

/// `Server: Docker/<version> (linux)`, as dockerd sends it.
fn server_header() -> String {
    format!("Docker/{} (linux)", berth_engine::system::ENGINE_VERSION)
}

fn add_docker_headers(headers: &mut HeaderMap, with_api_version: bool) {
    if with_api_version {
        headers.insert("api-version", HeaderValue::from_static(API_VERSION));
    }
    headers.insert("docker-experimental", HeaderValue::from_static("false"));
    headers.insert("ostype", HeaderValue::from_static("linux"));
    if let Ok(server) = HeaderValue::from_str(&server_header()) {
        headers.insert(header::SERVER, server);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_version_prefixes() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            Some((1, 41, "1.41", "/containers/json"))
        );
        assert_eq!(split_version("/v1.24"), Some((1, 24, "1.24", "")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes"), None);
        assert_eq!(split_version("/v1/x"), None);
        assert_eq!(split_version("/v1.x/x"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_refusal((1, 41), "1.41").is_none());
        assert!(version_refusal((1, 24), "1.24").is_none());
        assert!(version_refusal((1, 100), "1.100").is_some());
        assert!(version_refusal((1, 9), "1.9").is_some());
    }
}
