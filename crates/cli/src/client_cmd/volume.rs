//! `berth volume ls|create|inspect|rm|prune`: docker's flags, output and exit codes, through
//! the volume endpoints of the daemon.

use clap::Parser;
use serde_json::{Value, json};

use super::format::{Row, human_size, render};
use super::network::{
    group_help, inspect_objects, joined, kv_map, labels_of, list_format, names_in, natural_cmp,
    str_of, unknown_sub,
};
use super::{CliError, CliResult, Invocation, filters, parse};

/// `volume <sub> …`: the subcommand's function.
pub async fn volume(inv: &Invocation<'_>) -> CliResult {
    let Some((sub, rest)) = inv.args.split_first() else {
        return Err(group_help("volume", "Manage volumes", VOLUME_COMMANDS));
    };
    let name = format!("volume {sub}");
    let inv = Invocation {
        name: &name,
        args: rest,
        host: inv.host.clone(),
    };
    match sub.as_str() {
        "ls" | "list" => ls(&inv).await,
        "create" => create(&inv).await,
        "inspect" => inspect(&inv).await,
        "rm" | "remove" => rm(&inv).await,
        "prune" => prune(&inv).await,
        other => Err(unknown_sub("volume", "berth volume COMMAND", other)),
    }
}
/// Docker also lists `update` (cluster volumes only); berth has no cluster, so no `update`.
/// `update` (cluster volumes only) is listed as docker lists it; berth has no cluster.
const VOLUME_COMMANDS: &[(&str, &str)] = &[
    ("create", "Create a volume"),
    (
        "inspect",
        "Display detailed information on one or more volumes",
    ),
    ("ls", "List volumes"),
    ("prune", "Remove unused local volumes"),
    ("rm", "Remove one or more volumes"),
];

#[derive(Parser)]
#[command(name = "ls", about = "List volumes")]
struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter", value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
}

const HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];

const DEFAULT_LS: &str = "table {{.Driver}}\\t{{.Name}}";

async fn ls(inv: &Invocation<'_>) -> CliResult {
    let args: LsArgs = parse(inv, "volume ls [OPTIONS]")?;
    let client = inv.client().await?;
    let answer = client.volumes(&filters(&args.filter)?).await?;
    let mut list: Vec<Value> = answer["Volumes"].as_array().cloned().unwrap_or_default();
    list.sort_by(|a, b| natural_cmp(str_of(a, "Name"), str_of(b, "Name")));
    let format = list_format(args.format.as_deref(), args.quiet, "{{.Name}}", DEFAULT_LS);
    let rows: Vec<Row> = list.iter().map(row).collect();
    print!("{}", render(&format, &rows, HEADERS)?);
    Ok(())
}

fn row(v: &Value) -> Row {
    let labels = labels_of(v);
    let usage = |key: &str, size: bool| match v["UsageData"][key].as_i64() {
        Some(n) if n >= 0 && size => human_size(n as f64),
        Some(n) if n >= 0 => n.to_string(),
        _ => "N/A".to_owned(),
    };
    Row {
        fields: json!({
            "Name": str_of(v, "Name"),
            "Driver": str_of(v, "Driver"),
            "Scope": str_of(v, "Scope"),
            "Mountpoint": str_of(v, "Mountpoint"),
            "Labels": joined(&labels),
            "Links": usage("RefCount", false),
            "Size": usage("Size", true),
            // Cluster volumes only; docker shows N/A for local ones.
            "Availability": "N/A",
            "Group": "N/A",
            "Status": "N/A",
        }),
        labels,
    }
}

#[derive(Parser)]
#[command(name = "create", about = "Create a volume")]
struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", hide = true)]
    name_flag: Option<String>,
    /// Set driver specific options
    #[arg(short, long)]
    opt: Vec<String>,
    name: Option<String>,
}

async fn create(inv: &Invocation<'_>) -> CliResult {
    let args: CreateArgs = parse(inv, "volume create [OPTIONS] [VOLUME]")?;
    let name = match (args.name, args.name_flag) {
        (Some(_), Some(_)) => {
            return Err(CliError::Message(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
                    .to_owned(),
            ));
        }
        (a, b) => a.or(b),
    };
    let mut body = json!({"Driver": args.driver});
    if !args.opt.is_empty() {
        body["DriverOpts"] = json!(kv_map(&args.opt));
    }
    if !args.label.is_empty() {
        body["Labels"] = json!(kv_map(&args.label));
    }
    if let Some(n) = name {
        body["Name"] = json!(n);
    }
    let client = inv.client().await?;
    let volume = client.volume_create(&body).await?;
    println!("{}", str_of(&volume, "Name"));
    Ok(())
}

#[derive(Parser)]
#[command(
    name = "inspect",
    about = "Display detailed information on one or more volumes"
)]
struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

async fn inspect(inv: &Invocation<'_>) -> CliResult {
    let args: InspectArgs = parse(inv, "volume inspect [OPTIONS] VOLUME [VOLUME...]")?;
    let client = inv.client().await?;
    inspect_objects(&client, "volumes", &args.names, args.format.as_deref()).await
}

#[derive(Parser)]
#[command(name = "rm", about = "Remove one or more volumes")]
struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

async fn rm(inv: &Invocation<'_>) -> CliResult {
    let args: RmArgs = parse(inv, "volume rm [OPTIONS] VOLUME [VOLUME...]")?;
    let client = inv.client().await?;
    let mut failed = false;
    for name in &args.names {
        match client.volume_remove(name, args.force).await {
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
#[command(name = "prune", about = "Remove unused local volumes")]
struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

async fn prune(inv: &Invocation<'_>) -> CliResult {
    let args: PruneArgs = parse(inv, "volume prune [OPTIONS]")?;
    let mut filters = filters(&args.filter)?;
    let client = inv.client().await?;
    let all_warning =
        "WARNING! This will remove all local volumes not used by at least one container.";
    // Before API 1.42 the daemon prunes named volumes too, and docker says so.
    let warning = if !api_at_least(client.api_version(), 42) {
        all_warning
    } else if args.all {
        filters.add("all".to_owned(), "true".to_owned());
        all_warning
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !args.force && !super::confirm(warning)? {
        return Ok(());
    }
    // Docker checks the version only after the prompt.
    if args.all && !api_at_least(client.api_version(), 42) {
        return Err(CliError::Message(format!(
            "\"--all\" requires API version 1.42, but the Docker daemon API version is {}",
            client.api_version()
        )));
    }
    let report = client.prune("volumes", &filters).await?;
    let deleted = names_in(&report["VolumesDeleted"]);
    let mut space = 0.0;
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for d in deleted {
            println!("{d}");
        }
        println!();
        space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    }
    println!("Total reclaimed space: {}", human_size(space));
    Ok(())
}

/// Whether a negotiated `1.N` API version is at least `1.minor`.
fn api_at_least(version: &str, minor: u32) -> bool {
    match version.split_once('.') {
        Some(("1", m)) => m.parse::<u32>().is_ok_and(|m| m >= minor),
        Some((major, _)) => major.parse::<u32>().is_ok_and(|x| x > 1),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_versions_compare_as_numbers() {
        assert!(super::api_at_least("1.42", 42));
        assert!(super::api_at_least("1.100", 42));
        assert!(!super::api_at_least("1.41", 42));
        assert!(!super::api_at_least("1.4", 42));
        assert!(!super::api_at_least("garbage", 42));
        assert!(super::api_at_least("2.0", 42));
    }
}
