//! `berth version`, `berth info`, `berth events`.

use clap::Parser;
use serde_json::{Value, json};

use super::template::{Data, Template};
use super::{CliResult, Invocation, parse};

#[derive(Parser)]
#[command(name = "version", about = "Show the berth version information")]
struct VersionArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub async fn version(inv: &Invocation<'_>) -> CliResult {
    let args: VersionArgs = parse(inv, "version [OPTIONS]")?;
    let client_info = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": berth_client::MAX_API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
    });
    let client = inv.client().await;
    let server = match &client {
        Ok(c) => Some(c.version().await?),
        Err(_) => None,
    };
    if let Some(format) = &args.format {
        let value = json!({"Client": client_info, "Server": server});
        let out = Template::parse(&super::format::prepare(format).1)?.render(&Data {
            value: &value,
            labels: None,
        })?;
        println!("{out}");
        return client.map(|_| ());
    }
    let negotiated = client
        .as_ref()
        .map_or(berth_client::MAX_API_VERSION, |c| c.api_version());
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {negotiated}");
    println!(" OS/Arch:           {}/{}", std::env::consts::OS, go_arch());
    println!();
    let server = match (client, server) {
        (Ok(_), Some(server)) => server,
        (Err(e), _) => return Err(e),
        (Ok(_), None) => return Ok(()),
    };
    let platform = server
        .pointer("/Platform/Name")
        .and_then(Value::as_str)
        .unwrap_or("");
    println!("Server: {platform}");
    println!(" Engine:");
    println!("  Version:          {}", s(&server, "Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s(&server, "ApiVersion"),
        s(&server, "MinAPIVersion")
    );
    println!("  Git commit:       {}", s(&server, "GitCommit"));
    println!("  Built:            {}", s(&server, "BuildTime"));
    println!(
        "  OS/Arch:          {}/{}",
        s(&server, "Os"),
        s(&server, "Arch")
    );
    let components = server.get("Components").and_then(Value::as_array);
    for c in components.into_iter().flatten() {
        if s(c, "Name") == "Engine" {
            continue;
        }
        println!(" {}:", s(c, "Name"));
        println!("  Version:          {}", s(c, "Version"));
    }
    Ok(())
}

/// Go's GOARCH name for this machine.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[derive(Parser)]
#[command(name = "info", about = "Display system-wide information")]
struct InfoArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
}

pub async fn info(inv: &Invocation<'_>) -> CliResult {
    let args: InfoArgs = parse(inv, "info [OPTIONS]")?;
    let client = inv.client().await?;
    let info = client.info().await?;
    if let Some(format) = &args.format {
        let out = Template::parse(&super::format::prepare(format).1)?.render(&Data {
            value: &info,
            labels: None,
        })?;
        println!("{out}");
        return Ok(());
    }
    let n = |k: &str| {
        info.get(k)
            .map_or_else(String::new, |v| super::template::go_print(&Some(v.clone())))
    };
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!();
    println!("Server:");
    println!(" Containers: {}", n("Containers"));
    println!("  Running: {}", n("ContainersRunning"));
    println!("  Paused: {}", n("ContainersPaused"));
    println!("  Stopped: {}", n("ContainersStopped"));
    println!(" Images: {}", n("Images"));
    println!(" Server Version: {}", n("ServerVersion"));
    println!(" Storage Driver: {}", n("Driver"));
    println!(" Logging Driver: {}", n("LoggingDriver"));
    println!(" Cgroup Driver: {}", n("CgroupDriver"));
    println!(" Cgroup Version: {}", n("CgroupVersion"));
    if let Some(runtimes) = info.get("Runtimes").and_then(Value::as_object) {
        let names: Vec<&str> = runtimes.keys().map(String::as_str).collect();
        println!(" Runtimes: {}", names.join(" "));
    }
    println!(" Default Runtime: {}", n("DefaultRuntime"));
    if let Some(opts) = info.get("SecurityOptions").and_then(Value::as_array) {
        println!(" Security Options:");
        for o in opts.iter().filter_map(Value::as_str) {
            println!("  {}", o.trim_start_matches("name="));
        }
    }
    println!(" Kernel Version: {}", n("KernelVersion"));
    println!(" Operating System: {}", n("OperatingSystem"));
    println!(" OSType: {}", n("OSType"));
    println!(" Architecture: {}", n("Architecture"));
    println!(" CPUs: {}", n("NCPU"));
    let mem = info.get("MemTotal").and_then(Value::as_f64).unwrap_or(0.0);
    println!(" Total Memory: {}", super::format::binary_size(mem));
    println!(" Name: {}", n("Name"));
    println!(" ID: {}", n("ID"));
    println!(" Docker Root Dir: {}", n("DockerRootDir"));
    println!(" Debug Mode: {}", n("Debug"));
    println!(" Experimental: {}", n("ExperimentalBuild"));
    println!(" Live Restore Enabled: {}", n("LiveRestoreEnabled"));
    if let Some(warnings) = info.get("Warnings").and_then(Value::as_array) {
        for w in warnings.iter().filter_map(Value::as_str) {
            eprintln!("{w}");
        }
    }
    Ok(())
}

#[derive(Parser)]
#[command(name = "events", about = "Get real time events from the server")]
struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
}

pub async fn events(inv: &Invocation<'_>) -> CliResult {
    use berth_client::stream::LineSplitter;
    let args: EventsArgs = parse(inv, "events [OPTIONS]")?;
    let mut q = Vec::new();
    let filters = super::filters(&args.filter)?;
    if !filters.is_empty() {
        q.push(("filters", filters.to_json()));
    }
    if let Some(s) = &args.since {
        q.push(("since", super::container::time_arg(s)?));
    }
    if let Some(u) = &args.until {
        q.push(("until", super::container::time_arg(u)?));
    }
    let template = args
        .format
        .as_deref()
        .map(|f| Template::parse(&super::format::prepare(f).1))
        .transpose()?;
    let client = inv.client().await?;
    let mut body = client.get_stream("/events", &q).await?;
    let mut lines = LineSplitter::new();
    while let Some(chunk) = berth_client::next_chunk(&mut body).await? {
        let complete = lines
            .feed(&chunk)
            .map_err(|e| super::CliError::Message(e.to_string()))?;
        for line in complete {
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let text = match &template {
                Some(t) => t.render(&Data {
                    value: &event,
                    labels: None,
                })?,
                None => event_line(&event),
            };
            println!("{text}");
        }
    }
    Ok(())
}

/// docker's default event line: `time type action id (k=v, …)`.
fn event_line(e: &Value) -> String {
    let nanos = e
        .get("timeNano")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| e.get("time").and_then(Value::as_i64).unwrap_or(0) * 1_000_000_000);
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let stamp = super::format::go_time(secs);
    // go_time gives "YYYY-MM-DD hh:mm:ss +0000 UTC"; events use RFC 3339 with nanoseconds.
    let (date, rest) = stamp.split_once(' ').unwrap_or((&stamp, ""));
    let clock = rest.split(' ').next().unwrap_or("");
    let attrs = e
        .pointer("/Actor/Attributes")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "{date}T{clock}.{frac:09}Z {} {} {} ({attrs})",
        s(e, "Type"),
        s(e, "Action"),
        e.pointer("/Actor/ID").and_then(Value::as_str).unwrap_or("")
    )
}
