//! The container file-system routes: the archive endpoints of `docker cp` (`HEAD`, `GET`,
//! `PUT /containers/{id}/archive?path=`), `docker export`, `docker diff` (`…/changes`) and
//! `docker commit` (`POST /commit`).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use berth_engine::Containers;
use berth_engine::containers::{CommitOptions, ExtractOptions, PathStat};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::images::{BodyWriter, body_reader};
use crate::Backend;
use crate::error::{ApiError, json_response};

type Params = Query<BTreeMap<String, String>>;

/// The header carrying a path's stat (base64 of its JSON).
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
}

fn flag(params: &BTreeMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "False" | "FALSE"))
}

fn path_param(params: &BTreeMap<String, String>) -> Result<String, ApiError> {
    match params.get("path").filter(|p| !p.is_empty()) {
        Some(p) => Ok(p.clone()),
        None => Err(ApiError::invalid("bad parameter: path cannot be empty")),
    }
}

fn stat_header(stat: &PathStat) -> Result<HeaderValue, ApiError> {
    let json = serde_json::to_vec(stat)
        .map_err(|e| ApiError::new(berth_errdefs::Category::System, e.to_string()))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    HeaderValue::from_str(&encoded)
        .map_err(|e| ApiError::new(berth_errdefs::Category::System, e.to_string()))
}

/// `HEAD /containers/{id}/archive?path=`.
async fn head_archive(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let path = path_param(&params)?;
    let stat = containers.stat_path(&id, &path).await?;
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert(STAT_HEADER, stat_header(&stat)?);
    Ok(response)
}

/// A tar response fed by a blocking writer on another thread.
fn tar_stream() -> (BodyWriter, mpsc::Sender<Result<Bytes, io::Error>>, Response) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    let writer = BodyWriter { tx: tx.clone() };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    (writer, tx, response)
}

/// `GET /containers/{id}/archive?path=`: the stat header, then the tar.
async fn get_archive(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let path = path_param(&params)?;
    let stat = containers.stat_path(&id, &path).await?;
    let (writer, tx, mut response) = tar_stream();
    response
        .headers_mut()
        .insert(STAT_HEADER, stat_header(&stat)?);
    tokio::spawn(async move {
        if let Err(e) = containers.archive_path(&id, &path, Box::new(writer)).await {
            tracing::warn!("docker cp from {id}:{path} failed: {}", e.message);
            let _ = tx.send(Err(io::Error::other(e.message))).await;
        }
    });
    Ok(response)
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`.
async fn put_archive(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
    req: Request,
) -> Result<Response, ApiError> {
    let path = path_param(&params)?;
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: flag(&params, "noOverwriteDirNonDir"),
        copy_uid_gid: flag(&params, "copyUIDGID"),
    };
    containers
        .extract_to_dir(&id, &path, opts, Box::new(body_reader(req)))
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/export`.
async fn export(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    containers.check_exists(&id)?;
    let (writer, tx, response) = tar_stream();
    tokio::spawn(async move {
        if let Err(e) = containers.export(&id, Box::new(writer)).await {
            tracing::warn!("docker export {id} failed: {}", e.message);
            let _ = tx.send(Err(io::Error::other(e.message))).await;
        }
    });
    Ok(response)
}

/// `GET /containers/{id}/changes`.
async fn changes(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let changes = containers.changes(&id).await?;
    let body: Vec<_> = changes
        .iter()
        .map(|c| json!({"Path": c.path, "Kind": c.kind.code()}))
        .collect();
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
async fn commit(
    State(containers): State<Arc<Containers>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let first = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let container = first("container");
    if container.is_empty() {
        return Err(ApiError::invalid("No container name or ID supplied"));
    }
    let pause = match pairs.iter().find(|(k, _)| k == "pause") {
        None => true,
        Some((_, v)) => !matches!(v.as_str(), "0" | "false" | "False" | "FALSE"),
    };
    let opts = CommitOptions {
        repo: first("repo"),
        tag: first("tag"),
        comment: first("comment"),
        author: first("author"),
        pause,
        changes: pairs
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let id = containers.commit(&container, opts).await?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": id})))
}
