//! Networking through the real docker CLI: the default bridge, published ports, user-defined
//! networks with the embedded DNS, isolation between networks, connect/disconnect, restart
//! survival, and that nothing is left behind. All traffic stays on this machine: loopback and
//! the namespaces of containers these tests create.

mod daemon_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use daemon_support::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A daemon with a busybox image; every container is removed at the end, then the daemon's
/// bridges and table (by [`Daemon`]'s drop).
struct Env {
    daemon: Daemon,
}

impl Env {
    fn new() -> Env {
        let dir = daemon_support::busybox_dir();
        Env {
            daemon: Daemon::start_in(dir, &[]),
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.daemon.docker(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}{}\ndaemon log tail:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            tail(&self.daemon.log())
        );
        text(&out.stdout)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {args:?} should have failed: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    fn inspect(&self, what: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, what]).trim().to_owned()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
        let nets = self
            .daemon
            .docker(&["network", "ls", "-q", "--filter", "type=custom"]);
        for id in text(&nets.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["network", "rm", id]);
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The host's interfaces whose name starts with `prefix`.
fn links_named(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// An HTTP GET to 127.0.0.1:`port`, retried for a few seconds while the server starts.
fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if !body.is_empty() => return body,
            _ if Instant::now() > deadline => panic!("no answer on 127.0.0.1:{port}: {attempt:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A detached busybox httpd serving `body` at /index.html on container port 80.
fn httpd(env: &Env, extra: &[&str], body: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    env.ok(&args).trim().to_owned()
}

#[test]
fn default_bridge_gives_each_container_an_address_and_a_route_between_them() {
    let env = Env::new();
    let a = env.ok(&["run", "-d", "--name", "ca", "busybox", "sleep", "60"]);
    let b = env.ok(&["run", "-d", "--name", "cb", "busybox", "sleep", "60"]);
    let ip_a = env.inspect("ca", "{{.NetworkSettings.IPAddress}}");
    let ip_b = env.inspect("cb", "{{.NetworkSettings.IPAddress}}");
    let gateway = env.inspect("ca", "{{.NetworkSettings.Gateway}}");
    assert!(ip_a.starts_with("10."), "{ip_a}");
    assert_ne!(ip_a, ip_b);
    assert_eq!(
        env.inspect(
            "ca",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        ),
        ip_a
    );
    assert!(
        env.inspect("ca", "{{.NetworkSettings.MacAddress}}")
            .starts_with("02:42:")
    );
    // eth0 with the address, the default route through the bridge's gateway.
    let addr = env.ok(&["exec", "ca", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {ip_a}/24")), "{addr}");
    let route = env.ok(&["exec", "ca", "ip", "route"]);
    assert!(route.contains(&format!("default via {gateway}")), "{route}");
    // /etc/hosts names the container's own address.
    let hosts = env.ok(&["exec", "ca", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{ip_a}\t{}", &a.trim()[..12])),
        "{hosts}"
    );
    // Container to container, and container to the host's side of the bridge.
    env.ok(&["exec", "ca", "ping", "-c", "1", "-W", "3", &ip_b]);
    env.ok(&["exec", "cb", "ping", "-c", "1", "-W", "3", &gateway]);
    // The host end of each veth is on this daemon's bridge; it goes with the container.
    let net = daemon_support::TestNet::existing(env.daemon.dir.path()).expect("test net");
    let master = Command::new("ip")
        .args(["-o", "link", "show", "master", &net.bridge])
        .output()
        .expect("ip link");
    assert_eq!(
        text(&master.stdout).lines().count(),
        2,
        "{}",
        text(&master.stdout)
    );
    env.ok(&["rm", "-f", a.trim(), b.trim()]);
    // The veths are deleted after the answer (and by the kernel with the namespaces).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let master = Command::new("ip")
            .args(["-o", "link", "show", "master", &net.bridge])
            .output()
            .expect("ip link");
        if text(&master.stdout).trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "veths left on the bridge: {}",
            text(&master.stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Handed-out addresses are never written down: the state file holds the pools only.
    let ipam: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.daemon.data_root.join("network/ipam.json")).expect("ipam state"),
    )
    .expect("ipam json");
    for pool in ipam["pools"].as_object().expect("pools").values() {
        assert!(pool.get("subnet").is_some(), "{ipam}");
        assert!(pool.get("allocated").is_none(), "{ipam}");
    }
}

#[test]
fn stopped_containers_hold_no_address_and_restart_with_one() {
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "st", "busybox", "sleep", "60"]);
    env.ok(&["stop", "-t", "0", "st"]);
    assert_eq!(env.inspect("st", "{{.NetworkSettings.IPAddress}}"), "");
    assert_eq!(
        env.inspect(
            "st",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}"
        ),
        "bridge"
    );
    env.ok(&["start", "st"]);
    let ip = env.inspect("st", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with("10."), "{ip}");
    env.ok(&["exec", "st", "ping", "-c", "1", "-W", "3", &ip]);
}

#[test]
fn none_and_host_networks() {
    let env = Env::new();
    let none = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(none.contains("lo"), "{none}");
    assert!(!none.contains("eth0"), "{none}");
    // The host's own interfaces, this daemon's bridge among them.
    let net = daemon_support::TestNet::existing(env.daemon.dir.path()).expect("test net");
    let host = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert!(host.contains(&format!(": {}:", net.bridge)), "{host}");
    let ls = env.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort();
    assert_eq!(names, ["bridge bridge", "host host", "none null"]);
}

#[test]
fn published_ports_answer_on_loopback_and_go_away_with_the_container() {
    let env = Env::new();
    let id = httpd(
        &env,
        &["--name", "web", "-p", "127.0.0.1::80"],
        "hello-berth",
    );
    let port_line = env.ok(&["port", "web", "80"]);
    let port: u16 = port_line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("docker port: {port_line:?}"));
    assert!(port_line.starts_with("127.0.0.1:"), "{port_line}");
    let reply = http_get(port, "/index.html");
    assert!(reply.contains("hello-berth"), "{reply}");
    let ps = env.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.trim(), format!("127.0.0.1:{port}->80/tcp"));
    // A second container asking for the same host port is refused at start, clearly.
    let taken = format!("127.0.0.1:{port}:80");
    let err = env.fails(&["run", "-d", "-p", &taken, "busybox", "sleep", "5"]);
    assert!(err.contains("port is already allocated"), "{err}");
    // Stopping frees the port: nobody answers, and a new container can take it.
    env.ok(&["rm", "-f", &id]);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let again = httpd(&env, &["-p", &taken], "second");
    assert!(http_get(port, "/index.html").contains("second"));
    env.ok(&["rm", "-f", &again]);
}

#[test]
fn bad_port_specs_and_network_requests_are_clear_errors() {
    let env = Env::new();
    let err = env.fails(&["network", "create", "--subnet", "10.300.0.0/24", "n1"]);
    assert!(err.contains("invalid"), "{err}");
    let subnet = "192.168.251.0/24";
    env.ok(&["network", "create", "--subnet", subnet, "n1"]);
    let err = env.fails(&["network", "create", "--subnet", "192.168.251.128/25", "n2"]);
    assert!(err.contains("overlap"), "{err}");
    let err = env.fails(&["network", "create", "n1"]);
    assert!(err.contains("network with name n1 already exists"), "{err}");
    let err = env.fails(&["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined network"), "{err}");
    let err = env.fails(&["network", "inspect", "nope"]);
    assert!(err.contains("network nope not found"), "{err}");
    // As in Docker, create succeeds and start finds the network missing.
    let err = env.fails(&[
        "run",
        "--name",
        "lost",
        "--network",
        "nope",
        "busybox",
        "true",
    ]);
    assert!(err.contains("network nope not found"), "{err}");
    assert!(!err.contains("Unable to find image"), "{err}");
    env.ok(&["rm", "lost"]);
    // A raw request with a hostile name and a bad port binding: 400 with a message.
    let body = r#"{"Name":"../evil"}"#;
    let r = env.daemon.http(&format!(
        "POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("invalid name")
    );
    let body =
        r#"{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"70000"}]}}}"#;
    let r = env.daemon.http(&format!(
        "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["message"], "invalid hostPort: 70000");
    // Nothing was created half-way by the refusals.
    let all = env.ok(&["ps", "-aq"]);
    assert_eq!(all.trim(), "");
    let nets = env.ok(&["network", "ls", "-q", "--filter", "type=custom"]);
    assert_eq!(nets.lines().count(), 1, "{nets}");
}

#[test]
fn user_networks_resolve_names_and_are_isolated_from_each_other() {
    let env = Env::new();
    env.ok(&["network", "create", "--subnet", "192.168.252.0/24", "front"]);
    env.ok(&["network", "create", "--subnet", "192.168.253.0/24", "back"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "busybox",
        "sleep",
        "60",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "front",
        "busybox",
        "sleep",
        "60",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "back",
        "--ip",
        "192.168.253.77",
        "busybox",
        "sleep",
        "60",
    ]);
    let web_ip = env.inspect("web", "{{.NetworkSettings.Networks.front.IPAddress}}");
    assert!(web_ip.starts_with("192.168.252."), "{web_ip}");
    assert_eq!(
        env.inspect("other", "{{.NetworkSettings.Networks.back.IPAddress}}"),
        "192.168.253.77"
    );
    let resolv = env.ok(&["exec", "client", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    // By name and by alias, through the embedded DNS.
    for name in ["web", "www"] {
        let out = env.ok(&["exec", "client", "nslookup", name]);
        assert!(out.contains(&web_ip), "{name}: {out}");
        env.ok(&["exec", "client", "ping", "-c", "1", "-W", "3", name]);
    }
    // A name on another network does not resolve there, and its address is unreachable.
    let out = env.docker(&["exec", "client", "nslookup", "other"]);
    assert!(
        !text(&out.stdout).contains("192.168.253.77"),
        "{}",
        text(&out.stdout)
    );
    let out = env.docker(&[
        "exec",
        "client",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        "192.168.253.77",
    ]);
    assert!(!out.status.success(), "networks are not isolated");
    // Network inspect lists its containers.
    let members = env.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{end}}",
        "front",
    ]);
    let mut names: Vec<&str> = members.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["client", "web"]);
    // A network with endpoints cannot be removed.
    let err = env.fails(&["network", "rm", "front"]);
    assert!(err.contains("has active endpoints"), "{err}");
    // connect: `other` joins front live, and is reachable there by name.
    env.ok(&["network", "connect", "front", "other"]);
    let ip = env.inspect("other", "{{.NetworkSettings.Networks.front.IPAddress}}");
    assert!(ip.starts_with("192.168.252."), "{ip}");
    let out = env.ok(&["exec", "client", "nslookup", "other"]);
    assert!(out.contains(&ip), "{out}");
    env.ok(&["exec", "other", "ping", "-c", "1", "-W", "3", "web"]);
    env.ok(&["network", "disconnect", "front", "other"]);
    let out = env.docker(&["exec", "client", "ping", "-c", "1", "-W", "1", &ip]);
    assert!(
        !out.status.success(),
        "disconnect left the address reachable"
    );
    for c in ["web", "client", "other"] {
        env.ok(&["rm", "-f", c]);
    }
    env.ok(&["network", "rm", "front", "back"]);
    let bridges = links_named("br-");
    let ids = env.ok(&["network", "ls", "-q", "--no-trunc"]);
    for b in bridges {
        assert!(
            !ids.contains(&b[3..]),
            "bridge {b} of a removed network is left"
        );
    }
}

#[test]
fn internal_networks_have_no_way_out() {
    let env = Env::new();
    env.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "192.168.254.0/24",
        "sealed",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "in",
        "--network",
        "sealed",
        "busybox",
        "sleep",
        "60",
    ]);
    let route = env.ok(&["exec", "in", "ip", "route"]);
    assert!(!route.contains("default"), "{route}");
    // Nothing beyond the network is reachable: not the default bridge's gateway, not a
    // container on another network.
    env.ok(&["run", "-d", "--name", "outside", "busybox", "sleep", "60"]);
    let outside = env.inspect("outside", "{{.NetworkSettings.IPAddress}}");
    let gateway = env.inspect("outside", "{{.NetworkSettings.Gateway}}");
    for target in [&outside, &gateway] {
        let out = env.docker(&["exec", "in", "ping", "-c", "1", "-W", "1", target]);
        assert!(
            !out.status.success(),
            "an internal network reached {target}"
        );
    }
    // And nothing from outside gets in.
    let inside = env.inspect("in", "{{.NetworkSettings.Networks.sealed.IPAddress}}");
    let out = env.docker(&["exec", "outside", "ping", "-c", "1", "-W", "1", &inside]);
    assert!(
        !out.status.success(),
        "the default bridge reached an internal network"
    );
}

#[test]
fn published_ports_and_dns_survive_a_daemon_kill() {
    let mut env = Env::new();
    env.ok(&["network", "create", "--subnet", "192.168.250.0/24", "keep"]);
    httpd(
        &env,
        &["--name", "web", "--network", "keep", "-p", "127.0.0.1::80"],
        "still-here",
    );
    env.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "120",
    ]);
    let port: u16 = env
        .ok(&["port", "web", "80"])
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    daemon_support::signal(&env.daemon.child, libc::SIGKILL);
    let _ = env.daemon.child.wait();
    // The data plane does not need the daemon: the port still answers while it is down.
    assert!(http_get(port, "/index.html").contains("still-here"));
    let placeholder = tempfile::tempdir().expect("tempdir");
    let dir = std::mem::replace(&mut env.daemon.dir, placeholder);
    env.daemon = Daemon::start_in(dir, &[]);
    assert!(http_get(port, "/index.html").contains("still-here"));
    let web_ip = env.inspect("web", "{{.NetworkSettings.Networks.keep.IPAddress}}");
    let out = env.ok(&["exec", "client", "nslookup", "web"]);
    assert!(out.contains(&web_ip), "{out}");
    // A new container does not get an address that is still in use.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "keep",
        "busybox",
        "sleep",
        "60",
    ]);
    let late_ip = env.inspect("late", "{{.NetworkSettings.Networks.keep.IPAddress}}");
    let client_ip = env.inspect("client", "{{.NetworkSettings.Networks.keep.IPAddress}}");
    assert!(
        late_ip != web_ip && late_ip != client_ip,
        "{late_ip} reused"
    );
}

#[test]
fn container_mode_shares_the_other_containers_network() {
    let env = Env::new();
    let web = httpd(
        &env,
        &["--name", "web", "--hostname", "webhost"],
        "shared-ns",
    );
    let ip = env.inspect("web", "{{.NetworkSettings.IPAddress}}");
    let mode = format!("container:{}", &web[..12]);
    let addr = env.ok(&[
        "run",
        "--rm",
        "--network",
        &mode,
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(addr.contains(&format!("inet {ip}/")), "{addr}");
    // The same loopback: the httpd listening in `web` answers on 127.0.0.1 here.
    let page = env.ok(&[
        "run",
        "--rm",
        "--network",
        &mode,
        "busybox",
        "sh",
        "-c",
        "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 80",
    ]);
    assert!(page.contains("shared-ns"), "{page}");
    let hostname = env.ok(&["run", "--rm", "--network", &mode, "busybox", "hostname"]);
    assert_eq!(hostname.trim(), "webhost");
    env.ok(&["stop", "-t", "0", "web"]);
    let err = env.fails(&["run", "--rm", "--network", &mode, "busybox", "true"]);
    assert!(
        err.contains("cannot join network of a non running container"),
        "{err}"
    );
}

#[test]
fn extra_hosts_and_dns_options_reach_the_containers_files() {
    let env = Env::new();
    let hosts = env.ok(&[
        "run",
        "--rm",
        "--add-host",
        "db.local:10.9.8.7",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains("10.9.8.7\tdb.local"), "{hosts}");
    let resolv = env.ok(&[
        "run",
        "--rm",
        "--dns",
        "10.1.2.3",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.contains("nameserver 10.1.2.3"), "{resolv}");
    assert!(resolv.contains("search corp.example"), "{resolv}");
    assert!(resolv.contains("options ndots:2"), "{resolv}");
    let err = env.fails(&["run", "--rm", "--dns", "not-an-ip", "busybox", "true"]);
    assert!(err.contains("not-an-ip"), "{err}");
}

#[test]
fn a_port_published_on_every_address_is_reachable_from_containers_through_the_gateway() {
    let env = Env::new();
    httpd(&env, &["--name", "web", "-p", "0:80"], "via-gateway");
    let port = env.inspect(
        "web",
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
    );
    let gateway = env.inspect("web", "{{.NetworkSettings.Gateway}}");
    assert!(http_get(port.parse().expect("port"), "/index.html").contains("via-gateway"));
    let fetch = format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {gateway} {port}");
    // From another container, and from the published container itself (hairpin).
    env.ok(&["run", "-d", "--name", "peer", "busybox", "sleep", "60"]);
    for from in ["peer", "web"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = env.docker(&["exec", from, "sh", "-c", &fetch]);
            if text(&out.stdout).contains("via-gateway") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{from}: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn mac_addresses_and_legacy_links() {
    let env = Env::new();
    // The docker CLI refuses --mac-address below API 1.44; API 1.41 clients send
    // Config.MacAddress, as here.
    let body = r#"{"Image":"busybox","Cmd":["sleep","60"],"MacAddress":"02:42:de:ad:be:ef"}"#;
    let r = env.daemon.http(&format!(
        "POST /v1.41/containers/create?name=db HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 201, "{}", r.body);
    env.ok(&["start", "db"]);
    assert_eq!(
        env.inspect("db", "{{.NetworkSettings.MacAddress}}"),
        "02:42:de:ad:be:ef"
    );
    let link = env.ok(&["exec", "db", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(link.trim(), "02:42:de:ad:be:ef");
    let db_ip = env.inspect("db", "{{.NetworkSettings.IPAddress}}");
    let hosts = env.ok(&[
        "run",
        "--rm",
        "--link",
        "db:database",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains(&format!("{db_ip}\tdatabase ")), "{hosts}");
    env.ok(&[
        "run",
        "--rm",
        "--link",
        "db:database",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        "database",
    ]);
    env.ok(&["stop", "-t", "0", "db"]);
    let err = env.fails(&["run", "--rm", "--link", "db:database", "busybox", "true"]);
    assert!(
        err.contains("Cannot link to a non running container"),
        "{err}"
    );
}
