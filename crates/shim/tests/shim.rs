//! End-to-end tests of `berth shim` against the real kernel and runc, as root.
//!
//! Every test uses its own container id, state directory, log and runc `--root`, and a
//! [`Harness`] whose `Drop` force-deletes the container and kills the shim on every path.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_shim::client::{AttachOptions, ShimClient};
use berth_shim::protocol::{Status, StdStream};
use berth_testsupport::{Bundle, is_root, unique_name};

const RUNC: &str = "/usr/sbin/runc";

/// The runtime the shim drives in these tests: the built-in one unless
/// `BERTH_SHIM_TEST_RUNTIME` names a runc-compatible binary.
fn runtime_under_test() -> String {
    std::env::var("BERTH_SHIM_TEST_RUNTIME")
        .unwrap_or_else(|_| berth_shim::config::BUILTIN_RUNTIME.to_string())
}

fn uses_builtin() -> bool {
    runtime_under_test() == berth_shim::config::BUILTIN_RUNTIME
}

/// Force-deletes the container from the runtime's state; true if the runtime knew it.
fn runtime_force_delete(root: &Path, id: &str) {
    if uses_builtin() {
        let _ = berth_runtime::container::delete(root, id, true);
        return;
    }
    let _ = Command::new(runtime_under_test())
        .arg("--root")
        .arg(root)
        .args(["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether the runtime still has state for the container.
fn runtime_knows(root: &Path, id: &str) -> bool {
    if uses_builtin() {
        return berth_runtime::container::Container::load(root, id).is_ok();
    }
    Command::new(runtime_under_test())
        .arg("--root")
        .arg(root)
        .args(["state", id])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
const TIMEOUT: Duration = Duration::from_secs(30);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth-shim-test")
}

/// Whether this host can run these tests; prints why not.
fn can_run() -> bool {
    if !is_root() || !Path::new(RUNC).exists() {
        eprintln!("skipped: needs root and {RUNC}");
        return false;
    }
    true
}

struct Harness {
    id: String,
    bundle: Bundle,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new(args: &[&str]) -> Harness {
        Harness {
            id: unique_name("shimtest"),
            bundle: Bundle::new(args),
            dir: tempfile::Builder::new()
                .prefix("berth-shim")
                .tempdir()
                .unwrap(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn runtime_root(&self) -> PathBuf {
        self.dir.path().join("runc")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("container-json.log")
    }

    fn shim_command(&self, extra: &[&str]) -> Command {
        // The built-in runtime by default; BERTH_SHIM_TEST_RUNTIME=/usr/sbin/runc runs the
        // same tests against runc.
        let mut cmd = Command::new(bin());
        cmd.arg("shim")
            .arg("--id")
            .arg(&self.id)
            .arg("--bundle")
            .arg(self.bundle.path())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--runtime")
            .arg(runtime_under_test())
            .arg("--runtime-root")
            .arg(self.runtime_root())
            .arg("--log-path")
            .arg(self.log_path())
            .args(extra)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the starter to completion and returns its output.
    fn start_shim(&self, extra: &[&str]) -> Output {
        self.shim_command(extra).output().unwrap()
    }

    fn start_ok(&self, extra: &[&str]) {
        let out = self.start_shim(extra);
        assert!(
            out.status.success(),
            "shim start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn client(&self) -> ShimClient {
        let c = ShimClient::connect_state_dir(self.state_dir()).unwrap();
        c.set_timeout(Some(TIMEOUT)).unwrap();
        c
    }

    fn shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state_dir().join(berth_shim::PID_NAME))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn log_entries(&self) -> Vec<serde_json::Value> {
        read_entries(&self.log_path())
    }

    /// Deletes the container and ends the shim through the protocol; checks it went away.
    fn teardown(&self) {
        let pid = self.shim_pid().unwrap();
        let mut c = self.client();
        c.delete(true).unwrap();
        c.shutdown().unwrap();
        wait_until("shim exit", || !alive(pid));
        assert!(!self.state_dir().join(berth_shim::SOCKET_NAME).exists());
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Best effort on every path: nothing may outlive the test.
        runtime_force_delete(&self.runtime_root(), &self.id);
        if let Some(pid) = self.shim_pid()
            && is_our_shim(pid)
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn is_our_shim(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("berth-shim-test"))
        .unwrap_or(false)
}

fn alive(pid: i32) -> bool {
    // A zombie counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_entries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
        .collect()
}

fn logged(entries: &[serde_json::Value], stream: &str) -> String {
    entries
        .iter()
        .filter(|e| e["stream"] == stream)
        .map(|e| e["log"].as_str().unwrap())
        .collect()
}

#[test]
fn exit_code_log_and_wait() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sh", "-c", "echo hello; echo err >&2; exit 3"]);
    h.start_ok(&[]);
    let mut c = h.client();
    assert_eq!(c.state().unwrap().status, Status::Created);
    c.start().unwrap();
    let exit = c.wait().unwrap();
    assert_eq!(exit.exit_code, 3);
    assert_eq!(exit.signal, None);

    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.state_dir().join("exit.json")).unwrap()).unwrap();
    assert_eq!(on_disk["exit_code"], 3);
    assert!(on_disk["signal"].is_null());
    assert!(on_disk["finished_at"].as_str().unwrap().ends_with('Z'));

    let entries = h.log_entries();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in &entries {
        let t = e["time"].as_str().unwrap();
        // 2026-11-25T09:30:01.123456789Z
        assert_eq!(t.len(), 30, "{t}");
        assert_eq!(&t[19..20], ".");
    }
    assert_eq!(logged(&entries, "stdout"), "hello\n");
    assert_eq!(logged(&entries, "stderr"), "err\n");

    let st = c.state().unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit.unwrap().exit_code, 3);
    h.teardown();
}

#[test]
fn survives_the_death_of_its_starter() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&[
        "sh",
        "-c",
        "while [ ! -e /stop ]; do echo tick; sleep 0.05; done; echo bye; exit 5",
    ]);
    let mut starter = h
        .shim_command(&[])
        .env("BERTH_SHIM_TEST_HOLD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("shim socket", || {
        ShimClient::connect_state_dir(h.state_dir()).is_ok()
    });
    let shim_pid = h.shim_pid().unwrap();
    // The shim is the starter's child until the starter dies.
    let stat = std::fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, starter.id() as i32);

    h.client().start().unwrap();
    starter.kill().unwrap();
    starter.wait().unwrap();

    let before = h.log_entries().len();
    std::thread::sleep(Duration::from_millis(300));
    let mut c = h.client();
    assert_eq!(c.state().unwrap().status, Status::Running);
    wait_until("more log lines", || h.log_entries().len() > before + 2);

    std::fs::write(h.bundle.rootfs().join("stop"), b"").unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 5);
    let entries = h.log_entries();
    assert_eq!(entries.last().unwrap()["log"], "bye\n");
    h.teardown();
}

#[test]
fn attach_stdin_round_trip_and_half_close() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["cat"]);
    h.start_ok(&["--stdin", "--stdin-once"]);
    let mut attach = h
        .client()
        .attach(&AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            exec_id: None,
        })
        .unwrap();
    attach.set_read_timeout(Some(TIMEOUT)).unwrap();
    h.client().start().unwrap();
    attach.write_stdin(b"ping\n").unwrap();
    let (stream, data) = attach.read_frame().unwrap().unwrap();
    assert_eq!(stream, StdStream::Stdout);
    assert_eq!(data, b"ping\n");
    attach.close_stdin().unwrap();
    assert_eq!(h.client().wait().unwrap().exit_code, 0);
    // The stream ends after the process does.
    assert!(attach.read_frame().unwrap().is_none());
    assert_eq!(logged(&h.log_entries(), "stdout"), "ping\n");
    h.teardown();
}

#[test]
fn tty_with_resize() {
    if !can_run() {
        return;
    }
    let mut h = Harness::new(&["sh", "-c", "tty; stty size"]);
    let mut process = h.bundle.spec.process().clone().unwrap();
    process.set_terminal(Some(true));
    h.bundle.spec.set_process(Some(process));
    h.bundle.save();
    h.start_ok(&["--tty"]);
    let mut c = h.client();
    assert!(c.state().unwrap().tty);
    c.resize(100, 40, None).unwrap();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 0);
    let entries = h.log_entries();
    assert!(entries.iter().all(|e| e["stream"] == "stdout"));
    let out = logged(&entries, "stdout");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("40 100"), "{out:?}");
    h.teardown();
}

#[test]
fn exec_output_and_exit_code() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sleep", "30"]);
    h.start_ok(&[]);
    let mut c = h.client();
    c.start().unwrap();
    let mut process = h.bundle.spec.process().clone().unwrap();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo out; echo err >&2; exit 7".into(),
    ]));
    c.exec("e1", &process, false, false).unwrap();
    assert_eq!(c.exec_state("e1").unwrap().status, Status::Created);
    let mut attach = h
        .client()
        .attach(&AttachOptions {
            stdout: true,
            stderr: true,
            exec_id: Some("e1".into()),
            ..AttachOptions::default()
        })
        .unwrap();
    attach.set_read_timeout(Some(TIMEOUT)).unwrap();
    let pid = c.exec_start("e1").unwrap();
    assert!(pid > 0);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        match attach.read_frame().unwrap() {
            Some((StdStream::Stdout, d)) => out.extend(d),
            Some((StdStream::Stderr, d)) => err.extend(d),
            Some(other) => panic!("unexpected frame {other:?}"),
            None => break,
        }
    }
    assert_eq!(out, b"out\n");
    assert_eq!(err, b"err\n");
    assert_eq!(c.exec_wait("e1").unwrap().exit_code, 7);
    let st = c.exec_state("e1").unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit.unwrap().exit_code, 7);
    assert!(
        h.state_dir()
            .join(berth_shim::exec_exit_name("e1"))
            .exists()
    );
    // Exec output is not part of the container log (as in Docker).
    assert!(h.log_entries().is_empty());
    c.kill(9, false).unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 137);
    h.teardown();
}

#[test]
fn sigterm_gives_143_to_every_waiter() {
    if !can_run() {
        return;
    }
    let mut h = Harness::new(&["sleep", "100"]);
    // The init of a pid namespace ignores SIGTERM without a handler; outside one, `sleep`
    // dies of it, which is what this test is about.
    let mut linux = h.bundle.spec.linux().clone().unwrap();
    let namespaces = linux
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Pid)
        .collect();
    linux.set_namespaces(Some(namespaces));
    h.bundle.spec.set_linux(Some(linux));
    h.bundle.save();
    h.start_ok(&[]);
    h.client().start().unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let mut c = h.client();
            std::thread::spawn(move || c.wait().unwrap())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    h.client().kill(15, false).unwrap();
    for w in waiters {
        let exit = w.join().unwrap();
        assert_eq!(exit.exit_code, 143);
        assert_eq!(exit.signal, Some(15));
    }
    h.teardown();
}

#[test]
fn slow_attached_client_does_not_stall_the_container() {
    if !can_run() {
        return;
    }
    // 10 MiB in lines of 1000 bytes.
    let script = "s=$(head -c 999 /dev/zero | tr '\\0' x); i=0; \
                  while [ $i -lt 10486 ]; do echo $s; i=$((i+1)); done";
    let h = Harness::new(&["sh", "-c", script]);
    h.start_ok(&["--log-max-size", "1m", "--log-max-file", "3"]);
    // Attached, never reading.
    let mut slow = h
        .client()
        .attach(&AttachOptions {
            stdout: true,
            ..AttachOptions::default()
        })
        .unwrap();
    let t0 = Instant::now();
    let mut c = h.client();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 0);
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    // The shim gave up on the slow client: its stream ends after what was queued.
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100_000 {
        match slow.read_raw(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received += n,
        }
    }
    assert!(received < 5 << 20, "slow client got {received} bytes");
    // Everything is in the rotated log.
    let base = h.log_path();
    let mut total = 0;
    for p in [
        PathBuf::from(format!("{}.2", base.display())),
        PathBuf::from(format!("{}.1", base.display())),
        base.clone(),
    ] {
        assert!(std::fs::metadata(&p).unwrap().len() <= 1 << 20);
        total += read_entries(&p).len();
    }
    assert!(!PathBuf::from(format!("{}.3", base.display())).exists());
    assert!(total > 1000);
    eprintln!("10 MiB written in {took:?}; slow client got {received} bytes before disconnect");
    h.teardown();
}

#[test]
fn bad_requests_get_errors_and_the_shim_keeps_serving() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sleep", "30"]);
    h.start_ok(&[]);
    let mut c = h.client();
    let r = c.raw_request(br#"{"op":"frobnicate"}"#).unwrap();
    assert!(!r.ok);
    assert!(r.error.unwrap().contains("frobnicate"));
    let r = c.raw_request(b"{not json").unwrap();
    assert!(!r.ok && r.error.unwrap().starts_with("bad request"));
    let r = c
        .raw_request(br#"{"op":"resize","width":1,"height":1}"#)
        .unwrap();
    assert!(!r.ok, "resize without a tty must fail");
    let r = c
        .raw_request(br#"{"op":"exec_state","exec_id":"nope"}"#)
        .unwrap();
    assert!(!r.ok);
    let r = c.raw_request(br#"{"op":"shutdown"}"#).unwrap();
    assert!(!r.ok, "shutdown before delete must fail");
    assert_eq!(c.state().unwrap().status, Status::Created);
    h.teardown();
}

#[test]
fn missing_rootfs_is_a_clear_start_error() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["true"]);
    std::fs::remove_dir_all(h.bundle.rootfs()).unwrap();
    let out = h.start_shim(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.starts_with("berth shim: runtime create failed:"),
        "{stderr:?}"
    );
    eprintln!("start error: {}", stderr.trim_end());
    assert!(h.shim_pid().is_none());
    assert!(!h.state_dir().join(berth_shim::SOCKET_NAME).exists());
    assert!(
        !runtime_knows(&h.runtime_root(), &h.id),
        "the runtime still knows the container"
    );
}

/// Reads a `kB` figure from /proc.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn resident_memory_of_a_shim() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sleep", "30"]);
    h.start_ok(&[]);
    let mut c = h.client();
    c.start().unwrap();
    let pid = c.state().unwrap().shim_pid;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let rss = kb(&status, "VmRSS:");
    let pss = kb(&rollup, "Pss:");
    let anon = kb(&status, "RssAnon:");
    eprintln!("shim memory with a running container: RSS {rss} kB, PSS {pss} kB, anon {anon} kB");
    // A regression guard, not the goal (1.5 MiB): debug builds are larger.
    assert!(rss < 16 * 1024, "RSS {rss} kB");
    let mut buf = String::new();
    std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .read_to_string(&mut buf)
        .unwrap();
    assert!(buf.contains("berth-shim-test"));
    h.teardown();
}

#[test]
fn no_leaked_fds_or_signal_state() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sleep", "30"]);
    // A starter that ignores SIGHUP, as under nohup.
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' HUP; exec \"$@\"")
        .arg("sh")
        .arg(bin())
        .args(h.shim_command(&[]).get_args())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = h.client();
    let st = c.state().unwrap();
    // The shim's own stdio is /dev/null and it kept nothing of its starter's.
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", st.shim_pid)).unwrap();
        assert_eq!(target, PathBuf::from("/dev/null"));
    }
    c.start().unwrap();
    // Until it has exec'd `sleep`, the init still holds the runtime's close-on-exec fds.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{}/comm", st.pid)).unwrap_or_default() != "sleep\n"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the init never exec'd"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The container's init (seen from the host) has stdio and nothing else, and neither the
    // shim's blocked SIGCHLD nor its ignored SIGPIPE, nor signals its starter ignored.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", st.pid))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut fds = fds;
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", st.pid)).unwrap();
    let mask = |key: &str| {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .trim();
        u64::from_str_radix(hex, 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "{status}");
    // Standard signals only: how glibc's reserved real-time signals (32, 33) are set is the
    // test environment's business, and glibc will not let a process change them.
    assert_eq!(mask("SigIgn:") & 0x7fff_ffff, 0, "{status}");
    h.teardown();
}

#[test]
fn pause_and_resume() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sleep", "30"]);
    h.start_ok(&[]);
    let mut c = h.client();
    assert!(c.pause().is_err(), "a created container cannot be paused");
    c.start().unwrap();
    c.pause().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Paused);
    c.resume().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Running);
    c.kill(9, true).unwrap();
    let exit = c.wait().unwrap();
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert!(c.start().is_err(), "a stopped container cannot start");
    h.teardown();
}

#[test]
fn exec_with_a_tty() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sleep", "30"]);
    h.start_ok(&[]);
    let mut c = h.client();
    c.start().unwrap();
    let mut process = h.bundle.spec.process().clone().unwrap();
    process.set_args(Some(vec!["sh".into(), "-c".into(), "tty; exit 4".into()]));
    c.exec("t1", &process, true, false).unwrap();
    let mut attach = h
        .client()
        .attach(&AttachOptions {
            stdout: true,
            exec_id: Some("t1".into()),
            ..AttachOptions::default()
        })
        .unwrap();
    attach.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.exec_start("t1").unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match attach.read_raw(&mut buf).unwrap() {
            0 => break,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
    // Raw bytes, no stdcopy header, terminal line endings.
    assert!(
        out.starts_with(b"/dev/pts/"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(out.ends_with(b"\r\n"));
    assert_eq!(c.exec_wait("t1").unwrap().exit_code, 4);
    assert!(c.exec_state("t1").unwrap().tty);
    h.teardown();
}

#[test]
fn oom_kill_is_reported() {
    if !can_run() {
        return;
    }
    // `tail` keeps the current line, and /dev/zero has no newline.
    let mut h = Harness::new(&["tail", "/dev/zero"]);
    let mut linux = h.bundle.spec.linux().clone().unwrap();
    let mut memory = oci_spec::runtime::LinuxMemory::default();
    memory.set_limit(Some(16 << 20));
    memory.set_swap(Some(16 << 20));
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_memory(Some(memory));
    linux.set_resources(Some(resources));
    h.bundle.spec.set_linux(Some(linux));
    h.bundle.save();
    h.start_ok(&[]);
    let mut c = h.client();
    c.start().unwrap();
    let exit = c.wait().unwrap();
    assert_eq!(exit.exit_code, 137);
    assert_eq!(exit.oom_killed, Some(true));
    h.teardown();
}

#[test]
fn exec_with_stdin_ends_on_half_close() {
    if !can_run() {
        return;
    }
    let h = Harness::new(&["sleep", "30"]);
    h.start_ok(&[]);
    let mut c = h.client();
    c.start().unwrap();
    let mut process = h.bundle.spec.process().clone().unwrap();
    process.set_args(Some(vec!["cat".into()]));
    c.exec("in1", &process, false, true).unwrap();
    let mut attach = h
        .client()
        .attach(&AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            exec_id: Some("in1".into()),
        })
        .unwrap();
    attach.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.exec_start("in1").unwrap();
    attach.write_stdin(b"hi there\n").unwrap();
    assert_eq!(
        attach.read_frame().unwrap(),
        Some((StdStream::Stdout, b"hi there\n".to_vec()))
    );
    attach.close_stdin().unwrap();
    assert_eq!(c.exec_wait("in1").unwrap().exit_code, 0);
    assert!(attach.read_frame().unwrap().is_none());
    // The container itself is untouched.
    assert_eq!(c.state().unwrap().status, Status::Running);
    h.teardown();
}
