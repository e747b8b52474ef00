//! cgroup v2 against a temporary directory that pretends to be a cgroup2 root: checks what
//! `create` and `apply` write, including runc's v1→v2 conversions.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::{Cgroup, CgroupError, Hierarchy, OwnCgroups};
use common::read;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};
use tempfile::TempDir;

/// The interface files a v2 leaf with cpuset, cpu, io, memory, hugetlb and pids has.
const LEAF_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.events",
    "pids.max",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.high",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "hugetlb.2MB.rsvd.max",
];

struct Fixture {
    root: TempDir,
    cgroup: Cgroup,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .unwrap();
        fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        let hierarchy = Hierarchy::V2 {
            root: root.path().to_owned(),
        };
        let cgroup = Cgroup::new(hierarchy, "/berth/c1").unwrap();
        cgroup.create().unwrap();
        let fixture = Fixture { root, cgroup };
        for file in LEAF_FILES {
            fs::write(fixture.leaf().join(file), "").unwrap();
        }
        fixture
    }

    fn leaf(&self) -> PathBuf {
        self.root.path().join("berth/c1")
    }

    fn file(&self, name: &str) -> String {
        read(self.leaf().join(name))
    }

    fn set(&self, name: &str, value: &str) {
        fs::write(self.leaf().join(name), value).unwrap();
    }
}

fn resources() -> LinuxResourcesBuilder {
    LinuxResourcesBuilder::default()
}

#[test]
fn create_delegates_the_roots_controllers_and_makes_the_directories() {
    let f = Fixture::new();
    assert!(f.leaf().is_dir());
    assert_eq!(
        read(f.root.path().join("cgroup.subtree_control")),
        "+cpuset +cpu +io +memory +hugetlb +pids"
    );
    let paths = f.cgroup.paths();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[""], f.leaf());
}

#[test]
fn create_only_enables_what_is_not_enabled_yet() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
    fs::write(
        root.path().join("cgroup.subtree_control"),
        "cpu memory pids",
    )
    .unwrap();
    let cg = Cgroup::new(
        Hierarchy::V2 {
            root: root.path().into(),
        },
        "/x",
    )
    .unwrap();
    cg.create().unwrap();
    assert_eq!(
        read(root.path().join("cgroup.subtree_control")),
        "cpu memory pids"
    );
}

#[test]
fn apply_writes_every_controller_with_runcs_conversions() {
    let f = Fixture::new();
    let r = resources()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .swap(300 << 20)
                .reservation(50 << 20)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000)
                .period(200_000u64)
                .burst(1_000u64)
                .idle(1)
                .cpus("0-1")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(42).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .throttle_write_iops_device(vec![
                    LinuxThrottleDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .rate(100u64)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4 << 20)
                .build()
                .unwrap(),
        ])
        .unified(HashMap::from([(
            "memory.high".to_owned(),
            "90M".to_owned(),
        )]))
        .build()
        .unwrap();
    f.cgroup.apply(&r).unwrap();
    assert_eq!(f.file("memory.max"), (100u64 << 20).to_string());
    assert_eq!(
        f.file("memory.swap.max"),
        (200u64 << 20).to_string(),
        "swap.max = swap - limit"
    );
    assert_eq!(f.file("memory.low"), (50u64 << 20).to_string());
    assert_eq!(f.file("cpu.weight"), "59", "shares 512 → weight 59");
    assert_eq!(f.file("cpu.max"), "50000 200000");
    assert_eq!(f.file("cpu.max.burst"), "1000");
    assert_eq!(f.file("cpu.idle"), "1");
    assert_eq!(f.file("cpuset.cpus"), "0-1");
    assert_eq!(f.file("cpuset.mems"), "0");
    assert_eq!(f.file("pids.max"), "42");
    assert_eq!(f.file("io.weight"), "4950", "blkio 500 → io.weight 4950");
    assert_eq!(f.file("io.max"), "8:0 wiops=100");
    assert_eq!(f.file("hugetlb.2MB.max"), (4u64 << 20).to_string());
    assert_eq!(f.file("hugetlb.2MB.rsvd.max"), (4u64 << 20).to_string());
    assert_eq!(f.file("memory.high"), "90M");
}

#[test]
fn unlimited_values_become_max() {
    let f = Fixture::new();
    let r = resources()
        .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
        .cpu(LinuxCpuBuilder::default().quota(-1).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .throttle_read_bps_device(vec![
                    LinuxThrottleDeviceBuilder::default()
                        .major(8)
                        .minor(16)
                        .rate(0u64)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    f.cgroup.apply(&r).unwrap();
    assert_eq!(f.file("memory.max"), "max");
    assert_eq!(
        f.file("memory.swap.max"),
        "max",
        "unlimited memory without swap → unlimited swap"
    );
    assert_eq!(f.file("cpu.max"), "max 100000");
    assert_eq!(f.file("pids.max"), "max");
    assert_eq!(f.file("io.max"), "8:16 rbps=max");
}

#[test]
fn bfq_weight_is_used_as_is_when_present() {
    let f = Fixture::new();
    f.set("io.bfq.weight", "");
    let r = resources()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    f.cgroup.apply(&r).unwrap();
    assert_eq!(f.file("io.bfq.weight"), "500");
    assert_eq!(f.file("io.weight"), "");
}

#[test]
fn swap_without_swap_accounting_is_an_error_only_when_it_limits() {
    let f = Fixture::new();
    fs::remove_file(f.leaf().join("memory.swap.max")).unwrap();
    let limited = resources()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .swap(200 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    match f.cgroup.apply(&limited) {
        Err(CgroupError::MissingFile { path, .. }) => assert!(path.ends_with("memory.swap.max")),
        other => panic!("expected MissingFile, got {other:?}"),
    }
    let unlimited = resources()
        .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
        .build()
        .unwrap();
    f.cgroup.apply(&unlimited).unwrap();
    assert_eq!(f.file("memory.max"), "max");
}

#[test]
fn v1_only_settings_are_refused_before_anything_is_written() {
    let f = Fixture::new();
    let r = resources()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .swappiness(10u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(matches!(
        f.cgroup.apply(&r),
        Err(CgroupError::Unsupported { .. })
    ));
    assert_eq!(f.file("pids.max"), "");
    assert_eq!(f.file("memory.max"), "");
    let rt = resources()
        .cpu(
            LinuxCpuBuilder::default()
                .realtime_runtime(1000)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(matches!(
        f.cgroup.apply(&rt),
        Err(CgroupError::Unsupported { .. })
    ));
}

#[test]
fn invalid_values_are_refused_before_anything_is_written() {
    let f = Fixture::new();
    let cases: Vec<LinuxResources> = vec![
        resources()
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(50_000)
                    .period(0u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
        resources()
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .unified(HashMap::from([(
                "../../../etc/passwd".to_owned(),
                "x".to_owned(),
            )]))
            .build()
            .unwrap(),
        resources()
            .unified(HashMap::from([("cgroup.procs".to_owned(), "1".to_owned())]))
            .build()
            .unwrap(),
        resources()
            .unified(HashMap::from([(
                "memory.high/../x".to_owned(),
                "1".to_owned(),
            )]))
            .build()
            .unwrap(),
        resources()
            .hugepage_limits(vec![
                LinuxHugepageLimitBuilder::default()
                    .page_size("2MB/../x")
                    .limit(1)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap(),
        resources()
            .memory(LinuxMemoryBuilder::default().limit(-5).build().unwrap())
            .build()
            .unwrap(),
        resources()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(200 << 20)
                    .swap(100 << 20)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
        resources()
            .cpu(LinuxCpuBuilder::default().cpus("0-1\n").build().unwrap())
            .build()
            .unwrap(),
        resources()
            .block_io(LinuxBlockIoBuilder::default().weight(5u16).build().unwrap())
            .build()
            .unwrap(),
    ];
    for r in cases {
        match f.cgroup.apply(&r) {
            Err(CgroupError::InvalidResource { .. }) => {}
            other => panic!("expected InvalidResource for {r:?}, got {other:?}"),
        }
    }
    assert_eq!(f.file("pids.max"), "");
    assert_eq!(f.file("cpu.max"), "");
}

#[test]
fn a_limit_below_usage_is_refused_when_asked_to_check() {
    let f = Fixture::new();
    f.set("memory.current", "500000000");
    let r = resources()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100 << 20)
                .check_before_update(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    match f.cgroup.apply(&r) {
        Err(CgroupError::MemoryBelowUsage { usage, .. }) => assert_eq!(usage, 500_000_000),
        other => panic!("expected MemoryBelowUsage, got {other:?}"),
    }
    assert_eq!(f.file("memory.max"), "");
}

#[test]
fn a_missing_controller_file_names_the_file() {
    let f = Fixture::new();
    fs::remove_file(f.leaf().join("pids.max")).unwrap();
    let r = resources()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    let err = f.cgroup.apply(&r).unwrap_err();
    assert!(err.to_string().contains("pids.max"), "{err}");
}

#[test]
fn freeze_writes_cgroup_freeze_and_reads_cgroup_events() {
    let f = Fixture::new();
    f.set("cgroup.events", "populated 1\nfrozen 1\n");
    f.cgroup.freeze().unwrap();
    assert_eq!(f.file("cgroup.freeze"), "1");
    assert!(f.cgroup.is_frozen().unwrap());
    f.cgroup.thaw().unwrap();
    assert_eq!(f.file("cgroup.freeze"), "0");
    f.set("cgroup.events", "populated 1\nfrozen 0\n");
    assert!(!f.cgroup.is_frozen().unwrap());
}

#[test]
fn stats_and_oom_kills_from_v2_files() {
    let f = Fixture::new();
    f.set("memory.current", "1048576\n");
    f.set("memory.peak", "2097152\n");
    f.set("memory.max", "max\n");
    f.set("memory.swap.current", "4096\n");
    f.set(
        "memory.stat",
        "anon 524288\nfile 524288\ninactive_file 262144\n",
    );
    f.set("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n");
    f.set("pids.current", "3\n");
    f.set("pids.max", "64\n");
    f.set(
        "memory.events",
        "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n",
    );
    f.set(
        "io.stat",
        "253:1 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    let stats = f.cgroup.stats().unwrap();
    let io = stats.io.clone().unwrap();
    assert_eq!(io.len(), 2);
    assert_eq!(
        (io[0].major, io[0].minor, io[0].op.as_str(), io[0].value),
        (253, 1, "read", 4096)
    );
    assert_eq!((io[1].op.as_str(), io[1].value), ("write", 8192));
    let memory = stats.memory.unwrap();
    assert_eq!(memory.usage, 1 << 20);
    assert_eq!(memory.max_usage, Some(2 << 20));
    assert_eq!(memory.limit, None);
    assert_eq!(memory.swap_usage, Some(4096));
    assert_eq!(memory.stat["inactive_file"], 262_144);
    let cpu = stats.cpu.unwrap();
    assert_eq!(
        (cpu.usage_total_ns, cpu.usage_user_ns, cpu.usage_system_ns),
        (1_500_000, 1_000_000, 500_000)
    );
    assert_eq!(
        (cpu.periods, cpu.throttled_periods, cpu.throttled_ns),
        (4, 1, 20_000)
    );
    let pids = stats.pids.unwrap();
    assert_eq!((pids.current, pids.limit), (3, Some(64)));
    assert_eq!(f.cgroup.oom_kill_count().unwrap(), 2);
}

#[test]
fn stats_without_controllers_are_none() {
    let f = Fixture::new();
    f.set("cpu.stat", "usage_usec 10\nuser_usec 5\nsystem_usec 5\n");
    let stats = f.cgroup.stats().unwrap();
    assert_eq!(stats.memory, None);
    assert_eq!(stats.pids, None);
    assert_eq!(stats.io, None);
    assert_eq!(stats.cpu.unwrap().usage_total_ns, 10_000);
    assert!(matches!(
        f.cgroup.oom_kill_count(),
        Err(CgroupError::MissingFile { .. })
    ));
}

#[test]
fn add_process_writes_cgroup_procs() {
    let f = Fixture::new();
    f.cgroup.add_process(1234).unwrap();
    assert_eq!(f.file("cgroup.procs"), "1234");
    assert!(f.cgroup.add_process(-1).is_err());
}

#[test]
fn pids_are_collected_from_the_whole_subtree() {
    let f = Fixture::new();
    f.set("cgroup.procs", "10\n11\n");
    fs::create_dir(f.leaf().join("sub")).unwrap();
    fs::write(f.leaf().join("sub/cgroup.procs"), "12\n10\n").unwrap();
    assert_eq!(f.cgroup.pids().unwrap(), vec![10, 11, 12]);
}

#[test]
fn relative_paths_are_below_the_callers_cgroup() {
    let root = Path::new("/sys/fs/cgroup");
    let own = OwnCgroups::parse("0::/user.slice/session-1.scope\n");
    let cg = Cgroup::new_in(Hierarchy::V2 { root: root.into() }, "berth/c1", &own).unwrap();
    assert_eq!(
        cg.paths()[""],
        root.join("user.slice/session-1.scope/berth/c1")
    );
    let abs = Cgroup::new_in(Hierarchy::V2 { root: root.into() }, "/berth/c1", &own).unwrap();
    assert_eq!(abs.paths()[""], root.join("berth/c1"));
    assert!(Cgroup::new_in(Hierarchy::V2 { root: root.into() }, "berth/../..", &own).is_err());
    let nobody = OwnCgroups::default();
    assert!(matches!(
        Cgroup::new_in(Hierarchy::V2 { root: root.into() }, "berth/c1", &nobody),
        Err(CgroupError::InvalidPath { .. })
    ));
}
