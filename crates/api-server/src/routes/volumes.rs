//! Volume routes: list, create, inspect, remove and prune, in the shapes of Docker's answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_engine::Volumes;
use berth_engine::volumes::{CreateRequest, Volume};
use berth_reference::Filters;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Backend;
use crate::body::JsonBody;
use crate::error::{ApiError, json_response};
use crate::middleware::RequestedVersion;

type Params = Query<BTreeMap<String, String>>;

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

fn filters(params: &BTreeMap<String, String>) -> Result<Filters, ApiError> {
    match params.get("filters").filter(|v| !v.is_empty()) {
        Some(json) => Ok(Filters::parse(json)?),
        None => Ok(Filters::new()),
    }
}

fn flag(params: &BTreeMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "False" | "FALSE"))
}

pub(super) fn volume_json(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": v.options,
        "Scope": v.scope,
    })
}

async fn list(
    State(volumes): State<Arc<Volumes>>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let filters = filters(&params)?;
    let list = tokio::task::spawn_blocking(move || volumes.list(&filters))
        .await
        .map_err(|e| ApiError::new(berth_errdefs::Category::System, e.to_string()))??;
    let list: Vec<Value> = list.iter().map(volume_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"Volumes": list, "Warnings": null}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

async fn create(
    State(volumes): State<Arc<Volumes>>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let request = CreateRequest {
        name: body.name,
        driver: body.driver,
        options: body.driver_opts.unwrap_or_default(),
        labels: body.labels.unwrap_or_default(),
        anonymous: false,
    };
    let volume = tokio::task::spawn_blocking(move || volumes.create(request))
        .await
        .map_err(|e| ApiError::new(berth_errdefs::Category::System, e.to_string()))??;
    Ok(json_response(StatusCode::CREATED, &volume_json(&volume)))
}

async fn inspect(
    State(volumes): State<Arc<Volumes>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let volume = volumes.get(&name)?;
    Ok(json_response(StatusCode::OK, &volume_json(&volume)))
}

async fn remove(
    State(volumes): State<Arc<Volumes>>,
    Path(name): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let force = flag(&params, "force");
    tokio::task::spawn_blocking(move || volumes.remove(&name, force))
        .await
        .map_err(|e| ApiError::new(berth_errdefs::Category::System, e.to_string()))??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether a prune at this API version takes named volumes too. Before API 1.42 there is no
/// `all` filter and Docker (20.10, API 1.41) prunes every unused local volume, named ones
/// included; docker CLI 28 talking 1.41 sends no filter and warns of exactly that.
fn prunes_named_volumes(version: Option<&RequestedVersion>) -> bool {
    let asked = match version {
        Some(RequestedVersion::Given { major, minor, .. }) => (*major, *minor),
        _ => berth_api_types::API_VERSION
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .unwrap_or((1, 41)),
    };
    asked < (1, 42)
}

async fn prune(
    State(volumes): State<Arc<Volumes>>,
    version: Option<Extension<RequestedVersion>>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let mut filters = filters(&params)?;
    if prunes_named_volumes(version.as_ref().map(|v| &v.0)) {
        // Docker 20.10 knows no `all` filter and refuses it like any unknown one.
        filters.validate(&["label", "label!"])?;
        filters.add("all", "true");
    }
    let report = tokio::task::spawn_blocking(move || volumes.prune(&filters))
        .await
        .map_err(|e| ApiError::new(berth_errdefs::Category::System, e.to_string()))??;
    let deleted = if report.deleted.is_empty() {
        Value::Null
    } else {
        json!(report.deleted)
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": report.space_reclaimed}),
    ))
}
