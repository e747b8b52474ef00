//! `GET /version` and `GET /info`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    /// `{"Name": ""}` from Docker Engine Community; kept for clients that read it.
    pub platform: Platform,
    /// Engine, runtime and init versions; clients accept its absence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentVersion>,
    /// The engine's version.
    pub version: String,
    /// The newest API version served.
    pub api_version: String,
    /// The oldest API version served.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// The source revision the engine was built from.
    pub git_commit: String,
    /// Docker reports its Go version here; berth reports its Rust toolchain.
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// Go's architecture name: `amd64`, `arm64`, ….
    pub arch: String,
    /// `uname -r`.
    pub kernel_version: String,
    /// Omitted unless experimental features are on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub experimental: bool,
    /// When the engine was built (RFC 3339), omitted if unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build_time: String,
}

/// `Version.Platform`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    /// The product name; empty for the plain engine.
    pub name: String,
}

/// One entry of `Version.Components`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    /// `Engine`, `containerd`, `runc`, `docker-init`, ….
    pub name: String,
    /// The component's version.
    pub version: String,
    /// Free-form string facts (`ApiVersion`, `GitCommit`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
}

/// The body of `GET /info`, field for field as Docker Engine 20.10 sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemInfo {
    /// A stable id of this engine instance.
    #[serde(rename = "ID")]
    pub id: String,
    /// Number of containers in any state.
    pub containers: i64,
    /// Number of running containers.
    pub containers_running: i64,
    /// Number of paused containers.
    pub containers_paused: i64,
    /// Number of stopped containers.
    pub containers_stopped: i64,
    /// Number of images.
    pub images: i64,
    /// The storage driver (`overlay2`).
    pub driver: String,
    /// Storage driver facts as `[name, value]` pairs.
    pub driver_status: Vec<[String; 2]>,
    /// Available volume, network, authorization and log plugins.
    pub plugins: PluginsInfo,
    /// The memory cgroup controller is available.
    pub memory_limit: bool,
    /// Swap limits are available (`memory.memsw.*` on v1, `memory.swap.max` on v2).
    pub swap_limit: bool,
    /// Kernel memory limits are available (deprecated by the kernel).
    pub kernel_memory: bool,
    /// Kernel TCP memory limits are available.
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: bool,
    /// CFS period can be set.
    pub cpu_cfs_period: bool,
    /// CFS quota can be set.
    pub cpu_cfs_quota: bool,
    /// CPU shares can be set.
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    /// The cpuset controller is available.
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    /// The pids controller is available.
    pub pids_limit: bool,
    /// `net.ipv4.ip_forward` is on.
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// `net.bridge.bridge-nf-call-iptables` is on.
    pub bridge_nf_iptables: bool,
    /// `net.bridge.bridge-nf-call-ip6tables` is on.
    #[serde(rename = "BridgeNfIp6tables")]
    pub bridge_nf_ip6tables: bool,
    /// The daemon runs with debug logging.
    pub debug: bool,
    /// Open file descriptors of the daemon.
    #[serde(rename = "NFd")]
    pub nfd: i64,
    /// The OOM killer can be disabled per container.
    pub oom_kill_disable: bool,
    /// Docker's goroutine count; berth reports its thread count.
    #[serde(rename = "NGoroutines")]
    pub n_goroutines: i64,
    /// The daemon's clock, RFC 3339 with nanoseconds.
    pub system_time: String,
    /// The default log driver (`json-file`).
    pub logging_driver: String,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// Number of `/events` subscribers.
    #[serde(rename = "NEventsListener")]
    pub n_events_listener: i64,
    /// `uname -r`.
    pub kernel_version: String,
    /// `PRETTY_NAME` from os-release.
    pub operating_system: String,
    /// `VERSION_ID` from os-release.
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `uname -m` (`x86_64`).
    pub architecture: String,
    /// The default registry's index address.
    pub index_server_address: String,
    /// Registry mirrors and insecure registries.
    pub registry_config: RegistryServiceConfig,
    /// Number of CPUs the daemon may use.
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    /// Total memory in bytes.
    pub mem_total: i64,
    /// Swarm generic resources; null when none.
    pub generic_resources: Option<Vec<GenericResource>>,
    /// The data root (`--data-root`).
    pub docker_root_dir: String,
    /// The daemon's `HTTP_PROXY`.
    pub http_proxy: String,
    /// The daemon's `HTTPS_PROXY`.
    pub https_proxy: String,
    /// The daemon's `NO_PROXY`.
    pub no_proxy: String,
    /// The host name.
    pub name: String,
    /// Engine labels (`--label`).
    pub labels: Vec<String>,
    /// Experimental features are on.
    pub experimental_build: bool,
    /// The engine's version.
    pub server_version: String,
    /// Configured OCI runtimes by name.
    pub runtimes: BTreeMap<String, Runtime>,
    /// The runtime used when a container names none.
    pub default_runtime: String,
    /// Swarm state; `LocalNodeState: "inactive"` tells clients not to try swarm objects.
    pub swarm: SwarmInfo,
    /// `--live-restore`.
    pub live_restore_enabled: bool,
    /// Isolation technology (Windows only; empty on Linux).
    pub isolation: String,
    /// The `--init` binary.
    pub init_binary: String,
    /// containerd's commit (berth: the shim's version).
    pub containerd_commit: Commit,
    /// runc's commit (berth: the runtime's version).
    pub runc_commit: Commit,
    /// The init binary's commit.
    pub init_commit: Commit,
    /// `name=seccomp,profile=default`, and friends.
    pub security_options: Vec<String>,
    /// Warnings for the CLI to print (read by clients at API 1.42+); null when none.
    pub warnings: Option<Vec<String>>,
}

/// `Info.Plugins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginsInfo {
    /// Volume drivers.
    pub volume: Vec<String>,
    /// Network drivers.
    pub network: Vec<String>,
    /// Authorization plugins; null when none.
    pub authorization: Option<Vec<String>>,
    /// Log drivers.
    pub log: Vec<String>,
}

/// `Info.RegistryConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryServiceConfig {
    /// Deprecated by Docker; always empty.
    #[serde(rename = "AllowNondistributableArtifactsCIDRs")]
    pub allow_nondistributable_artifacts_cidrs: Vec<String>,
    /// Deprecated by Docker; always empty.
    pub allow_nondistributable_artifacts_hostnames: Vec<String>,
    /// Networks whose registries are reached over plain HTTP.
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    /// Per-registry settings by host name.
    pub index_configs: BTreeMap<String, IndexInfo>,
    /// Registry mirrors.
    pub mirrors: Vec<String>,
}

/// One entry of `RegistryConfig.IndexConfigs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInfo {
    /// The registry host name.
    pub name: String,
    /// Its mirrors.
    pub mirrors: Vec<String>,
    /// It is reached over TLS.
    pub secure: bool,
    /// It is Docker Hub.
    pub official: bool,
}

/// One entry of `Info.Runtimes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    /// The runtime binary.
    pub path: String,
    /// Extra arguments; omitted when none.
    #[serde(
        rename = "runtimeArgs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_args: Option<Vec<String>>,
}

/// `Info.Swarm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    /// Empty when not in a swarm.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// Empty when not in a swarm.
    pub node_addr: String,
    /// `inactive` when not in a swarm.
    pub local_node_state: String,
    /// This node is a manager.
    pub control_available: bool,
    /// The last swarm error.
    pub error: String,
    /// Managers known to this node; null when none.
    pub remote_managers: Option<Vec<PeerNode>>,
}

/// A swarm manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerNode {
    /// The node's id.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// Its address.
    pub addr: String,
}

/// A swarm generic resource: either named or discrete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenericResource {
    /// A named resource (`{"Kind":"gpu","Value":"uuid"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_resource_spec: Option<NamedGenericResource>,
    /// A counted resource (`{"Kind":"ssd","Value":3}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteGenericResource>,
}

/// A named generic resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedGenericResource {
    /// The resource kind.
    pub kind: String,
    /// Its name.
    pub value: String,
}

/// A discrete generic resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiscreteGenericResource {
    /// The resource kind.
    pub kind: String,
    /// How many.
    pub value: i64,
}

/// A commit pair in `Info` (`ContainerdCommit`, `RuncCommit`, `InitCommit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The commit found.
    #[serde(rename = "ID")]
    pub id: String,
    /// The commit expected.
    #[serde(rename = "Expected")]
    pub expected: String,
}
