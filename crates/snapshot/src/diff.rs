//! Turning an overlayfs upper directory back into a layer tar (for `docker commit` and the
//! builder): the 0:0 character devices overlayfs leaves for deleted files become `.wh.<name>`
//! entries, and an opaque directory (`trusted.overlay.opaque=y`) is followed by a
//! `.wh..wh..opq` entry, the OCI layer format. The walk is sorted, so the same tree always
//! gives the same bytes (and the same `diff_id`).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::apply::OVERLAY_OPAQUE_XATTR;
use crate::fsutil::{list_dir, open_root};

/// What [`write_diff`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Entries written, whiteouts included.
    pub entries: u64,
    /// Whiteout and opaque-marker entries among them.
    pub whiteouts: u64,
}

/// Why a diff could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Reading the upper directory or writing the tar failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path inside the upper directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DiffError + 'a {
    move |source| DiffError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn errno<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> DiffError + 'a {
    move |e| DiffError::Io {
        op,
        path: path.to_owned(),
        source: e.into(),
    }
}

/// Writes the layer tar for `upper` to `out` and returns `out` with what was written. The
/// upper directory should not change meanwhile (commit a paused or stopped container).
pub fn write_diff<W: Write>(upper: &Path, out: W) -> Result<(W, DiffStats), DiffError> {
    write_diff_except(upper, out, &|_| false)
}

/// [`write_diff`] without the entries (and what is under them) for which `skip` says yes,
/// given their path relative to `upper` (`docker commit` leaves out the mount points the
/// runtime created).
pub fn write_diff_except<W: Write>(
    upper: &Path,
    out: W,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(W, DiffStats), DiffError> {
    let root = open_root(upper).map_err(io_err("open", upper))?;
    let mut w = DiffWriter {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        stats: DiffStats::default(),
        skip,
    };
    w.walk(root.as_fd(), Path::new(""))?;
    let out = w.tar.into_inner().map_err(io_err("finish tar", upper))?;
    Ok((out, w.stats))
}

struct DiffWriter<'s, W: Write> {
    tar: tar::Builder<W>,
    skip: &'s dyn Fn(&Path) -> bool,
    /// First path seen for each (dev, inode) with more than one link.
    links: HashMap<(u64, u64), PathBuf>,
    stats: DiffStats,
}

impl<W: Write> DiffWriter<'_, W> {
    fn walk(&mut self, dir: BorrowedFd<'_>, rel: &Path) -> Result<(), DiffError> {
        for name in list_dir(dir).map_err(io_err("list", rel))? {
            let path = rel.join(&name);
            if (self.skip)(&path) {
                continue;
            }
            let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno("stat", &path))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::CharacterDevice if st.st_rdev == 0 => {
                    let mut wh = OsString::from(".wh.");
                    wh.push(&name);
                    self.marker(&rel.join(wh), &st)?;
                }
                FileType::Directory => {
                    let flags =
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let fd = rustix::fs::openat(dir, &name, flags, Mode::empty())
                        .map_err(errno("open", &path))?;
                    let mut h = header(&st, tar::EntryType::Directory);
                    self.append_xattrs(fd.as_fd(), &path)?;
                    self.append(&mut h, &path, io::empty())?;
                    if is_opaque(fd.as_fd()) {
                        self.marker(&path.join(".wh..wh..opq"), &st)?;
                    }
                    self.walk(fd.as_fd(), &path)?;
                }
                FileType::RegularFile => {
                    if st.st_nlink > 1 {
                        let key = (st.st_dev, st.st_ino);
                        if let Some(first) = self.links.get(&key).cloned() {
                            let mut h = header(&st, tar::EntryType::Link);
                            self.tar
                                .append_link(&mut h, &path, &first)
                                .map_err(io_err("write", &path))?;
                            self.stats.entries += 1;
                            continue;
                        }
                        self.links.insert(key, path.clone());
                    }
                    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let fd = rustix::fs::openat(dir, &name, flags, Mode::empty())
                        .map_err(errno("open", &path))?;
                    self.append_xattrs(fd.as_fd(), &path)?;
                    let mut h = header(&st, tar::EntryType::Regular);
                    h.set_size(st.st_size as u64);
                    self.append(&mut h, &path, File::from(fd))?;
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(dir, &name, Vec::new())
                        .map_err(errno("readlink", &path))?;
                    let mut h = header(&st, tar::EntryType::Symlink);
                    let target = OsStr::from_bytes(target.as_bytes());
                    self.tar
                        .append_link(&mut h, &path, target)
                        .map_err(io_err("write", &path))?;
                    self.stats.entries += 1;
                }
                ft @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                    let kind = match ft {
                        FileType::CharacterDevice => tar::EntryType::Char,
                        FileType::BlockDevice => tar::EntryType::Block,
                        _ => tar::EntryType::Fifo,
                    };
                    let mut h = header(&st, kind);
                    if ft != FileType::Fifo {
                        let bad = io_err("device numbers of", &path);
                        h.set_device_major(rustix::fs::major(st.st_rdev))
                            .map_err(bad)?;
                        h.set_device_minor(rustix::fs::minor(st.st_rdev))
                            .map_err(io_err("device numbers of", &path))?;
                    }
                    self.append(&mut h, &path, io::empty())?;
                }
                // Sockets are not layer content (Docker skips them too).
                _ => {}
            }
        }
        Ok(())
    }

    fn append(
        &mut self,
        h: &mut tar::Header,
        path: &Path,
        data: impl io::Read,
    ) -> Result<(), DiffError> {
        self.tar
            .append_data(h, path, data)
            .map_err(io_err("write", path))?;
        self.stats.entries += 1;
        Ok(())
    }

    /// A whiteout or opaque marker: an empty regular file.
    fn marker(&mut self, path: &Path, st: &Stat) -> Result<(), DiffError> {
        let mut h = header(st, tar::EntryType::Regular);
        h.set_mode(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        self.append(&mut h, path, io::empty())?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// Emits a PAX header carrying the xattrs [`crate::apply_layer`] keeps, if any.
    fn append_xattrs(&mut self, fd: BorrowedFd<'_>, path: &Path) -> Result<(), DiffError> {
        let xattrs = read_xattrs(fd).map_err(errno("read xattrs of", path))?;
        if xattrs.is_empty() {
            return Ok(());
        }
        let mut data = Vec::new();
        for (name, value) in &xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax_record(&mut data, &key, value);
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // The name of a PAX header is informational; keep it short so it always fits.
        h.set_path("PaxHeader").map_err(io_err("write", path))?;
        h.set_cksum();
        self.tar
            .append(&h, data.as_slice())
            .map_err(io_err("write", path))?;
        Ok(())
    }
}

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

fn is_opaque(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8];
    // Only "y" means opaque; kernels ≥ 6.7 also write "x" ("may hold whiteouts").
    matches!(rustix::fs::fgetxattr(fd, OVERLAY_OPAQUE_XATTR, &mut buf), Ok(n) if &buf[..n] == b"y")
}

/// An xattr's name and value.
type Xattr = (Vec<u8>, Vec<u8>);

/// The `user.*` and `security.capability` xattrs of a file, sorted by name.
fn read_xattrs(fd: BorrowedFd<'_>) -> Result<Vec<Xattr>, Errno> {
    let size = match rustix::fs::flistxattr_query(fd) {
        Ok(0) | Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Ok(n) => n,
        Err(e) => return Err(e),
    };
    let mut names = vec![0u8; size];
    let n = rustix::fs::flistxattr(fd, &mut names[..])?;
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if !(name.starts_with(b"user.") || name == b"security.capability") {
            continue;
        }
        let key = OsStr::from_bytes(name);
        let len = rustix::fs::fgetxattr_query(fd, key)?;
        let mut value = vec![0u8; len];
        let len = rustix::fs::fgetxattr(fd, key, &mut value[..])?;
        value.truncate(len);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record
/// including its own digits.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths() {
        let mut v = Vec::new();
        pax_record(&mut v, b"a", b"b");
        assert_eq!(v, b"6 a=b\n");
        let mut v = Vec::new();
        pax_record(&mut v, b"key", &[b'x'; 93]);
        assert_eq!(v.len(), 102);
        assert!(v.starts_with(b"102 "));
    }
}
