//! Network routes: list, inspect, create, remove, prune, connect and disconnect, in the
//! shapes of Docker's answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use berth_engine::networks::{CreateRequest, EndpointSettings, IpamRequest, NetworkRecord};
use berth_engine::{Containers, Networks};
use berth_reference::Filters;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Backend;
use crate::body::JsonBody;
use crate::error::{ApiError, json_response};

type Params = Query<BTreeMap<String, String>>;

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

fn filters(params: &BTreeMap<String, String>) -> Result<Filters, ApiError> {
    match params.get("filters").filter(|v| !v.is_empty()) {
        Some(json) => Ok(Filters::parse(json)?),
        None => Ok(Filters::new()),
    }
}

/// A network as Docker shows it; `containers` only in inspect.
fn network_json(r: &NetworkRecord, containers: Option<&[(String, EndpointSettings)]>) -> Value {
    let ipam_options = if r.driver == "bridge" && !r.is_default_bridge() {
        json!({})
    } else {
        Value::Null
    };
    let containers: BTreeMap<&str, Value> = containers
        .into_iter()
        .flatten()
        .map(|(id, ep)| {
            (
                id.as_str(),
                json!({
                    "Name": ep.container_name,
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac_address,
                    "IPv4Address": format!("{}/{}", ep.ip_address, ep.ip_prefix_len),
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": r.name,
        "Id": r.id,
        "Created": r.created,
        "Scope": "local",
        "Driver": r.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": ipam_options, "Config": r.ipam},
        "Internal": r.internal,
        "Attachable": r.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": r.options,
        "Labels": r.labels,
    })
}

async fn list(
    State(networks): State<Arc<Networks>>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let list = networks.list(&filters(&params)?)?;
    let body: Vec<Value> = list.iter().map(|r| network_json(r, Some(&[]))).collect();
    Ok(json_response(StatusCode::OK, &body))
}

async fn inspect(
    State(networks): State<Arc<Networks>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (record, endpoints) = networks.inspect(&id)?;
    Ok(json_response(
        StatusCode::OK,
        &network_json(&record, Some(&endpoints)),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    driver: String,
    config: Option<Vec<IpamConfigBody>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfigBody {
    subnet: Option<String>,
    #[serde(rename = "IPRange")]
    ip_range: Option<String>,
    gateway: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
    internal: bool,
    attachable: bool,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

async fn create(
    State(networks): State<Arc<Networks>>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let Some(body) = body else {
        return Err(ApiError::invalid("network name is required"));
    };
    if body.name.is_empty() {
        return Err(ApiError::invalid("network name is required"));
    }
    if body.enable_ipv6 == Some(true) {
        return Err(ApiError::invalid(
            "berth: IPv6 networks are not supported yet",
        ));
    }
    let ipam = body.ipam.unwrap_or_default();
    if !matches!(ipam.driver.as_str(), "" | "default") {
        return Err(ApiError::new(
            berth_errdefs::Category::NotFound,
            format!("plugin \"{}\" not found", ipam.driver),
        ));
    }
    let record = networks
        .create(CreateRequest {
            name: body.name,
            driver: body.driver,
            internal: body.internal,
            attachable: body.attachable,
            labels: body.labels.unwrap_or_default(),
            options: body.options.unwrap_or_default(),
            ipam: ipam
                .config
                .unwrap_or_default()
                .into_iter()
                .map(|c| IpamRequest {
                    subnet: c.subnet,
                    gateway: c.gateway,
                    ip_range: c.ip_range,
                })
                .collect(),
        })
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": record.id, "Warning": ""}),
    ))
}

async fn remove(
    State(networks): State<Arc<Networks>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    networks.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(
    State(networks): State<Arc<Networks>>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let names = networks.prune(&filters(&params)?).await?;
    let deleted = if names.is_empty() {
        Value::Null
    } else {
        json!(names)
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"NetworksDeleted": deleted}),
    ))
}

/// `EndpointConfig` of connect (and `NetworkingConfig.EndpointsConfig[]` of create).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct EndpointBody {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
    aliases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
}

impl EndpointBody {
    pub(crate) fn into_request(self) -> Result<berth_engine::networks::EndpointRequest, ApiError> {
        let ipv4 = match self.ipam_config.map(|c| c.ipv4_address) {
            Some(ip) if !ip.is_empty() => Some(
                ip.parse()
                    .map_err(|_| ApiError::invalid(format!("invalid IPv4 address: {ip}")))?,
            ),
            _ => None,
        };
        Ok(berth_engine::networks::EndpointRequest {
            ipv4,
            aliases: self.aliases.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointBody>,
    force: bool,
}

async fn connect(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ConnectBody>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let request = body.endpoint_config.unwrap_or_default().into_request()?;
    containers.connect(&id, &body.container, request).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(
    State(containers): State<Arc<Containers>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ConnectBody>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    containers
        .disconnect(&id, &body.container, body.force)
        .await?;
    Ok(StatusCode::OK.into_response())
}
