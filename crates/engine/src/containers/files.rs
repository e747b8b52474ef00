//! The container's files: the record (atomic writes), `/etc/hostname`, `/etc/hosts`,
//! `/etc/resolv.conf`, undoing a half-done create, and the translation of the stored config
//! into the spec crate's input.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_errdefs::{CategorizedError, Category};
use berth_image::ImageStore;

use super::config::{Config, ContainerRecord, HostConfig};

type Result<T> = std::result::Result<T, CategorizedError>;

/// The record's file name in the container's directory.
pub(crate) const RECORD_NAME: &str = "config.v2.json";

fn sys(context: &str, path: &Path, e: impl std::fmt::Display) -> CategorizedError {
    CategorizedError::new(
        Category::System,
        format!("{context} {}: {e}", path.display()),
    )
}

pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(|e| sys("create", dir, e))
}

/// tmp → fsync → rename → fsync(dir).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        sys("write", path, e)
    })
}

/// tmp → rename, without fsync: for files the engine regenerates when they are lost (the
/// container's `/etc` files, the bundle), where a crash may leave the old or the new one.
pub(crate) fn write_replace(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    fs::write(&tmp, data)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            sys("write", path, e)
        })
}

pub(crate) fn write_record(path: &Path, record: &ContainerRecord) -> Result<()> {
    let data = serde_json::to_vec(record).map_err(|e| sys("encode", path, e))?;
    write_atomic(path, &data)
}

pub(crate) fn read_record(path: &Path) -> Result<Option<ContainerRecord>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| sys("parse", path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(sys("read", path, e)),
    }
}

/// Whether `path` is a mount point (its device differs from its parent's, or it is the
/// root of a bind of the same filesystem — checked through `/proc/self/mountinfo`).
pub(crate) fn is_mountpoint(path: &Path) -> bool {
    let (Ok(m), Some(parent)) = (fs::metadata(path), path.parent()) else {
        return false;
    };
    if let Ok(p) = fs::metadata(parent)
        && p.dev() != m.dev()
    {
        return true;
    }
    let target = path.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .map(|info| {
            info.lines()
                .any(|l| l.split(' ').nth(4).is_some_and(|mp| mp == target))
        })
        .unwrap_or(false)
}

/// What a failed create must undo, in reverse order.
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    pub dirs: Vec<PathBuf>,
    pub mounts: Vec<PathBuf>,
    pub snapshot: Option<String>,
}

impl Cleanup {
    pub(crate) fn run(self, images: &ImageStore) {
        for m in self.mounts.iter().rev() {
            let _ = berth_snapshot::unmount(m);
        }
        if let Some(key) = &self.snapshot {
            let _ = images.remove_rootfs(key);
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// The container's `/etc` files on the host.
pub(crate) struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes `hostname`, `hosts` and `resolv.conf` into `dir` as Docker does: the host's files
/// for `--network host`; otherwise loopback entries (the container's own address is added
/// at start), and a resolv.conf naming the embedded resolver on user-defined networks, else
/// the host's resolvers without loopback ones.
pub(crate) fn write_etc_files(
    dir: &Path,
    hostname: &str,
    host: &HostConfig,
    embedded_dns: bool,
) -> Result<EtcFiles> {
    let files = EtcFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    };
    let host_net = host.network_mode == "host";
    write_replace(&files.hostname, format!("{hostname}\n").as_bytes())?;
    if host_net {
        let hosts = fs::read_to_string("/etc/hosts").unwrap_or_else(|_| DEFAULT_HOSTS.to_owned());
        write_replace(&files.hosts, hosts.as_bytes())?;
    } else {
        write_hosts(&files.hosts, hostname, None, host, &[])?;
    }
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = if host_net {
        host_resolv
    } else {
        let request = berth_network::dns::ResolvConfRequest {
            embedded: embedded_dns,
            dns: host
                .dns
                .iter()
                .flatten()
                .map(|d| {
                    d.parse()
                        .map_err(|_| invalid(format!("{d} is not an ip address")))
                })
                .collect::<Result<_>>()?,
            search: host.dns_search.clone().unwrap_or_default(),
            options: host.dns_options.clone().unwrap_or_default(),
        };
        berth_network::dns::container_resolv_conf(&host_resolv, &request)
    };
    write_replace(&files.resolv_conf, resolv.as_bytes())?;
    Ok(files)
}

/// `/etc/hosts`: loopback, `--add-host` entries, and the container's own address and
/// hostname once it has one (Docker's order).
pub(crate) fn write_hosts(
    path: &Path,
    hostname: &str,
    ip: Option<&str>,
    host: &HostConfig,
    linked: &[String],
) -> Result<()> {
    let mut hosts = DEFAULT_HOSTS.to_owned();
    for line in linked {
        hosts.push_str(line);
        hosts.push('\n');
    }
    for entry in host.extra_hosts.iter().flatten() {
        let (name, addr) = parse_extra_host(entry)?;
        hosts.push_str(&format!("{addr}\t{name}\n"));
    }
    if let Some(ip) = ip {
        hosts.push_str(&format!("{ip}\t{hostname}\n"));
    }
    write_replace(path, hosts.as_bytes())
}

/// `--add-host name:ip` (or `name=ip`); the address may be IPv6 (with colons).
pub(crate) fn parse_extra_host(entry: &str) -> Result<(&str, std::net::IpAddr)> {
    let bad = || invalid(format!("invalid extra host entry: {entry:?}"));
    let (name, addr) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((name, addr.parse().map_err(|_| bad())?))
}

/// The network namespace for `NetworkMode`: the host's, or a new one (which the networks
/// service wires into its bridges between create and start).
pub(crate) fn network_namespace(mode: &str) -> Result<berth_spec::NetworkNamespace> {
    match mode {
        "host" => Ok(berth_spec::NetworkNamespace::Host),
        m if m.starts_with("container:") && m.len() == "container:".len() => Err(invalid(
            "invalid network mode: container: needs a container name or id",
        )),
        _ => Ok(berth_spec::NetworkNamespace::None),
    }
}

fn invalid(msg: impl Into<String>) -> CategorizedError {
    CategorizedError::new(Category::InvalidParameter, msg)
}

/// The spec crate's view of a container's config (the image's config is merged later).
pub(crate) fn spec_config(
    config: &Config,
    host: &HostConfig,
) -> Result<berth_spec::ContainerConfig> {
    if host.memory < 0 {
        return Err(invalid(
            "Invalid --memory: a memory limit cannot be negative",
        ));
    }
    if host.nano_cpus < 0 {
        return Err(invalid(
            "Range of CPUs is from 0.01 to the number of CPUs available",
        ));
    }
    if host.cpu_shares < 0 {
        return Err(invalid("invalid CPU shares: it must not be negative"));
    }
    if let Some(policy) = &host.restart_policy {
        match policy.name.as_str() {
            "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
            other => return Err(invalid(format!("invalid restart policy '{other}'"))),
        }
        if policy.maximum_retry_count < 0 {
            return Err(invalid(
                "invalid restart policy: maximum retry count can't be negative",
            ));
        }
        if policy.maximum_retry_count > 0 && policy.name != "on-failure" {
            return Err(invalid(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ));
        }
        if host.auto_remove && !matches!(policy.name.as_str(), "" | "no") {
            return Err(invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
    }
    let stop_signal = match config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => {
            Some(berth_spec::parse_stop_signal(s).map_err(|e| CategorizedError::from_error(&e))?)
        }
        None => None,
    };
    let mut mounts = Vec::new();
    for m in host.mounts.iter().flatten() {
        let kind = match m.kind.as_str() {
            "bind" => berth_spec::MountKind::Bind,
            "volume" => berth_spec::MountKind::Volume,
            "tmpfs" => berth_spec::MountKind::Tmpfs,
            other => return Err(invalid(format!("mount type unknown: {other:?}"))),
        };
        let bind = m.bind_options.clone().unwrap_or_default();
        let tmpfs = m.tmpfs_options.clone().unwrap_or_default();
        let volume = m.volume_options.clone().unwrap_or_default();
        let driver = volume.driver_config.unwrap_or_default();
        mounts.push(berth_spec::MountSpec {
            kind,
            source: m.source.clone(),
            target: m.target.clone(),
            read_only: m.read_only,
            bind_propagation: bind.propagation,
            bind_non_recursive: bind.non_recursive,
            tmpfs_size: tmpfs.size_bytes,
            tmpfs_mode: tmpfs.mode,
            volume_no_copy: volume.no_copy,
            volume_driver: driver.name,
            volume_options: driver.options.unwrap_or_default(),
        });
    }
    Ok(berth_spec::ContainerConfig {
        user: config.user.clone(),
        env: config.env.clone().unwrap_or_default(),
        cmd: config.cmd.clone().unwrap_or_default(),
        entrypoint: config.entrypoint.clone(),
        working_dir: config.working_dir.clone(),
        domainname: config.domainname.clone(),
        tty: config.tty,
        labels: config.labels.clone().unwrap_or_default(),
        stop_signal,
        host: berth_spec::HostConfig {
            privileged: host.privileged,
            cap_add: host.cap_add.clone().unwrap_or_default(),
            cap_drop: host.cap_drop.clone().unwrap_or_default(),
            security_opt: host.security_opt.clone().unwrap_or_default(),
            readonly_rootfs: host.readonly_rootfs,
            binds: host.binds.clone().unwrap_or_default(),
            mounts,
            tmpfs: host.tmpfs.clone().unwrap_or_default(),
            shm_size: host.shm_size,
            init: host.init,
            group_add: host.group_add.clone().unwrap_or_default(),
            sysctls: host.sysctls.clone().unwrap_or_default(),
            ulimits: host
                .ulimits
                .iter()
                .flatten()
                .map(|u| berth_spec::Ulimit {
                    name: u.name.clone(),
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
            oom_score_adj: host.oom_score_adj,
            uts_mode: host.uts_mode.clone(),
            cgroupns_mode: host.cgroupns_mode.clone(),
            cgroup_parent: host.cgroup_parent.clone(),
            masked_paths: host.masked_paths.clone(),
            readonly_paths: host.readonly_paths.clone(),
            resources: berth_spec::Resources {
                memory: host.memory,
                memory_swap: host.memory_swap,
                memory_reservation: host.memory_reservation,
                memory_swappiness: host.memory_swappiness,
                oom_kill_disable: host.oom_kill_disable.unwrap_or(false),
                nano_cpus: host.nano_cpus,
                cpu_shares: host.cpu_shares,
                cpu_period: host.cpu_period,
                cpu_quota: host.cpu_quota,
                cpuset_cpus: host.cpuset_cpus.clone(),
                cpuset_mems: host.cpuset_mems.clone(),
                pids_limit: host.pids_limit,
                blkio_weight: host.blkio_weight,
            },
            ..Default::default()
        },
    })
}
