//! cgroup v2 on the real kernel, in whatever cgroup2 mount the host has (on a hybrid host the
//! one at /sys/fs/cgroup/unified, which has no memory or pids controller but does membership,
//! freezing and BPF device filters). Needs root.
//!
//! `create` delegates the root's controllers, so every test restores the root's
//! `cgroup.subtree_control` afterwards and the tests take turns.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use berth_cgroups::{Cgroup, CgroupError, Hierarchy};
use berth_testsupport::{is_root, unique_name};
use common::{CgroupGuard, ShChild, SubtreeControlGuard, read, wait_until};
use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxHugepageLimitBuilder,
    LinuxMemoryBuilder, LinuxResourcesBuilder,
};

const TIMEOUT: Duration = Duration::from_secs(20);
static ROOT_LOCK: Mutex<()> = Mutex::new(());

/// Holds the lock and the root's subtree_control until the test's cgroups are gone: fields
/// drop in order, so the cgroup guard goes first.
struct Env {
    cgroup: CgroupGuard,
    _restore: SubtreeControlGuard,
    _lock: MutexGuard<'static, ()>,
    name: String,
    hierarchy: Hierarchy,
}

impl Env {
    fn new() -> Option<Env> {
        if !is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        let Some(root) = Hierarchy::detect().unwrap().unified().map(PathBuf::from) else {
            eprintln!("skipped: no cgroup2 mount");
            return None;
        };
        let lock = ROOT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let restore = SubtreeControlGuard::new(&root);
        let hierarchy = Hierarchy::V2 { root };
        let name = format!("/{}", unique_name("berth-test"));
        let cgroup = Cgroup::new(hierarchy.clone(), &name).unwrap();
        let cgroup = CgroupGuard(cgroup);
        cgroup.create().unwrap();
        Some(Env {
            cgroup,
            _restore: restore,
            _lock: lock,
            name,
            hierarchy,
        })
    }

    fn dir(&self) -> PathBuf {
        self.cgroup.paths()[""].clone()
    }

    /// A cgroup below this test's one.
    fn child(&self, sub: &str) -> Cgroup {
        let cg = Cgroup::new(self.hierarchy.clone(), &format!("{}/{sub}", self.name)).unwrap();
        cg.create().unwrap();
        cg
    }
}

fn device(allow: bool, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .major(major)
        .minor(minor)
        .access("rwm")
        .build()
        .unwrap()
}

fn deny_all() -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap()
}

const PROBE: &str =
    "read _; (: </dev/null) && echo null-ok; (: </dev/zero) && echo zero-ok || echo zero-denied";

fn probe_devices(cg: &Cgroup) -> (String, String) {
    let mut child = ShChild::spawn(PROBE);
    cg.add_process(child.pid()).unwrap();
    child.go();
    let (_, out, err) = child.finish(TIMEOUT);
    (out, err)
}

#[test]
fn freeze_and_thaw_a_real_child() {
    let Some(env) = Env::new() else { return };
    let cg = &env.cgroup;
    let child = ShChild::spawn("exec sleep 60");
    cg.add_process(child.pid()).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.pid()]);
    assert!(read(format!("/proc/{}/cgroup", child.pid())).contains(&env.name));
    assert!(!cg.is_frozen().unwrap());
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    assert!(read(env.dir().join("cgroup.events")).contains("frozen 1"));
    cg.thaw().unwrap();
    assert!(wait_until(TIMEOUT, || !cg.is_frozen().unwrap()));
}

#[test]
fn the_ebpf_device_filter_allows_dev_null_and_denies_dev_zero() {
    let Some(env) = Env::new() else { return };
    let cg = &env.cgroup;
    let rules = vec![deny_all(), device(true, LinuxDeviceType::C, 1, 3)];
    cg.apply(
        &LinuxResourcesBuilder::default()
            .devices(rules)
            .build()
            .unwrap(),
    )
    .unwrap();
    let (out, err) = probe_devices(cg);
    assert_eq!(out, "null-ok\nzero-denied\n", "stderr: {err}");
    assert!(
        err.contains("Operation not permitted"),
        "EPERM expected: {err}"
    );

    // A new rule set replaces the old program rather than adding to it: had the old one
    // stayed attached, /dev/zero would still be denied.
    let rules = vec![
        deny_all(),
        device(true, LinuxDeviceType::C, 1, 3),
        device(true, LinuxDeviceType::C, 1, 5),
    ];
    cg.apply(
        &LinuxResourcesBuilder::default()
            .devices(rules)
            .build()
            .unwrap(),
    )
    .unwrap();
    let (out, err) = probe_devices(cg);
    assert_eq!(out, "null-ok\nzero-ok\n", "stderr: {err}");
}

#[test]
fn pids_are_recursive_and_destroy_is_leaf_first_and_bounded() {
    let Some(env) = Env::new() else { return };
    let sub = env.child("sub/deeper");
    let child = ShChild::spawn("exec sleep 60");
    sub.add_process(child.pid()).unwrap();
    assert_eq!(env.cgroup.pids().unwrap(), vec![child.pid()]);
    assert_eq!(sub.pids().unwrap(), vec![child.pid()]);

    // A live task keeps its cgroup busy: destroy gives up after its bounded retries.
    match env.cgroup.destroy() {
        Err(CgroupError::Remove { path, source }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EBUSY));
            assert!(path.ends_with("sub/deeper"), "{}", path.display());
        }
        other => panic!("expected EBUSY, got {other:?}"),
    }
    drop(child);
    assert!(wait_until(TIMEOUT, || env
        .cgroup
        .pids()
        .unwrap()
        .is_empty()));
    env.cgroup.destroy().unwrap();
    assert!(!env.dir().exists());
}

#[test]
fn hugetlb_limits_and_unified_keys_are_written() {
    let Some(env) = Env::new() else { return };
    let dir = env.dir();
    if !dir.join("hugetlb.2MB.max").exists() {
        eprintln!("skipped: no hugetlb controller in {}", dir.display());
        return;
    }
    let limit = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(8 << 20)
        .build()
        .unwrap();
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![limit])
        .unified(HashMap::from([(
            "cgroup.max.descendants".to_owned(),
            "2".to_owned(),
        )]))
        .build()
        .unwrap();
    env.cgroup.apply(&r).unwrap();
    assert_eq!(read(dir.join("hugetlb.2MB.max")), (8u64 << 20).to_string());
    assert_eq!(read(dir.join("cgroup.max.descendants")), "2");
}

#[test]
fn a_controller_the_hierarchy_lacks_is_a_clear_error() {
    let Some(env) = Env::new() else { return };
    if env.dir().join("memory.max").exists() {
        eprintln!("skipped: this cgroup2 mount has a memory controller");
        return;
    }
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = env.cgroup.apply(&r).unwrap_err();
    assert!(matches!(err, CgroupError::MissingFile { .. }), "{err:?}");
    assert!(err.to_string().contains("memory.max"), "{err}");
    assert!(matches!(
        env.cgroup.oom_kill_count(),
        Err(CgroupError::MissingFile { .. })
    ));
}

#[test]
fn stats_report_cpu_time_from_cpu_stat() {
    let Some(env) = Env::new() else { return };
    let mut child =
        ShChild::spawn("read _; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; read _");
    env.cgroup.add_process(child.pid()).unwrap();
    child.go();
    assert!(wait_until(TIMEOUT, || {
        env.cgroup.stats().unwrap().cpu.unwrap().usage_total_ns > 1_000_000
    }));
    let stats = env.cgroup.stats().unwrap();
    if !env.dir().join("memory.current").exists() {
        assert_eq!(stats.memory, None);
    }
}

#[test]
fn other_rule_sets_pass_the_verifier_and_behave() {
    let Some(env) = Env::new() else { return };
    let cg = &env.cgroup;
    let access = |allow: bool, typ: LinuxDeviceType, major: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(major) = major {
            b = b.major(major);
        }
        b.build().unwrap()
    };
    let docker_defaults = vec![
        deny_all(),
        access(true, LinuxDeviceType::C, None, "m"),
        access(true, LinuxDeviceType::B, None, "m"),
        device(true, LinuxDeviceType::C, 1, 3),
        device(true, LinuxDeviceType::C, 1, 5),
        device(true, LinuxDeviceType::C, 1, 7),
        device(true, LinuxDeviceType::C, 1, 8),
        device(true, LinuxDeviceType::C, 1, 9),
        device(true, LinuxDeviceType::C, 5, 0),
        device(true, LinuxDeviceType::C, 5, 1),
        access(true, LinuxDeviceType::C, Some(136), "rwm"),
        device(true, LinuxDeviceType::C, 10, 200),
    ];
    let allow_all = vec![access(true, LinuxDeviceType::A, None, "rwm")];
    let read_only_zero = vec![
        deny_all(),
        device(true, LinuxDeviceType::C, 1, 3),
        access(true, LinuxDeviceType::C, Some(1), "r"),
    ];
    let cases: Vec<(Vec<LinuxDeviceCgroup>, &str)> = vec![
        (docker_defaults, "null-ok\nzero-ok\n"),
        (vec![], ""),
        (allow_all, "null-ok\nzero-ok\n"),
        (read_only_zero, "null-ok\nzero-ok\n"),
    ];
    for (rules, want) in cases {
        let r = LinuxResourcesBuilder::default()
            .devices(rules.clone())
            .build()
            .unwrap();
        cg.apply(&r).unwrap_or_else(|e| panic!("{rules:?}: {e}"));
        // With no rules at all every device is denied, /dev/null included.
        let (out, err) = probe_devices(cg);
        if want.is_empty() {
            assert!(
                !out.contains("null-ok") && !out.contains("zero-ok"),
                "{out} / {err}"
            );
        } else {
            assert_eq!(out, want, "{rules:?}: {err}");
        }
    }
    // Writing needs `w`: the read-only rule does not let /dev/zero be opened for writing.
    let mut child = ShChild::spawn("read _; (: >/dev/zero) && echo write-ok || echo write-denied");
    cg.add_process(child.pid()).unwrap();
    child.go();
    let (_, out, err) = child.finish(TIMEOUT);
    assert_eq!(out, "write-denied\n", "{err}");
}
