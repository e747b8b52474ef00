//! `berth daemon` over raw HTTP on its unix socket: the wire details the docker CLI and SDKs
//! rely on.

mod daemon_support;

use daemon_support::Daemon;

#[test]
fn ping_get_and_head_carry_the_negotiation_headers() {
    let daemon = Daemon::start();
    for method in ["GET", "HEAD"] {
        let r = daemon.http(&format!("{method} /_ping HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.header("api-version"), Some("1.41"));
        assert_eq!(r.header("ostype"), Some("linux"));
        assert_eq!(r.header("builder-version"), Some("1"));
        assert_eq!(r.header("docker-experimental"), Some("false"));
        assert_eq!(
            r.header("cache-control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(
            r.header("server")
                .is_some_and(|s| s.starts_with("Docker/") && s.ends_with("(linux)"))
        );
        let expected_body = if method == "GET" { "OK" } else { "" };
        assert_eq!(r.body, expected_body, "{method}");
    }
}

#[test]
fn version_prefixes_are_accepted_up_to_1_41() {
    let daemon = Daemon::start();
    for path in [
        "/version",
        "/v1.41/version",
        "/v1.24/version",
        "/v1.30/version",
    ] {
        let r = daemon.http(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("api-version"), Some("1.41"));
        let body = r.json();
        assert_eq!(body["ApiVersion"], "1.41");
        assert_eq!(body["MinAPIVersion"], "1.24");
        assert_eq!(body["Os"], "linux");
        assert!(
            r.body.ends_with('\n'),
            "Go's encoder ends bodies with a newline"
        );
    }
    let r = daemon.http("GET /v1.99/version HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "client version 1.99 is too new. Maximum supported API version is 1.41"
    );
}

#[test]
fn unknown_paths_get_docker_s_404() {
    let daemon = Daemon::start();
    let r = daemon.http("GET /v1.41/nothing/here HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "{\"message\":\"page not found\"}\n");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn malformed_json_and_wrong_content_types_are_400() {
    let daemon = Daemon::start();
    let post = |content_type: &str, body: &str| {
        daemon.http(&format!(
            "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    };
    let r = post("application/json", "{bad json");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
    let r = post("application/x-www-form-urlencoded", "{}");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Content-Type specified (application/x-www-form-urlencoded) must be 'application/json'"
    );
}

#[test]
fn info_reports_this_daemon_and_host() {
    let daemon = Daemon::start();
    let info = daemon
        .http("GET /v1.41/info HTTP/1.1\r\nHost: x\r\n\r\n")
        .json();
    assert_eq!(
        info["DockerRootDir"],
        daemon.data_root.display().to_string()
    );
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["CgroupDriver"], "cgroupfs");
    assert_eq!(info["SecurityOptions"][0], "name=seccomp,profile=default");
    assert!(info["NCPU"].as_i64().is_some_and(|n| n >= 1));
    assert!(info["MemTotal"].as_i64().is_some_and(|n| n > 0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(info["KernelVersion"], kernel.trim());
}

#[test]
fn events_with_a_past_window_end_the_stream() {
    let daemon = Daemon::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let r = daemon.http(&format!(
        "GET /v1.41/events?since={}&until={now} HTTP/1.1\r\nHost: x\r\n\r\n",
        now - 60
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, "", "nothing happened on a fresh daemon");
    let r = daemon.http("GET /v1.41/events?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "invalid filter 'bogus'");
}
