//! CVE-2019-5736: while berth's runtime code runs next to a container, its binary must not be
//! writable through `/proc/<pid>/exe`. berth runs from a read-only bind mount of itself: the
//! file behind that link sits on a read-only mount, so a write through it fails with EROFS even
//! after the runtime exits (while it runs, ETXTBSY hides that — so the test checks the mount).
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testsupport::{Bundle, is_root, unique_name};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

struct Cleanup {
    root: tempfile::TempDir,
    id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(BERTH)
            .arg("runtime")
            .arg("--root")
            .arg(self.root.path())
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn runtime_binary_is_read_only_while_a_container_runs() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let bundle = Bundle::new(&["sleep", "30"]);
    let guard = Cleanup {
        root: tempfile::tempdir().unwrap(),
        id: unique_name("exe"),
    };
    let mut runtime = Command::new(BERTH)
        .arg("runtime")
        .arg("--root")
        .arg(guard.root.path())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&guard.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_until(Duration::from_secs(10), || {
        let out = Command::new(BERTH)
            .arg("runtime")
            .arg("--root")
            .arg(guard.root.path())
            .args(["state", &guard.id])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"running\"")
    });
    assert!(running, "container did not start");

    let exe = format!("/proc/{}/exe", runtime.id());
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

    drop(guard);
    let _ = runtime.wait();
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
