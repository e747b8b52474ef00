//! `prepare_rootfs`: a container's root is an overlay of the image's layers with a fresh
//! upper directory. Needs root (mount); nothing stays mounted after the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use berth_image::{DeleteItem, ImageUse};
use berth_reference::ImageId;
use common::*;

/// Unmounts on drop, even when an assertion fails first.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = berth_snapshot::unmount(&self.0);
    }
}

fn is_mounted(target: &Path) -> bool {
    let target = target.canonicalize().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.to_str().unwrap()))
}

#[test]
fn prepare_rootfs_mounts_an_overlay_of_the_image() {
    if !berth_testsupport::is_root() {
        eprintln!("skipped: needs root to mount");
        return;
    }
    let (d, store) = store();
    // Two layers, so the root is a real overlay: busybox, then a file on top of it.
    let mut a = DockerArchive::new();
    let top = small_layer("etc/motd", b"from the top layer\n");
    let id = a.image(&["bb:1"], &[busybox_tar(), &top], "bb");
    store.load(&mut &a.finish()[..]).unwrap();

    let key = "container-0123";
    let mount = store.prepare_rootfs(&id, key).unwrap();
    let target = d.path().join("rootfs");
    std::fs::create_dir(&target).unwrap();
    mount.mount(&target).unwrap();
    let guard = Mounted(target.clone());
    assert!(is_mounted(&target));

    assert!(target.join("bin/busybox").is_file());
    assert!(
        target
            .join("bin/sh")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(target.join("etc/motd")).unwrap(),
        "from the top layer\n"
    );
    // Writes land in the container's own upper directory, not in the image.
    std::fs::write(target.join("etc/motd"), "changed\n").unwrap();
    std::fs::write(target.join("new-file"), "x").unwrap();
    let upper = store.snapshotter().fs_dir(key).unwrap();
    assert!(upper.join("new-file").is_file());

    // While a container sits on the image, a forced removal of the image keeps its layers.
    let user = |_: &ImageId| {
        Some(ImageUse {
            container_id: "f".repeat(64),
            running: true,
        })
    };
    assert!(store.remove("bb:1", false, true, &user).is_err());

    drop(guard);
    assert!(!is_mounted(&target));
    store.remove_rootfs(key).unwrap();
    store.remove_rootfs(key).unwrap(); // already gone: fine

    // A fresh container from the same image sees the image unchanged.
    let mount = store.prepare_rootfs(&id, "container-2").unwrap();
    mount.mount(&target).unwrap();
    let guard = Mounted(target.clone());
    assert_eq!(
        std::fs::read_to_string(target.join("etc/motd")).unwrap(),
        "from the top layer\n"
    );
    assert!(!target.join("new-file").exists());
    drop(guard);
    store.remove_rootfs("container-2").unwrap();

    let out = store.remove("bb:1", false, true, &unused).unwrap();
    assert_eq!(
        out.iter()
            .filter(|i| matches!(i, DeleteItem::Deleted(_)))
            .count(),
        3
    );
    assert!(store.snapshotter().list().is_empty());
}
