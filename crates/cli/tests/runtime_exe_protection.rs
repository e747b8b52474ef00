//! CVE-2019-5736: while berth's runtime code runs where a container's processes can see it, its
//! binary must not be writable through `/proc/<pid>/exe`. berth then runs from a read-only bind
//! mount of itself: the file behind that link sits on a read-only mount, so a write through it
//! fails with EROFS even after the runtime exits (while it runs, ETXTBSY hides that, so the
//! tests check the mount).
//!
//! Exposed are `exec` (it joins a running container) and containers without a pid namespace of
//! their own; `run`/`create` of a container with a new pid namespace are not (nothing else lives
//! in it before the init execs the user's program) and skip the re-exec.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_testsupport::{Bundle, is_root, unique_name};
use oci_spec::runtime::LinuxNamespaceType;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

struct Container {
    root: tempfile::TempDir,
    id: String,
}

impl Container {
    fn new() -> Container {
        Container {
            root: tempfile::tempdir().unwrap(),
            id: unique_name("exe"),
        }
    }

    fn runtime(&self) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.arg("runtime").arg("--root").arg(self.root.path());
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd
    }

    fn spawn_run(&self, bundle: &Path) -> Child {
        self.runtime()
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&self.id)
            .spawn()
            .unwrap()
    }

    fn wait_running(&self) {
        let running = wait_until(Duration::from_secs(10), || {
            let out = self
                .runtime()
                .args(["state", &self.id])
                .stdout(Stdio::piped())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).contains("\"running\"")
        });
        assert!(running, "container did not start");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .runtime()
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

fn assert_exe_read_only(pid: u32) {
    let exe = format!("/proc/{pid}/exe");
    let st = nix::sys::statvfs::statvfs(exe.as_str()).unwrap();
    assert!(
        st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "{exe} is on a writable mount"
    );
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .unwrap_err();
    assert!(
        matches!(err.raw_os_error(), Some(26 | 30)),
        "opening {exe} for writing: {err}"
    );
}

#[test]
fn exec_into_a_container_runs_from_a_read_only_binary() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let bundle = Bundle::new(&["sleep", "30"]);
    let c = Container::new();
    let mut run = c.spawn_run(bundle.path());
    c.wait_running();
    let mut exec = c
        .runtime()
        .args(["exec", &c.id, "sleep", "20"])
        .spawn()
        .unwrap();
    let exec_runs = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{}/cmdline", exec.id()))
            .is_ok_and(|s| s.contains("exec"))
            && nix::sys::statvfs::statvfs(format!("/proc/{}/exe", exec.id()).as_str())
                .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    });
    assert!(
        exec_runs,
        "the exec'ing runtime never ran from a read-only binary"
    );
    assert_exe_read_only(exec.id());
    drop(c);
    let _ = exec.wait();
    let _ = run.wait();
}

#[test]
fn a_container_sharing_the_host_pid_namespace_gets_a_read_only_runtime() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut bundle = Bundle::new(&["sleep", "30"]);
    let mut linux = bundle.spec.linux().clone().unwrap_or_default();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    linux.set_namespaces(Some(
        namespaces
            .into_iter()
            .filter(|n| n.typ() != LinuxNamespaceType::Pid)
            .collect(),
    ));
    bundle.spec.set_linux(Some(linux));
    bundle.save();
    let c = Container::new();
    let mut run = c.spawn_run(bundle.path());
    c.wait_running();
    assert_exe_read_only(run.id());
    drop(c);
    let _ = run.wait();
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
