//! Building layer tars by hand, including ones no honest tool would write.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tar::{EntryType, Header};

/// A tar under construction. Names are written raw into the header, so `../x` and `/x`
/// survive (the `tar` crate's own path setters refuse them).
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

pub const MTIME: u64 = 1_600_000_000;

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn entry(
        &mut self,
        name: &str,
        kind: EntryType,
        data: &[u8],
        edit: impl FnOnce(&mut Header),
    ) -> &mut Self {
        let mut h = Header::new_gnu();
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "use pax_path for long names");
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        edit(&mut h);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, EntryType::Regular, data, |_| {})
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, EntryType::Directory, b"", |_| {})
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Symlink, b"", |h| {
            h.set_link_name_literal(target).unwrap();
        })
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, EntryType::Link, b"", |h| {
            h.set_link_name_literal(target).unwrap();
        })
    }

    /// A PAX extended header for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        self.entry("PaxHeader", EntryType::XHeader, &data.clone(), |_| {})
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.b.finish().unwrap();
        self.b.get_ref().clone()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    berth_content::Digest::sha256_of(data).to_string()
}

/// A snapshot of a file's identity and content, to show it was not touched.
pub fn fingerprint(p: &Path) -> Option<(u64, u32, u64, i64, String)> {
    let m = std::fs::symlink_metadata(p).ok()?;
    let content = std::fs::read(p).map(|d| sha256(&d)).unwrap_or_default();
    Some((m.ino(), m.mode(), m.nlink(), m.mtime(), content))
}

pub fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}
