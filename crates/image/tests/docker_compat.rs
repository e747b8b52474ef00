//! Interoperability with a real Docker Engine: what berth saves, Docker loads with the same
//! image ids, and what Docker saves, berth loads with the same ids.
//!
//! Runs only when `BERTH_TEST_DOCKER_HOST` names a daemon (`unix:///path/docker.sock`); the
//! daemon should be a throwaway one, as the test loads and removes images on it.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use berth_reference::ImageId;
use common::*;

fn docker_host() -> Option<String> {
    let host = std::env::var("BERTH_TEST_DOCKER_HOST").ok();
    if host.is_none() {
        eprintln!("skipped: set BERTH_TEST_DOCKER_HOST to a throwaway Docker daemon");
    }
    host
}

fn docker(host: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn docker_loads_what_berth_saves_and_back() {
    let Some(host) = docker_host() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_d, store) = store();
    let tag = berth_testsupport::unique_name("berth-compat").replace('-', "_");
    let imported = import(&store, busybox_tar(), Some(&format!("{tag}:1")));
    let mut a = DockerArchive::new();
    // Repeated empty layers, which Docker 20.10 saves as symlinks to the first copy.
    let empty = Tar::new().finish();
    let two_layers = a.image(
        &[&format!("{tag}:2")],
        &[
            busybox_tar(),
            &empty,
            &small_layer("etc/motd", b"two\n"),
            &empty,
        ],
        "two",
    );
    store.load(&mut &a.finish()[..]).unwrap();

    // berth → Docker.
    let saved = dir.path().join("berth.tar");
    let mut f = std::fs::File::create(&saved).unwrap();
    store.save(&[&tag], &mut f).unwrap();
    drop(f);
    let out = docker(&host, &["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {tag}:1")), "{out}");
    for (t, id) in [("1", &imported), ("2", &two_layers)] {
        let got = docker(
            &host,
            &[
                "image",
                "inspect",
                "--format",
                "{{.Id}}",
                &format!("{tag}:{t}"),
            ],
        );
        assert_eq!(got.trim(), id.as_str());
    }

    // Docker → berth: Docker 20.10's own `save` layout.
    let theirs = dir.path().join("docker.tar");
    docker(
        &host,
        &[
            "save",
            "-o",
            theirs.to_str().unwrap(),
            &format!("{tag}:1"),
            &format!("{tag}:2"),
        ],
    );
    let symlinks = tar::Archive::new(std::fs::File::open(&theirs).unwrap())
        .entries()
        .unwrap()
        .filter(|e| e.as_ref().unwrap().header().entry_type() == tar::EntryType::Symlink)
        .count();
    // Docker links every repeated diff id: the shared base and the second empty layer.
    assert_eq!(symlinks, 2, "Docker links repeated layers");
    let (_d2, fresh) = common::store();
    let loaded = fresh
        .load(&mut std::fs::File::open(&theirs).unwrap())
        .unwrap();
    let mut ids: Vec<ImageId> = loaded.iter().map(|l| l.id.clone()).collect();
    ids.sort();
    let mut want = vec![imported.clone(), two_layers.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(fresh.resolve(&format!("{tag}:2")).unwrap(), two_layers);

    // An image Docker made itself (`docker import`) loads with Docker's id, and berth's view
    // of it matches Docker's.
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_tar()).unwrap();
    let docker_id = docker(
        &host,
        &["import", rootfs.to_str().unwrap(), &format!("{tag}:docker")],
    );
    let docker_saved = dir.path().join("docker-import.tar");
    docker(
        &host,
        &[
            "save",
            "-o",
            docker_saved.to_str().unwrap(),
            &format!("{tag}:docker"),
        ],
    );
    let loaded = fresh
        .load(&mut std::fs::File::open(&docker_saved).unwrap())
        .unwrap();
    assert_eq!(loaded[0].id.as_str(), docker_id.trim());
    let ours: serde_json::Value =
        serde_json::to_value(fresh.inspect(&format!("{tag}:docker")).unwrap()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&docker(
        &host,
        &["image", "inspect", &format!("{tag}:docker")],
    ))
    .unwrap();
    let theirs = &theirs[0];
    for key in [
        "Id",
        "RepoTags",
        "Created",
        "Comment",
        "Architecture",
        "Os",
        "RootFS",
        "Config",
        "Size",
    ] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    let history = docker(
        &host,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Comment}}",
            &format!("{tag}:docker"),
        ],
    );
    let ours = fresh.history(&format!("{tag}:docker")).unwrap();
    assert_eq!(
        history.trim(),
        format!("{} {}", ours[0].id, ours[0].comment)
    );

    for t in ["1", "2", "docker"] {
        docker(&host, &["rmi", &format!("{tag}:{t}")]);
    }
}
