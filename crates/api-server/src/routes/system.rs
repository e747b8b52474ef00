//! `/_ping`, `/version`, `/info`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_api_types::{
    API_VERSION, Commit, ComponentVersion, IndexInfo, MIN_API_VERSION, Platform, PluginsInfo,
    RegistryServiceConfig, Runtime, SwarmInfo, SystemInfo, Version,
};
use berth_engine::{Events, InfoReport, System, VersionReport};

use crate::Backend;
use crate::error::json_response;
use crate::time::rfc3339_nano;

pub(super) fn routes() -> Router<Backend> {
    Router::new()
        .route("/_ping", get(ping).head(ping_head))
        .route("/version", get(version))
        .route("/info", get(info))
}

/// Headers of both ping forms; the CLI negotiates its API version from `API-Version`.
fn ping_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
        (
            HeaderName::from_static("api-version"),
            HeaderValue::from_static(API_VERSION),
        ),
        (
            HeaderName::from_static("builder-version"),
            HeaderValue::from_static("1"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, must-revalidate"),
        ),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

async fn ping() -> Response {
    (ping_headers(), "OK").into_response()
}

async fn ping_head() -> Response {
    (ping_headers(), [(header::CONTENT_LENGTH, "0")]).into_response()
}

async fn version(State(system): State<Arc<System>>) -> Response {
    json_response(StatusCode::OK, &version_body(system.version()))
}

async fn info(State(system): State<Arc<System>>, State(events): State<Arc<Events>>) -> Response {
    json_response(
        StatusCode::OK,
        &info_body(system.info(), events.listeners()),
    )
}

fn version_body(report: VersionReport) -> Version {
    let details = BTreeMap::from([
        ("ApiVersion".to_owned(), API_VERSION.to_owned()),
        ("Arch".to_owned(), report.arch.clone()),
        ("Experimental".to_owned(), "false".to_owned()),
        ("GitCommit".to_owned(), report.git_commit.clone()),
        ("GoVersion".to_owned(), report.toolchain.clone()),
        ("KernelVersion".to_owned(), report.kernel_version.clone()),
        ("MinAPIVersion".to_owned(), MIN_API_VERSION.to_owned()),
        ("Os".to_owned(), report.os.clone()),
    ]);
    Version {
        platform: Platform {
            name: "berth".into(),
        },
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: report.version.clone(),
            details: Some(details),
        }],
        version: report.version,
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: report.git_commit,
        go_version: report.toolchain,
        os: report.os,
        arch: report.arch,
        kernel_version: report.kernel_version,
        experimental: false,
        build_time: String::new(),
    }
}

fn info_body(report: InfoReport, listeners: usize) -> SystemInfo {
    let host = report.host;
    let cgroup = host.cgroup.unwrap_or_default();
    let empty_commit = || Commit {
        id: String::new(),
        expected: String::new(),
    };
    let [http_proxy, https_proxy, no_proxy] = report.proxies;
    SystemInfo {
        id: report.id,
        containers: 0,
        containers_running: 0,
        containers_paused: 0,
        containers_stopped: 0,
        images: 0,
        driver: report.driver,
        driver_status: vec![],
        plugins: PluginsInfo {
            volume: vec!["local".into()],
            network: vec!["bridge".into(), "host".into(), "null".into()],
            authorization: None,
            log: vec!["json-file".into()],
        },
        memory_limit: cgroup.memory_limit,
        swap_limit: cgroup.swap_limit,
        kernel_memory: cgroup.kernel_memory,
        kernel_memory_tcp: cgroup.kernel_memory_tcp,
        cpu_cfs_period: cgroup.cpu_cfs_period,
        cpu_cfs_quota: cgroup.cpu_cfs_quota,
        cpu_shares: cgroup.cpu_shares,
        cpu_set: cgroup.cpu_set,
        pids_limit: cgroup.pids_limit,
        ipv4_forwarding: host.ipv4_forwarding,
        bridge_nf_iptables: host.bridge_nf_iptables,
        bridge_nf_ip6tables: host.bridge_nf_ip6tables,
        debug: report.debug,
        nfd: report.open_fds,
        oom_kill_disable: cgroup.oom_kill_disable,
        n_goroutines: report.threads,
        system_time: rfc3339_nano(report.now_nanos),
        logging_driver: report.logging_driver,
        cgroup_driver: report.cgroup_driver,
        cgroup_version: cgroup.version,
        n_events_listener: i64::try_from(listeners).unwrap_or(i64::MAX),
        kernel_version: host.kernel_version,
        operating_system: host.operating_system,
        os_version: host.os_version,
        os_type: "linux".into(),
        architecture: host.machine,
        index_server_address: "https://index.docker.io/v1/".into(),
        registry_config: default_registry_config(),
        ncpu: host.ncpu,
        mem_total: host.mem_total,
        generic_resources: None,
        docker_root_dir: report.data_root.display().to_string(),
        http_proxy,
        https_proxy,
        no_proxy,
        name: host.hostname,
        labels: report.labels,
        experimental_build: false,
        server_version: report.server_version,
        runtimes: report
            .runtimes
            .into_iter()
            .map(|(name, path)| {
                let runtime = Runtime {
                    path,
                    runtime_args: None,
                };
                (name, runtime)
            })
            .collect(),
        default_runtime: report.default_runtime,
        swarm: SwarmInfo {
            node_id: String::new(),
            node_addr: String::new(),
            // Tells clients not to try swarm objects (`docker inspect` checks it).
            local_node_state: "inactive".into(),
            control_available: false,
            error: String::new(),
            remote_managers: None,
        },
        live_restore_enabled: false,
        isolation: String::new(),
        init_binary: String::new(),
        containerd_commit: empty_commit(),
        runc_commit: empty_commit(),
        init_commit: empty_commit(),
        security_options: report.security_options,
        warnings: None,
    }
}

/// Docker's defaults: Docker Hub secure and official, loopback registries insecure.
fn default_registry_config() -> RegistryServiceConfig {
    RegistryServiceConfig {
        allow_nondistributable_artifacts_cidrs: vec![],
        allow_nondistributable_artifacts_hostnames: vec![],
        insecure_registry_cidrs: vec!["127.0.0.0/8".into()],
        index_configs: BTreeMap::from([(
            "docker.io".into(),
            IndexInfo {
                name: "docker.io".into(),
                mirrors: vec![],
                secure: true,
                official: true,
            },
        )]),
        mirrors: vec![],
    }
}
