//! `GET /system/df` (`docker system df`) and the sizes of `GET /containers/json?size=1`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use berth_engine::containers::{ContainerRecord, ContainerSize};
use berth_engine::{Build, Containers, Images, Volumes};
use berth_errdefs::Category;
use serde_json::{Value, json};

use crate::Backend;
use crate::error::{ApiError, json_response};

pub(super) fn routes() -> Router<Backend> {
    Router::new().route("/system/df", get(df))
}

fn task_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(Category::System, e.to_string())
}

/// The sizes of `records`, by id (the upper directories are walked off the async threads).
pub(super) async fn container_sizes(
    images: &Arc<Images>,
    containers: &Arc<Containers>,
    records: &[ContainerRecord],
) -> Result<BTreeMap<String, ContainerSize>, ApiError> {
    let all = berth_engine::images::ListOptions {
        all: true,
        ..Default::default()
    };
    let image_sizes: BTreeMap<String, u64> = images
        .list(all)
        .await?
        .into_iter()
        .map(|i| (i.id, u64::try_from(i.size).unwrap_or(0)))
        .collect();
    let wanted: Vec<(String, u64)> = records
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                image_sizes.get(&r.image).copied().unwrap_or(0),
            )
        })
        .collect();
    let containers = containers.clone();
    tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .map(|(id, image)| {
                let size = containers.size_of(&id, image);
                (id, size)
            })
            .collect()
    })
    .await
    .map_err(task_error)
}

/// `SizeRw` and `SizeRootFs` on a container summary.
pub(super) fn add_sizes(summary: &mut Value, size: Option<&ContainerSize>) {
    let size = size.copied().unwrap_or_default();
    summary["SizeRw"] = json!(size.rw);
    summary["SizeRootFs"] = json!(size.root_fs);
}

fn rfc3339(t: SystemTime) -> String {
    let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    crate::time::rfc3339_nano(i64::try_from(nanos).unwrap_or(i64::MAX))
}

async fn df(
    State(images): State<Arc<Images>>,
    State(containers): State<Arc<Containers>>,
    State(volumes): State<Arc<Volumes>>,
    State(build): State<Arc<Build>>,
) -> Result<Response, ApiError> {
    let (usage, image_list) = images.disk_usage().await?;
    let image_json: Vec<Value> = image_list
        .into_iter()
        .map(|(summary, users)| {
            let shared = usage.shared_size.get(&summary.id).copied().unwrap_or(0);
            let mut v = serde_json::to_value(&summary).unwrap_or(Value::Null);
            v["Containers"] = json!(users);
            v["SharedSize"] = json!(shared);
            v
        })
        .collect();
    let records = containers.list(true, &berth_reference::Filters::new(), None)?;
    let sizes = container_sizes(&images, &containers, &records).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let container_json: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = super::containers::summary_json(r, now);
            add_sizes(&mut v, sizes.get(&r.id));
            v
        })
        .collect();
    let cache = build.cache_usage().await;
    let volume_usage = tokio::task::spawn_blocking(move || volumes.usage())
        .await
        .map_err(task_error)?;
    let volume_json: Vec<Value> = volume_usage?
        .iter()
        .map(|(v, size, users)| {
            let mut j = super::volumes::volume_json(v);
            j["UsageData"] = json!({"Size": size, "RefCount": users});
            j
        })
        .collect();
    let builder_size: u64 = cache.iter().map(|r| r.size).sum();
    let cache_json: Vec<Value> = cache.iter().map(cache_record).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "LayersSize": usage.layers_size,
            "Images": image_json,
            "Containers": container_json,
            "Volumes": volume_json,
            "BuildCache": cache_json,
            "BuilderSize": builder_size,
        }),
    ))
}

/// BuildKit's record shape, which `docker system df -v` prints. A step's result is shared
/// with its image; context files and cache mounts are the builder's alone.
fn cache_record(r: &berth_engine::build::CacheRecord) -> Value {
    let description = match r.kind {
        "regular" => "build step",
        "source.local" => "local source for context",
        _ => "cached mount",
    };
    let time = rfc3339(r.last_used.unwrap_or(UNIX_EPOCH));
    json!({
        "ID": r.id,
        "Parent": "",
        "Type": r.kind,
        "Description": description,
        "InUse": r.in_use,
        "Shared": r.shared,
        "Size": r.size,
        "CreatedAt": time,
        "LastUsedAt": time,
        "UsageCount": 1,
    })
}
