//! Import, list, inspect, history, tag, rmi, prune, save → load, repair.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use berth_errdefs::{Category, HasCategory};
use berth_image::{DeleteItem, ImageError, ImageStore, ImageUse, ImportOptions, ListOptions};
use berth_reference::{Filters, ImageId};
use common::*;

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn tags_of(store: &ImageStore, id: &ImageId) -> Vec<String> {
    store.inspect(id.as_str()).unwrap().repo_tags
}

fn list(store: &ImageStore, filters: &str) -> Vec<berth_image::ImageSummary> {
    let opts = ListOptions {
        all: false,
        filters: Filters::parse(filters).unwrap(),
    };
    store.list(&opts).unwrap()
}

#[test]
fn import_then_list_inspect_history_match_docker() {
    let (_d, store) = store();
    let tar = busybox_tar();
    let id = import(&store, tar, Some("bb:1"));

    let images = list(&store, "");
    assert_eq!(images.len(), 1);
    let row = serde_json::to_value(&images[0]).unwrap();
    let want: BTreeSet<String> = [
        "Containers",
        "Created",
        "Id",
        "Labels",
        "ParentId",
        "RepoDigests",
        "RepoTags",
        "SharedSize",
        "Size",
        "VirtualSize",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(&row), want);
    assert_eq!(row["Id"], id.as_str());
    assert_eq!(row["RepoTags"], serde_json::json!(["bb:1"]));
    assert_eq!(row["RepoDigests"], serde_json::Value::Null);
    assert_eq!(row["Labels"], serde_json::Value::Null);
    assert_eq!(row["Containers"], -1);
    assert_eq!(row["SharedSize"], -1);
    let size = images[0].size;
    assert!(
        size > 1_900_000 && size < 2_100_000,
        "busybox image size {size}"
    );

    let inspect = store.inspect("bb:1").unwrap();
    let v = serde_json::to_value(&inspect).unwrap();
    let want: BTreeSet<String> = [
        "Architecture",
        "Author",
        "Comment",
        "Config",
        "Container",
        "ContainerConfig",
        "Created",
        "DockerVersion",
        "GraphDriver",
        "Id",
        "Metadata",
        "Os",
        "Parent",
        "RepoDigests",
        "RepoTags",
        "RootFS",
        "Size",
        "VirtualSize",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(&v), want);
    let config_keys: BTreeSet<String> = [
        "AttachStderr",
        "AttachStdin",
        "AttachStdout",
        "Cmd",
        "Domainname",
        "Entrypoint",
        "Env",
        "Hostname",
        "Image",
        "Labels",
        "OnBuild",
        "OpenStdin",
        "StdinOnce",
        "Tty",
        "User",
        "Volumes",
        "WorkingDir",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(&v["Config"]), config_keys);
    assert_eq!(v["Comment"], "Imported from -");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Architecture"], berth_image::host_arch());
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::json!([sha(tar).to_string()])
    );
    assert_eq!(v["RepoDigests"], serde_json::json!([]));
    assert_eq!(v["Size"], size);
    assert!(berth_image::parse_rfc3339(&inspect.created).is_some());
    assert!(berth_image::parse_rfc3339(&inspect.metadata.last_tag_time).is_some());

    let history = store.history("bb:1").unwrap();
    assert_eq!(history.len(), 1);
    let h = serde_json::to_value(&history[0]).unwrap();
    assert_eq!(h["Comment"], "Imported from -");
    assert_eq!(h["CreatedBy"], "");
    assert_eq!(h["Id"], id.as_str());
    assert_eq!(h["Size"], size);
    assert_eq!(h["Tags"], serde_json::json!(["bb:1"]));

    // The stored layer blob is gzip; the config names the uncompressed diff id.
    let config = store.config(&id).unwrap();
    assert_eq!(config.rootfs.diff_ids, vec![sha(tar)]);
}

#[test]
fn compressed_tarballs_import_to_the_same_layer() {
    let (_d, store) = store();
    let tar = small_layer("hello.txt", b"hi\n");
    let plain = import(&store, &tar, Some("a:plain"));
    let gz = import(&store, &gzip(&tar), Some("a:gz"));
    let zst = import(
        &store,
        &zstd::encode_all(&tar[..], 3).unwrap(),
        Some("a:zst"),
    );
    for id in [&plain, &gz, &zst] {
        assert_eq!(store.config(id).unwrap().rootfs.diff_ids, vec![sha(&tar)]);
    }
}

#[test]
fn import_changes_and_message() {
    let (_d, store) = store();
    let opts = ImportOptions {
        tag: Some(reference("chg")),
        changes: vec![
            "CMD [\"sh\"]".into(),
            "LABEL team=core".into(),
            "ENV A=1".into(),
        ],
        message: Some("hand made".into()),
        ..ImportOptions::default()
    };
    let id = store
        .import(&mut &small_layer("f", b"x")[..], &opts)
        .unwrap();
    let i = store.inspect("chg:latest").unwrap();
    assert_eq!(i.id, id.as_str());
    assert_eq!(i.comment, "hand made");
    assert_eq!(i.config.cmd, Some(vec!["sh".to_owned()]));
    assert_eq!(i.config.env, Some(vec!["A=1".to_owned()]));
    assert_eq!(i.config.labels.unwrap()["team"], "core");
    assert_eq!(i.repo_tags, ["chg:latest"]);

    let bad = ImportOptions {
        changes: vec!["RUN true".into()],
        ..ImportOptions::default()
    };
    let err = store
        .import(&mut &small_layer("f", b"x")[..], &bad)
        .unwrap_err();
    assert_eq!(err.category(), Category::InvalidParameter);
}

#[test]
fn references_normalise_like_docker() {
    let (_d, store) = store();
    let id = import(&store, &small_layer("a", b"1"), Some("busybox"));
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
        "index.docker.io/library/busybox",
        id.as_str(),
        id.hex(),
        &id.hex()[..12],
        &format!("sha256:{}", &id.hex()[..10]),
    ] {
        assert_eq!(store.resolve(name).unwrap(), id, "{name}");
    }
    assert_eq!(tags_of(&store, &id), ["busybox:latest"]);
    let err = store.resolve("nope:9").unwrap_err();
    assert_eq!(err.to_string(), "No such image: nope:9");
    assert_eq!(err.category(), Category::NotFound);
    assert_eq!(
        store.resolve("alpine").unwrap_err().to_string(),
        "No such image: alpine:latest"
    );

    // `docker tag` sends the fully normalised repository; it is shown short.
    store
        .tag(
            "busybox",
            &reference("docker.io/library/wire-b")
                .with_tag("tagged")
                .unwrap(),
        )
        .unwrap();
    store
        .tag(id.as_str(), &reference("127.0.0.1:5055/wire/b:1"))
        .unwrap();
    assert_eq!(
        tags_of(&store, &id),
        ["127.0.0.1:5055/wire/b:1", "busybox:latest", "wire-b:tagged"]
    );
    let digest_ref = reference(&format!("x@{}", sha(b"x")));
    assert_eq!(
        store.tag("busybox", &digest_ref).unwrap_err().category(),
        Category::InvalidParameter
    );
    assert_eq!(store.untag(&reference("wire-b:tagged")).unwrap(), id);
    assert!(store.untag(&reference("wire-b:tagged")).is_err());
}

#[test]
fn a_tag_moves_between_images_and_survives_reopen() {
    let (d, store) = store();
    let a = import(&store, &small_layer("a", b"1"), Some("app:1"));
    let b = import(&store, &small_layer("b", b"2"), None);
    store.tag(b.as_str(), &reference("app:1")).unwrap();
    assert_eq!(store.resolve("app:1").unwrap(), b);
    assert!(tags_of(&store, &a).is_empty());
    drop(store);
    let store = ImageStore::open(d.path()).unwrap();
    assert_eq!(store.resolve("app:1").unwrap(), b);
    assert_eq!(store.resolve(a.as_str()).unwrap(), a);
}

#[test]
fn rmi_untags_before_it_deletes() {
    let (_d, store) = store();
    let id = import(&store, &small_layer("a", b"1"), Some("wire-b:1"));
    store.tag("wire-b:1", &reference("wire-b:tagged")).unwrap();
    let out = store.remove("wire-b:tagged", false, true, &unused).unwrap();
    assert_eq!(out, [DeleteItem::Untagged("wire-b:tagged".into())]);
    let layer = store.config(&id).unwrap().rootfs.diff_ids[0].to_string();
    let out = store.remove("wire-b:1", false, true, &unused).unwrap();
    assert_eq!(
        out,
        [
            DeleteItem::Untagged("wire-b:1".into()),
            DeleteItem::Deleted(id.to_string()),
            DeleteItem::Deleted(layer),
        ]
    );
    assert!(list(&store, "").is_empty());
    let err = store.remove("wire-b:1", false, true, &unused).unwrap_err();
    assert_eq!(err.to_string(), "No such image: wire-b:1");
    let json = serde_json::to_string(&out[0]).unwrap();
    assert_eq!(json, r#"{"Untagged":"wire-b:1"}"#);
}

#[test]
fn rmi_by_id_with_tags_in_several_repositories_needs_force() {
    let (_d, store) = store();
    let id = import(&store, &small_layer("a", b"1"), Some("one:1"));
    store.tag("one:1", &reference("two:1")).unwrap();
    let err = store
        .remove(&id.hex()[..12], false, true, &unused)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            id.short()
        )
    );
    assert_eq!(err.category(), Category::Conflict);
    let out = store.remove(&id.hex()[..12], true, true, &unused).unwrap();
    assert_eq!(out[0], DeleteItem::Untagged("one:1".into()));
    assert_eq!(out[1], DeleteItem::Untagged("two:1".into()));
    assert_eq!(out[2], DeleteItem::Deleted(id.to_string()));

    // One tag only: removing by id takes the tag with it.
    let id = import(&store, &small_layer("a", b"1"), Some("solo:1"));
    let out = store.remove(id.as_str(), false, true, &unused).unwrap();
    assert_eq!(out[0], DeleteItem::Untagged("solo:1".into()));
    assert_eq!(out[1], DeleteItem::Deleted(id.to_string()));
}

#[test]
fn rmi_conflicts_with_containers() {
    let (_d, store) = store();
    let id = import(&store, &small_layer("a", b"1"), Some("used:1"));
    let cid = "c0ffee".repeat(10) + "abcd";
    let stopped = |_: &ImageId| {
        Some(ImageUse {
            container_id: cid.clone(),
            running: false,
        })
    };
    let running = |_: &ImageId| {
        Some(ImageUse {
            container_id: cid.clone(),
            running: true,
        })
    };
    let err = store.remove("used:1", false, true, &stopped).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"used:1\" (must force) - container {} is using its referenced image {}",
            &cid[..12],
            id.short()
        )
    );
    let err = store
        .remove(id.as_str(), false, true, &stopped)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
            id.short(),
            &cid[..12]
        )
    );
    let err = store.remove(id.as_str(), true, true, &running).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
            id.short(),
            &cid[..12]
        )
    );
    // Forcing the name of an image a running container uses only untags it.
    let out = store.remove("used:1", true, true, &running).unwrap();
    assert_eq!(out, [DeleteItem::Untagged("used:1".into())]);
    assert_eq!(store.resolve(id.as_str()).unwrap(), id);
    // A stopped container's image goes with force.
    let out = store.remove(id.as_str(), true, true, &stopped).unwrap();
    assert_eq!(out[0], DeleteItem::Deleted(id.to_string()));
}

#[test]
fn id_prefixes_must_be_unique() {
    let (_d, store) = store();
    // 17 images: two of them share a first hex digit.
    let ids: Vec<ImageId> = (0..17)
        .map(|i| import(&store, &small_layer("f", format!("{i}").as_bytes()), None))
        .collect();
    let (a, b) = ids
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            ids[i + 1..]
                .iter()
                .find(|b| b.hex()[..1] == a.hex()[..1])
                .map(|b| (a, b))
        })
        .unwrap();
    let common = a
        .hex()
        .chars()
        .zip(b.hex().chars())
        .take_while(|(x, y)| x == y)
        .count();
    let ambiguous = &a.hex()[..common];
    let err = store.remove(ambiguous, false, true, &unused).unwrap_err();
    assert_eq!(err.category(), Category::NotFound, "{err}");
    assert_eq!(store.resolve(&a.hex()[..common + 1]).unwrap(), *a);
    assert_eq!(list(&store, "").len(), 17);
    assert_eq!(list(&store, r#"{"dangling":{"true":true}}"#).len(), 17);
}

#[test]
fn list_filters() {
    let (_d, store) = store();
    let old = import(&store, &small_layer("a", b"1"), Some("bb:1"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let opts = ImportOptions {
        tag: Some(reference("labelled:1")),
        changes: vec!["LABEL team=core".into()],
        ..ImportOptions::default()
    };
    let labelled = store
        .import(&mut &small_layer("b", b"2")[..], &opts)
        .unwrap();
    let dangling = import(&store, &small_layer("c", b"3"), None);
    let ids = |f: &str| -> Vec<String> { list(&store, f).into_iter().map(|s| s.id).collect() };

    assert_eq!(ids(r#"{"reference":{"bb":true}}"#), [old.to_string()]);
    assert_eq!(ids(r#"{"reference":{"b*":true}}"#), [old.to_string()]);
    assert_eq!(ids(r#"{"reference":{"*:1":true}}"#).len(), 2);
    assert_eq!(ids(r#"{"dangling":{"true":true}}"#), [dangling.to_string()]);
    assert_eq!(ids(r#"{"dangling":{"false":true}}"#).len(), 2);
    assert_eq!(
        ids(r#"{"label":{"team=core":true}}"#),
        [labelled.to_string()]
    );
    assert_eq!(ids(r#"{"label":{"team":true}}"#), [labelled.to_string()]);
    assert!(ids(r#"{"label":{"team=other":true}}"#).is_empty());
    assert_eq!(ids(r#"{"before":{"labelled:1":true}}"#), [old.to_string()]);
    assert!(!ids(r#"{"since":{"bb:1":true}}"#).contains(&old.to_string()));
    assert_eq!(ids(r#"{"since":{"bb:1":true}}"#).len(), 2);

    let dangling_row = &list(&store, r#"{"dangling":{"true":true}}"#)[0];
    assert_eq!(
        dangling_row.repo_tags,
        Some(vec!["<none>:<none>".to_owned()])
    );
    assert_eq!(
        dangling_row.repo_digests,
        Some(vec!["<none>@<none>".to_owned()])
    );

    let bad = ListOptions {
        all: false,
        filters: Filters::parse(r#"{"color":{"red":true}}"#).unwrap(),
    };
    assert_eq!(
        store.list(&bad).unwrap_err().to_string(),
        "invalid filter 'color'"
    );
    let bad = ListOptions {
        all: false,
        filters: Filters::parse(r#"{"dangling":{"maybe":true}}"#).unwrap(),
    };
    assert!(matches!(
        store.list(&bad).unwrap_err(),
        ImageError::Filter(_)
    ));
    // Newest first.
    assert_eq!(list(&store, "").last().unwrap().id, old.to_string());
}

#[test]
fn prune_removes_dangling_then_unused() {
    let (_d, store) = store();
    let tagged = import(&store, &small_layer("a", b"1"), Some("keep:1"));
    let dangling = import(&store, &small_layer("b", b"2"), None);
    let report = store.prune(&Filters::new(), &unused).unwrap();
    assert!(
        report
            .images_deleted
            .contains(&DeleteItem::Deleted(dangling.to_string()))
    );
    assert!(report.space_reclaimed > 0);
    assert_eq!(store.resolve("keep:1").unwrap(), tagged);

    let in_use = |id: &ImageId| {
        (*id == tagged).then(|| ImageUse {
            container_id: "a".repeat(64),
            running: false,
        })
    };
    let other = import(&store, &small_layer("c", b"3"), Some("other:1"));
    let all = Filters::parse(r#"{"dangling":{"false":true}}"#).unwrap();
    let report = store.prune(&all, &in_use).unwrap();
    assert!(
        report
            .images_deleted
            .contains(&DeleteItem::Untagged("other:1".into()))
    );
    assert!(
        report
            .images_deleted
            .contains(&DeleteItem::Deleted(other.to_string()))
    );
    assert_eq!(store.resolve("keep:1").unwrap(), tagged);
}

#[test]
fn save_then_load_into_a_fresh_store_keeps_ids_and_tags() {
    let (_d, store) = store();
    let bb = import(&store, busybox_tar(), Some("bb:1"));
    store.tag("bb:1", &reference("bb:2")).unwrap();
    let small = import(
        &store,
        &small_layer("s", b"small"),
        Some("localhost:5000/small:v1"),
    );
    let mut archive = Vec::new();
    store
        .save(&["bb", "localhost:5000/small:v1"], &mut archive)
        .unwrap();

    let (_d2, fresh) = common::store();
    let loaded = fresh.load(&mut &archive[..]).unwrap();
    let ids: Vec<&ImageId> = loaded.iter().map(|l| &l.id).collect();
    assert_eq!(ids, [&bb, &small]);
    assert_eq!(tags_of(&fresh, &bb), ["bb:1", "bb:2"]);
    assert_eq!(tags_of(&fresh, &small), ["localhost:5000/small:v1"]);
    assert_eq!(
        fresh.inspect("bb:1").unwrap().root_fs,
        store.inspect("bb:1").unwrap().root_fs
    );
    assert_eq!(
        fresh.inspect("bb:1").unwrap().size,
        store.inspect("bb:1").unwrap().size
    );

    // Saved again, the archive is the same bytes: nothing depends on the store it came from.
    let mut again = Vec::new();
    fresh
        .save(&["bb", "localhost:5000/small:v1"], &mut again)
        .unwrap();
    assert_eq!(again, archive);

    // The OCI half of the archive alone also loads (what containerd or skopeo read).
    let oci = without(&archive, "manifest.json");
    let (_d3, third) = common::store();
    let loaded = third.load(&mut &oci[..]).unwrap();
    assert_eq!(loaded.len(), 3, "one index entry per tag");
    assert_eq!(third.resolve("bb:2").unwrap(), bb);
    assert_eq!(third.resolve("localhost:5000/small:v1").unwrap(), small);

    // Saving by id writes no tags.
    let mut by_id = Vec::new();
    store.save(&[&bb.hex()[..12]], &mut by_id).unwrap();
    let (_d4, fourth) = common::store();
    let loaded = fourth.load(&mut &by_id[..]).unwrap();
    assert_eq!(loaded[0].id, bb);
    assert!(loaded[0].tags.is_empty());
    assert!(store.save(&["missing:1"], &mut Vec::new()).is_err());
}

#[test]
fn saved_archive_has_dockers_layout() {
    let (_d, store) = store();
    let layer = small_layer("s", b"small");
    let id = import(&store, &layer, Some("lay:1"));
    let mut archive = Vec::new();
    store.save(&["lay:1"], &mut archive).unwrap();
    let mut names = Vec::new();
    let mut manifest = None;
    let mut layer_bytes = None;
    for e in tar::Archive::new(&archive[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == "manifest.json" {
            manifest = Some(serde_json::from_slice::<serde_json::Value>(&data).unwrap());
        }
        if name == format!("blobs/sha256/{}", sha(&layer).hex()) {
            layer_bytes = Some(data);
        }
        names.push(name);
    }
    assert!(names.contains(&"oci-layout".to_owned()));
    assert!(names.contains(&"index.json".to_owned()));
    assert!(names.contains(&format!("blobs/sha256/{}", id.hex())));
    assert_eq!(
        layer_bytes.unwrap(),
        layer,
        "layers are saved uncompressed, named by diff id"
    );
    assert_eq!(
        manifest.unwrap(),
        serde_json::json!([{
            "Config": format!("blobs/sha256/{}", id.hex()),
            "RepoTags": ["lay:1"],
            "Layers": [format!("blobs/sha256/{}", sha(&layer).hex())],
        }])
    );
}

#[test]
fn loading_a_tag_moves_only_that_tag() {
    let (_d, store) = store();
    let local = import(&store, &small_layer("local", b"1"), Some("app:1"));
    store.tag("app:1", &reference("app:keep")).unwrap();
    let before = store.inspect(local.as_str()).unwrap();

    let mut a = DockerArchive::new();
    let foreign = a.image(&["app:1"], &[&small_layer("foreign", b"2")], "foreign");
    let archive = a.finish();
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert_eq!(loaded[0].replaced, [(reference("app:1"), local.clone())]);
    assert_eq!(store.resolve("app:1").unwrap(), foreign);
    let after = store.inspect(local.as_str()).unwrap();
    assert_eq!(after.repo_tags, ["app:keep"]);
    assert_eq!(after.config, before.config);
    assert_eq!(after.root_fs, before.root_fs);
}

#[test]
fn repair_removes_half_done_work() {
    let (d, store) = store();
    let good = import(&store, &small_layer("good", b"1"), Some("good:1"));
    // A crashed unpack, a crashed load's scratch dir, an orphan blob, an image record whose
    // config never made it, and a tag naming it.
    store
        .snapshotter()
        .prepare("extract-deadbeef", None)
        .unwrap();
    std::fs::create_dir_all(d.path().join("images/tmp/load-123/sub")).unwrap();
    let mut w = store.content().writer(None, None).unwrap();
    std::io::Write::write_all(&mut w, b"orphan").unwrap();
    w.commit().unwrap();
    let ghost = ImageId::from_config(b"{\"ghost\":true}");
    std::fs::write(
        d.path()
            .join(format!("images/imagedb/{}.json", ghost.hex())),
        b"{}",
    )
    .unwrap();
    let repos = d.path().join("images/repositories.json");
    let mut repos_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&repos).unwrap()).unwrap();
    repos_json["Repositories"]["docker.io/library/ghost"] =
        serde_json::json!({"docker.io/library/ghost:latest": ghost.as_str()});
    let text = serde_json::to_vec(&repos_json).unwrap();
    std::fs::write(&repos, text).unwrap();
    drop(store);

    let store = ImageStore::open(d.path()).unwrap();
    let report = store.repair().unwrap();
    assert_eq!(report.temp_dirs, 1);
    assert_eq!(report.snapshots, 1);
    assert_eq!(report.images, 1);
    assert_eq!(report.tags, 1);
    assert_eq!(report.blobs, 1);
    assert_eq!(store.resolve("good:1").unwrap(), good);
    assert!(store.resolve("ghost").is_err());
    assert_eq!(
        store.repair().unwrap(),
        Default::default(),
        "a second pass finds nothing"
    );
    // The image is intact: it still saves.
    store.save(&["good:1"], &mut Vec::new()).unwrap();
}

/// `archive` without the entry `name`.
fn without(archive: &[u8], name: &str) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for e in tar::Archive::new(archive).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().display().to_string() == name {
            continue;
        }
        let mut h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        out.append_data(&mut h, e.path().unwrap(), &data[..])
            .unwrap();
    }
    out.into_inner().unwrap()
}

/// `docker commit` of a container's upper directory, then Docker's parent/child rules.
#[test]
fn commit_makes_a_child_and_rmi_respects_it() {
    let (_d, store) = store();
    let base = import(&store, &small_layer("etc/motd", b"base\n"), Some("base:1"));
    store.prepare_rootfs(&base, "c1").unwrap();
    let upper = store.snapshotter().fs_dir("c1").unwrap();
    std::fs::write(upper.join("hello"), "hi\n").unwrap();
    let (diff, _) = berth_snapshot::write_diff(&upper, Vec::new()).unwrap();

    let mut config = store.config(&base).unwrap();
    config.history.push(berth_image::History {
        created: Some(berth_image::now_rfc3339()),
        created_by: "/bin/sh -c echo hi > /hello".into(),
        ..Default::default()
    });
    let child = store
        .commit(
            Some(&base),
            Some(&mut &diff[..]),
            config,
            &[reference("child:1")],
        )
        .unwrap();
    store.remove_rootfs("c1").unwrap();
    let layer = format!("{}", store.config(&base).unwrap().rootfs.diff_ids[0]);
    assert!(
        store.remove_rootfs(&layer).is_err(),
        "image layers are not container roots"
    );
    assert!(store.prepare_rootfs(&base, "extract-x").is_err());

    let inspect = store.inspect("child:1").unwrap();
    assert_eq!(inspect.parent, base.to_string());
    assert_eq!(inspect.root_fs.layers.len(), 2);
    assert_eq!(inspect.root_fs.layers[1], sha(&diff).to_string());
    let history = store.history("child:1").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].id, child.to_string());
    assert_eq!(history[0].created_by, "/bin/sh -c echo hi > /hello");
    assert_eq!(history[0].tags, Some(vec!["child:1".to_owned()]));
    assert_eq!(history[1].id, base.to_string());
    assert_eq!(history[1].tags, Some(vec!["base:1".to_owned()]));

    let err = store
        .remove(base.as_str(), true, true, &unused)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            base.short()
        )
    );
    // By name, the parent is only untagged; untagged parents are hidden unless `-a`.
    let out = store.remove("base:1", false, true, &unused).unwrap();
    assert_eq!(out, [DeleteItem::Untagged("base:1".into())]);
    assert_eq!(list(&store, "").len(), 1);
    let all = ListOptions {
        all: true,
        filters: Filters::new(),
    };
    assert_eq!(store.list(&all).unwrap().len(), 2);
    assert_eq!(list(&store, "")[0].parent_id, base.to_string());

    // Removing the child prunes the untagged parent and both layers.
    let out = store.remove("child:1", false, true, &unused).unwrap();
    let deleted: Vec<_> = out
        .iter()
        .filter(|i| matches!(i, DeleteItem::Deleted(_)))
        .collect();
    assert_eq!(deleted.len(), 4, "{out:?}");
    assert!(out.contains(&DeleteItem::Deleted(base.to_string())));
    assert!(store.snapshotter().list().is_empty());
    assert!(
        store.content().list().unwrap().is_empty(),
        "configs and blobs go too"
    );
}

#[test]
fn hostile_import_tarballs_register_nothing() {
    let (d, store) = store();
    let mut t = Tar::new();
    t.file("../evil", b"x");
    let err = store
        .import(&mut &t.finish()[..], &ImportOptions::default())
        .unwrap_err();
    assert_eq!(err.category(), Category::InvalidParameter, "{err}");
    assert!(!d.path().join("evil").exists());
    assert!(store.snapshotter().list().is_empty());
    assert!(store.content().list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(d.path().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}

/// CVE-2017-14992: junk padding after a tarball's end must not grow memory; the import
/// streams it (hashing it into the diff id, as Docker does) and finishes.
#[test]
fn padded_import_streams_in_bounded_memory() {
    let (_d, store) = store();
    let mut tar = small_layer("f", b"x");
    let padding = 256usize << 20;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..padding >> 20 {
        std::io::Write::write_all(&mut gz, &zeros).unwrap();
    }
    let compressed = gz.finish().unwrap();
    assert!(compressed.len() < 4 << 20, "{}", compressed.len());
    let rss_before = rss_kib();
    let id = store
        .import(&mut &compressed[..], &ImportOptions::default())
        .unwrap();
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 << 10, "import grew RSS by {grown} KiB");
    tar.resize(tar.len() + padding, 0);
    assert_eq!(store.config(&id).unwrap().rootfs.diff_ids, vec![sha(&tar)]);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn digest_references_follow_their_repository() {
    let (_d, store) = store();
    let id = import(
        &store,
        &small_layer("a", b"1"),
        Some("127.0.0.1:5055/wire/b:1"),
    );
    let manifest = sha(b"manifest");
    let digest_ref = reference(&format!("127.0.0.1:5055/wire/b@{manifest}"));
    store.add_digest(&digest_ref, &id).unwrap();
    store.add_digest(&digest_ref, &id).unwrap();
    let other = import(&store, &small_layer("b", b"2"), None);
    assert!(
        store.add_digest(&digest_ref, &other).is_err(),
        "digests never move"
    );
    assert!(store.add_digest(&reference("x:1"), &id).is_err());

    let rows = store.list(&ListOptions::default()).unwrap();
    let row = rows.iter().find(|r| r.id == id.as_str()).unwrap();
    let row = serde_json::to_value(row).unwrap();
    assert_eq!(
        row["RepoDigests"],
        serde_json::json!([format!("127.0.0.1:5055/wire/b@{manifest}")])
    );
    assert_eq!(store.resolve(&digest_ref.to_string()).unwrap(), id);
    assert_eq!(store.inspect(id.as_str()).unwrap().repo_digests.len(), 1);

    // Removing the last tag of the repository takes its digest references along.
    let out = store
        .remove("127.0.0.1:5055/wire/b:1", false, true, &unused)
        .unwrap();
    assert_eq!(
        out[0],
        DeleteItem::Untagged("127.0.0.1:5055/wire/b:1".into())
    );
    assert_eq!(
        out[1],
        DeleteItem::Untagged(format!("127.0.0.1:5055/wire/b@{manifest}"))
    );
    assert_eq!(out[2], DeleteItem::Deleted(id.to_string()));
}

/// What a registry client does after a pull: blobs in the content store, then `register`.
#[test]
fn register_pulled_blobs() {
    let (_d, store) = store();
    let layer = small_layer("pulled", b"1");
    let blob = gzip(&layer);
    let config = config_json(&[&sha(&layer)], "pulled");
    for data in [&blob, &config] {
        let mut w = store.content().writer(None, None).unwrap();
        std::io::Write::write_all(&mut w, data).unwrap();
        w.commit().unwrap();
    }
    let id = store
        .register(&sha(&config), &[sha(&blob)], &[reference("pulled")])
        .unwrap();
    assert_eq!(id, ImageId::from_config(&config));
    assert_eq!(store.resolve("pulled:latest").unwrap(), id);
    // The blob is kept as pulled (compressed); save gives the uncompressed layer back.
    let mut archive = Vec::new();
    store.save(&["pulled"], &mut archive).unwrap();
    let (_d2, fresh) = common::store();
    assert_eq!(fresh.load(&mut &archive[..]).unwrap()[0].id, id);

    // A layer blob that is not the config's layer registers nothing.
    let wrong = gzip(&small_layer("pulled", b"2"));
    let mut w = store.content().writer(None, None).unwrap();
    std::io::Write::write_all(&mut w, &wrong).unwrap();
    w.commit().unwrap();
    let config2 = config_json(&[&sha(b"promised layer")], "second");
    let mut w = store.content().writer(None, None).unwrap();
    std::io::Write::write_all(&mut w, &config2).unwrap();
    w.commit().unwrap();
    let err = store
        .register(&sha(&config2), &[sha(&wrong)], &[])
        .unwrap_err();
    assert!(matches!(err, ImageError::LayerMismatch { .. }), "{err}");
    assert_eq!(
        store.snapshotter().list().len(),
        1,
        "only the first image's layer"
    );
    assert_eq!(store.list(&ListOptions::default()).unwrap().len(), 1);
}
