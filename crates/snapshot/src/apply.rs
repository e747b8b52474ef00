//! Applying a layer tar to a directory, safely.
//!
//! The rules, and why:
//! - Paths are cleaned lexically; an entry whose path climbs above the root with `..` is an
//!   error (Docker's "invalid path"), a leading `/` is stripped.
//! - Every parent directory is resolved inside the destination ([`crate::fsutil`]), and the
//!   entry itself is created with `*at` calls on that parent that never follow a symlink in
//!   the last component: a symlink planted by the layer (`x -> /etc`) can redirect a later
//!   entry (`x/passwd`) only to another place inside the destination
//!   (CVE-2014-6407, CVE-2021-32760).
//! - Hard links must name a file already extracted from this layer, resolved the same way.
//! - Device nodes are refused unless [`ApplyOptions::allow_devices`]; fifos are fine.
//! - Ownership is numeric; nothing is looked up in the image's or the host's user database
//!   (CVE-2019-14271). A uid/gid that does not fit, or is `-1`, is refused rather than
//!   wrapped (CVE-2024-40635).
//! - Only `user.*` and `security.capability` xattrs are kept; `trusted.overlay.*` in a tar
//!   would let a layer forge overlayfs metadata.
//! - The uncompressed stream is metered as it is produced ([`crate::stream`]): size,
//!   compression ratio, entry count and the bytes of headers between two entries are all
//!   bounded, so bombs stop early (CVE-2017-14992).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use berth_content::Digest;
use rustix::fs::Timespec;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::fsutil::{clear_dir, mkdir_all_in, open_dir_in, open_root, remove_all_at};
use crate::stream::{self, BUF_SIZE, Compression, GuardedStream, Meter, Tripped};

/// Bytes the tar parser may read between two entries (long names, PAX records, padding).
/// Go's archive/tar caps such headers at 1 MiB; the rest is read-ahead slack.
pub(crate) const HEADER_BUDGET: u64 = 2 << 20;

/// The longest path accepted, like Linux's PATH_MAX.
const MAX_PATH: usize = 4096;

/// The overlayfs xattr that makes an upper directory hide the lower ones' contents.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

/// How `.wh.` entries are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// The destination is an overlayfs upper (or lower) directory: a whiteout becomes a
    /// 0:0 character device, an opaque marker the `trusted.overlay.opaque=y` xattr.
    #[default]
    Overlay,
    /// The destination already holds the lower layers' files (a flattened root): whiteouts
    /// delete them.
    Delete,
}

/// Options of [`apply_layer`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How whiteouts are represented.
    pub whiteouts: WhiteoutMode,
    /// Create character and block devices (off by default: image layers have no business
    /// shipping them, and a device node with the host's numbers is a way out).
    pub allow_devices: bool,
    /// Give entries the tar's numeric uid/gid (needs CAP_CHOWN).
    pub same_owner: bool,
    /// Most uncompressed bytes read or written, whichever is larger.
    pub max_size: u64,
    /// Most uncompressed bytes per compressed byte (judged after the first 16 MiB).
    pub max_ratio: Option<u64>,
    /// Most tar entries.
    pub max_entries: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            allow_devices: false,
            same_owner: true,
            max_size: 64 << 30,
            max_ratio: None,
            max_entries: 4_000_000,
        }
    }
}

/// What [`apply_layer`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// SHA-256 of the uncompressed tar stream: the layer's `diff_id`.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub size: u64,
    /// Bytes read from the caller's reader.
    pub compressed_size: u64,
    /// The compression detected.
    pub compression: Compression,
    /// Number of tar entries applied.
    pub entries: u64,
}

/// Why a layer could not be applied. Paths are the entry's path in the tar.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The stream is not a valid (compressed) tar, or ends early.
    #[error("read layer: {0}")]
    Read(#[source] io::Error),
    /// The layer is bigger than [`ApplyOptions::max_size`].
    #[error("layer expands beyond {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The layer is more compressed than [`ApplyOptions::max_ratio`] allows.
    #[error("layer expands more than {ratio} times its compressed size")]
    Ratio {
        /// The limit.
        ratio: u64,
    },
    /// The layer has more than [`ApplyOptions::max_entries`] entries.
    #[error("layer has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// Long-name or PAX headers between two entries are implausibly large.
    #[error("layer tar headers between two entries exceed {limit} bytes")]
    HeadersTooLarge {
        /// The limit.
        limit: u64,
    },
    /// An entry's path is unusable (climbs out with `..`, too long, …).
    #[error("invalid path {path:?} in layer: {reason}")]
    InvalidPath {
        /// The path as found in the tar.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A hard link's target is outside the layer or missing.
    #[error("invalid hard link {path:?} -> {target:?}: {reason}")]
    InvalidLink {
        /// The link.
        path: String,
        /// Its target as found in the tar.
        target: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A device node in a layer applied without [`ApplyOptions::allow_devices`].
    #[error("device node {path:?} refused: layers may not create devices")]
    DeviceRefused {
        /// The entry.
        path: String,
    },
    /// A tar entry type we do not apply.
    #[error("unsupported tar entry type {kind:?} at {path:?}")]
    UnsupportedType {
        /// The entry.
        path: String,
        /// The type byte.
        kind: char,
    },
    /// A header field is malformed or out of range.
    #[error("invalid header of {path:?}: {reason}")]
    InvalidHeader {
        /// The entry.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A file's data ends before its header's size.
    #[error("layer entry {path:?} is truncated: {got} of {expected} bytes")]
    Truncated {
        /// The entry.
        path: String,
        /// Bytes present.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// A filesystem operation failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The entry (or destination) it was done for.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(Errno) -> ApplyError + 'a {
    move |e| ApplyError::Io {
        op,
        path: path.to_owned(),
        source: e.into(),
    }
}

fn io_err2<'a>(op: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> ApplyError + 'a {
    move |source| ApplyError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Turns a read error into the limit that caused it, if one did.
fn read_error(meter: &Meter, e: io::Error) -> ApplyError {
    match meter.tripped.get() {
        Some(Tripped::Size(limit)) => ApplyError::TooLarge { limit },
        Some(Tripped::Ratio(ratio)) => ApplyError::Ratio { ratio },
        Some(Tripped::Headers(limit)) => ApplyError::HeadersTooLarge { limit },
        None => ApplyError::Read(e),
    }
}

/// Applies a layer (plain, gzip or zstd tar; detected from its first bytes) to `dest`,
/// streaming, and returns its `diff_id` and sizes. See the module docs for the safety rules.
/// On error, `dest` holds a partial layer and should be discarded.
pub fn apply_layer<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<LayerStats, ApplyError> {
    let dest_str = dest.display().to_string();
    let root = open_root(dest).map_err(io_err2("open destination", &dest_str))?;
    let meter = Rc::new(Meter::default());
    meter.header_fence.set(u64::MAX);
    let (compression, guarded) = stream::open(reader, meter.clone(), opts.max_size, opts.max_ratio)
        .map_err(|e| read_error(&meter, e))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(BUF_SIZE, guarded));
    let mut applier = Applier::new(root, opts);
    {
        let mut entries = archive.entries().map_err(|e| read_error(&meter, e))?;
        loop {
            meter
                .header_fence
                .set(meter.uncompressed.get().saturating_add(HEADER_BUDGET));
            let next = entries.next();
            meter.header_fence.set(u64::MAX);
            let Some(entry) = next else { break };
            let mut entry = entry.map_err(|e| read_error(&meter, e))?;
            applier.entry(&mut entry, &meter)?;
            // Read what the entry did not consume (directory payloads, skipped entries)
            // now, so the next header read stays within its budget.
            io::copy(&mut entry, &mut io::sink()).map_err(|e| read_error(&meter, e))?;
        }
    }
    // The diff_id covers the whole stream, including the end-of-archive blocks and any
    // padding after them; reading to the end also makes gzip check its trailer.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| read_error(&meter, e))?;
    let diff_id = finish_digest(rest.into_inner());
    applier.finish()?;
    Ok(LayerStats {
        diff_id,
        size: meter.uncompressed.get(),
        compressed_size: meter.compressed.get(),
        compression,
        entries: applier.entries,
    })
}

fn finish_digest(mut s: GuardedStream<'_>) -> Digest {
    s.finish().unwrap_or_else(|| Digest::sha256_of(b""))
}

/// Lexically cleans a tar path into components: drops empty and `.` components and a
/// leading `/`, resolves `..` against earlier components, and refuses a path that climbs
/// above the root.
pub(crate) fn clean_path(raw: &[u8]) -> Result<Vec<OsString>, &'static str> {
    if raw.len() > MAX_PATH {
        return Err("longer than PATH_MAX");
    }
    if raw.contains(&0) {
        return Err("contains a NUL byte");
    }
    let mut out: Vec<OsString> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("climbs out of the layer with ..");
                }
            }
            _ => out.push(OsStr::from_bytes(c).to_owned()),
        }
    }
    Ok(out)
}

/// Metadata applied to an entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<Meta, ApplyError> {
    let bad = |reason: String| ApplyError::InvalidHeader {
        path: path.to_owned(),
        reason,
    };
    let h = entry.header();
    let old = h.as_old();
    let mode = numeric(h.mode().map(u64::from), &old.mode).map_err(&bad)? as u32 & 0o7777;
    // (uid_t)-1 means "leave unchanged" to chown, which would leave the file root-owned.
    let id = |v: u64, what: &str| {
        u32::try_from(v)
            .ok()
            .filter(|&v| v != u32::MAX)
            .ok_or_else(|| bad(format!("{what} {v} out of range")))
    };
    let uid = id(numeric(h.uid(), &old.uid).map_err(&bad)?, "uid")?;
    let gid = id(numeric(h.gid(), &old.gid).map_err(&bad)?, "gid")?;
    let secs = numeric(h.mtime(), &old.mtime).map_err(&bad)?;
    let mut mtime = Timespec {
        tv_sec: i64::try_from(secs).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(|e| bad(e.to_string()))? {
        for ext in pax {
            let ext = ext.map_err(|e| bad(e.to_string()))?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    mtime = t;
                }
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.")
                && (name.starts_with(b"user.") || name == b"security.capability")
            {
                xattrs.push((
                    OsStr::from_bytes(name).to_owned(),
                    ext.value_bytes().to_vec(),
                ));
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A numeric header field; an empty one (all NULs or spaces, as some writers leave uid,
/// gid or mtime) reads as 0, as Go's archive/tar does.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> Result<u64, String> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a PAX time (`1700000000.123456789`); returns None if malformed.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = sec.parse().ok()?;
    if frac.is_empty() {
        return Some(Timespec { tv_sec, tv_nsec: 0 });
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || tv_sec < 0 {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    Some(Timespec {
        tv_sec,
        tv_nsec: digits.parse().ok()?,
    })
}

struct Applier<'o> {
    root: OwnedFd,
    opts: &'o ApplyOptions,
    /// Directory mtimes, set at the end because adding children changes them.
    dir_times: Vec<(Vec<OsString>, Timestamps)>,
    /// Paths this layer created (only tracked in [`WhiteoutMode::Delete`]): whiteouts apply
    /// to lower layers only, never to the layer's own files.
    created: HashSet<Vec<OsString>>,
    /// The last parent directory resolved, reused by its siblings.
    parent_cache: Option<(Vec<OsString>, Rc<OwnedFd>)>,
    written: u64,
    entries: u64,
    buf: Vec<u8>,
}

impl<'o> Applier<'o> {
    fn new(root: OwnedFd, opts: &'o ApplyOptions) -> Self {
        Applier {
            root,
            opts,
            dir_times: Vec::new(),
            created: HashSet::new(),
            parent_cache: None,
            written: 0,
            entries: 0,
            buf: vec![0; BUF_SIZE],
        }
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        meter: &Meter,
    ) -> Result<(), ApplyError> {
        self.entries += 1;
        if self.entries > self.opts.max_entries {
            return Err(ApplyError::TooManyEntries {
                limit: self.opts.max_entries,
            });
        }
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8_lossy(&raw).into_owned();
        let comps = clean_path(&raw).map_err(|reason| ApplyError::InvalidPath {
            path: path.clone(),
            reason,
        })?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        if let Some((last, dir)) = comps.split_last() {
            let last = last.as_bytes();
            if last == WHITEOUT_OPAQUE {
                return self.opaque(dir, &path);
            }
            // Other AUFS metadata (`.wh..wh.plnk/…`, `.wh..wh.aufs`) is not content.
            if comps
                .iter()
                .any(|c| c.as_bytes().starts_with(WHITEOUT_META_PREFIX))
            {
                return Ok(());
            }
            if let Some(name) = last.strip_prefix(WHITEOUT_PREFIX) {
                let meta = read_meta(entry, &path)?;
                return self.whiteout(dir, OsStr::from_bytes(name), &meta, &path);
            }
        }
        let meta = read_meta(entry, &path)?;
        use tar::EntryType as T;
        match kind {
            T::Directory => self.directory(&comps, &meta, &path),
            T::Regular | T::Continuous | T::GNUSparse => {
                self.regular(&comps, &meta, &path, entry, meter)
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.symlink(&comps, &target, &meta, &path)
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                self.hardlink(&comps, &target, &path)
            }
            T::Char | T::Block => {
                if !self.opts.allow_devices {
                    return Err(ApplyError::DeviceRefused { path });
                }
                let h = entry.header();
                let bad = |e: io::Error| ApplyError::InvalidHeader {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                let major = h.device_major().map_err(bad)?.unwrap_or(0);
                let minor = h.device_minor().map_err(bad)?.unwrap_or(0);
                let ft = if kind == T::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                self.node(&comps, ft, rustix::fs::makedev(major, minor), &meta, &path)
            }
            T::Fifo => self.node(&comps, FileType::Fifo, 0, &meta, &path),
            other => Err(ApplyError::UnsupportedType {
                path,
                kind: other.as_byte() as char,
            }),
        }
    }

    /// Resolves (creating if needed) the parent directory of `comps` inside the root and
    /// returns it with the entry's name.
    fn parent<'c>(
        &mut self,
        comps: &'c [OsString],
        path: &str,
    ) -> Result<(Rc<OwnedFd>, &'c OsStr), ApplyError> {
        let Some((name, dirs)) = comps.split_last() else {
            return Err(ApplyError::InvalidPath {
                path: path.to_owned(),
                reason: "names the layer root",
            });
        };
        if let Some((cached, fd)) = &self.parent_cache
            && cached.as_slice() == dirs
        {
            return Ok((fd.clone(), name));
        }
        let fd = Rc::new(
            mkdir_all_in(self.root.as_fd(), dirs).map_err(io_err2("create parent of", path))?,
        );
        self.parent_cache = Some((dirs.to_vec(), fd.clone()));
        Ok((fd, name))
    }

    /// Makes room for a new entry `name` in `parent`: removes whatever is there, except an
    /// existing directory when a directory is wanted. Returns whether a directory was kept.
    fn clear_slot(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        want_dir: bool,
        path: &str,
    ) -> Result<bool, ApplyError> {
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err("stat", path)(e)),
            Ok(st) => {
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if is_dir && want_dir {
                    return Ok(true);
                }
                if is_dir {
                    // The cached parent may be inside what is being removed.
                    self.parent_cache = None;
                }
                remove_all_at(parent, name).map_err(io_err2("replace", path))?;
                Ok(false)
            }
        }
    }

    fn created(&mut self, comps: &[OsString]) {
        if self.opts.whiteouts == WhiteoutMode::Delete {
            self.created.insert(comps.to_vec());
        }
    }

    fn directory(&mut self, comps: &[OsString], meta: &Meta, path: &str) -> Result<(), ApplyError> {
        let fd = if comps.is_empty() {
            rustix::io::fcntl_dupfd_cloexec(&self.root, 0).map_err(io_err("dup", path))?
        } else {
            let (parent, name) = self.parent(comps, path)?;
            if !self.clear_slot(parent.as_fd(), name, true, path)? {
                rustix::fs::mkdirat(&*parent, name, Mode::from_raw_mode(0o700))
                    .map_err(io_err("mkdir", path))?;
            }
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            rustix::fs::openat(&*parent, name, flags, Mode::empty())
                .map_err(io_err("open", path))?
        };
        self.set_meta(fd.as_fd(), meta, path)?;
        self.dir_times.push((comps.to_vec(), meta.times()));
        self.created(comps);
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        comps: &[OsString],
        meta: &Meta,
        path: &str,
        entry: &mut tar::Entry<'_, R>,
        meter: &Meter,
    ) -> Result<(), ApplyError> {
        let (parent, name) = self.parent(comps, path)?;
        self.clear_slot(parent.as_fd(), name, false, path)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*parent, name, flags, Mode::from_raw_mode(0o600))
            .map_err(io_err("create", path))?;
        let mut file = File::from(fd);
        let expected = entry.size();
        let mut got = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(meter, e)),
            };
            got += n as u64;
            self.written += n as u64;
            if self.written > self.opts.max_size {
                return Err(ApplyError::TooLarge {
                    limit: self.opts.max_size,
                });
            }
            file.write_all(&self.buf[..n])
                .map_err(io_err2("write", path))?;
        }
        if got != expected {
            return Err(ApplyError::Truncated {
                path: path.to_owned(),
                got,
                expected,
            });
        }
        self.set_meta(file.as_fd(), meta, path)?;
        rustix::fs::futimens(&file, &meta.times()).map_err(io_err("set times of", path))?;
        self.created(comps);
        Ok(())
    }

    fn symlink(
        &mut self,
        comps: &[OsString],
        target: &[u8],
        meta: &Meta,
        path: &str,
    ) -> Result<(), ApplyError> {
        if target.is_empty() || target.contains(&0) {
            return Err(ApplyError::InvalidHeader {
                path: path.to_owned(),
                reason: "empty or NUL-containing symlink target".into(),
            });
        }
        let (parent, name) = self.parent(comps, path)?;
        self.clear_slot(parent.as_fd(), name, false, path)?;
        // The target is stored as-is; it is only ever interpreted later, inside the
        // container's root, or by resolvers scoped to the layer.
        rustix::fs::symlinkat(OsStr::from_bytes(target), &*parent, name)
            .map_err(io_err("symlink", path))?;
        self.at_meta(parent.as_fd(), name, meta, false, path)?;
        self.created(comps);
        Ok(())
    }

    fn hardlink(
        &mut self,
        comps: &[OsString],
        target: &[u8],
        path: &str,
    ) -> Result<(), ApplyError> {
        let target_str = String::from_utf8_lossy(target).into_owned();
        let invalid = |reason| ApplyError::InvalidLink {
            path: path.to_owned(),
            target: target_str.clone(),
            reason,
        };
        let tcomps = clean_path(target).map_err(invalid)?;
        let Some((tname, tdirs)) = tcomps.split_last() else {
            return Err(invalid("target is the layer root"));
        };
        let tparent = open_dir_in(self.root.as_fd(), tdirs)
            .map_err(|_| invalid("target not found in the layer"))?;
        match rustix::fs::statat(&tparent, tname.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(invalid("target is a directory"));
            }
            Ok(_) => {}
            Err(_) => return Err(invalid("target not found in the layer")),
        }
        let (parent, name) = self.parent(comps, path)?;
        if comps == tcomps.as_slice() {
            return Ok(()); // a link to itself: already there
        }
        self.clear_slot(parent.as_fd(), name, false, path)?;
        // No AT_SYMLINK_FOLLOW: if the target is a symlink, the link is to the symlink.
        rustix::fs::linkat(
            &tparent,
            tname.as_os_str(),
            &*parent,
            name,
            AtFlags::empty(),
        )
        .map_err(io_err("hard link", path))?;
        self.created(comps);
        Ok(())
    }

    fn node(
        &mut self,
        comps: &[OsString],
        ft: FileType,
        dev: u64,
        meta: &Meta,
        path: &str,
    ) -> Result<(), ApplyError> {
        let (parent, name) = self.parent(comps, path)?;
        self.clear_slot(parent.as_fd(), name, false, path)?;
        rustix::fs::mknodat(&*parent, name, ft, Mode::from_raw_mode(0o600), dev)
            .map_err(io_err("mknod", path))?;
        self.at_meta(parent.as_fd(), name, meta, true, path)?;
        self.created(comps);
        Ok(())
    }

    /// Owner, mode and xattrs through an fd (regular files and directories). Owner first:
    /// chown clears setuid bits and file capabilities.
    fn set_meta(&self, fd: BorrowedFd<'_>, meta: &Meta, path: &str) -> Result<(), ApplyError> {
        if self.opts.same_owner {
            rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(io_err("chown", path))?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(io_err("chmod", path))?;
        for (key, value) in &meta.xattrs {
            match rustix::fs::fsetxattr(fd, key.as_os_str(), value, XattrFlags::empty()) {
                Ok(()) | Err(Errno::NOTSUP) => {}
                Err(e) => return Err(io_err("set xattr on", path)(e)),
            }
        }
        Ok(())
    }

    /// Owner, mode and times by name, never following a symlink (symlinks, devices, fifos).
    fn at_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        chmod: bool,
        path: &str,
    ) -> Result<(), ApplyError> {
        if self.opts.same_owner {
            rustix::fs::chownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(io_err("chown", path))?;
        }
        if chmod {
            // The name was just created by mknodat in a directory only we write to, so it
            // is not a symlink; plain fchmodat cannot take AT_SYMLINK_NOFOLLOW before 6.6.
            rustix::fs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(io_err("chmod", path))?;
        }
        rustix::fs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err("set times of", path))?;
        Ok(())
    }

    fn whiteout(
        &mut self,
        dir: &[OsString],
        name: &OsStr,
        meta: &Meta,
        path: &str,
    ) -> Result<(), ApplyError> {
        if name.is_empty() || name == "." || name == ".." {
            return Err(ApplyError::InvalidPath {
                path: path.to_owned(),
                reason: "whiteout of an invalid name",
            });
        }
        let mut target = dir.to_vec();
        target.push(name.to_owned());
        match self.opts.whiteouts {
            WhiteoutMode::Overlay => {
                let d = mkdir_all_in(self.root.as_fd(), dir)
                    .map_err(io_err2("create parent of", path))?;
                match rustix::fs::statat(&d, name, AtFlags::SYMLINK_NOFOLLOW) {
                    // Whiteouts only hide lower layers; this layer's own entry stays.
                    Ok(_) => return Ok(()),
                    Err(Errno::NOENT) => {}
                    Err(e) => return Err(io_err("stat", path)(e)),
                }
                rustix::fs::mknodat(&d, name, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(io_err("create whiteout", path))?;
                // The entry's time, so that a diff of this directory reproduces the layer.
                rustix::fs::utimensat(&d, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("set times of", path))?;
            }
            WhiteoutMode::Delete => {
                if self.created.contains(&target) {
                    return Ok(());
                }
                let d = match open_dir_in(self.root.as_fd(), dir) {
                    Ok(d) => d,
                    Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                        return Ok(());
                    }
                    Err(e) => return Err(io_err2("open parent of", path)(e)),
                };
                self.parent_cache = None;
                remove_all_at(d.as_fd(), name).map_err(io_err2("apply whiteout", path))?;
            }
        }
        Ok(())
    }

    fn opaque(&mut self, dir: &[OsString], path: &str) -> Result<(), ApplyError> {
        match self.opts.whiteouts {
            WhiteoutMode::Overlay => {
                let d = mkdir_all_in(self.root.as_fd(), dir).map_err(io_err2("create", path))?;
                rustix::fs::fsetxattr(&d, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(io_err("mark opaque", path))?;
            }
            WhiteoutMode::Delete => {
                let d = match open_dir_in(self.root.as_fd(), dir) {
                    Ok(d) => d,
                    Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                        return Ok(());
                    }
                    Err(e) => return Err(io_err2("open", path)(e)),
                };
                self.parent_cache = None;
                let created = &self.created;
                clear_dir(d.as_fd(), |name| {
                    let mut p = dir.to_vec();
                    p.push(name.to_owned());
                    !created.contains(&p)
                })
                .map_err(io_err2("apply opaque whiteout", path))?;
            }
        }
        Ok(())
    }

    /// Sets directory times last, once nothing more is added to them.
    fn finish(&mut self) -> Result<(), ApplyError> {
        for (comps, times) in &self.dir_times {
            let Ok(fd) = open_dir_in(self.root.as_fd(), comps) else {
                continue; // removed or replaced later in the layer
            };
            let path = crate::fsutil::join(comps).display().to_string();
            rustix::fs::futimens(&fd, times).map_err(io_err("set times of", &path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn c(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path(b"/etc/passwd").unwrap(), c(&["etc", "passwd"]));
        assert_eq!(clean_path(b"./a//b/./c/").unwrap(), c(&["a", "b", "c"]));
        assert_eq!(clean_path(b"a/../b").unwrap(), c(&["b"]));
        assert_eq!(clean_path(b"./").unwrap(), c(&[]));
        assert!(clean_path(b"../x").is_err());
        assert!(clean_path(b"a/../../x").is_err());
        assert!(clean_path(b"/../x").is_err());
        assert!(clean_path(&[b'a'; 5000]).is_err());
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 500_000_000));
        let t = parse_pax_time(b"12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        assert!(parse_pax_time(b"x").is_none());
    }
}
