//! cgroup v1 (and hybrid) on the real kernel: needs root and a host with v1 controllers.
//! Every test works in its own `/berth-test-<pid>-<n>` cgroup, removed by a guard.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use berth_cgroups::{Cgroup, CgroupError, Hierarchy};
use berth_testsupport::{is_root, unique_name};
use common::{CgroupGuard, ShChild, SubtreeControlGuard, read, wait_until};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};

const NEEDED: &[&str] = &[
    "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices", "blkio",
];
const TIMEOUT: Duration = Duration::from_secs(20);

/// The host's hierarchy when these tests can run here.
fn v1_host() -> Option<Hierarchy> {
    if !is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let h = Hierarchy::detect().unwrap();
    match &h {
        Hierarchy::V1 { controllers, .. }
            if NEEDED.iter().all(|c| controllers.contains_key(*c)) =>
        {
            Some(h)
        }
        _ => {
            eprintln!("skipped: not a cgroup v1 host with {NEEDED:?}");
            None
        }
    }
}

/// A fresh, created cgroup at `/<unique><suffix>`; the guard removes `/<unique>` entirely.
fn fresh(h: &Hierarchy, suffix: &str) -> (CgroupGuard, Cgroup) {
    let name = format!("/{}", unique_name("berth-test"));
    let top = Cgroup::new(h.clone(), &name).unwrap();
    let cg = Cgroup::new(h.clone(), &format!("{name}{suffix}")).unwrap();
    let guard = CgroupGuard(top);
    cg.create().unwrap();
    (guard, cg)
}

fn apply(cg: &Cgroup, r: LinuxResourcesBuilder) -> Result<(), CgroupError> {
    cg.apply(&r.build().unwrap())
}

fn memory(limit: i64, swap: Option<i64>) -> LinuxResourcesBuilder {
    let mut m = LinuxMemoryBuilder::default().limit(limit);
    if let Some(swap) = swap {
        m = m.swap(swap);
    }
    LinuxResourcesBuilder::default().memory(m.build().unwrap())
}

fn pids_limit(limit: i64) -> LinuxResourcesBuilder {
    LinuxResourcesBuilder::default().pids(LinuxPidsBuilder::default().limit(limit).build().unwrap())
}

fn file(cg: &Cgroup, controller: &str, name: &str) -> String {
    read(cg.paths()[controller].join(name))
}

#[test]
fn child_joins_every_hierarchy_freezes_thaws_and_is_cleaned_up() {
    let Some(h) = v1_host() else { return };
    let (guard, cg) = fresh(&h, "");
    let child = ShChild::spawn("exec sleep 60");
    cg.add_process(child.pid()).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.pid()]);
    let membership = read(format!("/proc/{}/cgroup", child.pid()));
    for (controller, dir) in cg.paths() {
        let mount = match controller.as_str() {
            "" => h.unified().unwrap().to_owned(),
            c => match &h {
                Hierarchy::V1 { controllers, .. } => controllers[c].clone(),
                Hierarchy::V2 { .. } => unreachable!(),
            },
        };
        let inner = Path::new("/").join(dir.strip_prefix(&mount).unwrap());
        assert!(
            membership
                .lines()
                .any(|l| l.ends_with(&format!(":{}", inner.display()))),
            "{controller} not joined: {membership}"
        );
    }

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    assert_eq!(file(&cg, "freezer", "freezer.state"), "FROZEN");
    cg.thaw().unwrap();
    assert!(wait_until(TIMEOUT, || !cg.is_frozen().unwrap()));

    drop(child);
    assert!(wait_until(TIMEOUT, || cg.pids().unwrap().is_empty()));
    cg.destroy().unwrap();
    for dir in cg.paths().values() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    cg.destroy().unwrap();
    drop(guard);
}

#[test]
fn memory_and_swap_are_written_in_an_order_the_kernel_accepts() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "");
    if !cg.paths()["memory"]
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        eprintln!("skipped: no swap accounting");
        return;
    }
    let check = |limit: i64, swap: i64| {
        apply(&cg, memory(limit, Some(swap))).unwrap();
        assert_eq!(
            file(&cg, "memory", "memory.limit_in_bytes"),
            limit.to_string()
        );
        assert_eq!(
            file(&cg, "memory", "memory.memsw.limit_in_bytes"),
            swap.to_string()
        );
    };
    check(64 << 20, 128 << 20);
    // Raising past the old memsw: swap must go first.
    check(256 << 20, 512 << 20);
    // Lowering below the old limit: the limit must go first.
    check(32 << 20, 48 << 20);
    // Unlimited memory without a word on swap makes swap unlimited too.
    apply(&cg, memory(-1, None)).unwrap();
    let unlimited = file(&cg, "memory", "memory.limit_in_bytes");
    assert_eq!(
        file(&cg, "memory", "memory.memsw.limit_in_bytes"),
        unlimited
    );
}

#[test]
fn the_oom_killer_kills_a_child_over_its_memory_limit() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "");
    let swap = cg.paths()["memory"]
        .join("memory.memsw.limit_in_bytes")
        .exists()
        .then_some(16 << 20);
    apply(&cg, memory(16 << 20, swap)).unwrap();
    assert_eq!(cg.oom_kill_count().unwrap(), 0);
    let mut child = ShChild::spawn("read _; exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    cg.add_process(child.pid()).unwrap();
    child.go();
    let (status, _, _) = child.finish(TIMEOUT);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(cg.oom_kill_count().unwrap() >= 1);
}

#[test]
fn pids_max_makes_fork_fail() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "");
    apply(&cg, pids_limit(1)).unwrap();
    assert_eq!(file(&cg, "pids", "pids.max"), "1");
    // dash gives up on a failed fork ("Cannot fork") and exits.
    let mut child = ShChild::spawn("read _; /bin/true; echo forked");
    cg.add_process(child.pid()).unwrap();
    child.go();
    let (status, out, err) = child.finish(TIMEOUT);
    assert_eq!(out, "", "stderr: {err}");
    assert!(
        !status.success() && err.to_lowercase().contains("fork"),
        "{status:?} {err}"
    );

    apply(&cg, pids_limit(10)).unwrap();
    let mut child = ShChild::spawn("read _; /bin/true; echo forked");
    cg.add_process(child.pid()).unwrap();
    child.go();
    let (_, out, err) = child.finish(TIMEOUT);
    assert_eq!(out, "forked\n", "stderr: {err}");
    assert_eq!(cg.stats().unwrap().pids.unwrap().limit, Some(10));
}

#[test]
fn a_memory_limit_below_usage_is_a_clear_error() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "");
    let mut child =
        ShChild::spawn("read _; x=$(head -c 20000000 /dev/zero | tr '\\0' a); echo ready; read _");
    cg.add_process(child.pid()).unwrap();
    child.go();
    assert!(
        wait_until(TIMEOUT, || cg.stats().unwrap().memory.unwrap().usage
            > 20_000_000),
        "child never used 20 MB"
    );
    match apply(&cg, memory(4 << 20, None)) {
        Err(e @ CgroupError::MemoryBelowUsage { .. }) => {
            let text = e.to_string();
            assert!(text.contains("current usage"), "{text}");
        }
        other => panic!("expected MemoryBelowUsage, got {other:?}"),
    }
}

#[test]
fn cpu_and_nested_cpuset_settings_reach_the_kernel() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "/nested");
    let parent_cpus = read(cg.paths()["cpuset"].parent().unwrap().join("cpuset.cpus"));
    assert!(
        !parent_cpus.is_empty(),
        "the intermediate cpuset level got CPUs"
    );
    let cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000)
        .period(100_000u64)
        .cpus("0")
        .mems("0")
        .build()
        .unwrap();
    apply(&cg, LinuxResourcesBuilder::default().cpu(cpu)).unwrap();
    assert_eq!(file(&cg, "cpu", "cpu.shares"), "512");
    assert_eq!(file(&cg, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(file(&cg, "cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(file(&cg, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(file(&cg, "cpuset", "cpuset.mems"), "0");

    let bad = LinuxCpuBuilder::default()
        .quota(20_000)
        .period(0u64)
        .build()
        .unwrap();
    assert!(matches!(
        apply(&cg, LinuxResourcesBuilder::default().cpu(bad)),
        Err(CgroupError::InvalidResource { .. })
    ));
    assert_eq!(
        file(&cg, "cpu", "cpu.cfs_quota_us"),
        "50000",
        "nothing written"
    );
}

#[test]
fn device_rules_deny_everything_but_dev_null() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "");
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap();
    let null = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(3)
        .access("rwm")
        .build()
        .unwrap();
    apply(
        &cg,
        LinuxResourcesBuilder::default().devices(vec![deny_all, null]),
    )
    .unwrap();
    assert_eq!(file(&cg, "devices", "devices.list"), "c 1:3 rwm");
    let mut child = ShChild::spawn(
        "read _; (: </dev/null) && echo null-ok; (: </dev/zero) || echo zero-denied",
    );
    cg.add_process(child.pid()).unwrap();
    child.go();
    let (_, out, err) = child.finish(TIMEOUT);
    assert_eq!(out, "null-ok\nzero-denied\n", "stderr: {err}");
    assert!(err.contains("not permitted"), "{err}");
}

#[test]
fn blkio_weight_is_absent_here_but_throttles_work() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "");
    let blkio = &cg.paths()["blkio"];
    if !blkio.join("blkio.weight").exists() && !blkio.join("blkio.bfq.weight").exists() {
        let weighted = LinuxBlockIoBuilder::default()
            .weight(500u16)
            .build()
            .unwrap();
        match apply(&cg, LinuxResourcesBuilder::default().block_io(weighted)) {
            Err(CgroupError::MissingFile { setting, .. }) => assert_eq!(setting, "blockIO.weight"),
            other => panic!("expected MissingFile, got {other:?}"),
        }
    }
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    if !Path::new(&format!("/sys/dev/block/{major}:{minor}/queue")).exists() {
        eprintln!("skipped throttle: / is not on a whole disk");
        return;
    }
    let throttle = LinuxThrottleDeviceBuilder::default()
        .major(i64::from(major))
        .minor(i64::from(minor))
        .rate(1_048_576u64)
        .build()
        .unwrap();
    let r = LinuxBlockIoBuilder::default()
        .throttle_read_bps_device(vec![throttle])
        .build()
        .unwrap();
    apply(&cg, LinuxResourcesBuilder::default().block_io(r)).unwrap();
    assert_eq!(
        file(&cg, "blkio", "blkio.throttle.read_bps_device"),
        format!("{major}:{minor} 1048576")
    );
}

#[test]
fn stats_report_real_usage() {
    let Some(h) = v1_host() else { return };
    let (_guard, cg) = fresh(&h, "");
    apply(
        &cg,
        memory(256 << 20, None).pids(LinuxPidsBuilder::default().limit(50).build().unwrap()),
    )
    .unwrap();
    let mut child = ShChild::spawn(
        "read _; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo done; read _",
    );
    cg.add_process(child.pid()).unwrap();
    child.go();
    assert!(wait_until(TIMEOUT, || cg
        .stats()
        .unwrap()
        .cpu
        .unwrap()
        .usage_total_ns
        // cpuacct.stat counts user/system time in 10 ms ticks: burn enough to register.
        > 50_000_000));
    let stats = cg.stats().unwrap();
    let m = stats.memory.unwrap();
    assert!(m.usage > 0);
    assert_eq!(m.limit, Some(256 << 20));
    assert!(m.stat.contains_key("total_inactive_file"));
    let c = stats.cpu.unwrap();
    assert!(c.usage_user_ns + c.usage_system_ns > 0);
    assert!(!c.per_cpu_ns.is_empty());
    let p = stats.pids.unwrap();
    assert_eq!((p.current, p.limit), (1, Some(50)));
}

#[test]
fn hybrid_hugetlb_limits_land_in_the_unified_hierarchy() {
    let Some(h) = v1_host() else { return };
    let Some(root) = h.unified().map(Path::to_owned) else {
        eprintln!("skipped: not hybrid");
        return;
    };
    let has_hugetlb = |c: &str| {
        read(root.join("cgroup.controllers"))
            .split_whitespace()
            .any(|x| x == c)
    };
    if !has_hugetlb("hugetlb") || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("skipped: no hugetlb in the cgroup2 mount");
        return;
    }
    let _restore = SubtreeControlGuard::new(&root);
    let (_guard, cg) = fresh(&h, "");
    let limit = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(4 << 20)
        .build()
        .unwrap();
    let r: LinuxResources = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![limit])
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(file(&cg, "", "hugetlb.2MB.max"), (4u64 << 20).to_string());
}
