//! IPv4 address management: one pool (subnet, gateway, optional ip-range) per network, and the
//! addresses handed out from it.
//!
//! Pools are persisted before a change is reported as done (tmp → fsync → rename → fsync dir).
//! The addresses handed out are not: they live in memory, and the caller re-registers the
//! addresses its running containers hold (from their own records) after a restart — so
//! starting and stopping a container costs no file write here, and an address whose owner was
//! never recorded (the daemon died in between) is not leaked. Pools are checked for overlap
//! against each other; a pool chosen automatically also avoids the host's routes and docker0's
//! `172.17.0.0/16`, so berth co-exists with a Docker Engine.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_errdefs::{Category, HasCategory};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::persist::write_atomic;

/// Docker's own default bridge subnet; berth never picks it so both engines can run side by side.
pub const DOCKER0_SUBNET: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(172, 17, 0, 0), 16) {
    Ok(net) => net,
    Err(_) => panic!("172.17.0.0/16 is a valid prefix"),
};

/// An IPAM failure. Messages keep Docker's wording where Docker has one.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// A subnet or ip-range string is not a CIDR.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// A gateway or requested address is not an IPv4 address.
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    /// The requested subnet overlaps a pool another network already holds.
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap {
        /// The subnet that was asked for.
        subnet: Ipv4Net,
        /// The network that holds the overlapping pool.
        other: String,
    },
    /// The gateway is not inside the subnet.
    #[error("no matching subnet for gateway {0}")]
    GatewayOutsideSubnet(Ipv4Addr),
    /// The ip-range is not inside the subnet.
    #[error("no matching subnet for range {0}")]
    RangeOutsideSubnet(Ipv4Net),
    /// Every default pool overlaps a network or a host route.
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    NoDefaultPool,
    /// The network already has a pool.
    #[error("network {0} already has an address pool")]
    PoolExists(String),
    /// No pool is registered for the network.
    #[error("network {0} not found")]
    NoSuchPool(String),
    /// Every address of the pool (or its ip-range) is handed out.
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    Exhausted(String),
    /// The requested address is outside the pool's range.
    #[error("requested address {0} is out of range")]
    OutOfRange(Ipv4Addr),
    /// The requested address is already handed out (or is the gateway).
    #[error("Address already in use")]
    AddressInUse(Ipv4Addr),
    /// The state file could not be read or written.
    #[error("IPAM state {path}: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state file exists but is not valid.
    #[error("IPAM state {path} is corrupt: {source}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

impl HasCategory for IpamError {
    fn category(&self) -> Category {
        match self {
            IpamError::InvalidCidr(_)
            | IpamError::InvalidAddress(_)
            | IpamError::GatewayOutsideSubnet(_)
            | IpamError::RangeOutsideSubnet(_)
            | IpamError::OutOfRange(_) => Category::InvalidParameter,
            // moby answers overlaps and taken addresses with 403.
            IpamError::PoolOverlap { .. } | IpamError::AddressInUse(_) => Category::Forbidden,
            IpamError::PoolExists(_) => Category::Conflict,
            IpamError::NoSuchPool(_) => Category::NotFound,
            IpamError::NoDefaultPool | IpamError::Exhausted(_) => Category::Unavailable,
            IpamError::Io { .. } => Category::System,
            IpamError::Corrupt { .. } => Category::DataLoss,
        }
    }
}

/// What a network asks for; every field is the user's text, so parse errors name it.
#[derive(Debug, Clone, Default)]
pub struct PoolRequest {
    /// `--subnet`; `None` picks one from the default pools.
    pub subnet: Option<String>,
    /// `--gateway`; `None` takes the subnet's first address.
    pub gateway: Option<String>,
    /// `--ip-range`; addresses are handed out only from here.
    pub ip_range: Option<String>,
}

/// A range of subnets to pick from automatically: `base` cut into prefixes of length `size`
/// (Docker's `--default-address-pools base=…,size=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultPool {
    /// The range to carve.
    pub base: Ipv4Net,
    /// The prefix length of each subnet carved from it.
    pub size: u8,
}

/// The default pools: Docker's private ranges without docker0's `172.17.0.0/16`.
pub fn default_pools() -> Vec<DefaultPool> {
    let mut pools = Vec::new();
    for second in 18..=31u8 {
        pools.push(DefaultPool {
            base: net(Ipv4Addr::new(172, second, 0, 0), 16),
            size: 16,
        });
    }
    pools.push(DefaultPool {
        base: net(Ipv4Addr::new(192, 168, 0, 0), 16),
        size: 20,
    });
    pools
}

fn net(addr: Ipv4Addr, prefix: u8) -> Ipv4Net {
    Ipv4Net::new(addr, prefix).unwrap_or_default()
}

/// One network's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The network's subnet.
    pub subnet: Ipv4Net,
    /// The bridge's address; never handed to a container.
    pub gateway: Ipv4Addr,
    /// Where container addresses come from; the whole subnet when absent.
    pub ip_range: Option<Ipv4Net>,
    /// Addresses handed out (in memory only; see the module's documentation).
    #[serde(skip)]
    pub allocated: BTreeSet<Ipv4Addr>,
    /// The last address handed out: the next search starts after it, so a released address
    /// is not reused at once (a stale peer's ARP cache or conntrack entry would hit the new owner).
    #[serde(skip)]
    pub last: Option<Ipv4Addr>,
}

impl Pool {
    /// The first and last address a container may get.
    fn bounds(&self) -> (u32, u32) {
        let range = self.ip_range.unwrap_or(self.subnet);
        let (mut lo, mut hi) = (u32::from(range.network()), u32::from(range.broadcast()));
        // The subnet's network and broadcast addresses are never usable, even inside a range.
        lo = lo.max(u32::from(self.subnet.network()) + 1);
        hi = hi.min(u32::from(self.subnet.broadcast()).saturating_sub(1));
        (lo, hi)
    }

    fn is_free(&self, ip: Ipv4Addr) -> bool {
        ip != self.gateway && !self.allocated.contains(&ip)
    }

    /// The next free address after `last`, wrapping once; bounded by the range size.
    fn next_free(&self) -> Option<Ipv4Addr> {
        let (lo, hi) = self.bounds();
        if lo > hi {
            return None;
        }
        let span = u64::from(hi - lo) + 1;
        let start = match self.last.map(u32::from) {
            Some(last) if (lo..hi).contains(&last) => last + 1,
            _ => lo,
        };
        (0..span)
            .map(|i| lo + ((u64::from(start - lo) + i) % span) as u32)
            .map(Ipv4Addr::from)
            .find(|ip| self.is_free(*ip))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    pools: BTreeMap<String, Pool>,
}

/// The address manager for every network, backed by one state file.
#[derive(Debug)]
pub struct Ipam {
    path: PathBuf,
    state: State,
    defaults: Vec<DefaultPool>,
}

impl Ipam {
    /// Opens (or starts) the state at `path`, with [`default_pools`].
    pub fn open(path: &Path) -> Result<Ipam, IpamError> {
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| IpamError::Corrupt {
                path: path.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(IpamError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(Ipam {
            path: path.to_owned(),
            state,
            defaults: default_pools(),
        })
    }

    /// Replaces the pools automatic subnets are taken from.
    pub fn set_default_pools(&mut self, pools: Vec<DefaultPool>) {
        self.defaults = pools;
    }

    /// The pool of `network`, if it has one.
    pub fn pool(&self, network: &str) -> Option<&Pool> {
        self.state.pools.get(network)
    }

    /// Every network's pool, by network.
    pub fn pools(&self) -> impl Iterator<Item = (&str, &Pool)> {
        self.state.pools.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Creates the pool for `network`. An explicit subnet must not overlap another network's;
    /// an automatic one also avoids `host_routes` and docker0.
    pub fn create_pool(
        &mut self,
        network: &str,
        request: &PoolRequest,
        host_routes: &[Ipv4Net],
    ) -> Result<Pool, IpamError> {
        if self.state.pools.contains_key(network) {
            return Err(IpamError::PoolExists(network.to_owned()));
        }
        let subnet = match &request.subnet {
            Some(text) => {
                let subnet = parse_cidr(text)?;
                self.check_overlap(subnet)?;
                subnet
            }
            None => self.pick_default(host_routes)?,
        };
        let pool = build_pool(subnet, request)?;
        self.state.pools.insert(network.to_owned(), pool.clone());
        self.save()?;
        Ok(pool)
    }

    /// Forgets `network`'s pool and every address in it. Unknown networks are not an error.
    pub fn remove_pool(&mut self, network: &str) -> Result<(), IpamError> {
        if self.state.pools.remove(network).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// Hands out `requested`, or the next free address, from `network`'s pool.
    pub fn allocate(
        &mut self,
        network: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        let pool = self
            .state
            .pools
            .get_mut(network)
            .ok_or_else(|| IpamError::NoSuchPool(network.to_owned()))?;
        let ip = match requested {
            Some(ip) => check_requested(pool, ip)?,
            None => pool
                .next_free()
                .ok_or_else(|| IpamError::Exhausted(network.to_owned()))?,
        };
        pool.allocated.insert(ip);
        // Only automatic choices move the round-robin cursor; `--ip` is the user's business.
        if requested.is_none() {
            pool.last = Some(ip);
        }
        Ok(ip)
    }

    /// Returns `ip` to `network`'s pool. Releasing twice is not an error (crash recovery
    /// repeats releases).
    pub fn release(&mut self, network: &str, ip: Ipv4Addr) -> Result<(), IpamError> {
        if let Some(pool) = self.state.pools.get_mut(network) {
            pool.allocated.remove(&ip);
        }
        Ok(())
    }

    fn check_overlap(&self, subnet: Ipv4Net) -> Result<(), IpamError> {
        match self
            .state
            .pools
            .iter()
            .find(|(_, p)| overlaps(p.subnet, subnet))
        {
            Some((other, _)) => Err(IpamError::PoolOverlap {
                subnet,
                other: other.clone(),
            }),
            None => Ok(()),
        }
    }

    fn pick_default(&self, host_routes: &[Ipv4Net]) -> Result<Ipv4Net, IpamError> {
        let taken: Vec<Ipv4Net> = self
            .state
            .pools
            .values()
            .map(|p| p.subnet)
            .chain(host_routes.iter().copied().filter(|r| r.prefix_len() > 0))
            .chain([DOCKER0_SUBNET])
            .collect();
        self.defaults
            .iter()
            .filter_map(|d| d.base.subnets(d.size).ok())
            .flatten()
            .find(|candidate| !taken.iter().any(|t| overlaps(*t, *candidate)))
            .ok_or(IpamError::NoDefaultPool)
    }

    fn save(&self) -> Result<(), IpamError> {
        let bytes =
            serde_json::to_vec_pretty(&self.state).map_err(|source| IpamError::Corrupt {
                path: self.path.clone(),
                source,
            })?;
        write_atomic(&self.path, &bytes).map_err(|source| IpamError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// True when the two prefixes share at least one address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Parses `10.1.0.0/16`; host bits are cleared like Docker does (`10.1.2.3/16` → `10.1.0.0/16`).
pub fn parse_cidr(text: &str) -> Result<Ipv4Net, IpamError> {
    text.trim()
        .parse::<Ipv4Net>()
        .map(|n| n.trunc())
        .map_err(|_| IpamError::InvalidCidr(text.to_owned()))
}

fn parse_addr(text: &str) -> Result<Ipv4Addr, IpamError> {
    text.trim()
        .parse()
        .map_err(|_| IpamError::InvalidAddress(text.to_owned()))
}

fn build_pool(subnet: Ipv4Net, request: &PoolRequest) -> Result<Pool, IpamError> {
    if subnet.prefix_len() > 30 {
        // A /31 or /32 has no room for a gateway and a container.
        return Err(IpamError::InvalidCidr(subnet.to_string()));
    }
    let gateway = match &request.gateway {
        Some(text) => parse_addr(text)?,
        None => Ipv4Addr::from(u32::from(subnet.network()) + 1),
    };
    if !subnet.contains(&gateway) {
        return Err(IpamError::GatewayOutsideSubnet(gateway));
    }
    let ip_range = request.ip_range.as_deref().map(parse_cidr).transpose()?;
    if let Some(range) = ip_range
        && !subnet.contains(&range)
    {
        return Err(IpamError::RangeOutsideSubnet(range));
    }
    Ok(Pool {
        subnet,
        gateway,
        ip_range,
        allocated: BTreeSet::new(),
        last: None,
    })
}

fn check_requested(pool: &Pool, ip: Ipv4Addr) -> Result<Ipv4Addr, IpamError> {
    // Docker lets `--ip` sit anywhere in the subnet, even outside `--ip-range`.
    let usable =
        pool.subnet.contains(&ip) && ip != pool.subnet.network() && ip != pool.subnet.broadcast();
    if !usable {
        return Err(IpamError::OutOfRange(ip));
    }
    if !pool.is_free(ip) {
        return Err(IpamError::AddressInUse(ip));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(subnet: &str) -> PoolRequest {
        PoolRequest {
            subnet: Some(subnet.into()),
            ..Default::default()
        }
    }

    fn open(dir: &tempfile::TempDir) -> Ipam {
        Ipam::open(&dir.path().join("ipam.json")).unwrap()
    }

    #[test]
    fn allocations_are_not_repeated_and_only_pools_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = open(&dir);
        let pool = ipam.create_pool("n1", &req("10.77.0.0/24"), &[]).unwrap();
        assert_eq!(pool.gateway, Ipv4Addr::new(10, 77, 0, 1));
        let a = ipam.allocate("n1", None).unwrap();
        let b = ipam.allocate("n1", None).unwrap();
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 3))
        );
        assert!(matches!(
            ipam.allocate("n1", Some(a)),
            Err(IpamError::AddressInUse(_))
        ));
        ipam.release("n1", a).unwrap();
        ipam.release("n1", a).unwrap();
        // Released, so it can be asked for again — but the round-robin does not hand it out next.
        assert_eq!(
            ipam.allocate("n1", None).unwrap(),
            Ipv4Addr::new(10, 77, 0, 4)
        );
        assert_eq!(ipam.allocate("n1", Some(a)).unwrap(), a);
        let on_disk = std::fs::read_to_string(dir.path().join("ipam.json")).unwrap();
        drop(ipam);

        // Allocating wrote nothing: the file is what creating the pool left.
        assert!(!on_disk.contains("10.77.0.2"), "{on_disk}");
        let mut ipam = open(&dir);
        assert_eq!(ipam.pool("n1").unwrap().subnet, pool.subnet);
        assert!(ipam.pool("n1").unwrap().allocated.is_empty());
        // The owner re-registers what its running containers hold; then it is taken again.
        assert_eq!(ipam.allocate("n1", Some(b)).unwrap(), b);
        assert!(matches!(
            ipam.allocate("n1", Some(b)),
            Err(IpamError::AddressInUse(_))
        ));
        assert_ne!(ipam.allocate("n1", None).unwrap(), b);
    }

    #[test]
    fn overlapping_subnets_are_refused_with_dockers_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = open(&dir);
        ipam.create_pool("a", &req("10.10.0.0/16"), &[]).unwrap();
        for subnet in ["10.10.5.0/24", "10.0.0.0/8", "10.10.0.0/16"] {
            let err = ipam.create_pool("b", &req(subnet), &[]).unwrap_err();
            assert_eq!(
                err.to_string(),
                "Pool overlaps with other one on this address space"
            );
            assert_eq!(err.category(), Category::Forbidden);
        }
        ipam.create_pool("b", &req("10.11.0.0/16"), &[]).unwrap();
        assert!(matches!(
            ipam.create_pool("b", &req("10.12.0.0/16"), &[]),
            Err(IpamError::PoolExists(_))
        ));
    }

    #[test]
    fn bad_input_is_an_invalid_parameter() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = open(&dir);
        for (request, message) in [
            (req("10.0.0.0/33"), "invalid CIDR address: 10.0.0.0/33"),
            (req("banana"), "invalid CIDR address: banana"),
            (req("10.0.0.0/31"), "invalid CIDR address: 10.0.0.0/31"),
            (
                PoolRequest {
                    gateway: Some("10.9.0.1".into()),
                    ..req("10.8.0.0/16")
                },
                "no matching subnet for gateway 10.9.0.1",
            ),
            (
                PoolRequest {
                    ip_range: Some("10.9.0.0/24".into()),
                    ..req("10.8.0.0/16")
                },
                "no matching subnet for range 10.9.0.0/24",
            ),
        ] {
            let err = ipam.create_pool("x", &request, &[]).unwrap_err();
            assert_eq!(err.to_string(), message);
            assert_eq!(err.category(), Category::InvalidParameter);
        }
        assert_eq!(ipam.pools().count(), 0, "nothing half-created");
    }

    #[test]
    fn a_small_pool_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = open(&dir);
        ipam.create_pool("tiny", &req("10.5.0.0/29"), &[]).unwrap();
        // .0 network, .1 gateway, .7 broadcast: five addresses remain.
        let got: Vec<_> = (0..5)
            .map(|_| ipam.allocate("tiny", None).unwrap())
            .collect();
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 5, 0, 6)));
        let err = ipam.allocate("tiny", None).unwrap_err();
        assert!(matches!(err, IpamError::Exhausted(_)));
        assert_eq!(err.category(), Category::Unavailable);
        ipam.release("tiny", got[2]).unwrap();
        assert_eq!(ipam.allocate("tiny", None).unwrap(), got[2]);
    }

    #[test]
    fn ip_range_limits_automatic_addresses_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = open(&dir);
        let request = PoolRequest {
            ip_range: Some("10.6.1.0/30".into()),
            ..req("10.6.0.0/16")
        };
        ipam.create_pool("r", &request, &[]).unwrap();
        let got: Vec<_> = (0..4).map(|_| ipam.allocate("r", None).unwrap()).collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 6, 1, 0));
        assert!(ipam.allocate("r", None).is_err());
        assert!(ipam.allocate("r", Some(Ipv4Addr::new(10, 6, 9, 9))).is_ok());
        assert!(matches!(
            ipam.allocate("r", Some(Ipv4Addr::new(10, 7, 0, 1))),
            Err(IpamError::OutOfRange(_))
        ));
        assert!(matches!(
            ipam.allocate("r", Some(Ipv4Addr::new(10, 6, 0, 1))),
            Err(IpamError::AddressInUse(_))
        ));
    }

    #[test]
    fn default_pool_avoids_docker0_routes_and_other_networks() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = open(&dir);
        let routes = [
            net(Ipv4Addr::new(172, 18, 5, 0), 24),
            net(Ipv4Addr::UNSPECIFIED, 0),
        ];
        let first = ipam
            .create_pool("a", &PoolRequest::default(), &routes)
            .unwrap();
        assert_eq!(first.subnet, net(Ipv4Addr::new(172, 19, 0, 0), 16));
        let second = ipam
            .create_pool("b", &PoolRequest::default(), &routes)
            .unwrap();
        assert_eq!(second.subnet, net(Ipv4Addr::new(172, 20, 0, 0), 16));
        ipam.set_default_pools(vec![DefaultPool {
            base: DOCKER0_SUBNET,
            size: 16,
        }]);
        let err = ipam
            .create_pool("c", &PoolRequest::default(), &[])
            .unwrap_err();
        assert!(matches!(err, IpamError::NoDefaultPool));
    }

    #[test]
    fn a_corrupt_state_file_is_reported_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ipam.json"), b"{not json").unwrap();
        let err = Ipam::open(&dir.path().join("ipam.json")).unwrap_err();
        assert_eq!(err.category(), Category::DataLoss);
    }
}
