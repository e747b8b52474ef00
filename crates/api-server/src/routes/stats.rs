//! `GET /containers/{id}/stats` (Docker's `StatsJSON`, once or a line a second) and
//! `POST /containers/{id}/update`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_engine::Containers;
use berth_engine::containers::{
    CgroupStats, RestartPolicy, StatsSample, UpdateRequest, Usage, ZERO_TIME,
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::Backend;
use crate::body::JsonBody;
use crate::error::{ApiError, json_response};

/// Docker samples once a second.
const INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/update", post(update))
}

/// Docker's boolean query values: absent is `default`; `0`, `false` and empty are false.
fn bool_param(params: &BTreeMap<String, String>, name: &str, default: bool) -> bool {
    params.get(name).map_or(default, |v| {
        !matches!(v.as_str(), "" | "0" | "false" | "False" | "FALSE")
    })
}

async fn stats(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let stream = bool_param(&params, "stream", true);
    let one_shot = bool_param(&params, "one-shot", false);
    if stream && one_shot {
        return Err(ApiError::invalid(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let first = containers.stats_sample(&id).await?;
    if !stream {
        // Without one-shot Docker waits for a second sample so CPU % can be computed.
        let (pre, cur) = if one_shot || first.usage.is_none() {
            (None, first)
        } else {
            tokio::time::sleep(INTERVAL).await;
            let second = containers.stats_sample(&first.id).await?;
            (Some(first), second)
        };
        return Ok(json_response(
            StatusCode::OK,
            &stats_json(&cur, pre.as_ref()),
        ));
    }
    let state = (
        containers,
        first.id.clone(),
        Some(first),
        None::<StatsSample>,
    );
    let lines = futures_util::stream::unfold(state, |(containers, id, next, pre)| async move {
        let cur = match next {
            Some(sample) => sample,
            None => {
                tokio::time::sleep(INTERVAL).await;
                // The container is gone: the stream ends, as Docker's does.
                containers.stats_sample(&id).await.ok()?
            }
        };
        let mut line = serde_json::to_vec(&stats_json(&cur, pre.as_ref())).unwrap_or_default();
        line.push(b'\n');
        let chunk = Ok::<_, Infallible>(Bytes::from(line));
        Some((chunk, (containers, id, None, Some(cur))))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// Docker's `StatsJSON`: `cur`, with `pre` as `precpu_stats`/`preread`.
fn stats_json(cur: &StatsSample, pre: Option<&StatsSample>) -> Value {
    let usage = cur.usage.as_ref();
    let mut out = json!({
        "read": if usage.is_some() { cur.read.as_str() } else { ZERO_TIME },
        "preread": pre.filter(|p| p.usage.is_some()).map_or(ZERO_TIME, |p| p.read.as_str()),
        "pids_stats": usage.map_or(json!({}), |u| pids_json(&u.cgroup)),
        "blkio_stats": blkio_json(usage.map(|u| &u.cgroup)),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(usage),
        "precpu_stats": cpu_json(pre.and_then(|p| p.usage.as_ref())),
        "memory_stats": usage.map_or(json!({}), memory_json),
        "name": format!("/{}", cur.name),
        "id": cur.id,
    });
    if let Some(u) = usage.filter(|u| !u.networks.is_empty()) {
        let networks: Map<String, Value> = u
            .networks
            .iter()
            .map(|(name, n)| {
                let v = json!({
                    "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                    "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                    "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                    "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                });
                (name.clone(), v)
            })
            .collect();
        out["networks"] = Value::Object(networks);
    }
    out
}

fn pids_json(s: &CgroupStats) -> Value {
    let mut out = Map::new();
    if let Some(p) = &s.pids {
        if p.current != 0 {
            out.insert("current".into(), json!(p.current));
        }
        if let Some(limit) = p.limit.filter(|l| *l != 0) {
            out.insert("limit".into(), json!(limit));
        }
    }
    Value::Object(out)
}

fn blkio_json(s: Option<&CgroupStats>) -> Value {
    let bytes = s.and_then(|s| s.io.as_ref()).map(|entries| {
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect::<Vec<_>>()
    });
    json!({
        "io_service_bytes_recursive": bytes,
        "io_serviced_recursive": null,
        "io_queue_recursive": null,
        "io_service_time_recursive": null,
        "io_wait_time_recursive": null,
        "io_merged_recursive": null,
        "io_time_recursive": null,
        "sectors_recursive": null,
    })
}

fn cpu_json(usage: Option<&Usage>) -> Value {
    let cpu = usage.and_then(|u| u.cgroup.cpu.clone()).unwrap_or_default();
    let mut cpu_usage = json!({
        "total_usage": cpu.usage_total_ns,
        "usage_in_kernelmode": cpu.usage_system_ns,
        "usage_in_usermode": cpu.usage_user_ns,
    });
    if !cpu.per_cpu_ns.is_empty() {
        cpu_usage["percpu_usage"] = json!(cpu.per_cpu_ns);
    }
    let mut out = json!({
        "cpu_usage": cpu_usage,
        "throttling_data": {
            "periods": cpu.periods,
            "throttled_periods": cpu.throttled_periods,
            "throttled_time": cpu.throttled_ns,
        },
    });
    if let Some(u) = usage {
        out["system_cpu_usage"] = json!(u.system_cpu_ns);
        out["online_cpus"] = json!(u.online_cpus);
    }
    out
}

/// Docker reports a missing or larger-than-the-host limit as the host's memory.
fn memory_json(u: &Usage) -> Value {
    let Some(m) = &u.cgroup.memory else {
        return json!({});
    };
    let limit = m.limit.map_or(u.host_memory, |l| l.min(u.host_memory));
    let mut out = json!({"usage": m.usage, "stats": m.stat, "limit": limit});
    if let Some(max) = m.max_usage {
        out["max_usage"] = json!(max);
    }
    out
}

/// `UpdateConfig`: the resources at the top level, plus the restart policy.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    memory: i64,
    memory_swap: i64,
    memory_reservation: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    cpu_period: i64,
    cpu_quota: i64,
    cpuset_cpus: String,
    cpuset_mems: String,
    pids_limit: Option<i64>,
    blkio_weight: u16,
    restart_policy: Option<RestartPolicy>,
}

async fn update(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Response, ApiError> {
    let b = body.unwrap_or_default();
    let req = UpdateRequest {
        memory: b.memory,
        memory_swap: b.memory_swap,
        memory_reservation: b.memory_reservation,
        nano_cpus: b.nano_cpus,
        cpu_shares: b.cpu_shares,
        cpu_period: b.cpu_period,
        cpu_quota: b.cpu_quota,
        cpuset_cpus: b.cpuset_cpus,
        cpuset_mems: b.cpuset_mems,
        pids_limit: b.pids_limit,
        blkio_weight: b.blkio_weight,
        restart_policy: b.restart_policy,
    };
    let warnings = containers.update(&id, &req).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"Warnings": warnings}),
    ))
}
