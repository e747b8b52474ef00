//! `berth stats`, `berth update` and `berth system df`, with docker's columns and `--format`.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_client::Client;
use clap::Parser;
use serde_json::{Value, json};

use super::format::{Row, binary_size, human_size, render, short_id};
use super::{CliError, CliResult, Invocation, parse};

#[derive(Parser)]
#[command(
    name = "stats",
    about = "Display a live stream of container(s) resource usage statistics"
)]
struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Containers
    containers: Vec<String>,
}

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const STATS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn u(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0)
}

/// CPU % as the docker CLI computes it: container time over host time since `pre`, times CPUs.
fn cpu_percent(cur: &Value, pre: &Value) -> f64 {
    let cpu_delta =
        u(cur, "/cpu_stats/cpu_usage/total_usage") - u(pre, "/cpu_stats/cpu_usage/total_usage");
    let system_delta =
        u(cur, "/cpu_stats/system_cpu_usage") - u(pre, "/cpu_stats/system_cpu_usage");
    let mut cpus = u(cur, "/cpu_stats/online_cpus");
    if cpus == 0.0 {
        cpus = cur
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0.0, |a| a.len() as f64);
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// Memory without the inactive page cache (v1 `total_inactive_file`, v2 `inactive_file`).
fn memory_used(s: &Value) -> f64 {
    let usage = u(s, "/memory_stats/usage");
    for key in [
        "/memory_stats/stats/total_inactive_file",
        "/memory_stats/stats/inactive_file",
    ] {
        if let Some(v) = s.pointer(key).and_then(Value::as_f64) {
            return if v < usage { usage - v } else { usage };
        }
    }
    usage
}

fn io_totals(s: &Value) -> (f64, f64) {
    let mut totals = (0.0, 0.0);
    let entries = s
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array);
    for e in entries.into_iter().flatten() {
        let value = e["value"].as_f64().unwrap_or(0.0);
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => totals.0 += value,
            Some("write") => totals.1 += value,
            _ => {}
        }
    }
    totals
}

fn net_totals(s: &Value) -> (f64, f64) {
    let mut totals = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        totals.0 += n["rx_bytes"].as_f64().unwrap_or(0.0);
        totals.1 += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    totals
}

/// One row of `docker stats`: `arg` as the user named the container.
fn stats_row(arg: &str, cur: &Value, pre: &Value, no_trunc: bool) -> Row {
    let id = cur["id"].as_str().unwrap_or("");
    let mem = memory_used(cur);
    let limit = u(cur, "/memory_stats/limit");
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = net_totals(cur);
    let (read, write) = io_totals(cur);
    Row {
        fields: json!({
            "Container": arg,
            "ID": if no_trunc { id.to_owned() } else { short_id(id) },
            "Name": cur["name"].as_str().unwrap_or("").trim_start_matches('/'),
            "CPUPerc": format!("{:.2}%", cpu_percent(cur, pre)),
            "MemUsage": format!("{} / {}", binary_size(mem), binary_size(limit)),
            "MemPerc": format!("{mem_perc:.2}%"),
            "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
            "BlockIO": format!("{} / {}", human_size(read), human_size(write)),
            "PIDs": u(cur, "/pids_stats/current").to_string(),
        }),
        labels: BTreeMap::new(),
    }
}

async fn sample(
    client: &Client,
    id: &str,
    stream_false_two_samples: bool,
) -> Result<Value, CliError> {
    let q = if stream_false_two_samples {
        vec![("stream", "0".to_owned())]
    } else {
        vec![("stream", "0".to_owned()), ("one-shot", "1".to_owned())]
    };
    Ok(client
        .get_json(&format!("/containers/{id}/stats"), &q)
        .await?)
}

pub async fn stats(inv: &Invocation<'_>) -> CliResult {
    let args: StatsArgs = parse(inv, "stats [OPTIONS] [CONTAINER...]")?;
    let client = inv.client().await?;
    let names: Vec<String> = if args.containers.is_empty() {
        let list = client
            .containers(args.all, None, false, &berth_reference::Filters::new())
            .await?;
        list.iter().map(|c| short_id(&c.id)).collect()
    } else {
        args.containers.clone()
    };
    let format = args
        .format
        .clone()
        .unwrap_or_else(|| STATS_TABLE.to_owned());
    if args.no_stream {
        let mut rows = Vec::new();
        let mut failed = Vec::new();
        for name in &names {
            match sample(&client, name, true).await {
                Ok(s) => {
                    // The answer carries the earlier sample's CPU counters.
                    let pre = json!({ "cpu_stats": s["precpu_stats"] });
                    rows.push(stats_row(name, &s, &pre, args.no_trunc));
                }
                Err(e) => failed.push(e),
            }
        }
        print!("{}", render(&format, &rows, STATS_HEADERS)?);
        return failed.into_iter().next().map_or(Ok(()), Err);
    }
    // Streaming: a fresh sample a second, CPU % against the previous one, until interrupted.
    let mut previous: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let mut rows = Vec::new();
        for name in &names {
            let Ok(cur) = sample(&client, name, false).await else {
                continue;
            };
            let pre = previous.get(name).cloned().unwrap_or(Value::Null);
            rows.push(stats_row(name, &cur, &pre, args.no_trunc));
            previous.insert(name.clone(), cur);
        }
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", render(&format, &rows, STATS_HEADERS)?);
        use std::io::Write;
        std::io::stdout().flush()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[derive(Parser)]
#[command(
    name = "update",
    about = "Update configuration of one or more containers"
)]
struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_negative_numbers = true)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_parser = super::run::nano_cpus)]
    cpus: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long, value_parser = super::run::ram_in_bytes)]
    memory: Option<i64>,
    /// Memory soft limit
    #[arg(long, value_parser = super::run::ram_in_bytes)]
    memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, allow_negative_numbers = true, value_parser = swap_bytes)]
    memory_swap: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    /// Containers
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `--memory-swap`: a size, or -1 for unlimited.
fn swap_bytes(s: &str) -> Result<i64, String> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    super::run::ram_in_bytes(s)
}

pub async fn update(inv: &Invocation<'_>) -> CliResult {
    let a: UpdateArgs = parse(inv, "update [OPTIONS] CONTAINER [CONTAINER...]")?;
    let restart = a
        .restart
        .as_deref()
        .map(|r| super::run::restart_policy(Some(r)))
        .transpose()?;
    let mut body = json!({
        "BlkioWeight": a.blkio_weight.unwrap_or(0),
        "CpuPeriod": a.cpu_period.unwrap_or(0),
        "CpuQuota": a.cpu_quota.unwrap_or(0),
        "CpuShares": a.cpu_shares.unwrap_or(0),
        "NanoCpus": a.cpus.unwrap_or(0),
        "CpusetCpus": a.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": a.cpuset_mems.clone().unwrap_or_default(),
        "Memory": a.memory.unwrap_or(0),
        "MemoryReservation": a.memory_reservation.unwrap_or(0),
        "MemorySwap": a.memory_swap.unwrap_or(0),
        "PidsLimit": a.pids_limit,
    });
    if let Some(policy) = restart {
        body["RestartPolicy"] = serde_json::to_value(policy).unwrap_or(Value::Null);
    }
    let nothing = [
        a.blkio_weight.is_none(),
        a.cpu_period.is_none(),
        a.cpu_quota.is_none(),
    ]
    .into_iter()
    .chain([
        a.cpu_shares.is_none(),
        a.cpus.is_none(),
        a.cpuset_cpus.is_none(),
    ])
    .chain([
        a.cpuset_mems.is_none(),
        a.memory.is_none(),
        a.memory_reservation.is_none(),
    ])
    .chain([
        a.memory_swap.is_none(),
        a.pids_limit.is_none(),
        a.restart.is_none(),
    ])
    .all(|unset| unset);
    if nothing {
        return Err(CliError::Message(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let client = inv.client().await?;
    let mut errors = Vec::new();
    for name in &a.containers {
        let answer: Result<Value, _> = client
            .post_json(&format!("/containers/{name}/update"), &[], &body)
            .await;
        match answer {
            Ok(v) => {
                for w in v["Warnings"].as_array().into_iter().flatten() {
                    eprintln!("{}", w.as_str().unwrap_or(""));
                }
                println!("{name}");
            }
            Err(berth_client::ClientError::Daemon { message, .. }) => errors.push(message),
            Err(e) => return Err(e.into()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Message(errors.join("\n")))
    }
}

#[derive(Parser)]
#[command(name = "df", about = "Show docker disk usage")]
struct DfArgs {
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
}

/// go-units' `HumanSize` (4 significant digits), which `system df` uses for totals.
fn size4(size: f64) -> String {
    super::format::human_size_precision(size, 4)
}

fn percent_of(part: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{} ({}%)", size4(part), (part * 100.0 / total) as i64)
    } else {
        size4(part)
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

/// The four summary rows of `docker system df`, as the docker CLI computes them.
fn df_rows(df: &Value) -> Vec<Row> {
    let images = list(df, "Images");
    let layers = df["LayersSize"].as_f64().unwrap_or(0.0);
    let used: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .map(|i| i["Size"].as_f64().unwrap_or(0.0) - i["SharedSize"].as_f64().unwrap_or(0.0))
        .sum();
    let containers = list(df, "Containers");
    let active = |c: &&Value| matches!(c["State"].as_str(), Some("running" | "paused"));
    let rw = |c: &Value| c["SizeRw"].as_f64().unwrap_or(0.0);
    let volumes = list(df, "Volumes");
    let vsize = |v: &Value| v["UsageData"]["Size"].as_f64().unwrap_or(0.0).max(0.0);
    let vused = |v: &&Value| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0;
    let cache = list(df, "BuildCache");
    let csize = |c: &Value| c["Size"].as_f64().unwrap_or(0.0);
    let row = |kind: &str, total: usize, active: usize, size: String, reclaimable: String| Row {
        fields: json!({"Type": kind, "TotalCount": total.to_string(), "Active": active.to_string(), "Size": size, "Reclaimable": reclaimable}),
        labels: BTreeMap::new(),
    };
    let csum: f64 = containers.iter().map(rw).sum();
    let vsum: f64 = volumes.iter().map(vsize).sum();
    let not_shared = |c: &&Value| c["Shared"] != json!(true);
    vec![
        row(
            "Images",
            images.len(),
            images
                .iter()
                .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
                .count(),
            size4(layers),
            percent_of(layers - used, layers),
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(active).count(),
            size4(csum),
            percent_of(containers.iter().filter(|c| !active(c)).map(rw).sum(), csum),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(vused).count(),
            size4(vsum),
            percent_of(volumes.iter().filter(|v| !vused(v)).map(vsize).sum(), vsum),
        ),
        row(
            "Build Cache",
            cache.len(),
            cache.iter().filter(|c| c["InUse"] == json!(true)).count(),
            size4(cache.iter().filter(not_shared).map(csize).sum()),
            size4(
                cache
                    .iter()
                    .filter(not_shared)
                    .filter(|c| c["InUse"] != json!(true))
                    .map(csize)
                    .sum(),
            ),
        ),
    ]
}

pub async fn system_df(inv: &Invocation<'_>) -> CliResult {
    let args: DfArgs = parse(inv, "system df [OPTIONS]")?;
    let client = inv.client().await?;
    let df: Value = client.get_json("/system/df", &[]).await?;
    if args.verbose && args.format.is_none() {
        print_verbose(&df)?;
        return Ok(());
    }
    let format = args.format.unwrap_or_else(|| {
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into()
    });
    let headers = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    print!("{}", render(&format, &df_rows(&df), &headers)?);
    Ok(())
}

/// `system df -v`: a table per kind.
fn print_verbose(df: &Value) -> CliResult {
    let row = |fields: Value| Row {
        fields,
        labels: BTreeMap::new(),
    };
    let images: Vec<Row> = list(df, "Images")
        .iter()
        .map(|i| {
            let tag = i["RepoTags"][0].as_str().unwrap_or("<none>:<none>");
            let (repo, tag) = tag.rsplit_once(':').unwrap_or((tag, "<none>"));
            let size = i["Size"].as_f64().unwrap_or(0.0);
            let shared = i["SharedSize"].as_f64().unwrap_or(0.0);
            row(json!({
                "Repository": repo, "Tag": tag, "ID": short_id(i["Id"].as_str().unwrap_or("")),
                "CreatedSince": super::format::ago(i["Created"].as_i64().unwrap_or(0)),
                "Size": human_size(size), "SharedSize": human_size(shared),
                "UniqueSize": human_size(size - shared),
                "Containers": i["Containers"].as_i64().unwrap_or(0).to_string(),
            }))
        })
        .collect();
    println!("Images space usage:\n");
    print!(
        "{}",
        render(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
            &images,
            &[
                ("Repository", "REPOSITORY"),
                ("Tag", "TAG"),
                ("ID", "IMAGE ID"),
                ("CreatedSince", "CREATED"),
                ("Size", "SIZE"),
                ("SharedSize", "SHARED SIZE"),
                ("UniqueSize", "UNIQUE SIZE"),
                ("Containers", "CONTAINERS")
            ],
        )?
    );
    let containers: Vec<Row> = list(df, "Containers")
        .iter()
        .map(|c| {
            row(json!({
                "ID": short_id(c["Id"].as_str().unwrap_or("")),
                "Image": c["Image"], "Command": format!("\"{}\"", super::format::ellipsis(c["Command"].as_str().unwrap_or(""), 19)),
                "LocalVolumes": c["Mounts"].as_array().map_or(0, |m| m.iter().filter(|m| m["Type"] == "volume").count()).to_string(),
                "Size": human_size(c["SizeRw"].as_f64().unwrap_or(0.0)),
                "RunningFor": super::format::ago(c["Created"].as_i64().unwrap_or(0)),
                "Status": c["Status"], "Names": c["Names"][0].as_str().unwrap_or("").trim_start_matches('/'),
            }))
        })
        .collect();
    println!("\nContainers space usage:\n");
    print!(
        "{}",
        render(
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
            &containers,
            &[
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("LocalVolumes", "LOCAL VOLUMES"),
                ("Size", "SIZE"),
                ("RunningFor", "CREATED"),
                ("Status", "STATUS"),
                ("Names", "NAMES")
            ],
        )?
    );
    let volumes: Vec<Row> = list(df, "Volumes")
        .iter()
        .map(|v| {
            row(json!({
                "Name": v["Name"], "Links": v["UsageData"]["RefCount"].as_i64().unwrap_or(0).to_string(),
                "Size": size4(v["UsageData"]["Size"].as_f64().unwrap_or(0.0)),
            }))
        })
        .collect();
    println!("\nLocal Volumes space usage:\n");
    print!(
        "{}",
        render(
            "table {{.Name}}\t{{.Links}}\t{{.Size}}",
            &volumes,
            &[
                ("Name", "VOLUME NAME"),
                ("Links", "LINKS"),
                ("Size", "SIZE")
            ],
        )?
    );
    let cache = list(df, "BuildCache");
    let total: f64 = cache
        .iter()
        .map(|c| c["Size"].as_f64().unwrap_or(0.0))
        .sum();
    println!("\nBuild cache usage: {}\n", size4(total));
    let cache: Vec<Row> = cache
        .iter()
        .map(|c| {
            row(json!({
                "ID": c["ID"].as_str().unwrap_or("").chars().take(12).collect::<String>(),
                "CacheType": c["Type"], "Size": size4(c["Size"].as_f64().unwrap_or(0.0)),
                "Shared": if c["Shared"] == json!(true) { "true" } else { "false" },
                "UsageCount": c["UsageCount"].as_i64().unwrap_or(0).to_string(),
            }))
        })
        .collect();
    print!(
        "{}",
        render(
            "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.UsageCount}}\t{{.Shared}}",
            &cache,
            &[
                ("ID", "CACHE ID"),
                ("CacheType", "CACHE TYPE"),
                ("Size", "SIZE"),
                ("UsageCount", "USAGE"),
                ("Shared", "SHARED")
            ],
        )?
    );
    Ok(())
}
