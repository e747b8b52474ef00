//! The `/v2/` API. Repository names contain `/`, so axum cannot route them; [`Route::parse`]
//! splits the path from its end and [`dispatch`] is the route table.

mod blobs;
mod discovery;
mod manifests;
mod uploads;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::Registry;
use crate::error::{Code, RegistryError, Result};
use crate::names::{RepoName, validate_upload_id};

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

pub(crate) fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&registry),
            crate::auth::require,
        ))
        .layer(middleware::map_response(api_version))
        .with_state(registry)
}

async fn api_version(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

/// The resource a `/v2/…` path names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, String),
    Blob(RepoName, String),
    UploadStart(RepoName),
    Upload(RepoName, String),
    Referrers(RepoName, String),
}

impl Route {
    /// `None` for paths outside the API (404); an error for a bad repository name.
    fn parse(path: &str) -> Option<Result<Route>> {
        let rest = path.strip_prefix("/v2")?;
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Some(Ok(Route::Base));
        }
        if rest == "_catalog" {
            return Some(Ok(Route::Catalog));
        }
        let with = |name: &str, f: fn(RepoName) -> Route| Some(RepoName::parse(name).map(f));
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return with(name, Route::Tags);
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or(rest.strip_suffix("/blobs/uploads"))
        {
            return with(name, Route::UploadStart);
        }
        let (head, last) = rest.rsplit_once('/')?;
        if let Some(name) = head.strip_suffix("/blobs/uploads") {
            return Some(RepoName::parse(name).map(|n| Route::Upload(n, last.to_owned())));
        }
        let (name, kind) = head.rsplit_once('/')?;
        let make: fn(RepoName, String) -> Route = match kind {
            "manifests" => Route::Manifest,
            "blobs" => Route::Blob,
            "referrers" => Route::Referrers,
            _ => return None,
        };
        Some(RepoName::parse(name).map(|n| make(n, last.to_owned())))
    }
}

/// What a handler gets of the request besides its route.
pub(crate) struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    pub body: Body,
}

impl Req {
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

async fn dispatch(State(reg): State<Arc<Registry>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let route = match Route::parse(parts.uri.path()) {
        None => return StatusCode::NOT_FOUND.into_response(),
        Some(Err(e)) => return e.into_response(),
        Some(Ok(route)) => route,
    };
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let req = Req {
        method: parts.method,
        headers: parts.headers,
        query,
        body,
    };
    let head = req.method == Method::HEAD;
    let result = match (req.method.clone(), route) {
        (Method::GET | Method::HEAD, Route::Base) => Ok(base()),
        (Method::GET, Route::Catalog) => discovery::catalog(reg, req).await,
        (Method::GET, Route::Tags(name)) => discovery::tags(reg, name, req).await,
        (Method::GET, Route::Referrers(name, digest)) => {
            discovery::referrers(reg, name, &digest, req).await
        }
        (Method::GET | Method::HEAD, Route::Manifest(name, r)) => {
            manifests::get(reg, name, r, req).await
        }
        (Method::PUT, Route::Manifest(name, r)) => manifests::put(reg, name, r, req).await,
        (Method::DELETE, Route::Manifest(name, r)) => manifests::delete(reg, name, r).await,
        (Method::GET | Method::HEAD, Route::Blob(name, digest)) => {
            blobs::get(reg, name, &digest, req).await
        }
        (Method::DELETE, Route::Blob(name, digest)) => blobs::delete(reg, name, &digest).await,
        (Method::POST, Route::UploadStart(name)) => uploads::start(reg, name, req).await,
        (method, Route::Upload(name, id)) => match validate_upload_id(&id) {
            Err(e) => Err(e),
            Ok(()) => match method {
                Method::GET => uploads::status(reg, name, id).await,
                Method::PATCH => uploads::patch(reg, name, id, req).await,
                Method::PUT => uploads::finish(reg, name, id, req).await,
                Method::DELETE => uploads::cancel(reg, name, id).await,
                _ => Err(unsupported()),
            },
        },
        _ => Err(unsupported()),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if head {
        // HEAD answers carry GET's headers (Content-Length included) and no body.
        *response.body_mut() = Body::empty();
    }
    response
}

fn base() -> Response {
    json_response(StatusCode::OK, "{}".to_owned())
}

fn unsupported() -> RegistryError {
    RegistryError::new(Code::Unsupported, "the operation is unsupported")
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Sets a header from a string the registry built (digests, paths, numbers).
pub(crate) fn set(response: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

pub(crate) const DOCKER_CONTENT_DIGEST: HeaderName =
    HeaderName::from_static("docker-content-digest");
pub(crate) const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub(crate) const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub(crate) const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

pub(crate) fn delete_guard(reg: &Registry) -> Result<()> {
    if reg.options.delete_enabled {
        Ok(())
    } else {
        Err(RegistryError::new(
            Code::Unsupported,
            "deletes are disabled on this registry",
        ))
    }
}

/// Parses a digest from a URL or query, giving `DIGEST_INVALID`.
pub(crate) fn parse_digest(s: &str) -> Result<berth_content::Digest> {
    berth_content::Digest::parse(s)
        .map_err(|_| RegistryError::new(Code::DigestInvalid, "invalid digest").detail(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RepoName {
        RepoName::parse(s).expect("valid name")
    }

    #[test]
    fn paths_split_from_the_end() {
        let parse = |p: &str| Route::parse(p).map(|r| r.map_err(|e| e.code));
        assert_eq!(parse("/v2/"), Some(Ok(Route::Base)));
        assert_eq!(parse("/v2/_catalog"), Some(Ok(Route::Catalog)));
        assert_eq!(
            parse("/v2/a/b/c/tags/list"),
            Some(Ok(Route::Tags(name("a/b/c"))))
        );
        assert_eq!(
            parse("/v2/a/b/manifests/latest"),
            Some(Ok(Route::Manifest(name("a/b"), "latest".into())))
        );
        assert_eq!(
            parse("/v2/a/blobs/uploads/"),
            Some(Ok(Route::UploadStart(name("a"))))
        );
        assert_eq!(
            parse("/v2/a/blobs/uploads/0123"),
            Some(Ok(Route::Upload(name("a"), "0123".into())))
        );
        assert_eq!(parse("/v2/A/manifests/x"), Some(Err(Code::NameInvalid)));
        assert_eq!(parse("/v2/a/nothing/x"), None);
        assert_eq!(parse("/v3/a"), None);
    }
}
