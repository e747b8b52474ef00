//! The snapshotter on the real kernel (needs root): layers stacked with overlayfs, whiteouts
//! and opaque directories seen through the mount, deep stacks, diffs of upper directories.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_snapshot::{
    ApplyOptions, Kind, Mount, SnapshotError, Snapshotter, apply_layer, unmount, write_diff,
};
use common::*;
use tar::EntryType;

fn root() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

/// Unmounts on every path out of a test, panics included.
struct Mounted(PathBuf);

impl Mounted {
    fn new(m: &Mount, target: &Path) -> Self {
        std::fs::create_dir_all(target).unwrap();
        m.mount(target).unwrap();
        Mounted(target.to_owned())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.0) {
            eprintln!("unmount {}: {e}", self.0.display());
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Unpacks `tar` as a new committed snapshot `name` on `parent`.
fn layer(s: &Snapshotter, name: &str, parent: Option<&str>, tar: &[u8]) {
    let key = format!("extract-{name}");
    s.prepare(&key, parent).unwrap();
    apply_layer(tar, &s.fs_dir(&key).unwrap(), &ApplyOptions::default()).unwrap();
    s.commit(name, &key).unwrap();
}

#[test]
fn two_layers_with_whiteouts_and_opaque_dirs() {
    if !root() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(d.path().join("root")).unwrap();
    let l1 = Tar::new()
        .file("a", b"a1")
        .file("keep", b"k")
        .dir("d/")
        .file("d/x", b"")
        .file("d/y", b"")
        .dir("o/")
        .file("o/p", b"")
        .file("o/q", b"")
        .finish();
    let l2 = Tar::new()
        .file(".wh.a", b"")
        .dir("d/")
        .file("d/.wh.x", b"")
        .dir("o/")
        .file("o/.wh..wh..opq", b"")
        .file("o/r", b"r2")
        .file("keep", b"k2")
        .finish();
    layer(&s, "l1", None, &gzip(&l1));
    layer(&s, "l2", Some("l1"), &l2);

    let m = s.prepare("ctr", Some("l2")).unwrap();
    let Mount::Overlay {
        lowerdirs,
        upperdir,
        ..
    } = &m
    else {
        panic!("{m:?}")
    };
    // Top-most first.
    assert_eq!(lowerdirs[0], s.fs_dir("l2").unwrap());
    assert_eq!(lowerdirs[1], s.fs_dir("l1").unwrap());
    assert!(m.options().contains("lowerdir="), "{}", m.options());

    let merged = d.path().join("merged");
    {
        let _g = Mounted::new(&m, &merged);
        assert_eq!(names(&merged), vec!["d", "keep", "o"]);
        assert_eq!(names(&merged.join("d")), vec!["y"]);
        assert_eq!(names(&merged.join("o")), vec!["r"]);
        assert_eq!(std::fs::read(merged.join("keep")).unwrap(), b"k2");

        // The container changes things: the kernel records them in the upper directory.
        std::fs::remove_file(merged.join("keep")).unwrap();
        std::fs::write(merged.join("new"), b"n").unwrap();
        std::fs::remove_dir_all(merged.join("d")).unwrap();
        std::fs::create_dir(merged.join("d")).unwrap();
        std::fs::write(merged.join("d/z"), b"z").unwrap();
    }
    assert!(!is_mountpoint(&merged));

    // docker commit: the upper directory becomes a layer with whiteouts.
    let upper = upperdir.clone().unwrap();
    let (tar, stats) = write_diff(&upper, Vec::new()).unwrap();
    let entries = list_tar(&tar);
    assert!(entries.contains(&".wh.keep".to_owned()), "{entries:?}");
    assert!(entries.contains(&"new".to_owned()), "{entries:?}");
    assert!(
        entries.contains(&"d/.wh..wh..opq".to_owned()),
        "{entries:?}"
    );
    assert!(stats.whiteouts >= 2);

    // Commit that diff as a third layer; the new stack shows the container's view.
    s.commit("ctr-layer", "ctr").unwrap();
    let l3_tar = tar;
    layer(&s, "l3", Some("l2"), &l3_tar);
    let v = s.view("v", Some("l3")).unwrap();
    let merged2 = d.path().join("merged2");
    {
        let _g = Mounted::new(&v, &merged2);
        assert_eq!(names(&merged2), vec!["d", "new", "o"]);
        assert_eq!(names(&merged2.join("d")), vec!["z"]);
        assert!(
            std::fs::write(merged2.join("ro"), b"").is_err(),
            "a view is read-only"
        );
    }
    assert!(!is_mountpoint(&merged2));
}

fn list_tar(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn is_mountpoint(p: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.to_string_lossy();
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
}

/// Deep stacks: absolute `lowerdir=` paths exceed a page, so the mount goes through the
/// helper thread with relative paths.
#[test]
fn deep_stack_beyond_a_page_of_options() {
    if !root() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let long_root = d.path().join("r".repeat(60));
    let s = Snapshotter::open(&long_root).unwrap();
    let mut parent: Option<String> = None;
    for i in 0..120 {
        let name = format!("layer-{i}");
        let tar = Tar::new()
            .file(&format!("f{i}"), i.to_string().as_bytes())
            .finish();
        layer(&s, &name, parent.as_deref(), &tar);
        parent = Some(name);
    }
    let m = s.prepare("ctr", parent.as_deref()).unwrap();
    assert!(
        m.options().len() > 4096,
        "options only {} bytes",
        m.options().len()
    );
    let merged = d.path().join("m");
    {
        let _g = Mounted::new(&m, &merged);
        assert_eq!(names(&merged).len(), 120);
        assert_eq!(std::fs::read(merged.join("f0")).unwrap(), b"0");
        assert_eq!(std::fs::read(merged.join("f119")).unwrap(), b"119");
    }
    // The test process's own cwd was not changed by the helper thread.
    assert_ne!(
        std::env::current_dir().unwrap(),
        long_root.join("snapshots")
    );
}

#[test]
fn lifecycle_and_records() {
    let d = tempfile::tempdir().unwrap();
    let root_dir = d.path().join("root");
    let s = Snapshotter::open(&root_dir).unwrap();
    // CVE-2021-41091: nobody else may traverse the snapshot tree.
    for p in [root_dir.clone(), root_dir.join("snapshots")] {
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700,
            "{}",
            p.display()
        );
    }

    let m = s.prepare("base", None).unwrap();
    assert!(matches!(
        m,
        Mount::Bind {
            readonly: false,
            ..
        }
    ));
    assert!(matches!(
        s.prepare("base", None),
        Err(SnapshotError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.prepare("x", Some("base")),
        Err(SnapshotError::WrongKind { .. })
    ));
    assert!(matches!(
        s.prepare("x", Some("nope")),
        Err(SnapshotError::NotFound(_))
    ));

    apply_layer(
        Tar::new().file("f", &[1u8; 10_000]).finish().as_slice(),
        &s.fs_dir("base").unwrap(),
        &ApplyOptions::default(),
    )
    .unwrap();
    let usage = s.usage("base").unwrap();
    assert!(usage.size >= 10_000, "{usage:?}");
    assert_eq!(usage.inodes, 2);

    s.commit("sha256:chain1", "base").unwrap();
    assert_eq!(s.stat("sha256:chain1").unwrap().kind, Kind::Committed);
    assert!(matches!(s.stat("base"), Err(SnapshotError::NotFound(_))));
    assert!(matches!(
        s.commit("again", "sha256:chain1"),
        Err(SnapshotError::WrongKind { .. })
    ));
    // A one-layer view is a read-only bind mount.
    assert!(matches!(
        s.view("v", Some("sha256:chain1")).unwrap(),
        Mount::Bind { readonly: true, .. }
    ));

    let c = s.prepare("ctr", Some("sha256:chain1")).unwrap();
    assert!(matches!(c, Mount::Overlay { .. }));
    assert!(matches!(
        s.remove("sha256:chain1"),
        Err(SnapshotError::HasChildren { children: 2, .. })
    ));
    let ctr_dir = s.fs_dir("ctr").unwrap().parent().unwrap().to_owned();
    s.remove("ctr").unwrap();
    s.remove("v").unwrap();
    assert!(!ctr_dir.exists());
    assert_eq!(s.list().len(), 1);
    drop(s);

    // Records survive a restart; orphan directories (a crash between mkdir and the record)
    // are removed.
    std::fs::create_dir_all(root_dir.join("snapshots/999/fs")).unwrap();
    let s = Snapshotter::open(&root_dir).unwrap();
    assert_eq!(s.list().len(), 1);
    assert!(!root_dir.join("snapshots/999").exists());
    assert!(s.fs_dir("sha256:chain1").unwrap().join("f").exists());
    s.remove("sha256:chain1").unwrap();
    assert!(s.list().is_empty());
}

#[test]
fn root_paths_overlayfs_cannot_express_are_refused() {
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(
        Snapshotter::open(d.path().join("a:b")),
        Err(SnapshotError::InvalidRoot(_))
    ));
    assert!(matches!(
        Snapshotter::open(d.path().join("a,b")),
        Err(SnapshotError::InvalidRoot(_))
    ));
}

/// Everything about a tree that a layer carries, for comparing two trees.
fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, String>,
        inodes: &mut BTreeMap<u64, String>,
    ) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir".to_owned()
            } else if ft.is_symlink() {
                format!("symlink->{}", std::fs::read_link(&p).unwrap().display())
            } else if ft.is_char_device() {
                format!("char {}", m.rdev())
            } else if ft.is_fifo() {
                "fifo".to_owned()
            } else {
                let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
                format!(
                    "file {} link-group {first}",
                    sha256(&std::fs::read(&p).unwrap())
                )
            };
            let mtime = m.mtime();
            let x = [OPAQUE, "user.a", "security.capability"]
                .iter()
                .map(|n| format!("{n}={:?}", xattr(&p, n)))
                .collect::<Vec<_>>()
                .join(" ");
            out.insert(
                rel,
                format!(
                    "{kind} mode {:o} {}:{} mtime {mtime} {x}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            );
            if ft.is_dir() {
                walk(root, &p, out, inodes);
            }
        }
    }
    walk(root, root, &mut out, &mut inodes);
    out
}

const OPAQUE: &str = "trusted.overlay.opaque";

#[test]
fn diff_round_trip() {
    if !root() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let b = d.path().join("b");
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let long = format!("deep/{}/{}", "n".repeat(120), "m".repeat(120));
    let tar = Tar::new()
        .entry("bin/", EntryType::Directory, b"", |h| h.set_mtime(1000))
        .entry("bin/su", EntryType::Regular, b"suid", |h| {
            h.set_mode(0o4755);
            h.set_uid(0);
        })
        .hardlink("bin/su-again", "bin/su")
        .symlink("bin/sh", "busybox")
        .entry("home/user/", EntryType::Directory, b"", |h| {
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_mode(0o700);
        })
        .entry("home/user/f", EntryType::Regular, &[5u8; 70_000], |h| {
            h.set_uid(1000);
            h.set_gid(1000);
        })
        .pax(&[("SCHILY.xattr.user.a", b"1")])
        .file("xattr-file", b"")
        .entry("pipe", EntryType::Fifo, b"", |_| {})
        .file(".wh.removed", b"")
        .dir("opaque/")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/inside", b"i")
        .finish();
    let mut full = tar.clone();
    // Append a long-named file (GNU long name) by rebuilding the tail.
    full.truncate(full.len() - 1024);
    let mut b2 = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o600);
    h.set_mtime(MTIME);
    b2.append_data(&mut h, &long, &b"L"[..]).unwrap();
    full.extend_from_slice(&b2.into_inner().unwrap());

    apply_layer(full.as_slice(), &a, &ApplyOptions::default()).unwrap();
    let (diff, _) = write_diff(&a, Vec::new()).unwrap();
    let stats = apply_layer(diff.as_slice(), &b, &ApplyOptions::default()).unwrap();
    let (da, db) = (describe(&a), describe(&b));
    assert_eq!(da, db);
    assert!(da["removed"].starts_with("char 0"), "{}", da["removed"]);
    assert!(da["opaque"].contains("Some([121])"), "{}", da["opaque"]);
    assert!(
        da["xattr-file"].contains("user.a=Some([49])"),
        "{}",
        da["xattr-file"]
    );
    assert!(da.contains_key(&long));

    // Deterministic: the same tree gives the same bytes.
    let (diff2, _) = write_diff(&b, Vec::new()).unwrap();
    assert_eq!(diff, diff2);
    assert_eq!(stats.diff_id.to_string(), sha256(&diff));
}

#[test]
fn layers_unpacked_side_by_side_are_stacked_at_commit() {
    if !root() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(d.path().join("root")).unwrap();
    // Both layers unpack before either is committed, each without a parent.
    s.prepare("extract-a", None).unwrap();
    s.prepare("extract-b", None).unwrap();
    let lower = Tar::new().file("a", b"lower").file("gone", b"x").finish();
    let upper = Tar::new()
        .file("b", b"upper")
        .file(".wh.gone", b"")
        .finish();
    apply_layer(
        upper.as_slice(),
        &s.fs_dir("extract-b").unwrap(),
        &ApplyOptions::default(),
    )
    .unwrap();
    apply_layer(
        lower.as_slice(),
        &s.fs_dir("extract-a").unwrap(),
        &ApplyOptions::default(),
    )
    .unwrap();
    // A parent must be committed first.
    assert!(matches!(
        s.commit_onto("sha256:b", "extract-b", Some("sha256:a")),
        Err(SnapshotError::NotFound(_))
    ));
    s.commit_onto("sha256:a", "extract-a", None).unwrap();
    s.commit_onto("sha256:b", "extract-b", Some("sha256:a"))
        .unwrap();
    assert_eq!(
        s.stat("sha256:b").unwrap().parent.as_deref(),
        Some("sha256:a")
    );
    let m = s.view("v", Some("sha256:b")).unwrap();
    let target = d.path().join("mnt");
    {
        let _mounted = Mounted::new(&m, &target);
        assert_eq!(names(&target), ["a", "b"]);
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"lower");
    }
    s.remove("v").unwrap();
}
