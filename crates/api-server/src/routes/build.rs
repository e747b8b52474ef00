//! `POST /build` (the classic builder's API, which the docker CLI uses without buildx) and
//! `POST /build/prune`. The context tar streams into the build as it arrives; progress
//! streams out as JSON messages, and a failure after the answer started is an
//! `errorDetail` message with HTTP 200, whose `code` the CLI exits with.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use berth_engine::{Build, BuildOptions, Progress};
use berth_errdefs::Category;
use berth_reference::Reference;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::images::{all, body_reader, first, flag};
use crate::Backend;
use crate::error::{ApiError, json_response};

type Pairs = Query<Vec<(String, String)>>;

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Category::InvalidParameter, msg)
}

/// A JSON object parameter (`buildargs`, `labels`); absent or empty is empty.
fn json_map<T: serde::de::DeserializeOwned>(
    pairs: &[(String, String)],
    name: &str,
) -> Result<BTreeMap<String, T>, ApiError> {
    match first(pairs, name).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_str(v).map_err(|e| invalid(format!("invalid {name}: {e}"))),
    }
}

/// The query parameters the docker CLI sends, as build options.
fn options(pairs: &[(String, String)]) -> Result<BuildOptions, ApiError> {
    if first(pairs, "remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::new(
            Category::NotImplemented,
            "berth: remote build contexts (git, URLs) are not supported",
        ));
    }
    let mut tags = Vec::new();
    for t in all(pairs, "t").into_iter().filter(|t| !t.is_empty()) {
        let r = Reference::parse_normalized(t)
            .map_err(|e| invalid(format!("invalid tag {t:?}: {e}")))?;
        tags.push(r);
    }
    let defaults = BuildOptions::default();
    Ok(BuildOptions {
        dockerfile: first(pairs, "dockerfile")
            .filter(|d| !d.is_empty())
            .unwrap_or("Dockerfile")
            .to_owned(),
        tags,
        build_args: json_map(pairs, "buildargs")?,
        labels: json_map(pairs, "labels")?,
        target: first(pairs, "target")
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        no_cache: flag(pairs, "nocache"),
        remove: first(pairs, "rm").is_none_or(|_| flag(pairs, "rm")),
        force_remove: flag(pairs, "forcerm"),
        network_mode: first(pairs, "networkmode")
            .filter(|n| !n.is_empty())
            .unwrap_or(&defaults.network_mode)
            .to_owned(),
        pull: flag(pairs, "pull"),
        cache_from: match first(pairs, "cachefrom").filter(|v| !v.is_empty()) {
            None => Vec::new(),
            Some(v) => {
                serde_json::from_str(v).map_err(|e| invalid(format!("invalid cachefrom: {e}")))?
            }
        },
    })
}

fn line(v: &Value) -> Result<Bytes, Infallible> {
    let mut b = v.to_string().into_bytes();
    b.extend_from_slice(b"\r\n");
    Ok(Bytes::from(b))
}

fn message(p: Progress) -> Value {
    match p {
        Progress::Stream(s) => json!({ "stream": s }),
        Progress::Aux(id) => json!({ "aux": { "ID": id.as_str() } }),
    }
}

/// `POST /build`.
async fn build(
    State(service): State<Arc<Build>>,
    Query(pairs): Pairs,
    req: Request,
) -> Result<Response, ApiError> {
    let opts = options(&pairs)?;
    let quiet = flag(&pairs, "q");
    let context = body_reader(req);
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<Progress>();
    let (out_tx, out_rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let task =
        tokio::spawn(async move { service.build(Box::new(context), opts, progress_tx).await });
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut gone = false;
        while let Some(p) = progress_rx.recv().await {
            let m = message(p);
            if quiet {
                held.push(m);
            } else if !gone && out_tx.send(line(&m)).await.is_err() {
                // The client went away; the build runs to its end regardless.
                gone = true;
            }
        }
        let result = task.await.unwrap_or_else(|e| {
            Err(berth_engine::BuildFailure {
                message: format!("build task failed: {e}"),
                code: 1,
            })
        });
        let tail = match result {
            Ok(id) if quiet => {
                let aux = held.into_iter().filter(|m| m.get("aux").is_some());
                aux.chain([json!({ "stream": format!("{id}\n") })])
                    .collect()
            }
            Ok(_) => Vec::new(),
            Err(f) => {
                let mut v = held;
                v.push(json!({
                    "errorDetail": { "code": f.code, "message": f.message },
                    "error": f.message,
                }));
                v
            }
        };
        for m in tail {
            if out_tx.send(line(&m)).await.is_err() {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `POST /build/prune`: forgets the build cache.
async fn prune(State(service): State<Arc<Build>>) -> Result<Response, ApiError> {
    service.prune().await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "CachesDeleted": [], "SpaceReclaimed": 0 }),
    ))
}
