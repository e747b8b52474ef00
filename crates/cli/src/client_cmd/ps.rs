//! `berth ps` (`container ls`): docker's columns, truncation and `--format` fields.

use std::collections::BTreeMap;

use berth_client::types::{ContainerSummary, Port};
use clap::Parser;
use serde_json::json;

use super::format::{Row, ago, ellipsis, go_quote, go_time, human_size, render, short_id};
use super::{CliResult, Invocation, filters, parse};

#[derive(Parser)]
#[command(name = "ps", about = "List containers")]
struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Label", "LABEL"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub async fn ps(inv: &Invocation<'_>) -> CliResult {
    let args: PsArgs = parse(inv, "ps [OPTIONS]")?;
    let filters = filters(&args.filter)?;
    let client = inv.client().await?;
    let limit = if args.latest {
        Some(1)
    } else {
        (args.last > 0).then_some(args.last)
    };
    // Docker asks for sizes when running the template touches `.Size`: `{{json .}}` does,
    // the bare `json` format does not (it becomes `{{json .}}` only after the check).
    let want_size = args.size
        || args
            .format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f.contains("json ."));
    let list = client
        .containers(args.all, limit, want_size, &filters)
        .await?;
    let format = match (&args.format, args.quiet) {
        (Some(f), _) if !f.is_empty() => f.clone(),
        (_, true) => "{{.ID}}".to_owned(),
        _ if args.size => "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}\\t{{.Size}}".to_owned(),
        _ => "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}".to_owned(),
    };
    let rows: Vec<Row> = list.iter().map(|c| row(c, !args.no_trunc)).collect();
    print!("{}", render(&format, &rows, HEADERS)?);
    Ok(())
}

/// The formatting context of one container: every field as docker's ps shows it.
fn row(c: &ContainerSummary, trunc: bool) -> Row {
    let labels = c.labels.clone().unwrap_or_default();
    let fields = json!({
        "ID": if trunc { short_id(&c.id) } else { c.id.clone() },
        "Image": image(c, trunc),
        "Command": go_quote(&if trunc { ellipsis(&c.command, 20) } else { c.command.clone() }),
        "CreatedAt": go_time(c.created),
        "RunningFor": ago(c.created),
        "Ports": ports(&c.ports),
        "State": c.state,
        "Status": c.status,
        "Size": size(c),
        "Names": names(&c.names, trunc),
        "Labels": join_labels(&labels),
        "Mounts": mounts(c, trunc),
        "Networks": networks(c),
        "Platform": null,
        "LocalVolumes": c.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
    });
    Row { fields, labels }
}

fn image(c: &ContainerSummary, trunc: bool) -> String {
    if c.image.is_empty() {
        return "<no image>".to_owned();
    }
    if trunc {
        let id = short_id(&c.image_id);
        if !id.is_empty() && id == short_id(&c.image) {
            return id;
        }
        // A digest pinned at run time is not shown.
        if let Some((name, _)) = c.image.split_once('@') {
            return name.to_owned();
        }
    }
    c.image.clone()
}

fn names(names: &[String], trunc: bool) -> String {
    let stripped: Vec<&str> = names.iter().map(|n| n.trim_start_matches('/')).collect();
    if trunc && let Some(own) = stripped.iter().find(|n| !n.contains('/')) {
        return (*own).to_owned();
    }
    stripped.join(",")
}

fn size(c: &ContainerSummary) -> String {
    let rw = human_size(c.size_rw.unwrap_or(0) as f64);
    match c.size_root_fs {
        Some(v) if v > 0 => format!("{rw} (virtual {})", human_size(v as f64)),
        _ => rw,
    }
}

fn join_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn mounts(c: &ContainerSummary, trunc: bool) -> String {
    c.mounts
        .iter()
        .map(|m| {
            let name = if m.kind == "volume" {
                m.name.clone()
            } else {
                m.source.clone()
            };
            if trunc { ellipsis(&name, 15) } else { name }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn networks(c: &ContainerSummary) -> String {
    c.network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// Docker's `DisplayablePorts`: published ports as `ip:public->private/proto`, exposed ones
/// as `private/proto`; consecutive ports of one mapping collapse into ranges.
pub fn ports(ports: &[Port]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort_by(|a, b| {
        (
            a.kind.as_str(),
            a.ip.as_str(),
            a.public_port,
            a.private_port,
        )
            .cmp(&(
                b.kind.as_str(),
                b.ip.as_str(),
                b.public_port,
                b.private_port,
            ))
    });
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let first = &sorted[i];
        let mut j = i;
        // Extend a range while both sides continue by one.
        while let Some(next) = sorted.get(j + 1) {
            let cur = &sorted[j];
            let continues = next.kind == cur.kind
                && next.ip == cur.ip
                && next.private_port == cur.private_port + 1
                && (cur.public_port == 0) == (next.public_port == 0)
                && (cur.public_port == 0 || next.public_port == cur.public_port + 1);
            if !continues {
                break;
            }
            j += 1;
        }
        let last = &sorted[j];
        let range = |a: u16, b: u16| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        };
        let private = range(first.private_port, last.private_port);
        if first.public_port == 0 {
            out.push(format!("{private}/{}", first.kind));
        } else {
            let ip = if first.ip.contains(':') {
                format!("[{}]", first.ip)
            } else {
                first.ip.clone()
            };
            let ip = if ip.is_empty() {
                String::new()
            } else {
                format!("{ip}:")
            };
            out.push(format!(
                "{ip}{}->{private}/{}",
                range(first.public_port, last.public_port),
                first.kind
            ));
        }
        i = j + 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: &str, private: u16, public: u16) -> Port {
        Port {
            ip: ip.to_owned(),
            private_port: private,
            public_port: public,
            kind: "tcp".to_owned(),
        }
    }

    #[test]
    fn ports_display_as_docker() {
        assert_eq!(ports(&[]), "");
        assert_eq!(ports(&[port("", 80, 0)]), "80/tcp");
        assert_eq!(
            ports(&[port("127.0.0.1", 80, 18080)]),
            "127.0.0.1:18080->80/tcp"
        );
        assert_eq!(
            ports(&[port("0.0.0.0", 80, 8080), port("0.0.0.0", 81, 8081)]),
            "0.0.0.0:8080-8081->80-81/tcp"
        );
        assert_eq!(ports(&[port("::", 80, 8080)]), "[::]:8080->80/tcp");
    }

    #[test]
    fn names_drop_links_when_truncating() {
        let n = vec!["/web".to_owned(), "/other/alias".to_owned()];
        assert_eq!(names(&n, true), "web");
        assert_eq!(names(&n, false), "web,other/alias");
    }

    #[test]
    fn rows_carry_docker_fields() {
        let c = ContainerSummary {
            id: "0123456789abcdef0123".into(),
            names: vec!["/x".into()],
            image: "busybox".into(),
            image_id: "sha256:feed".into(),
            command: "sleep 1000000000000000000".into(),
            created: 0,
            state: "running".into(),
            status: "Up 3 seconds".into(),
            ..Default::default()
        };
        let r = row(&c, true);
        assert_eq!(r.fields["ID"], "0123456789ab");
        assert_eq!(r.fields["Command"], "\"sleep 1000000000000…\"");
        assert_eq!(r.fields["Size"], "0B");
        assert_eq!(r.fields["Image"], "busybox");
        let full = row(&c, false);
        assert_eq!(full.fields["ID"], "0123456789abcdef0123");
    }
}
