//! Test fixtures shared by berth's crates: a busybox root filesystem built from Debian's
//! `busybox-static`, OCI bundles around it, and names unique to one test run.
//!
//! Only tests use this crate. It panics with a clear message when the host lacks a fixture
//! (for example `busybox-static` is not installed), because a test cannot go on without it.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use oci_spec::runtime::Spec;

/// Where Debian's `busybox-static` installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// A name no other test in this run, or any concurrent run, will pick: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// True when the tests run as root, which every kernel-facing test needs.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Fills `dir` with a minimal busybox root filesystem: `/bin/busybox`, a symlink per applet,
/// the usual top-level directories and `/etc/passwd`/`/etc/group` with root and nobody.
pub fn busybox_rootfs(dir: &Path) {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install Debian's busybox-static"
    );
    for sub in [
        "bin", "proc", "sys", "dev", "tmp", "etc", "root", "var", "run",
    ] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    for applet in applets() {
        let link = dir.join("bin").join(&applet);
        if !link.exists() {
            symlink("busybox", link).unwrap();
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

fn applets() -> Vec<String> {
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.contains('/'))
        .map(str::to_owned)
        .collect()
}

/// An OCI bundle in a temporary directory: `rootfs/` holds busybox and `config.json` is
/// written by [`Bundle::save`]. The directory is removed when the bundle is dropped.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The spec that [`Bundle::save`] writes; tests adjust it first.
    pub spec: Spec,
    /// This bundle's own cgroup parent (`berth-test-<pid>-<n>`), removed on drop.
    cgroup_parent: String,
}

impl Bundle {
    /// A bundle that runs `args` without a terminal, with the runtime-spec default namespaces,
    /// mounts, masked and read-only paths, and a writable root.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-bundle")
            .tempdir()
            .unwrap();
        busybox_rootfs(&dir.path().join("rootfs"));
        let mut spec = Spec::default();
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_terminal(Some(false));
        process.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        spec.set_process(Some(process));
        let mut root = spec.root().clone().unwrap_or_default();
        root.set_path(PathBuf::from("rootfs"));
        root.set_readonly(Some(false));
        spec.set_root(Some(root));
        spec.set_hostname(Some("berth-test".into()));
        // A parent of its own per bundle, so cleanup never races another test's container.
        let cgroup_parent = unique_name("berth-test");
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_cgroups_path(Some(PathBuf::from(format!("/{cgroup_parent}/c"))));
        spec.set_linux(Some(linux));
        let bundle = Bundle {
            dir,
            spec,
            cgroup_parent,
        };
        bundle.save();
        bundle
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The root filesystem directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The cgroup path the bundle's container gets unless a test changes it.
    pub fn cgroups_path(&self) -> String {
        format!("/{}/c", self.cgroup_parent)
    }

    /// Writes `config.json` from [`Bundle::spec`].
    pub fn save(&self) {
        let json = serde_json::to_vec_pretty(&self.spec).unwrap();
        fs::write(self.dir.path().join("config.json"), json).unwrap();
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // The runtime removes the container's own cgroup; the parent is ours to remove. Leaf
        // first in case a failed test left the container's cgroup behind (empty by now).
        for hierarchy in cgroup_hierarchies() {
            let parent = hierarchy.join(&self.cgroup_parent);
            let _ = fs::remove_dir(parent.join("c"));
            let _ = fs::remove_dir(parent);
        }
    }
}

/// Every mounted cgroup hierarchy (v1 controllers, the v2 or hybrid unified mount).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}
