//! apply_layer: what honest layers produce, and what hostile ones must not.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use berth_snapshot::{ApplyError, ApplyOptions, Compression, WhiteoutMode, apply_layer};
use common::*;
use tar::EntryType;

fn apply(tar: &[u8], dest: &Path) -> Result<berth_snapshot::LayerStats, ApplyError> {
    apply_layer(tar, dest, &ApplyOptions::default())
}

fn tmp() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    (d, dest)
}

#[test]
fn honest_layer_all_entry_kinds() {
    let (_d, dest) = tmp();
    let tar = Tar::new()
        .dir("etc/")
        .entry("etc/app.conf", EntryType::Regular, b"conf", |h| {
            h.set_uid(1000);
            h.set_gid(2000);
            h.set_mode(0o640);
        })
        .entry("bin/", EntryType::Directory, b"", |h| {
            h.set_mtime(1_234_567)
        })
        .entry("bin/su", EntryType::Regular, b"#!suid", |h| {
            h.set_mode(0o4755)
        })
        .symlink("bin/sh", "/bin/busybox")
        .hardlink("bin/su2", "bin/su")
        .entry("run/fifo", EntryType::Fifo, b"", |h| h.set_mode(0o600))
        .pax(&[
            ("SCHILY.xattr.user.color", b"blue"),
            (
                "SCHILY.xattr.security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.evil", b"x"),
        ])
        .file("bin/ping", b"ping")
        .finish();
    let stats = apply(&tar, &dest).unwrap();
    assert_eq!(stats.diff_id.to_string(), sha256(&tar));
    assert_eq!(stats.size, tar.len() as u64);
    assert_eq!(stats.compression, Compression::None);
    assert_eq!(stats.entries, 8); // the PAX header is not an entry

    let conf = std::fs::metadata(dest.join("etc/app.conf")).unwrap();
    assert_eq!(
        (conf.uid(), conf.gid(), conf.mode() & 0o7777),
        (1000, 2000, 0o640)
    );
    assert_eq!(conf.mtime(), MTIME as i64);
    assert_eq!(std::fs::read(dest.join("etc/app.conf")).unwrap(), b"conf");
    assert_eq!(
        std::fs::metadata(dest.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::read_link(dest.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        std::fs::metadata(dest.join("bin/su2")).unwrap().ino(),
        std::fs::metadata(dest.join("bin/su")).unwrap().ino()
    );
    assert!(
        std::fs::metadata(dest.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // Directory mtimes survive the children added after them.
    assert_eq!(
        std::fs::metadata(dest.join("bin")).unwrap().mtime(),
        1_234_567
    );
    // Implicit parents are created.
    assert!(dest.join("run").is_dir());

    let ping = dest.join("bin/ping");
    assert_eq!(xattr(&ping, "user.color").as_deref(), Some(&b"blue"[..]));
    assert!(xattr(&ping, "security.capability").is_some());
    assert_eq!(xattr(&ping, "trusted.overlay.opaque"), None);
    assert_eq!(xattr(&ping, "trusted.evil"), None);
}

#[test]
fn compressions_give_the_same_diff_id() {
    let tar = Tar::new().file("a", &[42u8; 100_000]).dir("d/").finish();
    let mut ids = Vec::new();
    for (data, kind) in [
        (tar.clone(), Compression::None),
        (gzip(&tar), Compression::Gzip),
        (zstd(&tar), Compression::Zstd),
    ] {
        let (_d, dest) = tmp();
        let stats = apply(&data, &dest).unwrap();
        assert_eq!(stats.compression, kind);
        assert_eq!(stats.compressed_size, data.len() as u64);
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), vec![42u8; 100_000]);
        ids.push(stats.diff_id.to_string());
    }
    assert!(ids.iter().all(|d| *d == sha256(&tar)), "{ids:?}");
}

/// A reader that hands out one byte at a time: magic-number detection must not be fooled.
#[test]
fn slow_reader() {
    struct OneByte<'a>(&'a [u8]);
    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }
    let tar = Tar::new().file("a", b"x").finish();
    let gz = gzip(&tar);
    let (_d, dest) = tmp();
    let stats = apply_layer(OneByte(&gz), &dest, &ApplyOptions::default()).unwrap();
    assert_eq!(stats.compression, Compression::Gzip);
    assert_eq!(stats.diff_id.to_string(), sha256(&tar));
}

#[test]
fn dotdot_entries_are_refused() {
    let (d, dest) = tmp();
    for name in ["../evil", "a/../../evil", "./../evil"] {
        let tar = Tar::new().file(name, b"x").finish();
        let err = apply(&tar, &dest).unwrap_err();
        assert!(
            matches!(err, ApplyError::InvalidPath { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    assert!(!d.path().join("evil").exists());
}

#[test]
fn absolute_paths_are_made_relative() {
    let (_d, dest) = tmp();
    let marker = format!("/tmp/berth-abs-{}", std::process::id());
    let tar = Tar::new().file(&format!("{marker}/f"), b"x").finish();
    apply(&tar, &dest).unwrap();
    assert!(!Path::new(&marker).exists());
    assert_eq!(
        std::fs::read(dest.join(marker.trim_start_matches('/')).join("f")).unwrap(),
        b"x"
    );
}

/// CVE-2021-32760 / CVE-2014-6407: a symlink to a host directory, then an entry through it.
/// The symlink is resolved inside the layer: with no `etc` in the layer that is an error,
/// with one the entry lands there. The host is never touched.
#[test]
fn symlink_to_etc_then_file_through_it() {
    let before = fingerprint(Path::new("/etc/passwd"));
    let hostile = |t: &mut Tar| {
        t.symlink("x", "/etc")
            .entry(
                "x/passwd",
                EntryType::Regular,
                b"root::0:0::/:/bin/sh\n",
                |h| h.set_mode(0o777),
            )
            .file("x/berth-marker", b"pwned")
            .finish()
    };
    let (_d, dest) = tmp();
    let err = apply(&hostile(&mut Tar::new()), &dest).unwrap_err();
    assert!(err.to_string().contains("missing from the layer"), "{err}");
    assert!(!dest.join("etc").exists());

    let (_d, dest) = tmp();
    apply(&hostile(Tar::new().dir("etc/")), &dest).unwrap();
    assert_eq!(
        std::fs::read(dest.join("etc/passwd")).unwrap(),
        b"root::0:0::/:/bin/sh\n"
    );
    assert_eq!(
        std::fs::read_link(dest.join("x")).unwrap(),
        Path::new("/etc")
    );

    assert_eq!(
        fingerprint(Path::new("/etc/passwd")),
        before,
        "host /etc/passwd changed"
    );
    assert!(!Path::new("/etc/berth-marker").exists());
}

#[test]
fn symlinks_out_of_the_layer_then_files_through_them() {
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let outside_abs = outside.to_str().unwrap().to_owned();
    let cases: Vec<Vec<u8>> = vec![
        Tar::new()
            .symlink("x", &outside_abs)
            .file("x/pwned", b"x")
            .finish(),
        Tar::new()
            .symlink("up", "../../../../../../..")
            .file("up/escaped", b"x")
            .finish(),
        Tar::new()
            .symlink("up", "../..")
            .file("up/escaped", b"x")
            .finish(),
        Tar::new()
            .symlink("rel", "../outside")
            .file("rel/pwned", b"x")
            .finish(),
        Tar::new()
            .symlink("a", "b")
            .symlink("b", "../outside")
            .file("a/pwned", b"x")
            .finish(),
        Tar::new().symlink("x", &outside_abs).dir("x/sub/").finish(),
        Tar::new()
            .symlink("x", &outside_abs)
            .symlink("x/link", "/etc")
            .finish(),
        Tar::new()
            .dir("d/")
            .symlink("d/up", "../../outside")
            .file("d/up/pwned", b"x")
            .finish(),
    ];
    for (i, tar) in cases.iter().enumerate() {
        let dest = d.path().join(format!("layer{i}"));
        std::fs::create_dir(&dest).unwrap();
        let r = apply(tar, &dest);
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "case {i} wrote outside: {r:?}"
        );
        assert!(!d.path().join("escaped").exists(), "case {i}");
        assert!(!Path::new("/escaped").exists(), "case {i}");
    }
    // `up -> ../..` from the layer root is the root itself: the file lands in the layer.
    assert!(d.path().join("layer1/escaped").is_file());
    assert!(d.path().join("layer2/escaped").is_file());
}

/// The last component is never followed: a file entry replaces a symlink of the same name.
#[test]
fn file_over_a_symlink_replaces_the_symlink() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"original").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = fingerprint(&victim);
    let tar = Tar::new()
        .symlink("f", victim.to_str().unwrap())
        .entry("f", EntryType::Regular, b"overwritten", |h| {
            h.set_mode(0o4777)
        })
        .symlink("d", victim.to_str().unwrap())
        .entry("d", EntryType::Directory, b"", |h| h.set_mode(0o777))
        .finish();
    apply(&tar, &dest).unwrap();
    assert_eq!(fingerprint(&victim), before);
    assert_eq!(std::fs::read(dest.join("f")).unwrap(), b"overwritten");
    assert!(std::fs::symlink_metadata(dest.join("d")).unwrap().is_dir());
}

#[test]
fn hard_links_must_stay_in_the_layer() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let outside = d.path().join("outside");
    std::fs::write(&outside, b"secret").unwrap();
    let shadow = fingerprint(Path::new("/etc/shadow"));
    for (target, why) in [
        ("/etc/shadow", "target not found in the layer"),
        ("../outside", "climbs out"),
        ("../../../../etc/shadow", "climbs out"),
        ("", "layer root"),
    ] {
        let tar = Tar::new().hardlink("h", target).finish();
        let err = apply(&tar, &dest).unwrap_err();
        assert!(
            matches!(err, ApplyError::InvalidLink { .. }),
            "{target}: {err}"
        );
        assert!(err.to_string().contains(why), "{target}: {err}");
    }
    // Through a symlinked parent: resolved inside the layer, where there is no shadow.
    let tar = Tar::new()
        .symlink("e", "/etc")
        .hardlink("h", "e/shadow")
        .finish();
    assert!(apply(&tar, &dest).is_err());
    assert_eq!(std::fs::metadata(&outside).unwrap().nlink(), 1);
    assert_eq!(fingerprint(Path::new("/etc/shadow")), shadow);
    assert!(!dest.join("h").exists());
    // A link to a symlink links the symlink, not what it points to.
    let (_d2, dest2) = tmp();
    let tar = Tar::new()
        .symlink("s", outside.to_str().unwrap())
        .hardlink("h", "s")
        .finish();
    apply(&tar, &dest2).unwrap();
    assert!(
        std::fs::symlink_metadata(dest2.join("h"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::metadata(&outside).unwrap().nlink(), 1);
}

#[test]
fn device_nodes_refused_by_default() {
    let (_d, dest) = tmp();
    let dev = |t: &mut Tar| {
        t.entry("dev/mem", EntryType::Char, b"", |h| {
            h.set_device_major(1).unwrap();
            h.set_device_minor(1).unwrap();
        })
        .finish()
    };
    let tar = dev(&mut Tar::new());
    let err = apply(&tar, &dest).unwrap_err();
    assert!(matches!(err, ApplyError::DeviceRefused { .. }), "{err}");
    assert!(!dest.join("dev/mem").exists());

    let opts = ApplyOptions {
        allow_devices: true,
        ..ApplyOptions::default()
    };
    apply_layer(tar.as_slice(), &dest, &opts).unwrap();
    let m = std::fs::symlink_metadata(dest.join("dev/mem")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), rustix::fs::makedev(1, 1));
}

#[test]
fn out_of_range_owner_is_refused_not_wrapped() {
    let (_d, dest) = tmp();
    for uid in [u64::from(u32::MAX), 1 << 40] {
        let tar = Tar::new()
            .entry("f", EntryType::Regular, b"", |h| h.set_uid(uid))
            .finish();
        let err = apply(&tar, &dest).unwrap_err();
        assert!(
            matches!(err, ApplyError::InvalidHeader { .. }),
            "{uid}: {err}"
        );
    }
}

/// The zeros of a bomb, in gzip members of 8 MiB each: concatenated members are one valid
/// gzip stream, which makes a 10 MiB bomb cheap to build.
fn zero_member() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut e, &vec![0u8; 8 << 20]).unwrap();
    e.finish().unwrap()
}

/// Counts what apply_layer reads from it.
struct Counted<R> {
    inner: R,
    n: Rc<Cell<u64>>,
}
impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.set(self.n.get() + n as u64);
        Ok(n)
    }
}

fn bomb() -> Vec<u8> {
    // A tar header for a 100 GiB file (GNU base-256 size), then zeros.
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_size(100 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    let mut data = gzip(h.as_bytes());
    let member = zero_member();
    while data.len() < 10 << 20 {
        data.extend_from_slice(&member);
    }
    data
}

#[test]
fn gzip_bomb_stops_at_max_size() {
    let data = bomb();
    assert!(data.len() >= 10 << 20);
    let (_d, dest) = tmp();
    let opts = ApplyOptions {
        max_size: 64 << 20,
        ..ApplyOptions::default()
    };
    let read = Rc::new(Cell::new(0));
    let start = Instant::now();
    let err = apply_layer(
        Counted {
            inner: data.as_slice(),
            n: read.clone(),
        },
        &dest,
        &opts,
    )
    .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, ApplyError::TooLarge { limit } if limit == 64 << 20),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("layer expands beyond {} bytes", 64 << 20)
    );
    let written = std::fs::metadata(dest.join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written <= 64 << 20, "wrote {written} bytes");
    // It stopped early: a small fraction of the 10 MiB input was consumed.
    assert!(read.get() < 2 << 20, "read {} compressed bytes", read.get());
    eprintln!(
        "bomb stopped after reading {} compressed bytes, writing {written}, in {took:?}",
        read.get()
    );
}

#[test]
fn gzip_bomb_stops_at_max_ratio() {
    let data = bomb();
    let (_d, dest) = tmp();
    let opts = ApplyOptions {
        max_ratio: Some(100),
        ..ApplyOptions::default()
    };
    let err = apply_layer(data.as_slice(), &dest, &opts).unwrap_err();
    assert!(matches!(err, ApplyError::Ratio { ratio: 100 }), "{err}");
    let written = std::fs::metadata(dest.join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written < 64 << 20, "wrote {written} bytes");
}

/// CVE-2017-14992 class: a huge PAX header is not read into memory.
#[test]
fn oversized_pax_header_is_refused() {
    let big = vec![b'a'; 8 << 20];
    let tar = Tar::new()
        .pax(&[("comment", &big)])
        .file("f", b"x")
        .finish();
    let (_d, dest) = tmp();
    let err = apply(&tar, &dest).unwrap_err();
    assert!(matches!(err, ApplyError::HeadersTooLarge { .. }), "{err}");
}

#[test]
fn entry_count_limit() {
    let mut t = Tar::new();
    for i in 0..20 {
        t.file(&format!("f{i}"), b"");
    }
    let tar = t.finish();
    let (_d, dest) = tmp();
    let opts = ApplyOptions {
        max_entries: 10,
        ..ApplyOptions::default()
    };
    let err = apply_layer(tar.as_slice(), &dest, &opts).unwrap_err();
    assert!(
        matches!(err, ApplyError::TooManyEntries { limit: 10 }),
        "{err}"
    );
}

#[test]
fn truncated_tar_is_a_clean_error() {
    let tar = Tar::new().file("big", &vec![7u8; 100_000]).finish();
    let (_d, dest) = tmp();
    let err = apply(&tar[..50_000], &dest).unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::Truncated {
                expected: 100_000,
                ..
            }
        ),
        "{err}"
    );
    // Cut inside a header.
    let err = apply(&tar[..200], &dest);
    assert!(err.is_err() || !dest.join("big").exists());
}

#[test]
fn truncated_gzip_is_a_clean_error() {
    let tar = Tar::new()
        .file(
            "big",
            &(0..300_000u32)
                .map(|i| (i * 31 % 251) as u8)
                .collect::<Vec<_>>(),
        )
        .finish();
    let gz = gzip(&tar);
    for cut in [gz.len() / 2, gz.len() - 4, 5] {
        let (_d, dest) = tmp();
        let err = apply(&gz[..cut], &dest).unwrap_err();
        assert!(
            matches!(err, ApplyError::Read(_) | ApplyError::Truncated { .. }),
            "cut {cut}: {err}"
        );
    }
    // A corrupted trailer (CRC) is caught because the stream is read to its end.
    let mut bad = gz.clone();
    let n = bad.len();
    bad[n - 6] ^= 0xff;
    let (_d, dest) = tmp();
    assert!(matches!(apply(&bad, &dest), Err(ApplyError::Read(_))));
}

#[test]
fn garbage_is_not_a_layer() {
    let (_d, dest) = tmp();
    assert!(apply(&[0x42u8; 1024], &dest).is_err());
}

#[test]
fn whiteouts_in_overlay_form() {
    let (_d, dest) = tmp();
    let tar = Tar::new()
        .dir("d/")
        .file("d/.wh.gone", b"")
        .dir("o/")
        .file("o/.wh..wh..opq", b"")
        .file("o/new", b"n")
        .file("kept", b"k")
        .file(".wh.kept", b"") // whiteouts never hide the layer's own files
        .file("deep/er/.wh.x", b"")
        .file(".wh..wh.plnk/123", b"aufs metadata")
        .finish();
    apply(&tar, &dest).unwrap();
    let wh = std::fs::symlink_metadata(dest.join("d/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!dest.join("d/.wh.gone").exists());
    assert_eq!(
        xattr(&dest.join("o"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dest.join("o/.wh..wh..opq").exists());
    assert_eq!(std::fs::read(dest.join("o/new")).unwrap(), b"n");
    assert_eq!(std::fs::read(dest.join("kept")).unwrap(), b"k");
    assert!(
        std::fs::symlink_metadata(dest.join("deep/er/x"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(!dest.join(".wh..wh.plnk").exists());
}

#[test]
fn whiteouts_in_delete_form() {
    let (_d, dest) = tmp();
    let lower = Tar::new()
        .file("a", b"")
        .file("d/x", b"")
        .file("d/y", b"")
        .file("o/p", b"")
        .file("o/q/r", b"")
        .finish();
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..ApplyOptions::default()
    };
    apply_layer(lower.as_slice(), &dest, &opts).unwrap();
    let upper = Tar::new()
        .file(".wh.a", b"")
        .file("d/.wh.x", b"")
        .dir("o/")
        .file("o/mine", b"")
        .file("o/.wh..wh..opq", b"")
        .file(".wh.missing", b"")
        .finish();
    apply_layer(upper.as_slice(), &dest, &opts).unwrap();
    assert!(!dest.join("a").exists());
    assert!(!dest.join("d/x").exists());
    assert!(dest.join("d/y").exists());
    let mut o: Vec<_> = std::fs::read_dir(dest.join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    o.sort();
    assert_eq!(o, vec!["mine"]);
}

#[test]
fn whiteout_of_dotdot_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("a/b");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(d.path().join("a/keep"), b"").unwrap();
    for mode in [WhiteoutMode::Delete, WhiteoutMode::Overlay] {
        let opts = ApplyOptions {
            whiteouts: mode,
            ..ApplyOptions::default()
        };
        for name in [".wh...", ".wh..", ".wh."] {
            let tar = Tar::new().file(name, b"").finish();
            assert!(apply_layer(tar.as_slice(), &dest, &opts).is_err(), "{name}");
        }
    }
    assert!(d.path().join("a/keep").exists());
}

#[test]
fn long_names_via_gnu_and_pax() {
    let (_d, dest) = tmp();
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(200));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"hi"[..]).unwrap(); // GNU long name
    let tar = {
        let mut t = b.into_inner().unwrap();
        t.truncate(t.len() - 1024); // drop the end blocks and continue by hand
        let mut more = Tar::new();
        more.pax(&[("path", format!("p/{}", "q".repeat(250)).as_bytes())])
            .file("ignored", b"pax");
        t.extend_from_slice(&more.finish());
        t
    };
    apply(&tar, &dest).unwrap();
    assert_eq!(std::fs::read(dest.join(&long)).unwrap(), b"hi");
    assert_eq!(
        std::fs::read(dest.join("p").join("q".repeat(250))).unwrap(),
        b"pax"
    );
}

#[test]
fn replacing_kinds() {
    let (_d, dest) = tmp();
    let tar = Tar::new()
        .file("a/b/c", b"")
        .file("a", b"now a file") // replaces the directory tree
        .dir("f/")
        .dir("f/") // an existing directory is kept
        .file("f/x", b"")
        .finish();
    apply(&tar, &dest).unwrap();
    assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"now a file");
    assert!(dest.join("f/x").exists());
}
