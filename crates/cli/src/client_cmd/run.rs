//! `berth run` and `berth create`: docker's flags mapped to the Config/HostConfig the docker
//! CLI sends, the attach → wait → start order it uses, and its exit codes (125 for errors
//! before the container runs, 126/127 when its command cannot run, else the container's).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use berth_client::types::{
    ContainerCreate, EmptyObject, HostConfig, LogConfig, Mount, NetworkingConfig, PortBinding,
    RestartPolicy, TmpfsOptions, Ulimit,
};
use berth_client::{Client, ClientError};
use clap::{ArgAction, Parser};

use super::{CliError, CliResult, Invocation, parse_split, tty};

/// The flags of `run` and `create` (create ignores the run-only ones).
#[derive(Parser, Debug)]
#[command(
    name = "run",
    about = "Create and run a new container from an image",
    disable_help_flag = true
)]
pub struct RunArgs {
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    env_file: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    mount: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long = "publish")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    expose: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    network: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Set meta data on a container
    #[arg(short, long = "label")]
    label: Vec<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Add Linux capabilities
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Security Options
    #[arg(long)]
    security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    /// Memory limit
    #[arg(short, long, value_parser = ram_in_bytes)]
    memory: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_parser = nano_cpus)]
    cpus: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Ulimit options
    #[arg(long, value_parser = ulimit)]
    ulimit: Vec<Ulimit>,
    /// Mount a tmpfs directory
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Signal to stop the container
    #[arg(long)]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, allow_negative_numbers = true)]
    stop_timeout: Option<i64>,
    /// Size of /dev/shm
    #[arg(long, value_parser = ram_in_bytes)]
    shm_size: Option<i64>,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long)]
    add_host: Vec<String>,
    /// Add additional groups to join
    #[arg(long)]
    group_add: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    attach: Vec<String>,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    /// Suppress the pull output
    #[arg(short, long)]
    quiet: bool,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    sig_proxy: bool,
    /// The image
    image: String,
    /// The command and its arguments
    #[arg(num_args = 0.., allow_hyphen_values = true)]
    command: Vec<String>,
}

/// go-units' `RAMInBytes`: `512m`, `1g`, `100k`, `1024` (binary units, optional `b`).
pub(super) fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let value: f64 = num.parse().map_err(|_| invalid())?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(invalid()),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

/// `--cpus 1.5` → NanoCpus.
pub(super) fn nano_cpus(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("failed to parse {s} as a rational number"))?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("value is too precise: {s}"));
    }
    Ok((v * 1e9).round() as i64)
}

/// `--ulimit nofile=1024[:2048]`.
fn ulimit(s: &str) -> Result<Ulimit, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let parse = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("invalid ulimit argument: {s}"))
    };
    let (soft, hard) = (parse(soft)?, parse(hard)?);
    if soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

/// `-e KEY=VALUE` as given; `-e KEY` takes the value from our environment (dropped if unset).
fn env_entry(entry: &str) -> Option<String> {
    if entry.contains('=') {
        return Some(entry.to_owned());
    }
    std::env::var(entry).ok().map(|v| format!("{entry}={v}"))
}

fn read_env_files(files: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Message(format!("open {file}: {e}")))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(e) = env_entry(line) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// `-p [ip:][hostPort:]containerPort[/proto]`.
fn publish(spec: &str) -> Result<(String, PortBinding), CliError> {
    let bad = || CliError::Message(format!("invalid port format: {spec}"));
    let (rest, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let parts: Vec<&str> = if rest.starts_with('[') {
        // [::1]:8080:80
        let close = rest.find(']').ok_or_else(bad)?;
        let ip = &rest[1..close];
        let tail: Vec<&str> = rest[close + 1..]
            .trim_start_matches(':')
            .split(':')
            .collect();
        std::iter::once(ip).chain(tail).collect()
    } else {
        rest.split(':').collect()
    };
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => return Err(bad()),
    };
    let valid = |p: &str| p.split('-').all(|n| n.parse::<u16>().is_ok_and(|v| v > 0));
    if !valid(container) || (!host.is_empty() && !valid(host)) {
        return Err(CliError::Message(format!(
            "invalid containerPort: {container}"
        )));
    }
    Ok((
        format!("{container}/{proto}"),
        PortBinding {
            host_ip: ip.to_owned(),
            host_port: host.to_owned(),
        },
    ))
}

/// `--mount type=bind,source=/a,target=/b,readonly` and `type=tmpfs,target=/t,tmpfs-size=…`.
fn mount(spec: &str) -> Result<Mount, CliError> {
    let mut m = Mount {
        kind: "volume".to_owned(),
        ..Default::default()
    };
    let mut tmpfs = TmpfsOptions::default();
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k.to_ascii_lowercase().as_str() {
            "type" => m.kind = v.to_owned(),
            "source" | "src" => m.source = v.to_owned(),
            "target" | "destination" | "dst" => m.target = v.to_owned(),
            "readonly" | "ro" => m.read_only = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => {
                tmpfs.size_bytes = Some(ram_in_bytes(v).map_err(CliError::Message)?);
            }
            "tmpfs-mode" => {
                tmpfs.mode = Some(u32::from_str_radix(v, 8).map_err(|_| {
                    CliError::Message(format!("invalid value for tmpfs-mode: {v}"))
                })?);
            }
            other => {
                return Err(CliError::Message(format!(
                    "invalid field '{other}' must be a key=value pair"
                )));
            }
        }
    }
    if m.target.is_empty() {
        return Err(CliError::Message("target is required".to_owned()));
    }
    if m.kind == "tmpfs" && (tmpfs.size_bytes.is_some() || tmpfs.mode.is_some()) {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

pub(super) fn restart_policy(spec: Option<&str>) -> Result<RestartPolicy, CliError> {
    let spec = spec.unwrap_or("no");
    let (name, count) = spec.split_once(':').unwrap_or((spec, ""));
    let maximum_retry_count = if count.is_empty() {
        0
    } else {
        count.parse().map_err(|_| {
            CliError::Message(
                "invalid restart policy format: maximum retry count must be an integer".to_owned(),
            )
        })?
    };
    match name {
        "no" | "always" | "unless-stopped" | "on-failure" => Ok(RestartPolicy {
            name: name.to_owned(),
            maximum_retry_count,
        }),
        _ => Err(CliError::Message(format!(
            "invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

fn labels(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn none_if_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// Which streams an attached run attaches: `-a` names them, else stdout and stderr, plus
/// stdin with `-i`.
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Streams {
    fn of(a: &RunArgs, attach: bool) -> Result<Streams, CliError> {
        if !attach {
            if !a.attach.is_empty() {
                return Err(CliError::Message(
                    "Conflicting options: -a and -d".to_owned(),
                ));
            }
            return Ok(Streams {
                stdin: false,
                stdout: false,
                stderr: false,
            });
        }
        if a.attach.is_empty() {
            return Ok(Streams {
                stdin: a.interactive,
                stdout: true,
                stderr: true,
            });
        }
        let mut s = Streams {
            stdin: false,
            stdout: false,
            stderr: false,
        };
        for name in &a.attach {
            match name.to_ascii_lowercase().as_str() {
                "stdin" => s.stdin = true,
                "stdout" => s.stdout = true,
                "stderr" => s.stderr = true,
                _ => {
                    return Err(CliError::Message(format!(
                        "invalid argument {name:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                    )));
                }
            }
        }
        Ok(s)
    }
}

/// The create body the docker CLI sends for these flags.
pub fn create_body(a: &RunArgs, attach: bool) -> Result<ContainerCreate, CliError> {
    let mut env: Vec<String> = read_env_files(&a.env_file)?;
    env.extend(a.env.iter().filter_map(|e| env_entry(e)));
    let mut binds = Vec::new();
    let mut volumes = BTreeMap::new();
    for v in &a.volume {
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            volumes.insert(v.clone(), EmptyObject {});
        }
    }
    let mut exposed = BTreeMap::new();
    let mut bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for p in &a.publish {
        let (port, binding) = publish(p)?;
        exposed.insert(port.clone(), EmptyObject {});
        bindings.entry(port).or_default().push(binding);
    }
    for e in &a.expose {
        let port = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(port, EmptyObject {});
    }
    let mounts = a
        .mount
        .iter()
        .map(|m| mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs = a
        .tmpfs
        .iter()
        .map(|t| {
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            (path.to_owned(), opts.to_owned())
        })
        .collect();
    let network = a.network.clone().unwrap_or_else(|| "default".to_owned());
    let endpoint = serde_json::json!({
        "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "DriverOpts": null,
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
    });
    let console_size = match (a.tty, tty::terminal_size()) {
        (true, Some((h, w))) => [u32::from(h), u32::from(w)],
        _ => [0, 0],
    };
    let streams = Streams::of(a, attach)?;
    let host_config = HostConfig {
        binds: none_if_empty(&binds),
        log_config: LogConfig::default(),
        network_mode: network.clone(),
        port_bindings: bindings,
        restart_policy: restart_policy(a.restart.as_deref())?,
        auto_remove: a.rm,
        console_size,
        cap_add: none_if_empty(&a.cap_add),
        cap_drop: none_if_empty(&a.cap_drop),
        dns: a.dns.clone(),
        extra_hosts: none_if_empty(&a.add_host),
        group_add: none_if_empty(&a.group_add),
        privileged: a.privileged,
        publish_all_ports: a.publish_all,
        readonly_rootfs: a.read_only,
        security_opt: none_if_empty(&a.security_opt),
        tmpfs,
        shm_size: a.shm_size.unwrap_or(0),
        cpu_shares: a.cpu_shares.unwrap_or(0),
        memory: a.memory.unwrap_or(0),
        nano_cpus: a.cpus.unwrap_or(0),
        memory_swappiness: Some(-1),
        pids_limit: a.pids_limit,
        ulimits: a.ulimit.clone(),
        mounts: (!mounts.is_empty()).then_some(mounts),
        init: a.init.then_some(true),
        ..Default::default()
    };
    Ok(ContainerCreate {
        hostname: a.hostname.clone().unwrap_or_default(),
        user: a.user.clone().unwrap_or_default(),
        attach_stdin: streams.stdin,
        attach_stdout: streams.stdout,
        attach_stderr: streams.stderr,
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: a.tty,
        open_stdin: a.interactive,
        stdin_once: streams.stdin,
        env: (!env.is_empty()).then_some(env),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        image: a.image.clone(),
        volumes,
        working_dir: a.workdir.clone().unwrap_or_default(),
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        labels: labels(&a.label),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        host_config,
        networking_config: NetworkingConfig {
            endpoints_config: [(network, endpoint)].into(),
        },
        ..Default::default()
    })
}

pub const RUN_USAGE: &str = "run [OPTIONS] IMAGE [COMMAND] [ARG...]";
pub const CREATE_USAGE: &str = "create [OPTIONS] IMAGE [COMMAND] [ARG...]";

/// A daemon error during `run`: docker's `docker: …` line, its hint, and 125 (or 126/127
/// when the command could not be executed).
fn run_error(name: &str, e: ClientError) -> CliError {
    let text = e.to_string();
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
    {
        127
    } else if text.contains("permission denied") || text.contains("cannot execute") {
        126
    } else {
        125
    };
    CliError::Usage {
        message: format!("berth: {text}\n\nRun 'berth {name} --help' for more information"),
        code,
    }
}

/// Creates the container, pulling the image first when the daemon does not have it.
async fn create(
    client: &Client,
    name: Option<&str>,
    body: &ContainerCreate,
    quiet: bool,
) -> Result<String, ClientError> {
    match client.container_create(name, body).await {
        Ok(r) => {
            for w in r.warnings.iter().flatten() {
                eprintln!("WARNING: {w}");
            }
            Ok(r.id)
        }
        Err(e) if e.is_not_found() && e.to_string().contains("No such image") => {
            let reference = super::images::normalize_for_pull(&body.image);
            eprintln!("Unable to find image '{reference}' locally");
            super::images::pull_image(client, &body.image, quiet, true).await?;
            Ok(client.container_create(name, body).await?.id)
        }
        Err(e) => Err(e),
    }
}

pub async fn create_cmd(inv: &Invocation<'_>) -> CliResult {
    let args: RunArgs = parse_split(inv, CREATE_USAGE, 1)?;
    // docker create attaches stdout and stderr in the body, as an attached run does.
    let body = create_body(&args, true).map_err(|e| usage(e, "create"))?;
    let client = inv.client().await?;
    let id = create(&client, args.name.as_deref(), &body, args.quiet)
        .await
        .map_err(|e| run_error("create", e))?;
    println!("{id}");
    Ok(())
}

fn usage(e: CliError, name: &str) -> CliError {
    match e {
        CliError::Message(m) => CliError::Usage {
            message: format!("berth: {m}\n\nRun 'berth {name} --help' for more information"),
            code: 125,
        },
        other => other,
    }
}

pub async fn run(inv: &Invocation<'_>) -> CliResult {
    let args: RunArgs = parse_split(inv, RUN_USAGE, 1)?;
    let attach = !args.detach;
    let body = create_body(&args, attach).map_err(|e| usage(e, "run"))?;
    if args.tty && args.interactive && attach && !std::io::stdin().is_terminal() {
        return Err(CliError::Message(
            "the input device is not a TTY".to_owned(),
        ));
    }
    let client = inv.client().await?;
    let id = create(&client, args.name.as_deref(), &body, args.quiet)
        .await
        .map_err(|e| run_error("run", e))?;
    if !attach {
        // The docker CLI opens a wait before start, even detached.
        let _wait = client
            .container_wait(&id, Some("next-exit"))
            .await
            .map_err(|e| run_error("run", e))?;
        client
            .container_start(&id)
            .await
            .map_err(|e| run_error("run", e))?;
        println!("{id}");
        return Ok(());
    }
    let streams = Streams::of(&args, true)?;
    let keys = tty::parse_detach_keys(args.detach_keys.as_deref())?;
    let stream = client
        .container_attach(&id, streams.stdin, streams.stdout, streams.stderr)
        .await
        .map_err(|e| run_error("run", e))?;
    let condition = if args.rm { "removed" } else { "next-exit" };
    let wait = client
        .container_wait(&id, Some(condition))
        .await
        .map_err(|e| run_error("run", e))?;
    client
        .container_start(&id)
        .await
        .map_err(|e| run_error("run", e))?;
    let session = Session {
        stdin: streams.stdin,
        tty: args.tty,
        keys,
        sig_proxy: args.sig_proxy,
    };
    let code = attached_session(&client, &id, stream, &session, wait).await?;
    Err(CliError::Exit(code))
}

/// How an attached session runs.
pub struct Session {
    pub stdin: bool,
    pub tty: bool,
    pub keys: Vec<u8>,
    /// Forward our signals to the container (docker's `--sig-proxy`, only without a TTY).
    pub sig_proxy: bool,
}

/// The signals docker's CLI forwards to an attached container.
const PROXIED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Forwards each proxied signal we receive to the container, for the process's lifetime.
fn proxy_signals(client: &Client, id: &str) {
    use tokio::signal::unix::{SignalKind, signal};
    for sig in PROXIED {
        let Ok(mut stream) = signal(SignalKind::from_raw(sig)) else {
            continue;
        };
        let (c, id) = (client.clone(), id.to_owned());
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let _ = c.container_kill(&id, Some(&sig.to_string())).await;
            }
        });
    }
}

/// The attached part of run / start -a / attach: raw mode and resize with a TTY, signal
/// forwarding without one, the pumps, then the container's exit status (0 after a detach).
pub async fn attached_session(
    client: &Client,
    id: &str,
    stream: berth_client::Hijacked,
    session: &Session,
    wait: berth_client::WaitHandle,
) -> Result<i32, CliError> {
    let (stdin, tty_on) = (session.stdin, session.tty);
    if session.sig_proxy && !tty_on {
        proxy_signals(client, id);
    }
    let _raw = (tty_on && stdin).then(tty::RawMode::enable);
    if tty_on && std::io::stdout().is_terminal() {
        let (c, id2) = (client.clone(), id.to_owned());
        tty::follow_size(move |h, w| {
            let (c, id2) = (c.clone(), id2.clone());
            async move {
                let _ = c.container_resize(&id2, h, w).await;
            }
        });
    }
    if tty::pump(stream, stdin, tty_on, session.keys.clone()).await? == tty::End::Detached {
        return Ok(0);
    }
    let status = wait.status().await?;
    if let Some(err) = status.error.filter(|e| !e.message.is_empty()) {
        return Err(CliError::Message(err.message));
    }
    Ok(i32::try_from(status.status_code).unwrap_or(125))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &[&str]) -> RunArgs {
        RunArgs::try_parse_from(std::iter::once("run").chain(argv.iter().copied())).expect("parse")
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1G"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("100kb"), Ok(100 << 10));
        assert_eq!(ram_in_bytes("1024"), Ok(1024));
        assert_eq!(ram_in_bytes("x"), Err("invalid size: 'x'".to_owned()));
        assert!(ram_in_bytes("-1m").is_err());
        assert!(ram_in_bytes("1e400").is_err());
        assert_eq!(nano_cpus("1.5"), Ok(1_500_000_000));
        assert!(nano_cpus("abc").is_err());
        assert!(nano_cpus("NaN").is_err());
    }

    #[test]
    fn ulimits_and_ports() {
        assert_eq!(
            ulimit("nofile=1024:2048"),
            Ok(Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            })
        );
        assert!(ulimit("nofile=2:1").is_err());
        assert!(ulimit("nofile").is_err());
        let (port, b) = publish("127.0.0.1:8080:80").expect("publish");
        assert_eq!(port, "80/tcp");
        assert_eq!(b.host_ip, "127.0.0.1");
        assert_eq!(b.host_port, "8080");
        assert_eq!(publish("53/udp").expect("udp").0, "53/udp");
        assert_eq!(publish("[::1]:80:80").expect("v6").1.host_ip, "::1");
        for bad in ["x", "1:2:3:4", "0", "70000", "a:80"] {
            assert!(publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts_and_restart() {
        let m = mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777").expect("mount");
        assert_eq!(m.kind, "tmpfs");
        assert_eq!(
            m.tmpfs_options,
            Some(TmpfsOptions {
                size_bytes: Some(1 << 20),
                mode: Some(0o1777)
            })
        );
        assert!(mount("type=bind,source=/a").is_err());
        assert!(mount("type=bind,bogus=1,target=/x").is_err());
        assert_eq!(
            restart_policy(Some("on-failure:3"))
                .expect("policy")
                .maximum_retry_count,
            3
        );
        assert!(restart_policy(Some("sometimes")).is_err());
    }

    #[test]
    fn the_body_matches_the_docker_cli() {
        let a = args(&[
            "-it",
            "--rm",
            "-e",
            "A=B",
            "-v",
            "/h:/c:ro",
            "-v",
            "/anon",
            "-p",
            "8080:80",
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "10",
            "--init",
            "-l",
            "k=v",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ]);
        let body = create_body(&a, true).expect("body");
        let v = serde_json::to_value(&body).expect("json");
        assert_eq!(v["Tty"], true);
        assert_eq!(v["OpenStdin"], true);
        assert_eq!(v["StdinOnce"], true);
        assert_eq!(v["AttachStdin"], true);
        assert_eq!(v["Env"], serde_json::json!(["A=B"]));
        assert_eq!(v["Cmd"], serde_json::json!(["sh", "-c", "echo hi"]));
        assert_eq!(v["Volumes"], serde_json::json!({"/anon": {}}));
        assert_eq!(v["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        let hc = &v["HostConfig"];
        assert_eq!(hc["Binds"], serde_json::json!(["/h:/c:ro"]));
        assert_eq!(hc["AutoRemove"], true);
        assert_eq!(hc["Memory"], 64 << 20);
        assert_eq!(hc["NanoCpus"], 500_000_000);
        assert_eq!(hc["PidsLimit"], 10);
        assert_eq!(hc["Init"], true);
        assert_eq!(hc["NetworkMode"], "default");
        assert_eq!(
            hc["PortBindings"],
            serde_json::json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(v["Labels"], serde_json::json!({"k": "v"}));
    }
}
