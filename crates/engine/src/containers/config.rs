//! A container's configuration and state as the engine keeps them: `Config` and `HostConfig`
//! (the fields berth applies, with Docker's names so that the record on disk reads like
//! Docker's), and `State`. Absent and `null` are the same ("not given").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `Config`: what runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    /// The hostname (default: the short id).
    pub hostname: String,
    /// `Domainname`.
    pub domainname: String,
    /// `user[:group]`.
    pub user: String,
    /// Attach flags the client sent (kept for inspect).
    pub attach_stdin: bool,
    /// See `attach_stdin`.
    pub attach_stdout: bool,
    /// See `attach_stdin`.
    pub attach_stderr: bool,
    /// Allocate a pty.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin after the first attached client detaches.
    pub stdin_once: bool,
    /// `KEY=value`.
    pub env: Option<Vec<String>>,
    /// The command.
    pub cmd: Option<Vec<String>>,
    /// The image as the user named it.
    pub image: String,
    /// Working directory.
    pub working_dir: String,
    /// Entrypoint; `[""]` resets the image's.
    pub entrypoint: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Stop signal (`SIGTERM` when unset).
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (10 when unset).
    pub stop_timeout: Option<i64>,
    /// `Volumes`: anonymous volumes (`-v /path` puts them here).
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// `ExposedPorts` (kept for inspect; ports are the network layer's).
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// `--mac-address` (API < 1.44 sends it here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// `--health-*` / the image's `HEALTHCHECK`, merged at create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<super::HealthConfig>,
}

/// One `HostConfig.Mounts[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountConfig {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Host path or volume name.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
    /// Bind options.
    pub bind_options: Option<BindOptions>,
    /// Tmpfs options.
    pub tmpfs_options: Option<TmpfsOptions>,
    /// Volume options.
    pub volume_options: Option<VolumeOptions>,
}

/// `VolumeOptions` of a `--mount type=volume`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    /// Do not copy image content into a new volume (`volume-nocopy`).
    pub no_copy: bool,
    /// Labels for a volume created by this mount.
    pub labels: Option<BTreeMap<String, String>>,
    /// `volume-driver` and `volume-opt`.
    pub driver_config: Option<DriverConfig>,
}

/// `VolumeOptions.DriverConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    /// Driver name.
    pub name: String,
    /// Driver options.
    pub options: Option<BTreeMap<String, String>>,
}

/// `BindOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    /// `rprivate`, `shared`, ….
    pub propagation: String,
    /// Do not bind submounts.
    pub non_recursive: bool,
}

/// `TmpfsOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    /// Size in bytes.
    pub size_bytes: i64,
    /// Mode bits.
    pub mode: u32,
}

/// One `--ulimit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UlimitConfig {
    /// `nofile`, ….
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// `RestartPolicy` (kept; berth does not restart containers yet).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// For `on-failure`.
    pub maximum_retry_count: i64,
}

/// `HostConfig`: how it runs on this host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v` entries.
    pub binds: Option<Vec<String>>,
    /// `default`, `bridge`, `none`, `host`, ….
    pub network_mode: String,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--restart`.
    pub restart_policy: Option<RestartPolicy>,
    /// `--mount`.
    pub mounts: Option<Vec<MountConfig>>,
    /// `--volumes-from name[:ro|:rw]`.
    pub volumes_from: Option<Vec<String>>,
    /// `--tmpfs`.
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `--memory`.
    pub memory: i64,
    /// `--memory-swap`.
    pub memory_swap: i64,
    /// `--memory-reservation`.
    pub memory_reservation: i64,
    /// `--cpus` × 10⁹.
    pub nano_cpus: i64,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpu-period`.
    pub cpu_period: i64,
    /// `--cpu-quota`.
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Option<Vec<String>>,
    /// `--cap-drop`.
    pub cap_drop: Option<Vec<String>>,
    /// `--security-opt`.
    pub security_opt: Option<Vec<String>>,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `--ulimit`.
    pub ulimits: Option<Vec<UlimitConfig>>,
    /// `--init`.
    pub init: Option<bool>,
    /// `--shm-size`.
    pub shm_size: i64,
    /// `--oom-score-adj`.
    pub oom_score_adj: i32,
    /// `--sysctl`.
    pub sysctls: Option<BTreeMap<String, String>>,
    /// `--group-add`.
    pub group_add: Option<Vec<String>>,
    /// `--cgroup-parent`.
    pub cgroup_parent: String,
    /// `--uts`.
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `--cgroupns`.
    pub cgroupns_mode: String,
    /// Replaces Docker's masked paths.
    pub masked_paths: Option<Vec<String>>,
    /// Replaces Docker's read-only paths.
    pub readonly_paths: Option<Vec<String>>,
    /// `--memory-swappiness`.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: Option<bool>,
    /// `--blkio-weight`.
    pub blkio_weight: u16,
    /// `-p`: `80/tcp` → `[{"HostIp": "", "HostPort": "8080"}]`.
    pub port_bindings: Option<BTreeMap<String, serde_json::Value>>,
    /// `-P`: every exposed port on an ephemeral host port.
    pub publish_all_ports: bool,
    /// `--dns`.
    pub dns: Option<Vec<String>>,
    /// `--dns-option`.
    pub dns_options: Option<Vec<String>>,
    /// `--dns-search`.
    pub dns_search: Option<Vec<String>>,
    /// `--add-host`: `name:ip` (or `name=ip`).
    pub extra_hosts: Option<Vec<String>>,
    /// `--link name[:alias]` (legacy links on the default bridge: `/etc/hosts` entries).
    pub links: Option<Vec<String>>,
    /// Mount the root file system as a `volatile` overlay (no syncs, so removing it does
    /// not flush the whole disk): build steps' containers, scratch space a crash discards.
    /// Set by the engine only, never read from a client or the record.
    #[serde(skip)]
    pub volatile_rootfs: bool,
}

/// `State`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    /// Running (also while paused).
    pub running: bool,
    /// Frozen.
    pub paused: bool,
    /// Being restarted by its policy.
    pub restarting: bool,
    /// The OOM killer struck.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Could not be removed.
    pub dead: bool,
    /// The init's pid while running, else 0.
    pub pid: i32,
    /// The last exit code.
    pub exit_code: i32,
    /// Why the last start failed.
    pub error: String,
    /// RFC 3339; Go's zero time when never.
    pub started_at: String,
    /// RFC 3339; Go's zero time when never.
    pub finished_at: String,
    /// The health check's state, when the container has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<super::Health>,
}

/// Go's zero `time.Time`, which Docker prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Default for State {
    fn default() -> State {
        State {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            health: None,
        }
    }
}

/// Everything the engine stores about one container (`config.v2.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerRecord {
    /// 64 hex.
    #[serde(rename = "ID")]
    pub id: String,
    /// The name, without the leading `/`.
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The program run (entrypoint + cmd, first word).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The image id (`sha256:…`).
    pub image: String,
    /// `Config`.
    pub config: Config,
    /// `HostConfig`.
    pub host_config: HostConfig,
    /// `State`.
    pub state: State,
    /// The overlay's directories (`LowerDir`, `UpperDir`, `WorkDir`, `MergedDir`).
    pub graph_driver: BTreeMap<String, String>,
    /// `/etc/resolv.conf` on the host.
    pub resolv_conf_path: String,
    /// `/etc/hostname` on the host.
    pub hostname_path: String,
    /// `/etc/hosts` on the host.
    pub hosts_path: String,
    /// The json-file log.
    pub log_path: String,
    /// How many times it was restarted.
    pub restart_count: i64,
    /// Stopped or killed by a user: a restart policy other than `always` leaves it stopped.
    pub has_been_manually_stopped: bool,
    /// What it is connected to while running.
    pub network_settings: crate::networks::NetworkSettings,
    /// `NetworkingConfig.EndpointsConfig` from create: network → `--ip`, aliases.
    pub endpoints_config: BTreeMap<String, crate::networks::EndpointRequest>,
    /// The container's volumes, by destination (`MountPoints`, as in Docker's record).
    #[serde(default)]
    pub mount_points: BTreeMap<String, MountPoint>,
}

/// A volume mounted into a container, as inspect's `Mounts` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// The volume's name.
    pub name: String,
    /// The volume's host directory.
    pub source: String,
    /// Path in the container.
    pub destination: String,
    /// `-v`'s mode string (`z` when none was given), empty for `--mount` and image volumes.
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Created for this container (removed with it by `rm -v` and `--rm`).
    pub anonymous: bool,
}
