//! Content discovery: `/v2/<name>/tags/list`, `/v2/_catalog` (both paginated by `n` and
//! `last`, with a `Link` to the next page) and `/v2/<name>/referrers/<digest>`.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::{OCI_FILTERS_APPLIED, Req, json_response, parse_digest, set};
use crate::Registry;
use crate::error::{Code, RegistryError, Result};
use crate::names::RepoName;
use crate::upload::blocking;

/// The largest page served, whatever `n` asks (CVE-2023-2253: a huge `n` made distribution
/// allocate without bound).
pub const MAX_PAGE: usize = 1000;
/// The catalog's page size when the client gives no `n`.
const DEFAULT_CATALOG_PAGE: usize = 100;

/// A page request: `n` (capped) and `last`.
struct Page {
    n: Option<usize>,
    last: Option<String>,
}

impl Page {
    fn from(req: &Req) -> Result<Page> {
        let n = match req.query("n") {
            None => None,
            Some(n) => Some(n.parse::<usize>().map_err(|_| {
                RegistryError::new(
                    Code::PaginationNumberInvalid,
                    "invalid number of results requested",
                )
                .detail(n)
            })?),
        };
        Ok(Page {
            n: n.map(|n| n.min(MAX_PAGE)),
            last: req.query("last").map(str::to_owned),
        })
    }

    /// The entries of a sorted list after `last`, at most `n` (or `default`), and whether
    /// more follow.
    fn apply(&self, sorted: Vec<String>, default: Option<usize>) -> (Vec<String>, bool) {
        let mut items: Vec<String> = match &self.last {
            Some(last) => sorted.into_iter().filter(|s| s > last).collect(),
            None => sorted,
        };
        let limit = self.n.or(default).unwrap_or(usize::MAX);
        let more = items.len() > limit;
        items.truncate(limit);
        (items, more)
    }
}

fn with_next_link(
    mut response: Response,
    path: &str,
    items: &[String],
    n: usize,
    more: bool,
) -> Response {
    if more && let Some(last) = items.last() {
        set(
            &mut response,
            header::LINK,
            &format!("<{path}?n={n}&last={last}>; rel=\"next\""),
        );
    }
    response
}

pub(super) async fn tags(reg: Arc<Registry>, name: RepoName, req: Req) -> Result<Response> {
    let page = Page::from(&req)?;
    let lookup = name.clone();
    let tags = blocking(move || Ok(reg.links.tags(&lookup)?))
        .await?
        .ok_or_else(|| {
            RegistryError::new(Code::NameUnknown, "repository name not known to registry")
                .detail(name.as_str())
        })?;
    let (tags, more) = page.apply(tags, None);
    let body = json!({ "name": name.as_str(), "tags": tags }).to_string();
    let response = json_response(StatusCode::OK, body);
    let n = page.n.unwrap_or(MAX_PAGE);
    Ok(with_next_link(
        response,
        &format!("/v2/{name}/tags/list"),
        &tags,
        n,
        more,
    ))
}

pub(super) async fn catalog(reg: Arc<Registry>, req: Req) -> Result<Response> {
    let page = Page::from(&req)?;
    let repos = blocking(move || Ok(reg.links.repositories()?)).await?;
    let names = repos.iter().map(|r| r.as_str().to_owned()).collect();
    let (repos, more) = page.apply(names, Some(DEFAULT_CATALOG_PAGE));
    let response = json_response(StatusCode::OK, json!({ "repositories": repos }).to_string());
    let n = page.n.unwrap_or(DEFAULT_CATALOG_PAGE);
    Ok(with_next_link(response, "/v2/_catalog", &repos, n, more))
}

pub(super) async fn referrers(
    reg: Arc<Registry>,
    name: RepoName,
    digest: &str,
    req: Req,
) -> Result<Response> {
    let subject = parse_digest(digest)?;
    let artifact_type = req.query("artifactType").map(str::to_owned);
    let mut manifests = blocking(move || Ok(reg.links.referrers(&name, &subject)?)).await?;
    if let Some(t) = &artifact_type {
        manifests.retain(|d| d["artifactType"].as_str() == Some(t));
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = json_response(StatusCode::OK, body.to_string());
    set(
        &mut response,
        header::CONTENT_TYPE,
        crate::manifest::OCI_INDEX,
    );
    if artifact_type.is_some() {
        set(&mut response, OCI_FILTERS_APPLIED, "artifactType");
    }
    Ok(response)
}
