//! Unpacking a `docker load` archive into a private scratch directory, refusing anything a
//! real archive does not need:
//!
//! - entry paths must be relative, without `..` (no escape, and no spoofing of another
//!   file: CVE-2014-9358);
//! - only regular files and directories are written; a symlink is never created, only
//!   remembered, and may only stand for another regular file of the archive (Docker writes
//!   `<layer>/layer.tar -> ../<other>/layer.tar` for repeated layers);
//! - hard links, devices and fifos are refused, as are duplicate names;
//! - the JSON files an importer reads whole (`manifest.json`, `index.json`, `repositories`,
//!   `oci-layout`, `*.json`) are refused above [`MAX_JSON_SIZE`] (CVE-2023-25153), and the
//!   bytes of long-name/PAX headers between two entries are bounded;
//! - the archive may be gzip or zstd compressed.
//!
//! The directory is removed when the [`Extracted`] is dropped.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tar::EntryType;

use crate::error::{ImageError, Result};
use crate::layers::decompress;
use crate::store::MAX_JSON_SIZE;

/// Most entries an archive may have.
const MAX_ENTRIES: u64 = 1 << 20;
/// Bytes the tar reader may consume between two entries (long names, PAX records).
const HEADER_BUDGET: u64 = 2 << 20;

/// An unpacked archive in a scratch directory.
#[derive(Debug)]
pub(crate) struct Extracted {
    dir: PathBuf,
    files: BTreeSet<String>,
    /// Symlink path → the archive path it stands for.
    links: BTreeMap<String, String>,
}

impl Drop for Extracted {
    fn drop(&mut self) {
        // Only regular files and directories were created, so this cannot follow a link
        // out; a failure leaves the directory for `repair`.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Extracted {
    /// Whether the archive has a regular file (or a link to one) at `path`.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    fn resolve(&self, path: &str) -> Result<String> {
        let clean = clean_path(path)?;
        let target = self.links.get(&clean).cloned().unwrap_or(clean);
        if self.files.contains(&target) {
            Ok(target)
        } else {
            Err(ImageError::archive(format!(
                "{path:?} is not a file in the archive"
            )))
        }
    }

    /// Opens the archive file at `path`.
    pub(crate) fn open(&self, path: &str) -> Result<File> {
        let p = self.dir.join(self.resolve(path)?);
        File::open(&p).map_err(ImageError::io("open", p))
    }

    /// Reads a small file whole, refusing one above `limit` bytes.
    pub(crate) fn read_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open(path)?
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(ImageError::io("read", path))?;
        if data.len() as u64 > limit {
            return Err(ImageError::archive(format!(
                "{path} is larger than {limit} bytes"
            )));
        }
        Ok(data)
    }
}

/// Unpacks `input` into a new directory under `scratch`.
pub(crate) fn extract(input: &mut dyn Read, scratch: &Path) -> Result<Extracted> {
    let dir = scratch.join(format!("load-{}", crate::fsutil::random_hex(12)));
    fs::create_dir(&dir).map_err(ImageError::io("create", &dir))?;
    let mut out = Extracted {
        dir,
        files: BTreeSet::new(),
        links: BTreeMap::new(),
    };
    let fence = Rc::new(Cell::new(u64::MAX));
    let pos = Rc::new(Cell::new(0u64));
    let plain = decompress(input).map_err(|e| ImageError::archive(format!("read archive: {e}")))?;
    let fenced = Fenced {
        inner: plain,
        pos: pos.clone(),
        fence: fence.clone(),
    };
    let mut archive = tar::Archive::new(fenced);
    let mut entries = archive.entries().map_err(read_err)?;
    let mut count = 0u64;
    let mut links = BTreeMap::new();
    loop {
        fence.set(pos.get().saturating_add(HEADER_BUDGET));
        let next = entries.next();
        fence.set(u64::MAX);
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(read_err)?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(ImageError::archive(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        out.add(&mut entry, &mut links)?;
    }
    out.links = resolve_links(links, &out.files)?;
    Ok(out)
}

impl Extracted {
    fn add(
        &mut self,
        entry: &mut tar::Entry<'_, impl Read>,
        links: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let name = std::str::from_utf8(&raw)
            .map_err(|_| ImageError::archive("entry name is not UTF-8"))?
            .to_owned();
        let path = clean_path(&name)?;
        if path.is_empty() {
            return Ok(()); // "./"
        }
        if self.files.contains(&path) || links.contains_key(&path) {
            return Err(ImageError::archive(format!("duplicate entry {name:?}")));
        }
        match entry.header().entry_type() {
            EntryType::Directory => {
                let d = self.dir.join(&path);
                fs::create_dir_all(&d).map_err(ImageError::io("create", d))
            }
            EntryType::Regular | EntryType::Continuous => self.add_file(entry, &name, path),
            EntryType::XGlobalHeader => Ok(()),
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                links.insert(path, link_target(&name, &target)?);
                Ok(())
            }
            other => Err(ImageError::archive(format!(
                "entry {name:?} has type {other:?}; only files, directories and links between layer files are allowed"
            ))),
        }
    }

    fn add_file(
        &mut self,
        entry: &mut tar::Entry<'_, impl Read>,
        name: &str,
        path: String,
    ) -> Result<()> {
        let size = entry.header().size().map_err(read_err)?;
        if is_json_name(&path) && size > MAX_JSON_SIZE {
            return Err(ImageError::archive(format!(
                "{name} is {size} bytes, more than the limit of {MAX_JSON_SIZE}"
            )));
        }
        let dest = self.dir.join(&path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(ImageError::io("create", parent))?;
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(ImageError::io("create", &dest))?;
        io::copy(entry, &mut f).map_err(read_err)?;
        self.files.insert(path);
        Ok(())
    }
}

/// Files an importer reads whole into memory.
fn is_json_name(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    matches!(
        base,
        "manifest.json" | "index.json" | "repositories" | "oci-layout" | "json"
    ) || base.ends_with(".json")
}

/// A symlink target as an archive path: relative to the link's directory, never above the
/// archive root, never absolute.
fn link_target(name: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(ImageError::archive(format!(
            "symlink {name:?} points to an absolute path {target:?}"
        )));
    }
    let mut parts: Vec<&str> = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ImageError::archive(format!(
                        "symlink {name:?} points outside the archive"
                    )));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Every symlink must stand for a regular file of the archive (no chains, nothing dangling).
fn resolve_links(
    links: BTreeMap<String, String>,
    files: &BTreeSet<String>,
) -> Result<BTreeMap<String, String>> {
    for (link, target) in &links {
        if !files.contains(target) {
            return Err(ImageError::archive(format!(
                "symlink {link:?} does not point to a file of the archive"
            )));
        }
    }
    Ok(links)
}

/// Cleans an archive path: relative, no `..`, no empty or `.` components kept.
pub(crate) fn clean_path(name: &str) -> Result<String> {
    if name.starts_with('/') {
        return Err(ImageError::archive(format!(
            "absolute path {name:?} in archive"
        )));
    }
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(ImageError::archive(format!(
                    "path {name:?} climbs out with ..",
                )));
            }
            c if c.contains('\0') || c.contains('\\') => {
                return Err(ImageError::archive(format!(
                    "invalid path {name:?} in archive"
                )));
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

fn read_err(e: io::Error) -> ImageError {
    ImageError::archive(format!("read archive: {e}"))
}

/// Refuses to read past `fence` (moved by the entry loop) so oversized headers stop early.
struct Fenced<R> {
    inner: R,
    pos: Rc<Cell<u64>>,
    fence: Rc<Cell<u64>>,
}

impl<R: Read> Read for Fenced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos.get() >= self.fence.get() {
            return Err(io::Error::other(format!(
                "tar headers between two entries exceed {HEADER_BUDGET} bytes"
            )));
        }
        let room = (self.fence.get() - self.pos.get()).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.pos.set(self.pos.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_and_link_targets() {
        assert_eq!(clean_path("./a//b/").unwrap(), "a/b");
        assert!(clean_path("../x").is_err());
        assert!(clean_path("a/../../x").is_err());
        assert!(clean_path("/etc/passwd").is_err());
        assert_eq!(
            link_target("abc/layer.tar", "../def/layer.tar").unwrap(),
            "def/layer.tar"
        );
        assert!(link_target("abc/layer.tar", "../../etc/passwd").is_err());
        assert!(link_target("abc/layer.tar", "/etc/passwd").is_err());
    }
}
