//! `berth daemon` driven by the real docker CLI (`docker version`, `docker info`,
//! `docker events`). Skipped when no docker CLI is installed.

mod daemon_support;

use daemon_support::Daemon;

fn have_docker() -> bool {
    std::process::Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn docker_version_shows_the_server() {
    if !have_docker() {
        eprintln!("docker CLI not installed; skipping");
        return;
    }
    let daemon = Daemon::start();
    let out = daemon.docker(&["version"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(stdout.contains("Server: berth"), "{stdout}");
    assert!(stdout.contains("Engine:"), "{stdout}");
    assert!(
        stdout.contains("API version:      1.41 (minimum version 1.24)"),
        "{stdout}"
    );
    assert!(stdout.contains("1.41 (downgraded from"), "{stdout}");

    let out = daemon.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(text(&out.stdout).trim(), "1.41");
}

/// The legacy warnings the 28.x CLI prints at API 1.41, each with the host fact behind it;
/// a warning is only acceptable when the host really lacks the feature.
fn expected_warnings() -> Vec<&'static str> {
    let on = |path: &str| std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1");
    let mut warnings = Vec::new();
    if !on("/proc/sys/net/ipv4/ip_forward") {
        warnings.push("WARNING: IPv4 forwarding is disabled");
    }
    if !on("/proc/sys/net/bridge/bridge-nf-call-iptables") {
        warnings.push("WARNING: bridge-nf-call-iptables is disabled");
    }
    if !on("/proc/sys/net/bridge/bridge-nf-call-ip6tables") {
        warnings.push("WARNING: bridge-nf-call-ip6tables is disabled");
    }
    warnings
}

#[test]
fn docker_info_shows_the_server_without_spurious_warnings() {
    if !have_docker() {
        eprintln!("docker CLI not installed; skipping");
        return;
    }
    let daemon = Daemon::start();
    let out = daemon.docker(&["info"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("Server:"), "{stdout}");
    assert!(!stdout.contains("ERROR"), "{stdout}");
    assert!(
        stdout.contains(&format!("Docker Root Dir: {}", daemon.data_root.display())),
        "{stdout}"
    );
    assert!(stdout.contains("Cgroup Driver: cgroupfs"), "{stdout}");
    assert!(stdout.contains("seccomp"), "{stdout}");
    let allowed = expected_warnings();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            allowed.contains(&line.trim()),
            "unexpected warning {line:?}; stderr: {stderr}"
        );
    }

    let out = daemon.docker(&["system", "info", "--format", "{{json .}}"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(info["OSType"], "linux");
    assert_eq!(
        info["DockerRootDir"],
        daemon.data_root.display().to_string()
    );
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    assert!(info.get("ServerErrors").is_none(), "{info}");
}

#[test]
fn docker_events_with_since_and_until_returns() {
    if !have_docker() {
        eprintln!("docker CLI not installed; skipping");
        return;
    }
    let daemon = Daemon::start();
    let started = std::time::Instant::now();
    let out = daemon.docker(&["events", "--since", "1m", "--until", "1s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));

    let out = daemon.docker(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=container",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn docker_events_until_a_future_time_waits_for_it() {
    if !have_docker() {
        eprintln!("docker CLI not installed; skipping");
        return;
    }
    let daemon = Daemon::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let until = (now + 2).to_string();
    let started = std::time::Instant::now();
    let out = daemon.docker(&["events", "--until", &until]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "{waited:?}"
    );
    assert!(waited < std::time::Duration::from_secs(15), "{waited:?}");
}
