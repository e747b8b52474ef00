//! The `System` service: what `docker version` and `docker info` report about the engine
//! and the host it runs on.
//!
//! Host facts that cannot change while the daemon runs (kernel, OS, CPUs, cgroup features)
//! are detected once at start-up; the clock, thread and fd counts are read per request.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_cgroups::Hierarchy;
use berth_errdefs::{Category, HasCategory};

/// The version berth reports as the engine's. The `20.10.24` base tells clients which Docker
/// Engine behaviour to expect (API 1.41); the suffix says it is berth.
pub const ENGINE_VERSION: &str = concat!("20.10.24-berth.", env!("CARGO_PKG_VERSION"));

/// What the daemon was configured with, as far as `System` reports it.
#[derive(Debug, Clone)]
pub struct SystemConfig {
    /// `--data-root`.
    pub data_root: PathBuf,
    /// `--exec-root`.
    pub exec_root: PathBuf,
    /// Configured OCI runtimes by name → binary path.
    pub runtimes: BTreeMap<String, String>,
    /// The runtime used when a container names none.
    pub default_runtime: String,
    /// Debug logging is on.
    pub debug: bool,
    /// Engine labels.
    pub labels: Vec<String>,
}

/// A failure to set the service up.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// Reading or writing a file under the data root failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl HasCategory for SystemError {
    fn category(&self) -> Category {
        Category::System
    }
}

/// The cgroup features containers can use on this host, as Docker's `sysinfo` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupFacts {
    /// `"1"` (legacy or hybrid) or `"2"` (unified).
    pub version: String,
    /// The memory controller is there.
    pub memory_limit: bool,
    /// Memory+swap limits work.
    pub swap_limit: bool,
    /// Kernel memory limits exist (v1 only).
    pub kernel_memory: bool,
    /// Kernel TCP memory limits exist (v1 only).
    pub kernel_memory_tcp: bool,
    /// The OOM killer can be disabled (v1 only).
    pub oom_kill_disable: bool,
    /// CFS period can be set.
    pub cpu_cfs_period: bool,
    /// CFS quota can be set.
    pub cpu_cfs_quota: bool,
    /// CPU shares / weight can be set.
    pub cpu_shares: bool,
    /// The cpuset controller is there.
    pub cpu_set: bool,
    /// The pids controller is there.
    pub pids_limit: bool,
}

impl CgroupFacts {
    /// Reads the features off a detected hierarchy: on v1 by the files each controller's
    /// mount has, on v2 by `cgroup.controllers` at the root (as Docker does).
    pub fn from_hierarchy(hierarchy: &Hierarchy) -> CgroupFacts {
        match hierarchy {
            Hierarchy::V1 { controllers, .. } => {
                let has = |controller: &str, file: &str| {
                    controllers
                        .get(controller)
                        .is_some_and(|mount| mount.join(file).exists())
                };
                CgroupFacts {
                    version: "1".into(),
                    memory_limit: controllers.contains_key("memory"),
                    swap_limit: has("memory", "memory.memsw.limit_in_bytes"),
                    kernel_memory: has("memory", "memory.kmem.limit_in_bytes"),
                    kernel_memory_tcp: has("memory", "memory.kmem.tcp.limit_in_bytes"),
                    oom_kill_disable: has("memory", "memory.oom_control"),
                    cpu_cfs_period: has("cpu", "cpu.cfs_period_us"),
                    cpu_cfs_quota: has("cpu", "cpu.cfs_quota_us"),
                    cpu_shares: has("cpu", "cpu.shares"),
                    cpu_set: controllers.contains_key("cpuset"),
                    pids_limit: controllers.contains_key("pids"),
                }
            }
            Hierarchy::V2 { root } => {
                let text = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
                let enabled: Vec<&str> = text.split_whitespace().collect();
                let has = |c: &str| enabled.contains(&c);
                CgroupFacts {
                    version: "2".into(),
                    memory_limit: has("memory"),
                    swap_limit: has("memory"),
                    cpu_cfs_period: has("cpu"),
                    cpu_cfs_quota: has("cpu"),
                    cpu_shares: has("cpu"),
                    cpu_set: has("cpuset"),
                    pids_limit: has("pids"),
                    ..CgroupFacts::default()
                }
            }
        }
    }
}

/// Facts about the host, detected once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel_version: String,
    /// `uname -m` (`x86_64`).
    pub machine: String,
    /// `PRETTY_NAME` from os-release.
    pub operating_system: String,
    /// `VERSION_ID` from os-release.
    pub os_version: String,
    /// The host name.
    pub hostname: String,
    /// CPUs the daemon may run on.
    pub ncpu: i64,
    /// Total memory in bytes.
    pub mem_total: i64,
    /// Cgroup features; `None` if no cgroup hierarchy was found.
    pub cgroup: Option<CgroupFacts>,
    /// `net.ipv4.ip_forward`.
    pub ipv4_forwarding: bool,
    /// `net.bridge.bridge-nf-call-iptables`.
    pub bridge_nf_iptables: bool,
    /// `net.bridge.bridge-nf-call-ip6tables`.
    pub bridge_nf_ip6tables: bool,
}

impl HostFacts {
    /// Reads the facts from the running kernel, `/proc`, `/sys` and os-release.
    pub fn detect() -> HostFacts {
        let uts = uname();
        let os_release = read_os_release();
        HostFacts {
            kernel_version: uts.0,
            machine: uts.1,
            hostname: uts.2,
            operating_system: os_release
                .get("PRETTY_NAME")
                .cloned()
                .unwrap_or_else(|| "Linux".into()),
            os_version: os_release.get("VERSION_ID").cloned().unwrap_or_default(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get() as i64),
            mem_total: read_mem_total().unwrap_or(0),
            cgroup: Hierarchy::detect()
                .ok()
                .map(|h| CgroupFacts::from_hierarchy(&h)),
            ipv4_forwarding: sysctl_on("/proc/sys/net/ipv4/ip_forward"),
            bridge_nf_iptables: sysctl_on("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            bridge_nf_ip6tables: sysctl_on("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
        }
    }
}

/// What `GET /version` reports, minus the API versions (those belong to the API server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReport {
    /// [`ENGINE_VERSION`].
    pub version: String,
    /// The source revision, if the build recorded one.
    pub git_commit: String,
    /// The Rust toolchain the engine targets (Docker reports its Go version here).
    pub toolchain: String,
    /// `linux`.
    pub os: String,
    /// Go-style architecture (`amd64`, `arm64`), which is what Docker clients expect.
    pub arch: String,
    /// `uname -r`.
    pub kernel_version: String,
}

/// What `GET /info` reports, minus wire-only constants (swarm, registry defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoReport {
    /// A stable id of this engine instance (kept in the data root).
    pub id: String,
    /// The host facts.
    pub host: HostFacts,
    /// The storage driver.
    pub driver: String,
    /// The default log driver.
    pub logging_driver: String,
    /// `cgroupfs` (berth manages cgroup files itself, no systemd).
    pub cgroup_driver: String,
    /// The data root.
    pub data_root: PathBuf,
    /// Configured runtimes by name → binary path.
    pub runtimes: BTreeMap<String, String>,
    /// The default runtime's name.
    pub default_runtime: String,
    /// Debug logging is on.
    pub debug: bool,
    /// Engine labels.
    pub labels: Vec<String>,
    /// `name=seccomp,profile=default`, plus `name=cgroupns` on cgroup v2.
    pub security_options: Vec<String>,
    /// Open fds of the daemon process.
    pub open_fds: i64,
    /// Threads of the daemon process.
    pub threads: i64,
    /// The daemon's clock, nanoseconds since the epoch.
    pub now_nanos: i64,
    /// The engine's version.
    pub server_version: String,
    /// The daemon's proxy environment: `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`.
    pub proxies: [String; 3],
}

/// The system service: version and info.
#[derive(Debug)]
pub struct System {
    config: SystemConfig,
    host: HostFacts,
    id: String,
}

/// File under the data root that keeps the engine id across restarts.
const ENGINE_ID_FILE: &str = "engine-id";

impl System {
    /// Detects the host and loads (or creates) the engine id under the data root, which must
    /// exist.
    pub fn new(config: SystemConfig) -> Result<System, SystemError> {
        Self::with_host(config, HostFacts::detect())
    }

    /// Like [`System::new`] with host facts supplied by the caller (tests).
    pub fn with_host(config: SystemConfig, host: HostFacts) -> Result<System, SystemError> {
        let id = load_or_create_id(&config.data_root.join(ENGINE_ID_FILE))?;
        Ok(System { config, host, id })
    }

    /// The facts for `docker version`.
    pub fn version(&self) -> VersionReport {
        VersionReport {
            version: ENGINE_VERSION.into(),
            git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown").into(),
            toolchain: concat!("rust", env!("CARGO_PKG_RUST_VERSION")).into(),
            os: "linux".into(),
            arch: go_arch(std::env::consts::ARCH).into(),
            kernel_version: self.host.kernel_version.clone(),
        }
    }

    /// The facts for `docker info`.
    pub fn info(&self) -> InfoReport {
        let cgroup_v2 = self.host.cgroup.as_ref().is_some_and(|c| c.version == "2");
        let mut security_options = vec!["name=seccomp,profile=default".to_owned()];
        if cgroup_v2 {
            security_options.push("name=cgroupns".into());
        }
        InfoReport {
            id: self.id.clone(),
            host: self.host.clone(),
            driver: "overlay2".into(),
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            data_root: self.config.data_root.clone(),
            runtimes: self.config.runtimes.clone(),
            default_runtime: self.config.default_runtime.clone(),
            debug: self.config.debug,
            labels: self.config.labels.clone(),
            security_options,
            open_fds: count_dir("/proc/self/fd"),
            threads: count_dir("/proc/self/task"),
            now_nanos: now_nanos(),
            server_version: ENGINE_VERSION.into(),
            proxies: ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"].map(proxy_env),
        }
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn proxy_env(name: &str) -> String {
    std::env::var(name)
        .or_else(|_| std::env::var(name.to_lowercase()))
        .unwrap_or_default()
}

/// Docker clients expect Go's `GOARCH` names.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        other => other,
    }
}

/// (release, machine, nodename) from uname(2).
fn uname() -> (String, String, String) {
    // SAFETY: utsname is plain old data; uname fills it and we only read NUL-terminated
    // fields afterwards.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Default::default();
    }
    let field = |chars: &[libc::c_char]| {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (
        field(&uts.release),
        field(&uts.machine),
        field(&uts.nodename),
    )
}

fn read_os_release() -> BTreeMap<String, String> {
    let text = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    parse_os_release(&text)
}

fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

fn read_mem_total() -> Option<i64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn sysctl_on(path: &str) -> bool {
    fs::read_to_string(path).is_ok_and(|v| v.trim() == "1")
}

fn count_dir(path: &str) -> i64 {
    fs::read_dir(path).map_or(0, |d| d.count() as i64)
}

fn load_or_create_id(path: &Path) -> Result<String, SystemError> {
    let io = |source| SystemError::Io {
        path: path.to_owned(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let id = random_uuid().map_err(io)?;
    // tmp → fsync → rename, so a crash never leaves a half-written id.
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(id.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(id)
}

/// A random (version 4) UUID, which is the form of engine id Docker 23+ uses.
fn random_uuid() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut fs::File::open("/dev/urandom")?, &mut bytes)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &Path) -> SystemConfig {
        SystemConfig {
            data_root: root.to_owned(),
            exec_root: root.join("exec"),
            runtimes: BTreeMap::from([("runc".into(), "runc".into())]),
            default_runtime: "runc".into(),
            debug: false,
            labels: vec![],
        }
    }

    #[test]
    fn engine_id_survives_a_restart() -> Result<(), SystemError> {
        let dir = tempfile::tempdir().map_err(|source| SystemError::Io {
            path: "tmp".into(),
            source,
        })?;
        let first = System::new(config(dir.path()))?.info().id;
        let second = System::new(config(dir.path()))?.info().id;
        assert_eq!(first, second);
        assert_eq!(first.len(), 36, "{first}");
        Ok(())
    }

    #[test]
    fn host_facts_are_read_from_this_host() {
        let host = HostFacts::detect();
        assert!(!host.kernel_version.is_empty());
        assert!(host.ncpu >= 1);
        assert!(host.mem_total > 0);
        let cgroup = host.cgroup.expect("this host has cgroups");
        assert!(cgroup.version == "1" || cgroup.version == "2");
        assert!(cgroup.memory_limit, "{cgroup:?}");
    }

    #[test]
    fn v2_features_come_from_the_root_controllers_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory\n",
        )
        .expect("write");
        let facts = CgroupFacts::from_hierarchy(&Hierarchy::V2 {
            root: dir.path().to_owned(),
        });
        assert_eq!(facts.version, "2");
        assert!(facts.memory_limit && facts.cpu_shares && facts.cpu_set);
        assert!(!facts.pids_limit && !facts.oom_kill_disable);
    }

    #[test]
    fn security_options_match_dockerd_without_apparmor_or_selinux() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = HostFacts {
            cgroup: Some(CgroupFacts {
                version: "1".into(),
                ..CgroupFacts::default()
            }),
            ..HostFacts::default()
        };
        let system = System::with_host(config(dir.path()), host).expect("system");
        assert_eq!(
            system.info().security_options,
            vec!["name=seccomp,profile=default"]
        );
    }

    #[test]
    fn os_release_values_lose_their_quotes() {
        let parsed =
            parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n");
        assert_eq!(parsed["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(parsed["VERSION_ID"], "12");
    }

    #[test]
    fn version_uses_go_architecture_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
    }
}
