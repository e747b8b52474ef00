//! Containers through the real daemon and the real docker CLI: run (attached, -d, --rm, -i),
//! exit codes, ps, logs, inspect, stop, kill, rm (-f), name conflicts, and a daemon killed
//! with SIGKILL while a container runs.
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise. The busybox
//! image is imported into the data root's image store before the daemon starts.

mod daemon_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_support::Daemon;

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

/// A fresh state dir whose data root already holds `busybox:latest`.
fn prepared_dir() -> tempfile::TempDir {
    daemon_support::busybox_dir()
}

/// A daemon with busybox, whose containers are force-removed at the end of the test.
struct Env {
    daemon: Daemon,
}

impl Env {
    fn new() -> Env {
        Env {
            daemon: Daemon::start_in(prepared_dir(), &[]),
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.daemon.docker(args)
    }

    /// Runs docker with `input` on its stdin (bounded).
    fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new("docker")
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.daemon.socket.display()),
            )
            .env(
                "DOCKER_CONFIG",
                self.daemon.dir.path().join("docker-config"),
            )
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("docker {args:?} did not finish in 30s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    /// `docker …` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}\ndaemon log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            tail(&self.daemon.log())
        );
        text(&out.stdout)
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
        kill_leftover_shims(self.daemon.dir.path());
    }
}

/// The shims of this test: processes whose command line is a `shim` and mentions `dir`.
fn shims_of(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = text(&cmdline).replace('\0', " ");
            if cmdline.contains(" shim ") && cmdline.contains(&needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

fn kill_leftover_shims(dir: &Path) {
    for pid in shims_of(dir) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn assert_no_shims(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shims_of(dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(shims_of(dir).is_empty(), "shims left: {:?}", shims_of(dir));
}

#[test]
fn run_rm_echo_prints_and_cleans_up() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let out = env.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(
        text(&out.stdout),
        "hi\n",
        "stderr: {}\n{}",
        text(&out.stderr),
        tail(&env.daemon.log())
    );
    assert_eq!(out.status.code(), Some(0));
    // --rm: nothing left, not even a shim.
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert_no_shims(env.daemon.dir.path());
}

#[test]
fn exit_codes_come_through_the_cli() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let out = env.docker(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = env.docker(&["run", "busybox", "sh", "-c", "echo err >&2; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "err\n");
    let out = env.docker(&["run", "--rm", "busybox", "nosuch"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("executable file not found"),
        "{}",
        text(&out.stderr)
    );
    // A missing image is pulled first; from a loopback port nobody serves, never the internet.
    let out = env.docker(&["run", "--rm", "127.0.0.1:1/nosuchimage"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Unable to find image '127.0.0.1:1/nosuchimage:latest' locally"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stdin_is_piped_and_closed() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let out = env.docker_stdin(&["run", "--rm", "-i", "busybox", "cat"], b"one\ntwo\n");
    assert_eq!(text(&out.stdout), "one\ntwo\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn detached_lifecycle_ps_logs_inspect_stop_rm() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--label",
            "k=v",
            "busybox",
            "sh",
            "-c",
            "echo started; echo oops >&2; sleep 30",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let ps = env.ok(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert!(ps.starts_with(&format!("{} web Up", &id[..12])), "{ps}");
    assert_eq!(
        env.ok(&["ps", "-q", "--filter", "label=k=v", "--filter", "name=web"])
            .trim(),
        &id[..12]
    );
    assert_eq!(env.ok(&["ps", "-q", "--filter", "status=exited"]), "");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = env.docker(&["logs", "web"]);
        if text(&logs.stdout) == "started\n" && text(&logs.stderr) == "oops\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logs: {:?} {:?}",
            text(&logs.stdout),
            text(&logs.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "web"])).expect("inspect JSON");
    let c = &inspect[0];
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/web");
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Running"], true);
    assert!(c["State"]["Pid"].as_i64().unwrap_or(0) > 0);
    assert_eq!(c["Config"]["Hostname"], &id[..12]);
    assert_eq!(c["Config"]["Labels"]["k"], "v");
    assert_eq!(c["Path"], "sh");

    // Name conflict.
    let out = env.docker(&["create", "--name", "web", "busybox", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )),
        "{}",
        text(&out.stderr)
    );
    // rm of a running container is refused.
    let out = env.docker(&["rm", "web"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("You cannot remove a running container {id}")),
        "{}",
        text(&out.stderr)
    );
    let started = Instant::now();
    env.ok(&["stop", "-t", "1", "web"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    let state: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "web"])).expect("inspect JSON");
    assert_eq!(state[0]["State"]["Status"], "exited");
    assert_eq!(state[0]["State"]["ExitCode"], 137);
    assert_eq!(
        env.ok(&["ps", "-aq", "--filter", "exited=137"]).trim(),
        &id[..12]
    );
    // Stopping again is a no-op; killing a stopped container is a conflict.
    env.ok(&["stop", "web"]);
    assert!(!env.docker(&["kill", "web"]).status.success());
    env.ok(&["rm", "web"]);
    let out = env.docker(&["inspect", "--type", "container", "web"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("No such container: web"),
        "{}",
        text(&out.stderr)
    );
    assert_no_shims(env.daemon.dir.path());
}

#[test]
fn rm_force_removes_a_running_container() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let id = env
        .ok(&["run", "-d", "busybox", "sleep", "30"])
        .trim()
        .to_owned();
    env.ok(&["rm", "-f", &id[..8]]);
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert_no_shims(env.daemon.dir.path());
}

/// CVE-2019-5736: the daemon starts shims from a read-only view of its binary, so a write
/// through a shim's `/proc/<pid>/exe` hits a read-only mount; and the view is detached, so no
/// mount of it is left anywhere (not even after a SIGKILL of the daemon).
#[test]
fn shims_run_from_a_read_only_binary_that_no_mount_table_shows() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let id = env.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"]);
    let shims = shims_of(env.daemon.dir.path());
    assert!(!shims.is_empty(), "no shim found");
    for pid in shims {
        let exe = format!("/proc/{pid}/exe");
        let st = nix::sys::statvfs::statvfs(exe.as_str()).expect("statvfs");
        assert!(
            st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
            "{exe} is on a writable mount"
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mountinfo.contains(".ro-binary"), "{mountinfo}");
    let exec_root = env.daemon.dir.path().join("exec");
    let leftovers: Vec<_> = std::fs::read_dir(&exec_root)
        .expect("exec root")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".ro-binary"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    env.ok(&["rm", "-f", id.trim()]);
}

#[test]
fn containers_survive_a_daemon_killed_with_sigkill() {
    if !usable() {
        return;
    }
    let mut env = Env::new();
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "survivor",
            "busybox",
            "sh",
            "-c",
            "echo before; sleep 30",
        ])
        .trim()
        .to_owned();
    daemon_support::signal(&env.daemon.child, libc::SIGKILL);
    let _ = env.daemon.child.wait();
    let placeholder = tempfile::tempdir().expect("tempdir");
    let dir = std::mem::replace(&mut env.daemon.dir, placeholder);
    // The old socket and pid file are stale; the new daemon must cope.
    env.daemon = Daemon::start_in(dir, &[]);
    let ps = env.ok(&["ps", "--format", "{{.ID}} {{.Status}}"]);
    assert!(ps.starts_with(&format!("{} Up", &id[..12])), "{ps}");
    assert_eq!(env.ok(&["logs", "survivor"]), "before\n");
    env.ok(&["stop", "-t", "1", "survivor"]);
    let state: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "survivor"])).expect("inspect JSON");
    assert_eq!(state[0]["State"]["Status"], "exited");
    assert_eq!(state[0]["State"]["ExitCode"], 137);
    env.ok(&["rm", "survivor"]);
    assert_no_shims(env.daemon.dir.path());
}

#[test]
fn tty_output_is_raw_and_logged() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let out = env.docker(&[
        "run",
        "--name",
        "tt",
        "-t",
        "busybox",
        "sh",
        "-c",
        "echo tty; exit 4",
    ]);
    assert_eq!(text(&out.stdout), "tty\r\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(env.ok(&["logs", "tt"]), "tty\r\n");
    env.ok(&["rm", "tt"]);
}

#[test]
fn interactive_tty_through_a_pty() {
    if !usable() {
        return;
    }
    let env = Env::new();
    // `script` gives the docker CLI a terminal; the shell reads one command from it.
    let command = "docker run --rm -it busybox sh -c 'read line; echo got:$line; exit 6'";
    let mut child = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.daemon.socket.display()),
        )
        .env("DOCKER_CONFIG", env.daemon.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(2));
    stdin.write_all(b"hello\r").expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("docker run -it did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let out = child.wait_with_output().expect("output");
    assert!(
        text(&out.stdout).contains("got:hello"),
        "{:?}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stdout));
}

/// `script` giving the docker CLI a terminal, against this daemon.
fn docker_in_pty(env: &Env, command: &str) -> std::process::Child {
    Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.daemon.socket.display()),
        )
        .env("DOCKER_CONFIG", env.daemon.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script")
}

fn wait_child(child: &mut std::process::Child, what: &str) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A raw hijacked attach; returns the connection after the 101.
fn raw_attach(env: &Env, container: &str, keys: Option<&str>) -> std::os::unix::net::UnixStream {
    use std::io::Read;
    let mut conn = std::os::unix::net::UnixStream::connect(&env.daemon.socket).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let keys = keys.map(|k| format!("&detachKeys={k}")).unwrap_or_default();
    write!(
        conn,
        "POST /containers/{container}/attach?stream=1&stdin=1&stdout=1&stderr=1{keys} HTTP/1.1\r\n\
         Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        conn.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", text(&head));
    conn
}

/// Reads until `needle` shows up in the stream (bounded by the read timeout).
fn read_until(conn: &mut std::os::unix::net::UnixStream, needle: &str) -> String {
    use std::io::Read;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !text(&seen).contains(needle) {
        let n = conn
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}; got {:?}", text(&seen)));
        assert!(n > 0, "attach ended before {needle:?}: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    text(&seen)
}

#[test]
fn detach_keys_leave_the_container_running() {
    if !usable() {
        return;
    }
    let env = Env::new();
    // With a terminal: ctrl-p ctrl-q leaves the shell running, and it can be attached again.
    let mut run = docker_in_pty(&env, "docker run -it --name dt busybox sh");
    let mut keys = run.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(2));
    keys.write_all(b"echo one\r").expect("write");
    std::thread::sleep(Duration::from_millis(300));
    keys.write_all(b"\x10\x11").expect("write");
    assert_eq!(wait_child(&mut run, "docker run -it (detach)"), Some(0));
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.Running}}", "dt"]),
        "true\n"
    );
    let mut again = docker_in_pty(&env, "docker attach dt");
    let mut input = again.stdin.take().expect("stdin");
    std::thread::sleep(Duration::from_secs(2));
    input.write_all(b"exit 5\r").expect("write");
    assert_eq!(wait_child(&mut again, "docker attach"), Some(5));
    assert_eq!(env.ok(&["wait", "dt"]), "5\n");

    // Without a terminal the daemon watches for the keys (here the client's own).
    // (`run -d -i`: stdin open, not closed when a client leaves.)
    env.ok(&["run", "-d", "-i", "--name", "nt", "busybox", "sh"]);
    let mut conn = raw_attach(&env, "nt", Some("ctrl-a,x"));
    conn.write_all(b"echo hi\n").expect("write");
    read_until(&mut conn, "hi");
    conn.write_all(b"\x01x").expect("write");
    {
        use std::io::Read;
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest)
            .expect("the daemon ends the attach");
    }
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.Running}}", "nt"]),
        "true\n"
    );
    // stdin stayed open: the shell still takes commands; a false start reaches it unchanged.
    let mut conn = raw_attach(&env, "nt", None);
    conn.write_all(b"printf '%s\\n' \"a\x10b\" | od -c | head -1\n")
        .expect("write");
    read_until(&mut conn, "020");
    conn.write_all(b"exit 7\n").expect("write");
    assert_eq!(env.ok(&["wait", "nt"]), "7\n");

    let bad = env.daemon.http(
        "POST /containers/nt/attach?stream=1&stdin=1&detachKeys=ctrl-1 HTTP/1.1\r\nHost: x\r\n\
         Content-Length: 0\r\n\r\n",
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("Invalid detach keys (ctrl-1) provided"),
        "{}",
        bad.body
    );
    env.ok(&["rm", "dt", "nt"]);
}

#[test]
fn create_start_attach_wait_kill_restart_and_events() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    env.ok(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo attached; exit 2",
    ]);
    let ps = env.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(ps, "c1 Created\n");
    let out = env.docker(&["start", "-a", "c1"]);
    assert_eq!(text(&out.stdout), "attached\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(env.ok(&["wait", "c1"]), "2\n");
    // Restart runs it again; the log has both runs.
    env.ok(&["restart", "-t", "1", "c1"]);
    assert_eq!(env.ok(&["wait", "c1"]), "2\n");
    assert_eq!(env.ok(&["logs", "c1"]), "attached\nattached\n");
    assert_eq!(env.ok(&["logs", "--tail", "1", "c1"]), "attached\n");

    // kill with a signal the process handles, then the default SIGKILL.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "trap",
        "busybox",
        "sh",
        "-c",
        "trap 'echo usr1' USR1; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    env.ok(&["kill", "-s", "USR1", "trap"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.ok(&["logs", "trap"]) != "usr1\n" {
        assert!(Instant::now() < deadline, "no usr1 in the log");
        std::thread::sleep(Duration::from_millis(100));
    }
    env.ok(&["kill", "trap"]);
    assert_eq!(env.ok(&["wait", "trap"]), "137\n");
    let out = env.docker(&["kill", "trap"]);
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
    env.ok(&["rm", "c1", "trap"]);

    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1)
    .to_string();
    let events = env.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=trap",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.lines().collect();
    for expected in ["create", "start", "die", "destroy"] {
        assert!(actions.contains(&expected), "{actions:?}");
    }
}

#[test]
fn logs_follow_until_the_container_exits() {
    if !usable() {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
    ]);
    let out = env.docker(&["logs", "-f", "counter"]);
    assert_eq!(text(&out.stdout), "1\n2\n3\n", "{}", text(&out.stderr));
    env.ok(&["rm", "counter"]);
}

#[test]
fn bad_input_is_refused_and_nothing_is_left_behind() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let out = env.docker(&["create", "--name", "a b", "busybox", "true"]);
    assert!(
        text(&out.stderr).contains("Invalid container name (a b)"),
        "{}",
        text(&out.stderr)
    );
    let response = env.daemon.http(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n{bad",
    );
    assert_eq!(response.status, 400);
    let body = r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"Memory":-1}}"#;
    let response = env.daemon.http(&format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(response.status, 400, "{}", response.body);
    let body = r#"{"Image":"busybox","Cmd":"true","Tty":"yes"}"#;
    let response = env.daemon.http(&format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(response.status, 400, "{}", response.body);
    let response = env
        .daemon
        .http("GET /v1.41/containers/nosuch/json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["message"], "No such container: nosuch");
    // A failed start of a --rm container removes it.
    let out = env.docker(&["run", "--rm", "--name", "gone", "busybox", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.ok(&["ps", "-aq"]).is_empty() {
        assert!(Instant::now() < deadline, "the --rm container stayed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing half-made on disk.
    let containers = env.daemon.data_root.join("containers");
    assert_eq!(
        std::fs::read_dir(&containers)
            .expect("containers dir")
            .count(),
        0
    );
}

#[test]
fn sigterm_leaves_containers_running() {
    if !usable() {
        return;
    }
    let mut env = Env::new();
    let id = env
        .ok(&["run", "-d", "busybox", "sleep", "30"])
        .trim()
        .to_owned();
    let (status, log) = env.daemon.terminate();
    assert_eq!(status, Some(0), "{}", tail(&log));
    let placeholder = tempfile::tempdir().expect("tempdir");
    let dir = std::mem::replace(&mut env.daemon.dir, placeholder);
    assert_eq!(
        shims_of(dir.path()).len(),
        1,
        "the shim went with the daemon"
    );
    env.daemon = Daemon::start_in(dir, &[]);
    let ps = env.ok(&["ps", "-q", "--no-trunc"]);
    assert_eq!(ps.trim(), id);
    env.ok(&["rm", "-f", &id]);
    assert_no_shims(env.daemon.dir.path());
}

#[test]
fn pause_unpause_rename_and_prune() {
    if !usable() {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "p1", "busybox", "sleep", "30"]);
    env.ok(&["pause", "p1"]);
    let ps = env.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("p1 Up") && ps.contains("(Paused)"), "{ps}");
    assert_eq!(
        env.ok(&["ps", "-q", "--filter", "status=paused"])
            .lines()
            .count(),
        1
    );
    env.ok(&["unpause", "p1"]);
    env.ok(&["rename", "p1", "p2"]);
    let out = env.docker(&["inspect", "--type", "container", "p1"]);
    assert!(!out.status.success());
    // Stop works on a paused container too.
    env.ok(&["pause", "p2"]);
    env.ok(&["stop", "-t", "1", "p2"]);
    env.ok(&[
        "create", "--label", "keep=1", "--name", "kept", "busybox", "true",
    ]);
    let pruned = env.ok(&["container", "prune", "-f", "--filter", "label!=keep=1"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert_eq!(env.ok(&["ps", "-a", "--format", "{{.Names}}"]), "kept\n");
    env.ok(&["rm", "kept"]);
}

#[test]
fn an_exit_recorded_while_daemon_and_shim_were_gone_is_restored() {
    if !usable() {
        return;
    }
    let mut env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "qq",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    daemon_support::signal(&env.daemon.child, libc::SIGKILL);
    let _ = env.daemon.child.wait();
    let placeholder = tempfile::tempdir().expect("tempdir");
    let dir = std::mem::replace(&mut env.daemon.dir, placeholder);
    // The container exits while no daemon runs; then its shim dies too.
    let exit_json = std::fs::read_dir(dir.path().join("exec/shims"))
        .expect("shims dir")
        .flatten()
        .map(|e| e.path().join("exit.json"))
        .next()
        .expect("a shim state dir");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exit_json.exists() {
        assert!(Instant::now() < deadline, "no exit.json");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_leftover_shims(dir.path());
    env.daemon = Daemon::start_in(dir, &[]);
    let state: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "qq"])).expect("inspect JSON");
    assert_eq!(state[0]["State"]["Status"], "exited");
    assert_eq!(state[0]["State"]["ExitCode"], 7);
    env.ok(&["rm", "qq"]);
}

#[test]
fn exec_runs_in_the_container() {
    if !usable() {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run", "-d", "--name", "ex", "-e", "A=1", "busybox", "sleep", "30",
    ]);
    let out = env.docker(&[
        "exec",
        "-e",
        "E=2",
        "-w",
        "/tmp",
        "ex",
        "sh",
        "-c",
        "echo o $A $E $(pwd); echo e >&2; exit 7",
    ]);
    assert_eq!(text(&out.stdout), "o 1 2 /tmp\n", "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "e\n");
    assert_eq!(out.status.code(), Some(7));
    let out = env.docker_stdin(&["exec", "-i", "ex", "cat"], b"piped\n");
    assert_eq!(text(&out.stdout), "piped\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    let out = env.docker(&["exec", "-u", "nobody", "ex", "id", "-u"]);
    assert_eq!(text(&out.stdout), "65534\n", "{}", text(&out.stderr));
    let out = env.docker(&["exec", "-t", "ex", "sh", "-c", "echo tty"]);
    assert_eq!(text(&out.stdout), "tty\r\n", "{}", text(&out.stderr));
    env.ok(&["exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/d"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.docker(&["exec", "ex", "cat", "/tmp/d"]).stdout != b"detached\n" {
        assert!(Instant::now() < deadline, "exec -d did not run");
        std::thread::sleep(Duration::from_millis(100));
    }
    let top = env.ok(&["top", "ex"]);
    assert!(
        top.lines().next().is_some_and(|l| l.contains("PID")),
        "{top}"
    );
    assert!(top.contains("sleep 30"), "{top}");
    assert_eq!(
        top.lines().count(),
        2,
        "only the container's process: {top}"
    );
    let top = env.ok(&["top", "ex", "-o", "pid,args"]);
    assert!(top.starts_with("PID"), "{top}");
    env.ok(&["stop", "-t", "0", "ex"]);
    let out = env.docker(&["exec", "ex", "true"]);
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
    env.ok(&["rm", "ex"]);
}

#[test]
fn restart_policies() {
    if !usable() {
        return;
    }
    let env = Env::new();
    // The CLI refuses --rm with --restart itself; the API must too.
    let body = r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#;
    let response = env.daemon.http(&format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(response.status, 400, "{}", response.body);
    assert_eq!(
        response.json()["message"],
        "can't create 'AutoRemove' container with restart policy"
    );
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state: serde_json::Value =
            serde_json::from_str(&env.ok(&["inspect", "flaky"])).expect("inspect JSON");
        let c = &state[0];
        if c["RestartCount"] == 2 && c["State"]["Status"] == "exited" {
            break;
        }
        assert!(Instant::now() < deadline, "{c}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(env.ok(&["logs", "flaky"]), "run\nrun\nrun\n");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state: serde_json::Value =
            serde_json::from_str(&env.ok(&["inspect", "always"])).expect("inspect JSON");
        if state[0]["RestartCount"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never restarted");
        std::thread::sleep(Duration::from_millis(100));
    }
    env.ok(&["stop", "-t", "1", "always"]);
    std::thread::sleep(Duration::from_secs(1));
    let state: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "always"])).expect("inspect JSON");
    assert_eq!(
        state[0]["State"]["Running"], false,
        "a stopped container stays stopped"
    );
    env.ok(&["rm", "-f", "flaky", "always"]);
}

#[test]
fn create_options_reach_the_container() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let host_dir = env.daemon.dir.path().join("shared");
    std::fs::create_dir(&host_dir).expect("dir");
    std::fs::write(host_dir.join("f"), "from host\n").expect("file");
    let bind = format!("{}:/data:ro", host_dir.display());
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        let out = env.docker(&all);
        (text(&out.stdout), text(&out.stderr), out.status.code())
    };
    let (out, err, _) = run(&["-v", &bind, "busybox", "cat", "/data/f"]);
    assert_eq!(out, "from host\n", "{err}");
    let (_, err, code) = run(&["-v", &bind, "busybox", "touch", "/data/g"]);
    assert_ne!(code, Some(0), "a :ro bind is writable: {err}");
    let mount = format!("type=bind,source={},target=/m", host_dir.display());
    let (out, err, _) = run(&["--mount", &mount, "busybox", "cat", "/m/f"]);
    assert_eq!(out, "from host\n", "{err}");
    let (out, err, _) = run(&[
        "--tmpfs",
        "/scratch",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "touch /scratch/x && echo tmpfs-ok; touch /root-file 2>/dev/null || echo ro-ok",
    ]);
    assert_eq!(out, "tmpfs-ok\nro-ok\n", "{err}");
    let (out, err, _) = run(&[
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u):$(id -g) $(hostname) $(cat /etc/hostname)",
    ]);
    assert_eq!(out, "1 /tmp 1000:1000 box box\n", "{err}");
    let (out, err, _) = run(&["--entrypoint", "echo", "busybox", "via", "entrypoint"]);
    assert_eq!(out, "via entrypoint\n", "{err}");
    let (out, err, _) = run(&[
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net",
    ]);
    assert_eq!(out, "lo\n", "{err}");
    let (out, err, _) = run(&[
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(out, "67108864\n50\n", "{err}");
    let (out, err, _) = run(&["busybox", "sh", "-c", "grep Cap[EB] /proc/self/status"]);
    assert!(
        out.contains("00000000a80425fb"),
        "Docker's default capabilities: {out} {err}"
    );
}

#[test]
fn attach_to_a_running_container_and_log_options() {
    if !usable() {
        return;
    }
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "busybox",
        "sh",
        "-c",
        "echo early; sleep 1; echo late; exit 9",
    ]);
    let out = env.docker(&["attach", "late"]);
    assert_eq!(text(&out.stdout), "late\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(9));
    let stamped = env.ok(&["logs", "--timestamps", "late"]);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 2, "{stamped}");
    assert!(
        lines[0].ends_with("Z early") && lines[0].starts_with("20"),
        "{stamped}"
    );
    let since = lines[1].split(' ').next().expect("timestamp");
    assert_eq!(env.ok(&["logs", "--since", since, "late"]), "late\n");
    assert_eq!(env.ok(&["logs", "--until", since, "late"]), "early\n");
    let out = env.docker(&["logs", "nosuch"]);
    assert!(text(&out.stderr).contains("No such container: nosuch"));
    env.ok(&["rm", "late"]);
}

#[test]
fn a_stopped_container_starts_again_after_a_reboot_wiped_the_exec_root() {
    if !usable() {
        return;
    }
    let mut env = Env::new();
    let id = env
        .ok(&["run", "-d", "--name", "boot", "busybox", "echo", "again"])
        .trim()
        .to_owned();
    assert_eq!(env.ok(&["wait", "boot"]), "0\n");
    let (status, log) = env.daemon.terminate();
    assert_eq!(status, Some(0), "{}", tail(&log));
    kill_leftover_shims(env.daemon.dir.path());
    let placeholder = tempfile::tempdir().expect("tempdir");
    let dir = std::mem::replace(&mut env.daemon.dir, placeholder);
    // What a reboot does: the exec root (a tmpfs) is empty and nothing is mounted.
    let rootfs = dir.path().join(format!("data/containers/{id}/rootfs"));
    let umount = Command::new("umount")
        .arg(&rootfs)
        .status()
        .expect("umount");
    assert!(umount.success());
    std::fs::remove_dir_all(dir.path().join("exec")).expect("remove the exec root");
    env.daemon = Daemon::start_in(dir, &[]);
    let out = env.docker(&["start", "-a", "boot"]);
    assert_eq!(text(&out.stdout), "again\n", "{}", text(&out.stderr));
    assert_eq!(env.ok(&["logs", "boot"]), "again\nagain\n");
    env.ok(&["rm", "boot"]);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Not a check: prints timings and memory (`cargo test -- --ignored --nocapture measure`).
#[test]
#[ignore]
fn measure_run_latency_and_memory() {
    if !usable() {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "--rm", "busybox", "true"]);
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        env.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!("docker run --rm busybox true: median {:?}", times[5]);
    if std::env::var_os("BERTH_MEASURE_LOG").is_some() {
        eprintln!("{}", tail(&env.daemon.log()));
    }
    eprintln!("daemon RSS idle: {} KiB", rss_kib(env.daemon.child.id()));
    for i in 0..10 {
        env.ok(&[
            "run",
            "-d",
            "--name",
            &format!("m{i}"),
            "busybox",
            "sleep",
            "60",
        ]);
    }
    let shims = shims_of(env.daemon.dir.path());
    let total: u64 = shims.iter().map(|p| rss_kib(*p as u32)).sum();
    eprintln!(
        "{} shims, mean RSS {} KiB; daemon RSS {} KiB",
        shims.len(),
        total / shims.len().max(1) as u64,
        rss_kib(env.daemon.child.id())
    );
}

fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn inspect_and_list_have_the_golden_fields() {
    if !usable() {
        return;
    }
    let golden = |name: &str| -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/golden")
            .join(name);
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("golden file")).expect("JSON");
        if v.is_array() { v[0].clone() } else { v }
    };
    if !Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/golden")
        .exists()
    {
        eprintln!("skipped: no golden files");
        return;
    }
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "gold", "busybox", "sleep", "30"]);
    let ours: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "gold"])).expect("inspect JSON");
    let ours = &ours[0];
    let want = golden("container-inspect.json");
    assert_eq!(keys(ours), keys(&want));
    let mut state = keys(&want["State"]);
    state.remove("Health");
    assert_eq!(keys(&ours["State"]), state);
    let mut config = keys(&want["Config"]);
    config.remove("Healthcheck");
    config.remove("ExposedPorts");
    let mut got = keys(&ours["Config"]);
    got.remove("ExposedPorts");
    got.remove("StopSignal");
    got.remove("StopTimeout");
    assert_eq!(got, config);
    assert_eq!(ours["Config"]["Cmd"], serde_json::json!(["sleep", "30"]));
    let list: serde_json::Value = {
        let response = env
            .daemon
            .http("GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\n\r\n");
        response.json()
    };
    assert_eq!(keys(&list[0]), keys(&golden("containers-list.json")));
    env.ok(&["rm", "-f", "gold"]);
}

#[test]
fn ps_orders_newest_first_and_filters_before_since() {
    if !usable() {
        return;
    }
    let env = Env::new();
    for name in ["first", "second", "third"] {
        env.ok(&["create", "--name", name, "busybox", "true"]);
    }
    let names = |args: &[&str]| {
        let mut all = vec!["ps", "-a", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        env.ok(&all)
    };
    assert_eq!(names(&[]), "third\nsecond\nfirst\n");
    assert_eq!(names(&["--filter", "before=second"]), "first\n");
    assert_eq!(names(&["--filter", "since=second"]), "third\n");
    assert_eq!(names(&["-n", "1"]), "third\n");
    env.ok(&["rm", "first", "second", "third"]);
}

#[test]
fn rm_f_of_a_container_that_is_just_exiting_succeeds() {
    let env = Env::new();
    // Each container exits at once; rm -f races its exit being recorded.
    for i in 0..15 {
        let id = env.ok(&["run", "-d", "busybox", "true"]);
        let out = env.docker(&["rm", "-f", id.trim()]);
        assert!(
            out.status.success(),
            "round {i}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn init_runs_as_pid_1_reaps_and_forwards_signals() {
    let env = Env::new();
    let ps = env.ok(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,args"]);
    let pid1 = ps
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or("");
    assert!(pid1.contains("/sbin/docker-init -- ps"), "{ps}");
    // sleep as pid 1 would ignore SIGTERM; under the init it gets it and stop is quick.
    env.ok(&[
        "run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "300",
    ]);
    let t0 = Instant::now();
    env.ok(&["stop", "-t", "20", "sleeper"]);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "sleeper"])
            .trim(),
        "143"
    );
    // Orphans are reaped: no zombie is left after a double fork.
    let out = env.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "(sleep 0.2 &) ; sleep 1; ps -o stat | grep -c Z || true",
    ]);
    assert_eq!(out.trim(), "0", "{out}");
}
