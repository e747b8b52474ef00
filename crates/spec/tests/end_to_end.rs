//! A generated spec run by the real `berth runtime run` on a busybox root filesystem: the
//! container must see exactly Docker's 14 capabilities, no inheritable or ambient ones, be
//! unable to create namespaces, and find `/proc/keys` masked.
//!
//! Needs root and the `berth` binary (`cargo build -p berth`); skipped with a message
//! otherwise.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_spec::{
    ALL_CAPABILITIES, ContainerConfig, DEFAULT_CAPABILITIES, NoVolumes, RuntimeContext, generate,
};

/// `target/debug/berth` (or under `CARGO_TARGET_DIR`).
fn berth_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug/berth");
    bin.is_file().then_some(bin)
}

/// The mask of Docker's default capabilities, as `/proc/self/status` prints it.
fn default_mask() -> u64 {
    DEFAULT_CAPABILITIES
        .iter()
        .map(|c| ALL_CAPABILITIES.iter().position(|a| a == c).unwrap())
        .fold(0, |mask, bit| mask | 1 << bit)
}

fn status_field(out: &str, name: &str) -> u64 {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} missing from output:\n{out}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
fn default_spec_runs_with_dockers_confinement() {
    if !berth_testsupport::is_root() {
        eprintln!("skipped: running containers needs root");
        return;
    }
    let Some(berth) = berth_binary() else {
        eprintln!("skipped: target/debug/berth is missing; run `cargo build -p berth` first");
        return;
    };
    let bundle = tempfile::Builder::new()
        .prefix("berth-spec-e2e")
        .tempdir()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    berth_testsupport::busybox_rootfs(&rootfs);

    let id = berth_testsupport::unique_name("berth-spec-e2e");
    let mut ctx = RuntimeContext::new(&id, &rootfs);
    // The container's own cgroup at the top (`/<id>`), which delete removes: no shared
    // `/berth` parent is left on the host.
    ctx.cgroup_parent = String::new();
    let script = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status; \
                  unshare -n true; echo unshare_rc=$?; \
                  echo keys_bytes=$(wc -c < /proc/keys)";
    let cfg = ContainerConfig {
        cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..ContainerConfig::default()
    };
    let spec = generate(&cfg, &ctx, &NoVolumes).unwrap();
    std::fs::write(
        bundle.path().join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();

    let out = Command::new(&berth)
        .arg("runtime")
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "berth runtime run failed: {stdout}\n{stderr}"
    );

    assert_eq!(default_mask(), 0xa804_25fb);
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            status_field(&stdout, field),
            default_mask(),
            "{field}\n{stdout}"
        );
    }
    assert_eq!(status_field(&stdout, "CapInh"), 0, "{stdout}");
    assert_eq!(status_field(&stdout, "CapAmb"), 0, "{stdout}");
    assert!(
        stdout.contains("keys_bytes=0"),
        "/proc/keys not masked:\n{stdout}"
    );
    assert!(
        !stdout.contains("unshare_rc=0"),
        "unshare -n worked:\n{stdout}"
    );
    assert!(
        stderr.contains("Operation not permitted"),
        "unshare did not fail with EPERM:\n{stdout}\n{stderr}"
    );
}

/// `--privileged` asks only for what the runtime holds (this host lacks CAP_SYS_RESOURCE, so
/// "every capability" would fail to start), lifts seccomp and the masks.
#[test]
fn privileged_spec_runs_with_the_runtimes_capabilities() {
    if !berth_testsupport::is_root() {
        eprintln!("skipped: running containers needs root");
        return;
    }
    let Some(berth) = berth_binary() else {
        eprintln!("skipped: target/debug/berth is missing; run `cargo build -p berth` first");
        return;
    };
    let bundle = tempfile::Builder::new()
        .prefix("berth-spec-e2e")
        .tempdir()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    berth_testsupport::busybox_rootfs(&rootfs);
    let id = berth_testsupport::unique_name("berth-spec-e2e-priv");
    let mut ctx = RuntimeContext::new(&id, &rootfs);
    // The container's own cgroup at the top (`/<id>`), which delete removes: no shared
    // `/berth` parent is left on the host.
    ctx.cgroup_parent = String::new();
    let script = "grep -E '^Cap(Eff|Bnd|Inh):' /proc/self/status; \
                  unshare -n true; echo unshare_rc=$?";
    let mut cfg = ContainerConfig {
        cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..ContainerConfig::default()
    };
    cfg.host.privileged = true;
    let spec = generate(&cfg, &ctx, &NoVolumes).unwrap();
    std::fs::write(
        bundle.path().join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    let out = Command::new(&berth)
        .arg("runtime")
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "berth runtime run failed: {stdout}\n{stderr}"
    );
    let held = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status_field(&held, "CapBnd");
    assert_eq!(status_field(&stdout, "CapEff"), bounding, "{stdout}");
    assert_eq!(status_field(&stdout, "CapBnd"), bounding, "{stdout}");
    assert_eq!(status_field(&stdout, "CapInh"), 0, "{stdout}");
    assert!(stdout.contains("unshare_rc=0"), "{stdout}\n{stderr}");
}

/// Many options at once, to check the runtime accepts what is generated for them: a read-only
/// root with a tmpfs, a user from the image's passwd, limits, rlimits, the network files.
#[test]
fn options_are_accepted_by_the_runtime() {
    if !berth_testsupport::is_root() {
        eprintln!("skipped: running containers needs root");
        return;
    }
    let Some(berth) = berth_binary() else {
        eprintln!("skipped: target/debug/berth is missing; run `cargo build -p berth` first");
        return;
    };
    let bundle = tempfile::Builder::new()
        .prefix("berth-spec-e2e")
        .tempdir()
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    berth_testsupport::busybox_rootfs(&rootfs);
    let hosts = bundle.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost berth-e2e-marker\n").unwrap();

    let id = berth_testsupport::unique_name("berth-spec-e2e-opts");
    let mut ctx = RuntimeContext::new(&id, &rootfs);
    // The container's own cgroup at the top (`/<id>`), which delete removes: no shared
    // `/berth` parent is left on the host.
    ctx.cgroup_parent = String::new();
    ctx.hosts_path = Some(hosts);
    let script = "id -u; id -g; grep CapEff /proc/self/status; \
                  touch /rootfile 2>/dev/null && echo root_writable || echo root_readonly; \
                  touch /run/x && echo run_writable; ulimit -n; \
                  grep -c berth-e2e-marker /etc/hosts; echo HOME=$HOME; cat /proc/self/oom_score_adj";
    let mut cfg = ContainerConfig {
        user: "nobody".into(),
        cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..ContainerConfig::default()
    };
    cfg.host.readonly_rootfs = true;
    cfg.host.tmpfs = [("/run".to_owned(), "size=1m".to_owned())].into();
    cfg.host.shm_size = 16 << 20;
    cfg.host.oom_score_adj = 300;
    cfg.host.ulimits = vec![berth_spec::parse_ulimit("nofile=1024:2048").unwrap()];
    cfg.host.resources.memory = 64 << 20;
    cfg.host.resources.pids_limit = Some(64);
    cfg.host.resources.nano_cpus = 500_000_000;
    let spec = generate(&cfg, &ctx, &NoVolumes).unwrap();
    std::fs::write(
        bundle.path().join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    let out = Command::new(&berth)
        .arg("runtime")
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "berth runtime run failed: {stdout}\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "65534",
            "65534",
            "CapEff:\t0000000000000000",
            "root_readonly",
            "run_writable",
            "1024",
            "1",
            "HOME=/nonexistent",
            "300",
        ],
        "{stderr}"
    );
}
