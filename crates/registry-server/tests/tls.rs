//! HTTPS: a self-signed certificate for 127.0.0.1 made with openssl; curl verifies it and
//! skopeo pushes through it. Skipped when openssl or curl is missing.

mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{Result, ensure};
use berth_registry_server::{Options, Registry, tls};

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new(name)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
}

async fn run(program: &str, args: Vec<String>) -> Result<String> {
    let program = program.to_owned();
    let out =
        tokio::task::spawn_blocking(move || Command::new(program).args(args).output()).await??;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_verified_certificate() -> Result<()> {
    let certs = tempfile::tempdir()?;
    if !tool("curl") || !common::self_signed(certs.path())? {
        eprintln!("skipping: openssl or curl missing");
        return Ok(());
    }
    let config = tls::load(&certs.path().join("ca.crt"), &certs.path().join("key.pem"))?;
    assert!(tls::load(&certs.path().join("key.pem"), &certs.path().join("key.pem")).is_err());

    let root = tempfile::tempdir()?;
    let registry = Registry::open(root.path(), Options::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(tls::serve(listener, registry, config));

    let ca = certs.path().join("ca.crt").display().to_string();
    let headers = run(
        "curl",
        vec![
            "-sS".into(),
            "-D-".into(),
            "--cacert".into(),
            ca.clone(),
            format!("https://{addr}/v2/"),
        ],
    )
    .await?;
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert!(
        headers
            .to_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{headers}"
    );
    // Plain HTTP to the TLS port gets nowhere.
    assert!(
        run(
            "curl",
            vec![
                "-sS".into(),
                "--max-time".into(),
                "5".into(),
                format!("http://{addr}/v2/")
            ]
        )
        .await
        .is_err()
    );

    let data = b"over tls";
    let digest = berth_content::Digest::sha256_of(data);
    let url = format!("https://{addr}/v2/secure/blobs/uploads/?digest={digest}");
    let status = run(
        "curl",
        vec![
            "-sS".into(),
            "-o/dev/null".into(),
            "-w%{http_code}".into(),
            "--cacert".into(),
            ca,
            "-XPOST".into(),
            "--data-binary".into(),
            "over tls".into(),
            url,
        ],
    )
    .await?;
    assert_eq!(status, "201");
    assert!(root.path().join("blobs/sha256").join(digest.hex()).exists());
    Ok(())
}

#[test]
fn missing_files_are_reported_by_path() {
    let err = tls::load(
        Path::new("/nonexistent/cert.pem"),
        Path::new("/nonexistent/key.pem"),
    )
    .expect_err("no such file");
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}
