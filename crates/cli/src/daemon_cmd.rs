//! `berth daemon`: the Docker-compatible engine daemon, with dockerd's flags and `daemon.json`
//! keys where they apply.
//!
//! This module is the composition root: it resolves the configuration, takes the data-root
//! lock, builds the engine services, binds the sockets and serves the API until SIGTERM or
//! SIGINT. The daemon is a multi-threaded tokio process and never forks containers itself;
//! the per-container shim does.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use berth_api_server::ApiListener;
use berth_api_server::Backend;
use berth_engine::images::RegistryOptions;
use berth_engine::{
    Containers, ContainersConfig, Events, Images, Networks, NetworksConfig, System, SystemConfig,
};
use clap::Parser;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value};

/// berth's engine daemon (dockerd-compatible flags).
#[derive(Parser, Debug, Default)]
#[command(name = "berth daemon", version, about)]
struct Flags {
    /// Where to serve the API (`unix:///path`, `tcp://host:port`); repeatable.
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Root of persistent state [default: /var/lib/berth].
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of runtime state: sockets, bundles [default: /run/berth].
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Logging level: debug, info, warn, error, fatal [default: info].
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// Enable debug logging.
    #[arg(short = 'D', long)]
    debug: bool,
    /// File the daemon writes its pid to [default: <exec-root>/berth.pid].
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Group owning the unix socket(s) [default: berth, if that group exists].
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Daemon configuration file (JSON, dockerd's daemon.json keys).
    #[arg(long, default_value = DEFAULT_CONFIG_FILE)]
    config_file: PathBuf,
    /// Runtime used for containers that name none [default: berth].
    #[arg(long)]
    default_runtime: Option<String>,
    /// Register an additional OCI runtime as name=path (repeatable).
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    add_runtime: Vec<String>,
    /// The default bridge's interface (created if missing) [default: berth0].
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// The default bridge's address and prefix, e.g. 172.18.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// The range the default bridge hands addresses out from.
    #[arg(long)]
    fixed_cidr: Option<String>,
    /// The MTU of bridges and container interfaces.
    #[arg(long)]
    mtu: Option<u32>,
    /// Pools for automatic subnets: base=CIDR,size=N (repeatable).
    #[arg(long = "default-address-pool", value_name = "base=CIDR,size=N")]
    default_address_pool: Vec<String>,
    /// berth's nftables table (a second daemon on the same host needs its own) [default: berth].
    #[arg(long)]
    firewall_table: Option<String>,
    /// Run an init inside every container that does not ask otherwise.
    #[arg(long)]
    init: bool,
    /// The static init binary for --init [default: docker-init or tini-static from PATH].
    #[arg(long)]
    init_path: Option<PathBuf>,
    /// Parent cgroup of containers that name none [default: /berth].
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// Serve TCP hosts over TLS.
    #[arg(long)]
    tls: bool,
    /// Serve TCP hosts over TLS and accept only clients with a certificate signed by
    /// --tlscacert (implies --tls).
    #[arg(long)]
    tlsverify: bool,
    /// CA certificate(s) clients' certificates must be signed by [default: ~/.docker/ca.pem].
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// The server's certificate [default: ~/.docker/cert.pem].
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// The server's private key [default: ~/.docker/key.pem].
    #[arg(long)]
    tlskey: Option<PathBuf>,
}

const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
const DEFAULT_EXEC_ROOT: &str = "/run/berth";
const DEFAULT_GROUP: &str = "berth";
const DEFAULT_BRIDGE: &str = "berth0";
const DEFAULT_CGROUP_PARENT: &str = "/berth";
const DEFAULT_FIREWALL_TABLE: &str = "berth";
/// The built-in runtime: the shim runs it in-process; `berth runtime` is its runc-style CLI.
const BUILTIN_RUNTIME: &str = "berth";

/// The resolved configuration: flags over defaults, merged with the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DaemonConfig {
    sockets: Vec<PathBuf>,
    /// `tcp://` hosts; plain ones only on loopback.
    tcp: Vec<std::net::SocketAddr>,
    /// How TCP hosts are served, when over TLS.
    tls: Option<TlsSettings>,
    data_root: PathBuf,
    exec_root: PathBuf,
    log_level: tracing::Level,
    debug: bool,
    pidfile: PathBuf,
    /// `None`: leave the socket's group as created (root's).
    group: Option<GroupChoice>,
    default_runtime: String,
    runtimes: BTreeMap<String, String>,
    network: NetworkSettings,
    init_default: bool,
    init_path: Option<PathBuf>,
    cgroup_parent: String,
    /// `insecure-registries`, `max-concurrent-downloads`/`-uploads`, and CA roots from
    /// `/etc/berth/certs.d/<host>/*.crt` (dockerd's `/etc/docker/certs.d`).
    registry: RegistryOptions,
    /// `berth-max-layer-size` (bytes) and `berth-max-layer-ratio` (uncompressed bytes per
    /// compressed byte, 0 for none): how far one layer may expand (berth's own keys).
    unpack_limits: berth_image::UnpackLimits,
    /// `berth-push-compression`: `gzip` (dockerd's) or `zstd`, for layers stored
    /// uncompressed.
    push_compression: berth_image::PushCompression,
}

/// dockerd's `--tls`/`--tlsverify` files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsSettings {
    cert: PathBuf,
    key: PathBuf,
    /// With `--tlsverify`: clients need a certificate signed by these.
    client_ca: Option<PathBuf>,
}

/// The networking settings (dockerd's names).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NetworkSettings {
    bridge: String,
    bip: Option<String>,
    fixed_cidr: Option<String>,
    mtu: Option<u32>,
    default_pools: Vec<berth_network::ipam::DefaultPool>,
    firewall_table: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupChoice {
    /// Asked for by name: must exist.
    Required(String),
    /// The default: used if it exists.
    IfExists(String),
}

/// Entry point: `args[0]` is `daemon`.
pub fn main(args: Vec<String>) -> i32 {
    let flags = match Flags::try_parse_from(&args) {
        Ok(flags) => flags,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    match resolve(flags).and_then(run) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e:#}");
            1
        }
    }
}

/// The `daemon.json` keys berth understands (dockerd's names).
const FILE_KEYS: &[&str] = &[
    "hosts",
    "data-root",
    "exec-root",
    "log-level",
    "debug",
    "pidfile",
    "group",
    "default-runtime",
    "runtimes",
    "bridge",
    "bip",
    "fixed-cidr",
    "mtu",
    "default-address-pools",
    "firewall-table",
    "init",
    "init-path",
    "cgroup-parent",
    "insecure-registries",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "registry-mirrors",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
    "berth-max-layer-size",
    "berth-max-layer-ratio",
    "berth-push-compression",
    "berth-push-chunk-size",
];

const CERTS_DIR: &str = "/etc/berth/certs.d";

/// The registry keys of `daemon.json`.
fn registry_options(file: &Map<String, Value>) -> Result<RegistryOptions> {
    let mut options = RegistryOptions {
        certs_dir: Some(CERTS_DIR.into()),
        ..RegistryOptions::default()
    };
    if let Some(value) = file.get("registry-mirrors") {
        options.registry_mirrors = serde_json::from_value(value.clone())
            .context("registry-mirrors in the configuration file must be a list of URLs")?;
        if let Some(bad) = options
            .registry_mirrors
            .iter()
            .find(|m| !m.starts_with("http://") && !m.starts_with("https://"))
        {
            bail!(
                "invalid mirror: unsupported scheme in {bad:?}: must use either 'https' or 'http'"
            );
        }
    }
    if let Some(value) = file.get("berth-push-chunk-size") {
        options.push_chunk_size = value.as_u64().filter(|n| *n >= 1 << 10).with_context(|| {
            format!("berth-push-chunk-size must be a byte count of at least 1024, not {value}")
        })?;
    }
    if let Some(value) = file.get("insecure-registries") {
        options.insecure_registries = serde_json::from_value(value.clone())
            .context("insecure-registries in the configuration file must be a list of strings")?;
    }
    for (key, field) in [
        (
            "max-concurrent-downloads",
            &mut options.max_concurrent_downloads,
        ),
        (
            "max-concurrent-uploads",
            &mut options.max_concurrent_uploads,
        ),
    ] {
        if let Some(value) = file.get(key) {
            *field = value
                .as_u64()
                .filter(|n| (1..=64).contains(n))
                .and_then(|n| usize::try_from(n).ok())
                .with_context(|| format!("{key} must be a number from 1 to 64, not {value}"))?;
        }
    }
    Ok(options)
}

fn resolve(flags: Flags) -> Result<DaemonConfig> {
    let file = read_config_file(&flags.config_file)?;
    check_no_conflicts(&flags, &file)?;
    let string = |key: &str| -> Result<Option<String>> {
        match file.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => bail!("{key} in the configuration file must be a string, not {other}"),
        }
    };
    let hosts = match (flags.hosts.is_empty(), file.get("hosts")) {
        (false, _) => flags.hosts.clone(),
        (true, Some(value)) => serde_json::from_value::<Vec<String>>(value.clone())
            .context("hosts in the configuration file must be a list of strings")?,
        (true, None) => vec![DEFAULT_HOST.to_owned()],
    };
    let tls = tls_settings(&flags, &file)?;
    let tcp = hosts
        .iter()
        .filter(|h| h.starts_with("tcp://"))
        .map(|h| tcp_addr(h, tls.is_some()))
        .collect::<Result<Vec<_>>>()?;
    let data_root = flags
        .data_root
        .or(string("data-root")?.map(PathBuf::from))
        .unwrap_or_else(|| DEFAULT_DATA_ROOT.into());
    let exec_root = flags
        .exec_root
        .or(string("exec-root")?.map(PathBuf::from))
        .unwrap_or_else(|| DEFAULT_EXEC_ROOT.into());
    let debug = flags.debug || file.get("debug").and_then(Value::as_bool).unwrap_or(false);
    let log_level = match flags.log_level.or(string("log-level")?) {
        Some(level) => parse_level(&level)?,
        None if debug => tracing::Level::DEBUG,
        None => tracing::Level::INFO,
    };
    let group = match flags.group.or(string("group")?) {
        Some(name) if name.is_empty() => None,
        Some(name) => Some(GroupChoice::Required(name)),
        None => Some(GroupChoice::IfExists(DEFAULT_GROUP.into())),
    };
    let mut runtimes = BTreeMap::from([(BUILTIN_RUNTIME.to_owned(), builtin_runtime_path())]);
    runtimes.extend(file_runtimes(&file)?);
    for spec in &flags.add_runtime {
        let Some((name, path)) = spec
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        else {
            bail!("invalid --add-runtime {spec:?}: expected name=path");
        };
        runtimes.insert(name.to_owned(), path.to_owned());
    }
    let default_runtime = flags
        .default_runtime
        .or(string("default-runtime")?)
        .unwrap_or_else(|| BUILTIN_RUNTIME.into());
    if !runtimes.contains_key(&default_runtime) {
        bail!("default runtime {default_runtime:?} is not a configured runtime");
    }
    let mut pool_specs = flags.default_address_pool.clone();
    if let Some(value) = file.get("default-address-pools") {
        #[derive(serde::Deserialize)]
        struct Pool {
            base: String,
            size: u8,
        }
        let pools: Vec<Pool> = serde_json::from_value(value.clone()).context(
            "default-address-pools in the configuration file must be a list of {\"base\", \"size\"}",
        )?;
        pool_specs.extend(
            pools
                .iter()
                .map(|p| format!("base={},size={}", p.base, p.size)),
        );
    }
    let network = NetworkSettings {
        bridge: flags
            .bridge
            .or(string("bridge")?)
            .unwrap_or_else(|| DEFAULT_BRIDGE.into()),
        bip: flags.bip.or(string("bip")?),
        fixed_cidr: flags.fixed_cidr.or(string("fixed-cidr")?),
        mtu: flags.mtu.or(file
            .get("mtu")
            .and_then(Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())),
        default_pools: pool_specs
            .iter()
            .map(|p| parse_pool(p))
            .collect::<Result<_>>()?,
        firewall_table: flags
            .firewall_table
            .or(string("firewall-table")?)
            .unwrap_or_else(|| DEFAULT_FIREWALL_TABLE.into()),
    };
    let init_default = flags.init || file.get("init").and_then(Value::as_bool).unwrap_or(false);
    let init_path = flags
        .init_path
        .or(string("init-path")?.map(PathBuf::from))
        .or_else(find_init);
    let cgroup_parent = flags
        .cgroup_parent
        .or(string("cgroup-parent")?)
        .unwrap_or_else(|| DEFAULT_CGROUP_PARENT.into());
    if !cgroup_parent.starts_with('/') || cgroup_parent.split('/').any(|c| c == "..") {
        bail!("invalid cgroup-parent {cgroup_parent:?}: expected an absolute path without '..'");
    }
    Ok(DaemonConfig {
        cgroup_parent,
        init_default,
        init_path,
        network,
        sockets: hosts
            .iter()
            .filter(|h| !h.starts_with("tcp://"))
            .map(|h| socket_path(h))
            .collect::<Result<_>>()?,
        tcp,
        tls,
        pidfile: flags
            .pidfile
            .or(string("pidfile")?.map(PathBuf::from))
            .unwrap_or_else(|| exec_root.join("berth.pid")),
        data_root,
        exec_root,
        log_level,
        debug,
        group,
        default_runtime,
        runtimes,
        registry: registry_options(&file)?,
        unpack_limits: unpack_limits(&file)?,
        push_compression: match string("berth-push-compression")? {
            None => berth_image::PushCompression::default(),
            Some(name) => berth_image::PushCompression::parse(&name).with_context(|| {
                format!("berth-push-compression must be gzip or zstd, not {name:?}")
            })?,
        },
    })
}

/// `berth-max-layer-size` and `berth-max-layer-ratio`.
fn unpack_limits(file: &Map<String, Value>) -> Result<berth_image::UnpackLimits> {
    let mut limits = berth_image::UnpackLimits::default();
    let number = |key: &str| -> Result<Option<u64>> {
        file.get(key)
            .map(|v| {
                v.as_u64()
                    .with_context(|| format!("{key} must be a non-negative integer, not {v}"))
            })
            .transpose()
    };
    if let Some(size) = number("berth-max-layer-size")? {
        if size == 0 {
            bail!("berth-max-layer-size must be more than 0");
        }
        limits.max_size = size;
    }
    if let Some(ratio) = number("berth-max-layer-ratio")? {
        limits.max_ratio = (ratio > 0).then_some(ratio);
    }
    Ok(limits)
}

/// `base=10.10.0.0/16,size=24`.
fn parse_pool(spec: &str) -> Result<berth_network::ipam::DefaultPool> {
    let (mut base, mut size) = (None, None);
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("base", v)) => base = Some(v),
            Some(("size", v)) => size = v.parse::<u8>().ok(),
            _ => bail!("invalid default address pool {spec:?}: expected base=CIDR,size=N"),
        }
    }
    let (Some(base), Some(size)) = (base, size) else {
        bail!("invalid default address pool {spec:?}: expected base=CIDR,size=N");
    };
    let base: ipnet::Ipv4Net = base
        .parse()
        .with_context(|| format!("invalid default address pool base {base:?}"))?;
    if size < base.prefix_len() || size > 30 {
        bail!(
            "invalid default address pool {spec:?}: size must be between the base's prefix and 30"
        );
    }
    Ok(berth_network::ipam::DefaultPool { base, size })
}

/// The init dockerd would use: `docker-init` from PATH, else Debian's `tini-static` (which
/// is what `docker-init` is on Debian). Only a static binary runs in any image.
fn find_init() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["docker-init", "tini-static"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn builtin_runtime_path() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "berth".into())
}

/// Reads the config file; a missing file at the default path is fine, as with dockerd.
fn read_config_file(path: &Path) -> Result<Map<String, Value>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path == Path::new(DEFAULT_CONFIG_FILE) =>
        {
            return Ok(Map::new());
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let map: Map<String, Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !FILE_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the following directives don't match any configuration option: {}",
            unknown.join(", ")
        );
    }
    Ok(map)
}

/// dockerd refuses a setting given both as a flag and in the file; so does berth.
fn check_no_conflicts(flags: &Flags, file: &Map<String, Value>) -> Result<()> {
    let given = [
        ("hosts", !flags.hosts.is_empty()),
        ("data-root", flags.data_root.is_some()),
        ("exec-root", flags.exec_root.is_some()),
        ("log-level", flags.log_level.is_some()),
        ("pidfile", flags.pidfile.is_some()),
        ("group", flags.group.is_some()),
        ("default-runtime", flags.default_runtime.is_some()),
    ];
    let both: Vec<&str> = given
        .iter()
        .filter(|(key, by_flag)| *by_flag && file.contains_key(*key))
        .map(|(key, _)| *key)
        .collect();
    if !both.is_empty() {
        bail!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            both.join(", ")
        );
    }
    Ok(())
}

/// `"runtimes": {"name": {"path": "...", "runtimeArgs": [...]}}`.
fn file_runtimes(file: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    let Some(value) = file.get("runtimes") else {
        return Ok(BTreeMap::new());
    };
    #[derive(serde::Deserialize)]
    struct Runtime {
        path: String,
    }
    let runtimes: BTreeMap<String, Runtime> = serde_json::from_value(value.clone())
        .context("runtimes in the configuration file must map names to {\"path\": …}")?;
    Ok(runtimes.into_iter().map(|(k, v)| (k, v.path)).collect())
}

fn parse_level(level: &str) -> Result<tracing::Level> {
    Ok(match level {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" => tracing::Level::WARN,
        "error" | "fatal" | "panic" => tracing::Level::ERROR,
        other => bail!("unable to parse logging level: {other}"),
    })
}

fn socket_path(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some("") => Ok(PathBuf::from("/run/berth/berth.sock")),
        Some(path) => Ok(PathBuf::from(path)),
        None if host.starts_with("fd://") => {
            bail!("{host}: socket activation (fd://) is not supported")
        }
        None => bail!("invalid host {host:?}: expected unix:///path or tcp://host:port"),
    }
}

/// `tcp://host:port` as dockerd reads it: an empty host is localhost, the port defaults to
/// 2376 with TLS and 2375 without. Without TLS only a loopback address is allowed: anyone
/// who reaches the API is root on this host.
fn tcp_addr(host: &str, tls: bool) -> Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let rest = host.strip_prefix("tcp://").unwrap_or(host);
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 2376 } else { 2375 };
    let with_port = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && !h.ends_with(':') => {
            let h = if h.is_empty() { "127.0.0.1" } else { h };
            format!("{h}:{p}")
        }
        Some((h, "")) => format!(
            "{}:{default_port}",
            if h.is_empty() { "127.0.0.1" } else { h }
        ),
        _ if rest.is_empty() => format!("127.0.0.1:{default_port}"),
        _ => format!("{rest}:{default_port}"),
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("invalid host {host:?}: expected tcp://host:port"))?;
    if !tls && !addr.ip().is_loopback() {
        bail!(
            "refusing to serve the API on {host} without TLS: anyone who can reach it controls \
             this host; use --tlsverify with --tlscacert, --tlscert and --tlskey, or a loopback address"
        );
    }
    Ok(addr)
}

/// `--tls`/`--tlsverify` and their files (flags over `daemon.json`, then `~/.docker/*.pem`).
fn tls_settings(flags: &Flags, file: &Map<String, Value>) -> Result<Option<TlsSettings>> {
    let flag_or_key =
        |flag: bool, key: &str| flag || file.get(key).and_then(Value::as_bool).unwrap_or(false);
    let verify = flag_or_key(flags.tlsverify, "tlsverify");
    if !verify && !flag_or_key(flags.tls, "tls") {
        return Ok(None);
    }
    let path = |flag: &Option<PathBuf>, key: &str, default: &str| -> PathBuf {
        flag.clone()
            .or_else(|| file.get(key).and_then(Value::as_str).map(PathBuf::from))
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                PathBuf::from(home).join(".docker").join(default)
            })
    };
    Ok(Some(TlsSettings {
        cert: path(&flags.tlscert, "tlscert", "cert.pem"),
        key: path(&flags.tlskey, "tlskey", "key.pem"),
        client_ca: verify.then(|| path(&flags.tlscacert, "tlscacert", "ca.pem")),
    }))
}

fn run(config: DaemonConfig) -> Result<()> {
    init_logging(config.log_level);
    create_dir(&config.data_root, 0o711)?;
    create_dir(&config.exec_root, 0o700)?;
    let _lock = lock_data_root(&config.data_root)?;
    let gid = resolve_group(config.group.as_ref())?;
    write_pidfile(&config.pidfile)?;
    let result = serve(&config, gid);
    for socket in &config.sockets {
        let _ = fs::remove_file(socket);
    }
    let _ = fs::remove_file(&config.pidfile);
    tracing::info!("daemon shut down");
    result
}

fn serve(config: &DaemonConfig, gid: Option<u32>) -> Result<()> {
    limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-daemon")
        .build()
        .context("starting the async runtime")?;
    let images = Arc::new(
        berth_image::ImageStore::open(&config.data_root).context("opening the image store")?,
    );
    images.set_unpack_limits(config.unpack_limits);
    let events = Arc::new(Events::default());
    // Shims run from a read-only view of our binary (CVE-2019-5736), made once here, so
    // each `berth shim` skips its own unshare and re-exec; kept until the daemon ends.
    let mut _readonly_binary = None;
    let shim_binary = match std::env::var_os("BERTH_SHIM_BINARY") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = shim_executable()?;
            match berth_runtime::protect::ReadonlyBinary::open(&exe, &config.exec_root) {
                Ok(view) => _readonly_binary.insert(view).exec_path(),
                Err(e) => {
                    tracing::warn!(
                        "shims will make their own read-only view of {}: {e}",
                        exe.display()
                    );
                    exe
                }
            }
        }
    };
    let networks = Networks::open(
        NetworksConfig {
            data_root: config.data_root.clone(),
            bridge: config.network.bridge.clone(),
            bip: config.network.bip.clone(),
            fixed_cidr: config.network.fixed_cidr.clone(),
            default_pools: config.network.default_pools.clone(),
            firewall_table: config.network.firewall_table.clone(),
            mtu: config.network.mtu,
        },
        events.clone(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let containers = Containers::open(
        ContainersConfig {
            data_root: config.data_root.clone(),
            exec_root: config.exec_root.clone(),
            shim_binary,
            runtime: None,
            init_path: config.init_path.clone(),
            init_default: config.init_default,
            cgroup_parent: config.cgroup_parent.clone(),
        },
        images.clone(),
        events.clone(),
        networks.clone(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let build = berth_engine::Build::open(images.clone(), containers.clone(), &config.data_root)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let volumes = berth_engine::Volumes::open(&config.data_root, events.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    containers.use_volumes(volumes.clone());
    let image_service = Arc::new(
        Images::new(images, events.clone(), containers.clone())
            .with_registry_options(config.registry.clone())
            .with_push_compression(config.push_compression),
    );
    build.use_images(image_service.clone());
    runtime.block_on(async {
        // Handlers first: a SIGTERM that arrives once the socket answers must be a clean
        // shutdown, not the default action.
        let shutdown = shutdown_signal()?;
        containers.restore().await;
        let backend = Backend {
            system: Arc::new(System::new(SystemConfig {
                data_root: config.data_root.clone(),
                exec_root: config.exec_root.clone(),
                runtimes: config.runtimes.clone(),
                default_runtime: config.default_runtime.clone(),
                debug: config.debug,
                labels: vec![],
            })?),
            events,
            containers,
            images: image_service,
            networks,
            build,
            volumes,
        };
        let mut listeners = Vec::new();
        for path in &config.sockets {
            let listener = berth_api_server::bind_unix(path, gid)
                .with_context(|| format!("listening on {}", path.display()))?;
            tracing::info!("API listening on {}", path.display());
            listeners.push(ApiListener::Unix(listener));
        }
        let tls = match &config.tls {
            Some(t) => Some(
                berth_registry_server::tls::load_mutual(&t.cert, &t.key, t.client_ca.as_deref())
                    .context("loading the API's TLS certificate")?,
            ),
            None => None,
        };
        for addr in &config.tcp {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on tcp://{addr}"))?;
            tracing::info!(tls = tls.is_some(), "API listening on tcp://{addr}");
            listeners.push(match &tls {
                Some(config) => ApiListener::Tls(listener, config.clone()),
                None => ApiListener::Tcp(listener),
            });
        }
        berth_api_server::serve(listeners, backend, shutdown).await?;
        Ok(())
    })
}

/// `berth-shim` next to our own binary when it is there (a shim of its own is a fraction of
/// the memory), else our own binary (`berth shim`).
fn shim_executable() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the berth binary for shims")?;
    let small = exe.with_file_name("berth-shim");
    Ok(if small.is_file() { small } else { exe })
}

/// glibc gives every thread that allocates its own heap arena (up to eight per core), each
/// keeping freed memory of its own: with the async workers and the blocking pool that is most
/// of an idle daemon's heap. Two arenas are plenty for a daemon that mostly waits.
fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Installs the SIGTERM and SIGINT handlers now; the future resolves on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("received {name}, shutting down");
    })
}

fn init_logging(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .try_init();
}

fn create_dir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Holds `<data-root>/berth.lock` for the daemon's lifetime, so two daemons never share a
/// data root. The lock dies with the process, so a crashed daemon leaves nothing to clean.
fn lock_data_root(data_root: &Path) -> Result<Flock<fs::File>> {
    let path = data_root.join("berth.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
            "another berth daemon is already running with data-root {} ({} is locked)",
            data_root.display(),
            path.display()
        ),
        Err((_, e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
    };
    // The holder's pid, for whoever wonders who has the lock.
    lock.set_len(0)?;
    writeln!(lock, "{}", std::process::id())?;
    Ok(lock)
}

fn resolve_group(choice: Option<&GroupChoice>) -> Result<Option<u32>> {
    let (name, required) = match choice {
        None => return Ok(None),
        Some(GroupChoice::Required(name)) => (name, true),
        Some(GroupChoice::IfExists(name)) => (name, false),
    };
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Some(gid));
    }
    match nix::unistd::Group::from_name(name).context("looking up the socket group")? {
        Some(group) => Ok(Some(group.gid.as_raw())),
        None if required => bail!("group {name:?} not found"),
        None => Ok(None),
    }
}

fn write_pidfile(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        create_dir(dir, 0o755)?;
    }
    fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing pid file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut argv = vec!["daemon", "--config-file", "/nonexistent/berth-test.json"];
        argv.extend_from_slice(args);
        Flags::try_parse_from(argv).expect("flags parse")
    }

    #[test]
    fn defaults_follow_dockerd() {
        let mut f = flags(&[]);
        f.config_file = DEFAULT_CONFIG_FILE.into();
        if Path::new(DEFAULT_CONFIG_FILE).exists() {
            return;
        }
        let config = resolve(f).expect("resolves");
        assert_eq!(config.sockets, [PathBuf::from("/run/berth/berth.sock")]);
        assert_eq!(config.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(config.pidfile, PathBuf::from("/run/berth/berth.pid"));
        assert_eq!(config.default_runtime, "berth");
        assert_eq!(config.log_level, tracing::Level::INFO);
    }

    #[test]
    fn repeated_hosts_and_runtimes() {
        let mut f = flags(&["-H", "unix:///a.sock", "--host", "unix:///b.sock"]);
        f.config_file = DEFAULT_CONFIG_FILE.into();
        f.add_runtime = vec!["crun=/usr/bin/crun".into()];
        f.default_runtime = Some("crun".into());
        if Path::new(DEFAULT_CONFIG_FILE).exists() {
            return;
        }
        let config = resolve(f).expect("resolves");
        assert_eq!(
            config.sockets,
            [PathBuf::from("/a.sock"), PathBuf::from("/b.sock")]
        );
        assert_eq!(config.runtimes["crun"], "/usr/bin/crun");
        assert_eq!(config.default_runtime, "crun");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            vec!["-H", "tcp://0.0.0.0:2375"],
            vec!["-H", "tcp://10.1.2.3"],
            vec!["-H", "fd://"],
            vec!["--log-level", "loud"],
            vec!["--add-runtime", "noequals"],
            vec!["--default-runtime", "missing"],
        ] {
            let mut f = flags(&bad);
            f.config_file = DEFAULT_CONFIG_FILE.into();
            if Path::new(DEFAULT_CONFIG_FILE).exists() {
                return;
            }
            assert!(resolve(f).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_file_keys_are_checked_like_dockerd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("daemon.json");
        fs::write(&path, r#"{"data-root": "/d", "bogus": 1}"#).expect("write");
        let err = read_config_file(&path).expect_err("unknown key");
        assert!(
            err.to_string()
                .contains("don't match any configuration option: bogus"),
            "{err}"
        );

        fs::write(&path, r#"{"data-root": "/d", "hosts": ["unix:///x.sock"]}"#).expect("write");
        let mut f = flags(&[]);
        f.config_file = path.clone();
        let config = resolve(f).expect("resolves");
        assert_eq!(config.data_root, PathBuf::from("/d"));
        assert_eq!(config.sockets, [PathBuf::from("/x.sock")]);

        let mut f = flags(&["--data-root", "/e"]);
        f.config_file = path;
        let err = resolve(f).expect_err("conflict");
        assert!(
            err.to_string()
                .contains("both as a flag and in the configuration file: data-root")
        );
    }

    #[test]
    fn layer_limits_of_the_config_file() {
        let parse = |text: &str| {
            let file: Map<String, Value> = serde_json::from_str(text).expect("json");
            unpack_limits(&file)
        };
        let limits =
            parse(r#"{"berth-max-layer-size":1048576,"berth-max-layer-ratio":0}"#).expect("limits");
        assert_eq!(limits.max_size, 1 << 20);
        assert_eq!(limits.max_ratio, None);
        let limits = parse(r#"{"berth-max-layer-ratio":50}"#).expect("limits");
        let file: Map<String, Value> =
            serde_json::from_str(r#"{"berth-push-chunk-size":65536}"#).expect("json");
        assert_eq!(
            registry_options(&file).expect("options").push_chunk_size,
            65536
        );
        for bad in [
            r#"{"berth-push-chunk-size":10}"#,
            r#"{"berth-push-chunk-size":"1M"}"#,
        ] {
            let file: Map<String, Value> = serde_json::from_str(bad).expect("json");
            assert!(registry_options(&file).is_err(), "{bad}");
        }
        assert_eq!(limits.max_ratio, Some(50));
        assert_eq!(
            limits.max_size,
            berth_image::UnpackLimits::default().max_size
        );
        for bad in [
            r#"{"berth-max-layer-size":0}"#,
            r#"{"berth-max-layer-size":"1G"}"#,
            r#"{"berth-max-layer-ratio":-1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_keys_of_the_config_file() {
        let file: Map<String, Value> = serde_json::from_str(
            r#"{"insecure-registries":["10.0.0.5:5000"],"max-concurrent-downloads":6}"#,
        )
        .expect("json");
        let options = registry_options(&file).expect("options");
        assert_eq!(options.insecure_registries, ["10.0.0.5:5000"]);
        assert_eq!(options.max_concurrent_downloads, 6);
        assert_eq!(options.max_concurrent_uploads, 5);
        assert_eq!(options.certs_dir, Some(PathBuf::from(CERTS_DIR)));
        for bad in [
            r#"{"insecure-registries":"10.0.0.5"}"#,
            r#"{"max-concurrent-downloads":0}"#,
            r#"{"max-concurrent-uploads":"3"}"#,
            r#"{"registry-mirrors":["mirror.example"]}"#,
        ] {
            let file: Map<String, Value> = serde_json::from_str(bad).expect("json");
            assert!(registry_options(&file).is_err(), "{bad}");
        }
    }
}
