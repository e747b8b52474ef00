//! Generated specs compared with what Docker produces for the same options.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use berth_errdefs::{CategorizedError, Category, HasCategory};
use berth_spec::{
    ContainerConfig, DEFAULT_CAPABILITIES, DeviceMapping, HostFacts, INIT_PATH, IpcNamespace,
    MountKind, MountSpec, NetworkNamespace, NoVolumes, PidNamespace, RuntimeContext,
    STOP_SIGNAL_ANNOTATION, SpecError, Ulimit, VolumeRequest, caps_from_mask, generate,
};
use oci_spec::runtime::{
    Capabilities, LinuxNamespaceType, LinuxSeccompAction, Mount, PosixRlimitType, Spec,
};

/// The facts of this project's hosts: no CAP_SYS_RESOURCE, kernel 6.18, cgroup v1.
fn host() -> HostFacts {
    HostFacts {
        bounding: caps_from_mask(0x1ff_feff_ffff),
        kernel: (6, 18),
        hard_limits: BTreeMap::from([("nofile".to_owned(), 524_288)]),
        cpus: 2,
        cgroup_v2: false,
        swap_limit: true,
        thermal_throttle: vec!["/sys/devices/system/cpu/cpu0/thermal_throttle".into()],
    }
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("rootfs/etc");
        fs::create_dir_all(&etc).unwrap();
        fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            etc.join("group"),
            "root:x:0:\napp:x:1000:\naudio:x:29:app\n",
        )
        .unwrap();
        Fixture { dir }
    }

    fn ctx(&self) -> RuntimeContext {
        let mut ctx = RuntimeContext::new(
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            self.dir.path().join("rootfs"),
        );
        ctx.host = host();
        ctx.hosts_path = Some("/run/berth/c/hosts".into());
        ctx.resolv_conf_path = Some("/run/berth/c/resolv.conf".into());
        ctx.hostname_path = Some("/run/berth/c/hostname".into());
        ctx
    }
}

fn cfg(cmd: &[&str]) -> ContainerConfig {
    ContainerConfig {
        cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
        ..ContainerConfig::default()
    }
}

fn spec_of(c: &ContainerConfig) -> Spec {
    let f = Fixture::new();
    generate(c, &f.ctx(), &NoVolumes).unwrap()
}

fn err_of(c: &ContainerConfig) -> SpecError {
    let f = Fixture::new();
    generate(c, &f.ctx(), &NoVolumes).unwrap_err()
}

fn names(set: &Option<Capabilities>) -> BTreeSet<String> {
    set.as_ref()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn mount_at<'a>(spec: &'a Spec, dest: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
}

fn options(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

fn env(spec: &Spec) -> Vec<String> {
    spec.process().as_ref().unwrap().env().clone().unwrap()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn default_capabilities_are_exactly_dockers_with_empty_inheritable_and_ambient() {
    let spec = spec_of(&cfg(&["sh"]));
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    let want: BTreeSet<String> = DEFAULT_CAPABILITIES
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    assert_eq!(names(caps.bounding()), want);
    assert_eq!(names(caps.effective()), want);
    assert_eq!(names(caps.permitted()), want);
    assert!(names(caps.inheritable()).is_empty());
    assert!(names(caps.ambient()).is_empty());
}

#[test]
fn default_spec_shape() {
    let spec = spec_of(&cfg(&["sh", "-c", "true"]));
    let process = spec.process().as_ref().unwrap();
    assert_eq!(
        process.args().as_deref().unwrap(),
        strings(&["sh", "-c", "true"])
    );
    assert_eq!(process.cwd(), Path::new("/"));
    assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
    assert_eq!(process.no_new_privileges(), Some(false));
    assert_eq!(process.oom_score_adj(), Some(0));
    assert_eq!(process.terminal(), Some(false));
    assert!(
        process.rlimits().as_ref().unwrap().is_empty(),
        "Docker sets no rlimits"
    );
    assert_eq!(
        env(&spec),
        strings(&[
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=0123456789ab",
            "HOME=/root",
        ])
    );
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.readonly(), Some(false));
    assert!(root.path().ends_with("rootfs"));

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new(
            "/berth/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        ))
    );
    let ns: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    use LinuxNamespaceType as T;
    assert_eq!(ns, vec![T::Mount, T::Network, T::Ipc, T::Pid, T::Uts]);
    let sysctl = linux.sysctl().as_ref().unwrap();
    assert_eq!(
        sysctl
            .get("net.ipv4.ip_unprivileged_port_start")
            .map(String::as_str),
        Some("0")
    );
    assert_eq!(
        sysctl.get("net.ipv4.ping_group_range").map(String::as_str),
        Some("0 2147483647")
    );
    let seccomp = linux.seccomp().as_ref().unwrap();
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert!(linux.devices().as_ref().unwrap().is_empty());
    assert_eq!(
        linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap()
            .len(),
        14
    );
}

#[test]
fn masked_and_readonly_paths_are_dockers() {
    let spec = spec_of(&cfg(&["sh"]));
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.masked_paths().as_deref().unwrap(),
        strings(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/interrupts",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/sys/devices/virtual/powercap",
            "/sys/firmware",
            "/sys/devices/system/cpu/cpu0/thermal_throttle",
        ])
    );
    assert_eq!(
        linux.readonly_paths().as_deref().unwrap(),
        strings(&[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ])
    );

    let mut c = cfg(&["sh"]);
    c.host.masked_paths = Some(strings(&["/proc/cpuinfo"]));
    c.host.readonly_paths = Some(vec![]);
    let spec = spec_of(&c);
    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.masked_paths().as_deref().unwrap(),
        strings(&["/proc/cpuinfo"])
    );
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
}

#[test]
fn default_mounts_with_dockers_options() {
    let spec = spec_of(&cfg(&["sh"]));
    let dests: Vec<String> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dests,
        strings(&[
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts",
        ])
    );
    let pts = mount_at(&spec, "/dev/pts").unwrap();
    assert_eq!(pts.typ().as_deref(), Some("devpts"));
    assert_eq!(
        options(pts),
        strings(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ])
    );
    assert!(options(mount_at(&spec, "/sys").unwrap()).contains(&"ro".to_owned()));
    assert!(options(mount_at(&spec, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_owned()));
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("shm")));
    assert!(options(shm).contains(&"size=67108864".to_owned()));
    let hosts = mount_at(&spec, "/etc/hosts").unwrap();
    assert_eq!(
        hosts.source().as_deref(),
        Some(Path::new("/run/berth/c/hosts"))
    );
    assert_eq!(options(hosts), strings(&["rbind", "rprivate"]));
}

#[test]
fn shm_size_and_ipc_modes() {
    let mut c = cfg(&["sh"]);
    c.host.shm_size = 128 << 20;
    let spec = spec_of(&c);
    assert!(options(mount_at(&spec, "/dev/shm").unwrap()).contains(&"size=134217728".to_owned()));

    c.host.shm_size = -1;
    assert_eq!(err_of(&c).to_string(), "SHM size can not be less than 0");

    let f = Fixture::new();
    let mut ctx = f.ctx();
    ctx.ipc = IpcNamespace::None;
    let spec = generate(&cfg(&["sh"]), &ctx, &NoVolumes).unwrap();
    assert!(mount_at(&spec, "/dev/shm").is_none());
    ctx.ipc = IpcNamespace::Host;
    let spec = generate(&cfg(&["sh"]), &ctx, &NoVolumes).unwrap();
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(
        (shm.typ().as_deref(), shm.source().as_deref()),
        (Some("bind"), Some(Path::new("/dev/shm")))
    );
    let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
    assert!(ns.iter().all(|n| n.typ() != LinuxNamespaceType::Ipc));
}

#[test]
fn privileged_gets_the_runtimes_caps_devices_and_no_confinement() {
    let mut c = cfg(&["sh"]);
    c.host.privileged = true;
    let spec = spec_of(&c);
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    let held = names(caps.bounding());
    assert_eq!(held, host().bounding);
    assert!(!held.contains("CAP_SYS_RESOURCE"));
    assert_eq!(names(caps.effective()), held);
    assert!(names(caps.inheritable()).is_empty());
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow() && rules[0].access().as_deref() == Some("rwm"));
    assert!(
        linux
            .devices()
            .as_ref()
            .unwrap()
            .iter()
            .any(|d| d.path() == Path::new("/dev/null"))
    );
    assert!(!options(mount_at(&spec, "/sys").unwrap()).contains(&"ro".to_owned()));
    assert!(!options(mount_at(&spec, "/sys/fs/cgroup").unwrap()).contains(&"ro".to_owned()));
}

#[test]
fn cap_add_and_drop() {
    let mut c = cfg(&["sh"]);
    c.host.cap_add = strings(&["sys_admin", "CAP_NET_ADMIN"]);
    c.host.cap_drop = strings(&["net_raw"]);
    let spec = spec_of(&c);
    let caps = names(
        spec.process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .effective(),
    );
    assert!(caps.contains("CAP_SYS_ADMIN") && caps.contains("CAP_NET_ADMIN"));
    assert!(!caps.contains("CAP_NET_RAW"));
    // SYS_ADMIN unlocks its seccomp group.
    let seccomp = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let unshare_allowed = seccomp.syscalls().as_ref().unwrap().iter().any(|r| {
        r.action() == LinuxSeccompAction::ScmpActAllow && r.names().iter().any(|n| n == "unshare")
    });
    assert!(unshare_allowed);

    c.host.cap_add = strings(&["CAP_FOO"]);
    let e = err_of(&c);
    assert_eq!(e.to_string(), r#"unknown capability: "CAP_FOO""#);
    assert_eq!(e.category(), Category::InvalidParameter);
}

#[test]
fn seccomp_options() {
    let mut c = cfg(&["sh"]);
    c.host.security_opt = strings(&["seccomp=unconfined", "no-new-privileges"]);
    let spec = spec_of(&c);
    assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );

    c.host.security_opt = strings(&[
        r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
    ]);
    let spec = spec_of(&c);
    let s = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(s.syscalls().as_ref().unwrap().len(), 1);

    c.host.security_opt = strings(&["seccomp={not json"]);
    assert!(
        err_of(&c)
            .to_string()
            .starts_with("Decoding seccomp profile failed")
    );
}

#[test]
fn read_only_rootfs() {
    let mut c = cfg(&["sh"]);
    c.host.readonly_rootfs = true;
    c.host.tmpfs = BTreeMap::from([("/run".to_owned(), "size=1m".to_owned())]);
    let spec = spec_of(&c);
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    for writable in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/run",
    ] {
        assert!(
            !options(mount_at(&spec, writable).unwrap()).contains(&"ro".to_owned()),
            "{writable}"
        );
    }
    for ro in [
        "/sys",
        "/sys/fs/cgroup",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
    ] {
        assert!(
            options(mount_at(&spec, ro).unwrap()).contains(&"ro".to_owned()),
            "{ro}"
        );
    }
}

#[test]
fn user_from_the_containers_passwd() {
    let mut c = cfg(&["id"]);
    c.user = "app".into();
    c.host.group_add = strings(&["root", "4000"]);
    let spec = spec_of(&c);
    let process = spec.process().as_ref().unwrap();
    let user = process.user();
    assert_eq!((user.uid(), user.gid()), (1000, 1000));
    assert_eq!(
        user.additional_gids().as_deref(),
        Some(&[1000, 29, 0, 4000][..])
    );
    assert!(env(&spec).contains(&"HOME=/home/app".to_owned()));
    // Non-root: only the bounding set, as execve would leave it.
    let caps = process.capabilities().clone().unwrap();
    assert_eq!(names(caps.bounding()).len(), 14);
    assert!(names(caps.effective()).is_empty());

    for hostile in ["2147483648", "4294967295", "-1", "99999999999"] {
        c.user = hostile.into();
        c.host.group_add.clear();
        let e = err_of(&c);
        assert!(matches!(e, SpecError::IdOutOfRange(_)), "{hostile}: {e}");
    }
    c.user = "ghost".into();
    assert_eq!(
        err_of(&c).to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
}

#[test]
fn entrypoint_init_workdir_env() {
    let f = Fixture::new();
    let mut ctx = f.ctx();
    ctx.init_path = Some("/usr/libexec/berth/tini".into());
    let mut c = cfg(&["-l"]);
    c.entrypoint = Some(strings(&["/bin/ls"]));
    c.host.init = Some(true);
    c.working_dir = "/srv/../data".into();
    c.env = strings(&["A=1", "PATH=/bin"]);
    c.tty = true;
    let spec = generate(&c, &ctx, &NoVolumes).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(
        process.args().as_deref().unwrap(),
        strings(&[INIT_PATH, "--", "/bin/ls", "-l"])
    );
    assert_eq!(process.cwd(), Path::new("/data"));
    assert_eq!(process.terminal(), Some(true));
    assert_eq!(
        env(&spec),
        strings(&[
            "PATH=/bin",
            "HOSTNAME=0123456789ab",
            "TERM=xterm",
            "A=1",
            "HOME=/root"
        ])
    );
    let init = mount_at(&spec, INIT_PATH).unwrap();
    assert_eq!(
        init.source().as_deref(),
        Some(Path::new("/usr/libexec/berth/tini"))
    );
    assert_eq!(options(init), strings(&["bind", "ro"]));

    ctx.init_path = None;
    assert!(generate(&c, &ctx, &NoVolumes).is_err());
    c.working_dir = "data".into();
    c.host.init = None;
    assert!(
        err_of(&c)
            .to_string()
            .contains("needs to be an absolute path")
    );
    assert_eq!(err_of(&cfg(&[])).to_string(), "No command specified");
}

#[test]
fn stop_signal_and_labels_become_annotations() {
    let mut c = cfg(&["sh"]);
    c.labels = BTreeMap::from([
        ("com.example.a".to_owned(), "1".to_owned()),
        (STOP_SIGNAL_ANNOTATION.to_owned(), "SIGKILL".to_owned()),
    ]);
    c.stop_signal = Some("quit".into());
    let spec = spec_of(&c);
    let a = spec.annotations().as_ref().unwrap();
    assert_eq!(a.get("com.example.a").map(String::as_str), Some("1"));
    assert_eq!(
        a.get(STOP_SIGNAL_ANNOTATION).map(String::as_str),
        Some("SIGQUIT")
    );

    c.stop_signal = Some("SIGNOPE".into());
    assert_eq!(err_of(&c).to_string(), "Invalid signal: SIGNOPE");
}

#[test]
fn resources_ulimits_and_oom_score() {
    let f = Fixture::new();
    let mut ctx = f.ctx();
    ctx.default_ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 1024,
        hard: 4096,
    }];
    let mut c = cfg(&["sh"]);
    c.host.resources.memory = 256 << 20;
    c.host.resources.nano_cpus = 500_000_000;
    c.host.resources.pids_limit = Some(64);
    c.host.resources.oom_kill_disable = true;
    c.host.oom_score_adj = 500;
    c.host.ulimits = vec![Ulimit {
        name: "core".into(),
        soft: 0,
        hard: 0,
    }];
    let spec = generate(&c, &ctx, &NoVolumes).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.oom_score_adj(), Some(500));
    let rl = process.rlimits().clone().unwrap();
    assert_eq!(rl.len(), 2);
    assert!(
        rl.iter()
            .any(|r| r.typ() == PosixRlimitType::RlimitNofile && r.hard() == 4096)
    );
    let res = spec.linux().as_ref().unwrap().resources().clone().unwrap();
    let mem = res.memory().unwrap();
    assert_eq!(
        (mem.limit(), mem.swap(), mem.disable_oom_killer()),
        (Some(256 << 20), Some(512 << 20), Some(true))
    );
    let cpu = res.cpu().clone().unwrap();
    assert_eq!((cpu.period(), cpu.quota()), (Some(100_000), Some(50_000)));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 64);

    c.host.oom_score_adj = -1001;
    assert_eq!(
        generate(&c, &ctx, &NoVolumes).unwrap_err().to_string(),
        "Invalid value -1001, range for oom score adj is [-1000, 1000]"
    );
    c.host.oom_score_adj = 0;
    c.host.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 1_048_576,
        hard: 1_048_576,
    }];
    assert!(
        generate(&c, &ctx, &NoVolumes)
            .unwrap_err()
            .to_string()
            .contains("CAP_SYS_RESOURCE")
    );
}

#[test]
fn binds_volumes_tmpfs_and_mount_order() {
    let host_dir = tempfile::tempdir().unwrap();
    let src = host_dir.path().to_string_lossy().into_owned();
    let mut c = cfg(&["sh"]);
    c.host.binds = vec![
        format!("{src}:/data/inner:ro"),
        "named:/data".into(),
        "/anon".into(),
    ];
    c.host.mounts = vec![MountSpec {
        kind: MountKind::Bind,
        source: src.clone(),
        target: "/m".into(),
        bind_propagation: "rslave".into(),
        ..MountSpec::default()
    }];
    c.host.tmpfs = BTreeMap::from([("/run".to_owned(), "exec,size=1m".to_owned())]);
    let f = Fixture::new();
    let seen = std::cell::RefCell::new(Vec::new());
    let volumes = |r: &VolumeRequest<'_>| -> Result<PathBuf, CategorizedError> {
        seen.borrow_mut()
            .push((r.name.map(str::to_owned), r.destination.to_owned()));
        Ok(PathBuf::from(format!(
            "/var/lib/berth/volumes/{}/_data",
            r.name.unwrap_or("anon1")
        )))
    };
    let spec = generate(&c, &f.ctx(), &volumes).unwrap();
    assert_eq!(
        *seen.borrow(),
        vec![
            (Some("named".to_owned()), "/data".to_owned()),
            (None, "/anon".to_owned())
        ]
    );
    let inner = mount_at(&spec, "/data/inner").unwrap();
    assert_eq!(options(inner), strings(&["rbind", "rprivate", "ro"]));
    let data = mount_at(&spec, "/data").unwrap();
    assert_eq!(
        data.source().as_deref(),
        Some(Path::new("/var/lib/berth/volumes/named/_data"))
    );
    let run = mount_at(&spec, "/run").unwrap();
    assert_eq!(
        options(run),
        strings(&["nosuid", "nodev", "rprivate", "exec", "size=1m"])
    );
    assert_eq!(
        options(mount_at(&spec, "/m").unwrap()),
        strings(&["rbind", "rslave"])
    );
    assert_eq!(
        spec.linux()
            .as_ref()
            .unwrap()
            .rootfs_propagation()
            .as_deref(),
        Some("rslave")
    );
    // Parents before children.
    let order: Vec<&Path> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().as_path())
        .collect();
    let pos = |p: &str| order.iter().position(|d| *d == Path::new(p)).unwrap();
    assert!(pos("/data") < pos("/data/inner"));

    // Without a volume source, a volume is the engine's error, with its category.
    let e = generate(&c, &f.ctx(), &NoVolumes).unwrap_err();
    assert_eq!(e.category(), Category::NotFound);
}

#[test]
fn mount_errors() {
    let mut c = cfg(&["sh"]);
    c.host.binds = strings(&["/a:/x", "/b:/x"]);
    assert_eq!(err_of(&c).to_string(), "Duplicate mount point: /x");
    c.host.binds = strings(&["./rel:/x"]);
    assert!(err_of(&c).to_string().contains("use absolute path"));
    c.host.binds = strings(&["/a:/"]);
    assert!(err_of(&c).to_string().contains("destination can't be '/'"));
    c.host.binds = strings(&["/a:rel"]);
    assert!(
        err_of(&c)
            .to_string()
            .contains("mount path must be absolute")
    );
    c.host.binds.clear();
    c.host.mounts = vec![MountSpec {
        kind: MountKind::Bind,
        source: "/berth/no/such/dir".into(),
        target: "/x".into(),
        ..MountSpec::default()
    }];
    assert_eq!(
        err_of(&c).to_string(),
        "invalid mount config for type \"bind\": bind source path does not exist: /berth/no/such/dir"
    );
}

#[test]
fn a_user_mount_replaces_the_default_at_the_same_place() {
    let mut c = cfg(&["sh"]);
    c.host.binds = strings(&["/tmp:/dev/shm", "/tmp:/etc/hosts"]);
    let spec = spec_of(&c);
    let shm = mount_at(&spec, "/dev/shm").unwrap();
    assert_eq!(shm.source().as_deref(), Some(Path::new("/tmp")));
    let hosts: Vec<&Mount> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|m| m.destination() == Path::new("/etc/hosts"))
        .collect();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].source().as_deref(), Some(Path::new("/tmp")));
}

#[test]
fn devices_and_cgroup_rules() {
    let mut c = cfg(&["sh"]);
    c.host.devices = vec![DeviceMapping {
        path_on_host: "/dev/null".into(),
        path_in_container: "/dev/xnull".into(),
        cgroup_permissions: "rw".into(),
    }];
    c.host.device_cgroup_rules = strings(&["c 42:* rmw"]);
    let spec = spec_of(&c);
    let linux = spec.linux().as_ref().unwrap();
    let devs = linux.devices().clone().unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0].path(), Path::new("/dev/xnull"));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 16);
    assert_eq!(rules[14].major(), Some(1));
    assert_eq!(rules[15].major(), Some(42));

    c.host.devices[0].path_on_host = "/dev/berth-none".into();
    assert!(
        err_of(&c)
            .to_string()
            .contains("error gathering device information")
    );
}

#[test]
fn namespace_choices() {
    let f = Fixture::new();
    let mut ctx = f.ctx();
    ctx.network = NetworkNamespace::Host;
    ctx.pid = PidNamespace::Host;
    let mut c = cfg(&["sh"]);
    c.host.uts_mode = "host".into();
    c.host.sysctls = BTreeMap::from([("kernel.shm_rmid_forced".to_owned(), "1".to_owned())]);
    let spec = generate(&c, &ctx, &NoVolumes).unwrap();
    assert!(spec.hostname().is_none());
    let linux = spec.linux().as_ref().unwrap();
    let ns: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(ns, vec![LinuxNamespaceType::Mount, LinuxNamespaceType::Ipc]);
    let sysctl = linux.sysctl().clone().unwrap();
    assert_eq!(
        sysctl.len(),
        1,
        "no netns defaults on the host network: {sysctl:?}"
    );

    c.host.sysctls = BTreeMap::from([("net.ipv4.ip_forward".to_owned(), "1".to_owned())]);
    assert!(generate(&c, &ctx, &NoVolumes).is_err());
    c.host.sysctls = BTreeMap::from([("kernel.core_pattern".to_owned(), "|/x".to_owned())]);
    assert!(generate(&c, &ctx, &NoVolumes).is_err());

    ctx.network = NetworkNamespace::Container(1234);
    c.host.sysctls.clear();
    c.host.cgroupns_mode = "private".into();
    let spec = generate(&c, &ctx, &NoVolumes).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let net = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(net.path().as_deref(), Some(Path::new("/proc/1234/ns/net")));
    assert!(
        linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Cgroup)
    );
    assert!(linux.sysctl().as_ref().unwrap().is_empty());
}

#[test]
fn spec_round_trips_through_json() {
    let spec = spec_of(&cfg(&["sh"]));
    let json = serde_json::to_string(&spec).unwrap();
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
}
