//! `berth network ls|create|inspect|rm|prune|connect|disconnect`: docker's flags, output and
//! exit codes, through the network endpoints of the daemon.

use std::collections::BTreeMap;
use std::net::IpAddr;

use clap::Parser;
use serde_json::{Value, json};

use super::format::{Row, render, short_id};
use super::template::{Data, Template};
use super::{CliError, CliResult, Invocation, filters, parse};

/// `network <sub> …`: the subcommand's function.
pub async fn network(inv: &Invocation<'_>) -> CliResult {
    let Some((sub, rest)) = inv.args.split_first() else {
        return Err(group_help("network", "Manage networks", NETWORK_COMMANDS));
    };
    let name = format!("network {sub}");
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
        "connect" => connect(&inv).await,
        "disconnect" => disconnect(&inv).await,
        other => Err(unknown_sub("network", "berth network", other)),
    }
}

const NETWORK_COMMANDS: &[(&str, &str)] = &[
    ("connect", "Connect a container to a network"),
    ("create", "Create a network"),
    ("disconnect", "Disconnect a container from a network"),
    (
        "inspect",
        "Display detailed information on one or more networks",
    ),
    ("ls", "List networks"),
    ("prune", "Remove all unused networks"),
    ("rm", "Remove one or more networks"),
];

/// `berth network` alone: docker prints the group's help on stderr and exits 0.
pub(super) fn group_help(group: &str, about: &str, commands: &[(&str, &str)]) -> CliError {
    let mut text = format!("Usage:  berth {group} COMMAND\n\n{about}\n\nCommands:\n");
    for (name, what) in commands {
        text.push_str(&format!("  {name:<11} {what}\n"));
    }
    text.push_str(&format!(
        "\nRun 'berth {group} COMMAND --help' for more information on a command."
    ));
    CliError::Usage {
        message: text,
        code: 0,
    }
}

/// An unknown subcommand: docker's message (its usage line differs per group), exit 1.
pub(super) fn unknown_sub(group: &str, usage: &str, sub: &str) -> CliError {
    CliError::Usage {
        message: format!(
            "berth: unknown command: berth {group} {sub}\n\nUsage:  {usage}\n\nRun 'berth {group} --help' for more information"
        ),
        code: 1,
    }
}

#[derive(Parser)]
#[command(name = "ls", about = "List networks")]
struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long = "filter", value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    quiet: bool,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

async fn ls(inv: &Invocation<'_>) -> CliResult {
    let args: LsArgs = parse(inv, "network ls [OPTIONS]")?;
    let client = inv.client().await?;
    let mut list = client.networks(&filters(&args.filter)?).await?;
    list.sort_by(|a, b| natural_cmp(str_of(a, "Name"), str_of(b, "Name")));
    let format = list_format(args.format.as_deref(), args.quiet, "{{.ID}}", DEFAULT_LS);
    let rows: Vec<Row> = list.iter().map(|n| row(n, !args.no_trunc)).collect();
    print!("{}", render(&format, &rows, HEADERS)?);
    Ok(())
}

const DEFAULT_LS: &str = "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}";

/// The format docker uses: a custom one wins over `-q`; `table` alone is the default table.
pub(super) fn list_format(
    given: Option<&str>,
    quiet: bool,
    quiet_fmt: &str,
    table: &str,
) -> String {
    match given {
        Some("table") | None if !quiet => table.to_owned(),
        Some(f) if !f.is_empty() && f != "table" => f.to_owned(),
        _ if quiet => quiet_fmt.to_owned(),
        _ => table.to_owned(),
    }
}

pub(super) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// A `Labels` object as docker's formatter joins it: `k=v,k2=v2`.
pub(super) fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

pub(super) fn joined(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn row(n: &Value, trunc: bool) -> Row {
    let id = str_of(n, "Id");
    let labels = labels_of(n);
    let bool_text = |key: &str| n[key].as_bool().unwrap_or(false).to_string();
    Row {
        fields: json!({
            "ID": if trunc { short_id(id) } else { id.to_owned() },
            "Name": str_of(n, "Name"),
            "Driver": str_of(n, "Driver"),
            "Scope": str_of(n, "Scope"),
            "IPv4": bool_text("EnableIPv4"),
            "IPv6": bool_text("EnableIPv6"),
            "Internal": bool_text("Internal"),
            "Labels": joined(&labels),
            "CreatedAt": go_time_string(str_of(n, "Created")),
        }),
        labels,
    }
}

/// An RFC 3339 time as Go's `time.Time.String` prints it (`2026-12-03 19:11:31.13 +0000 UTC`).
fn go_time_string(rfc3339: &str) -> String {
    let spaced = rfc3339.replacen('T', " ", 1);
    if let Some(base) = spaced.strip_suffix('Z') {
        return format!("{base} +0000 UTC");
    }
    match spaced
        .len()
        .checked_sub(6)
        .filter(|&i| spaced.is_char_boundary(i))
    {
        Some(i) if matches!(spaced.as_bytes()[i], b'+' | b'-') => {
            let zone = spaced[i..].replace(':', "");
            format!("{} {zone} {zone}", &spaced[..i])
        }
        _ => rfc3339.to_owned(),
    }
}

/// Go's `sortorder.NaturalLess`: runs of digits compare as numbers.
pub(super) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then(na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|c| **c == b'0').count();
    &digits[zeros..]
}

#[derive(Parser)]
#[command(name = "create", about = "Create a network")]
struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// The network from which to copy the configuration
    #[arg(long = "config-from")]
    config_from: Option<String>,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    config_only: bool,
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long)]
    ingress: bool,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    ipam_opt: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    ipv6: bool,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long)]
    opt: Vec<String>,
    /// Control the network's scope
    #[arg(long)]
    scope: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Vec<String>,
    name: String,
}

async fn create(inv: &Invocation<'_>) -> CliResult {
    let args: CreateArgs = parse(inv, "network create [OPTIONS] NETWORK")?;
    let ipam = ipam_configs(
        &args.subnet,
        &args.ip_range,
        &args.gateway,
        &args.aux_address,
    )
    .map_err(CliError::Message)?;
    let mut body = json!({
        "Driver": args.driver,
        "Scope": args.scope.unwrap_or_default(),
        "IPAM": {"Driver": args.ipam_driver, "Options": kv_map(&args.ipam_opt), "Config": ipam},
        "Internal": args.internal,
        "Attachable": args.attachable,
        "Ingress": args.ingress,
        "ConfigOnly": args.config_only,
        "ConfigFrom": args.config_from.map(|n| json!({"Network": n})),
        "Options": kv_map(&args.opt),
        "Labels": kv_map(&args.label),
        "Name": args.name,
        "CheckDuplicate": true,
    });
    if args.ipv6 {
        body["EnableIPv6"] = json!(true);
    }
    let client = inv.client().await?;
    let answer = client.network_create(&body).await?;
    println!("{}", str_of(&answer, "Id"));
    Ok(())
}

/// `k=v` flags as a map (`k` alone maps to "", as docker's `ConvertKVStringsToMap`).
pub(super) fn kv_map(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

/// A parsed `addr/len`.
#[derive(Clone, Copy)]
struct Cidr {
    addr: IpAddr,
    len: u8,
}

fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some(Cidr { addr, len })
}

/// The address as a 128-bit number and its width, so both families mask alike.
fn bits(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn contains(net: Cidr, addr: IpAddr) -> bool {
    let ((n, width), (a, a_width)) = (bits(net.addr), bits(addr));
    if width != a_width {
        return false;
    }
    let host_bits = width - u32::from(net.len);
    let mask = if host_bits >= 128 {
        0
    } else {
        (!0u128 << host_bits)
            & (if width == 128 {
                !0
            } else {
                (1u128 << width) - 1
            })
    };
    n & mask == a & mask
}

/// Whether `data` (an address or a CIDR) lies within `subnet`, as docker's `subnetMatches`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let net = parse_cidr(subnet).ok_or_else(|| format!("invalid subnet {subnet}"))?;
    let addr = if data.contains('/') {
        parse_cidr(data)
            .ok_or_else(|| format!("invalid CIDR address: {data}"))?
            .addr
    } else {
        data.parse()
            .map_err(|_| format!("invalid IP address: {data}"))?
    };
    Ok(contains(net, addr))
}

/// One IPAM config as the docker CLI sends it (its field order is what inspect shows later).
#[derive(Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    subnet: String,
    #[serde(rename = "IPRange", skip_serializing_if = "Option::is_none")]
    ip_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    auxiliary_addresses: BTreeMap<String, String>,
}

/// Docker's consolidation of `--subnet`, `--ip-range`, `--gateway` and `--aux-address`
/// into one IPAM config per subnet.
fn ipam_configs(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[String],
) -> Result<Vec<IpamConfig>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".to_owned());
    }
    let mut configs: Vec<IpamConfig> = Vec::new();
    for s in subnets {
        for c in &configs {
            if subnet_matches(s, &c.subnet)? || subnet_matches(&c.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".to_owned());
            }
        }
        configs.push(IpamConfig {
            subnet: s.clone(),
            ip_range: None,
            gateway: None,
            auxiliary_addresses: BTreeMap::new(),
        });
    }
    for r in ranges {
        let c = holder(&mut configs, r, "range")?;
        if let Some(old) = &c.ip_range {
            return Err(format!(
                "cannot configure multiple ranges ({r}, {old}) on the same subnet ({})",
                c.subnet
            ));
        }
        c.ip_range = Some(r.clone());
    }
    for g in gateways {
        let c = holder(&mut configs, g, "gateway")?;
        if let Some(old) = &c.gateway {
            return Err(format!(
                "cannot configure multiple gateways ({g}, {old}) for the same subnet ({})",
                c.subnet
            ));
        }
        c.gateway = Some(g.clone());
    }
    for a in aux {
        let (key, ip) = a
            .split_once('=')
            .ok_or_else(|| format!("invalid aux-address {a}"))?;
        let c = holder(&mut configs, ip, "aux-address")?;
        c.auxiliary_addresses.insert(key.to_owned(), ip.to_owned());
    }
    Ok(configs)
}

/// The config whose subnet holds `value` (subnets never overlap, so at most one does).
fn holder<'a>(
    configs: &'a mut [IpamConfig],
    value: &str,
    what: &str,
) -> Result<&'a mut IpamConfig, String> {
    for c in configs.iter_mut() {
        if subnet_matches(&c.subnet, value)? {
            return Ok(c);
        }
    }
    Err(format!("no matching subnet for {what} {value}"))
}

#[derive(Parser)]
#[command(
    name = "inspect",
    about = "Display detailed information on one or more networks"
)]
struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short, long)]
    verbose: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

async fn inspect(inv: &Invocation<'_>) -> CliResult {
    let args: InspectArgs = parse(inv, "network inspect [OPTIONS] NETWORK [NETWORK...]")?;
    let client = inv.client().await?;
    inspect_objects(&client, "networks", &args.names, args.format.as_deref()).await
}

/// Prints the objects at `/{kind}/{name}` as docker's `inspect` does (the daemon's field
/// order, or a template per object); errors for the missing ones, exit 1 then.
pub(super) async fn inspect_objects(
    client: &berth_client::Client,
    kind: &str,
    names: &[String],
    format: Option<&str>,
) -> CliResult {
    let template = format
        .filter(|f| !f.is_empty())
        .map(|f| Template::parse(&super::format::prepare(f).1))
        .transpose()?;
    let mut found = Vec::new();
    let mut failed = false;
    for name in names {
        match client.get_raw(&format!("/{kind}/{name}")).await {
            Ok(raw) => {
                let value: Value =
                    serde_json::from_slice(&raw).map_err(berth_client::ClientError::from)?;
                found.push((raw, value));
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
                println!(
                    "{}",
                    t.render(&Data {
                        value: v,
                        labels: None
                    })?
                );
            }
        }
        None => {
            let raws: Vec<Vec<u8>> = found.into_iter().map(|(raw, _)| raw).collect();
            println!("{}", super::container::go_indent(&raws));
        }
    }
    if failed {
        Err(CliError::Exit(1))
    } else {
        Ok(())
    }
}

#[derive(Parser)]
#[command(name = "rm", about = "Remove one or more networks")]
struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

async fn rm(inv: &Invocation<'_>) -> CliResult {
    let args: RmArgs = parse(inv, "network rm NETWORK [NETWORK...]")?;
    let client = inv.client().await?;
    let mut failed = false;
    for name in &args.names {
        match client.network_remove(name).await {
            Ok(()) => println!("{name}"),
            Err(e) if args.force && e.is_not_found() => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        // Docker's StatusError without a message prints this line.
        Err(CliError::Message("exit status 1".to_owned()))
    } else {
        Ok(())
    }
}

#[derive(Parser)]
#[command(name = "prune", about = "Remove all unused networks")]
struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long, value_parser = super::filter_arg)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

async fn prune(inv: &Invocation<'_>) -> CliResult {
    let args: PruneArgs = parse(inv, "network prune [OPTIONS]")?;
    let warning =
        "WARNING! This will remove all custom networks not used by at least one container.";
    if !args.force && !super::confirm(warning)? {
        return Ok(());
    }
    let client = inv.client().await?;
    let report = client.prune("networks", &filters(&args.filter)?).await?;
    let deleted = names_in(&report["NetworksDeleted"]);
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    Ok(())
}

pub(super) fn names_in(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[derive(Parser)]
#[command(name = "connect", about = "Connect a container to a network")]
struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    /// Driver options for the network
    #[arg(long = "driver-opt")]
    driver_opt: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    ip6: Option<String>,
    /// Add link to another container
    #[arg(long)]
    link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip")]
    link_local_ip: Vec<String>,
    network: String,
    container: String,
}

async fn connect(inv: &Invocation<'_>) -> CliResult {
    let args: ConnectArgs = parse(inv, "network connect [OPTIONS] NETWORK CONTAINER")?;
    let mut ipam = serde_json::Map::new();
    if let Some(ip) = &args.ip {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &args.ip6 {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    if !args.link_local_ip.is_empty() {
        ipam.insert("LinkLocalIPs".into(), json!(args.link_local_ip));
    }
    let none_if_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let body = json!({
        "Container": args.container,
        "EndpointConfig": {
            "IPAMConfig": ipam,
            "Links": none_if_empty(&args.link),
            "Aliases": none_if_empty(&args.alias),
            "MacAddress": "",
            "DriverOpts": kv_map(&args.driver_opt),
            "GwPriority": 0,
            "NetworkID": "",
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": null,
        },
    });
    let client = inv.client().await?;
    client
        .network_action(&args.network, "connect", &body)
        .await?;
    Ok(())
}

#[derive(Parser)]
#[command(name = "disconnect", about = "Disconnect a container from a network")]
struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

async fn disconnect(inv: &Invocation<'_>) -> CliResult {
    let args: DisconnectArgs = parse(inv, "network disconnect [OPTIONS] NETWORK CONTAINER")?;
    let body = json!({"Container": args.container, "Force": args.force});
    let client = inv.client().await?;
    client
        .network_action(&args.network, "disconnect", &body)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_go_does() {
        assert_eq!(
            go_time_string("2026-12-03T19:11:31.134222034Z"),
            "2026-12-03 19:11:31.134222034 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2026-12-03T19:11:31+01:00"),
            "2026-12-03 19:11:31 +0100 +0100"
        );
        for odd in ["", "Z", "x", "ééééééé", "+01:00"] {
            let _ = go_time_string(odd);
        }
    }

    #[test]
    fn natural_order_compares_numbers() {
        let mut v = vec!["n10", "n2", "bridge", "n02x", "host", "a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "bridge", "host", "n2", "n02x", "n10"]);
    }

    #[test]
    fn ipam_flags_are_consolidated_per_subnet() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let got = ipam_configs(
            &s(&["10.1.0.0/16", "10.2.0.0/16"]),
            &s(&["10.2.1.0/24"]),
            &s(&["10.1.0.1"]),
            &[],
        )
        .expect("consolidated");
        assert_eq!(
            serde_json::to_string(&got).expect("json"),
            r#"[{"Subnet":"10.1.0.0/16","Gateway":"10.1.0.1"},{"Subnet":"10.2.0.0/16","IPRange":"10.2.1.0/24"}]"#
        );
        assert!(ipam_configs(&[], &[], &s(&["10.0.0.1"]), &[]).is_err());
        assert!(ipam_configs(&s(&["10.0.0.0/8", "10.1.0.0/16"]), &[], &[], &[]).is_err());
        assert!(ipam_configs(&s(&["10.0.0.0/8"]), &[], &s(&["11.0.0.1"]), &[]).is_err());
        // Hostile or malformed input is an error, never a panic.
        for bad in ["10.0.0.0/99", "x/8", "10.0.0.0", "/", "::/129"] {
            assert!(ipam_configs(&s(&[bad]), &[], &s(&["10.0.0.1"]), &[]).is_err());
        }
        assert!(ipam_configs(&s(&["::/0"]), &[], &s(&["::1"]), &[]).is_ok());
        assert!(ipam_configs(&s(&["0.0.0.0/0"]), &[], &s(&["1.2.3.4"]), &[]).is_ok());
    }
}
