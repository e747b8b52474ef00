//! The embedded DNS resolver every container on a user network sees at 127.0.0.11.
//!
//! It answers A queries for the names and aliases registered on its network, and relays every
//! other query verbatim to the host's resolvers (from `/etc/resolv.conf`), with a timeout. The
//! relay runs from the daemon's own namespace, so host-local resolvers (127.0.0.53) work. A
//! resolver for an `--internal` network never relays anything (CVE-2024-29018: an internal
//! network's DNS was a way out).
//!
//! The wire format is hickory-proto's; the serving loop is ours. To serve inside a container,
//! [`bind_in_netns`] creates the sockets from a short-lived thread in the container's
//! namespace; sockets stay in the namespace they were created in, so the loop itself runs on
//! the daemon's runtime.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth_errdefs::{Category, HasCategory};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// The address containers use for the embedded resolver.
pub const RESOLVER_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Docker answers container names with this TTL.
const TTL: u32 = 600;
/// The largest UDP message we read; EDNS clients rarely ask for more.
const MAX_UDP: usize = 4096;
/// How long a TCP client may take to send its query.
const TCP_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolver failure.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A socket could not be created or bound.
    #[error("embedded DNS on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The namespace to serve in could not be entered.
    #[error("embedded DNS: network namespace {path}: {source}")]
    Netns {
        /// The namespace file.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

impl HasCategory for DnsError {
    fn category(&self) -> Category {
        Category::System
    }
}

/// How a network's resolver behaves.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// `--internal`: never relay to upstream resolvers.
    pub internal: bool,
    /// Where unknown names are relayed to, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// How long to wait for each upstream.
    pub timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            internal: false,
            upstreams: Vec::new(),
            timeout: Duration::from_secs(3),
        }
    }
}

/// The `nameserver` lines of a resolv.conf, as socket addresses on port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // `fe80::1%eth0` carries a zone; the address part is what we can use.
            let addr = words.next()?.split('%').next()?;
            addr.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The host's resolvers from `/etc/resolv.conf` (none when it cannot be read).
pub fn host_upstreams() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .map(|t| parse_resolv_conf(&t))
        .unwrap_or_default()
}

/// What a container's `/etc/resolv.conf` should say.
#[derive(Debug, Clone, Default)]
pub struct ResolvConfRequest {
    /// Use the embedded resolver (user-defined networks): `nameserver 127.0.0.11`.
    pub embedded: bool,
    /// `--dns`: replaces the host's nameservers (relayed through the embedded resolver when
    /// `embedded`).
    pub dns: Vec<IpAddr>,
    /// `--dns-search`: replaces the host's search domains.
    pub search: Vec<String>,
    /// `--dns-option`: replaces the host's options.
    pub options: Vec<String>,
}

/// Builds a container's resolv.conf from the host's and the container's settings.
///
/// With the embedded resolver the only nameserver is 127.0.0.11 (the host's servers are where
/// it relays to). Without it, the host's nameservers are copied except loopback ones, which a
/// container cannot reach; Docker then falls back to public resolvers, berth writes none and
/// leaves the choice to `--dns`, since it never sends traffic anywhere the user did not name.
pub fn container_resolv_conf(host: &str, request: &ResolvConfRequest) -> String {
    let mut search = request.search.clone();
    let mut options = request.options.clone();
    let mut servers: Vec<IpAddr> = request.dns.clone();
    let host_servers: Vec<IpAddr> = parse_resolv_conf(host).iter().map(SocketAddr::ip).collect();
    if servers.is_empty() && !request.embedded {
        servers = host_servers
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect();
    }
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search" | "domain") if request.search.is_empty() => {
                search.extend(words.map(str::to_owned))
            }
            Some("options") if request.options.is_empty() => {
                options.extend(words.map(str::to_owned))
            }
            _ => {}
        }
    }
    let mut out = String::new();
    if request.embedded {
        out.push_str(&format!("nameserver {RESOLVER_ADDR}\n"));
    } else {
        for ip in &servers {
            out.push_str(&format!("nameserver {ip}\n"));
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if request.embedded {
        // Docker writes ndots:0 here: a bare container name is asked as given first, instead
        // of going upstream once per search domain before the embedded resolver is asked.
        options.retain(|o| !o.starts_with("ndots:"));
        options.insert(0, "ndots:0".to_owned());
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The upstreams an embedded resolver relays to: `--dns` when given, else the host's.
pub fn upstreams_for(dns: &[IpAddr], host: &str) -> Vec<SocketAddr> {
    if dns.is_empty() {
        parse_resolv_conf(host)
    } else {
        dns.iter().map(|ip| SocketAddr::new(*ip, 53)).collect()
    }
}

/// One network's names and how to answer everything else.
#[derive(Debug)]
pub struct Resolver {
    config: DnsConfig,
    names: RwLock<BTreeMap<String, Vec<Ipv4Addr>>>,
}

impl Resolver {
    /// A resolver with no names yet.
    pub fn new(config: DnsConfig) -> Arc<Resolver> {
        Arc::new(Resolver {
            config,
            names: RwLock::new(BTreeMap::new()),
        })
    }

    /// Makes `name` (a container name, alias or service name) resolve to `ip`, alongside
    /// addresses it already has (a service name can have many).
    pub fn register(&self, name: &str, ip: Ipv4Addr) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        let ips = names.entry(normalize(name)).or_default();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }

    /// Removes `ip` from `name`; the name disappears with its last address.
    pub fn unregister(&self, name: &str, ip: Ipv4Addr) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        let key = normalize(name);
        if let Some(ips) = names.get_mut(&key) {
            ips.retain(|i| *i != ip);
            if ips.is_empty() {
                names.remove(&key);
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        names.get(&normalize(name)).cloned()
    }

    /// The registered names of `ip`, for reverse lookups.
    fn names_of(&self, ip: Ipv4Addr) -> Vec<String> {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .filter(|(_, ips)| ips.contains(&ip))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Answers one DNS message. `None` means "send nothing" (not a query, or unparseable).
    pub async fn handle(&self, query: &[u8]) -> Option<Vec<u8>> {
        let request = Message::from_vec(query).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        if let Some(answer) = self.answer_locally(&request) {
            return answer.to_vec().ok();
        }
        if self.config.internal {
            return error_reply(&request, ResponseCode::ServFail);
        }
        match relay(query, request.metadata.id, &self.config).await {
            Some(reply) => Some(reply),
            None => error_reply(&request, ResponseCode::ServFail),
        }
    }

    /// A reply from the registered names, or `None` when the question is not ours.
    fn answer_locally(&self, request: &Message) -> Option<Message> {
        if request.metadata.op_code != OpCode::Query || request.queries.len() != 1 {
            return None;
        }
        let query = &request.queries[0];
        let answers = match query.query_type() {
            RecordType::PTR => self.ptr_answers(query.name())?,
            kind => {
                let ips = self.lookup(&query.name().to_ascii())?;
                // AAAA and other types for a known name get an empty answer, not a relay: the
                // name is ours, and the upstream must not learn it (nor answer it differently).
                let wanted = matches!(kind, RecordType::A | RecordType::ANY);
                let ips = ips.into_iter().filter(|_| wanted);
                ips.map(|ip| a_record(query.name(), ip)).collect()
            }
        };
        let mut reply = Message::response(request.metadata.id, OpCode::Query);
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.authoritative = true;
        reply.add_query(query.clone());
        reply.add_answers(answers);
        Some(reply)
    }

    /// PTR records for `d.c.b.a.in-addr.arpa.` when a.b.c.d is a registered address.
    fn ptr_answers(&self, qname: &Name) -> Option<Vec<Record>> {
        let ip = parse_reverse_name(&qname.to_ascii())?;
        let names = self.names_of(ip);
        if names.is_empty() {
            return None;
        }
        let records = names
            .iter()
            .filter_map(|n| Name::from_ascii(format!("{n}.")).ok())
            .map(|target| Record::from_rdata(qname.clone(), TTL, RData::PTR(PTR(target))))
            .collect();
        Some(records)
    }
}

/// `4.3.2.1.in-addr.arpa.` → 1.2.3.4.
fn parse_reverse_name(name: &str) -> Option<Ipv4Addr> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let rest = lower.strip_suffix(".in-addr.arpa")?;
    let mut octets: Vec<u8> = rest
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    if octets.len() != 4 {
        return None;
    }
    octets.reverse();
    Some(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn a_record(name: &Name, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name.clone(), TTL, RData::A(A(ip)))
}

fn error_reply(request: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut reply = Message::error_msg(request.metadata.id, request.metadata.op_code, code);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.add_queries(request.queries.iter().cloned());
    reply.to_vec().ok()
}

/// Relays `query` to each upstream in turn until one answers in time.
async fn relay(query: &[u8], id: u16, config: &DnsConfig) -> Option<Vec<u8>> {
    for upstream in &config.upstreams {
        let attempt = tokio::time::timeout(config.timeout, relay_one(query, id, *upstream));
        if let Ok(Ok(reply)) = attempt.await {
            return Some(reply);
        }
    }
    None
}

async fn relay_one(query: &[u8], id: u16, upstream: SocketAddr) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    // connect() makes the kernel drop datagrams from anyone but the upstream.
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP];
    // Bounded by the caller's timeout; a stray reply with the wrong id is skipped.
    loop {
        let n = socket.recv(&mut buf).await?;
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// Serves `resolver` on a UDP socket until the task is dropped.
pub async fn serve_udp(socket: UdpSocket, resolver: Arc<Resolver>) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            // ICMP errors from a client that went away surface here; pause instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let query = buf[..n].to_vec();
        let (socket, resolver) = (socket.clone(), resolver.clone());
        // Each query in its own task: one slow upstream must not stall local answers.
        tokio::spawn(async move {
            if let Some(reply) = resolver.handle(&query).await {
                let _ = socket.send_to(&reply, peer).await;
            }
        });
    }
}

/// Serves `resolver` on a TCP listener (length-prefixed messages) until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, resolver: Arc<Resolver>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let resolver = resolver.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(TCP_READ_TIMEOUT * 4, serve_tcp_conn(stream, resolver)).await;
        });
    }
}

async fn serve_tcp_conn(mut stream: TcpStream, resolver: Arc<Resolver>) -> io::Result<()> {
    // One query per connection is what resolvers send to a stub; bounded by the caller's timeout.
    let mut len = [0u8; 2];
    tokio::time::timeout(TCP_READ_TIMEOUT, stream.read_exact(&mut len)).await??;
    let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tokio::time::timeout(TCP_READ_TIMEOUT, stream.read_exact(&mut query)).await??;
    if let Some(reply) = resolver.handle(&query).await {
        let Ok(len) = u16::try_from(reply.len()) else {
            return Ok(());
        };
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(&reply).await?;
    }
    Ok(())
}

/// Creates a UDP socket and a TCP listener on `addr` inside the network namespace at
/// `netns`, from a short-lived thread. The sockets stay in that namespace; hand them to
/// [`serve_udp`] and [`serve_tcp`] on any runtime (after `from_std`).
pub fn bind_in_netns(
    netns: &Path,
    addr: SocketAddr,
) -> Result<(std::net::UdpSocket, std::net::TcpListener), DnsError> {
    let ns_err = |source| DnsError::Netns {
        path: netns.display().to_string(),
        source,
    };
    let ns = File::open(netns).map_err(ns_err)?;
    let thread = std::thread::Builder::new()
        .name("berth-dns-bind".into())
        .spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| (true, io::Error::from(e)))?;
            bind_here(addr).map_err(|e| (false, e))
        });
    let joined = thread.map_err(ns_err)?.join();
    match joined {
        Ok(Ok(sockets)) => Ok(sockets),
        Ok(Err((true, source))) => Err(ns_err(source)),
        Ok(Err((false, source))) => Err(DnsError::Bind { addr, source }),
        Err(_) => Err(ns_err(io::Error::other("bind thread panicked"))),
    }
}

/// Creates the non-blocking sockets tokio's `from_std` needs, in the caller's namespace.
pub fn bind_here(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let udp = std::net::UdpSocket::bind(addr)?;
    udp.set_nonblocking(true)?;
    let tcp = std::net::TcpListener::bind(addr)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hickory_proto::op::Query;

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        m.to_vec().unwrap()
    }

    fn answers(reply: &[u8]) -> (ResponseCode, Vec<Ipv4Addr>) {
        let m = Message::from_vec(reply).unwrap();
        let ips = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        (m.metadata.response_code, ips)
    }

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# comment\nnameserver 10.0.0.2\nsearch example\nnameserver fe80::1%eth0\nnameserver bogus\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn registered_names_answer_case_insensitively_and_go_away() {
        let r = Resolver::new(DnsConfig {
            internal: true,
            ..Default::default()
        });
        r.register("web", Ipv4Addr::new(10, 0, 0, 2));
        r.register("svc", Ipv4Addr::new(10, 0, 0, 3));
        r.register("svc", Ipv4Addr::new(10, 0, 0, 4));
        let (code, ips) = answers(&r.handle(&query("WEB.", RecordType::A)).await.unwrap());
        assert_eq!(
            (code, ips),
            (ResponseCode::NoError, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        let (_, ips) = answers(&r.handle(&query("svc", RecordType::A)).await.unwrap());
        assert_eq!(ips.len(), 2);
        let (code, ips) = answers(&r.handle(&query("web", RecordType::AAAA)).await.unwrap());
        assert_eq!((code, ips.len()), (ResponseCode::NoError, 0));
        r.unregister("web", Ipv4Addr::new(10, 0, 0, 2));
        let (code, _) = answers(&r.handle(&query("web", RecordType::A)).await.unwrap());
        assert_eq!(code, ResponseCode::ServFail);
    }

    #[tokio::test]
    async fn tcp_queries_are_length_prefixed() {
        let r = Resolver::new(DnsConfig {
            internal: true,
            ..Default::default()
        });
        r.register("web", Ipv4Addr::new(10, 0, 0, 2));
        let (_, tcp) = bind_here("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = tcp.local_addr().unwrap();
        let task = tokio::spawn(serve_tcp(TcpListener::from_std(tcp).unwrap(), r));
        let mut s = TcpStream::connect(addr).await.unwrap();
        let q = query("web", RecordType::A);
        s.write_all(&u16::try_from(q.len()).unwrap().to_be_bytes())
            .await
            .unwrap();
        s.write_all(&q).await.unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut reply).await.unwrap();
        assert_eq!(answers(&reply).1, vec![Ipv4Addr::new(10, 0, 0, 2)]);
        task.abort();
    }

    #[tokio::test]
    async fn reverse_lookups_name_registered_addresses() {
        let r = Resolver::new(DnsConfig {
            internal: true,
            ..Default::default()
        });
        r.register("web", Ipv4Addr::new(10, 0, 0, 2));
        let reply = r
            .handle(&query("2.0.0.10.in-addr.arpa.", RecordType::PTR))
            .await
            .unwrap();
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert!(matches!(&m.answers[0].data, RData::PTR(p) if p.0.to_ascii() == "web."));
        let reply = r
            .handle(&query("3.0.0.10.in-addr.arpa.", RecordType::PTR))
            .await
            .unwrap();
        assert_eq!(
            answers(&reply).0,
            ResponseCode::ServFail,
            "unknown, and internal"
        );
        assert_eq!(
            parse_reverse_name("1.2.3.4.IN-ADDR.ARPA."),
            Some(Ipv4Addr::new(4, 3, 2, 1))
        );
        assert_eq!(parse_reverse_name("1.2.3.in-addr.arpa."), None);
        assert_eq!(parse_reverse_name("1.2.3.400.in-addr.arpa."), None);
    }

    #[test]
    fn container_resolv_conf_follows_docker() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 ndots:2\n";
        let default_bridge = container_resolv_conf(host, &ResolvConfRequest::default());
        assert_eq!(
            default_bridge,
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0 ndots:2\n"
        );
        let user = container_resolv_conf(
            host,
            &ResolvConfRequest {
                embedded: true,
                ..Default::default()
            },
        );
        assert_eq!(
            user,
            "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:0 edns0\n"
        );
        let custom = ResolvConfRequest {
            dns: vec!["10.9.9.9".parse().unwrap()],
            search: vec!["a.example".into()],
            options: vec!["rotate".into()],
            embedded: false,
        };
        assert_eq!(
            container_resolv_conf(host, &custom),
            "nameserver 10.9.9.9\nsearch a.example\noptions rotate\n"
        );
        let only_loopback =
            container_resolv_conf("nameserver 127.0.0.53\n", &ResolvConfRequest::default());
        assert_eq!(only_loopback, "", "no public fallback");
        assert_eq!(upstreams_for(&[], host).len(), 2);
        assert_eq!(
            upstreams_for(&custom.dns, host),
            vec!["10.9.9.9:53".parse().unwrap()]
        );
    }

    #[tokio::test]
    async fn garbage_gets_no_reply() {
        let r = Resolver::new(DnsConfig::default());
        assert!(r.handle(b"\x00\x01garbage").await.is_none());
        assert!(r.handle(&[]).await.is_none());
    }
}
