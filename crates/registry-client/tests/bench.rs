//! Throughput of push and pull of a ~200 MB layer against berth's registry on loopback,
//! next to what sha256 and gunzip alone achieve on this machine. Not a pass/fail test:
//! run it with `cargo test -p berth-registry-client --release --test bench -- --ignored
//! --nocapture`.

use std::io::{Read, Write};
use std::time::Instant;

use anyhow::Result;
use berth_content::ContentStore;
use berth_reference::{Digest, Reference};
use berth_registry_client::manifest::{DOCKER_CONFIG, DOCKER_LAYER_GZIP};
use berth_registry_client::{Client, Descriptor, Options, Platform, PushImage};
use berth_registry_server::Registry;
use sha2::Digest as _;

const LAYER_BYTES: usize = 200 << 20;

fn mbps(bytes: usize, started: Instant) -> f64 {
    bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// A tar of one file of `content`.
fn tar_of(content: &[u8]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::with_capacity(content.len() + 4096));
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "data", content)?;
    Ok(b.into_inner()?)
}

fn incompressible(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(&sha2::Sha256::digest(i.to_le_bytes()));
        i += 1;
    }
    out.truncate(n);
    out
}

fn compressible(n: usize) -> Vec<u8> {
    let line = b"berth ships images: the quick brown fox jumps over the lazy dog 0123456789\n";
    line.iter().copied().cycle().take(n).collect()
}

fn put(store: &ContentStore, data: &[u8]) -> Result<Digest> {
    let digest = Digest::sha256_of(data);
    let mut w = store.writer(
        Some(berth_content::Digest::parse(digest.as_str())?),
        Some(data.len() as u64),
    )?;
    w.write_all(data)?;
    w.commit()?;
    Ok(digest)
}

async fn run(kind: &str, content: Vec<u8>) -> Result<()> {
    let tar = tar_of(&content)?;
    drop(content);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&tar)?;
    let blob = enc.finish()?;

    // The machine's limits: sha256 of the blob (what a verified download needs), then
    // also gunzip and sha256 of the tar (the diff id: what unpacking adds).
    let started = Instant::now();
    let _ = sha2::Sha256::digest(&blob);
    let sha_limit = mbps(blob.len(), started);
    let started = Instant::now();
    let _ = sha2::Sha256::digest(&blob);
    let mut plain = flate2::read::GzDecoder::new(&blob[..]);
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = plain.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let _ = hasher.finalize();
    let limit = mbps(blob.len(), started);

    let dir = tempfile::tempdir()?;
    let src = ContentStore::open(dir.path().join("src"))?;
    let layer = put(&src, &blob)?;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(&tar).to_string()]},
    })
    .to_string();
    let config_digest = put(&src, config.as_bytes())?;
    let image = PushImage {
        config: Descriptor {
            media_type: DOCKER_CONFIG.into(),
            size: config.len() as u64,
            digest: config_digest,
            platform: None,
        },
        layers: vec![(
            Descriptor {
                media_type: DOCKER_LAYER_GZIP.into(),
                size: blob.len() as u64,
                digest: layer,
                platform: None,
            },
            "layer".into(),
        )],
        mount_from: Vec::new(),
    };
    let registry = Registry::open(&dir.path().join("registry"), Default::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(berth_registry_server::serve(listener, registry));
    let client = Client::new(Options::default())?;
    let reference = Reference::parse_normalized(&format!("{addr}/bench/{kind}:1"))?;

    let started = Instant::now();
    client.push(&reference, None, &src, &image, &|_| {}).await?;
    let push = mbps(blob.len(), started);
    let dst = ContentStore::open(dir.path().join("dst"))?;
    let started = Instant::now();
    client
        .pull(&reference, &Platform::linux_amd64(), None, &dst, &|_| {})
        .await?;
    let pull = mbps(blob.len(), started);
    server.abort();
    println!(
        "{kind}: layer {:.1} MB gzip ({:.1} MB tar); push {push:.0} MB/s, pull {pull:.0} MB/s \
         (of gzip bytes); limits on this machine: sha256 {sha_limit:.0} MB/s, \
         sha256+gunzip+sha256 {limit:.0} MB/s; pull at {:.0}% of the sha256 limit",
        blob.len() as f64 / 1e6,
        tar.len() as f64 / 1e6,
        pull / sha_limit * 100.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run with --ignored --nocapture"]
async fn push_and_pull_throughput_of_a_200mb_layer() -> Result<()> {
    run("incompressible", incompressible(LAYER_BYTES)).await?;
    run("compressible", compressible(LAYER_BYTES)).await
}
