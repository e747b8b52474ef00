//! `berth daemon` start-up and shutdown: the data-root lock, stale sockets, signals, the
//! config file.

mod daemon_support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use daemon_support::{Daemon, daemon_args, spawn, wait_bounded};

#[test]
fn a_second_daemon_on_the_same_data_root_is_refused() {
    let daemon = Daemon::start();
    let mut args = daemon_args(daemon.dir.path());
    // Its own socket and pidfile, so only the data root is shared.
    let other_socket = daemon.dir.path().join("other.sock");
    args[2] = format!("unix://{}", other_socket.display());
    args[8] = daemon.dir.path().join("other.pid").display().to_string();
    let mut second = spawn(&args);
    let code = wait_bounded(&mut second, Duration::from_secs(20));
    let mut stderr = String::new();
    if let Some(mut err) = second.stderr.take() {
        std::io::Read::read_to_string(&mut err, &mut stderr).expect("stderr");
    }
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("another berth daemon is already running with data-root"),
        "{stderr}"
    );
    assert!(!other_socket.exists());
    // The first one is unharmed.
    assert_eq!(
        daemon.http("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );
}

#[test]
fn sigterm_removes_the_socket_and_pidfile() {
    let mut daemon = Daemon::start();
    let meta = std::fs::metadata(&daemon.socket).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let pid: u32 = std::fs::read_to_string(&daemon.pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(pid, daemon.child.id());
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!daemon.socket.exists(), "socket left behind");
    assert!(!daemon.pidfile.exists(), "pidfile left behind");
    assert!(
        stderr.contains("SIGTERM"),
        "tracing logs go to stderr: {stderr}"
    );
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::Builder::new()
        .prefix("berth-d")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let socket = dir.path().join("berth.sock");
    // A socket file nobody listens on, as a killed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());
    std::fs::write(dir.path().join("daemon.json"), "{}").expect("config");
    let _net = daemon_support::NetCleanup(dir.path().to_owned());
    let mut child = spawn(&daemon_args(dir.path()));
    let deadline = std::time::Instant::now() + daemon_support::START_TIMEOUT;
    let mut up = false;
    while std::time::Instant::now() < deadline && !up {
        up = daemon_support::try_http(&socket, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .is_ok_and(|r| r.status == 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon_support::signal(&child, libc::SIGTERM);
    let code = wait_bounded(&mut child, daemon_support::STOP_TIMEOUT);
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(up, "daemon did not serve on the stale socket path");
    assert_eq!(code, Some(0));
}

#[test]
fn config_file_with_an_unknown_key_is_refused() {
    let dir = tempfile::Builder::new()
        .prefix("berth-d")
        .tempdir_in("/tmp")
        .expect("tempdir");
    std::fs::write(
        dir.path().join("daemon.json"),
        r#"{"no-such-option": true}"#,
    )
    .expect("config");
    let mut child = spawn(&daemon_args(dir.path()));
    let code = wait_bounded(&mut child, Duration::from_secs(20));
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        std::io::Read::read_to_string(&mut err, &mut stderr).expect("stderr");
    }
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the following directives don't match any configuration option: no-such-option"
        ),
        "{stderr}"
    );
}

#[test]
fn sigterm_with_an_open_events_stream_still_exits() {
    let mut daemon = Daemon::start();
    let mut stream = std::os::unix::net::UnixStream::connect(&daemon.socket).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        b"GET /v1.41/events HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("request");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut head).expect("headers are flushed at once");
    assert_eq!(&head, b"HTTP/1.1 200");
    let started = std::time::Instant::now();
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(!daemon.socket.exists());
}

#[test]
fn several_hosts_a_socket_group_and_extra_runtimes() {
    let dir = tempfile::Builder::new()
        .prefix("berth-h")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let second = dir.path().join("second.sock");
    let host = format!("unix://{}", second.display());
    // Group 1 (`daemon` on Debian) exists everywhere; numeric ids are accepted like names.
    let daemon = Daemon::start_with(&[
        "-H",
        &host,
        "--group",
        "1",
        "--add-runtime",
        "crun=/usr/bin/crun",
    ]);
    for socket in [&daemon.socket, &second] {
        let meta = std::fs::metadata(socket).expect("socket");
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 1);
        let info = daemon_support::http(socket, "GET /info HTTP/1.1\r\nHost: x\r\n\r\n").json();
        assert_eq!(info["Runtimes"]["crun"]["path"], "/usr/bin/crun");
        assert_eq!(info["DefaultRuntime"], "berth");
    }
}
