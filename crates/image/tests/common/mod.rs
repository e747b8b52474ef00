//! Fixtures: a busybox rootfs tar, small layers, stores in temp dirs, and archives built
//! by hand (including ones no honest tool would write).
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use berth_image::{ImageStore, ImageUse, ImportOptions};
use berth_reference::{Digest, ImageId, Reference};
use tar::{EntryType, Header};

/// A store in a fresh temp dir (kept alive by the returned guard).
pub fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::Builder::new()
        .prefix("berth-image-test")
        .tempdir()
        .unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    (dir, store)
}

/// A plain tar of a busybox root filesystem (built once per test binary).
pub fn busybox_tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        berth_testsupport::busybox_rootfs(dir.path());
        tar_dir(dir.path())
    })
}

/// A tar of `dir` with symlinks kept as symlinks.
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// A small layer tar with one file.
pub fn small_layer(name: &str, data: &[u8]) -> Vec<u8> {
    let mut t = Tar::new();
    t.file(name, data);
    t.finish()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn reference(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap()
}

pub fn import(store: &ImageStore, tar: &[u8], tag: Option<&str>) -> ImageId {
    let opts = ImportOptions {
        tag: tag.map(reference),
        ..ImportOptions::default()
    };
    store.import(&mut &tar[..], &opts).unwrap()
}

pub fn unused(_: &ImageId) -> Option<ImageUse> {
    None
}

pub fn sha(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// A minimal image config for `diff_ids`.
pub fn config_json(diff_ids: &[&Digest], comment: &str) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": berth_image::host_arch(),
        "os": "linux",
        "created": "2026-11-25T08:36:47.252755235Z",
        "comment": comment,
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

/// A tar under construction. Names and link targets are written raw into the header, so
/// `../x` and `/x` survive (the `tar` crate's own setters refuse them).
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn entry(&mut self, name: &str, kind: EntryType, data: &[u8], link: &str) -> &mut Self {
        let mut h = Header::new_gnu();
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "long names unsupported here");
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, EntryType::Regular, data, "")
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, EntryType::Directory, b"", "")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Symlink, b"", target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Link, b"", target)
    }

    /// A regular file whose name may be longer than 100 bytes (GNU long name).
    pub fn long_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        self.b.append_data(&mut h, name, data).unwrap();
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()))
            .into_inner()
            .unwrap()
    }
}

/// A docker-archive laid out exactly as Docker 20.10's `docker save` writes it: per layer a
/// directory named by a v1 layer id with `VERSION`, `json` and `layer.tar` (a repeated layer
/// is a symlink to the first copy), `<config hex>.json`, `manifest.json`, `repositories`.
pub struct DockerArchive {
    pub tar: Tar,
    pub manifest: Vec<serde_json::Value>,
}

impl DockerArchive {
    pub fn new() -> Self {
        DockerArchive {
            tar: Tar::new(),
            manifest: Vec::new(),
        }
    }

    /// Adds an image; `layers` are plain tars (an empty slice entry repeats the previous
    /// identical layer via a symlink, as Docker does for empty layers).
    pub fn image(&mut self, tags: &[&str], layers: &[&[u8]], comment: &str) -> ImageId {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| sha(l)).collect();
        let refs: Vec<&Digest> = diff_ids.iter().collect();
        let config = config_json(&refs, comment);
        let config_hex = sha(&config).hex().to_owned();
        let mut paths: Vec<String> = Vec::new();
        let mut first_by_diff: std::collections::BTreeMap<Digest, String> = Default::default();
        for (i, layer) in layers.iter().enumerate() {
            let v1 = sha(format!("{comment}-{i}-{config_hex}").as_bytes())
                .hex()
                .to_owned();
            self.tar.dir(&format!("{v1}/"));
            self.tar.file(&format!("{v1}/VERSION"), b"1.0");
            self.tar.file(
                &format!("{v1}/json"),
                format!("{{\"id\":\"{v1}\"}}").as_bytes(),
            );
            match first_by_diff.get(&diff_ids[i]) {
                Some(first) => {
                    self.tar
                        .symlink(&format!("{v1}/layer.tar"), &format!("../{first}/layer.tar"));
                }
                None => {
                    self.tar.file(&format!("{v1}/layer.tar"), layer);
                    first_by_diff.insert(diff_ids[i].clone(), v1.clone());
                }
            }
            paths.push(format!("{v1}/layer.tar"));
        }
        self.tar.file(&format!("{config_hex}.json"), &config);
        self.manifest.push(serde_json::json!({
            "Config": format!("{config_hex}.json"),
            "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { serde_json::json!(tags) },
            "Layers": paths,
        }));
        ImageId::from_config(&config)
    }

    pub fn finish(mut self) -> Vec<u8> {
        let manifest = serde_json::to_vec(&self.manifest).unwrap();
        self.tar.file("manifest.json", &manifest);
        self.tar.file("repositories", b"{}");
        self.tar.finish()
    }
}
