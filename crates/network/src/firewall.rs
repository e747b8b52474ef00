//! berth's nftables rules: masquerade, isolation between bridges, `--internal`, and published
//! ports, all in berth's own `ip` table (never anyone else's).
//!
//! Rules are written as nft JSON and applied by the `nft` binary in one transaction per change
//! (through the `nftables` crate), so a change is all-or-nothing. Every rule carries a comment
//! naming its owner (`net:<network>` or `ctr:<container>`); removing a network or a container's
//! ports deletes exactly the rules with that comment. [`Firewall::reconcile`] rebuilds the whole
//! table from the desired state in one transaction: the crash-recovery path, and the answer to
//! someone flushing the table (CVE-2025-54388 and CVE-2025-54410 were rules lost to a reload).
//!
//! Every method runs `nft` and waits for it (a few milliseconds): async callers use
//! `spawn_blocking`.
//!
//! The table:
//! - `prerouting` (nat): packets to a local address, except 127.0.0.0/8, jump to `publish` —
//!   loopback destinations arriving from outside must never be forwarded to a container.
//! - `output` (nat): locally generated packets to a local address (127.0.0.1 included) jump to
//!   `publish`.
//! - `publish`: one DNAT rule per published port.
//! - `postrouting` (nat): masquerade the subnet's outbound traffic, hairpin traffic, and
//!   traffic from 127.0.0.0/8 (DNATed from the host's loopback).
//! - `forward` (filter): per bridge, accept replies and DNATed traffic in, drop everything else
//!   entering the bridge (isolation from other bridges and outside hosts); internal networks
//!   drop all traffic in and out, ahead of every other rule.

use std::net::{IpAddr, Ipv4Addr};

use berth_errdefs::{Category, HasCategory};
use ipnet::Ipv4Net;
use nftables::helper::{self, NftablesError};
use serde_json::{Value, json};

use crate::ports::Proto;

/// A firewall failure.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// `nft` failed or could not be run.
    #[error("nftables: {0}")]
    Nft(String),
    /// `nft` printed something that is not the JSON it promises.
    #[error("nftables: unreadable listing: {0}")]
    Listing(serde_json::Error),
    /// A name cannot be put in a rule (too long, or characters nft rejects in a comment).
    #[error("invalid firewall key {0:?}")]
    InvalidKey(String),
    /// Only IPv4 host addresses can be published for now.
    #[error("publishing on IPv6 host address {0} is not supported")]
    Ipv6HostIp(IpAddr),
}

impl HasCategory for FirewallError {
    fn category(&self) -> Category {
        match self {
            FirewallError::InvalidKey(_) => Category::InvalidParameter,
            FirewallError::Ipv6HostIp(_) => Category::NotImplemented,
            _ => Category::System,
        }
    }
}

impl From<NftablesError> for FirewallError {
    fn from(e: NftablesError) -> Self {
        match e {
            NftablesError::NftFailed { stderr, hint, .. } => {
                FirewallError::Nft(format!("{hint}: {}", stderr.trim()))
            }
            other => FirewallError::Nft(other.to_string()),
        }
    }
}

/// A bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The network's name or id; the rules' key.
    pub key: String,
    /// The bridge interface.
    pub bridge: String,
    /// The network's subnet.
    pub subnet: Ipv4Net,
    /// `--internal`: no traffic leaves or enters the bridge from elsewhere.
    pub internal: bool,
}

/// One published port of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// The host address; every local address when `None`.
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container port.
    pub container_port: u16,
    /// The protocol.
    pub proto: Proto,
}

/// Everything the table should hold, for [`Firewall::reconcile`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Every bridge network.
    pub networks: Vec<NetworkRules>,
    /// Every container's published ports, by container key.
    pub ports: Vec<(String, Vec<PortRule>)>,
}

/// berth's nftables table.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
}

const FAMILY: &str = "ip";

impl Firewall {
    /// A handle on table `ip <table>` (berth uses `berth`; tests use their own names).
    pub fn new(table: &str) -> Result<Firewall, FirewallError> {
        check_key(table)?;
        Ok(Firewall {
            table: table.to_owned(),
        })
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table and its chains if missing; existing rules are kept.
    pub fn ensure(&self) -> Result<(), FirewallError> {
        self.apply(self.skeleton())
    }

    /// Adds a network's rules (replacing any it had).
    pub fn add_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        check_key(&net.key)?;
        let mut cmds = self.skeleton();
        cmds.extend(self.delete_owned(&network_comment(&net.key))?);
        cmds.extend(self.network_commands(net));
        self.apply(cmds)
    }

    /// Removes a network's rules. Removing an unknown network is not an error.
    pub fn remove_network(&self, key: &str) -> Result<(), FirewallError> {
        self.remove_owned(&network_comment(key))
    }

    /// Publishes a container's ports (replacing any it had).
    pub fn publish(&self, container: &str, ports: &[PortRule]) -> Result<(), FirewallError> {
        check_key(container)?;
        let comment = container_comment(container);
        let mut cmds = self.skeleton();
        cmds.extend(self.delete_owned(&comment)?);
        for port in ports {
            cmds.push(self.port_command(port, &comment)?);
        }
        self.apply(cmds)
    }

    /// Removes a container's published ports. Unknown containers are not an error.
    pub fn unpublish(&self, container: &str) -> Result<(), FirewallError> {
        self.remove_owned(&container_comment(container))
    }

    /// Rebuilds the whole table from `desired` in one transaction: whatever was there (flushed,
    /// half-applied, stale) is replaced.
    pub fn reconcile(&self, desired: &DesiredState) -> Result<(), FirewallError> {
        let mut cmds = vec![
            // `add` then `delete` makes the delete succeed whether or not the table existed.
            json!({"add": {"table": {"family": FAMILY, "name": self.table}}}),
            json!({"delete": {"table": {"family": FAMILY, "name": self.table}}}),
        ];
        cmds.extend(self.skeleton());
        for net in &desired.networks {
            check_key(&net.key)?;
            cmds.extend(self.network_commands(net));
        }
        for (container, ports) in &desired.ports {
            check_key(container)?;
            let comment = container_comment(container);
            for port in ports {
                cmds.push(self.port_command(port, &comment)?);
            }
        }
        self.apply(cmds)
    }

    /// Deletes the table and every rule in it. A missing table is not an error.
    pub fn delete(&self) -> Result<(), FirewallError> {
        self.apply(vec![
            json!({"add": {"table": {"family": FAMILY, "name": self.table}}}),
            json!({"delete": {"table": {"family": FAMILY, "name": self.table}}}),
        ])
    }

    /// True when the table exists.
    pub fn exists(&self) -> Result<bool, FirewallError> {
        Ok(self.list_tables()?.iter().any(|t| t == &self.table))
    }

    /// The comments of every rule in the table (one per rule), for inspection and tests.
    pub fn rule_owners(&self) -> Result<Vec<String>, FirewallError> {
        Ok(self
            .rules()?
            .into_iter()
            .filter_map(|r| r.comment)
            .collect())
    }

    fn list_tables(&self) -> Result<Vec<String>, FirewallError> {
        let out = helper::get_current_ruleset_raw(helper::DEFAULT_NFT, ["list", "tables", FAMILY])?;
        let listing: Value = serde_json::from_str(&out).map_err(FirewallError::Listing)?;
        Ok(objects(&listing)
            .filter_map(|o| o.get("table")?.get("name")?.as_str().map(str::to_owned))
            .collect())
    }

    fn rules(&self) -> Result<Vec<ListedRule>, FirewallError> {
        if !self.exists()? {
            return Ok(Vec::new());
        }
        let args = ["list", "table", FAMILY, self.table.as_str()];
        let out = helper::get_current_ruleset_raw(helper::DEFAULT_NFT, args)?;
        let listing: Value = serde_json::from_str(&out).map_err(FirewallError::Listing)?;
        Ok(objects(&listing)
            .filter_map(ListedRule::from_json)
            .collect())
    }

    fn delete_owned(&self, comment: &str) -> Result<Vec<Value>, FirewallError> {
        Ok(self
            .rules()?
            .into_iter()
            .filter(|r| r.comment.as_deref() == Some(comment))
            .map(|r| {
                json!({"delete": {"rule": {
                    "family": FAMILY, "table": self.table, "chain": r.chain, "handle": r.handle
                }}})
            })
            .collect())
    }

    fn remove_owned(&self, comment: &str) -> Result<(), FirewallError> {
        let cmds = self.delete_owned(comment)?;
        if cmds.is_empty() {
            return Ok(());
        }
        self.apply(cmds)
    }

    fn apply(&self, cmds: Vec<Value>) -> Result<(), FirewallError> {
        let payload = json!({"nftables": cmds}).to_string();
        helper::apply_ruleset_raw(&payload, helper::DEFAULT_NFT, helper::DEFAULT_ARGS)?;
        Ok(())
    }

    /// The table and chains; `add` of an existing one is a no-op in nft.
    fn skeleton(&self) -> Vec<Value> {
        let t = &self.table;
        let base = |name: &str, kind: &str, hook: &str, prio: i32| {
            json!({"add": {"chain": {
                "family": FAMILY, "table": t, "name": name,
                "type": kind, "hook": hook, "prio": prio, "policy": "accept"
            }}})
        };
        let local = json!({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}});
        let not_loopback = json!({"match": {"op": "!=", "left": payload("ip", "daddr"), "right": prefix(Ipv4Addr::new(127, 0, 0, 0), 8)}});
        let jump = json!({"jump": {"target": "publish"}});
        vec![
            json!({"add": {"table": {"family": FAMILY, "name": t}}}),
            json!({"add": {"chain": {"family": FAMILY, "table": t, "name": "publish"}}}),
            base("prerouting", "nat", "prerouting", -100),
            base("output", "nat", "output", -100),
            base("postrouting", "nat", "postrouting", 100),
            base("forward", "filter", "forward", 0),
            // The jumps are owned by the table itself: flush them and add them again, so
            // `ensure` never duplicates them.
            json!({"flush": {"chain": {"family": FAMILY, "table": t, "name": "prerouting"}}}),
            json!({"flush": {"chain": {"family": FAMILY, "table": t, "name": "output"}}}),
            self.rule(
                "prerouting",
                vec![local.clone(), not_loopback, jump.clone()],
                "table",
            ),
            self.rule("output", vec![local, jump], "table"),
        ]
    }

    fn rule(&self, chain: &str, expr: Vec<Value>, comment: &str) -> Value {
        json!({"add": {"rule": {
            "family": FAMILY, "table": self.table, "chain": chain, "expr": expr, "comment": comment
        }}})
    }

    fn network_commands(&self, net: &NetworkRules) -> Vec<Value> {
        let comment = network_comment(&net.key);
        let br = net.bridge.as_str();
        let subnet = prefix(net.subnet.network(), net.subnet.prefix_len());
        let saddr_subnet = matches(payload("ip", "saddr"), subnet.clone());
        let mut cmds = Vec::new();
        if net.internal {
            // Inserted at the head of `forward`: nothing another network accepts may get past.
            for (a, b) in [("iifname", "oifname"), ("oifname", "iifname")] {
                let expr = vec![
                    matches(meta(a), json!(br)),
                    not_matches(meta(b), json!(br)),
                    verdict("drop"),
                ];
                cmds.push(insert(self.rule("forward", expr, &comment)));
            }
        } else {
            let outbound = vec![
                saddr_subnet.clone(),
                not_matches(meta("oifname"), json!(br)),
                json!({"masquerade": null}),
            ];
            cmds.push(self.rule("postrouting", outbound, &comment));
            let replies = vec![
                matches(meta("oifname"), json!(br)),
                has_flags(ct("state"), json!(["established", "related"])),
                verdict("accept"),
            ];
            cmds.push(self.rule("forward", replies, &comment));
            let dnat = vec![
                matches(meta("oifname"), json!(br)),
                has_flags(ct("status"), json!("dnat")),
                verdict("accept"),
            ];
            cmds.push(self.rule("forward", dnat, &comment));
        }
        // A container reaching a published port of its own network through the host: without
        // masquerade the answer would come straight back over the bridge from the wrong address.
        let hairpin = vec![
            saddr_subnet,
            matches(meta("oifname"), json!(br)),
            has_flags(ct("status"), json!("dnat")),
            json!({"masquerade": null}),
        ];
        cmds.push(self.rule("postrouting", hairpin, &comment));
        // 127.0.0.1:<port> DNATed into the bridge keeps its loopback source; the container could
        // not answer it.
        let loopback = vec![
            matches(
                payload("ip", "saddr"),
                prefix(Ipv4Addr::new(127, 0, 0, 0), 8),
            ),
            matches(meta("oifname"), json!(br)),
            json!({"masquerade": null}),
        ];
        cmds.push(self.rule("postrouting", loopback, &comment));
        // Isolation: nothing new enters the bridge from another interface (another bridge, an
        // outside host routing to the subnet) unless it was DNATed by a published port.
        let isolate = vec![
            matches(meta("oifname"), json!(br)),
            not_matches(meta("iifname"), json!(br)),
            verdict("drop"),
        ];
        cmds.push(self.rule("forward", isolate, &comment));
        cmds
    }

    fn port_command(&self, port: &PortRule, comment: &str) -> Result<Value, FirewallError> {
        let proto = port.proto.as_str();
        let mut expr = Vec::new();
        match port.host_ip {
            Some(IpAddr::V4(ip)) => {
                expr.push(matches(payload("ip", "daddr"), json!(ip.to_string())))
            }
            Some(ip @ IpAddr::V6(_)) => return Err(FirewallError::Ipv6HostIp(ip)),
            None => {}
        }
        expr.push(matches(payload(proto, "dport"), json!(port.host_port)));
        expr.push(
            json!({"dnat": {"addr": port.container_ip.to_string(), "port": port.container_port}}),
        );
        Ok(self.rule("publish", expr, comment))
    }
}

#[derive(Debug)]
struct ListedRule {
    chain: String,
    handle: u64,
    comment: Option<String>,
}

impl ListedRule {
    fn from_json(obj: &Value) -> Option<ListedRule> {
        let rule = obj.get("rule")?;
        Some(ListedRule {
            chain: rule.get("chain")?.as_str()?.to_owned(),
            handle: rule.get("handle")?.as_u64()?,
            comment: rule
                .get("comment")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

fn objects(listing: &Value) -> impl Iterator<Item = &Value> {
    listing
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn network_comment(key: &str) -> String {
    format!("net:{key}")
}

fn container_comment(key: &str) -> String {
    format!("ctr:{key}")
}

/// Keys end up in nft comments (at most 128 bytes) and table names; keep them plain.
fn check_key(key: &str) -> Result<(), FirewallError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() || key.len() > 100 || !key.chars().all(plain) {
        return Err(FirewallError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

fn insert(add: Value) -> Value {
    json!({"insert": add["add"].clone()})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn ct(key: &str) -> Value {
    json!({"ct": {"key": key}})
}

fn prefix(addr: Ipv4Addr, len: u8) -> Value {
    json!({"prefix": {"addr": addr.to_string(), "len": len}})
}

fn matches(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

/// Bit-flag match (`ct state established,related`): any of the flags is set.
fn has_flags(left: Value, right: Value) -> Value {
    json!({"match": {"op": "in", "left": left, "right": right}})
}

fn not_matches(left: Value, right: Value) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right}})
}

fn verdict(v: &str) -> Value {
    json!({ v: null })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(internal: bool) -> NetworkRules {
        NetworkRules {
            key: "n1".into(),
            bridge: "br-n1".into(),
            subnet: "10.9.0.0/16".parse().unwrap_or_default(),
            internal,
        }
    }

    #[test]
    fn internal_networks_drop_first_and_have_no_outbound_masquerade() {
        let fw = Firewall { table: "t".into() };
        let cmds = fw.network_commands(&net(true));
        let text = serde_json::to_string(&cmds).unwrap_or_default();
        assert!(cmds[0].get("insert").is_some() && cmds[1].get("insert").is_some());
        let normal = serde_json::to_string(&fw.network_commands(&net(false))).unwrap_or_default();
        assert_eq!(normal.matches("masquerade").count(), 3);
        assert_eq!(
            text.matches("masquerade").count(),
            2,
            "hairpin and loopback only"
        );
    }

    #[test]
    fn ipv6_host_addresses_are_refused_not_misapplied() {
        let fw = Firewall { table: "t".into() };
        let rule = PortRule {
            host_ip: Some("::1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            host_port: 80,
            container_ip: Ipv4Addr::new(10, 9, 0, 2),
            container_port: 80,
            proto: Proto::Tcp,
        };
        let err = fw.port_command(&rule, "ctr:x").err();
        assert!(matches!(err, Some(FirewallError::Ipv6HostIp(_))));
    }

    #[test]
    fn keys_must_be_plain() {
        assert!(check_key("berth").is_ok());
        assert!(check_key("0123abc_x-y.z").is_ok());
        for bad in ["", "a b", "a\"b", "a;b", &"x".repeat(101)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
