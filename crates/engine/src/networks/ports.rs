//! `HostConfig.PortBindings` and `-P` into the network crate's port specs.

use std::collections::BTreeMap;

use berth_errdefs::{CategorizedError, Category};
use berth_network::ports::{PortSpec, Proto};
use serde::Deserialize;
use serde_json::Value;

type Result<T> = std::result::Result<T, CategorizedError>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Binding {
    host_ip: String,
    host_port: String,
}

fn invalid(msg: impl Into<String>) -> CategorizedError {
    CategorizedError::new(Category::InvalidParameter, msg)
}

/// `80/tcp` (or `80`) → port and protocol, with Docker's messages.
fn container_port(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => return Err(invalid(format!("invalid proto: {other}"))),
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| invalid(format!("invalid containerPort: {port}")))?;
    Ok((port, proto))
}

/// `""` → any, `8080`, or `8000-8010` (the first free one).
fn host_ports(text: &str) -> Result<(u16, u16)> {
    let bad = || invalid(format!("invalid hostPort: {text}"));
    let num = |t: &str| t.parse::<u16>().map_err(|_| bad());
    match text.split_once('-') {
        _ if text.is_empty() => Ok((0, 0)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b { Err(bad()) } else { Ok((a, b)) }
        }
        None => num(text).map(|p| (p, p)),
    }
}

/// Every published port: the explicit bindings, then (with `-P`) each exposed port not bound
/// yet on an ephemeral host port.
pub fn port_specs<'a>(
    bindings: Option<&BTreeMap<String, Value>>,
    publish_all: bool,
    exposed: impl Iterator<Item = &'a String>,
) -> Result<Vec<PortSpec>> {
    let mut specs = Vec::new();
    for (key, value) in bindings.into_iter().flatten() {
        let (container_port, proto) = container_port(key)?;
        let list: Vec<Binding> = match value {
            Value::Null => vec![Binding::default()],
            v => serde_json::from_value(v.clone())
                .map_err(|e| invalid(format!("invalid port binding for {key}: {e}")))?,
        };
        for b in list {
            let (start, end) = host_ports(&b.host_port)?;
            let host_ip = match b.host_ip.trim_start_matches('[').trim_end_matches(']') {
                "" => None,
                ip => Some(
                    ip.parse()
                        .map_err(|_| invalid(format!("invalid IP address: {ip}")))?,
                ),
            };
            specs.push(PortSpec {
                host_ip: host_ip.filter(|ip: &std::net::IpAddr| !ip.is_unspecified()),
                host_port_start: start,
                host_port_end: end,
                container_port,
                proto,
            });
        }
    }
    if publish_all {
        for key in exposed {
            let (container_port, proto) = container_port(key)?;
            let bound = specs
                .iter()
                .any(|s| s.container_port == container_port && s.proto == proto);
            if !bound {
                specs.push(PortSpec {
                    host_ip: None,
                    host_port_start: 0,
                    host_port_end: 0,
                    container_port,
                    proto,
                });
            }
        }
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn specs(bindings: Value, all: bool, exposed: &[&str]) -> Result<Vec<PortSpec>> {
        let map: BTreeMap<String, Value> = serde_json::from_value(bindings).unwrap();
        let exposed: Vec<String> = exposed.iter().map(|s| s.to_string()).collect();
        port_specs(Some(&map), all, exposed.iter())
    }

    #[test]
    fn bindings_as_the_cli_sends_them() {
        let got = specs(
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                   "53/udp": [{"HostIp": "", "HostPort": ""}],
                   "90/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9000-9010"}]}),
            false,
            &[],
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        let p80 = got.iter().find(|s| s.container_port == 80).unwrap();
        assert_eq!(p80.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((p80.host_port_start, p80.host_port_end), (8080, 8080));
        let p53 = got.iter().find(|s| s.container_port == 53).unwrap();
        assert_eq!((p53.proto, p53.host_port_start), (Proto::Udp, 0));
        let p90 = got.iter().find(|s| s.container_port == 90).unwrap();
        assert_eq!((p90.host_ip, p90.host_port_end), (None, 9010));
    }

    #[test]
    fn publish_all_adds_exposed_ports_not_bound() {
        let got = specs(
            json!({"80/tcp": [{"HostPort": "8080"}]}),
            true,
            &["80/tcp", "443/tcp", "53/udp"],
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert!(
            got.iter()
                .any(|s| s.container_port == 443 && s.host_port_start == 0)
        );
    }

    #[test]
    fn hostile_bindings_are_clear_errors() {
        let cases = [
            (json!({"0/tcp": null}), "invalid containerPort: 0"),
            (json!({"70000/tcp": null}), "invalid containerPort: 70000"),
            (json!({"80/sctpx": null}), "invalid proto: sctpx"),
            (
                json!({"80/tcp": [{"HostPort": "70000"}]}),
                "invalid hostPort: 70000",
            ),
            (
                json!({"80/tcp": [{"HostPort": "90-80"}]}),
                "invalid hostPort: 90-80",
            ),
            (
                json!({"80/tcp": [{"HostIp": "1.2.3", "HostPort": "1"}]}),
                "invalid IP address: 1.2.3",
            ),
            (json!({"80/tcp": "8080"}), "invalid port binding for 80/tcp"),
        ];
        for (bindings, want) in cases {
            let e = specs(bindings.clone(), false, &[]).unwrap_err();
            assert!(e.message.starts_with(want), "{bindings}: {}", e.message);
            assert_eq!(e.category, Category::InvalidParameter);
        }
    }
}
