//! Bridges, veth pairs and container-side interface setup over rtnetlink.
//!
//! The container end of a veth is configured by a short-lived thread that enters the
//! container's network namespace and opens its own netlink socket there; the daemon's own
//! threads never change namespace. Host-side sysctls (IPv4 forwarding, `route_localnet`,
//! `accept_ra`) are written here too, because they belong to the links they tune.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use berth_errdefs::{Category, HasCategory};
use futures_util::TryStreamExt;
use ipnet::Ipv4Net;
use nix::sched::CloneFlags;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteType};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
/// The kernel's limit on interface names (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// A link-level failure.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The netlink socket could not be opened.
    #[error("cannot open netlink socket: {0}")]
    Socket(io::Error),
    /// The kernel refused a request.
    #[error("{what}: {source}")]
    Netlink {
        /// What berth was doing.
        what: String,
        /// The kernel's answer.
        source: rtnetlink::Error,
    },
    /// A named link does not exist.
    #[error("no such interface: {0}")]
    NoSuchLink(String),
    /// An interface name is empty, too long or has a forbidden character.
    #[error("invalid interface name {0:?}: 1 to 15 characters, no '/', ':' or whitespace")]
    InvalidName(String),
    /// The target network namespace could not be opened or entered.
    #[error("network namespace {path}: {source}")]
    Netns {
        /// The namespace file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A sysctl could not be written.
    #[error("sysctl {path}: {source}")]
    Sysctl {
        /// The /proc/sys file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl HasCategory for LinkError {
    fn category(&self) -> Category {
        match self {
            LinkError::InvalidName(_) => Category::InvalidParameter,
            LinkError::NoSuchLink(_) => Category::NotFound,
            _ => Category::System,
        }
    }
}

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let what = what.into();
    move |source| LinkError::Netlink { what, source }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// Checks an interface name against the kernel's rules.
pub fn check_ifname(name: &str) -> Result<(), LinkError> {
    let bad = |c: char| c == '/' || c == ':' || c.is_whitespace();
    if name.is_empty()
        || name.len() > MAX_IFNAME
        || name.contains(bad)
        || name == "."
        || name == ".."
    {
        return Err(LinkError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// A Linux bridge and the gateway address it carries.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Interface name (`berth0`).
    pub name: String,
    /// The gateway address with the subnet's prefix length (`172.18.0.1/16`).
    pub gateway: Ipv4Net,
    /// MTU; the kernel default when `None`.
    pub mtu: Option<u32>,
}

/// Where a container's network namespace is.
#[derive(Debug, Clone)]
pub enum Netns {
    /// The namespace of a running process.
    Pid(u32),
    /// A namespace file (`/run/netns/x`, `/proc/<pid>/ns/net`, a bind mount).
    Path(PathBuf),
    /// An open namespace descriptor of this process; the caller keeps it open until the call
    /// returns.
    Fd(RawFd),
}

impl Netns {
    /// The namespace file.
    pub fn path(&self) -> PathBuf {
        match self {
            Netns::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            Netns::Path(p) => p.clone(),
            // Reopening through /proc gives this call its own descriptor to the same namespace.
            Netns::Fd(fd) => PathBuf::from(format!("/proc/self/fd/{fd}")),
        }
    }

    fn open(&self) -> Result<File, LinkError> {
        let path = self.path();
        File::open(&path).map_err(|source| LinkError::Netns { path, source })
    }
}

/// A container's interface on a bridge.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The bridge to attach to.
    pub bridge: String,
    /// The host end's name (at most 13 characters: the temporary peer name adds two).
    pub host_ifname: String,
    /// The container's namespace.
    pub netns: Netns,
    /// The name inside the container (`eth0`).
    pub ifname: String,
    /// The container's address with the subnet's prefix length.
    pub address: Ipv4Net,
    /// The default route's gateway; no default route when `None` (`--internal` keeps one).
    pub gateway: Option<Ipv4Addr>,
    /// The MAC address; derived from the IPv4 address like Docker when `None`.
    pub mac: Option<[u8; 6]>,
    /// MTU; the kernel default when `None`.
    pub mtu: Option<u32>,
}

/// Docker's MAC scheme: `02:42` and the four bytes of the address, so a MAC never collides on
/// a bridge where addresses do not.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A netlink connection bound to the namespace it was opened in.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a connection; its reader runs as a task on the current tokio runtime.
    pub fn connect() -> Result<Netlink, LinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The index of interface `name`, or `None` when there is none.
    pub async fn link_index(&self, name: &str) -> Result<Option<u32>, LinkError> {
        let request = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match request.try_collect::<Vec<_>>().await {
            Ok(links) => Ok(links.first().map(|l| l.header.index)),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(netlink(format!("look up interface {name}"))(e)),
        }
    }

    async fn require_index(&self, name: &str) -> Result<u32, LinkError> {
        self.link_index(name)
            .await?
            .ok_or_else(|| LinkError::NoSuchLink(name.to_owned()))
    }

    /// Creates the bridge (or adopts an existing one of that name after a restart), gives it
    /// the gateway address and brings it up. Returns its index.
    pub async fn ensure_bridge(&self, cfg: &BridgeConfig) -> Result<u32, LinkError> {
        check_ifname(&cfg.name)?;
        let index = match self.link_index(&cfg.name).await? {
            Some(index) => index,
            None => self.add_bridge(cfg).await?,
        };
        // Neither a container nor anyone on the bridge may configure the host by router
        // advertisement (CVE-2020-13401).
        set_ipv6_conf(&cfg.name, "accept_ra", "0")?;
        // DNAT of 127.0.0.1:<port> to a container leaves 127.0.0.1 as the source; the kernel
        // drops such packets on the way out of the bridge unless this is set.
        write_sysctl(&format!("net/ipv4/conf/{}/route_localnet", cfg.name), "1")?;
        self.add_address(index, cfg.gateway).await?;
        self.set_up(index, &cfg.name).await?;
        Ok(index)
    }

    async fn add_bridge(&self, cfg: &BridgeConfig) -> Result<u32, LinkError> {
        let mut link = LinkBridge::new(&cfg.name);
        if let Some(mtu) = cfg.mtu {
            link = link.mtu(mtu);
        }
        match self.handle.link().add(link.build()).execute().await {
            Ok(()) => {}
            // Lost a race with another creator: the bridge is there, which is what we want.
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(netlink(format!("create bridge {}", cfg.name))(e)),
        }
        self.require_index(&cfg.name).await
    }

    async fn add_address(&self, index: u32, addr: Ipv4Net) -> Result<(), LinkError> {
        let request = self
            .handle
            .address()
            .add(index, addr.addr().into(), addr.prefix_len());
        match request.execute().await {
            Err(e) if errno(&e) != Some(EEXIST) => Err(netlink(format!("add address {addr}"))(e)),
            _ => Ok(()),
        }
    }

    async fn set_up(&self, index: u32, name: &str) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(netlink(format!("bring up {name}")))
    }

    /// Deletes interface `name` (for a veth, both ends). Returns false when it did not exist.
    pub async fn delete_link(&self, name: &str) -> Result<bool, LinkError> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            // Gone in between (the namespace holding the peer was destroyed): same outcome.
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(e) => Err(netlink(format!("delete {name}"))(e)),
        }
    }

    /// Creates the container's veth pair, attaches the host end to the bridge, moves the other
    /// end into the container's namespace and configures it there. On failure the pair is
    /// deleted again, so nothing is left half-configured.
    pub async fn attach(&self, ep: &Endpoint) -> Result<u32, LinkError> {
        check_ifname(&ep.ifname)?;
        if ep.host_ifname.len() > MAX_IFNAME - 2 {
            return Err(LinkError::InvalidName(ep.host_ifname.clone()));
        }
        check_ifname(&ep.host_ifname)?;
        let peer = format!("{}_c", ep.host_ifname);
        let pair = LinkVeth::new(&ep.host_ifname, &peer).build();
        self.handle
            .link()
            .add(pair)
            .execute()
            .await
            .map_err(netlink(format!(
                "create veth pair {}/{peer}",
                ep.host_ifname
            )))?;
        match self.wire_up(ep, &peer).await {
            Ok(index) => Ok(index),
            Err(e) => {
                let _ = self.delete_link(&ep.host_ifname).await;
                Err(e)
            }
        }
    }

    async fn wire_up(&self, ep: &Endpoint, peer: &str) -> Result<u32, LinkError> {
        let bridge = self.require_index(&ep.bridge).await?;
        let host = self.require_index(&ep.host_ifname).await?;
        set_ipv6_conf(&ep.host_ifname, "accept_ra", "0")?;
        let msg = LinkUnspec::new_with_index(host)
            .controller(bridge)
            .up()
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(netlink(format!(
                "attach {} to {}",
                ep.host_ifname, ep.bridge
            )))?;
        // Lets the bridge send a frame back out of the port it came in on, so a container
        // reaches its own published port through the host (the DNAT turns the packet around).
        // Netlink, not /sys/class/net: sysfs shows the namespace that mounted it, which is not
        // the daemon's when the daemon runs in a network namespace of its own.
        let msg = LinkBridgePort::new(host).hairpin(true).build();
        self.handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(netlink(format!("hairpin mode on {}", ep.host_ifname)))?;
        let ns = ep.netns.open()?;
        let peer_index = self.require_index(peer).await?;
        let msg = LinkUnspec::new_with_index(peer_index)
            .setns_by_fd(ns.as_raw_fd())
            .build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(netlink(format!(
                "move {peer} into {}",
                ep.netns.path().display()
            )))?;
        let inside = Inside {
            ep: ep.clone(),
            temp_name: peer.to_owned(),
        };
        in_netns(ns, ep.netns.path(), move |nl| async move {
            nl.configure_inside(&inside).await
        })
        .await?;
        Ok(host)
    }

    async fn configure_inside(&self, inside: &Inside) -> Result<(), LinkError> {
        let ep = &inside.ep;
        let index = self.require_index(&inside.temp_name).await?;
        let mac = ep.mac.unwrap_or_else(|| mac_for(ep.address.addr()));
        let mut msg = LinkUnspec::new_with_index(index)
            .name(ep.ifname.clone())
            .address(mac.to_vec());
        if let Some(mtu) = ep.mtu {
            msg = msg.mtu(mtu);
        }
        self.handle
            .link()
            .set(msg.build())
            .execute()
            .await
            .map_err(netlink(format!(
                "rename {} to {}",
                inside.temp_name, ep.ifname
            )))?;
        // Before the link comes up, so it never gets an IPv6 link-local address
        // (CVE-2024-32473: IPv6 on an interface where it was meant to be off).
        set_ipv6_conf(&ep.ifname, "disable_ipv6", "1")?;
        self.add_address(index, ep.address).await?;
        self.set_up(index, &ep.ifname).await?;
        let lo = self.require_index("lo").await?;
        self.set_up(lo, "lo").await?;
        if let Some(gateway) = ep.gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(index)
                .build();
            self.handle
                .route()
                .add(route)
                .execute()
                .await
                .map_err(netlink(format!("add default route via {gateway}")))?;
        }
        Ok(())
    }

    /// The destinations of the host's IPv4 routes in the main table (the default route
    /// excluded), for choosing subnets that do not shadow them.
    pub async fn host_routes(&self) -> Result<Vec<Ipv4Net>, LinkError> {
        let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes: Vec<_> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(netlink("list routes"))?;
        let mut out = Vec::new();
        for route in routes {
            let in_main = route.header.table == RouteHeader::RT_TABLE_MAIN
                || route.attributes.contains(&RouteAttribute::Table(u32::from(
                    RouteHeader::RT_TABLE_MAIN,
                )));
            let prefix = route.header.destination_prefix_length;
            if !in_main || prefix == 0 || route.header.kind != RouteType::Unicast {
                continue;
            }
            let dest = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            if let Some(net) = dest.and_then(|ip| Ipv4Net::new(ip, prefix).ok()) {
                out.push(net);
            }
        }
        Ok(out)
    }
}

struct Inside {
    ep: Endpoint,
    temp_name: String,
}

/// Runs `work` with a netlink connection opened inside the namespace `ns`, on a fresh thread
/// with its own small runtime. Only that thread enters the namespace, and it ends afterwards.
pub async fn in_netns<T, F, Fut>(ns: File, path: PathBuf, work: F) -> Result<T, LinkError>
where
    T: Send + 'static,
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, LinkError>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let _ = tx.send(run_in_netns(ns, thread_path, work));
        })
        .map_err(|source| LinkError::Netns {
            path: path.clone(),
            source,
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(LinkError::Netns {
            path,
            source: io::Error::other("namespace thread panicked"),
        })
    })
}

fn run_in_netns<T, F, Fut>(ns: File, path: PathBuf, work: F) -> Result<T, LinkError>
where
    F: FnOnce(Netlink) -> Fut,
    Fut: Future<Output = Result<T, LinkError>>,
{
    let netns_err = |source: io::Error| LinkError::Netns {
        path: path.clone(),
        source,
    };
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| netns_err(e.into()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(netns_err)?;
    runtime.block_on(async move { work(Netlink::connect()?).await })
}

/// Turns on IPv4 forwarding for the host, which routing to and from bridges needs.
pub fn enable_ip_forwarding() -> Result<(), LinkError> {
    write_sysctl("net/ipv4/ip_forward", "1")
}

/// Writes `/proc/sys/<key>` (in the namespace of the calling thread).
pub fn write_sysctl(key: &str, value: &str) -> Result<(), LinkError> {
    let path = Path::new("/proc/sys").join(key);
    std::fs::write(&path, value).map_err(|source| LinkError::Sysctl { path, source })
}

/// Sets an IPv6 per-interface knob; a kernel without IPv6 has nothing to set.
fn set_ipv6_conf(ifname: &str, knob: &str, value: &str) -> Result<(), LinkError> {
    let key = format!("net/ipv6/conf/{ifname}/{knob}");
    if !Path::new("/proc/sys").join(&key).exists() {
        return Ok(());
    }
    write_sysctl(&key, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_kernel_rules() {
        for ok in ["berth0", "eth0", "a", "x23456789012345"] {
            assert!(check_ifname(ok).is_ok(), "{ok}");
        }
        for bad in ["", "x234567890123456", "a/b", "a:b", "a b", ".", ".."] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mac_follows_the_address() {
        assert_eq!(
            mac_for(Ipv4Addr::new(172, 18, 0, 2)),
            [2, 0x42, 172, 18, 0, 2]
        );
    }
}
