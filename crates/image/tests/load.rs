//! `docker load` of archives made by Docker 20.10 and of OCI layouts, and of hostile archives,
//! which must be refused with nothing registered and nothing written outside the scratch dir.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use berth_errdefs::{Category, HasCategory};
use berth_image::{ImageError, ImageStore, MAX_JSON_SIZE};
use berth_reference::{Digest, ImageId};
use common::*;
use serde_json::json;

/// Nothing of a refused load is left: no images, layers, blobs, snapshots or scratch files.
fn assert_untouched(dir: &Path, store: &ImageStore) {
    assert!(store.list(&Default::default()).unwrap().is_empty());
    assert!(
        store.snapshotter().list().is_empty(),
        "{:?}",
        store.snapshotter().list()
    );
    assert!(store.content().list().unwrap().is_empty());
    for sub in [
        "images/tmp",
        "images/imagedb",
        "images/layerdb",
        "content/ingest",
    ] {
        let n = std::fs::read_dir(dir.join(sub)).unwrap().count();
        assert_eq!(n, 0, "{sub} is not empty");
    }
}

fn refuse(archive: &[u8]) -> ImageError {
    let (d, store) = store();
    let err = store.load(&mut &archive[..]).unwrap_err();
    assert_eq!(err.category(), Category::InvalidParameter, "{err}");
    assert_untouched(d.path(), &store);
    err
}

#[test]
fn docker_20_10_archive_loads() {
    let base = busybox_tar();
    let empty = Tar::new().finish(); // an empty layer, as a `RUN true` leaves
    let extra = small_layer("hello.txt", b"hello\n");
    let mut a = DockerArchive::new();
    let bb = a.image(&["bb:1"], &[base], "bb");
    // A second image on the same base with an empty layer repeated: the repeat is a symlink
    // to the first copy, exactly as Docker writes it.
    let app = a.image(
        &["wire-b:1", "127.0.0.1:5055/wire/b:1"],
        &[base, &empty, &extra, &empty],
        "app",
    );
    let archive = a.finish();

    let (_d, store) = store();
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].id, bb);
    assert_eq!(loaded[1].id, app);
    assert_eq!(loaded[1].tags.len(), 2);
    assert_eq!(store.resolve("bb:1").unwrap(), bb);
    assert_eq!(store.resolve("wire-b:1").unwrap(), app);
    assert_eq!(store.resolve("127.0.0.1:5055/wire/b:1").unwrap(), app);
    let inspect = store.inspect("wire-b:1").unwrap();
    assert_eq!(inspect.root_fs.layers.len(), 4);
    assert_eq!(inspect.config.cmd, Some(vec!["sh".to_owned()]));
    // The shared base layer is stored once.
    let layers = store.snapshotter().list();
    assert_eq!(
        layers.len(),
        4,
        "base, empty, extra, empty again: {layers:?}"
    );

    // Loading it again changes nothing and registers nothing twice.
    let again = store.load(&mut &archive[..]).unwrap();
    assert_eq!(again, loaded);
    assert_eq!(store.snapshotter().list().len(), 4);

    // Gzip-compressed archives load too.
    let (_d2, other) = common::store();
    assert_eq!(other.load(&mut &gzip(&archive)[..]).unwrap(), loaded);
}

/// An OCI layout tar with gzip layers, built as containerd's `ctr export` / skopeo do.
fn oci_layout(name_annotation: Option<(&str, &str)>, nested: bool) -> (Vec<u8>, ImageId) {
    let layer = small_layer("etc/motd", b"oci\n");
    let blob = gzip(&layer);
    let config = config_json(&[&sha(&layer)], "oci");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&blob), "size": blob.len()}],
    }))
    .unwrap();
    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.dir("blobs/").dir("blobs/sha256/");
    for data in [&blob, &config, &manifest] {
        t.file(&format!("blobs/sha256/{}", sha(data).hex()), data);
    }
    let mut top = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(&manifest), "size": manifest.len(),
    });
    if nested {
        let other_platform = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(b"not here"), "size": 8,
            "platform": {"os": "linux", "architecture": "riscv-imaginary"},
        });
        let mut mine = top.clone();
        mine["platform"] = json!({"os": "linux", "architecture": berth_image::host_arch()});
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [other_platform, mine],
        }))
        .unwrap();
        t.file(&format!("blobs/sha256/{}", sha(&index).hex()), &index);
        top = json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha(&index), "size": index.len(),
        });
    }
    if let Some((k, v)) = name_annotation {
        top["annotations"] = json!({ k: v });
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap();
    t.file("index.json", &index);
    (t.finish(), ImageId::from_config(&config))
}

#[test]
fn oci_layout_loads_with_its_name() {
    let (archive, id) = oci_layout(
        Some(("io.containerd.image.name", "docker.io/library/oci:1")),
        false,
    );
    let (_d, store) = store();
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, id);
    assert_eq!(store.resolve("oci:1").unwrap(), id);

    // A full reference in org.opencontainers.image.ref.name, through a multi-platform index.
    let (archive, id) = oci_layout(
        Some(("org.opencontainers.image.ref.name", "localhost/oci:2")),
        true,
    );
    let (_d, store) = common::store();
    store.load(&mut &archive[..]).unwrap();
    assert_eq!(store.resolve("localhost/oci:2").unwrap(), id);

    // A bare tag names no repository: the image loads untagged.
    let (archive, id) = oci_layout(Some(("org.opencontainers.image.ref.name", "latest")), false);
    let (_d, store) = common::store();
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert!(loaded[0].tags.is_empty());
    assert_eq!(store.resolve(id.as_str()).unwrap(), id);
}

#[test]
fn hostile_paths_are_refused() {
    let good = DockerArchive::new();
    drop(good);
    for (name, archive) in [
        ("dotdot", Tar::new().file("../evil", b"x").finish()),
        (
            "nested dotdot",
            Tar::new().file("a/../../evil", b"x").finish(),
        ),
        (
            "absolute",
            Tar::new().file("/tmp/berth-evil", b"x").finish(),
        ),
        (
            "symlink to host",
            Tar::new().symlink("manifest.json", "/etc/passwd").finish(),
        ),
        (
            "symlink out of the archive",
            Tar::new()
                .dir("a/")
                .symlink("a/layer.tar", "../../etc/passwd")
                .finish(),
        ),
        (
            "dangling symlink",
            Tar::new().symlink("manifest.json", "nothing").finish(),
        ),
        (
            "hard link",
            Tar::new()
                .file("a", b"x")
                .hardlink("manifest.json", "a")
                .finish(),
        ),
        (
            "device",
            Tar::new()
                .entry("dev", tar::EntryType::Char, b"", "")
                .finish(),
        ),
        (
            "duplicate",
            Tar::new()
                .file("manifest.json", b"[]")
                .file("manifest.json", b"[]")
                .finish(),
        ),
        (
            "not a tar",
            b"this is not a tar archive at all, just text".repeat(20),
        ),
    ] {
        let err = refuse(&archive);
        assert!(
            matches!(err, ImageError::InvalidArchive { .. }),
            "{name}: {err}"
        );
    }
    assert!(!Path::new("/tmp/berth-evil").exists());
}

#[test]
fn oversized_json_is_refused_before_it_is_read() {
    let big = vec![b' '; MAX_JSON_SIZE as usize + 1];
    let err = refuse(&Tar::new().file("manifest.json", &big).finish());
    assert!(err.to_string().contains("limit"), "{err}");
    let err = refuse(
        &Tar::new()
            .file("oci-layout", b"{}")
            .file("index.json", &big)
            .finish(),
    );
    assert!(err.to_string().contains("limit"), "{err}");
    // Long-name headers cannot be used to smuggle megabytes past the limit either.
    let long = format!("{}/x", "a".repeat(3 << 20));
    let err = refuse(&Tar::new().long_file(&long, b"x").finish());
    assert!(err.to_string().contains("headers"), "{err}");
}

/// A docker-archive whose manifest.json is `manifest`, with one good layer and config.
fn archive_with_manifest(manifest: serde_json::Value, layer: &[u8], config: &[u8]) -> Vec<u8> {
    let config_hex = sha(config).hex().to_owned();
    let mut t = Tar::new();
    t.file(&format!("{config_hex}.json"), config);
    t.file(&format!("{}/layer.tar", "1".repeat(64)), layer);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    t.finish()
}

#[test]
fn config_and_layer_names_must_be_digests() {
    let layer = small_layer("f", b"1");
    let config = config_json(&[&sha(&layer)], "x");
    let config_name = format!("{}.json", sha(&config).hex());
    let layer_name = format!("{}/layer.tar", "1".repeat(64));
    for (what, cfg, lay) in [
        (
            "config traversal",
            "../../../etc/passwd".to_owned(),
            layer_name.clone(),
        ),
        ("config not hex", "abc.json".to_owned(), layer_name.clone()),
        (
            "config in a dir",
            format!("x/{config_name}"),
            layer_name.clone(),
        ),
        (
            "layer traversal",
            config_name.clone(),
            "../x/layer.tar".to_owned(),
        ),
        (
            "layer not hex",
            config_name.clone(),
            "foo/layer.tar".to_owned(),
        ),
        (
            "layer odd name",
            config_name.clone(),
            format!("{}/evil", "1".repeat(64)),
        ),
    ] {
        let manifest = json!([{"Config": cfg, "RepoTags": ["x:1"], "Layers": [lay]}]);
        let err = refuse(&archive_with_manifest(manifest, &layer, &config));
        assert!(
            matches!(err, ImageError::InvalidArchive { .. }),
            "{what}: {err}"
        );
    }
}

#[test]
fn contents_must_match_their_digests() {
    let layer = small_layer("f", b"1");
    let config = config_json(&[&sha(&layer)], "x");
    let config_name = format!("{}.json", sha(&config).hex());
    let layer_name = format!("{}/layer.tar", "1".repeat(64));

    // A config stored under another config's name.
    let other = config_json(&[&sha(&layer)], "other");
    let mut t = Tar::new();
    t.file(&config_name, &other);
    t.file(&layer_name, &layer);
    t.file(
        "manifest.json",
        &serde_json::to_vec(
            &json!([{"Config": config_name, "RepoTags": ["x:1"], "Layers": [layer_name]}]),
        )
        .unwrap(),
    );
    let err = refuse(&t.finish());
    assert!(err.to_string().contains("does not match"), "{err}");

    // A layer that is not the one the config promises: refused after unpacking, with the
    // unpacked files removed.
    let wrong = small_layer("f", b"2");
    let manifest = json!([{"Config": config_name, "RepoTags": ["x:1"], "Layers": [layer_name]}]);
    let err = refuse(&archive_with_manifest(manifest.clone(), &wrong, &config));
    assert!(
        matches!(err, ImageError::LayerMismatch { index: 0, .. }),
        "{err}"
    );

    // A missing layer file.
    let mut t = Tar::new();
    t.file(&config_name, &config);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let err = refuse(&t.finish());
    assert!(
        err.to_string().contains("not a file in the archive"),
        "{err}"
    );

    // Layer count differs from the config's.
    let two =
        json!([{"Config": config_name, "RepoTags": ["x:1"], "Layers": [layer_name, layer_name]}]);
    refuse(&archive_with_manifest(two, &layer, &config));

    // A Docker 25 style blob path whose content is not its digest.
    let blob_name = format!("blobs/sha256/{}", sha(b"something else").hex());
    let mut t = Tar::new();
    t.file(&config_name, &config);
    t.file(&blob_name, &layer);
    t.file(
        "manifest.json",
        &serde_json::to_vec(&json!([{"Config": config_name, "Layers": [blob_name]}])).unwrap(),
    );
    refuse(&t.finish());

    // A config whose diff ids are not digests.
    let bad_config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:../../etc"]}}"#;
    let name = format!("{}.json", sha(bad_config).hex());
    let manifest = json!([{"Config": name, "Layers": [layer_name]}]);
    let mut t = Tar::new();
    t.file(&name, bad_config);
    t.file(&layer_name, &layer);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    refuse(&t.finish());
}

#[test]
fn tags_in_an_archive_must_be_plain_tags() {
    let layer = small_layer("f", b"1");
    let config = config_json(&[&sha(&layer)], "x");
    let config_name = format!("{}.json", sha(&config).hex());
    let layer_name = format!("{}/layer.tar", "1".repeat(64));
    for tag in [
        format!("x@{}", sha(b"forged")),
        "x".to_owned(),
        "UPPER:1".to_owned(),
        "../x:1".to_owned(),
    ] {
        let manifest = json!([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]);
        let (d, store) = store();
        let err = store
            .load(&mut &archive_with_manifest(manifest, &layer, &config)[..])
            .unwrap_err();
        assert_eq!(err.category(), Category::InvalidParameter, "{tag}: {err}");
        assert_untouched(d.path(), &store);
    }
}

#[test]
fn a_bad_image_leaves_none_of_the_archive_registered() {
    let good = small_layer("good", b"1");
    let bad = small_layer("bad", b"2");
    let mut a = DockerArchive::new();
    a.image(&["good:1"], &[&good], "good");
    let archive = {
        // The second image's config promises a layer the archive does not carry.
        let config = config_json(&[&sha(&good), &sha(b"promised")], "bad");
        let hex = sha(&config).hex().to_owned();
        a.tar.file(&format!("{hex}.json"), &config);
        a.tar.file(&format!("{}/layer.tar", "2".repeat(64)), &bad);
        a.manifest.push(json!({
            "Config": format!("{hex}.json"),
            "RepoTags": ["bad:1"],
            "Layers": [a.manifest[0]["Layers"][0].clone(), format!("{}/layer.tar", "2".repeat(64))],
        }));
        a.finish()
    };
    let err = refuse(&archive);
    assert!(
        matches!(err, ImageError::LayerMismatch { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn oci_blobs_are_verified() {
    // A manifest blob stored under the wrong digest.
    let (archive, _) = oci_layout(None, false);
    let mut t = Tar::new();
    for e in tar::Archive::new(&archive[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name.starts_with("blobs/sha256/")
            && String::from_utf8_lossy(&data).contains("\"mediaType\"")
        {
            data.push(b' ');
        }
        if name.ends_with('/') {
            t.dir(&name);
        } else {
            t.file(&name, &data);
        }
    }
    let err = refuse(&t.finish());
    assert!(err.to_string().contains("does not match"), "{err}");

    // index.json without oci-layout is not a layout.
    refuse(
        &Tar::new()
            .file("index.json", br#"{"manifests":[]}"#)
            .finish(),
    );
    // An index entry pointing at a blob that is not there.
    let d = Digest::sha256_of(b"absent");
    let index = json!({"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 6}]});
    refuse(
        &Tar::new()
            .file("oci-layout", b"{}")
            .file("index.json", &serde_json::to_vec(&index).unwrap())
            .finish(),
    );
}
