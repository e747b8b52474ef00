//! The container commands after create: start, stop, kill, restart, rm, rename, pause,
//! unpause, wait, top, port, logs, exec, inspect, attach, container prune.

use std::io::{IsTerminal, Write};

use berth_client::stream::{Demuxer, StdStream};
use berth_client::types::ExecConfig;
use berth_client::{Client, LogsOptions};
use clap::Parser;
use serde_json::Value;

use super::format::{human_size, tabulate_min};
use super::run::{Session, attached_session};
use super::template::{Data, Template};
use super::{CliError, CliResult, Invocation, parse, parse_split, tty};

/// Runs `action` on every container, printing each name that worked and each daemon error
/// as docker does; exit 1 if any failed.
async fn each<F, Fut>(names: &[String], action: F) -> CliResult
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), berth_client::ClientError>>,
{
    let mut failed = false;
    for name in names {
        match action(name.clone()).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

#[derive(Parser)]
#[command(name = "start", about = "Start one or more stopped containers")]
struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn start(inv: &Invocation<'_>) -> CliResult {
    let args: StartArgs = parse(inv, "start [OPTIONS] CONTAINER [CONTAINER...]")?;
    let client = inv.client().await?;
    if !(args.attach || args.interactive) {
        return each(&args.containers, |n| {
            let c = client.clone();
            async move { c.container_start(&n).await }
        })
        .await;
    }
    if args.containers.len() > 1 {
        return Err(CliError::Message(
            "you cannot start and attach multiple containers at once".to_owned(),
        ));
    }
    let info = client.container_inspect(&args.containers[0]).await?;
    let id = info["Id"].as_str().unwrap_or_default().to_owned();
    let tty_on = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = args.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = tty::parse_detach_keys(args.detach_keys.as_deref())?;
    let stream = client.container_attach(&id, stdin, true, true).await?;
    let wait = client.container_wait(&id, Some("next-exit")).await?;
    client.container_start(&id).await?;
    let session = Session {
        stdin,
        tty: tty_on,
        keys,
        sig_proxy: true,
    };
    let code = attached_session(&client, &id, stream, &session, wait).await?;
    Err(CliError::Exit(code))
}

#[derive(Parser)]
#[command(
    name = "attach",
    about = "Attach local standard input, output, and error streams to a running container"
)]
struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    container: String,
}

pub async fn attach(inv: &Invocation<'_>) -> CliResult {
    let args: AttachArgs = parse(inv, "attach [OPTIONS] CONTAINER")?;
    let client = inv.client().await?;
    let info = client.container_inspect(&args.container).await?;
    let id = info["Id"].as_str().unwrap_or_default().to_owned();
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(CliError::Message(
            "You cannot attach to a stopped container, start it first".to_owned(),
        ));
    }
    let tty_on = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !args.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = tty::parse_detach_keys(args.detach_keys.as_deref())?;
    let stream = client.container_attach(&id, stdin, true, true).await?;
    let wait = client.container_wait(&id, Some("next-exit")).await?;
    let session = Session {
        stdin,
        tty: tty_on,
        keys,
        sig_proxy: args.sig_proxy,
    };
    let code = attached_session(&client, &id, stream, &session, wait).await?;
    Err(CliError::Exit(code))
}

#[derive(Parser)]
#[command(name = "stop", about = "Stop one or more running containers")]
struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short, long = "time", alias = "timeout", allow_negative_numbers = true)]
    time: Option<i64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn stop(inv: &Invocation<'_>) -> CliResult {
    let args: StopArgs = parse(inv, "stop [OPTIONS] CONTAINER [CONTAINER...]")?;
    let client = inv.client().await?;
    let signal = args.signal.clone();
    each(&args.containers, |n| {
        let (c, s) = (client.clone(), signal.clone());
        async move { c.container_stop(&n, args.time, s.as_deref()).await }
    })
    .await
}

#[derive(Parser)]
#[command(name = "restart", about = "Restart one or more containers")]
struct RestartArgs {
    /// Seconds to wait before killing the container
    #[arg(short, long = "time", alias = "timeout", allow_negative_numbers = true)]
    time: Option<i64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn restart(inv: &Invocation<'_>) -> CliResult {
    let args: RestartArgs = parse(inv, "restart [OPTIONS] CONTAINER [CONTAINER...]")?;
    let client = inv.client().await?;
    each(&args.containers, |n| {
        let c = client.clone();
        async move { c.container_restart(&n, args.time).await }
    })
    .await
}

#[derive(Parser)]
#[command(name = "kill", about = "Kill one or more running containers")]
struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn kill(inv: &Invocation<'_>) -> CliResult {
    let args: KillArgs = parse(inv, "kill [OPTIONS] CONTAINER [CONTAINER...]")?;
    let client = inv.client().await?;
    let signal = args.signal.clone();
    each(&args.containers, |n| {
        let (c, s) = (client.clone(), signal.clone());
        async move { c.container_kill(&n, s.as_deref()).await }
    })
    .await
}

#[derive(Parser)]
#[command(name = "rm", about = "Remove one or more containers")]
struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    volumes: bool,
    /// Remove the specified link
    #[arg(short, long)]
    link: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn rm(inv: &Invocation<'_>) -> CliResult {
    let args: RmArgs = parse(inv, "rm [OPTIONS] CONTAINER [CONTAINER...]")?;
    let client = inv.client().await?;
    each(&args.containers, |n| {
        let c = client.clone();
        async move { c.container_remove(&n, args.force, args.volumes).await }
    })
    .await
}

#[derive(Parser)]
#[command(name = "pause")]
struct NamesArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `pause` and `unpause`.
pub async fn pause(inv: &Invocation<'_>, action: &'static str) -> CliResult {
    let usage = format!("{action} CONTAINER [CONTAINER...]");
    let args: NamesArgs = parse(inv, &usage)?;
    let client = inv.client().await?;
    each(&args.containers, |n| {
        let c = client.clone();
        async move { c.container_action(&n, action).await }
    })
    .await
}

#[derive(Parser)]
#[command(name = "rename", about = "Rename a container")]
struct RenameArgs {
    container: String,
    new_name: String,
}

pub async fn rename(inv: &Invocation<'_>) -> CliResult {
    let args: RenameArgs = parse(inv, "rename CONTAINER NEW_NAME")?;
    let client = inv.client().await?;
    client
        .container_rename(&args.container, &args.new_name)
        .await?;
    Ok(())
}

pub async fn wait(inv: &Invocation<'_>) -> CliResult {
    let args: NamesArgs = parse(inv, "wait CONTAINER [CONTAINER...]")?;
    let client = inv.client().await?;
    let mut failed = false;
    for name in &args.containers {
        let result = match client.container_wait(name, None).await {
            Ok(w) => w.status().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(status) => println!("{}", status.status_code),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

#[derive(Parser)]
#[command(name = "top", about = "Display the running processes of a container")]
struct TopArgs {
    container: String,
    /// ps options
    #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
    ps_args: Vec<String>,
}

pub async fn top(inv: &Invocation<'_>) -> CliResult {
    let args: TopArgs = parse(inv, "top CONTAINER [ps OPTIONS]")?;
    let client = inv.client().await?;
    let ps_args = (!args.ps_args.is_empty()).then(|| args.ps_args.join(" "));
    let top = client
        .container_top(&args.container, ps_args.as_deref())
        .await?;
    let cells = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c.as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut lines = vec![cells(&top["Titles"]).join("\t")];
    for p in top["Processes"].as_array().into_iter().flatten() {
        lines.push(cells(p).join("\t"));
    }
    // docker's top table has a minimum column width of 20.
    print!("{}", tabulate_min(&lines, 20));
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "port",
    about = "List port mappings or a specific mapping for the container"
)]
struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

pub async fn port(inv: &Invocation<'_>) -> CliResult {
    let args: PortArgs = parse(inv, "port CONTAINER [PRIVATE_PORT[/PROTO]]")?;
    let client = inv.client().await?;
    let info = client.container_inspect(&args.container).await?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let wanted = args.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (key, bindings) in &ports {
        if wanted.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let port = b["HostPort"].as_str().unwrap_or("");
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_owned()
            };
            found = true;
            if wanted.is_some() {
                println!("{ip}:{port}");
            } else {
                println!("{key} -> {ip}:{port}");
            }
        }
    }
    match (&args.port, found) {
        (Some(p), false) => Err(CliError::Message(format!(
            "Error: No public port '{}' published for {}",
            wanted.unwrap_or_else(|| p.clone()),
            args.container
        ))),
        _ => Ok(()),
    }
}

#[derive(Parser)]
#[command(name = "logs", about = "Fetch the logs of a container")]
struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs before a timestamp or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    until: Option<String>,
    container: String,
}

/// Docker's `--since`/`--until`: a relative duration (`10m`, `1h30m`, `90s`) becomes unix
/// seconds before now; a timestamp or RFC 3339 time is passed as the daemon takes it.
pub(super) fn time_arg(value: &str) -> Result<String, CliError> {
    if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(value.to_owned());
    }
    if let Some(secs) = go_duration(value) {
        return Ok((super::format::now_unix() - secs).to_string());
    }
    if let Some(t) = rfc3339_seconds(value) {
        return Ok(t.to_string());
    }
    Err(CliError::Message(format!(
        "invalid value for \"since\": failed to parse value as time or duration: \"{value}\""
    )))
}

/// `1h30m`, `42m`, `10s` as whole seconds.
fn go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut any = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then_some(total as i64)
}

/// `2026-12-03T17:00:00Z` (or with a `+hh:mm` offset) as unix seconds.
fn rfc3339_seconds(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else {
        let pos = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let clock = clock.split('.').next()?;
    let mut t = clock.split(':').map(str::parse::<i64>);
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (H. Hinnant), the inverse of format::civil_from_days.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

pub async fn logs(inv: &Invocation<'_>) -> CliResult {
    let args: LogsArgs = parse(inv, "logs [OPTIONS] CONTAINER")?;
    let opts = LogsOptions {
        follow: args.follow,
        timestamps: args.timestamps,
        tail: Some(args.tail.clone()),
        since: args.since.as_deref().map(time_arg).transpose()?,
        until: args.until.as_deref().map(time_arg).transpose()?,
    };
    let client = inv.client().await?;
    let info = client.container_inspect(&args.container).await?;
    let id = info["Id"].as_str().unwrap_or(&args.container).to_owned();
    let tty_on = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut body = client.container_logs(&id, &opts).await?;
    let mut demux = Demuxer::new();
    while let Some(chunk) = berth_client::next_chunk(&mut body).await? {
        write_stdio(&chunk, tty_on, &mut demux)?;
    }
    Ok(())
}

fn write_stdio(data: &[u8], raw: bool, demux: &mut Demuxer) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if raw {
        out.write_all(data)?;
        return Ok(out.flush()?);
    }
    let mut err = std::io::stderr().lock();
    let mut failed = None;
    demux
        .feed(data, &mut |s, payload| {
            let r = match s {
                StdStream::Stderr => err.write_all(payload),
                _ => out.write_all(payload).and_then(|()| out.flush()),
            };
            if let Err(e) = r {
                failed = Some(e);
            }
        })
        .map_err(|e| CliError::Message(e.to_string()))?;
    failed.map_or(Ok(()), |e| Err(e.into()))
}

#[derive(Parser)]
#[command(name = "exec", about = "Execute a command in a running container")]
struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    container: String,
    #[arg(num_args = 1.., allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

pub async fn exec(inv: &Invocation<'_>) -> CliResult {
    let args: ExecArgs = parse_split(inv, "exec [OPTIONS] CONTAINER COMMAND [ARG...]", 1)?;
    if args.tty && args.interactive && !std::io::stdin().is_terminal() {
        return Err(CliError::Message(
            "the input device is not a TTY".to_owned(),
        ));
    }
    let client = inv.client().await?;
    let info = client.container_inspect(&args.container).await?;
    let id = info["Id"].as_str().unwrap_or(&args.container).to_owned();
    let attach = !args.detach;
    let config = ExecConfig {
        user: args.user.clone().unwrap_or_default(),
        privileged: args.privileged,
        tty: args.tty,
        attach_stdin: attach && args.interactive,
        attach_stderr: attach,
        attach_stdout: attach,
        detach: args.detach,
        detach_keys: args.detach_keys.clone().unwrap_or_default(),
        env: (!args.env.is_empty()).then(|| args.env.clone()),
        working_dir: args.workdir.clone().unwrap_or_default(),
        cmd: args.command.clone(),
    };
    let exec_id = client.exec_create(&id, &config).await?;
    if args.detach {
        client.exec_start_detached(&exec_id, args.tty).await?;
        return Ok(());
    }
    let keys = tty::parse_detach_keys(args.detach_keys.as_deref())?;
    let stream = client.exec_start_attached(&exec_id, args.tty).await?;
    let _raw = (args.tty && args.interactive).then(tty::RawMode::enable);
    if args.tty && std::io::stdout().is_terminal() {
        let (c, e) = (client.clone(), exec_id.clone());
        tty::follow_size(move |h, w| {
            let (c, e) = (c.clone(), e.clone());
            async move {
                let _ = c.exec_resize(&e, h, w).await;
            }
        });
    }
    if tty::pump(stream, args.interactive, args.tty, keys).await? == tty::End::Detached {
        return Ok(());
    }
    let result = exec_exit_code(&client, &exec_id).await?;
    if result == 0 {
        Ok(())
    } else {
        Err(CliError::Exit(result))
    }
}

/// The exec's exit code once the daemon reports it finished (bounded wait).
async fn exec_exit_code(client: &Client, exec_id: &str) -> Result<i32, CliError> {
    for _ in 0..200 {
        let inspect = client.exec_inspect(exec_id).await?;
        if !inspect.running {
            return Ok(inspect
                .exit_code
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(0));
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(CliError::Message(format!(
        "exec {exec_id} still running after its stream closed"
    )))
}

#[derive(Parser)]
#[command(
    name = "inspect",
    about = "Return low-level information on Docker objects"
)]
struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type")]
    kind: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

/// `inspect`, `container inspect` and `image inspect`.
pub async fn inspect(inv: &Invocation<'_>, fixed_kind: Option<&str>) -> CliResult {
    let args: InspectArgs = parse(inv, "inspect [OPTIONS] NAME|ID [NAME|ID...]")?;
    let kind = fixed_kind.map(str::to_owned).or(args.kind.clone());
    let template = args
        .format
        .as_deref()
        .map(|f| Template::parse(&super::format::prepare(f).1))
        .transpose()?;
    let client = inv.client().await?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match lookup(&client, name, kind.as_deref()).await {
            Ok(Some(object)) => found.push(object),
            Ok(None) => {
                let what = match kind.as_deref() {
                    Some("container") => format!("Error: No such container: {name}"),
                    Some("image") => format!("Error: No such image: {name}"),
                    _ => format!("Error: No such object: {name}"),
                };
                eprintln!("{what}");
                failed = true;
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    match &template {
        Some(t) => {
            for (_, v) in &found {
                let out = t.render(&Data {
                    value: v,
                    labels: None,
                })?;
                println!("{out}");
            }
        }
        None => {
            let raws: Vec<Vec<u8>> = found.into_iter().map(|(raw, _)| raw).collect();
            println!("{}", go_indent(&raws));
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

/// The object's raw JSON (for printing in the daemon's order) and its value (for templates).
async fn lookup(
    client: &Client,
    name: &str,
    kind: Option<&str>,
) -> Result<Option<(Vec<u8>, Value)>, berth_client::ClientError> {
    for (k, path) in [("container", "containers"), ("image", "images")] {
        if kind.is_some() && kind != Some(k) {
            continue;
        }
        match client.inspect_raw(path, name).await {
            Ok(raw) => {
                let value = serde_json::from_slice(&raw)?;
                return Ok(Some((raw, value)));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// What docker prints: `json.MarshalIndent` of the raw objects, 4 spaces, their field order
/// kept, `<`, `>` and `&` escaped as Go's encoder does; `[]` when nothing was found.
pub(super) fn go_indent(raws: &[Vec<u8>]) -> String {
    if raws.is_empty() {
        return "[]".to_owned();
    }
    let mut joined = b"[".to_vec();
    for (i, raw) in raws.iter().enumerate() {
        if i > 0 {
            joined.push(b',');
        }
        joined.extend_from_slice(raw);
    }
    joined.push(b']');
    indent_json(&joined)
}

/// The deepest nesting that is indented.
const MAX_INDENT_DEPTH: usize = 128;

/// Re-indents JSON text token by token (strings kept byte for byte, except Go's HTML
/// escapes); empty `{}` and `[]` stay on one line.
fn indent_json(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len() * 2);
    let mut depth = 0usize;
    let text = String::from_utf8_lossy(input);
    let mut chars = text.chars().peekable();
    // Callers pass JSON serde_json accepted (nesting ≤ 128); the cap keeps hostile text
    // from making the output quadratic anyway.
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("    ", depth.min(MAX_INDENT_DEPTH)));
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(sc) = chars.next() {
                    match sc {
                        '\\' => {
                            out.push('\\');
                            if let Some(esc) = chars.next() {
                                out.push(esc);
                            }
                        }
                        '"' => break,
                        '<' => out.push_str("\\u003c"),
                        '>' => out.push_str("\\u003e"),
                        '&' => out.push_str("\\u0026"),
                        other => out.push(other),
                    }
                }
                out.push('"');
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            other => out.push(other),
        }
    }
    out
}

#[derive(Parser)]
#[command(name = "prune", about = "Remove all stopped containers")]
struct ContainerPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub async fn container_prune(inv: &Invocation<'_>) -> CliResult {
    let args: ContainerPruneArgs = parse(inv, "container prune [OPTIONS]")?;
    if !args.force && !super::confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let client = inv.client().await?;
    let report = client
        .prune("containers", &super::filters(&args.filter)?)
        .await?;
    let deleted: Vec<String> = report["ContainersDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", human_size(space));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(go_duration("10s"), Some(10));
        assert_eq!(go_duration("1h30m"), Some(5400));
        assert_eq!(go_duration("42m"), Some(2520));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("5x"), None);
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_seconds("2026-11-25T08:39:28Z"), Some(1_795_595_968));
        assert_eq!(
            rfc3339_seconds("2026-11-25T09:39:28+01:00"),
            Some(1_795_595_968)
        );
        assert_eq!(rfc3339_seconds("2026-13-25T08:39:28Z"), None);
        assert_eq!(rfc3339_seconds("garbage"), None);
        assert_eq!(time_arg("1795595968").expect("unix"), "1795595968");
        assert!(time_arg("yesterday").is_err());
    }

    #[test]
    fn hostile_json_is_reindented_without_panics() {
        for bad in [
            &b"{"[..],
            b"}}}]]]",
            b"\"unterminated",
            b"\"\\",
            b"\xff\xfe{\"a\":1}",
            &[b'['; 1_000],
        ] {
            let _ = indent_json(bad);
        }
        assert_eq!(indent_json(b"}"), "\n}");
    }

    #[test]
    fn inspect_json_is_indented_like_go() {
        assert_eq!(go_indent(&[]), "[]");
        assert_eq!(
            go_indent(&[br#"{"B": [1], "A":{}, "C":"x<y, \"z\": [}"}"#.to_vec()]),
            "[\n    {\n        \"B\": [\n            1\n        ],\n        \"A\": {},\n        \"C\": \"x\\u003cy, \\\"z\\\": [}\"\n    }\n]"
        );
    }
}
