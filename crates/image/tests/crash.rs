//! Crash consistency: a process importing, loading, tagging and removing images is killed
//! (SIGKILL) at arbitrary moments; after `repair` every tag names a complete image, every
//! image saves (all blobs present and verified), and no half-done work is left.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_image::{ImageStore, ListOptions};
use common::*;

const CHILD_ENV: &str = "BERTH_IMAGE_CRASH_DIR";

/// The worker the parent test runs in a child process; a no-op in a normal test run.
#[test]
fn crash_worker() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = ImageStore::open(Path::new(&dir)).unwrap();
    for i in 0u64.. {
        let layer = small_layer("f", format!("{i}").repeat(4096).as_bytes());
        let id = import(&store, &layer, Some(&format!("w:{}", i % 5)));
        let mut a = DockerArchive::new();
        a.image(
            &[&format!("l:{}", i % 3)],
            &[busybox_tar(), &layer],
            &format!("{i}"),
        );
        store.load(&mut &a.finish()[..]).unwrap();
        if i % 2 == 0 {
            let _ = store.remove(id.as_str(), true, true, &unused);
        }
    }
}

/// Returns how many of the worker's tags the store holds after repair.
fn check_invariants(dir: &Path) -> usize {
    let store = ImageStore::open(dir).unwrap();
    store.repair().unwrap();
    let all = ListOptions {
        all: true,
        ..ListOptions::default()
    };
    let images = store.list(&all).unwrap();
    for img in &images {
        for tag in img
            .repo_tags
            .iter()
            .flatten()
            .filter(|t| !t.starts_with("<none>"))
        {
            assert_eq!(store.resolve(tag).unwrap().as_str(), img.id);
        }
        store.inspect(&img.id).unwrap();
        store.save(&[&img.id], &mut std::io::sink()).unwrap();
    }
    for info in store.snapshotter().list() {
        assert!(
            info.key.starts_with("sha256:"),
            "leftover snapshot {info:?}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.join("images/tmp")).unwrap().count(),
        0
    );
    assert_eq!(
        store.repair().unwrap(),
        Default::default(),
        "repair is idempotent"
    );
    // The store keeps working after the crash.
    let worker_tags = images
        .iter()
        .flat_map(|i| i.repo_tags.iter().flatten())
        .filter(|t| t.starts_with("w:") || t.starts_with("l:"))
        .count();
    import(&store, &small_layer("after", b"crash"), Some("after:1"));
    worker_tags
}

#[test]
fn killed_mid_write_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut counts = Vec::new();
    for (round, delay_ms) in [150u64, 300, 450, 600, 800, 1100].into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_worker", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms + round as u64 * 7));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        counts.push(check_invariants(dir.path()));
    }
    eprintln!("worker tags after each crash: {counts:?}");
    assert!(
        counts.iter().any(|&n| n > 0),
        "the worker did too little to test: {counts:?}"
    );
}
