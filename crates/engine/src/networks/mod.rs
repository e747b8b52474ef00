//! The networks service: the predefined `bridge`, `host` and `none` networks, user-defined
//! bridge networks, and connecting a starting container to them (address, veth, published
//! ports, embedded DNS), undone when it stops.
//!
//! Records live in `<data-root>/network/<id>.json`, pools in `<data-root>/network/ipam.json`
//! (the network crate's [`Ipam`]). The addresses handed out are kept in memory only: at
//! start-up [`Networks::restore`] re-registers those of running containers from their records,
//! so no address is handed out twice across a daemon restart, and starting or stopping a
//! container writes no IPAM file. A container's endpoints are plumbed into the network
//! namespace of its created-but-not-started init (`/proc/<pid>/ns/net`), so a container never
//! runs without its network and no namespace file has to be kept anywhere.

mod ports;
mod records;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_errdefs::{CategorizedError, Category};
use berth_network::dns::{DnsConfig, Resolver};
use berth_network::firewall::{DesiredState, Firewall, NetworkRules, PortRule};
use berth_network::forward::IptablesForward;
use berth_network::ipam::{DefaultPool, Ipam, PoolRequest};
use berth_network::links::{BridgeConfig, Endpoint, Netlink, Netns};
use berth_network::ports::{PortReservation, PortSpec, Proto};
use berth_reference::Filters;
use tokio::task::AbortHandle;

pub use ports::port_specs;
pub use records::{
    CreateRequest, EndpointSettings, IpamConfig, IpamRequest, NetworkRecord, NetworkSettings,
    PREDEFINED_NETWORKS, PortBinding,
};

use crate::events::{Event, EventType, Events};

type Result<T> = std::result::Result<T, CategorizedError>;

/// How the daemon's networking is set up (dockerd's flags where they exist).
#[derive(Debug, Clone)]
pub struct NetworksConfig {
    /// `--data-root`.
    pub data_root: PathBuf,
    /// The default bridge's interface (`berth0`; `--bridge`).
    pub bridge: String,
    /// `--bip`: the default bridge's gateway address and prefix (`172.18.0.1/16`).
    pub bip: Option<String>,
    /// `--fixed-cidr`: the range the default bridge hands addresses out from.
    pub fixed_cidr: Option<String>,
    /// `--default-address-pools`; the network crate's defaults when empty.
    pub default_pools: Vec<DefaultPool>,
    /// berth's nftables table (`berth`; `--firewall-table`, so two daemons can share a host).
    pub firewall_table: String,
    /// `--mtu`.
    pub mtu: Option<u32>,
}

/// What a container asks of one network (`NetworkingConfig.EndpointsConfig`, `--ip`,
/// `--network-alias`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointRequest {
    /// `--ip`.
    pub ipv4: Option<Ipv4Addr>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
}

/// The container facts connecting needs.
#[derive(Debug, Clone)]
pub struct ContainerNet<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    /// `HostConfig.NetworkMode` (`default`, `bridge`, a network name or id).
    pub mode: &'a str,
    /// Extra endpoints from `NetworkingConfig`, by network name or id.
    pub endpoints: &'a BTreeMap<String, EndpointRequest>,
    /// `HostConfig.PortBindings` as `-p` specs (`80/tcp` → host ip and port).
    pub port_bindings: &'a [PortSpec],
    /// `--mac-address`, for the endpoint of the network its mode names.
    pub mac: Option<[u8; 6]>,
}

/// `02:42:ac:11:00:02` → bytes; Docker's message otherwise.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bad = || invalid(format!("{text} is not a valid mac address"));
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Live resources of a connected container that are not in its record.
#[derive(Debug, Default)]
struct Live {
    reservations: Vec<PortReservation>,
    dns: Vec<AbortHandle>,
}

#[derive(Debug)]
struct Inner {
    records: BTreeMap<String, NetworkRecord>,
    ipam: Ipam,
    /// Container id → its embedded resolver, which knows the names of every container on
    /// each of its user-defined networks.
    dns: BTreeMap<String, Arc<Resolver>>,
    live: BTreeMap<String, Live>,
    /// Network id → container id → endpoint, for inspect and for refusing to remove a
    /// network in use.
    endpoints: BTreeMap<String, BTreeMap<String, EndpointSettings>>,
}

/// The networks service.
#[derive(Debug)]
pub struct Networks {
    cfg: NetworksConfig,
    firewall: Firewall,
    /// The host's iptables, whose `FORWARD` chain a Docker Engine may set to DROP.
    forward: Option<IptablesForward>,
    events: Arc<Events>,
    inner: Mutex<Inner>,
}

fn sys(context: &str, e: impl std::fmt::Display) -> CategorizedError {
    CategorizedError::new(Category::System, format!("{context}: {e}"))
}

fn invalid(msg: impl Into<String>) -> CategorizedError {
    CategorizedError::new(Category::InvalidParameter, msg)
}

fn from<E: berth_errdefs::HasCategory + std::fmt::Display>(e: E) -> CategorizedError {
    CategorizedError::from_error(&e)
}

/// The network a mode names: `default` and empty are the default bridge.
pub fn mode_network(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" | "bridge" => Some("bridge"),
        "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}

impl Networks {
    /// Opens the service: loads records and allocations, and creates the predefined networks
    /// on first start. Call [`Networks::restore`] from the async runtime afterwards.
    pub fn open(cfg: NetworksConfig, events: Arc<Events>) -> Result<Arc<Networks>> {
        let dir = cfg.data_root.join("network");
        std::fs::create_dir_all(&dir).map_err(|e| sys("create the network directory", e))?;
        let mut ipam = Ipam::open(&dir.join("ipam.json")).map_err(from)?;
        if !cfg.default_pools.is_empty() {
            ipam.set_default_pools(cfg.default_pools.clone());
        }
        let firewall = Firewall::new(&cfg.firewall_table).map_err(from)?;
        let records = records::load_all(&dir)?;
        let this = Networks {
            cfg,
            firewall,
            forward: IptablesForward::detect(),
            events,
            inner: Mutex::new(Inner {
                records,
                ipam,
                dns: BTreeMap::new(),
                live: BTreeMap::new(),
                endpoints: BTreeMap::new(),
            }),
        };
        this.ensure_predefined()?;
        Ok(Arc::new(this))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dir(&self) -> PathBuf {
        self.cfg.data_root.join("network")
    }

    fn ensure_predefined(&self) -> Result<()> {
        let mut inner = self.lock();
        for (name, driver) in PREDEFINED_NETWORKS {
            if inner.records.values().any(|r| r.name == *name) {
                continue;
            }
            let mut record = NetworkRecord::new(name, driver);
            if *name == "bridge" {
                record.bridge = self.cfg.bridge.clone();
                record.options.insert(
                    "com.docker.network.bridge.name".into(),
                    self.cfg.bridge.clone(),
                );
                record.options.insert(
                    "com.docker.network.bridge.default_bridge".into(),
                    "true".into(),
                );
                let request = self.default_bridge_request()?;
                let routes = host_routes_blocking();
                let pool = inner
                    .ipam
                    .create_pool(&record.id, &request, &routes)
                    .map_err(from)?;
                record.ipam = vec![IpamConfig::from_pool(&pool)];
            }
            records::save(&self.dir(), &record)?;
            inner.records.insert(record.id.clone(), record);
        }
        Ok(())
    }

    /// `--bip` and `--fixed-cidr` as a pool request: the gateway is the bip's address.
    fn default_bridge_request(&self) -> Result<PoolRequest> {
        let Some(bip) = &self.cfg.bip else {
            return Ok(PoolRequest {
                ip_range: self.cfg.fixed_cidr.clone(),
                ..PoolRequest::default()
            });
        };
        let net: ipnet::Ipv4Net = bip
            .parse()
            .map_err(|_| invalid(format!("invalid --bip {bip:?}: expected an address/prefix")))?;
        Ok(PoolRequest {
            subnet: Some(net.trunc().to_string()),
            gateway: Some(net.addr().to_string()),
            ip_range: self.cfg.fixed_cidr.clone(),
        })
    }

    /// Brings up every bridge, turns on forwarding and rebuilds berth's nftables table from
    /// the records and the published ports of `running` containers (after a restart or a
    /// flush of the ruleset, the table is exactly what it should be).
    pub async fn restore(&self, running: &[(String, NetworkSettings)]) -> Result<()> {
        berth_network::links::enable_ip_forwarding().map_err(from)?;
        let netlink = Netlink::connect().map_err(from)?;
        let bridges: Vec<BridgeConfig> = {
            let inner = self.lock();
            inner
                .records
                .values()
                .filter_map(|r| self.bridge_config(r))
                .collect()
        };
        for bridge in &bridges {
            netlink.ensure_bridge(bridge).await.map_err(from)?;
        }
        let mut desired = DesiredState {
            networks: self.lock().records.values().filter_map(rules_of).collect(),
            ports: Vec::new(),
        };
        for (id, settings) in running {
            desired.ports.push((id.clone(), port_rules(settings)));
            self.remember(id, settings);
        }
        let firewall = self.firewall.clone();
        let forward = self.forward.clone();
        let names: Vec<String> = bridges.iter().map(|b| b.name.clone()).collect();
        tokio::task::spawn_blocking(move || {
            allow_forwarding(forward.as_ref(), &names);
            firewall.reconcile(&desired)
        })
        .await
        .map_err(|e| sys("firewall task", e))?
        .map_err(from)
    }

    /// Re-registers a running container's endpoints after a restart (names, inspect's
    /// `Containers`, allocations) and serves its DNS again.
    fn remember(&self, id: &str, settings: &NetworkSettings) {
        let mut inner = self.lock();
        for ep in settings.networks.values() {
            if let Ok(ip) = ep.ip_address.parse::<Ipv4Addr>() {
                // Allocations live in memory: the records of running containers rebuild them.
                let _ = inner.ipam.allocate(&ep.network_id, Some(ip));
            }
            inner.link_names(id, ep);
        }
    }

    fn bridge_config(&self, r: &NetworkRecord) -> Option<BridgeConfig> {
        let pool = r.ipam.first()?;
        let subnet: ipnet::Ipv4Net = pool.subnet.parse().ok()?;
        let gateway: Ipv4Addr = pool.gateway.parse().ok()?;
        Some(BridgeConfig {
            name: r.bridge.clone(),
            gateway: ipnet::Ipv4Net::new(gateway, subnet.prefix_len()).ok()?,
            mtu: self.cfg.mtu,
        })
    }

    /// Finds a network by full id, name, or unique id prefix, as Docker does.
    pub fn find(&self, name_or_id: &str) -> Result<NetworkRecord> {
        let inner = self.lock();
        find_in(&inner.records, name_or_id).cloned()
    }

    /// `GET /networks/{id}`: the record and its connected containers.
    pub fn inspect(
        &self,
        name_or_id: &str,
    ) -> Result<(NetworkRecord, Vec<(String, EndpointSettings)>)> {
        let inner = self.lock();
        let record = find_in(&inner.records, name_or_id)?.clone();
        let eps = inner
            .endpoints
            .get(&record.id)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok((record, eps))
    }

    /// `GET /networks` with Docker's filters (name, id, driver, label, type, dangling).
    pub fn list(&self, filters: &Filters) -> Result<Vec<NetworkRecord>> {
        filters
            .validate(&["name", "id", "driver", "label", "type", "scope", "dangling"])
            .map_err(from)?;
        let inner = self.lock();
        Ok(inner
            .records
            .values()
            .filter(|r| records::matches(r, filters, inner.endpoints.contains_key(&r.id)))
            .cloned()
            .collect())
    }

    /// `POST /networks/create`.
    pub async fn create(&self, request: records::CreateRequest) -> Result<NetworkRecord> {
        let record = self.create_record(request)?;
        if let Some(bridge) = self.bridge_config(&record) {
            let made = async {
                let netlink = Netlink::connect().map_err(from)?;
                netlink.ensure_bridge(&bridge).await.map_err(from)?;
                let firewall = self.firewall.clone();
                let rules = rules_of(&record);
                let forward = self.forward.clone();
                let name = bridge.name.clone();
                tokio::task::spawn_blocking(move || {
                    allow_forwarding(forward.as_ref(), &[name]);
                    firewall.ensure()?;
                    rules.map_or(Ok(()), |r| firewall.add_network(&r))
                })
                .await
                .map_err(|e| sys("firewall task", e))?
                .map_err(from)
            }
            .await;
            if let Err(e) = made {
                let _ = self.forget(&record).await;
                return Err(e);
            }
        }
        self.publish(&record, "create", &[]);
        Ok(record)
    }

    fn create_record(&self, request: records::CreateRequest) -> Result<NetworkRecord> {
        records::check_name(&request.name)?;
        let driver = match request.driver.as_str() {
            "" | "bridge" => "bridge",
            "host" | "null" => {
                return Err(CategorizedError::new(
                    Category::Forbidden,
                    format!(
                        "only one instance of \"{}\" network is allowed",
                        request.driver
                    ),
                ));
            }
            other => {
                return Err(CategorizedError::new(
                    Category::NotFound,
                    format!("plugin \"{other}\" not found"),
                ));
            }
        };
        if request.ipam.len() > 1 {
            return Err(invalid("berth: one IPv4 subnet per network is supported"));
        }
        let mut inner = self.lock();
        if inner.records.values().any(|r| r.name == request.name) {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("network with name {} already exists", request.name),
            ));
        }
        let mut record = NetworkRecord::new(&request.name, driver);
        record.internal = request.internal;
        record.attachable = request.attachable;
        record.labels = request.labels;
        record.options = request.options;
        record.bridge = record
            .options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &record.id[..12]));
        berth_network::links::check_ifname(&record.bridge).map_err(from)?;
        let pool_request = request
            .ipam
            .first()
            .map(|c| PoolRequest {
                subnet: c.subnet.clone().filter(|s| !s.is_empty()),
                gateway: c.gateway.clone().filter(|s| !s.is_empty()),
                ip_range: c.ip_range.clone().filter(|s| !s.is_empty()),
            })
            .unwrap_or_default();
        let routes = host_routes_blocking();
        let pool = inner
            .ipam
            .create_pool(&record.id, &pool_request, &routes)
            .map_err(from)?;
        record.ipam = vec![IpamConfig::from_pool(&pool)];
        if let Err(e) = records::save(&self.dir(), &record) {
            let _ = inner.ipam.remove_pool(&record.id);
            return Err(e);
        }
        inner.records.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    /// A container's resolver: it relays unknown names to the host's resolvers unless every
    /// user-defined network it is on is `--internal`.
    fn resolver_for(internal: bool) -> Arc<Resolver> {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Resolver::new(DnsConfig {
            internal,
            upstreams: berth_network::dns::upstreams_for(&[], &host),
            ..DnsConfig::default()
        })
    }

    /// `DELETE /networks/{id}`: refuses predefined networks and networks with endpoints.
    pub async fn remove(&self, name_or_id: &str) -> Result<()> {
        let record = self.find(name_or_id)?;
        if record.is_predefined() {
            return Err(CategorizedError::new(
                Category::Forbidden,
                format!(
                    "{} is a pre-defined network and cannot be removed",
                    record.name
                ),
            ));
        }
        if self
            .lock()
            .endpoints
            .get(&record.id)
            .is_some_and(|m| !m.is_empty())
        {
            return Err(CategorizedError::new(
                Category::Forbidden,
                format!(
                    "error while removing network: network {} id {} has active endpoints",
                    record.name, record.id
                ),
            ));
        }
        self.forget(&record).await?;
        self.publish(&record, "destroy", &[]);
        Ok(())
    }

    /// Deletes a network's bridge, rules, pool and record.
    async fn forget(&self, record: &NetworkRecord) -> Result<()> {
        if !record.bridge.is_empty() {
            let netlink = Netlink::connect().map_err(from)?;
            netlink.delete_link(&record.bridge).await.map_err(from)?;
        }
        let firewall = self.firewall.clone();
        let key = record.id.clone();
        let forward = self.forward.clone();
        let bridge = record.bridge.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(forward) = forward.filter(|_| !bridge.is_empty()) {
                forward.revoke(&bridge);
            }
            firewall.remove_network(&key)
        })
        .await
        .map_err(|e| sys("firewall task", e))?
        .map_err(from)?;
        let mut inner = self.lock();
        inner.ipam.remove_pool(&record.id).map_err(from)?;
        records::remove(&self.dir(), &record.id)?;
        inner.records.remove(&record.id);
        inner.endpoints.remove(&record.id);
        Ok(())
    }

    /// `POST /networks/prune`: removes unused user-defined networks; returns their names.
    pub async fn prune(&self, filters: &Filters) -> Result<Vec<String>> {
        filters.validate(&["label", "until"]).map_err(from)?;
        let unused: Vec<NetworkRecord> = {
            let inner = self.lock();
            inner
                .records
                .values()
                .filter(|r| !r.is_predefined())
                .filter(|r| inner.endpoints.get(&r.id).is_none_or(BTreeMap::is_empty))
                .filter(|r| records::matches(r, filters, false))
                .cloned()
                .collect()
        };
        let mut names = Vec::new();
        for r in unused {
            self.forget(&r).await?;
            self.publish(&r, "destroy", &[]);
            names.push(r.name);
        }
        Ok(names)
    }

    /// A network `connect` or `disconnect` event naming the container.
    pub fn publish_container_event(&self, r: &NetworkRecord, action: &str, container: &str) {
        self.publish(r, action, &[("container", container.to_owned())]);
    }

    fn publish(&self, r: &NetworkRecord, action: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_owned(), r.name.clone());
        attrs.insert("type".to_owned(), r.driver.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.events
            .publish(Event::now(EventType::Network, action, &r.id, attrs));
    }

    /// Before the container's init exists: allocates its addresses and host ports. The
    /// returned settings are final except for what [`Networks::plumb`] adds; on error nothing
    /// is held.
    pub fn prepare(&self, c: &ContainerNet<'_>) -> Result<NetworkSettings> {
        let mut settings = NetworkSettings::default();
        let Some(primary) = mode_network(c.mode) else {
            return Ok(settings);
        };
        let request_for = |net: &str| {
            c.endpoints
                .iter()
                .find(|(k, _)| mode_network(k) == Some(net))
                .map(|(_, r)| r.clone())
                .unwrap_or_default()
        };
        let mut wanted: Vec<(String, EndpointRequest)> =
            vec![(primary.to_owned(), request_for(primary))];
        for net in c.endpoints.keys().filter_map(|k| mode_network(k)) {
            if wanted.iter().all(|(w, _)| w != net) {
                wanted.push((net.to_owned(), request_for(net)));
            }
        }
        settings.primary = self.find(primary)?.name;
        let result = self
            .allocate_endpoints(c, &wanted, &mut settings)
            .and_then(|()| self.reserve_ports(c, &mut settings));
        if let Err(e) = result {
            self.release_allocations(c.id, &settings);
            return Err(e);
        }
        Ok(settings)
    }

    /// Allocates an address on each wanted network into `settings`; on error, the
    /// endpoints allocated so far are in `settings` for the caller to release.
    fn allocate_endpoints(
        &self,
        c: &ContainerNet<'_>,
        wanted: &[(String, EndpointRequest)],
        settings: &mut NetworkSettings,
    ) -> Result<()> {
        for (net, req) in wanted {
            let ep = {
                let mut inner = self.lock();
                let record = find_in(&inner.records, net)?.clone();
                if record.driver != "bridge" {
                    return Err(invalid(format!(
                        "container cannot be connected to host network {}",
                        record.name
                    )));
                }
                if req.ipv4.is_some() && record.is_default_bridge() {
                    return Err(invalid(
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
                let ip = inner.ipam.allocate(&record.id, req.ipv4).map_err(from)?;
                endpoint_settings(&record, c, req, ip)
            };
            let mut ep = ep;
            if let Some(mac) = c.mac.filter(|_| settings.networks.is_empty()) {
                ep.mac_address = format_mac(mac);
            }
            ep.interface = free_interface(settings);
            settings.networks.insert(ep.network_name.clone(), ep);
        }
        Ok(())
    }

    /// Holds the container's host ports (kept until [`Networks::release`]).
    fn reserve_ports(&self, c: &ContainerNet<'_>, settings: &mut NetworkSettings) -> Result<()> {
        let primary_ip = settings
            .primary()
            .and_then(|e| e.ip_address.parse::<Ipv4Addr>().ok());
        let mut live = Live::default();
        for spec in c.port_bindings {
            let reservation = berth_network::ports::reserve(spec).map_err(from)?;
            let key = format!("{}/{}", spec.container_port, spec.proto);
            settings.ports.entry(key).or_default().push(PortBinding {
                host_ip: spec
                    .host_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                host_port: reservation.port.to_string(),
            });
            live.reservations.push(reservation);
        }
        if primary_ip.is_none() && !c.port_bindings.is_empty() {
            return Err(invalid("published ports need a bridge network"));
        }
        self.lock().live.insert(c.id.to_owned(), live);
        Ok(())
    }

    /// With the container's init created (`pid`, not yet started): wires each endpoint into
    /// its namespace, serves DNS there for user-defined networks, and publishes its ports.
    pub async fn plumb(&self, id: &str, pid: i32, settings: &NetworkSettings) -> Result<()> {
        if settings.networks.is_empty() {
            return Ok(());
        }
        let pid = u32::try_from(pid).map_err(|_| sys("container pid", pid))?;
        let netlink = Netlink::connect().map_err(from)?;
        for ep in settings.networks.values() {
            let primary = settings
                .primary()
                .is_some_and(|p| p.network_id == ep.network_id);
            self.plumb_one(&netlink, pid, ep, primary).await?;
        }
        self.register(id, settings);
        self.serve_dns(id, pid, settings)?;
        let rules = port_rules(settings);
        if !rules.is_empty() {
            let firewall = self.firewall.clone();
            let key = id.to_owned();
            tokio::task::spawn_blocking(move || firewall.publish(&key, &rules))
                .await
                .map_err(|e| sys("firewall task", e))?
                .map_err(from)?;
        }
        Ok(())
    }

    /// Wires one endpoint: a veth on the network's bridge, its address inside, and the
    /// default route for the primary endpoint of a network that is not `--internal`.
    async fn plumb_one(
        &self,
        netlink: &Netlink,
        pid: u32,
        ep: &EndpointSettings,
        primary: bool,
    ) -> Result<()> {
        let record = self.find(&ep.network_id)?;
        let address: Ipv4Addr = ep.ip_address.parse().map_err(|e| sys("address", e))?;
        let endpoint = Endpoint {
            bridge: record.bridge.clone(),
            host_ifname: host_ifname(&ep.endpoint_id),
            netns: Netns::Pid(pid),
            ifname: ep.interface.clone(),
            address: ipnet::Ipv4Net::new(address, ep.ip_prefix_len)
                .map_err(|e| sys("address", e))?,
            gateway: (primary && !record.internal)
                .then(|| ep.gateway.parse().ok())
                .flatten(),
            mac: parse_mac(&ep.mac_address).ok(),
            mtu: self.cfg.mtu,
        };
        netlink.attach(&endpoint).await.map_err(from)?;
        Ok(())
    }

    /// `docker network connect` of a running container: one more endpoint, wired at once.
    /// `settings` gains it on success; on failure nothing is held.
    pub async fn connect_live(
        &self,
        c: &ContainerNet<'_>,
        pid: i32,
        network: &str,
        request: &EndpointRequest,
        settings: &mut NetworkSettings,
    ) -> Result<()> {
        let mut one = NetworkSettings {
            primary: settings.primary.clone(),
            ..NetworkSettings::default()
        };
        one.networks = settings.networks.clone();
        let before: Vec<String> = one.networks.keys().cloned().collect();
        let allocated =
            self.allocate_endpoints(c, &[(network.to_owned(), request.clone())], &mut one);
        let new = one
            .networks
            .values()
            .find(|e| !before.contains(&e.network_name))
            .cloned();
        let ep = match (allocated, new) {
            (Ok(()), Some(ep)) => ep,
            (Err(e), new) => {
                if let Some(ep) = new {
                    self.release_endpoint(c.id, &ep).await;
                }
                return Err(e);
            }
            (Ok(()), None) => return Err(sys("connect", "no endpoint was allocated")),
        };
        let added = NetworkSettings {
            networks: BTreeMap::from([(ep.network_name.clone(), ep.clone())]),
            ..NetworkSettings::default()
        };
        let wired = async {
            let pid = u32::try_from(pid).map_err(|_| sys("container pid", pid))?;
            let netlink = Netlink::connect().map_err(from)?;
            self.plumb_one(&netlink, pid, &ep, false).await?;
            let has_dns = self
                .lock()
                .live
                .get(c.id)
                .is_some_and(|l| !l.dns.is_empty());
            self.register(c.id, &added);
            if !has_dns {
                self.serve_dns(c.id, pid, &added)?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = wired {
            self.release_endpoint(c.id, &ep).await;
            return Err(e);
        }
        settings.networks.insert(ep.network_name.clone(), ep);
        Ok(())
    }

    /// Undoes one endpoint of a container: its veth, names and address.
    pub async fn release_endpoint(&self, id: &str, ep: &EndpointSettings) {
        if let Ok(netlink) = Netlink::connect()
            && let Err(e) = netlink.delete_link(&host_ifname(&ep.endpoint_id)).await
        {
            tracing::debug!("deleting the veth of {id}: {e}");
        }
        let mut inner = self.lock();
        inner.unlink_names(id, ep);
        if let Ok(ip) = ep.ip_address.parse::<Ipv4Addr>()
            && let Err(e) = inner.ipam.release(&ep.network_id, ip)
        {
            tracing::warn!("releasing {ip} of {id}: {e}");
        }
    }

    fn register(&self, id: &str, settings: &NetworkSettings) {
        let mut inner = self.lock();
        for ep in settings.networks.values() {
            inner.link_names(id, ep);
        }
    }

    /// Binds 127.0.0.11:53 (UDP and TCP) inside the container's namespace, answering with
    /// the names on its user-defined networks. The default bridge has no embedded DNS (as
    /// Docker's).
    fn serve_dns(&self, id: &str, pid: u32, settings: &NetworkSettings) -> Result<()> {
        let resolver = {
            let mut inner = self.lock();
            let user: Vec<&NetworkRecord> = settings
                .networks
                .values()
                .filter_map(|ep| inner.records.get(&ep.network_id))
                .filter(|r| !r.is_default_bridge())
                .collect();
            if user.is_empty() {
                return Ok(());
            }
            let resolver = Self::resolver_for(user.iter().all(|r| r.internal));
            inner.dns.insert(id.to_owned(), resolver.clone());
            for ep in settings.networks.values() {
                inner.link_names(id, ep);
            }
            resolver
        };
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let addr = SocketAddr::new(IpAddr::V4(berth_network::dns::RESOLVER_ADDR), 53);
        let (udp, tcp) = berth_network::dns::bind_in_netns(&netns, addr).map_err(from)?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| sys("dns socket", e))?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| sys("dns socket", e))?;
        let tasks = [
            tokio::spawn(berth_network::dns::serve_udp(udp, resolver.clone())).abort_handle(),
            tokio::spawn(berth_network::dns::serve_tcp(tcp, resolver)).abort_handle(),
        ];
        self.lock()
            .live
            .entry(id.to_owned())
            .or_default()
            .dns
            .extend(tasks);
        Ok(())
    }

    /// Serves DNS again for a container found running after a daemon restart.
    pub fn reattach(&self, id: &str, pid: i32, settings: &NetworkSettings) {
        let Ok(pid) = u32::try_from(pid) else {
            return;
        };
        if let Err(e) = self.serve_dns(id, pid, settings) {
            tracing::warn!("embedded DNS for {id}: {}", e.message);
        }
    }

    /// Undoes [`Networks::prepare`] and [`Networks::plumb`]: the veths, names, ports and
    /// addresses. Repeatable (a restart may release what a crash left).
    pub async fn release(&self, id: &str, settings: &NetworkSettings) {
        // Deleting a veth waits for the kernel's RCU grace periods (milliseconds each), and
        // the kernel deletes it anyway once the container's namespace is gone: off the
        // answer path. The names are unique per endpoint, so nothing waits for them.
        let veths: Vec<String> = settings
            .networks
            .values()
            .map(|ep| host_ifname(&ep.endpoint_id))
            .collect();
        if !veths.is_empty() {
            let id = id.to_owned();
            tokio::spawn(async move {
                let Ok(netlink) = Netlink::connect() else {
                    return;
                };
                for veth in veths {
                    if let Err(e) = netlink.delete_link(&veth).await {
                        tracing::debug!("deleting the veth of {id}: {e}");
                    }
                }
            });
        }
        if !settings.ports.is_empty() {
            let firewall = self.firewall.clone();
            let key = id.to_owned();
            let done = tokio::task::spawn_blocking(move || firewall.unpublish(&key)).await;
            if let Ok(Err(e)) = done {
                tracing::warn!("unpublishing the ports of {id}: {e}");
            }
        }
        self.release_allocations(id, settings);
    }

    /// The synchronous part of [`Networks::release`]: names, addresses and host ports.
    pub fn release_now(&self, id: &str, settings: &NetworkSettings) {
        self.release_allocations(id, settings);
    }

    fn release_allocations(&self, id: &str, settings: &NetworkSettings) {
        let mut inner = self.lock();
        if let Some(live) = inner.live.remove(id) {
            for task in live.dns {
                task.abort();
            }
        }
        for ep in settings.networks.values() {
            inner.unlink_names(id, ep);
            if let Ok(ip) = ep.ip_address.parse::<Ipv4Addr>()
                && let Err(e) = inner.ipam.release(&ep.network_id, ip)
            {
                tracing::warn!("releasing {ip} of {id}: {e}");
            }
        }
        inner.dns.remove(id);
    }

    /// The default bridge's gateway, for `docker info` and tests.
    pub fn default_bridge(&self) -> Option<NetworkRecord> {
        self.lock()
            .records
            .values()
            .find(|r| r.is_default_bridge())
            .cloned()
    }
}

impl Inner {
    /// Records `id`'s endpoint on its network, and makes names known both ways: `ep`'s
    /// names to every resolver of a container on that network (its own included), and their
    /// names to `id`'s resolver.
    fn link_names(&mut self, id: &str, ep: &EndpointSettings) {
        let peers = self.endpoints.entry(ep.network_id.clone()).or_default();
        peers.insert(id.to_owned(), ep.clone());
        let own = self.dns.get(id);
        for (peer, peer_ep) in peers.iter() {
            if let (Some(r), Ok(ip)) = (self.dns.get(peer), ep.ip_address.parse::<Ipv4Addr>()) {
                ep.dns_names.iter().for_each(|n| r.register(n, ip));
            }
            if let (Some(r), Ok(ip)) = (own, peer_ep.ip_address.parse::<Ipv4Addr>()) {
                peer_ep.dns_names.iter().for_each(|n| r.register(n, ip));
            }
        }
    }

    /// Undoes [`Inner::link_names`].
    fn unlink_names(&mut self, id: &str, ep: &EndpointSettings) {
        let Some(peers) = self.endpoints.get_mut(&ep.network_id) else {
            return;
        };
        peers.remove(id);
        let own = self.dns.get(id);
        if let (Some(r), Ok(ip)) = (own, ep.ip_address.parse::<Ipv4Addr>()) {
            ep.dns_names.iter().for_each(|n| r.unregister(n, ip));
        }
        for (peer, peer_ep) in peers.iter() {
            if let (Some(r), Ok(ip)) = (self.dns.get(peer), ep.ip_address.parse::<Ipv4Addr>()) {
                ep.dns_names.iter().for_each(|n| r.unregister(n, ip));
            }
            if let (Some(r), Ok(ip)) = (own, peer_ep.ip_address.parse::<Ipv4Addr>()) {
                peer_ep.dns_names.iter().for_each(|n| r.unregister(n, ip));
            }
        }
    }
}

/// The first `ethN` no endpoint of `settings` uses.
fn free_interface(settings: &NetworkSettings) -> String {
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|name| settings.networks.values().all(|e| &e.interface != name))
        .unwrap_or_else(|| "eth0".into())
}

fn find_in<'a>(
    records: &'a BTreeMap<String, NetworkRecord>,
    name_or_id: &str,
) -> Result<&'a NetworkRecord> {
    let not_found = || {
        CategorizedError::new(
            Category::NotFound,
            format!("network {name_or_id} not found"),
        )
    };
    if name_or_id.is_empty() {
        return Err(not_found());
    }
    if let Some(r) = records.get(name_or_id) {
        return Ok(r);
    }
    if let Some(r) = records.values().find(|r| r.name == name_or_id) {
        return Ok(r);
    }
    let mut matches = records.values().filter(|r| r.id.starts_with(name_or_id));
    match (matches.next(), matches.next()) {
        (Some(r), None) => Ok(r),
        (Some(_), Some(_)) => Err(CategorizedError::new(
            Category::InvalidParameter,
            format!("network {name_or_id} is ambiguous"),
        )),
        _ => Err(not_found()),
    }
}

fn endpoint_settings(
    record: &NetworkRecord,
    c: &ContainerNet<'_>,
    req: &EndpointRequest,
    ip: Ipv4Addr,
) -> EndpointSettings {
    let pool = record.ipam.first();
    let prefix = pool
        .and_then(|p| p.subnet.parse::<ipnet::Ipv4Net>().ok())
        .map_or(16, |n| n.prefix_len());
    let mac = berth_network::links::mac_for(ip);
    let mut aliases = Vec::new();
    let mut dns_names = Vec::new();
    if !record.is_default_bridge() {
        aliases.extend(req.aliases.iter().cloned());
        aliases.push(c.id[..12].to_owned());
        dns_names.push(c.name.to_owned());
        dns_names.extend(aliases.iter().cloned());
        if !c.hostname.is_empty() && c.hostname != &c.id[..12] {
            dns_names.push(c.hostname.to_owned());
        }
    }
    EndpointSettings {
        network_name: record.name.clone(),
        container_name: c.name.to_owned(),
        interface: String::new(),
        network_id: record.id.clone(),
        endpoint_id: berth_reference::generate_id(),
        gateway: pool.map(|p| p.gateway.clone()).unwrap_or_default(),
        ip_address: ip.to_string(),
        ip_prefix_len: prefix,
        mac_address: format_mac(mac),
        aliases: (!aliases.is_empty()).then_some(aliases),
        ipv4_requested: req.ipv4.map(|ip| ip.to_string()),
        dns_names,
    }
}

/// Lets the bridges' traffic through a Docker Engine's iptables `FORWARD` chain (see
/// [`berth_network::forward`]). A failure is logged, not fatal: berth's own rules are in place
/// and the host without Docker needs nothing here.
fn allow_forwarding(forward: Option<&IptablesForward>, bridges: &[String]) {
    let Some(forward) = forward else { return };
    match forward.allow(bridges) {
        Ok(Some(chain)) => tracing::info!(?bridges, ?chain, "accepted in iptables FORWARD"),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(?bridges, error = %e, "iptables FORWARD may drop these bridges' traffic")
        }
    }
}

/// The host end of a container's veth: `veth` and 9 hex digits of the endpoint id, within
/// the 13 characters the network crate allows for a host name (it appends `_c` while moving
/// the peer).
fn host_ifname(endpoint_id: &str) -> String {
    format!("veth{}", &endpoint_id[..endpoint_id.len().min(9)])
}

fn rules_of(r: &NetworkRecord) -> Option<NetworkRules> {
    if r.driver != "bridge" {
        return None;
    }
    Some(NetworkRules {
        key: r.id.clone(),
        bridge: r.bridge.clone(),
        subnet: r.ipam.first()?.subnet.parse().ok()?,
        internal: r.internal,
    })
}

fn port_rules(settings: &NetworkSettings) -> Vec<PortRule> {
    let Some(ip) = settings
        .primary()
        .and_then(|e| e.ip_address.parse::<Ipv4Addr>().ok())
    else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    for (key, bindings) in &settings.ports {
        let Some((port, proto)) = key.split_once('/') else {
            continue;
        };
        let (Ok(container_port), proto) = (
            port.parse::<u16>(),
            if proto == "udp" {
                Proto::Udp
            } else {
                Proto::Tcp
            },
        ) else {
            continue;
        };
        for b in bindings {
            let host_ip = b
                .host_ip
                .parse::<IpAddr>()
                .ok()
                .filter(|ip| !ip.is_unspecified());
            if let Ok(host_port) = b.host_port.parse() {
                rules.push(PortRule {
                    host_ip,
                    host_port,
                    container_ip: ip,
                    container_port,
                    proto,
                });
            }
        }
    }
    rules
}

/// The host's IPv4 routes, read with a short-lived runtime (automatic subnets avoid them).
/// Called from synchronous code that may itself run on the daemon's runtime.
fn host_routes_blocking() -> Vec<ipnet::Ipv4Net> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let netlink = Netlink::connect().ok()?;
                netlink.host_routes().await.ok()
            })
        })
        .join()
        .ok()
        .flatten()
        .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mac_addresses_parse_or_say_why_not() {
        assert_eq!(
            parse_mac("02:42:de:AD:be:ef").unwrap(),
            [0x02, 0x42, 0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(parse_mac("02-42-00-00-00-01").unwrap()[5], 1);
        for bad in [
            "",
            "02:42",
            "02:42:de:ad:be:ef:00",
            "2:42:de:ad:be:ef",
            "zz:42:de:ad:be:ef",
            "02:42:de:ad:be:+f",
        ] {
            let e = parse_mac(bad).unwrap_err();
            assert_eq!(e.message, format!("{bad} is not a valid mac address"));
        }
        assert_eq!(format_mac([2, 0x42, 0, 0, 0, 0xa]), "02:42:00:00:00:0a");
    }

    #[test]
    fn modes_name_their_network() {
        for (mode, net) in [
            ("", Some("bridge")),
            ("default", Some("bridge")),
            ("bridge", Some("bridge")),
            ("host", None),
            ("none", None),
            ("container:x", None),
            ("front", Some("front")),
        ] {
            assert_eq!(mode_network(mode), net, "{mode}");
        }
    }

    #[test]
    fn host_interface_names_fit_the_kernel_limit() {
        let name = host_ifname(&berth_reference::generate_id());
        assert!(name.len() <= 13 && name.starts_with("veth"), "{name}");
    }
}
