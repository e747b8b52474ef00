//! The inputs: a container's configuration as Docker's API carries it (`Config` and
//! `HostConfig`, with the image config already merged in), and what the engine decided for
//! this run ([`RuntimeContext`]): paths, namespaces to join, host facts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::host::HostFacts;

/// A container's configuration: the fields of Docker's `Config` and `HostConfig` that shape
/// the OCI spec. Empty / `None` means "not given", as in the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerConfig {
    /// `Config.User`: `user[:group]`, names or numeric ids. Empty means root.
    pub user: String,
    /// `Config.Env`: `KEY=value` (image env already merged, see [`merge_image_config`]).
    ///
    /// [`merge_image_config`]: crate::merge_image_config
    pub env: Vec<String>,
    /// `Config.Cmd`.
    pub cmd: Vec<String>,
    /// `Config.Entrypoint`. `Some(vec![""])` is `--entrypoint ""`: no entrypoint at all.
    pub entrypoint: Option<Vec<String>>,
    /// `Config.WorkingDir`; must be absolute when given.
    pub working_dir: String,
    /// `Config.Domainname`.
    pub domainname: String,
    /// `Config.Tty`: allocate a terminal (also sets `TERM=xterm`).
    pub tty: bool,
    /// `Config.Labels`, copied into the spec's annotations.
    pub labels: BTreeMap<String, String>,
    /// `Config.StopSignal`, validated and stored in the annotation [`STOP_SIGNAL_ANNOTATION`].
    ///
    /// [`STOP_SIGNAL_ANNOTATION`]: crate::STOP_SIGNAL_ANNOTATION
    pub stop_signal: Option<String>,
    /// `HostConfig`: everything about how the container runs on this host.
    pub host: HostConfig,
}

/// The fields of Docker's `HostConfig` that shape the OCI spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostConfig {
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`: `no-new-privileges[=bool]`, `seccomp=unconfined`,
    /// `seccomp=<profile JSON>` (the CLI sends the file's content), `apparmor=…`, `label=…`.
    pub security_opt: Vec<String>,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// `-v` entries (`Binds`), parsed with [`parse_bind`](crate::parse_bind).
    pub binds: Vec<String>,
    /// `--mount` entries (`Mounts`).
    pub mounts: Vec<MountSpec>,
    /// `--tmpfs`: destination → options (`size=64m,mode=1777`).
    pub tmpfs: BTreeMap<String, String>,
    /// `--device` entries.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule` entries (`c 1:3 rwm`).
    pub device_cgroup_rules: Vec<String>,
    /// `--shm-size` in bytes; 0 means Docker's 64 MiB.
    pub shm_size: i64,
    /// `--init` (`None`: the daemon's default, see [`RuntimeContext::init_default`]).
    pub init: Option<bool>,
    /// `--group-add`: group names (resolved in the container's `/etc/group`) or gids.
    pub group_add: Vec<String>,
    /// `--sysctl`.
    pub sysctls: BTreeMap<String, String>,
    /// `--ulimit` (they override the daemon's defaults of the same name).
    pub ulimits: Vec<Ulimit>,
    /// `--oom-score-adj`, -1000..=1000.
    pub oom_score_adj: i32,
    /// `--uts`: `""` (private) or `host`.
    pub uts_mode: String,
    /// `--cgroupns`: `""` (the host's default), `private` or `host`.
    pub cgroupns_mode: String,
    /// `--cgroup-parent`; empty means [`RuntimeContext::cgroup_parent`].
    pub cgroup_parent: String,
    /// `HostConfig.MaskedPaths`: replaces Docker's list when given.
    pub masked_paths: Option<Vec<String>>,
    /// `HostConfig.ReadonlyPaths`: replaces Docker's list when given.
    pub readonly_paths: Option<Vec<String>>,
    /// Memory, CPU, pids and block I/O limits.
    pub resources: Resources,
}

/// `HostConfig.Resources`: zero / `None` means unlimited, as in the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// `--memory` in bytes.
    pub memory: i64,
    /// `--memory-swap` in bytes (memory + swap); -1 unlimited; 0 means twice `memory`.
    pub memory_swap: i64,
    /// `--memory-reservation` in bytes.
    pub memory_reservation: i64,
    /// `--memory-swappiness` 0..=100; `None` or -1 keeps the host's.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--cpus` × 10⁹.
    pub nano_cpus: i64,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpu-period` in µs.
    pub cpu_period: i64,
    /// `--cpu-quota` in µs.
    pub cpu_quota: i64,
    /// `--cpuset-cpus` (`0-2,4`).
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit`; 0 or negative means unlimited.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight` 10..=1000, 0 unset.
    pub blkio_weight: u16,
}

/// One `--ulimit name=soft[:hard]`, as the API carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// `nofile`, `nproc`, … (without `RLIMIT_`).
    pub name: String,
    /// Soft limit; -1 is unlimited.
    pub soft: i64,
    /// Hard limit; -1 is unlimited.
    pub hard: i64,
}

/// One `--device host[:container[:perms]]`, as the API carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    /// A device node or a directory of them on the host.
    pub path_on_host: String,
    /// Where it appears in the container (empty: the host path).
    pub path_in_container: String,
    /// Any of `r`, `w`, `m` (empty: `rwm`).
    pub cgroup_permissions: String,
}

/// One `--mount` entry, as the API carries it (`HostConfig.Mounts[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: MountKind,
    /// Host path (bind), volume name (volume, empty for anonymous), nothing for tmpfs.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Bind: `rprivate` (default), `private`, `rshared`, `shared`, `rslave`, `slave`.
    pub bind_propagation: String,
    /// Bind: do not bind submounts (`bind-nonrecursive`).
    pub bind_non_recursive: bool,
    /// Volume: do not copy image content into an empty volume (`volume-nocopy`).
    pub volume_no_copy: bool,
    /// Volume: driver name (empty: `local`).
    pub volume_driver: String,
    /// Volume: driver options (`volume-opt`).
    pub volume_options: BTreeMap<String, String>,
    /// Tmpfs: size in bytes (0: the kernel's default, half of RAM).
    pub tmpfs_size: i64,
    /// Tmpfs: mode bits (0: 1777).
    pub tmpfs_mode: u32,
}

/// The `type=` of a mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MountKind {
    /// A host path.
    #[default]
    Bind,
    /// A named or anonymous volume, resolved by the engine's [`VolumeSource`].
    ///
    /// [`VolumeSource`]: crate::VolumeSource
    Volume,
    /// A fresh tmpfs.
    Tmpfs,
}

impl MountKind {
    /// The name Docker uses (`bind`, `volume`, `tmpfs`).
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkNamespace {
    /// A new namespace with only loopback (`--network none`).
    #[default]
    None,
    /// The host's (`--network host`).
    Host,
    /// A namespace the network layer prepared, bind-mounted at this path (bridge networks).
    Path(PathBuf),
    /// Another container's (`--network container:x`), by its init's host pid.
    Container(i32),
}

/// Which IPC namespace the container gets, and what backs its `/dev/shm`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IpcNamespace {
    /// Own namespace, `/dev/shm` a private tmpfs of `--shm-size` (`private`).
    #[default]
    Private,
    /// Own namespace, `/dev/shm` bind-mounted from a tmpfs the engine keeps so that other
    /// containers can join (`shareable`).
    Shareable(PathBuf),
    /// The host's namespace and `/dev/shm` (`host`).
    Host,
    /// Another container's namespace (by its init's host pid) and its `/dev/shm`.
    Container {
        /// The other container's init, as seen from the host.
        pid: i32,
        /// The other container's `/dev/shm` source on the host.
        shm: PathBuf,
    },
    /// Own namespace and no `/dev/shm` at all (`none`).
    None,
}

/// Which PID namespace the container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PidNamespace {
    /// Its own.
    #[default]
    Private,
    /// The host's (`--pid host`).
    Host,
    /// Another container's, by its init's host pid (`--pid container:x`).
    Container(i32),
}

/// What the engine decided for this run of the container, and facts about the host.
#[derive(Debug, Clone)]
pub struct RuntimeContext {
    /// The container's id (64 hex); names its cgroup.
    pub container_id: String,
    /// Its root filesystem (the mounted snapshot). `/etc/passwd` and `/etc/group` are read
    /// from here, never from the host.
    pub rootfs: PathBuf,
    /// `Config.Hostname` (Docker's default is the id's first 12 characters).
    pub hostname: String,
    /// The container's `/etc/hosts` on the host, bind-mounted when given.
    pub hosts_path: Option<PathBuf>,
    /// The container's `/etc/resolv.conf` on the host, bind-mounted when given.
    pub resolv_conf_path: Option<PathBuf>,
    /// The container's `/etc/hostname` on the host, bind-mounted when given.
    pub hostname_path: Option<PathBuf>,
    /// The cgroup parent for containers without `--cgroup-parent` (`/berth`).
    pub cgroup_parent: String,
    /// The network namespace.
    pub network: NetworkNamespace,
    /// The IPC namespace.
    pub ipc: IpcNamespace,
    /// The PID namespace.
    pub pid: PidNamespace,
    /// The init binary mounted for `--init`; `--init` without one is an error.
    pub init_path: Option<PathBuf>,
    /// Whether containers get `--init` when they do not say (the daemon's `--init`).
    pub init_default: bool,
    /// The daemon's `--default-ulimit`s.
    pub default_ulimits: Vec<Ulimit>,
    /// Facts about the host and the runtime that the spec has to respect.
    pub host: HostFacts,
}

impl RuntimeContext {
    /// A context with Docker's defaults (own network namespace with loopback only, private
    /// IPC and PID namespaces, cgroup parent `/berth`), host facts probed from this process.
    pub fn new(container_id: &str, rootfs: impl Into<PathBuf>) -> Self {
        RuntimeContext {
            container_id: container_id.to_owned(),
            rootfs: rootfs.into(),
            hostname: container_id.chars().take(12).collect(),
            hosts_path: None,
            resolv_conf_path: None,
            hostname_path: None,
            cgroup_parent: "/berth".to_owned(),
            network: NetworkNamespace::None,
            ipc: IpcNamespace::Private,
            pid: PidNamespace::Private,
            init_path: None,
            init_default: false,
            default_ulimits: Vec::new(),
            host: HostFacts::probe(),
        }
    }
}
