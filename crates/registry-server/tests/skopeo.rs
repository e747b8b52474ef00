//! A real client: `skopeo copy` pushes an OCI layout (a busybox rootfs layer) to the registry
//! with Basic auth and copies it back, by tag and by digest; the digests must agree. Skipped
//! when skopeo is not installed (`scripts/deps.sh` installs it).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use berth_content::Digest;
use common::*;
use serde_json::{Value, json};

const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn skopeo_available() -> bool {
    Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes a blob into an OCI layout and returns its descriptor fields.
fn write_blob(layout: &Path, data: &[u8]) -> Result<(Digest, usize)> {
    let digest = Digest::sha256_of(data);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), data)?;
    Ok((digest, data.len()))
}

/// An OCI layout holding one image tagged `1`: a busybox rootfs as an uncompressed layer, a
/// config and a manifest we write ourselves. Returns the manifest digest and the layer's.
fn busybox_layout(layout: &Path) -> Result<(Digest, Digest)> {
    std::fs::create_dir_all(layout.join("blobs/sha256"))?;
    let rootfs = tempfile::tempdir()?;
    berth_testsupport::busybox_rootfs(rootfs.path());
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", rootfs.path())?;
    let tar = tar.into_inner()?;
    // Compressed, as registries expect: skopeo would otherwise gzip an uncompressed layer on
    // push and the manifest digest would change.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar)?;
    let layer = gz.finish()?;
    let (layer_digest, layer_size) = write_blob(layout, &layer)?;
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(&tar).to_string()]},
    })
    .to_string();
    let (config_digest, config_size) = write_blob(layout, config.as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config_size},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest.to_string(), "size": layer_size}],
    })
    .to_string();
    let (manifest_digest, manifest_size) = write_blob(layout, manifest.as_bytes())?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "1"},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string())?;
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok((manifest_digest, layer_digest))
}

async fn skopeo(args: Vec<String>) -> Result<()> {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("skopeo")
            .arg("--insecure-policy")
            .args(&args)
            .output()
    })
    .await??;
    ensure!(
        output.status.success(),
        "skopeo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn layout_manifest_digest(layout: &Path) -> Result<String> {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    index["manifests"][0]["digest"]
        .as_str()
        .map(str::to_owned)
        .context("no manifest in index.json")
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_copies_an_image_in_and_out() -> Result<()> {
    if !skopeo_available() {
        eprintln!("skipping: skopeo is not installed");
        return Ok(());
    }
    let hash = bcrypt::hash("pw", 4)?;
    let server = Server::start(with_htpasswd(&format!("ci:{hash}\n"))?).await?;
    let work = tempfile::tempdir()?;
    let (source, back, by_digest) = (
        work.path().join("src"),
        work.path().join("back"),
        work.path().join("bydigest"),
    );
    let (manifest_digest, layer_digest) = busybox_layout(&source)?;
    let remote = format!("docker://{}/test/busybox", server.addr);
    let s = |p: &Path| p.display().to_string();

    let push = [
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "ci:pw",
        &format!("oci:{}:1", s(&source)),
        &format!("{remote}:1"),
    ];
    skopeo(push.iter().map(|a| a.to_string()).collect()).await?;
    let pull = [
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "ci:pw",
        &format!("{remote}:1"),
        &format!("oci:{}:1", s(&back)),
    ];
    skopeo(pull.iter().map(|a| a.to_string()).collect()).await?;
    let pull_by_digest = [
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "ci:pw",
        &format!("{remote}@{manifest_digest}"),
        &format!("oci:{}:1", s(&by_digest)),
    ];
    skopeo(pull_by_digest.iter().map(|a| a.to_string()).collect()).await?;

    for layout in [&back, &by_digest] {
        assert_eq!(layout_manifest_digest(layout)?, manifest_digest.to_string());
        let layer = std::fs::read(layout.join("blobs/sha256").join(layer_digest.hex()))?;
        assert_eq!(Digest::sha256_of(&layer), layer_digest);
    }
    // The registry itself agrees.
    let r = server
        .request(reqwest::Method::HEAD, "/v2/test/busybox/manifests/1")
        .basic_auth("ci", Some("pw"))
        .send()
        .await?;
    assert_eq!(
        header(&r, "docker-content-digest"),
        manifest_digest.to_string()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pushes_and_pulls_over_verified_tls() -> Result<()> {
    let certs = tempfile::tempdir()?;
    if !skopeo_available() || !self_signed(certs.path())? {
        eprintln!("skipping: skopeo or openssl is not installed");
        return Ok(());
    }
    let config = berth_registry_server::tls::load(
        &certs.path().join("ca.crt"),
        &certs.path().join("key.pem"),
    )?;
    let root = tempfile::tempdir()?;
    let registry = berth_registry_server::Registry::open(root.path(), options(false))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(berth_registry_server::tls::serve(
        listener, registry, config,
    ));

    let work = tempfile::tempdir()?;
    let (source, back) = (work.path().join("src"), work.path().join("back"));
    let (manifest_digest, _) = busybox_layout(&source)?;
    let certs = certs.path().display().to_string();
    let remote = format!("docker://{addr}/tls/busybox:1");
    let push = [
        "copy",
        "--dest-cert-dir",
        &certs,
        &format!("oci:{}:1", source.display()),
        &remote,
    ];
    skopeo(push.iter().map(|a| a.to_string()).collect()).await?;
    let pull = [
        "copy",
        "--src-cert-dir",
        &certs,
        &remote,
        &format!("oci:{}:1", back.display()),
    ];
    skopeo(pull.iter().map(|a| a.to_string()).collect()).await?;
    assert_eq!(layout_manifest_digest(&back)?, manifest_digest.to_string());
    Ok(())
}
