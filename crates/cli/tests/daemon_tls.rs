//! The API over TCP: with `--tlsverify` the docker CLI needs a client certificate signed by
//! the daemon's CA (made here with openssl) and then everything works, attach included;
//! without one it is turned away. Plain TCP is served on loopback only. Loopback traffic.

mod daemon_support;

use std::path::Path;
use std::process::{Command, Output};

use daemon_support::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in docker's file names
/// (`ca.pem`, `cert.pem`, `key.pem` for the client; `server-*.pem` for the daemon).
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for (who, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        let key = format!("{who}-key.pem");
        let csr = format!("{who}.csr");
        let cert = format!("{who}-cert.pem");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={who}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &cert,
            ],
        );
    }
    std::fs::copy(dir.join("client-cert.pem"), dir.join("cert.pem")).expect("copy");
    std::fs::copy(dir.join("client-key.pem"), dir.join("key.pem")).expect("copy");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn docker_tcp(port: u16, cert_path: Option<&Path>, config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("docker");
    cmd.args(args)
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env("DOCKER_CONFIG", config);
    if let Some(p) = cert_path {
        cmd.env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", p);
    }
    cmd.output().expect("docker")
}

#[test]
fn mutual_tls_admits_only_clients_with_a_certificate() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: no openssl to make certificates with");
        return;
    }
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    let port = free_port();
    let p = |name: &str| certs.path().join(name).display().to_string();
    let host = format!("tcp://127.0.0.1:{port}");
    let dir = daemon_support::busybox_dir();
    let d = Daemon::start_in(
        dir,
        &[
            "-H",
            &host,
            "--tlsverify",
            "--tlscacert",
            &p("ca.pem"),
            "--tlscert",
            &p("server-cert.pem"),
            "--tlskey",
            &p("server-key.pem"),
        ],
    );
    let config = d.dir.path().join("docker-config");

    let out = docker_tcp(
        port,
        Some(certs.path()),
        &config,
        &["run", "--rm", "busybox", "echo", "over-tls"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "over-tls\n");
    let out = docker_tcp(
        port,
        Some(certs.path()),
        &config,
        &["version", "--format", "{{.Server.APIVersion}}"],
    );
    assert_eq!(text(&out.stdout).trim(), "1.41", "{}", text(&out.stderr));

    // The CA alone (no client certificate) is not enough.
    let nocert = tempfile::tempdir().expect("tempdir");
    std::fs::copy(certs.path().join("ca.pem"), nocert.path().join("ca.pem")).expect("copy");
    let out = docker_tcp(
        port,
        Some(nocert.path()),
        &config,
        &["version", "--format", "{{.Server.APIVersion}}"],
    );
    assert!(
        !out.status.success(),
        "admitted without a client certificate"
    );
    // Nor is plain HTTP.
    let out = docker_tcp(port, None, &config, &["ps"]);
    assert!(!out.status.success(), "plain HTTP on a TLS port");
    drop(d);

    // Plain TCP on loopback.
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let d = Daemon::start_in(daemon_support::busybox_dir(), &["-H", &host]);
    let out = docker_tcp(
        port,
        None,
        &d.dir.path().join("docker-config"),
        &["run", "--rm", "busybox", "echo", "plain"],
    );
    assert_eq!(text(&out.stdout), "plain\n", "{}", text(&out.stderr));
}
