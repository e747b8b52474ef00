//! Network records (`<data-root>/network/<id>.json`) and a container's network settings, in
//! the shapes Docker's inspect shows, so the API server passes them through.

use std::collections::BTreeMap;
use std::path::Path;

use berth_errdefs::{CategorizedError, Category};
use berth_network::ipam::Pool;
use berth_reference::Filters;
use serde::{Deserialize, Serialize};

type Result<T> = std::result::Result<T, CategorizedError>;

/// The networks every daemon has, with their drivers.
pub const PREDEFINED_NETWORKS: &[(&str, &str)] =
    &[("bridge", "bridge"), ("host", "host"), ("none", "null")];

/// One subnet of a network (`IPAM.Config[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    pub subnet: String,
    pub gateway: String,
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
}

impl IpamConfig {
    pub(crate) fn from_pool(pool: &Pool) -> IpamConfig {
        IpamConfig {
            subnet: pool.subnet.to_string(),
            gateway: pool.gateway.to_string(),
            ip_range: pool.ip_range.map(|r| r.to_string()).unwrap_or_default(),
        }
    }
}

/// A network as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkRecord {
    pub name: String,
    pub id: String,
    /// RFC 3339.
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// `IPAM.Config`: one IPv4 subnet for bridge networks, none for host and null.
    pub ipam: Vec<IpamConfig>,
    /// The bridge interface; empty for host and null.
    pub bridge: String,
}

impl NetworkRecord {
    pub(crate) fn new(name: &str, driver: &str) -> NetworkRecord {
        NetworkRecord {
            name: name.to_owned(),
            id: berth_reference::generate_id(),
            created: berth_image::now_rfc3339(),
            driver: driver.to_owned(),
            ..NetworkRecord::default()
        }
    }

    /// `bridge`, `host` and `none`.
    pub fn is_predefined(&self) -> bool {
        PREDEFINED_NETWORKS.iter().any(|(n, _)| *n == self.name)
    }

    /// The network containers join when they name none.
    pub fn is_default_bridge(&self) -> bool {
        self.name == "bridge"
    }
}

/// `POST /networks/create`, in the engine's words.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// `IPAM.Config[]` as given (`--subnet`, `--gateway`, `--ip-range`).
    pub ipam: Vec<IpamRequest>,
}

/// One `IPAM.Config` entry as the user gave it.
#[derive(Debug, Clone, Default)]
pub struct IpamRequest {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

/// A container's endpoint on one network (`NetworkSettings.Networks[name]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// The network's name when connected (the map key in inspect).
    pub network_name: String,
    /// The container's name, for the network's inspect.
    pub container_name: String,
    /// The interface inside the container (`eth0`).
    pub interface: String,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub mac_address: String,
    pub aliases: Option<Vec<String>>,
    /// `--ip`, shown as `IPAMConfig.IPv4Address`.
    #[serde(rename = "IPv4Requested", skip_serializing_if = "Option::is_none")]
    pub ipv4_requested: Option<String>,
    /// Names the embedded DNS answers with this address (name, aliases, hostname).
    #[serde(rename = "DNSNames")]
    pub dns_names: Vec<String>,
}

/// One published port (`NetworkSettings.Ports["80/tcp"][]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// What a running container is connected to; empty when it is not running.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    /// Network name → endpoint; the first is the one the mode named.
    pub networks: BTreeMap<String, EndpointSettings>,
    /// `80/tcp` → host bindings.
    pub ports: BTreeMap<String, Vec<PortBinding>>,
    /// The network the mode named, whose endpoint holds the default route.
    pub primary: String,
}

impl NetworkSettings {
    /// What inspect shows of a stopped container: its networks, without addresses or ports.
    pub fn stopped(&self) -> NetworkSettings {
        let networks = self
            .networks
            .iter()
            .map(|(name, ep)| {
                let kept = EndpointSettings {
                    network_name: ep.network_name.clone(),
                    container_name: ep.container_name.clone(),
                    network_id: ep.network_id.clone(),
                    aliases: ep.aliases.clone(),
                    ipv4_requested: ep.ipv4_requested.clone(),
                    ..EndpointSettings::default()
                };
                (name.clone(), kept)
            })
            .collect();
        NetworkSettings {
            networks,
            ports: BTreeMap::new(),
            primary: self.primary.clone(),
        }
    }

    /// The endpoint with the default route.
    pub fn primary(&self) -> Option<&EndpointSettings> {
        self.networks
            .get(&self.primary)
            .or_else(|| self.networks.values().next())
    }
}

fn sys(context: &str, path: &Path, e: impl std::fmt::Display) -> CategorizedError {
    CategorizedError::new(
        Category::System,
        format!("{context} {}: {e}", path.display()),
    )
}

pub(crate) fn load_all(dir: &Path) -> Result<BTreeMap<String, NetworkRecord>> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| sys("read", dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_record = path.extension().is_some_and(|e| e == "json")
            && path.file_stem().is_some_and(|s| s.len() == 64);
        if !is_record {
            continue;
        }
        match std::fs::read(&path).map(|b| serde_json::from_slice::<NetworkRecord>(&b)) {
            Ok(Ok(r)) => {
                out.insert(r.id.clone(), r);
            }
            Ok(Err(e)) => tracing::warn!("skipping network {}: {e}", path.display()),
            Err(e) => tracing::warn!("skipping network {}: {e}", path.display()),
        }
    }
    Ok(out)
}

pub(crate) fn save(dir: &Path, r: &NetworkRecord) -> Result<()> {
    let path = dir.join(format!("{}.json", r.id));
    let data = serde_json::to_vec(r).map_err(|e| sys("encode", &path, e))?;
    crate::containers::write_atomic(&path, &data)
}

pub(crate) fn remove(dir: &Path, id: &str) -> Result<()> {
    let path = dir.join(format!("{id}.json"));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(sys("remove", &path, e)),
        _ => Ok(()),
    }
}

/// Docker's rule for network names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128;
    if valid {
        Ok(())
    } else {
        Err(CategorizedError::new(
            Category::InvalidParameter,
            format!("invalid name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
        ))
    }
}

/// Docker's network list filters.
pub(crate) fn matches(r: &NetworkRecord, f: &Filters, in_use: bool) -> bool {
    let kind = if r.is_predefined() {
        "builtin"
    } else {
        "custom"
    };
    let dangling_ok = match f.get_bool_or_default("dangling", false) {
        Ok(true) if f.contains("dangling") => !r.is_predefined() && !in_use,
        Ok(false) if f.contains("dangling") => r.is_predefined() || in_use,
        _ => true,
    };
    f.fuzzy_match("id", &r.id)
        && (f.get("name").is_empty() || f.get("name").iter().any(|n| r.name.contains(*n)))
        && f.exact_match("driver", &r.driver)
        && f.exact_match("type", kind)
        && f.exact_match("scope", "local")
        && f.match_labels(&r.labels)
        && dangling_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["a", "my-net", "net_1.x", "A9"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "../x", "é"] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.category, Category::InvalidParameter, "{bad}");
        }
        check_name(&"a".repeat(129)).unwrap_err();
    }

    #[test]
    fn list_filters() {
        let mut r = NetworkRecord::new("front", "bridge");
        r.labels.insert("tier".into(), "web".into());
        let f = |json: &str| Filters::parse(json).unwrap();
        assert!(matches(&r, &f(r#"{"name":["fro"]}"#), false));
        assert!(!matches(&r, &f(r#"{"name":["back"]}"#), false));
        assert!(matches(&r, &f(r#"{"type":["custom"]}"#), false));
        assert!(!matches(&r, &f(r#"{"type":["builtin"]}"#), false));
        assert!(matches(&r, &f(r#"{"label":["tier=web"]}"#), false));
        assert!(matches(
            &r,
            &f(&format!(r#"{{"id":["{}"]}}"#, &r.id[..6])),
            false
        ));
        assert!(matches(&r, &f(r#"{"dangling":["true"]}"#), false));
        assert!(!matches(&r, &f(r#"{"dangling":["true"]}"#), true));
        let bridge = NetworkRecord::new("bridge", "bridge");
        assert!(!matches(&bridge, &f(r#"{"dangling":["true"]}"#), false));
    }
}
