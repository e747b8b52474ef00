//! The mechanisms against the real kernel, as root: bridges, veth pairs and namespaces this test
//! creates under unique names, traffic only on loopback and between its own namespaces, and
//! an nftables table of its own. Every object is removed by a guard on every path.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use berth_network::dns::{self, DnsConfig, Resolver};
use berth_network::firewall::{DesiredState, Firewall, NetworkRules, PortRule};
use berth_network::ipam::{Ipam, PoolRequest};
use berth_network::links::{BridgeConfig, Endpoint, Netlink, Netns};
use berth_network::ports::{self, PortSpec, Proto};
use berth_testsupport::{is_root, unique_name};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};
use ipnet::Ipv4Net;
use nix::fcntl::{Flock, FlockArg};

const IO_TIMEOUT: Duration = Duration::from_secs(2);

fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
        return true;
    }
    exclusive();
    false
}

/// The subnets below are fixed, so two runs of this binary at once (two developers' test
/// suites on one machine) would route over each other. The first test of a run takes a
/// machine-wide lock that the process keeps until it exits; tests inside one run share it.
fn exclusive() {
    static LOCK: OnceLock<Flock<File>> = OnceLock::new();
    LOCK.get_or_init(|| {
        let path = "/run/berth-network-kernel-tests.lock";
        let mut file = File::create(path).unwrap();
        // Bounded: ten minutes of another run is a stuck run, not a slow one.
        for _ in 0..1200 {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return lock,
                Err((f, _)) => file = f,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("{path} held by another test run for ten minutes");
    });
}

/// An interface or namespace name unique to this run, short enough for the kernel (and for a
/// veth peer suffix).
fn name(prefix: &str) -> String {
    let n = unique_name(prefix);
    assert!(n.len() <= 13, "{n} too long for an interface name");
    n
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd).args(args).output().unwrap()
}

/// A namespace made with `ip netns add`, deleted on drop.
struct NsGuard(String);

impl NsGuard {
    fn new() -> NsGuard {
        let n = name("bn");
        let out = run("ip", &["netns", "add", &n]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        NsGuard(n)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

/// A host link deleted on drop (a bridge, or a veth's host end).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if Path::new("/sys/class/net").join(&self.0).exists() {
            let _ = run("ip", &["link", "del", &self.0]);
        }
    }
}

/// An nftables table deleted on drop.
struct TableGuard(Firewall);

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = self.0.delete();
    }
}

fn firewall() -> TableGuard {
    TableGuard(Firewall::new(&unique_name("berth-test")).unwrap())
}

/// Runs `f` on a thread inside the namespace at `ns`.
fn in_ns<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(ns).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// A bridge with a subnet, and containers (namespaces) attached to it.
struct Net {
    bridge: LinkGuard,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    members: Vec<(NsGuard, LinkGuard, Ipv4Addr)>,
}

async fn network(nl: &Netlink, ipam: &mut Ipam, subnet: &str, members: usize) -> Net {
    let bridge = name("bb");
    let guard = LinkGuard(bridge.clone());
    let request = PoolRequest {
        subnet: Some(subnet.into()),
        ..Default::default()
    };
    let pool = ipam.create_pool(&bridge, &request, &[]).unwrap();
    let gateway = Ipv4Net::new(pool.gateway, pool.subnet.prefix_len()).unwrap();
    nl.ensure_bridge(&BridgeConfig {
        name: bridge.clone(),
        gateway,
        mtu: None,
    })
    .await
    .unwrap();
    let mut net = Net {
        bridge: guard,
        subnet: pool.subnet,
        gateway: pool.gateway,
        members: vec![],
    };
    for i in 0..members {
        let ns = NsGuard::new();
        // Every other member by descriptor, the rest by path: both ways in use.
        let ns_file = File::open(ns.path()).unwrap();
        let target = match i % 2 {
            0 => Netns::Path(ns.path()),
            _ => Netns::Fd(ns_file.as_raw_fd()),
        };
        let host = name("bv");
        let veth = LinkGuard(host.clone());
        let ip = ipam.allocate(&bridge, None).unwrap();
        let ep = Endpoint {
            bridge: bridge.clone(),
            host_ifname: host,
            netns: target,
            ifname: "eth0".into(),
            address: Ipv4Net::new(ip, pool.subnet.prefix_len()).unwrap(),
            gateway: Some(pool.gateway),
            mac: None,
            mtu: None,
        };
        nl.attach(&ep).await.unwrap();
        drop(ns_file);
        net.members.push((ns, veth, ip));
    }
    net
}

fn ping(ns: &NsGuard, ip: Ipv4Addr) -> bool {
    let ip = ip.to_string();
    let args = ["netns", "exec", &ns.0, "busybox", "ping", "-c1", "-W1", &ip];
    run("ip", &args).status.success()
}

/// A TCP listener inside `ns` that answers each connection with `reply`, at most `count`
/// connections, then stops.
fn serve_in_ns(ns: &Path, port: u16, reply: &'static [u8], count: usize) {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let (_, listener) = dns::bind_in_netns(ns, addr).unwrap();
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { continue };
            let _ = s.write_all(reply);
        }
    });
}

fn fetch(addr: SocketAddr) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).ok()?;
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    Some(buf)
}

#[tokio::test]
async fn two_namespaces_on_a_bridge_reach_each_other_and_leave_nothing() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(&dir.path().join("ipam.json")).unwrap();
    let nl = Netlink::connect().unwrap();
    let net = network(&nl, &mut ipam, "10.231.1.0/24", 2).await;
    let (a, b) = (&net.members[0], &net.members[1]);
    assert_eq!(
        (a.2, b.2),
        (Ipv4Addr::new(10, 231, 1, 2), Ipv4Addr::new(10, 231, 1, 3))
    );
    assert!(ping(&a.0, b.2), "container to container");
    assert!(ping(&b.0, net.gateway), "container to gateway");

    // Inside: eth0 with the address and Docker's MAC, lo up, default route, IPv6 off.
    let out = run(
        "ip",
        &["netns", "exec", &a.0.0, "ip", "-o", "addr", "show", "eth0"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.231.1.2/24"));
    let out = run(
        "ip",
        &["netns", "exec", &a.0.0, "ip", "link", "show", "eth0"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("02:42:0a:e7:01:02"));
    let out = run(
        "ip",
        &["netns", "exec", &a.0.0, "ip", "route", "show", "default"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("via 10.231.1.1 dev eth0"));
    let disabled = in_ns(&a.0.path(), || {
        std::fs::read_to_string("/proc/sys/net/ipv6/conf/eth0/disable_ipv6").ok()
    });
    if let Some(value) = disabled {
        assert_eq!(value.trim(), "1");
    }
    let ra = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{}/accept_ra", a.1.0));
    if let Ok(ra) = ra {
        assert_eq!(
            ra.trim(),
            "0",
            "CVE-2020-13401: no router advertisements on the host side"
        );
    }

    // Removal: deleting the host ends and the bridge leaves no link of ours.
    for (_, veth, _) in &net.members {
        assert!(nl.delete_link(&veth.0).await.unwrap());
        assert_eq!(nl.link_index(&veth.0).await.unwrap(), None);
    }
    assert!(nl.delete_link(&net.bridge.0).await.unwrap());
    assert!(
        !nl.delete_link(&net.bridge.0).await.unwrap(),
        "deleting twice is fine"
    );
    let out = run("ip", &["netns", "exec", &a.0.0, "ip", "-o", "link"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("eth0"),
        "peer went with its pair"
    );
}

#[tokio::test]
async fn attach_failure_leaves_no_veth_behind() {
    if skip() {
        return;
    }
    let nl = Netlink::connect().unwrap();
    let host = name("bv");
    let _guard = LinkGuard(host.clone());
    let ep = Endpoint {
        bridge: name("nobr"),
        host_ifname: host.clone(),
        netns: Netns::Path("/nonexistent/netns".into()),
        ifname: "eth0".into(),
        address: "10.231.9.2/24".parse().unwrap(),
        gateway: None,
        mac: None,
        mtu: None,
    };
    assert!(nl.attach(&ep).await.is_err());
    assert_eq!(nl.link_index(&host).await.unwrap(), None);
}

#[tokio::test]
async fn host_routes_include_the_bridge_subnet() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(&dir.path().join("ipam.json")).unwrap();
    let nl = Netlink::connect().unwrap();
    let net = network(&nl, &mut ipam, "10.231.2.0/24", 0).await;
    let routes = nl.host_routes().await.unwrap();
    assert!(routes.contains(&net.subnet), "{routes:?}");
    // An automatic pool steers clear of it.
    let mut auto = Ipam::open(&dir.path().join("auto.json")).unwrap();
    auto.set_default_pools(vec![berth_network::ipam::DefaultPool {
        base: "10.231.0.0/21".parse().unwrap(),
        size: 24,
    }]);
    let pool = auto
        .create_pool("auto", &PoolRequest::default(), &routes)
        .unwrap();
    assert!(!berth_network::ipam::overlaps(pool.subnet, net.subnet));
}

#[tokio::test]
async fn published_port_reaches_a_container_from_loopback_until_removed() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(&dir.path().join("ipam.json")).unwrap();
    let nl = Netlink::connect().unwrap();
    let net = network(&nl, &mut ipam, "10.231.3.0/24", 2).await;
    let (ns, _, ip) = &net.members[0];
    serve_in_ns(&ns.path(), 8080, b"hello from the container", 8);

    let fw = firewall();
    let rules = NetworkRules {
        key: net.bridge.0.clone(),
        bridge: net.bridge.0.clone(),
        subnet: net.subnet,
        internal: false,
    };
    fw.0.add_network(&rules).unwrap();
    // Two ports: one on every address, one on 127.0.0.1 only; each host port held for the
    // mapping's lifetime.
    let any = ports::reserve(&spec(None)).unwrap();
    let lo = ports::reserve(&spec(Some(Ipv4Addr::LOCALHOST))).unwrap();
    let mapping = |host_ip: Option<Ipv4Addr>, host_port| PortRule {
        host_ip: host_ip.map(IpAddr::V4),
        host_port,
        container_ip: *ip,
        container_port: 8080,
        proto: Proto::Tcp,
    };
    let published = vec![
        mapping(None, any.port),
        mapping(Some(Ipv4Addr::LOCALHOST), lo.port),
    ];
    fw.0.publish("ctr1", &published).unwrap();
    fw.0.publish("ctr1", &published).unwrap(); // replacing is idempotent
    assert_eq!(
        fw.0.rule_owners()
            .unwrap()
            .iter()
            .filter(|c| *c == "ctr:ctr1")
            .count(),
        2
    );

    let via_any = SocketAddr::from((Ipv4Addr::LOCALHOST, any.port));
    let via_lo = SocketAddr::from((Ipv4Addr::LOCALHOST, lo.port));
    assert_eq!(
        fetch(via_any).as_deref(),
        Some(&b"hello from the container"[..])
    );
    assert_eq!(
        fetch(via_lo).as_deref(),
        Some(&b"hello from the container"[..])
    );
    // Hairpin: a sibling on the same bridge reaches the published port through the host.
    let via_gateway = SocketAddr::from((net.gateway, any.port));
    let sibling = net.members[1].0.path();
    let got = in_ns(&sibling, move || fetch(via_gateway));
    assert_eq!(got.as_deref(), Some(&b"hello from the container"[..]));

    // Crash recovery: someone flushes the table; reconcile puts it back.
    assert!(
        run("nft", &["flush", "table", "ip", fw.0.table()])
            .status
            .success()
    );
    assert_eq!(fetch(via_lo), None, "flushed: the port is held, not served");
    let desired = DesiredState {
        networks: vec![rules.clone()],
        ports: vec![("ctr1".into(), published)],
    };
    fw.0.reconcile(&desired).unwrap();
    fw.0.reconcile(&desired).unwrap();
    assert_eq!(
        fw.0.rule_owners()
            .unwrap()
            .iter()
            .filter(|c| *c == "ctr:ctr1")
            .count(),
        2
    );
    assert_eq!(
        fetch(via_lo).as_deref(),
        Some(&b"hello from the container"[..])
    );

    // Removing the container's ports removes exactly its rules.
    fw.0.unpublish("ctr1").unwrap();
    fw.0.unpublish("ctr1").unwrap();
    let owners = fw.0.rule_owners().unwrap();
    assert!(!owners.iter().any(|c| c.starts_with("ctr:")), "{owners:?}");
    assert!(owners.iter().any(|c| c.starts_with("net:")), "{owners:?}");
    assert_eq!(fetch(via_any), None);

    fw.0.remove_network(&rules.key).unwrap();
    assert!(
        !fw.0
            .rule_owners()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("net:"))
    );
    fw.0.delete().unwrap();
    assert!(!fw.0.exists().unwrap());
    let out = run("nft", &["list", "table", "ip", fw.0.table()]);
    assert!(!out.status.success(), "table gone");
}

fn spec(host_ip: Option<Ipv4Addr>) -> PortSpec {
    PortSpec {
        host_ip: host_ip.map(IpAddr::V4),
        host_port_start: 0,
        host_port_end: 0,
        container_port: 8080,
        proto: Proto::Tcp,
    }
}

/// CVE-2025-54410: two networks stay isolated, also after the rules were flushed and rebuilt.
/// An `--internal` network has no way out either.
#[tokio::test]
async fn bridges_are_isolated_and_internal_networks_have_no_way_out() {
    if skip() {
        return;
    }
    berth_network::links::enable_ip_forwarding().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(&dir.path().join("ipam.json")).unwrap();
    let nl = Netlink::connect().unwrap();
    let a = network(&nl, &mut ipam, "10.231.4.0/24", 1).await;
    let b = network(&nl, &mut ipam, "10.231.5.0/24", 1).await;
    let target = SocketAddr::from((b.members[0].2, 8081));
    serve_in_ns(&b.members[0].0.path(), 8081, b"b", 16);
    let from_a = |ns: &Path| in_ns(ns, move || fetch(target).is_some());
    let a_ns = a.members[0].0.path();
    assert!(from_a(&a_ns), "routed through the host before any rule");

    let fw = firewall();
    let rules = |net: &Net, internal| NetworkRules {
        key: net.bridge.0.clone(),
        bridge: net.bridge.0.clone(),
        subnet: net.subnet,
        internal,
    };
    fw.0.add_network(&rules(&a, false)).unwrap();
    fw.0.add_network(&rules(&b, false)).unwrap();
    assert!(!from_a(&a_ns), "isolated");
    assert!(
        run("nft", &["flush", "table", "ip", fw.0.table()])
            .status
            .success()
    );
    assert!(from_a(&a_ns), "the flush really removed the isolation");
    let desired = DesiredState {
        networks: vec![rules(&a, false), rules(&b, false)],
        ports: vec![],
    };
    fw.0.reconcile(&desired).unwrap();
    assert!(!from_a(&a_ns), "isolated again after reconcile");

    // Internal: with B unmanaged (no rule of B's blocks it), A still cannot leave its bridge.
    fw.0.remove_network(&b.bridge.0).unwrap();
    assert!(from_a(&a_ns), "B unmanaged: A gets out");
    fw.0.add_network(&rules(&a, true)).unwrap();
    assert!(!from_a(&a_ns), "internal: no way out");
}

/// A fake upstream resolver on loopback that answers every A query with 192.0.2.99 and counts
/// what it received; it stops after `limit` queries or when the socket times out.
fn fake_upstream(limit: usize) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..limit {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let request = Message::from_vec(&buf[..n]).unwrap();
            let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
            reply.add_queries(request.queries.iter().cloned());
            let qname = request.queries[0].name().clone();
            reply.add_answer(Record::from_rdata(
                qname,
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 99))),
            ));
            let _ = socket.send_to(&reply.to_vec().unwrap(), peer);
        }
    });
    (addr, seen)
}

fn dns_query(server: SocketAddr, name: &str) -> (ResponseCode, Vec<Ipv4Addr>) {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    socket.send_to(&m.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(reply.metadata.id, m.metadata.id);
    let ips = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    (reply.metadata.response_code, ips)
}

async fn serve(
    resolver: std::sync::Arc<Resolver>,
    addr: SocketAddr,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (udp, _tcp) = dns::bind_here(addr).unwrap();
    let udp = tokio::net::UdpSocket::from_std(udp).unwrap();
    let local = udp.local_addr().unwrap();
    (local, tokio::spawn(dns::serve_udp(udp, resolver)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_names_forwards_the_rest_and_internal_never_forwards() {
    use std::sync::atomic::Ordering;
    let (upstream, seen) = fake_upstream(16);
    let config = DnsConfig {
        upstreams: vec![upstream],
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let open = Resolver::new(config.clone());
    open.register("web", Ipv4Addr::new(10, 231, 6, 2));
    let (addr, task) = serve(open, "127.0.0.1:0".parse().unwrap()).await;
    let got = tokio::task::spawn_blocking(move || {
        (dns_query(addr, "web"), dns_query(addr, "example.org"))
    })
    .await
    .unwrap();
    assert_eq!(
        got.0,
        (ResponseCode::NoError, vec![Ipv4Addr::new(10, 231, 6, 2)])
    );
    assert_eq!(
        got.1,
        (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 99)])
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "only the unknown name went upstream"
    );
    task.abort();

    // CVE-2024-29018: an internal network's resolver never sends anything upstream.
    let internal = Resolver::new(DnsConfig {
        internal: true,
        ..config
    });
    internal.register("db", Ipv4Addr::new(10, 231, 6, 3));
    let (addr, task) = serve(internal, "127.0.0.1:0".parse().unwrap()).await;
    let got = tokio::task::spawn_blocking(move || {
        (dns_query(addr, "db"), dns_query(addr, "example.org"))
    })
    .await
    .unwrap();
    assert_eq!(
        got.0,
        (ResponseCode::NoError, vec![Ipv4Addr::new(10, 231, 6, 3)])
    );
    assert_eq!(got.1.0, ResponseCode::ServFail);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "nothing reached the upstream"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_serves_on_127_0_0_11_inside_a_namespace() {
    use std::sync::atomic::Ordering;
    if skip() {
        return;
    }
    let ns = NsGuard::new();
    assert!(
        run(
            "ip",
            &["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]
        )
        .status
        .success()
    );
    let (upstream, seen) = fake_upstream(4);
    let config = DnsConfig {
        upstreams: vec![upstream],
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let resolver = Resolver::new(config);
    resolver.register("peer", Ipv4Addr::new(10, 231, 7, 9));
    let addr = SocketAddr::from((dns::RESOLVER_ADDR, 53));
    let (udp, _tcp) = dns::bind_in_netns(&ns.path(), addr).unwrap();
    let task = tokio::spawn(dns::serve_udp(
        tokio::net::UdpSocket::from_std(udp).unwrap(),
        resolver,
    ));
    let path = ns.path();
    let got = tokio::task::spawn_blocking(move || {
        in_ns(&path, move || {
            (dns_query(addr, "peer"), dns_query(addr, "example.org"))
        })
    })
    .await
    .unwrap();
    assert_eq!(
        got.0,
        (ResponseCode::NoError, vec![Ipv4Addr::new(10, 231, 7, 9)])
    );
    // Relayed from the daemon's namespace to an upstream on the host's loopback.
    assert_eq!(
        got.1,
        (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 99)])
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    task.abort();
}

/// A host on the "LAN": its own namespace behind a veth whose host end has an address, with
/// its default route through the host (so it could route to a bridge subnet).
struct Lan {
    ns: NsGuard,
    _link: LinkGuard,
    host_addr: Ipv4Addr,
}

fn lan(prefix: &str) -> Lan {
    let ns = NsGuard::new();
    let host = name("bl");
    let link = LinkGuard(host.clone());
    let (host_addr, lan_addr) = (format!("{prefix}.1"), format!("{prefix}.2"));
    let steps: Vec<Vec<String>> = vec![
        vec![
            "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns.0,
        ],
        vec!["addr", "add", &format!("{host_addr}/30"), "dev", &host],
        vec!["link", "set", &host, "up"],
        vec![
            "-n",
            &ns.0,
            "addr",
            "add",
            &format!("{lan_addr}/30"),
            "dev",
            "eth0",
        ],
        vec!["-n", &ns.0, "link", "set", "eth0", "up"],
        vec!["-n", &ns.0, "link", "set", "lo", "up"],
        vec!["-n", &ns.0, "route", "add", "default", "via", &host_addr],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(str::to_owned).collect())
    .collect();
    for args in steps {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run("ip", &args);
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Lan {
        ns,
        _link: link,
        host_addr: host_addr.parse().unwrap(),
    }
}

/// CVE-2025-54388: a port published only on 127.0.0.1 must not be reachable from another host,
/// neither through the host's address nor by routing straight to the container — also after
/// the rules were flushed and reconciled.
#[tokio::test]
async fn loopback_only_ports_are_not_reachable_from_the_lan() {
    if skip() {
        return;
    }
    berth_network::links::enable_ip_forwarding().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(&dir.path().join("ipam.json")).unwrap();
    let nl = Netlink::connect().unwrap();
    let net = network(&nl, &mut ipam, "10.231.10.0/24", 1).await;
    let (ns, _, ip) = &net.members[0];
    serve_in_ns(&ns.path(), 8080, b"secret", 16);
    let lan = lan("10.231.11");
    let direct = SocketAddr::from((*ip, 8080));
    let from_lan = |addr: SocketAddr| in_ns(&lan.ns.path(), move || fetch(addr).is_some());
    assert!(
        from_lan(direct),
        "without rules the host routes the LAN to the container"
    );

    let fw = firewall();
    let rules = NetworkRules {
        key: net.bridge.0.clone(),
        bridge: net.bridge.0.clone(),
        subnet: net.subnet,
        internal: false,
    };
    let held = ports::reserve(&spec(Some(Ipv4Addr::LOCALHOST))).unwrap();
    let published = vec![PortRule {
        host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        host_port: held.port,
        container_ip: *ip,
        container_port: 8080,
        proto: Proto::Tcp,
    }];
    let desired = DesiredState {
        networks: vec![rules.clone()],
        ports: vec![("ctr".into(), published.clone())],
    };
    fw.0.add_network(&rules).unwrap();
    fw.0.publish("ctr", &published).unwrap();
    let via_host = SocketAddr::from((lan.host_addr, held.port));
    for round in ["applied", "reconciled"] {
        assert!(
            fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, held.port))).is_some(),
            "{round}"
        );
        assert!(
            !from_lan(direct),
            "{round}: LAN reached the container directly"
        );
        assert!(
            !from_lan(via_host),
            "{round}: LAN reached a 127.0.0.1-only port"
        );
        assert!(
            run("nft", &["flush", "table", "ip", fw.0.table()])
                .status
                .success()
        );
        fw.0.reconcile(&desired).unwrap();
    }
}

/// A listener inside `ns` that tells each client the address it saw it come from.
fn echo_peer_in_ns(ns: &Path, port: u16, count: usize) {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let (_, listener) = dns::bind_in_netns(ns, addr).unwrap();
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { continue };
            let peer = s
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let _ = s.write_all(peer.as_bytes());
        }
    });
}

/// Outbound NAT: a container reaches a host beyond the bridge under the host's address; an
/// `--internal` network reaches nothing.
#[tokio::test]
async fn outbound_traffic_is_masqueraded_unless_internal() {
    if skip() {
        return;
    }
    berth_network::links::enable_ip_forwarding().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(&dir.path().join("ipam.json")).unwrap();
    let nl = Netlink::connect().unwrap();
    let net = network(&nl, &mut ipam, "10.231.12.0/24", 1).await;
    let lan = lan("10.231.13");
    echo_peer_in_ns(&lan.ns.path(), 9000, 8);
    let target = SocketAddr::from((Ipv4Addr::new(10, 231, 13, 2), 9000));
    let container = net.members[0].0.path();
    let seen_as = || {
        in_ns(&container, move || {
            fetch(target).map(|b| String::from_utf8(b).unwrap())
        })
    };

    let fw = firewall();
    let mut rules = NetworkRules {
        key: net.bridge.0.clone(),
        bridge: net.bridge.0.clone(),
        subnet: net.subnet,
        internal: false,
    };
    fw.0.add_network(&rules).unwrap();
    assert_eq!(seen_as(), Some(lan.host_addr.to_string()), "masqueraded");
    rules.internal = true;
    fw.0.add_network(&rules).unwrap();
    assert_eq!(seen_as(), None, "internal: no way out");
    let owners = fw.0.rule_owners().unwrap();
    assert!(
        owners
            .iter()
            .all(|c| c == "table" || c == &format!("net:{}", rules.key))
    );
}

/// Throughput through a published port (DNAT) and through the userland proxy, 1 GiB each over
/// loopback into a namespace. A measurement, not a check: `cargo test -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn published_port_throughput() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut ipam = Ipam::open(&dir.path().join("ipam.json")).unwrap();
    let nl = Netlink::connect().unwrap();
    let net = network(&nl, &mut ipam, "10.231.14.0/24", 1).await;
    let (ns, _, ip) = &net.members[0];
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9100));
    let (_, sink) = dns::bind_in_netns(&ns.path(), addr).unwrap();
    sink.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        for stream in sink.incoming().take(2) {
            let Ok(mut s) = stream else { continue };
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        }
    });
    let fw = firewall();
    let rules = NetworkRules {
        key: net.bridge.0.clone(),
        bridge: net.bridge.0.clone(),
        subnet: net.subnet,
        internal: false,
    };
    fw.0.add_network(&rules).unwrap();
    let held = ports::reserve(&spec(Some(Ipv4Addr::LOCALHOST))).unwrap();
    let rule = PortRule {
        host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        host_port: held.port,
        container_ip: *ip,
        container_port: 9100,
        proto: Proto::Tcp,
    };
    fw.0.publish("bench", &[rule]).unwrap();
    let dnat = SocketAddr::from((Ipv4Addr::LOCALHOST, held.port));
    let rate = tokio::task::spawn_blocking(move || push_gib(dnat))
        .await
        .unwrap();
    eprintln!("DNAT: {rate:.0} MiB/s");

    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let proxy = tokio::spawn(berth_network::proxy::proxy_tcp(
        front,
        SocketAddr::from((*ip, 9100)),
    ));
    let rate = tokio::task::spawn_blocking(move || push_gib(front_addr))
        .await
        .unwrap();
    eprintln!("userland proxy: {rate:.0} MiB/s");
    proxy.abort();
}

fn push_gib(addr: SocketAddr) -> f64 {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let start = std::time::Instant::now();
    for _ in 0..1024 {
        s.write_all(&chunk).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    1024.0 / start.elapsed().as_secs_f64()
}
