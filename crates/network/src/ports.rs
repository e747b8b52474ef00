//! `-p`/`--publish` specs and host port reservations.
//!
//! Parsing follows Docker's rules and messages (`invalid hostPort: 70000`, …). A reservation
//! binds the host port and keeps the socket open for as long as the mapping lives: that is the
//! conflict check (another program holding the port makes it fail) and it stops anyone else
//! taking the port while the DNAT rule points it at a container.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use berth_errdefs::{Category, HasCategory};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, getsockname, socket};

/// A published-port failure.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The spec has no container port (`-p 8080:`).
    #[error("No port specified: {0}<empty>")]
    NoPort(String),
    /// The container port is not a port or range of ports 1–65535.
    #[error("invalid containerPort: {0}")]
    InvalidContainerPort(String),
    /// The host port is not a port or range of ports 0–65535.
    #[error("invalid hostPort: {0}")]
    InvalidHostPort(String),
    /// Host and container ranges differ in length.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    RangeMismatch {
        /// The container part.
        container: String,
        /// The host part.
        host: String,
    },
    /// The protocol is not `tcp` or `udp`.
    #[error("invalid proto: {0}")]
    InvalidProto(String),
    /// The host IP is not an IP address.
    #[error("invalid IP address: {0}")]
    InvalidIp(String),
    /// The host port is held by another program or mapping.
    #[error(
        "Bind for {addr} failed: port is already allocated ({proto}): {source}",
        addr = SocketAddr::new(*.ip, *.port)
    )]
    InUse {
        /// The host address.
        ip: IpAddr,
        /// The host port.
        port: u16,
        /// The protocol.
        proto: Proto,
        /// What the kernel said.
        source: std::io::Error,
    },
}

impl HasCategory for PortError {
    fn category(&self) -> Category {
        match self {
            // Docker reports a taken port at start as a server error (500); a conflict says more.
            PortError::InUse { .. } => Category::Conflict,
            _ => Category::InvalidParameter,
        }
    }
}

/// A transport protocol a port can be published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`, as nft and Docker spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container port published on the host, as parsed from a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// The host address; `None` means every address.
    pub host_ip: Option<IpAddr>,
    /// The first host port to try; 0 means any free (ephemeral) port.
    pub host_port_start: u16,
    /// The last host port to try (equal to the start unless a single container port was given
    /// a host range to pick from).
    pub host_port_end: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// The protocol.
    pub proto: Proto,
}

/// Parses one `-p` value: `[ip:][hostPort:]ctrPort[/proto]`, where ports may be ranges
/// (`8000-8010:80-90`) and an IPv6 host address is bracketed (`[::1]:80:80`).
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortSpec>, PortError> {
    let (rest, proto) = split_proto(spec)?;
    let (ip, host, container) = split_parts(rest);
    let host_ip = parse_host_ip(ip)?;
    if container.is_empty() {
        return Err(PortError::NoPort(spec.to_owned()));
    }
    let (c_start, c_end) = parse_range(container, 1)
        .ok_or_else(|| PortError::InvalidContainerPort(container.to_owned()))?;
    let (h_start, h_end) = match host {
        "" => (0, 0),
        _ => parse_range(host, 0).ok_or_else(|| PortError::InvalidHostPort(host.to_owned()))?,
    };
    let ranged_container = c_end != c_start;
    if !host.is_empty() && ranged_container && h_end - h_start != c_end - c_start {
        return Err(PortError::RangeMismatch {
            container: container.into(),
            host: host.into(),
        });
    }
    let specs = (c_start..=c_end).map(|c| {
        let offset = c - c_start;
        let (start, end) = match (host.is_empty(), ranged_container) {
            (true, _) => (0, 0),
            // A host range beside one container port is a pool to pick one free port from.
            (false, false) => (h_start, h_end),
            (false, true) => (h_start + offset, h_start + offset),
        };
        PortSpec {
            host_ip,
            host_port_start: start,
            host_port_end: end,
            container_port: c,
            proto,
        }
    });
    Ok(specs.collect())
}

fn split_proto(spec: &str) -> Result<(&str, Proto), PortError> {
    let (rest, proto) = match spec.rsplit_once('/') {
        // Docker reads `80/` as `80/tcp`.
        Some((rest, "")) => (rest, "tcp"),
        Some((rest, proto)) => (rest, proto),
        None => (spec, "tcp"),
    };
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(PortError::InvalidProto(proto.to_owned())),
    };
    Ok((rest, proto))
}

/// Splits `ip:host:container` as Docker does: the last two colons separate the ports, so an
/// IPv6 address (bracketed or not) keeps its own colons.
fn split_parts(rest: &str) -> (&str, &str, &str) {
    let Some((front, container)) = rest.rsplit_once(':') else {
        return ("", "", rest);
    };
    match front.rsplit_once(':') {
        Some((ip, host)) => (ip, host, container),
        None => ("", front, container),
    }
}

fn parse_host_ip(text: &str) -> Result<Option<IpAddr>, PortError> {
    if text.is_empty() {
        return Ok(None);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let ip: IpAddr = bare
        .parse()
        .map_err(|_| PortError::InvalidIp(text.to_owned()))?;
    // 0.0.0.0 and :: mean "every address", like no address at all.
    Ok(Some(ip).filter(|ip| !ip.is_unspecified()))
}

/// `80` or `80-90`, every port at least `min`; digits only (no `+`, spaces or hex).
fn parse_range(text: &str, min: u16) -> Option<(u16, u16)> {
    let (start, end) = text.split_once('-').unwrap_or((text, text));
    let (start, end) = (parse_port(start, min)?, parse_port(end, min)?);
    (start <= end).then_some((start, end))
}

fn parse_port(text: &str, min: u16) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p >= min)
}

/// A host port held for a published mapping; dropping it frees the port.
///
/// A TCP port is bound but not listening: nobody else can take it, and a connection that
/// somehow misses the DNAT rule is refused instead of hanging in a backlog nobody accepts.
#[derive(Debug)]
pub struct PortReservation {
    /// The address the port is held on (`0.0.0.0` for every address).
    pub ip: IpAddr,
    /// The host port.
    pub port: u16,
    /// The protocol.
    pub proto: Proto,
    _socket: OwnedFd,
}

/// Reserves a host port for `spec`: its fixed port, the first free one of its host range, or
/// an ephemeral one chosen by the kernel.
pub fn reserve(spec: &PortSpec) -> Result<PortReservation, PortError> {
    let ip = spec.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let mut last_err = None;
    // The range is at most 65536 ports; each try is one bind system call.
    for port in spec.host_port_start..=spec.host_port_end {
        match bind(ip, port, spec.proto) {
            Ok(reservation) => return Ok(reservation),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| PortError::InvalidHostPort(String::new())))
}

fn bind(ip: IpAddr, port: u16, proto: Proto) -> Result<PortReservation, PortError> {
    let in_use = |e: nix::Error| PortError::InUse {
        ip,
        port,
        proto,
        source: e.into(),
    };
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, sock_type(proto), SockFlag::SOCK_CLOEXEC, None).map_err(in_use)?;
    let addr = SockaddrStorage::from(SocketAddr::new(ip, port));
    nix::sys::socket::bind(fd.as_raw_fd(), &addr).map_err(in_use)?;
    let bound: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(in_use)?;
    let port = bound
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()))
        .unwrap_or(port);
    Ok(PortReservation {
        ip,
        port,
        proto,
        _socket: fd,
    })
}

fn sock_type(proto: Proto) -> SockType {
    match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn one(host_ip: Option<&str>, hs: u16, he: u16, c: u16, proto: Proto) -> PortSpec {
        PortSpec {
            host_ip: host_ip.map(|s| s.parse().unwrap()),
            host_port_start: hs,
            host_port_end: he,
            container_port: c,
            proto,
        }
    }

    #[test]
    fn valid_specs() {
        use Proto::*;
        let cases: &[(&str, Vec<PortSpec>)] = &[
            ("80", vec![one(None, 0, 0, 80, Tcp)]),
            ("8080:80", vec![one(None, 8080, 8080, 80, Tcp)]),
            ("8080:80/udp", vec![one(None, 8080, 8080, 80, Udp)]),
            ("8080:80/TCP", vec![one(None, 8080, 8080, 80, Tcp)]),
            (
                "127.0.0.1:8080:80",
                vec![one(Some("127.0.0.1"), 8080, 8080, 80, Tcp)],
            ),
            ("127.0.0.1::80", vec![one(Some("127.0.0.1"), 0, 0, 80, Tcp)]),
            ("0.0.0.0:8080:80", vec![one(None, 8080, 8080, 80, Tcp)]),
            ("[::1]:8080:80", vec![one(Some("::1"), 8080, 8080, 80, Tcp)]),
            ("[::1]::80", vec![one(Some("::1"), 0, 0, 80, Tcp)]),
            ("0:80", vec![one(None, 0, 0, 80, Tcp)]),
            ("65535:65535", vec![one(None, 65535, 65535, 65535, Tcp)]),
            (
                "8000-8001:80-81",
                vec![
                    one(None, 8000, 8000, 80, Tcp),
                    one(None, 8001, 8001, 81, Tcp),
                ],
            ),
            ("8000-8010:80", vec![one(None, 8000, 8010, 80, Tcp)]),
            (
                "8000-8010:80-90/udp",
                (0..=10)
                    .map(|i| one(None, 8000 + i, 8000 + i, 80 + i, Udp))
                    .collect(),
            ),
            (
                "80-81",
                vec![one(None, 0, 0, 80, Tcp), one(None, 0, 0, 81, Tcp)],
            ),
            ("80/", vec![one(None, 0, 0, 80, Tcp)]),
            ("::1:8080:80", vec![one(Some("::1"), 8080, 8080, 80, Tcp)]),
        ];
        for (spec, want) in cases {
            assert_eq!(&parse_port_spec(spec).unwrap(), want, "{spec}");
        }
    }

    #[test]
    fn hostile_specs_get_dockers_messages() {
        let cases = [
            ("0", "invalid containerPort: 0"),
            ("70000", "invalid containerPort: 70000"),
            ("70000:80", "invalid hostPort: 70000"),
            ("8080:0", "invalid containerPort: 0"),
            ("-1:80", "invalid hostPort: -1"),
            ("+80:80", "invalid hostPort: +80"),
            ("8080:", "No port specified: 8080:<empty>"),
            ("", "No port specified: <empty>"),
            ("80/sctpx", "invalid proto: sctpx"),
            (
                "8000-8010:80-85",
                "invalid ranges specified for container and host Ports: 80-85 and 8000-8010",
            ),
            ("90-80", "invalid containerPort: 90-80"),
            ("1.2.3:80:80", "invalid IP address: 1.2.3"),
            ("a:b:c:80", "invalid IP address: a:b"),
            ("[::1:80:80", "invalid IP address: [::1"),
            ("80/tcp/udp", "invalid containerPort: 80/tcp"),
            (
                "999999999999999999999:80",
                "invalid hostPort: 999999999999999999999",
            ),
            ("80 :80", "invalid hostPort: 80 "),
            ("８０", "invalid containerPort: ８０"),
        ];
        for (spec, message) in cases {
            let err = parse_port_spec(spec).unwrap_err();
            assert_eq!(err.to_string(), message, "{spec:?}");
            assert_eq!(err.category(), Category::InvalidParameter);
        }
    }

    #[test]
    fn a_taken_port_is_a_clear_conflict_and_ephemeral_ports_are_free() {
        let spec = one(Some("127.0.0.1"), 0, 0, 80, Proto::Tcp);
        let first = reserve(&spec).unwrap();
        assert_ne!(first.port, 0);
        let taken = one(Some("127.0.0.1"), first.port, first.port, 80, Proto::Tcp);
        let err = reserve(&taken).unwrap_err();
        assert_eq!(err.category(), Category::Conflict);
        assert!(
            err.to_string().contains("port is already allocated"),
            "{err}"
        );
        // A host range skips the taken port.
        let range = one(
            Some("127.0.0.1"),
            first.port,
            first.port.saturating_add(20),
            80,
            Proto::Tcp,
        );
        let second = reserve(&range).unwrap();
        assert_ne!(second.port, first.port);
        // Bound, not listening: a stray connection is refused rather than left hanging.
        assert!(std::net::TcpStream::connect(("127.0.0.1", first.port)).is_err());
        assert!(std::net::TcpListener::bind(("127.0.0.1", first.port)).is_err());
        drop(first);
        reserve(&taken).unwrap();
    }

    #[test]
    fn udp_reservations_hold_udp_ports() {
        let r = reserve(&one(Some("127.0.0.1"), 0, 0, 53, Proto::Udp)).unwrap();
        assert!(std::net::UdpSocket::bind(("127.0.0.1", r.port)).is_err());
    }
}
