//! berth next to a Docker Engine. Docker sets the iptables `filter FORWARD` policy to DROP and
//! keeps `DOCKER-USER` for other people's rules; with `br_netfilter` even traffic between two
//! containers on one bridge passes that chain. The daemon here runs in a network namespace of
//! its own set up exactly like that (a "host" with Docker's chains), with a second namespace
//! as the outside world on a veth: containers must still reach the outside, each other and be
//! reachable on published ports, berth's own isolation must still hold, and `network rm`
//! takes the network's rules out of `DOCKER-USER`. All traffic stays in these namespaces.

mod daemon_support;

use std::path::PathBuf;
use std::process::{Command, Output};

use daemon_support::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A network namespace from `ip netns add`, deleted (with every link and rule in it) on drop.
struct Netns(String);

impl Netns {
    fn new(prefix: &str) -> Netns {
        let name = berth_testsupport::unique_name(prefix);
        ok("ip", &["netns", "add", &name]);
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.0];
        all.extend(args);
        ok("ip", &all)
    }

    fn try_exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.0];
        all.extend(args);
        run("ip", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

fn has_iptables() -> bool {
    Command::new("iptables")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The "host": Docker's FORWARD chain (policy DROP, a jump to an empty DOCKER-USER) and
/// bridged traffic through iptables; a veth to the "outside" namespace, 10.99.0.0/24.
fn docker_like_host(host: &Netns, outside: &Netns) {
    host.exec(&["iptables", "-w", "-N", "DOCKER-USER"]);
    host.exec(&["iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN"]);
    host.exec(&["iptables", "-w", "-I", "FORWARD", "-j", "DOCKER-USER"]);
    host.exec(&["iptables", "-w", "-P", "FORWARD", "DROP"]);
    // Per namespace, present once br_netfilter is loaded (Docker loads it).
    let _ = host.try_exec(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"]);
    let veth = format!("{}-o", &host.0[..host.0.len().min(10)]);
    host.exec(&[
        "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth-out", "netns", &outside.0,
    ]);
    host.exec(&["ip", "addr", "add", "10.99.0.1/24", "dev", &veth]);
    host.exec(&["ip", "link", "set", &veth, "up"]);
    outside.exec(&["ip", "addr", "add", "10.99.0.2/24", "dev", "eth-out"]);
    outside.exec(&["ip", "link", "set", "eth-out", "up"]);
}

fn docker_user_rules(host: &Netns) -> String {
    host.exec(&["iptables", "-w", "-S", "DOCKER-USER"])
}

#[test]
fn containers_keep_working_when_docker_set_forward_to_drop() {
    if !has_iptables() {
        eprintln!("skipped: no iptables on this host, so no Docker Engine chain to live with");
        return;
    }
    let host = Netns::new("bch");
    let outside = Netns::new("bco");
    docker_like_host(&host, &outside);
    let daemon = Daemon::start_in_netns(daemon_support::busybox_dir(), &[], Some(&host.path()));
    let docker = |args: &[&str]| {
        let out = daemon.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let bridge = daemon_support::TestNet::existing(daemon.dir.path())
        .expect("test net")
        .bridge;
    let rules = docker_user_rules(&host);
    assert!(
        rules.contains(&format!("-A DOCKER-USER -i {bridge} -j ACCEPT"))
            && rules.contains(&format!("-A DOCKER-USER -o {bridge} -j ACCEPT")),
        "the default bridge is let through DOCKER-USER:\n{rules}"
    );

    // Out through FORWARD (masqueraded) to the outside namespace.
    docker(&["run", "--rm", "busybox", "ping", "-c1", "-W3", "10.99.0.2"]);

    // Between two containers of one user network (bridged, through FORWARD with br_netfilter).
    docker(&["network", "create", "coexist"]);
    docker(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "coexist",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let srv_ip = docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.coexist.IPAddress}}",
        "srv",
    ]);
    // busybox-static's wget crashes in glibc's resolver; nc speaks HTTP/1.0 well enough.
    let get = |addr: &str, port: u16| {
        format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {addr} {port}")
    };
    let srv_get = get(srv_ip.trim(), 80);
    docker(&[
        "run",
        "--rm",
        "--network",
        "coexist",
        "busybox",
        "ping",
        "-c1",
        "-W3",
        "srv",
    ]);
    // httpd may still be starting: a bounded retry inside the client container.
    let fetch = format!(
        "for i in $(seq 25); do {srv_get} | grep -q 200 && exit 0; sleep 0.2; done; exit 1"
    );
    docker(&[
        "run",
        "--rm",
        "--network",
        "coexist",
        "busybox",
        "sh",
        "-c",
        &fetch,
    ]);

    // In from outside to a published port (DNAT, then FORWARD).
    docker(&[
        "run", "-d", "--name", "pub", "-p", "8080:80", "busybox", "httpd", "-f", "-p", "80", "-h",
        "/etc",
    ]);
    let pub_id = docker(&["inspect", "-f", "{{.Config.Hostname}}", "pub"]);
    let mut fetched = String::new();
    for _ in 0..20 {
        let out = outside.try_exec(&["busybox", "sh", "-c", &get("10.99.0.1", 8080)]);
        fetched = text(&out.stdout);
        if fetched.contains(pub_id.trim()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        fetched.contains(pub_id.trim()),
        "published port from outside: {fetched:?}"
    );

    // berth's own isolation still holds: the default bridge can't reach the user network.
    let crossed = daemon.docker(&["run", "--rm", "busybox", "sh", "-c", &srv_get]);
    assert!(
        !text(&crossed.stdout).contains("200"),
        "networks stay isolated: {}",
        text(&crossed.stdout)
    );

    // Removing the network takes its bridge's rules out of DOCKER-USER.
    let user_bridge = docker(&["network", "inspect", "-f", "{{.Id}}", "coexist"]);
    let user_bridge = format!("br-{}", &user_bridge.trim()[..12]);
    assert!(docker_user_rules(&host).contains(&format!("-i {user_bridge} -j ACCEPT")));
    docker(&["rm", "-f", "srv"]);
    docker(&["network", "rm", "coexist"]);
    let rules = docker_user_rules(&host);
    assert!(
        !rules.contains(&user_bridge),
        "network rm removed its rules:\n{rules}"
    );
    assert!(
        rules.contains(&format!("-i {bridge} -j ACCEPT")),
        "the default bridge keeps its rules:\n{rules}"
    );
    drop(daemon);
}
