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
        fs::create_dir_all(dir).map_err(BuildError::io("create context", dir))?;
        let mut ctx = Context {
            root: dir.to_path_buf(),
            ignore: IgnoreMatcher::default(),
            owned: true,
            escape: Escape::Forbid,
            digests: HashMap::new(),
        };
        ctx.digests = unpack(input, dir, limits)?;
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
