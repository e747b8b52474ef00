//! Shared by the `daemon_*` tests: start the real `berth daemon` on a temporary data root,
//! exec root and socket; talk to it with raw HTTP or the real docker CLI; stop it on drop.

#![allow(dead_code)]

use std::io::{Read, Write};

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to start listening, or to exit after SIGTERM.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `berth daemon`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
}

/// A test daemon's own bridge, nftables table and address range, so daemons running side by
/// side never share network state. Kept in `dir` so a restarted daemon gets the same ones.
pub struct TestNet {
    pub bridge: String,
    pub table: String,
    /// The daemon's own `--cgroup-parent` (`/berth-t<n>`), removed with the rest.
    pub cgroup_parent: String,
    /// The default bridge's gateway with its prefix (`10.a.b.1/24`).
    pub bip: String,
    /// A /20 for automatic subnets; the bip's /24 is its first.
    pub pool: String,
}

impl TestNet {
    fn for_dir(dir: &Path) -> TestNet {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        TestNet::existing(dir).unwrap_or_else(|| {
            let n = (std::process::id() % 64) * 64 + NEXT.fetch_add(1, Ordering::Relaxed) % 64;
            std::fs::write(dir.join("test-net"), n.to_string()).expect("test-net file");
            TestNet::numbered(n)
        })
    }

    /// The network state of the daemon that used `dir`, if one did.
    pub fn existing(dir: &Path) -> Option<TestNet> {
        let text = std::fs::read_to_string(dir.join("test-net")).ok()?;
        Some(TestNet::numbered(text.trim().parse().ok()?))
    }

    fn numbered(n: u32) -> TestNet {
        let (a, b) = (n / 16, (n % 16) * 16);
        TestNet {
            bridge: format!("bt{n}"),
            table: format!("berth_t{n}"),
            cgroup_parent: format!("/berth-t{n}"),
            bip: format!("10.{a}.{b}.1/24"),
            pool: format!("base=10.{a}.{b}.0/20,size=24"),
        }
    }

    /// Removes the daemon's bridges (the default one and those of networks it created) and its
    /// table. Containers must be gone first (their veths go with their namespaces).
    pub fn cleanup(&self, data_root: &Path) {
        let mut bridges = vec![self.bridge.clone()];
        if let Ok(entries) = std::fs::read_dir(data_root.join("network")) {
            for e in entries.flatten() {
                let record: Option<serde_json::Value> = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(name) = record.as_ref().and_then(|r| r["Bridge"].as_str())
                    && !name.is_empty()
                {
                    bridges.push(name.to_owned());
                }
            }
        }
        for bridge in bridges {
            let _ = Command::new("ip")
                .args(["link", "del", &bridge])
                .stderr(Stdio::null())
                .status();
            remove_forward_rules(&bridge);
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .stderr(Stdio::null())
            .status();
        // Container cgroups go with their containers; the parent is left empty.
        let parent = self.cgroup_parent.trim_start_matches('/');
        let root = Path::new("/sys/fs/cgroup");
        let _ = std::fs::remove_dir(root.join(parent)); // cgroup v2
        for h in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(h.path().join(parent)); // each v1 hierarchy
        }
    }
}

/// Removes the ACCEPT rules the daemon put in the host's iptables `DOCKER-USER` or `FORWARD`
/// chain for `bridge` (it does so when a Docker Engine's chain is there).
fn remove_forward_rules(bridge: &str) {
    for chain in ["DOCKER-USER", "FORWARD"] {
        for dir in ["-i", "-o"] {
            // Bounded: each call deletes one copy.
            for _ in 0..8 {
                let deleted = Command::new("iptables")
                    .args(["-w", "-D", chain, dir, bridge, "-j", "ACCEPT"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !deleted {
                    break;
                }
            }
        }
    }
}

/// Removes the network state of a daemon started on `dir` by hand (not through [`Daemon`]).
pub struct NetCleanup(pub PathBuf);

impl Drop for NetCleanup {
    fn drop(&mut self) {
        if let Some(net) = TestNet::existing(&self.0) {
            net.cleanup(&self.0.join("data"));
        }
    }
}

/// The argument list for a daemon whose state lives under `dir`.
pub fn daemon_args(dir: &Path) -> Vec<String> {
    let s = |p: PathBuf| p.display().to_string();
    let net = TestNet::for_dir(dir);
    let mut args: Vec<String> = vec![
        "daemon".into(),
        "-H".into(),
        format!("unix://{}", dir.join("berth.sock").display()),
        "--data-root".into(),
        s(dir.join("data")),
        "--exec-root".into(),
        s(dir.join("exec")),
        "--pidfile".into(),
        s(dir.join("berth.pid")),
        "--config-file".into(),
        s(dir.join("daemon.json")),
        "--log-level".into(),
        "debug".into(),
    ];
    args.extend([
        "--bridge".into(),
        net.bridge,
        "--bip".into(),
        net.bip,
        "--default-address-pool".into(),
        net.pool,
        "--firewall-table".into(),
        net.table,
        "--cgroup-parent".into(),
        net.cgroup_parent,
    ]);
    args
}

impl Daemon {
    /// Starts a daemon with fresh directories and waits until its socket answers `/_ping`.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// Like [`Daemon::start`] with extra flags.
    pub fn start_with(extra: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-d")
            .tempdir_in("/tmp")
            .expect("tempdir");
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("config file");
        Daemon::start_in(dir, extra)
    }

    /// Starts a daemon whose state lives in `dir` (which has a `daemon.json`), e.g. one
    /// prepared before start-up or left by a previous daemon.
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Daemon {
        Daemon::start_in_netns(dir, extra, None)
    }

    /// Like [`Daemon::start_in`], the daemon running in the network namespace at `netns`
    /// (e.g. `/run/netns/<name>`): a host of its own, with its own iptables.
    pub fn start_in_netns(dir: tempfile::TempDir, extra: &[&str], netns: Option<&Path>) -> Daemon {
        let mut args = daemon_args(dir.path());
        args.extend(extra.iter().map(|a| a.to_string()));
        // A file, not a pipe: nobody drains a pipe while the daemon runs, and debug logging
        // would fill it and block the daemon.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("daemon.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(netns) = netns {
            let ns = std::fs::File::open(netns).expect("open the network namespace");
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            // SAFETY: setns is async-signal-safe; the fd stays open until spawn returns.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn berth daemon");
        let daemon = Daemon {
            child,
            socket: dir.path().join("berth.sock"),
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            pidfile: dir.path().join("berth.pid"),
            dir,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(response) = try_http(&self.socket, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                && response.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "daemon did not answer on {} in time; its log:\n{}",
            self.socket.display(),
            self.log()
        );
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit status and stderr.
    pub fn terminate(&mut self) -> (Option<i32>, String) {
        signal(&self.child, libc::SIGTERM);
        let status = wait_bounded(&mut self.child, STOP_TIMEOUT);
        let stderr = self.log();
        (status, stderr)
    }

    /// What the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Raw HTTP to this daemon.
    pub fn http(&self, request: &str) -> Response {
        http(&self.socket, request)
    }

    /// `docker rm -f -v` of every container this daemon has.
    pub fn remove_all_containers(&self) {
        let ps = self.docker(&["ps", "-aq", "--no-trunc"]);
        let list = String::from_utf8_lossy(&ps.stdout).into_owned();
        let ids: Vec<&str> = list.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = self.docker(&args);
        }
    }

    /// The real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        docker(&self.socket, &self.dir.path().join("docker-config"), args)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Containers outlive a SIGTERM'd daemon (by design) and keep their rootfs mounted:
            // a test that left any would leak mounts and shims into the next run.
            self.remove_all_containers();
            signal(&self.child, libc::SIGTERM);
            if wait_bounded(&mut self.child, STOP_TIMEOUT).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if let Some(net) = TestNet::existing(self.dir.path()) {
            net.cleanup(&self.data_root);
        }
    }
}

/// A fresh daemon directory (with an empty `daemon.json`) whose data root already holds
/// `busybox:latest`, imported from Debian's busybox-static: no registry needed.
pub fn busybox_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-d")
        .tempdir_in("/tmp")
        .expect("tempdir");
    std::fs::write(dir.path().join("daemon.json"), "{}").expect("config file");
    let tar = busybox_tar(dir.path());
    let store = berth_image::ImageStore::open(&dir.path().join("data")).expect("image store");
    let opts = berth_image::ImportOptions {
        tag: Some("busybox:latest".parse().expect("reference")),
        ..Default::default()
    };
    let mut file = std::fs::File::open(&tar).expect("busybox tar");
    store.import(&mut file, &opts).expect("import busybox");
    drop(store);
    std::fs::remove_file(&tar).expect("remove the tar");
    dir
}

/// `<dir>/busybox.tar`: a busybox root filesystem from Debian's busybox-static, as a tar
/// for `docker import`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("bb-rootfs");
    berth_testsupport::busybox_rootfs(&rootfs);
    let tar = dir.join("busybox.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&rootfs).expect("remove the rootfs");
    tar
}

/// `berth registry serve` on a free loopback port, killed on drop.
pub struct RegistryProcess {
    pub child: Child,
    pub addr: String,
    pub _root: tempfile::TempDir,
}

impl RegistryProcess {
    pub fn start(extra: &[&str]) -> RegistryProcess {
        let root = tempfile::Builder::new()
            .prefix("berth-reg")
            .tempdir_in("/tmp")
            .expect("tempdir");
        // Ask the kernel for a free port, then hand it to the server (a small window in
        // which another process could take it; the readiness check below would then fail).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(root.path().join("registry.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["registry", "serve", "--addr", &addr, "--root"])
            .arg(root.path().join("data"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berth registry serve");
        let registry = RegistryProcess {
            child,
            addr,
            _root: root,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not listen in time");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = wait_bounded(&mut self.child, Duration::from_secs(10));
    }
}

/// Spawns the berth binary with piped stderr.
pub fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth daemon")
}

pub fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// Waits for `child` to exit for at most `timeout`; the exit code if it did (-signal if
/// killed by one).
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            use std::os::unix::process::ExitStatusExt;
            return Some(
                status
                    .code()
                    .unwrap_or_else(|| -status.signal().unwrap_or(0)),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The real docker CLI, with its own empty config dir so the user's contexts are not used.
pub fn docker(socket: &Path, config_dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", config_dir)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI is installed");
    // Bound the wait: a hung daemon must fail the test, not hang it.
    if wait_bounded_no_reap(&mut child, Duration::from_secs(30)) {
        child.wait_with_output().expect("docker output")
    } else {
        let _ = child.kill();
        let out = child.wait_with_output().expect("docker output");
        panic!(
            "docker {args:?} did not finish in 30s; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Like [`wait_bounded`] but leaves the exit status to `wait_with_output`: polls
/// `/proc/<pid>` state instead of reaping.
fn wait_bounded_no_reap(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let stat = format!("/proc/{}/stat", child.id());
    while Instant::now() < deadline {
        match std::fs::read_to_string(&stat) {
            // Field 3 is the state; Z means exited and waiting to be reaped.
            Ok(text)
                if text
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Err(_) => return true,
            Ok(_) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// Sends one raw request (`Connection: close` is added) and reads the whole response.
pub fn http(socket: &Path, request: &str) -> Response {
    try_http(socket, request).expect("HTTP exchange")
}

pub fn try_http(socket: &Path, request: &str) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let (head, body) = request.split_once("\r\n\r\n").unwrap_or((request, ""));
    let head = head.trim_end_matches("\r\n");
    write!(stream, "{head}\r\nConnection: close\r\n\r\n{body}")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(parse_response(&raw))
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}
