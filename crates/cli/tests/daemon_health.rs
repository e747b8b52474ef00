//! Health checks through the real docker CLI: `--health-*` flags and an image's
//! `HEALTHCHECK`, the starting → unhealthy → healthy transitions with their events, `docker
//! ps` status and `health=` filter, timeouts, `--no-healthcheck`, and invalid settings.

mod daemon_support;

use std::process::Command;
use std::time::{Duration, Instant};

use daemon_support::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Polls `docker inspect` (bounded) until the health status is `want`.
fn wait_health(d: &Daemon, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = ok(d, &["inspect", "-f", "{{.State.Health.Status}}", name]);
        if got.trim() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: health {got:?}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn health_checks_go_from_starting_to_unhealthy_to_healthy() {
    let d = Daemon::start_in(daemon_support::busybox_dir(), &[]);
    let since = unix_now().to_string();
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "hc",
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
            "sh",
            "-c",
            "sleep 2; touch /tmp/ok; sleep 60",
        ],
    );
    let status = ok(
        &d,
        &["ps", "--format", "{{.Status}}", "--filter", "name=hc"],
    );
    assert!(status.contains("(health: starting)"), "{status}");
    wait_health(&d, "hc", "unhealthy");
    let ps = ok(
        &d,
        &[
            "ps",
            "--format",
            "{{.Status}}",
            "--filter",
            "health=unhealthy",
        ],
    );
    assert!(ps.contains("(unhealthy)"), "{ps}");
    wait_health(&d, "hc", "healthy");
    let ps = ok(&d, &["ps", "-q", "--filter", "health=healthy"]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
    assert_eq!(ok(&d, &["ps", "-q", "--filter", "health=unhealthy"]), "");

    let health: serde_json::Value =
        serde_json::from_str(&ok(&d, &["inspect", "-f", "{{json .State.Health}}", "hc"]))
            .expect("health JSON");
    let log = health["Log"].as_array().expect("log");
    assert!(!log.is_empty() && log.len() <= 5, "{health}");
    assert_eq!(log.last().expect("last")["ExitCode"], 0);
    assert_eq!(health["FailingStreak"], 0);
    let config = ok(&d, &["inspect", "-f", "{{json .Config.Healthcheck}}", "hc"]);
    assert!(
        config.contains("\"CMD-SHELL\",\"test -f /tmp/ok\""),
        "{config}"
    );

    let until = (unix_now() + 1).to_string();
    let events = ok(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=hc",
            "--format",
            "{{.Action}}",
        ],
    );
    let health_events: Vec<&str> = events
        .lines()
        .filter(|l| l.starts_with("health_status"))
        .collect();
    assert_eq!(
        health_events,
        ["health_status: unhealthy", "health_status: healthy"],
        "{events}"
    );
    ok(&d, &["rm", "-f", "hc"]);
}

#[test]
fn image_healthchecks_timeouts_and_opting_out() {
    let d = Daemon::start_in(daemon_support::busybox_dir(), &[]);
    // An image with a HEALTHCHECK, built by the classic builder.
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("context");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"false\"]\n",
    )
    .expect("Dockerfile");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", "hc:1"])
        .arg(&ctx)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(built.status.success(), "{}", text(&built.stderr));
    ok(&d, &["run", "-d", "--name", "img", "hc:1", "sleep", "60"]);
    wait_health(&d, "img", "unhealthy");
    // The user's settings win field by field; --no-healthcheck turns it off.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "off",
            "--no-healthcheck",
            "hc:1",
            "sleep",
            "60",
        ],
    );
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        ok(&d, &["inspect", "-f", "{{json .State.Health}}", "off"]).trim(),
        "null"
    );
    assert_eq!(
        ok(&d, &["ps", "-q", "--filter", "health=none"])
            .lines()
            .count(),
        1
    );

    // A check that outlives its timeout fails with Docker's words.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "slow",
            "--health-cmd",
            "sleep 5",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "60",
        ],
    );
    wait_health(&d, "slow", "unhealthy");
    let log = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{(index .State.Health.Log 0).Output}} {{(index .State.Health.Log 0).ExitCode}}",
            "slow",
        ],
    );
    assert_eq!(log.trim(), "Health check exceeded timeout (300ms) -1");

    // Settings Docker refuses are refused at create.
    let body =
        r#"{"Image":"busybox","Cmd":["true"],"Healthcheck":{"Test":["CMD","true"],"Interval":10}}"#;
    let bad = d.http(&format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{}",
        bad.body
    );
    ok(&d, &["rm", "-f", "img", "off", "slow"]);
}
