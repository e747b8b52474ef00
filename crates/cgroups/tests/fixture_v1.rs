//! cgroup v1 and hybrid against temporary directories that pretend to be controller mounts:
//! which files are written, and which missing files are errors (only the requested ones).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::{Cgroup, CgroupError, Hierarchy};
use common::read;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxHugepageLimitBuilder,
    LinuxMemoryBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};
use tempfile::TempDir;

const CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuacct", "blkio", "devices", "pids", "freezer", "cpuset",
];

/// Leaf files per controller, as on this host's kernel (no blkio.weight, memsw present).
fn leaf_files(controller: &str) -> &'static [&'static str] {
    match controller {
        "memory" => &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.oom_control",
            "memory.swappiness",
            "memory.usage_in_bytes",
            "memory.max_usage_in_bytes",
        ],
        "blkio" => &[
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
        ],
        "devices" => &["devices.allow", "devices.deny"],
        "pids" => &["pids.max", "pids.current"],
        "freezer" => &["freezer.state"],
        _ => &[],
    }
}

struct Fixture {
    tmp: TempDir,
    cgroup: Cgroup,
}

impl Fixture {
    /// Mounts under `tmp/<controller>`, plus a cgroup2 mount at `tmp/unified` when `hybrid`.
    fn new(hybrid: bool) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let mut controllers = BTreeMap::new();
        for c in CONTROLLERS {
            let mount = tmp.path().join(c);
            fs::create_dir(&mount).unwrap();
            controllers.insert(c.to_string(), mount);
        }
        let cpuset = tmp.path().join("cpuset");
        fs::write(cpuset.join("cpuset.cpus"), "0-3\n").unwrap();
        fs::write(cpuset.join("cpuset.mems"), "0\n").unwrap();
        // Inner cpuset levels exist with empty cpus/mems, as the kernel makes them.
        for level in ["berth", "berth/c1"] {
            fs::create_dir(cpuset.join(level)).unwrap();
            fs::write(cpuset.join(level).join("cpuset.cpus"), "\n").unwrap();
            fs::write(cpuset.join(level).join("cpuset.mems"), "\n").unwrap();
        }
        let unified = hybrid.then(|| {
            let root = tmp.path().join("unified");
            fs::create_dir(&root).unwrap();
            fs::write(root.join("cgroup.controllers"), "hugetlb\n").unwrap();
            fs::write(root.join("cgroup.subtree_control"), "").unwrap();
            root
        });
        let cgroup = Cgroup::new(
            Hierarchy::V1 {
                controllers,
                unified,
            },
            "/berth/c1",
        )
        .unwrap();
        cgroup.create().unwrap();
        for c in CONTROLLERS {
            for file in leaf_files(c).iter().chain(&["cgroup.procs"]) {
                fs::write(tmp.path().join(c).join("berth/c1").join(file), "").unwrap();
            }
        }
        fs::write(
            tmp.path().join("memory/berth/c1/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        Fixture { tmp, cgroup }
    }

    fn leaf(&self, controller: &str) -> PathBuf {
        self.tmp.path().join(controller).join("berth/c1")
    }

    fn file(&self, controller: &str, name: &str) -> String {
        read(self.leaf(controller).join(name))
    }
}

#[test]
fn create_makes_every_controller_dir_and_copies_cpuset_from_parents() {
    let f = Fixture::new(false);
    for c in CONTROLLERS {
        assert!(f.leaf(c).is_dir(), "{c}");
    }
    assert_eq!(read(f.tmp.path().join("cpuset/berth/cpuset.cpus")), "0-3");
    assert_eq!(f.file("cpuset", "cpuset.cpus"), "0-3");
    assert_eq!(f.file("cpuset", "cpuset.mems"), "0");
    let paths = f.cgroup.paths();
    assert_eq!(paths.len(), CONTROLLERS.len());
    assert_eq!(paths["memory"], f.leaf("memory"));
}

#[test]
fn memory_settings_go_to_their_v1_files() {
    let f = Fixture::new(false);
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .swap(128 << 20)
                .reservation(32 << 20)
                .swappiness(10u64)
                .disable_oom_killer(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    f.cgroup.apply(&r).unwrap();
    assert_eq!(
        f.file("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        f.file("memory", "memory.memsw.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        f.file("memory", "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(f.file("memory", "memory.swappiness"), "10");
    assert_eq!(f.file("memory", "memory.oom_control"), "1");
}

#[test]
fn missing_swap_accounting_matters_only_when_swap_is_requested() {
    let f = Fixture::new(false);
    fs::remove_file(f.leaf("memory").join("memory.memsw.limit_in_bytes")).unwrap();
    let with_swap = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .swap(128 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    match f.cgroup.apply(&with_swap) {
        Err(CgroupError::MissingFile { path, setting }) => {
            assert!(path.ends_with("memory.memsw.limit_in_bytes"));
            assert_eq!(setting, "memory.swap");
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    let unlimited = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
        .build()
        .unwrap();
    f.cgroup.apply(&unlimited).unwrap();
    assert_eq!(f.file("memory", "memory.limit_in_bytes"), "-1");
}

#[test]
fn missing_blkio_weight_matters_only_when_a_weight_is_requested() {
    let f = Fixture::new(false);
    let throttle = LinuxThrottleDeviceBuilder::default()
        .major(254)
        .minor(0)
        .rate(1_048_576u64)
        .build()
        .unwrap();
    let r = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .throttle_read_bps_device(vec![throttle])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    f.cgroup.apply(&r).unwrap();
    assert_eq!(
        f.file("blkio", "blkio.throttle.read_bps_device"),
        "254:0 1048576"
    );
    let weighted = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = f.cgroup.apply(&weighted).unwrap_err();
    assert!(
        matches!(&err, CgroupError::MissingFile { path, .. } if path.ends_with("blkio.weight")),
        "{err}"
    );
    assert!(err.to_string().contains("blockIO.weight"), "{err}");
}

#[test]
fn device_rules_are_written_in_order() {
    let f = Fixture::new(false);
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
    let r = LinuxResourcesBuilder::default()
        .devices(vec![deny_all, null])
        .build()
        .unwrap();
    f.cgroup.apply(&r).unwrap();
    assert_eq!(f.file("devices", "devices.deny"), "a");
    assert_eq!(f.file("devices", "devices.allow"), "c 1:3 rwm");
}

#[test]
fn unified_keys_need_a_cgroup2_mount() {
    let f = Fixture::new(false);
    let r = LinuxResourcesBuilder::default()
        .unified(HashMap::from([("memory.high".to_owned(), "1M".to_owned())]))
        .build()
        .unwrap();
    assert!(matches!(
        f.cgroup.apply(&r),
        Err(CgroupError::ControllerMissing { .. })
    ));
    let huge = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(1)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    assert!(matches!(
        f.cgroup.apply(&huge),
        Err(CgroupError::ControllerMissing { .. })
    ));
}

#[test]
fn hybrid_puts_hugetlb_and_unified_keys_in_the_cgroup2_mount() {
    let f = Fixture::new(true);
    let unified_leaf = f.tmp.path().join("unified/berth/c1");
    assert!(unified_leaf.is_dir());
    assert_eq!(f.cgroup.paths()[""], unified_leaf);
    // create() leaves the cgroup2 side's controllers alone...
    assert_eq!(
        read(f.tmp.path().join("unified/cgroup.subtree_control")),
        ""
    );
    for file in ["hugetlb.2MB.max", "cgroup.max.descendants", "cgroup.procs"] {
        fs::write(unified_leaf.join(file), "").unwrap();
    }
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(2 << 20)
                .build()
                .unwrap(),
        ])
        .unified(HashMap::from([(
            "cgroup.max.descendants".to_owned(),
            "3".to_owned(),
        )]))
        .build()
        .unwrap();
    f.cgroup.apply(&r).unwrap();
    // ...apply() enables hugetlb because it needs it.
    assert_eq!(
        read(f.tmp.path().join("unified/cgroup.subtree_control")),
        "+hugetlb"
    );
    assert_eq!(
        read(unified_leaf.join("hugetlb.2MB.max")),
        (2u64 << 20).to_string()
    );
    assert_eq!(read(unified_leaf.join("cgroup.max.descendants")), "3");
    f.cgroup.add_process(4321).unwrap();
    assert_eq!(read(unified_leaf.join("cgroup.procs")), "4321");
    assert_eq!(f.file("memory", "cgroup.procs"), "4321");
}

#[test]
fn stats_and_oom_kills_from_v1_files() {
    let f = Fixture::new(false);
    let write = |c: &str, name: &str, value: &str| fs::write(f.leaf(c).join(name), value).unwrap();
    write("memory", "memory.usage_in_bytes", "1048576\n");
    write("memory", "memory.max_usage_in_bytes", "2097152\n");
    write("memory", "memory.limit_in_bytes", "67108864\n");
    write("memory", "memory.memsw.usage_in_bytes", "1052672\n");
    write(
        "memory",
        "memory.stat",
        "cache 4096\ntotal_inactive_file 8192\n",
    );
    write(
        "memory",
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    write("cpuacct", "cpuacct.usage", "123456789\n");
    write("cpuacct", "cpuacct.usage_percpu", "100000000 23456789 \n");
    write("cpuacct", "cpuacct.usage_user", "100\n");
    write("cpuacct", "cpuacct.usage_sys", "50\n");
    write(
        "cpu",
        "cpu.stat",
        "nr_periods 10\nnr_throttled 2\nthrottled_time 3000\n",
    );
    write("pids", "pids.current", "2\n");
    write("pids", "pids.max", "max\n");
    write(
        "blkio",
        "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n",
    );
    let stats = f.cgroup.stats().unwrap();
    let io = stats.io.clone().unwrap();
    assert_eq!(io.len(), 2);
    assert_eq!(
        (io[0].major, io[0].minor, io[0].op.as_str(), io[0].value),
        (8, 0, "Read", 4096)
    );
    assert_eq!((io[1].op.as_str(), io[1].value), ("Write", 8192));
    let m = stats.memory.unwrap();
    assert_eq!(
        (m.usage, m.max_usage, m.limit, m.swap_usage),
        (1 << 20, Some(2 << 20), Some(64 << 20), Some(4096))
    );
    assert_eq!(m.stat["total_inactive_file"], 8192);
    let c = stats.cpu.unwrap();
    assert_eq!(c.usage_total_ns, 123_456_789);
    assert_eq!(c.per_cpu_ns, vec![100_000_000, 23_456_789]);
    assert_eq!((c.usage_user_ns, c.usage_system_ns), (100, 50));
    assert_eq!(
        (c.periods, c.throttled_periods, c.throttled_ns),
        (10, 2, 3000)
    );
    let p = stats.pids.unwrap();
    assert_eq!((p.current, p.limit), (2, None));
    assert_eq!(f.cgroup.oom_kill_count().unwrap(), 3);
}

#[test]
fn unlimited_v1_memory_limit_reads_as_none() {
    let f = Fixture::new(false);
    let write = |name: &str, value: &str| fs::write(f.leaf("memory").join(name), value).unwrap();
    write("memory.usage_in_bytes", "0\n");
    write("memory.max_usage_in_bytes", "0\n");
    fs::write(f.leaf("cpuacct").join("cpuacct.usage"), "0\n").unwrap();
    fs::write(f.leaf("pids").join("pids.current"), "0\n").unwrap();
    fs::write(f.leaf("pids").join("pids.max"), "max\n").unwrap();
    let m = f.cgroup.stats().unwrap().memory.unwrap();
    assert_eq!(m.limit, None);
}

#[test]
fn relative_paths_use_each_controllers_own_cgroup() {
    let own = berth_cgroups::OwnCgroups::parse("4:memory:/process_api/x\n3:pids:/\n0::/\n");
    let controllers = BTreeMap::from([
        ("memory".to_owned(), PathBuf::from("/sys/fs/cgroup/memory")),
        ("pids".to_owned(), PathBuf::from("/sys/fs/cgroup/pids")),
    ]);
    let h = Hierarchy::V1 {
        controllers,
        unified: Some("/sys/fs/cgroup/unified".into()),
    };
    let cg = Cgroup::new_in(h, "berth/c1", &own).unwrap();
    let paths = cg.paths();
    assert_eq!(
        paths["memory"],
        Path::new("/sys/fs/cgroup/memory/process_api/x/berth/c1")
    );
    assert_eq!(paths["pids"], Path::new("/sys/fs/cgroup/pids/berth/c1"));
    assert_eq!(paths[""], Path::new("/sys/fs/cgroup/unified/berth/c1"));
}
