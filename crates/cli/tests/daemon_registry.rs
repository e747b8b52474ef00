//! Ship: the real docker CLI through berth daemon against `berth registry serve` on
//! loopback: push, rmi, pull (by tag and by digest), run of a missing image, a missing tag,
//! and login/push/pull against a registry that demands Basic auth.
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise.

mod daemon_support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_support::{Daemon, RegistryProcess, wait_bounded};

fn usable() -> bool {
    if !berth_testsupport::is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: no docker CLI");
        return false;
    }
    true
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl RegistryProcess {
    /// Debian's `docker-registry` (the CNCF distribution server) on a free loopback port,
    /// or `None` when it is not installed.
    fn start_distribution() -> Option<RegistryProcess> {
        if Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_err()
        {
            return None;
        }
        let root = tempfile::Builder::new()
            .prefix("berth-dist")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = root.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {addr}\n",
            root.path().join("data").display()
        );
        std::fs::write(&config, yaml).expect("config");
        let log = std::fs::File::create(root.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let registry = RegistryProcess {
            child,
            addr,
            _root: root,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }
}

/// A daemon whose containers are removed at the end.
struct Env {
    daemon: Daemon,
}

impl Env {
    fn new() -> Env {
        Env {
            daemon: Daemon::start(),
        }
    }

    fn dir(&self) -> &Path {
        self.daemon.dir.path()
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.daemon.docker(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}\ndaemon log tail:\n{}",
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
            "docker {args:?} succeeded: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    fn busybox_tar(&self) -> PathBuf {
        daemon_support::busybox_tar(self.dir())
    }

    fn import_busybox(&self, tag: &str) -> String {
        let tar = self.busybox_tar();
        self.ok(&["import", &tar.display().to_string(), tag])
            .trim()
            .to_owned()
    }

    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .ok(&["images", "-q", "--no-trunc"])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        ids.dedup();
        ids
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
        v[0].clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The manifest digest in `docker push` output (`1: digest: sha256:… size: N`).
fn pushed_digest(out: &str, tag: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: ")))
        .unwrap_or_else(|| panic!("no digest line in:\n{out}"));
    line.split_whitespace().nth(2).expect("digest").to_owned()
}

#[test]
fn push_rmi_pull_run_through_berth_registry() {
    if !usable() {
        return;
    }
    let registry = RegistryProcess::start(&[]);
    let env = Env::new();
    let id = env.import_busybox("busybox:latest");
    let name = format!("{}/test/busybox", registry.addr);
    let tagged = format!("{name}:1");
    env.ok(&["tag", "busybox", &tagged]);

    let out = env.ok(&["push", &tagged]);
    assert!(
        out.starts_with(&format!("The push refers to repository [{name}]")),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out, "1");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let repo_digests = env.inspect(&tagged)["RepoDigests"].clone();
    assert_eq!(
        repo_digests,
        serde_json::json!([format!("{name}@{digest}")])
    );

    // A second push finds every blob in place and gives the same digest.
    let again = env.ok(&["push", &tagged]);
    assert!(again.contains(": Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");
    assert_eq!(pushed_digest(&again, "1"), digest);

    // Another repository on the same registry mounts the layers from the first.
    let other = format!("{}/other/busybox:1", registry.addr);
    env.ok(&["tag", "busybox", &other]);
    let out = env.ok(&["push", &other]);
    assert!(out.contains(": Mounted from test/busybox"), "{out}");
    assert_eq!(pushed_digest(&out, "1"), digest);
    env.ok(&["rmi", &other]);

    env.ok(&["rmi", "busybox", &tagged]);
    assert!(env.ids().is_empty(), "{:?}", env.ids());

    let out = env.ok(&["pull", &tagged]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {tagged}")),
        "{out}"
    );
    assert!(
        env.daemon.log().contains("unpacked while it downloaded"),
        "the layer was not unpacked as it arrived"
    );
    assert_eq!(out.lines().last(), Some(tagged.as_str()), "{out}");
    assert_eq!(
        env.ids(),
        vec![id.clone()],
        "the pulled image has the pushed id"
    );
    let inspect = env.inspect(&tagged);
    assert_eq!(
        inspect["RepoDigests"],
        serde_json::json!([format!("{name}@{digest}")])
    );
    let out = env.ok(&["pull", &tagged]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {tagged}")),
        "{out}"
    );
    assert_eq!(
        env.ok(&["run", "--rm", &tagged, "echo", "pulled"]),
        "pulled\n"
    );

    // By digest.
    env.ok(&["rmi", &tagged]);
    assert!(env.ids().is_empty());
    let by_digest = format!("{name}@{digest}");
    let out = env.ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(env.ids(), vec![id.clone()]);
    env.ok(&["rmi", &by_digest]);
    assert!(env.ids().is_empty());

    // The raw stream: per layer, dockerd's order of messages, "Extracting" included.
    let response = env.daemon.http(&format!(
        "POST /v1.41/images/create?fromImage={name}&tag=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    ));
    assert_eq!(response.status, 200, "{}", response.body);
    let statuses: Vec<String> = response
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["id"].as_str().is_some_and(|i| i.len() == 12))
        .filter_map(|m| m["status"].as_str().map(str::to_owned))
        .collect();
    let at = |s: &str| {
        statuses
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("no {s:?} in {statuses:?}"))
    };
    assert!(at("Pulling fs layer") < at("Downloading"), "{statuses:?}");
    assert!(at("Download complete") < at("Extracting"), "{statuses:?}");
    assert!(at("Extracting") < at("Pull complete"), "{statuses:?}");
    env.ok(&["rmi", &tagged]);
    assert!(env.ids().is_empty());

    // `docker run` of a missing image pulls it first.
    let run = env.docker(&["run", "--rm", &tagged, "echo", "ran"]);
    assert!(run.status.success(), "run failed: {}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "ran\n");
    assert!(
        text(&run.stderr).contains(&format!("Unable to find image '{tagged}' locally")),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(env.ids(), vec![id]);

    // `push -a` and `pull -a`: every tag of the repository.
    let second = format!("{name}:2");
    env.ok(&["tag", &tagged, &second]);
    let out = env.ok(&["push", "-a", &name]);
    assert_eq!(pushed_digest(&out, "1"), digest, "{out}");
    assert_eq!(pushed_digest(&out, "2"), digest, "{out}");
    assert_eq!(
        out.matches("The push refers to repository").count(),
        1,
        "{out}"
    );
    env.ok(&["rmi", &tagged, &second]);
    assert!(env.ids().is_empty());
    let out = env.ok(&["pull", "-a", &name]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let listed = env.ok(&["images", "--format", "{{.Tag}}", &name]);
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "2"]);

    let err = env.fails(&["pull", &format!("{name}:nope")]);
    assert!(
        err.contains(&format!(
            "manifest for {name}:nope not found: manifest unknown"
        )),
        "{err}"
    );
    let err = env.fails(&["push", &format!("{name}:absent")]);
    assert!(
        err.contains(&format!(
            "An image does not exist locally with the tag: {name}"
        )),
        "{err}"
    );
}

#[test]
fn login_then_push_and_pull_with_basic_auth() {
    if !usable() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("shipper:{hash}\n")).expect("htpasswd");
    let registry = RegistryProcess::start(&["--htpasswd", &htpasswd.display().to_string()]);
    let env = Env::new();
    let id = env.import_busybox("busybox:latest");
    let tagged = format!("{}/private/busybox:1", registry.addr);
    env.ok(&["tag", "busybox", &tagged]);

    let err = env.fails(&["push", &tagged]);
    assert!(err.contains("no basic auth credentials"), "{err}");

    let err = env.fails(&["login", "-u", "shipper", "-p", "wrong", &registry.addr]);
    assert!(
        err.contains(&format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            registry.addr
        )),
        "{err}"
    );
    let out = env.ok(&["login", "-u", "shipper", "-p", "s3cret", &registry.addr]);
    assert!(out.contains("Login Succeeded"), "{out}");

    env.ok(&["push", &tagged]);
    env.ok(&["rmi", "busybox", &tagged]);
    env.ok(&["pull", &tagged]);
    assert_eq!(env.ids(), vec![id]);

    env.ok(&["logout", &registry.addr]);
    env.ok(&["rmi", &tagged]);
    let err = env.fails(&["pull", &tagged]);
    assert!(err.contains("no basic auth credentials"), "{err}");
}

/// `skopeo …` with its own policy off (no `/etc/containers/policy.json` needed); stdout.
fn skopeo(args: &[&str]) -> Option<String> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        text(&out.stderr)
    );
    Some(text(&out.stdout))
}

#[test]
fn skopeo_and_berth_agree_on_digests() {
    if !usable() || Command::new("skopeo").arg("--version").output().is_err() {
        eprintln!("skipped: needs root, docker and skopeo");
        return;
    }
    let registry = RegistryProcess::start(&[]);
    let env = Env::new();
    let id = env.import_busybox("busybox:latest");

    // What berth pushed, skopeo sees under the same digest.
    let ours = format!("{}/ours/busybox:1", registry.addr);
    env.ok(&["tag", "busybox", &ours]);
    let digest = pushed_digest(&env.ok(&["push", &ours]), "1");
    let inspect = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{ours}")])
        .expect("skopeo runs");
    let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    assert_eq!(inspect["Digest"], digest.as_str());

    // What skopeo pushed (from a `docker save` archive), berth pulls as the same image.
    let archive = env.dir().join("saved.tar");
    env.ok(&["save", "-o", &archive.display().to_string(), "busybox"]);
    let theirs = format!("{}/theirs/busybox:1", registry.addr);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{theirs}"),
    ])
    .expect("skopeo runs");
    env.ok(&["rmi", "busybox", &ours]);
    assert!(env.ids().is_empty());
    let out = env.ok(&["pull", &theirs]);
    let inspect = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{theirs}"),
    ])
    .expect("skopeo runs");
    let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    let their_digest = inspect["Digest"].as_str().expect("digest").to_owned();
    assert!(out.contains(&format!("Digest: {their_digest}")), "{out}");
    assert_eq!(env.ids(), vec![id], "the same config, so the same image id");
    assert_eq!(
        env.ok(&["run", "--rm", &theirs, "echo", "skopeo"]),
        "skopeo\n"
    );
}

/// A loopback TCP proxy to `target` that passes the server's bytes at `rate` bytes per
/// second, so that a pull can be caught in the middle. Stops accepting when dropped.
struct SlowProxy {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl SlowProxy {
    fn start(target: &str, rate: usize) -> SlowProxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, target) = (stop.clone(), target.to_owned());
        let accept = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(&target) {
                            pipe_pair(client, server, rate);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SlowProxy {
            addr,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies both ways on two threads; the server → client direction is paced. Each thread
/// ends when its source closes or stalls for 30 s.
fn pipe_pair(client: TcpStream, server: TcpStream, rate: usize) {
    use std::io::{Read, Write};
    let copy = |mut from: TcpStream, mut to: TcpStream, paced: bool| {
        std::thread::spawn(move || {
            let _ = from.set_read_timeout(Some(Duration::from_secs(30)));
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if paced {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    };
    if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
        copy(c2, s2, false);
        copy(server, client, true);
    }
}

#[test]
fn kill_9_mid_pull_leaves_no_image_and_pulling_again_works() {
    if !usable() {
        return;
    }
    let registry = RegistryProcess::start(&[]);
    let mut env = Env::new();
    // An image with one 48 MB incompressible file.
    let root = env.dir().join("big-root");
    std::fs::create_dir_all(&root).expect("dir");
    let mut random = std::fs::File::open("/dev/urandom").expect("urandom");
    let mut big = std::fs::File::create(root.join("big")).expect("file");
    std::io::copy(&mut std::io::Read::take(&mut random, 48 << 20), &mut big).expect("fill");
    drop(big);
    let tar = env.dir().join("big.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    assert!(out.status.success());
    let id = env
        .ok(&["import", &tar.display().to_string(), "big:1"])
        .trim()
        .to_owned();
    let direct = format!("{}/big/img:1", registry.addr);
    env.ok(&["tag", "big:1", &direct]);
    env.ok(&["push", &direct]);
    env.ok(&["rmi", "big:1", &direct]);

    // Pull through a proxy at 8 MB/s (about 6 s) and kill the daemon once bytes arrive.
    let proxy = SlowProxy::start(&registry.addr, 8 << 20);
    let slow = format!("{}/big/img:1", proxy.addr);
    let mut pull = Command::new("docker")
        .args(["pull", &slow])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.daemon.socket.display()),
        )
        .env("DOCKER_CONFIG", env.dir().join("docker-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker pull");
    let ingest = env.daemon.data_root.join("content/ingest");
    let deadline = Instant::now() + Duration::from_secs(20);
    let receiving = || {
        std::fs::read_dir(&ingest)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 4 << 20))
    };
    while !receiving() {
        assert!(Instant::now() < deadline, "the pull never started writing");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon_support::signal(&env.daemon.child, libc::SIGKILL);
    assert!(wait_bounded(&mut env.daemon.child, Duration::from_secs(10)).is_some());
    assert!(wait_bounded(&mut pull, Duration::from_secs(10)).is_some());
    drop(proxy);

    // Restart on the same state: no image and no unverified blob are visible; the partial
    // ingest stays, and the next pull resumes it (`Range`) and commits it.
    let dir = std::mem::replace(&mut env.daemon.dir, tempfile::tempdir().expect("tempdir"));
    let old = std::mem::replace(&mut env.daemon, Daemon::start_in(dir, &[]));
    drop(old);
    assert!(env.ids().is_empty(), "a half-pulled image: {:?}", env.ids());
    let ingest = env.daemon.data_root.join("content/ingest");
    let count = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        count(&ingest),
        1,
        "the partial download is kept for resuming"
    );
    env.ok(&["pull", &direct]);
    assert_eq!(env.ids(), vec![id]);
    assert_eq!(count(&ingest), 0, "the resumed ingest was committed");
    assert!(
        env.daemon
            .log()
            .contains("resuming a partial download at byte"),
        "the second pull started over"
    );
}

#[test]
fn docker_hub_names_pull_from_a_registry_mirror() {
    if !usable() {
        return;
    }
    let registry = RegistryProcess::start(&[]);
    let dir = tempfile::Builder::new()
        .prefix("berth-d")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let config = serde_json::json!({ "registry-mirrors": [format!("http://{}", registry.addr)] });
    std::fs::write(dir.path().join("daemon.json"), config.to_string()).expect("daemon.json");
    let env = Env {
        daemon: Daemon::start_in(dir, &[]),
    };
    let id = env.import_busybox("seed:1");
    // The mirror holds `library/busybox`, as a pull-through cache of Docker Hub would.
    let on_mirror = format!("{}/library/busybox:latest", registry.addr);
    env.ok(&["tag", "seed:1", &on_mirror]);
    env.ok(&["push", &on_mirror]);
    env.ok(&["rmi", "seed:1", &on_mirror]);
    assert!(env.ids().is_empty());

    // No internet here: this can only come from the mirror.
    let out = env.ok(&["pull", "busybox"]);
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    assert_eq!(env.ids(), vec![id]);
    assert_eq!(
        env.ok(&["run", "--rm", "busybox", "echo", "mirrored"]),
        "mirrored\n"
    );
    // (A name the mirror lacks falls back to Docker Hub; not exercised here, since tests
    // send nothing beyond this machine.)
}

#[test]
fn push_and_pull_through_the_cncf_distribution_registry() {
    if !usable() {
        return;
    }
    let Some(registry) = RegistryProcess::start_distribution() else {
        eprintln!("skipped: docker-registry is not installed (scripts/deps.sh)");
        return;
    };
    let env = Env::new();
    let id = env.import_busybox("busybox:latest");
    let name = format!("{}/dist/busybox", registry.addr);
    let tagged = format!("{name}:1");
    env.ok(&["tag", "busybox", &tagged]);
    let out = env.ok(&["push", &tagged]);
    let digest = pushed_digest(&out, "1");
    if let Some(inspect) = skopeo_optional(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{tagged}"),
    ]) {
        let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
        assert_eq!(
            inspect["Digest"],
            digest.as_str(),
            "distribution stores our digest"
        );
    }
    let again = env.ok(&["push", &tagged]);
    assert!(again.contains(": Layer already exists"), "{again}");
    env.ok(&["rmi", "busybox", &tagged]);
    let out = env.ok(&["pull", &tagged]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(env.ids(), vec![id.clone()]);
    env.ok(&["rmi", &tagged]);
    env.ok(&["pull", &format!("{name}@{digest}")]);
    assert_eq!(env.ids(), vec![id]);
    let run = env.docker(&["run", "--rm", &tagged, "echo", "cncf"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "cncf\n");
}

/// [`skopeo`] when it is installed.
fn skopeo_optional(args: &[&str]) -> Option<String> {
    Command::new("skopeo").arg("--version").output().ok()?;
    skopeo(args)
}

#[test]
fn two_concurrent_pulls_of_one_image_both_succeed() {
    if !usable() {
        return;
    }
    let registry = RegistryProcess::start(&[]);
    let env = Env::new();
    let id = env.import_busybox("busybox:latest");
    let tagged = format!("{}/twice/busybox:1", registry.addr);
    env.ok(&["tag", "busybox", &tagged]);
    env.ok(&["push", &tagged]);
    env.ok(&["rmi", "busybox", &tagged]);
    let pulls: Vec<Child> = (0..2)
        .map(|_| {
            Command::new("docker")
                .args(["pull", &tagged])
                .env(
                    "DOCKER_HOST",
                    format!("unix://{}", env.daemon.socket.display()),
                )
                .env("DOCKER_CONFIG", env.dir().join("docker-config"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("docker pull")
        })
        .collect();
    for mut pull in pulls {
        let status = wait_bounded(&mut pull, Duration::from_secs(60));
        let mut stderr = String::new();
        if let Some(mut e) = pull.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        assert_eq!(status, Some(0), "a concurrent pull failed: {stderr}");
    }
    assert_eq!(env.ids(), vec![id]);
    assert_eq!(env.ok(&["run", "--rm", &tagged, "echo", "once"]), "once\n");
}

#[test]
fn a_loaded_image_is_pushed_with_gzip_layers() {
    if !usable() {
        return;
    }
    let registry = RegistryProcess::start(&[]);
    let env = Env::new();
    let id = env.import_busybox("busybox:latest");
    // `docker load` keeps the archive's uncompressed layer as it came.
    let archive = env.dir().join("saved.tar");
    env.ok(&["save", "-o", &archive.display().to_string(), "busybox"]);
    env.ok(&["rmi", "busybox"]);
    env.ok(&["load", "-i", &archive.display().to_string()]);
    let layerdb = env.daemon.data_root.join("images/layerdb");
    let plain = std::fs::read_dir(&layerdb)
        .expect("layerdb")
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|record| record.contains(r#""compression":"none""#));
    assert!(
        plain,
        "the loaded layer is not stored uncompressed; the test proves nothing"
    );
    let tagged = format!("{}/loaded/busybox:1", registry.addr);
    env.ok(&["tag", "busybox", &tagged]);
    let digest = pushed_digest(&env.ok(&["push", &tagged]), "1");
    if let Some(raw) = skopeo_optional(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{tagged}"),
    ]) {
        let manifest: serde_json::Value = serde_json::from_str(&raw).expect("manifest json");
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
    // The same bytes again: the compression is deterministic.
    let again = env.ok(&["push", &tagged]);
    assert_eq!(pushed_digest(&again, "1"), digest);
    assert!(again.contains(": Layer already exists"), "{again}");
    env.ok(&["rmi", "busybox", &tagged]);
    env.ok(&["pull", &tagged]);
    assert_eq!(env.ids(), vec![id]);
}

/// A registry that answers every `/v2/` request without `Bearer <token>` with a Docker
/// Hub-style challenge, and a `/token` endpoint that hands the token out for
/// `shipper:s3cret` only; served in-process on a background thread.
struct TokenRegistry {
    addr: String,
    runtime: Option<tokio::runtime::Runtime>,
    _root: tempfile::TempDir,
}

impl TokenRegistry {
    fn start() -> TokenRegistry {
        use axum::extract::Request;
        use axum::http::{HeaderValue, StatusCode, header};
        use axum::response::IntoResponse;
        use base64::Engine;
        use tower::ServiceExt;

        let root = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let registry = berth_registry_server::Registry::open(root.path(), Default::default())
            .expect("registry")
            .router();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("shipper:s3cret")
        );
        let realm = format!("http://{addr}/token");
        let token = move |req: Request| {
            let ok = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                == Some(good.as_str());
            async move {
                if ok {
                    axum::Json(serde_json::json!({"token": "t0k"})).into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }
        };
        let guard = move |req: Request| {
            let registry = registry.clone();
            let realm = realm.clone();
            async move {
                if req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .is_some_and(|v| v == "Bearer t0k")
                {
                    return match registry.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                }
                let challenge = format!(r#"Bearer realm="{realm}",service="test-registry""#);
                let body =
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                let mut r = (StatusCode::UNAUTHORIZED, body).into_response();
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
        };
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token))
            .fallback(guard);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenRegistry {
            addr,
            runtime: Some(runtime),
            _root: root,
        }
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

#[test]
fn login_push_pull_against_a_token_auth_registry() {
    if !usable() {
        return;
    }
    let registry = TokenRegistry::start();
    let env = Env::new();
    let id = env.import_busybox("busybox:latest");
    let tagged = format!("{}/private/busybox:1", registry.addr);
    env.ok(&["tag", "busybox", &tagged]);
    let err = env.fails(&["push", &tagged]);
    assert!(
        err.contains("incorrect username or password") || err.contains("unauthorized"),
        "{err}"
    );
    let err = env.fails(&["login", "-u", "shipper", "-p", "wrong", &registry.addr]);
    assert!(err.contains("401 Unauthorized"), "{err}");
    let out = env.ok(&["login", "-u", "shipper", "-p", "s3cret", &registry.addr]);
    assert!(out.contains("Login Succeeded"), "{out}");
    env.ok(&["push", &tagged]);
    env.ok(&["rmi", "busybox", &tagged]);
    env.ok(&["pull", &tagged]);
    assert_eq!(env.ids(), vec![id]);
}

/// The snapshot directories of a daemon's snapshotter (image layers and unpacks in
/// progress alike).
fn snapshot_dirs(env: &Env) -> usize {
    std::fs::read_dir(env.daemon.data_root.join("snapshotter/snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_gzip_bomb_layer_is_refused_and_leaves_no_layer_behind() {
    if !usable() {
        return;
    }
    let registry = RegistryProcess::start(&[]);
    let dir = tempfile::Builder::new()
        .prefix("berth-d")
        .tempdir_in("/tmp")
        .expect("tempdir");
    // A low ratio, so a small bomb trips it: the push gzips 24 MiB of zeros to ~24 kB.
    std::fs::write(
        dir.path().join("daemon.json"),
        r#"{"berth-max-layer-ratio": 100}"#,
    )
    .expect("config file");
    let env = Env {
        daemon: Daemon::start_in(dir, &[]),
    };
    let root = env.dir().join("zero-root");
    std::fs::create_dir_all(&root).expect("dir");
    let zeros = std::fs::File::create(root.join("zeros")).expect("file");
    zeros.set_len(24 << 20).expect("sparse file");
    drop(zeros);
    let tar = env.dir().join("zeros.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    // An import reads a plain tar (ratio 1): it is not a bomb there.
    env.ok(&["import", &tar.display().to_string(), "zeros:1"]);
    let name = format!("{}/bomb/zeros:1", registry.addr);
    env.ok(&["tag", "zeros:1", &name]);
    let out = env.ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    env.ok(&["rmi", "zeros:1", &name]);
    assert!(env.ids().is_empty());
    assert_eq!(snapshot_dirs(&env), 0, "rmi left layers behind");

    let err = env.fails(&["pull", &name]);
    assert!(
        err.contains("layer expands more than 100 times its compressed size"),
        "{err}"
    );
    assert!(
        env.ids().is_empty(),
        "a bomb was registered: {:?}",
        env.ids()
    );
    assert_eq!(snapshot_dirs(&env), 0, "the refused layer's files stayed");
    // Nor its blobs: only the local image's own blobs (config, plain and gzip layer)
    // were stored before, and rmi removed them.
    let blobs = std::fs::read_dir(env.daemon.data_root.join("content/blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "the refused image's blobs stayed");
}

/// `berth <args>` (the berth client) against the test daemon.
fn berth_client(env: &Env, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("-H")
        .arg(format!("unix://{}", env.daemon.socket.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("berth client");
    assert!(
        out.status.success(),
        "berth {args:?} failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The media types of the manifest and of its first layer, through skopeo when present.
fn manifest_types(reference: &str) -> Option<(String, String)> {
    let raw = skopeo_optional(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])?;
    let manifest: serde_json::Value = serde_json::from_str(&raw).expect("manifest json");
    Some((
        manifest["mediaType"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        manifest["layers"][0]["mediaType"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

#[test]
fn chunked_and_zstd_pushes_to_berth_and_distribution_registries() {
    if !usable() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-d")
        .tempdir_in("/tmp")
        .expect("tempdir");
    // Small chunks, so that even busybox's layer takes several PATCHes.
    std::fs::write(
        dir.path().join("daemon.json"),
        r#"{"berth-push-chunk-size": 262144}"#,
    )
    .expect("config file");
    let env = Env {
        daemon: Daemon::start_in(dir, &[]),
    };
    let id = env.import_busybox("busybox:latest");
    // `docker load` keeps the layer uncompressed: a push compresses it as asked.
    let archive = env.dir().join("saved.tar");
    env.ok(&["save", "-o", &archive.display().to_string(), "busybox"]);
    env.ok(&["rmi", "busybox"]);
    env.ok(&["load", "-i", &archive.display().to_string()]);

    let berth_registry = RegistryProcess::start(&[]);
    let distribution = RegistryProcess::start_distribution();
    let mut registries = vec![&berth_registry];
    registries.extend(distribution.as_ref());
    let mut pushed = Vec::new();
    for registry in registries {
        // gzip (dockerd's) through the docker CLI, zstd through `berth push --compression`.
        let gzip = format!("{}/chunked/gzip:1", registry.addr);
        env.ok(&["tag", "busybox", &gzip]);
        let out = env.ok(&["push", &gzip]);
        assert!(out.contains(": Pushed"), "{out}");
        let zstd = format!("{}/chunked/zstd:1", registry.addr);
        env.ok(&["tag", "busybox", &zstd]);
        let out = berth_client(&env, &["push", "--compression", "zstd", &zstd]);
        assert!(out.contains(": Pushed"), "{out}");
        if let Some(types) = manifest_types(&zstd) {
            assert_eq!(
                types,
                (
                    "application/vnd.oci.image.manifest.v1+json".to_owned(),
                    "application/vnd.oci.image.layer.v1.tar+zstd".to_owned()
                )
            );
        }
        if let Some(types) = manifest_types(&gzip) {
            assert_eq!(
                types.1, "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "{types:?}"
            );
        }
        pushed.extend([gzip, zstd]);
    }
    let log = env.daemon.log();
    let chunked = log
        .lines()
        .filter_map(|l| l.split("uploaded in ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse::<u32>().ok())
        .filter(|n| *n > 1)
        .count();
    assert!(
        chunked >= 2,
        "layers were not uploaded in several chunks:\n{}",
        tail(&log)
    );
    let err = berth_client_fails(&env, &["push", "--compression", "lz4", &pushed[0]]);
    assert!(err.contains("invalid compression"), "{err}");

    // Every variant pulls back to the same image, and runs.
    for name in &pushed {
        let images = env.ok(&["images", "-q"]);
        for short in images.split_whitespace() {
            env.ok(&["rmi", "-f", short]);
        }
        assert!(env.ids().is_empty());
        env.ok(&["pull", name]);
        assert_eq!(env.ids(), vec![id.clone()], "{name}");
        assert_eq!(
            env.ok(&["run", "--rm", name, "echo", "ok"]),
            "ok\n",
            "{name}"
        );
    }
}

fn berth_client_fails(env: &Env, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("-H")
        .arg(format!("unix://{}", env.daemon.socket.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("berth client");
    assert!(!out.status.success(), "berth {args:?} succeeded");
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}
