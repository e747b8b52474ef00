//! The build context: a directory (the berth CLI's) or a tar stream (the API's) unpacked
//! into the builder's scratch space, with its `.dockerignore`.
//!
//! Nothing outside the context is ever read: tar entries with `..` or absolute link targets
//! are refused at unpack time, and COPY sources resolve with [`Escape::Forbid`], so a symlink
//! leading out of the context is an error rather than a read of the host's files.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use berth_dockerfile::IgnoreMatcher;
use sha2::{Digest as _, Sha256};

use crate::error::{BuildError, Result};
use crate::scope_path::{Escape, ScopeError, resolve};

/// Bounds on an uploaded context.
#[derive(Debug, Clone, Copy)]
pub struct ContextLimits {
    /// Most bytes of file content (after decompression).
    pub max_bytes: u64,
    /// Most tar entries.
    pub max_entries: u64,
}

impl Default for ContextLimits {
    fn default() -> Self {
        ContextLimits {
            max_bytes: 8 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// A build context on disk.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    ignore: IgnoreMatcher,
    /// Removed on drop (an unpacked upload); false for a user's directory.
    owned: bool,
    /// How links that leave the root are treated: an error in a build context, clamped to
    /// the root in an image's file system (`COPY --from`).
    escape: Escape,
    /// sha256 of each regular file unpacked from an uploaded tar, by relative path, taken
    /// while it streamed in (so a cached rebuild does not read the context twice).
    digests: HashMap<String, [u8; 32]>,
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.owned {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// One COPY source found in the context.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The path as the context names it (`/`-separated, relative).
    pub rel: String,
    /// The resolved path on disk.
    pub path: PathBuf,
    /// Whether it is a directory.
    pub is_dir: bool,
}

fn outside(src: &str) -> BuildError {
    BuildError::Source(format!(
        "forbidden path outside the build context: {src} ()"
    ))
}

fn not_found(src: &str) -> BuildError {
    BuildError::Source(format!(
        "file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
    ))
}

impl Context {
    /// A context that is the directory `root` (left in place on drop).
    pub fn from_dir(root: &Path) -> Result<Context> {
        let root = fs::canonicalize(root).map_err(BuildError::io("open context", root))?;
        let ignore = read_ignore(&root)?;
        Ok(Context {
            root,
            ignore,
            owned: false,
            escape: Escape::Forbid,
            digests: HashMap::new(),
        })
    }

    /// An image's (or stage's) mounted file system as the source of `COPY --from`: no
    /// `.dockerignore`, links resolved as the image sees them.
    pub(crate) fn image_root(root: &Path) -> Context {
        Context {
            root: root.to_path_buf(),
            ignore: IgnoreMatcher::default(),
            owned: false,
            escape: Escape::Clamp,
            digests: HashMap::new(),
        }
    }

    /// Unpacks a tar stream (plain or gzip) into `dir`, which must not exist; `dir` is
    /// removed when the context is dropped (and on failure).
    pub fn from_tar(input: &mut dyn Read, dir: &Path, limits: ContextLimits) -> Result<Context> {
        Self::from_tar_cached(input, dir, limits, None)
    }

    /// [`Context::from_tar`] with the builder's [`FileCache`]: a file that arrives with the
    /// bytes of a cached one (compared byte by byte as it streams in) is linked, not
    /// written, and its digest is not computed again.
    pub fn from_tar_cached(
        input: &mut dyn Read,
        dir: &Path,
        limits: ContextLimits,
        files: Option<&FileCache>,
    ) -> Result<Context> {
        fs::create_dir_all(dir).map_err(BuildError::io("create context", dir))?;
        let mut ctx = Context {
            root: dir.to_path_buf(),
            ignore: IgnoreMatcher::default(),
            owned: true,
            escape: Escape::Forbid,
            digests: HashMap::new(),
        };
        ctx.digests = unpack(input, dir, limits, files)?;
        ctx.root = fs::canonicalize(dir).map_err(BuildError::io("open context", dir))?;
        ctx.ignore = read_ignore(&ctx.root)?;
        Ok(ctx)
    }

    /// The same files with `patterns` (`COPY --exclude`, matched like `.dockerignore` from
    /// the root) excluded as well; a view that never removes anything on drop.
    pub(crate) fn excluding(&self, patterns: &[String]) -> Result<Context> {
        let ignore = IgnoreMatcher::new(self.ignore.patterns().chain(patterns.iter().cloned()))
            .map_err(|e| BuildError::Invalid(format!("invalid --exclude pattern: {e}")))?;
        Ok(Context {
            root: self.root.clone(),
            ignore,
            owned: false,
            escape: self.escape,
            digests: self.digests.clone(),
        })
    }

    /// The context's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads a file of the context (the Dockerfile), at most `max` bytes.
    pub fn read_file(&self, rel: &str, max: usize) -> Result<Vec<u8>> {
        let path = resolve(&self.root, rel, Escape::Forbid).map_err(|_| outside(rel))?;
        let f = fs::File::open(&path).map_err(|_| {
            BuildError::Invalid(format!(
                "Cannot locate specified Dockerfile: {}",
                rel.trim_start_matches('/')
            ))
        })?;
        let mut data = Vec::new();
        f.take(max as u64 + 1)
            .read_to_end(&mut data)
            .map_err(BuildError::io("read", &path))?;
        if data.len() > max {
            return Err(BuildError::Invalid(format!(
                "the Dockerfile {rel} is larger than {max} bytes"
            )));
        }
        Ok(data)
    }

    /// Whether `.dockerignore` excludes `rel`.
    pub(crate) fn excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && self.ignore.matches(rel)
    }

    /// Whether a walk must enter the directory `rel`.
    pub(crate) fn descend(&self, rel: &str) -> bool {
        rel.is_empty() || self.ignore.should_descend(rel)
    }

    /// The sources one COPY/ADD argument names: a path (symlinks followed inside the
    /// context), or a wildcard pattern matched against every path of the context.
    pub(crate) fn sources(&self, src: &str) -> Result<Vec<Source>> {
        let clean = clean_rel(src).ok_or_else(|| outside(src))?;
        if src.contains(['*', '?', '[']) {
            return self.glob(src, &clean);
        }
        let path = resolve(&self.root, &clean, self.escape).map_err(|e| match e {
            ScopeError::Outside => outside(src),
            ScopeError::Loop => {
                BuildError::Source(format!("too many levels of symbolic links: {src}"))
            }
        })?;
        let rel = path
            .strip_prefix(&self.root)
            .map_err(|_| outside(src))?
            .to_string_lossy()
            .into_owned();
        if self.excluded(&rel) {
            return Err(not_found(src));
        }
        let meta = fs::metadata(&path).map_err(|_| not_found(src))?;
        Ok(vec![Source {
            rel,
            path,
            is_dir: meta.is_dir(),
        }])
    }

    fn glob(&self, src: &str, pattern: &str) -> Result<Vec<Source>> {
        let matcher = IgnoreMatcher::new([pattern])
            .map_err(|e| BuildError::Invalid(format!("invalid pattern {src:?}: {e}")))?;
        let mut out = Vec::new();
        let mut budget = 1_000_000usize;
        self.walk_glob(&self.root.clone(), "", &matcher, &mut out, &mut budget)?;
        if out.is_empty() {
            return Err(BuildError::Source(
                "no source files were specified".to_owned(),
            ));
        }
        Ok(out)
    }

    fn walk_glob(
        &self,
        dir: &Path,
        rel: &str,
        matcher: &IgnoreMatcher,
        out: &mut Vec<Source>,
        budget: &mut usize,
    ) -> Result<()> {
        for (name, path, meta) in sorted_entries(dir)? {
            *budget = budget.saturating_sub(1);
            if *budget == 0 {
                return Err(BuildError::Source(
                    "too many files in the build context".into(),
                ));
            }
            let child = join_rel(rel, &name);
            if self.excluded(&child) {
                continue;
            }
            if matcher.matches(&child) {
                out.push(Source {
                    rel: child,
                    is_dir: meta.is_dir(),
                    path,
                });
            } else if meta.is_dir() {
                self.walk_glob(&path, &child, matcher, out, budget)?;
            }
        }
        Ok(())
    }
}

/// `./a/../b/` → `b`; `None` when it climbs above the context.
pub(crate) fn clean_rel(src: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(src).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

pub(crate) fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

/// A directory's entries sorted by name, with their (not followed) metadata.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf, fs::Metadata)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(BuildError::io("read directory", dir))? {
        let entry = entry.map_err(BuildError::io("read directory", dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(BuildError::io("stat", &path))?;
        out.push((entry.file_name().to_string_lossy().into_owned(), path, meta));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn read_ignore(root: &Path) -> Result<IgnoreMatcher> {
    let path = root.join(".dockerignore");
    match fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => {
            let data = fs::read(&path).map_err(BuildError::io("read", &path))?;
            IgnoreMatcher::parse(&data)
                .map_err(|e| BuildError::Invalid(format!("parse .dockerignore: {e}")))
        }
        _ => Ok(IgnoreMatcher::default()),
    }
}

/// A reader that hashes what passes through it while armed (one tar entry's data).
struct HashTee<R> {
    inner: R,
    armed: Rc<RefCell<Option<Sha256>>>,
}

impl<R: Read> Read for HashTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.armed.borrow_mut().as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn unpack(
    input: &mut dyn Read,
    dir: &Path,
    limits: ContextLimits,
    files: Option<&FileCache>,
) -> Result<HashMap<String, [u8; 32]>> {
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let gzip = buffered
        .fill_buf()
        .map_err(|e| BuildError::Context(format!("read the build context: {e}")))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut head = Vec::with_capacity(512);
    (&mut reader)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| BuildError::Context(format!("read the build context: {e}")))?;
    let is_tar = head.len() == 512 && (&head[257..262] == b"ustar" || head.iter().all(|b| *b == 0));
    if !is_tar {
        // `docker build - < Dockerfile`: the body is the Dockerfile itself, no context.
        write_dockerfile(&head, &mut reader, dir)?;
        return Ok(HashMap::new());
    }
    let armed = Rc::new(RefCell::new(None));
    let mut digests = HashMap::new();
    let mut archive = tar::Archive::new(HashTee {
        inner: std::io::Cursor::new(head).chain(reader),
        armed: armed.clone(),
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let (mut bytes, mut count) = (0u64, 0u64);
    let bad = |e: std::io::Error| BuildError::Context(format!("invalid build context tar: {e}"));
    let mut entries = archive.entries().map_err(bad)?;
    let mut after_complete_entry = false;
    loop {
        let mut entry = match entries.next() {
            None => break,
            Some(Ok(e)) => e,
            // The docker CLI's stream for a Dockerfile outside the context (Go's
            // ReplaceFileTarWrapper) ends right after the last entry's data, with neither
            // its padding nor the end-of-archive blocks. Docker accepts that; so do we, but
            // only once the previous entry was read whole.
            Some(Err(e))
                if after_complete_entry && e.to_string() == "unexpected EOF during skip" =>
            {
                break;
            }
            Some(Err(e)) => return Err(bad(e)),
        };
        after_complete_entry = false;
        count += 1;
        bytes = bytes.saturating_add(entry.size());
        if count > limits.max_entries || bytes > limits.max_bytes {
            return Err(BuildError::Context(format!(
                "the build context is larger than the limit ({} bytes, {} files)",
                limits.max_bytes, limits.max_entries
            )));
        }
        let path = entry.path().map_err(bad)?.into_owned();
        check_entry_path(&path)?;
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let target = entry.link_name().map_err(bad)?.unwrap_or_default();
            check_entry_path(&target)?;
        }
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink() || kind.is_hard_link()) {
            // Devices and fifos cannot be COPY sources anyway.
            continue;
        }
        let rel = clean_rel(&path.to_string_lossy()).unwrap_or_default();
        let regular = kind.is_file();
        if regular
            && let Some(files) = files
            && let Some(parent) = plain_parent(dir, &rel)?
        {
            let digest = files.unpack_file(&mut entry, &parent, &rel)?;
            digests.insert(rel, digest);
            after_complete_entry = true;
            continue;
        }
        if regular {
            *armed.borrow_mut() = Some(Sha256::new());
        }
        // tar hands a regular entry's data to the file in one pass, exactly its bytes.
        let written = entry.unpack_in(dir).map_err(bad)?;
        let hashed = armed.borrow_mut().take();
        match hashed {
            Some(h) if regular && written => {
                digests.insert(rel, h.finalize().into());
            }
            _ => {
                digests.remove(&rel);
            }
        }
        after_complete_entry = true;
    }
    Ok(digests)
}

fn write_dockerfile(head: &[u8], rest: &mut dyn Read, dir: &Path) -> Result<()> {
    let max = berth_dockerfile::limits::MAX_DOCKERFILE_BYTES as u64;
    let mut data = head.to_vec();
    rest.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| BuildError::Context(format!("read the Dockerfile: {e}")))?;
    if data.len() as u64 > max {
        return Err(BuildError::Context(format!(
            "the build context is neither a tar archive nor a Dockerfile of at most {max} bytes"
        )));
    }
    let path = dir.join("Dockerfile");
    fs::write(&path, data).map_err(BuildError::io("write", &path))
}

fn check_entry_path(p: &Path) -> Result<()> {
    let bad = p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir));
    if bad {
        return Err(BuildError::Context(format!(
            "invalid build context tar: forbidden path outside the build context: {}",
            p.display()
        )));
    }
    Ok(())
}

/// Content and metadata checksum of sources (file contents, modes, sizes, link targets,
/// names; not times or owners, which COPY replaces), as the cache key of a COPY/ADD.
pub(crate) fn checksum(ctx: &Context, sources: &[Source]) -> Result<String> {
    let mut h = Sha256::new();
    for s in sources {
        h.update(s.rel.as_bytes());
        h.update([0]);
        hash_tree(ctx, &s.path, &s.rel, &mut h)?;
    }
    Ok(hex::encode(h.finalize()))
}

fn hash_tree(ctx: &Context, path: &Path, rel: &str, h: &mut Sha256) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).map_err(BuildError::io("stat", path))?;
    hash_one(ctx, path, rel, &meta, h)?;
    if !meta.is_dir() {
        return Ok(());
    }
    for (name, child, m) in sorted_entries(path)? {
        let child_rel = join_rel(rel, &name);
        if ctx.excluded(&child_rel) && !(m.is_dir() && ctx.descend(&child_rel)) {
            continue;
        }
        h.update(name.as_bytes());
        h.update([0]);
        if m.is_dir() {
            hash_tree(ctx, &child, &child_rel, h)?;
        } else {
            hash_one(ctx, &child, &child_rel, &m, h)?;
        }
    }
    h.update(format!("end {}", meta.mode()).as_bytes());
    Ok(())
}

fn hash_one(
    ctx: &Context,
    path: &Path,
    rel: &str,
    meta: &fs::Metadata,
    h: &mut Sha256,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    h.update(format!("{:o} {} ", meta.mode(), meta.len()).as_bytes());
    if meta.file_type().is_symlink() {
        let t = fs::read_link(path).map_err(BuildError::io("readlink", path))?;
        h.update(t.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        match ctx.digests.get(rel) {
            Some(d) => h.update(d),
            None => h.update(file_digest(path)?),
        }
    }
    Ok(())
}

fn file_digest(path: &Path) -> Result<[u8; 32]> {
    let mut f = fs::File::open(path).map_err(BuildError::io("open", path))?;
    let mut d = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(BuildError::io("read", path))?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
    }
    Ok(d.finalize().into())
}

/// The directory that will hold `rel` under `root`, created as needed, when every part of
/// the way is a plain directory; `None` when a link (or anything else) is in the way, which
/// the tar crate's checked unpacking then handles.
fn plain_parent(root: &Path, rel: &str) -> Result<Option<PathBuf>> {
    let mut parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.pop().is_none() {
        return Ok(None);
    }
    let mut dir = root.to_path_buf();
    for part in parts {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(BuildError::io("create", &dir))?;
            }
            Err(e) => return Err(BuildError::io("stat", &dir)(e)),
        }
    }
    Ok(Some(dir))
}

/// The xattr holding a cached file's sha256 (on the inode, so the digest can never belong
/// to other bytes than the ones it is read with).
const DIGEST_XATTR: &str = "user.berth.sha256";
/// How much the file cache keeps of files no context uses.
const FILE_CACHE_BYTES: u64 = 2 << 30;

/// Files of earlier contexts, hard links under `<builder>/files/`, keyed by what the tar
/// header says (path, size, mode, mtime, owner). A key only finds a candidate: the new
/// bytes are compared with it byte by byte, so a changed file with the same header (an
/// edit that kept the mtime) is still written and hashed anew.
#[derive(Debug)]
pub struct FileCache {
    dir: PathBuf,
}

impl FileCache {
    /// Opens (creates) the cache directory.
    pub fn open(dir: &Path) -> Result<FileCache> {
        fs::create_dir_all(dir).map_err(BuildError::io("create", dir))?;
        Ok(FileCache {
            dir: dir.to_path_buf(),
        })
    }

    fn key_path(&self, rel: &str, header: &tar::Header) -> PathBuf {
        let mut h = Sha256::new();
        for part in [
            rel.to_owned(),
            header.size().unwrap_or(0).to_string(),
            header.mode().unwrap_or(0).to_string(),
            header.mtime().unwrap_or(0).to_string(),
            header.uid().unwrap_or(0).to_string(),
            header.gid().unwrap_or(0).to_string(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        self.dir.join(hex::encode(h.finalize()))
    }

    /// The cached file for a key with its digest, when both are there.
    fn lookup(&self, key: &Path) -> Option<(fs::File, [u8; 32])> {
        let file = fs::File::open(key).ok()?;
        let mut buf = [0u8; 64];
        let n = rustix::fs::fgetxattr(&file, DIGEST_XATTR, &mut buf[..]).ok()?;
        let digest: [u8; 32] = hex::decode(&buf[..n]).ok()?.try_into().ok()?;
        Some((file, digest))
    }

    /// Unpacks one regular file to `parent/<name>`; returns its sha256.
    fn unpack_file<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        parent: &Path,
        rel: &str,
    ) -> Result<[u8; 32]> {
        let bad =
            |e: std::io::Error| BuildError::Context(format!("invalid build context tar: {e}"));
        let header = entry.header().clone();
        let key = self.key_path(rel, &header);
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let target = parent.join(name);
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(BuildError::Context(format!(
                    "invalid build context tar: {rel} is both a directory and a file"
                )));
            }
            Ok(_) => fs::remove_file(&target).map_err(BuildError::io("remove", &target))?,
            Err(_) => {}
        }
        let mut buf = vec![0u8; 1 << 16];
        let mut other = vec![0u8; 1 << 16];
        let mut same = 0u64;
        let mut pending = 0usize;
        let mut cached = None;
        if let Some((mut file, digest)) = self.lookup(&key)
            && file.metadata().is_ok_and(|m| m.len() == entry.size())
        {
            loop {
                let n = read_full(entry, &mut buf).map_err(bad)?;
                if n == 0 {
                    break;
                }
                let m =
                    read_full(&mut file, &mut other[..n]).map_err(BuildError::io("read", &key))?;
                if m != n || buf[..n] != other[..n] {
                    pending = n;
                    break;
                }
                same += n as u64;
            }
            if pending == 0 && same == entry.size() && link_fd(&file, &target).is_ok() {
                return Ok(digest);
            }
            cached = Some(file);
        }
        // Written (and hashed) here: the cached file's equal prefix, the chunk that
        // differed, then the rest of the entry.
        let out = fs::File::create(&target).map_err(BuildError::io("create", &target))?;
        let mut w = HashWrite {
            inner: std::io::BufWriter::with_capacity(1 << 20, &out),
            hash: Sha256::new(),
        };
        if let Some(mut file) = cached {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0))
                .map_err(BuildError::io("read", &key))?;
            std::io::copy(&mut (&mut file).take(same), &mut w)
                .map_err(BuildError::io("write", &target))?;
        }
        std::io::Write::write_all(&mut w, &buf[..pending])
            .map_err(BuildError::io("write", &target))?;
        std::io::copy(entry, &mut w).map_err(bad)?;
        let digest: [u8; 32] = w.hash.finalize().into();
        w.inner
            .into_inner()
            .map_err(|e| BuildError::io("write", &target)(e.into_error()))?;
        let mode = header.mode().map_err(bad)? & 0o7777;
        let perms = <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(mode);
        out.set_permissions(perms)
            .map_err(BuildError::io("chmod", &target))?;
        let mtime =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(header.mtime().map_err(bad)?);
        out.set_times(fs::FileTimes::new().set_accessed(mtime).set_modified(mtime))
            .map_err(BuildError::io("set times", &target))?;
        self.insert(&out, &target, &key, &digest);
        Ok(digest)
    }

    /// Keeps `file` (just written at `target`) under `key` for the next context. Best
    /// effort: a cache that cannot take it only costs the next build a write.
    fn insert(&self, file: &fs::File, target: &Path, key: &Path, digest: &[u8; 32]) {
        let hexed = hex::encode(digest);
        if rustix::fs::fsetxattr(
            file,
            DIGEST_XATTR,
            hexed.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            return;
        }
        let tmp = self
            .dir
            .join(format!(".tmp-{}", crate::workspace::random_hex()));
        if fs::hard_link(target, &tmp).is_ok() && fs::rename(&tmp, key).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Drops files no context links any more, oldest use first, beyond the size budget.
    pub fn trim(&self) {
        self.trim_to(FILE_CACHE_BYTES);
    }

    /// Drops idle files until the cache holds at most `budget` bytes.
    pub(crate) fn trim_to(&self, budget: u64) {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut idle: Vec<(i64, u64, PathBuf)> = Vec::new();
        let mut total = 0u64;
        for entry in entries.flatten() {
            let Ok(m) = entry.metadata() else { continue };
            total += m.len();
            // A link count of 1: only the cache holds it. ctime moves with every link
            // and unlink, so it is the time of last use.
            if m.nlink() == 1 {
                idle.push((m.ctime(), m.len(), entry.path()));
            }
        }
        idle.sort();
        for (_, len, path) in idle {
            if total <= budget {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }

    /// Bytes the cache holds and how many files (for `system df`).
    pub fn usage(&self) -> (u64, usize) {
        let mut bytes = 0;
        let mut count = 0;
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if let Ok(m) = entry.metadata() {
                bytes += m.len();
                count += 1;
            }
        }
        (bytes, count)
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Links the open file itself (not whatever its cache path names by now) at `target`.
fn link_fd(file: &fs::File, target: &Path) -> std::io::Result<()> {
    rustix::fs::linkat(
        file,
        "",
        rustix::fs::CWD,
        target,
        rustix::fs::AtFlags::EMPTY_PATH,
    )
    .map_err(std::io::Error::from)
}

/// A writer that hashes what it writes.
struct HashWrite<W> {
    inner: W,
    hash: Sha256,
}

impl<W: std::io::Write> std::io::Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
