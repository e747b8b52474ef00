//! Container routes: create, start, attach (101 hijack), wait (headers flushed at once),
//! logs, stop, kill, restart, resize, remove, list and inspect. Handlers parse the request,
//! make one call on [`Containers`] and shape the answer as Docker's JSON.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use berth_engine::Containers;
use berth_engine::containers::{
    AttachOptions, Config, ContainerRecord, ExecConfig, HostConfig, LogOptions, WaitCondition,
};
use berth_reference::Filters;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Backend;
use crate::body::JsonBody;
use crate::detach::{self, Detector, Scan};
use crate::error::{ApiError, json_response};
use crate::time::parse_timestamp;

type Params = Query<BTreeMap<String, String>>;

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/exec", post(exec_create))
        .route("/containers/{id}/top", get(top))
        .route("/exec/{id}/start", post(exec_start))
        .route("/exec/{id}/resize", post(exec_resize))
        .route("/exec/{id}/json", get(exec_inspect))
}

fn flag(params: &BTreeMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "False" | "FALSE"))
}

fn int_param(params: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    match params.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("invalid value for {name}: {e}"))),
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The create body: `Config` at the top level, plus `HostConfig`.
#[derive(Debug, Deserialize)]
struct CreateBody {
    #[serde(flatten)]
    config: Config,
    #[serde(rename = "HostConfig", default)]
    host_config: Option<HostConfig>,
    #[serde(rename = "NetworkingConfig", default)]
    networking_config: Option<NetworkingConfig>,
}

#[derive(Debug, Default, Deserialize)]
struct NetworkingConfig {
    #[serde(rename = "EndpointsConfig", default)]
    endpoints_config: Option<BTreeMap<String, Option<super::networks::EndpointBody>>>,
}

async fn create(
    State(containers): State<Arc<Containers>>,
    Query(params): Params,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let Some(body) = body else {
        return Err(ApiError::invalid(
            "config cannot be empty in order to create a container",
        ));
    };
    let mut endpoints = BTreeMap::new();
    for (network, ep) in body
        .networking_config
        .and_then(|n| n.endpoints_config)
        .into_iter()
        .flatten()
    {
        endpoints.insert(network, ep.unwrap_or_default().into_request()?);
    }
    let created = containers
        .create(
            params.get("name").map(String::as_str),
            body.config,
            body.host_config.unwrap_or_default(),
            endpoints,
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": created.id, "Warnings": created.warnings}),
    ))
}

async fn start(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    containers.start(&id).await?;
    Ok(no_content())
}

async fn stop(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let t = int_param(&params, "t")?;
    containers.stop(&id, t).await?;
    Ok(no_content())
}

async fn restart(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let t = int_param(&params, "t")?;
    containers.restart(&id, t).await?;
    Ok(no_content())
}

async fn kill(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    containers
        .kill(&id, params.get("signal").map(String::as_str))
        .await?;
    Ok(no_content())
}

async fn resize(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let (w, h) = terminal_size(&params)?;
    containers.resize(&id, w, h).await?;
    Ok(StatusCode::OK.into_response())
}

/// The `w` and `h` query parameters of a resize (0 when absent), as a terminal size.
fn terminal_size(params: &BTreeMap<String, String>) -> Result<(u16, u16), ApiError> {
    let dim = |key: &str| -> Result<u16, ApiError> {
        let v = int_param(params, key)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::invalid("invalid terminal size"))
    };
    Ok((dim("w")?, dim("h")?))
}

async fn pause(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    containers.pause(&id, true).await?;
    Ok(no_content())
}

async fn unpause(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    containers.pause(&id, false).await?;
    Ok(no_content())
}

async fn rename(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let name = params.get("name").map(String::as_str).unwrap_or("");
    containers.rename(&id, name).await?;
    Ok(no_content())
}

async fn prune(
    State(containers): State<Arc<Containers>>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let filters = match params.get("filters").filter(|v| !v.is_empty()) {
        Some(json) => Filters::parse(json)?,
        None => Filters::new(),
    };
    let removed = containers.prune(&filters).await?;
    let deleted = (!removed.is_empty()).then_some(removed);
    Ok(json_response(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}

async fn remove(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    containers
        .remove_with_volumes(&id, flag(&params, "force"), flag(&params, "v"))
        .await?;
    Ok(no_content())
}

async fn wait(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let condition = match params.get("condition").map(String::as_str) {
        None | Some("") | Some("not-running") => WaitCondition::NotRunning,
        Some("next-exit") => WaitCondition::NextExit,
        Some("removed") => WaitCondition::Removed,
        Some(other) => {
            return Err(ApiError::invalid(format!("invalid condition: \"{other}\"")));
        }
    };
    let outcome = containers.wait(&id, condition)?;
    // The body is a stream, so the headers go out now: the CLI starts the container only
    // once it has them.
    let body = futures_util::stream::once(async move {
        let o = outcome.await;
        let error = o.error.map(|m| json!({"Message": m}));
        let mut line = serde_json::to_vec(&json!({"Error": error, "StatusCode": o.status_code}))
            .unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

async fn attach(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
    mut req: Request,
) -> Result<Response, ApiError> {
    let opts = AttachOptions {
        stdin: flag(&params, "stdin"),
        stdout: flag(&params, "stdout"),
        stderr: flag(&params, "stderr"),
    };
    let keys = detach::parse(params.get("detachKeys").map_or("", String::as_str))?;
    let (_tty, shim_stream) = containers.attach(&id, opts)?;
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let client = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!("attach upgrade failed: {e}");
                return;
            }
        };
        let shim = match shim_stream.await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("attach: {}", e.message);
                return;
            }
        };
        let input = opts.stdin.then(|| Detector::new(keys));
        bridge(client, shim, input).await;
    });
    Ok(upgraded())
}

async fn top(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let args = params.get("ps_args").map(String::as_str).unwrap_or("");
    let report = containers.top(&id, args).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"Processes": report.processes, "Titles": report.titles}),
    ))
}

async fn exec_create(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ExecConfig>,
) -> Result<Response, ApiError> {
    let id = containers.exec_create(&id, body.unwrap_or_default())?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": id})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartBody {
    detach: bool,
}

async fn exec_start(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let upgrade = hyper::upgrade::on(&mut req);
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let body: ExecStartBody = if bytes.is_empty() {
        ExecStartBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid(e.to_string()))?
    };
    let (_tty, stream) = containers.exec_start(&id, body.detach).await?;
    let Some(shim) = stream else {
        return Ok(StatusCode::OK.into_response());
    };
    let config = containers.exec_inspect(&id).await.map(|e| e.config).ok();
    let input = match config.filter(|c| c.attach_stdin) {
        Some(c) => Some(Detector::new(detach::parse(&c.detach_keys)?)),
        None => None,
    };
    tokio::spawn(async move {
        match upgrade.await {
            Ok(u) => bridge(TokioIo::new(u), shim, input).await,
            Err(e) => tracing::debug!("exec upgrade failed: {e}"),
        }
    });
    Ok(upgraded())
}

async fn exec_resize(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let (w, h) = terminal_size(&params)?;
    containers.exec_resize(&id, w, h).await?;
    Ok(StatusCode::OK.into_response())
}

async fn exec_inspect(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = containers.exec_inspect(&id).await?;
    let cmd = e.config.cmd.clone().unwrap_or_default();
    let (entrypoint, arguments) = match cmd.split_first() {
        Some((first, rest)) => (first.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "ID": e.id,
            "Running": e.running,
            "ExitCode": e.exit_code,
            "ProcessConfig": {
                "tty": e.config.tty,
                "entrypoint": entrypoint,
                "arguments": arguments,
                "privileged": e.config.privileged,
                "user": e.config.user,
            },
            "OpenStdin": e.config.attach_stdin,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdout": e.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": e.config.detach_keys,
            "Pid": e.pid,
        }),
    ))
}

/// The 101 answer to a hijack request.
fn upgraded() -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    response
}

/// Copies the shim's output to the client until the shim closes it, and the client's bytes
/// to the shim's stdin when `stdin` watches them; the client's half-close becomes the shim's
/// (stdin EOF). The detach keys end the attach at once: the shim sees the client leave (its
/// stdin-once rule decides about stdin) and the client's connection closes.
async fn bridge<C>(client: C, shim: tokio::net::UnixStream, stdin: Option<Detector>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut shim_read, mut shim_write) = shim.into_split();
    let (detached_tx, detached) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut stdin = stdin;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Some(detector) = stdin.as_mut() else {
                continue;
            };
            let (bytes, detach) = match detector.scan(&buf[..n]) {
                Scan::Forward(b) => (b, false),
                Scan::Detach(b) => (b, true),
            };
            if shim_write.write_all(&bytes).await.is_err() {
                break;
            }
            if detach {
                let _ = shim_write.shutdown().await;
                let _ = detached_tx.send(());
                return;
            }
        }
        let _ = shim_write.shutdown().await;
        // Keep the write half alive until the output side is done.
        std::future::pending::<()>().await;
    });
    tokio::select! {
        _ = tokio::io::copy(&mut shim_read, &mut client_write) => {}
        Ok(()) = detached => tracing::debug!("attach: client typed the detach keys"),
    }
    let _ = client_write.flush().await;
    let _ = client_write.shutdown().await;
    input.abort();
}

async fn logs(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let time = |name: &str| {
        params
            .get(name)
            .filter(|v| !v.is_empty() && v.as_str() != "0")
            .map(|v| parse_timestamp(name, v))
            .transpose()
    };
    let opts = LogOptions {
        stdout: flag(&params, "stdout"),
        stderr: flag(&params, "stderr"),
        follow: flag(&params, "follow"),
        tail: match params.get("tail").map(String::as_str) {
            None | Some("") | Some("all") => None,
            Some(n) => Some(n.parse::<usize>().unwrap_or(0)).filter(|_| !n.starts_with('-')),
        },
        since: time("since")?,
        until: time("until")?,
        timestamps: flag(&params, "timestamps"),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let stream = containers.logs(&id, opts)?;
    let tty = stream.tty;
    let body = futures_util::stream::unfold(stream, move |mut stream| async move {
        let line = stream.next().await?;
        let mut out = Vec::with_capacity(line.data.len() + 8);
        if !tty {
            out.push(line.stream);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(&(line.data.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(&line.data);
        Some((Ok::<_, Infallible>(Bytes::from(out)), stream))
    });
    Ok(Body::from_stream(body).into_response())
}

async fn inspect(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = containers.inspect(&id)?;
    Ok(json_response(StatusCode::OK, &inspect_json(&r)))
}

async fn list(
    State(containers): State<Arc<Containers>>,
    State(images): State<Arc<berth_engine::Images>>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let filters = match params.get("filters").filter(|v| !v.is_empty()) {
        Some(json) => Filters::parse(json)?,
        None => Filters::new(),
    };
    let limit = int_param(&params, "limit")?.and_then(|n| usize::try_from(n).ok());
    let records = containers.list(flag(&params, "all"), &filters, limit)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut items: Vec<Value> = records.iter().map(|r| summary_json(r, now)).collect();
    if flag(&params, "size") {
        let sizes = super::df::container_sizes(&images, &containers, &records).await?;
        for (item, r) in items.iter_mut().zip(&records) {
            super::df::add_sizes(item, sizes.get(&r.id));
        }
    }
    Ok(json_response(StatusCode::OK, &items))
}

fn secs(rfc3339: &str) -> i64 {
    berth_image_time(rfc3339).unwrap_or(0)
}

fn berth_image_time(s: &str) -> Option<i64> {
    // `YYYY-MM-DDTHH:MM:SS[.frac]Z` → Unix seconds (all times here are UTC).
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Docker's human duration (`Up 13 seconds`, `Exited (0) 2 minutes ago`).
fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{s} seconds"),
        60..120 => "About a minute".into(),
        120..3600 => format!("{} minutes", s / 60),
        3600..7200 => "About an hour".into(),
        7200..172_800 => format!("{} hours", s / 3600),
        172_800..1_209_600 => format!("{} days", s / 86_400),
        1_209_600..5_184_000 => format!("{} weeks", s / 604_800),
        5_184_000..63_072_000 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

fn status_text(r: &ContainerRecord, now: i64) -> String {
    let st = &r.state;
    if st.running {
        let up = human_duration(now - secs(&st.started_at));
        return if st.paused {
            format!("Up {up} (Paused)")
        } else if let Some(h) = &st.health {
            format!("Up {up} ({})", berth_engine::containers::health_words(h))
        } else {
            format!("Up {up}")
        };
    }
    match st.status.as_str() {
        "created" => "Created".into(),
        "dead" => "Dead".into(),
        "removing" => "Removal In Progress".into(),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration(now - secs(&st.finished_at))
        ),
        _ => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            human_duration(now - secs(&st.finished_at))
        ),
    }
}

fn command_line(r: &ContainerRecord) -> String {
    let quote = |a: &str| {
        if a.is_empty() || a.contains([' ', '\'', '"', '\t', ';', '$', '&', '|']) {
            format!("'{}'", a.replace('\'', "'\\''"))
        } else {
            a.to_owned()
        }
    };
    std::iter::once(r.path.as_str())
        .chain(r.args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn network_mode(r: &ContainerRecord) -> String {
    match r.host_config.network_mode.as_str() {
        "" => "default".into(),
        m => m.into(),
    }
}

fn mounts_json(r: &ContainerRecord) -> Vec<Value> {
    let mut out = Vec::new();
    for b in r.host_config.binds.iter().flatten() {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() >= 2 && parts[0].starts_with('/') {
            let mode = parts.get(2).copied().unwrap_or("");
            out.push(json!({"Type": "bind", "Source": parts[0], "Destination": parts[1],
                "Mode": mode, "RW": !mode.split(',').any(|m| m == "ro"), "Propagation": "rprivate"}));
        }
    }
    for m in r.host_config.mounts.iter().flatten() {
        if m.kind == "volume" {
            continue;
        }
        out.push(json!({"Type": m.kind, "Source": m.source, "Destination": m.target,
            "Mode": "", "RW": !m.read_only, "Propagation": if m.kind == "bind" { "rprivate" } else { "" }}));
    }
    for p in r.mount_points.values() {
        out.push(json!({"Type": "volume", "Name": p.name, "Source": p.source,
            "Destination": p.destination, "Driver": "local", "Mode": p.mode, "RW": p.rw,
            "Propagation": ""}));
    }
    for dest in r.host_config.tmpfs.iter().flatten().map(|(k, _)| k) {
        out.push(json!({"Type": "tmpfs", "Source": "", "Destination": dest,
            "Mode": "", "RW": true, "Propagation": ""}));
    }
    out
}

pub(super) fn summary_json(r: &ContainerRecord, now: i64) -> Value {
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.config.image,
        "ImageID": r.image,
        "Command": command_line(r),
        "Created": secs(&r.created),
        "Ports": ports_list(r),
        "Labels": r.config.labels.clone().unwrap_or_default(),
        "State": r.state.status,
        "Status": status_text(r, now),
        "HostConfig": {"NetworkMode": network_mode(r)},
        "NetworkSettings": {"Networks": networks_json(r)},
        "Mounts": mounts_json(r),
    })
}

fn inspect_json(r: &ContainerRecord) -> Value {
    let mut host = serde_json::to_value(&r.host_config).unwrap_or(json!({}));
    if let Some(h) = host.as_object_mut() {
        h.insert("NetworkMode".into(), json!(network_mode(r)));
        h.insert(
            "LogConfig".into(),
            json!({"Type": "json-file", "Config": {}}),
        );
        h.insert("IpcMode".into(), json!("private"));
        h.insert("Runtime".into(), json!("runc"));
        if r.host_config.shm_size == 0 {
            h.insert("ShmSize".into(), json!(67_108_864));
        }
        if r.host_config.restart_policy.is_none() {
            h.insert(
                "RestartPolicy".into(),
                json!({"Name": "no", "MaximumRetryCount": 0}),
            );
        }
    }
    let mut config = serde_json::to_value(&r.config).unwrap_or(json!({}));
    if let Some(c) = config.as_object_mut() {
        c.insert("Volumes".into(), Value::Null);
        c.insert("OnBuild".into(), Value::Null);
        if c.get("StopSignal").is_some_and(Value::is_null) {
            c.remove("StopSignal");
        }
        if c.get("StopTimeout").is_some_and(Value::is_null) {
            c.remove("StopTimeout");
        }
    }
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": r.state,
        "Image": r.image,
        "ResolvConfPath": r.resolv_conf_path,
        "HostnamePath": r.hostname_path,
        "HostsPath": r.hosts_path,
        "LogPath": r.log_path,
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": host,
        "GraphDriver": {"Data": r.graph_driver, "Name": "overlay2"},
        "Mounts": mounts_json(r),
        "Config": config,
        "NetworkSettings": network_settings_json(r),
    })
}

/// Inspect's `NetworkSettings`: the legacy top-level fields come from the default bridge's
/// endpoint, as in Docker.
fn network_settings_json(r: &ContainerRecord) -> Value {
    let ns = &r.network_settings;
    let bridge = ns.networks.get("bridge");
    let field = |f: fn(&berth_engine::networks::EndpointSettings) -> Value, empty: Value| {
        bridge.map(f).unwrap_or(empty)
    };
    let sandbox = if r.state.running && r.state.pid > 0 {
        format!("/proc/{}/ns/net", r.state.pid)
    } else {
        String::new()
    };
    let ports: BTreeMap<String, Value> = ns
        .ports
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .chain(exposed_unbound(r).map(|k| (k, Value::Null)))
        .collect();
    json!({
        "Bridge": "", "SandboxID": "", "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports,
        "SandboxKey": sandbox, "SecondaryIPAddresses": Value::Null,
        "SecondaryIPv6Addresses": Value::Null,
        "EndpointID": field(|e| json!(e.endpoint_id), json!("")),
        "Gateway": field(|e| json!(e.gateway), json!("")),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": field(|e| json!(e.ip_address), json!("")),
        "IPPrefixLen": field(|e| json!(e.ip_prefix_len), json!(0)),
        "IPv6Gateway": "",
        "MacAddress": field(|e| json!(e.mac_address), json!("")),
        "Networks": networks_json(r),
    })
}

/// Exposed ports of a running container that have no binding (inspect lists them as null).
fn exposed_unbound(r: &ContainerRecord) -> impl Iterator<Item = String> + '_ {
    r.config
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys())
        .filter(move |k| r.state.running && !r.network_settings.ports.contains_key(*k))
        .cloned()
}

/// `NetworkSettings.Networks`, each endpoint in Docker's shape.
fn networks_json(r: &ContainerRecord) -> BTreeMap<String, Value> {
    r.network_settings
        .networks
        .iter()
        .map(|(name, e)| {
            let ipam = e
                .ipv4_requested
                .as_ref()
                .map_or(Value::Null, |ip| json!({"IPv4Address": ip}));
            let value = json!({
                "IPAMConfig": ipam, "Links": Value::Null, "Aliases": e.aliases,
                "MacAddress": e.mac_address, "DriverOpts": Value::Null,
                "NetworkID": e.network_id, "EndpointID": e.endpoint_id,
                "Gateway": e.gateway, "IPAddress": e.ip_address,
                "IPPrefixLen": e.ip_prefix_len, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "DNSNames": if e.dns_names.is_empty() { Value::Null } else { json!(e.dns_names) },
            });
            (name.clone(), value)
        })
        .collect()
}

/// The list's `Ports`: each published binding, and exposed ports without one.
fn ports_list(r: &ContainerRecord) -> Vec<Value> {
    let split = |key: &str| {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        (port.parse::<u16>().unwrap_or(0), proto.to_owned())
    };
    let mut out = Vec::new();
    for (key, bindings) in &r.network_settings.ports {
        let (private, proto) = split(key);
        for b in bindings {
            out.push(json!({"IP": b.host_ip, "PrivatePort": private,
                "PublicPort": b.host_port.parse::<u16>().unwrap_or(0), "Type": proto}));
        }
    }
    for key in exposed_unbound(r) {
        let (private, proto) = split(&key);
        out.push(json!({"PrivatePort": private, "Type": proto}));
    }
    out
}
