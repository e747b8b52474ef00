//! `docker cp` (the archive endpoints) and `docker export`.
//!
//! Every path a client names is a path inside the container, and the container may be
//! running and hostile: its `/escape` can be a symlink to `/` or `../../..`, and it can swap
//! a directory for a symlink between our check and our use (CVE-2018-15664). So nothing here
//! resolves a container path on the host. Each operation runs on a fresh thread that
//! unshares its file-system attributes and mount namespace, binds the container's volumes
//! and bind mounts onto the root (as the container sees them), and `chroot`s into the
//! container's root: from then on the kernel itself keeps every lookup — `..`, absolute
//! symlinks, races — inside the container. The thread ends with the operation, taking the
//! namespace and its mounts with it. This is what dockerd does since 23.0.
//!
//! The root is the container's merged overlay at `<container>/rootfs`, which stays mounted
//! in the daemon's namespace from create to rm (a stopped container's included); after a
//! daemon restart it is mounted again first, as `start` does. Reading the upper directory
//! with the lower layers by hand would re-implement overlayfs (whiteouts, opaque
//! directories, copy-up for writes); the mounted overlay is overlayfs doing it.
//!
//! Nothing on the chrooted thread may load code or configuration from the container (the
//! CVE-2019-14271 class: a `getpwnam` that dlopens the container's NSS modules): tar
//! headers carry numeric ids only, and no user or group name is ever looked up.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use berth_errdefs::{CategorizedError, Category};
use serde::Serialize;

use super::{Container, Containers, Result, files, sys};
use crate::images::{BoxRead, BoxWrite};

/// Deepest directory nesting copied (bounds recursion on a hostile tree).
const MAX_DEPTH: usize = 1024;

/// What `HEAD /containers/{id}/archive?path=` answers (the `X-Docker-Container-Path-Stat`
/// header, base64 JSON), with Go's `os.FileMode` bits in `mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    /// The last element of the path as asked (`/` for the root).
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go's `os.FileMode`.
    pub mode: u32,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// For a symlink: where it leads, resolved inside the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// Whether it is a directory (`os.ModeDir`).
    pub fn is_dir(&self) -> bool {
        self.mode & GO_DIR != 0
    }
}

/// `PUT /containers/{id}/archive` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir`: refuse to replace a directory by a non-directory or back.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: keep the archive's owners (else everything belongs to root).
    pub copy_uid_gid: bool,
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => GO_DIR,
        libc::S_IFLNK => GO_SYMLINK,
        libc::S_IFBLK => GO_DEVICE,
        libc::S_IFCHR => GO_DEVICE | GO_CHARDEV,
        libc::S_IFIFO => GO_PIPE,
        libc::S_IFSOCK => GO_SOCKET,
        _ => 0,
    };
    for (bit, go) in [
        (libc::S_ISUID, GO_SETUID),
        (libc::S_ISGID, GO_SETGID),
        (libc::S_ISVTX, GO_STICKY),
    ] {
        if st_mode & bit != 0 {
            m |= go;
        }
    }
    m
}

/// A container path split as Docker splits it: the directory (to resolve, following
/// symlinks) and the last element (not followed), which keeps a trailing `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitPath {
    dir: String,
    base: String,
}

impl SplitPath {
    pub(crate) fn new(path: &str) -> SplitPath {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return SplitPath {
                dir: "/".into(),
                base: "/".into(),
            };
        }
        let abs = if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        let (dir, base) = abs.rsplit_once('/').unwrap_or(("", abs.as_str()));
        SplitPath {
            dir: if dir.is_empty() {
                "/".into()
            } else {
                dir.into()
            },
            base: base.to_owned(),
        }
    }

    /// The name the entries of a copy start with (Go's `filepath.Base`).
    pub(crate) fn name(&self) -> &str {
        &self.base
    }

    /// Resolves the path inside the (chrooted) root: every symlink of the directory part
    /// followed, the last element not.
    fn resolve(&self) -> io::Result<PathBuf> {
        if self.base == "/" {
            return Ok(PathBuf::from("/"));
        }
        let dir = fs::canonicalize(&self.dir)?;
        if self.base == ".." {
            return fs::canonicalize(dir.join(".."));
        }
        Ok(dir.join(&self.base))
    }
}

fn not_found(path: &str, container: &str) -> CategorizedError {
    CategorizedError::new(
        Category::NotFound,
        format!("Could not find the file {path} in container {container}"),
    )
}

/// An error from the chrooted thread, with Docker's words for the usual ones.
fn io_error(e: &io::Error, path: &str, container: &str) -> CategorizedError {
    match e.kind() {
        io::ErrorKind::NotFound => not_found(path, container),
        io::ErrorKind::NotADirectory => CategorizedError::new(
            Category::InvalidParameter,
            format!("Could not find the file {path} in container {container}: not a directory"),
        ),
        _ => CategorizedError::new(Category::System, e.to_string()),
    }
}

/// A volume or bind mount of the container, to be bound at `target` inside the root.
#[derive(Debug, Clone)]
struct Bind {
    source: PathBuf,
    target: String,
    read_only: bool,
}

/// What the chrooted thread gets: the root and the mounts to put on it.
#[derive(Debug, Clone)]
struct RootView {
    rootfs: PathBuf,
    binds: Vec<Bind>,
}

impl Containers {
    /// The container's root, mounted (after a daemon restart it may not be), with its
    /// volumes and bind mounts from the OCI bundle (`with_mounts`; `docker export` leaves
    /// them out, as Docker does).
    fn root_view(&self, c: &Container, with_mounts: bool) -> Result<RootView> {
        let rootfs = self.rootfs_dir(&c.id);
        if !files::is_mountpoint(&rootfs) {
            let image_id = berth_reference::ImageId::parse(&c.rec().image)
                .map_err(|e| CategorizedError::from_error(&e))?;
            let mount = self
                .images
                .prepare_rootfs(&image_id, &c.id)
                .or_else(|_| {
                    self.images
                        .snapshotter()
                        .mounts(&c.id)
                        .map_err(|e| e.into())
                })
                .map_err(|e: berth_image::ImageError| CategorizedError::from_error(&e))?;
            files::create_dir(&rootfs)?;
            mount
                .mount(&rootfs)
                .map_err(|e| sys("mount the root filesystem", e))?;
        }
        let binds = if with_mounts {
            bundle_binds(&self.bundle_dir(&c.id), &self.container_dir(&c.id))
        } else {
            Vec::new()
        };
        Ok(RootView { rootfs, binds })
    }

    /// [`Containers::root_view`] under the container's lifecycle lock (so that a start
    /// does not mount the root at the same time); the copy itself runs without it.
    async fn locked_root_view(&self, c: &Container, with_mounts: bool) -> Result<RootView> {
        let _op = c.op.lock().await;
        self.root_view(c, with_mounts)
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub async fn stat_path(&self, name_or_id: &str, path: &str) -> Result<PathStat> {
        let c = self.find(name_or_id)?;
        let view = self.locked_root_view(&c, true).await?;
        let split = SplitPath::new(path);
        let (p, n) = (path.to_owned(), name_or_id.to_owned());
        in_root(view, move || stat(&split).map_err(|e| io_error(&e, &p, &n))).await
    }

    /// `GET /containers/{id}/archive?path=`: the tar of the path, its entries named from
    /// the path's last element. Check with [`Containers::stat_path`] first: an error here
    /// comes after the answer started.
    pub async fn archive_path(
        self: &Arc<Self>,
        name_or_id: &str,
        path: &str,
        out: BoxWrite,
    ) -> Result<()> {
        let c = self.find(name_or_id)?;
        let view = self.locked_root_view(&c, true).await?;
        let split = SplitPath::new(path);
        let (p, n) = (path.to_owned(), name_or_id.to_owned());
        self.publish(&c.snapshot(), "archive-path", &[("path", path.to_owned())]);
        in_root(view, move || {
            let src = split.resolve().map_err(|e| io_error(&e, &p, &n))?;
            let mut tar = TarWriter::new(out);
            // The root's entries are `/`, `/bin/`, … as dockerd names them: the docker CLI
            // rebases a copy of `/` by putting its destination in front of each name.
            tar.tree(&src, split.name().as_bytes(), 0)
                .and_then(|()| tar.finish())
                .map_err(|e| sys("write the archive", e))
        })
        .await
    }

    /// `PUT /containers/{id}/archive?path=`: extracts `body` (a tar) into the directory
    /// `path`, which must exist.
    pub async fn extract_to_dir(
        self: &Arc<Self>,
        name_or_id: &str,
        path: &str,
        opts: ExtractOptions,
        body: BoxRead,
    ) -> Result<()> {
        let c = self.find(name_or_id)?;
        if c.rec().host_config.readonly_rootfs {
            return Err(CategorizedError::new(
                Category::Forbidden,
                "container rootfs is marked read-only",
            ));
        }
        let view = self.locked_root_view(&c, true).await?;
        let (p, n) = (path.to_owned(), name_or_id.to_owned());
        let abs = format!("/{}", path.trim_start_matches('/'));
        in_root(view, move || {
            let dir = fs::canonicalize(&abs).map_err(|e| io_error(&e, &p, &n))?;
            if !dir.is_dir() {
                return Err(CategorizedError::new(
                    Category::InvalidParameter,
                    "extraction point is not a directory",
                ));
            }
            extract(body, &dir, opts)
        })
        .await?;
        self.publish(
            &c.snapshot(),
            "extract-to-dir",
            &[("path", path.to_owned())],
        );
        Ok(())
    }

    /// `GET /containers/{id}/export`: the whole root file system as a tar, without the
    /// container's volumes and bind mounts.
    pub async fn export(self: &Arc<Self>, name_or_id: &str, out: BoxWrite) -> Result<()> {
        let c = self.find(name_or_id)?;
        let view = self.locked_root_view(&c, false).await?;
        self.publish(&c.snapshot(), "export", &[]);
        in_root(view, move || {
            let mut tar = TarWriter::new(out);
            for name in sorted_children(Path::new("/")).map_err(|e| sys("list /", e))? {
                let src = Path::new("/").join(&name);
                tar.tree(&src, name.as_bytes(), 0)
                    .map_err(|e| sys("write the archive", e))?;
            }
            tar.finish().map_err(|e| sys("write the archive", e))
        })
        .await
    }

    /// Checks a container exists (for answers that must fail before they start).
    pub fn check_exists(&self, name_or_id: &str) -> Result<()> {
        self.find(name_or_id).map(|_| ())
    }
}

/// The container's bind mounts and volumes, from its OCI bundle: every `bind` mount whose
/// source is not one of the container's own files (`hosts`, `resolv.conf`, …). Without a
/// bundle (an exec root lost at reboot) the copy sees the root file system alone.
fn bundle_binds(bundle: &Path, container_dir: &Path) -> Vec<Bind> {
    let Ok(bytes) = fs::read(bundle.join("config.json")) else {
        return Vec::new();
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    let mounts = spec.get("mounts").and_then(|m| m.as_array());
    mounts
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let options: Vec<&str> = m
                .get("options")
                .and_then(|o| o.as_array())
                .into_iter()
                .flatten()
                .filter_map(|o| o.as_str())
                .collect();
            let is_bind = m.get("type").and_then(|t| t.as_str()) == Some("bind")
                || options.iter().any(|o| *o == "bind" || *o == "rbind");
            let source = PathBuf::from(m.get("source")?.as_str()?);
            let target = m.get("destination")?.as_str()?.to_owned();
            (is_bind && source.is_absolute() && !source.starts_with(container_dir)).then(|| Bind {
                source,
                target,
                read_only: options.contains(&"ro"),
            })
        })
        .collect()
}

/// Runs `f` on a new thread chrooted into the container's root with its mounts bound on
/// it; see the module comment. The thread never returns to a pool.
async fn in_root<T: Send + 'static>(
    view: RootView,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-cp".into())
        .spawn(move || {
            let result = enter_root(&view).and_then(|()| f());
            let _ = tx.send(result);
        })
        .map_err(|e| sys("start the copy thread", e))?;
    rx.await
        .map_err(|_| sys("copy thread", "ended without an answer"))?
}

fn enter_root(view: &RootView) -> Result<()> {
    use rustix::thread::UnshareFlags;
    // SAFETY: this thread is ours alone and ends after the operation; unsharing its fs
    // attributes and mount namespace affects no other thread.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::FS | UnshareFlags::NEWNS) }
        .map_err(|e| sys("unshare the mount namespace", e))?;
    // Nothing mounted here may propagate back to the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| sys("make the copy namespace private", e))?;
    // Each mount is cloned as a detached tree while the host paths are reachable, then
    // attached at its target once inside the root, where the target's path cannot leave it.
    let mut trees: Vec<(OwnedFd, &Bind)> = Vec::new();
    for bind in &view.binds {
        let flags = rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
            | rustix::mount::OpenTreeFlags::AT_RECURSIVE;
        // A copy that silently missed a volume would read or write the wrong files.
        let fd = rustix::mount::open_tree(rustix::fs::CWD, &bind.source, flags)
            .map_err(|e| sys(&format!("bind {}", bind.source.display()), e))?;
        trees.push((fd, bind));
    }
    rustix::process::chroot(&view.rootfs).map_err(|e| sys("chroot", e))?;
    std::env::set_current_dir("/").map_err(|e| sys("chdir /", e))?;
    for (fd, bind) in trees {
        attach(fd, bind)?;
    }
    Ok(())
}

/// Attaches a cloned mount at its target inside the (chrooted) root, creating the target
/// as the runtime would.
fn attach(tree: OwnedFd, bind: &Bind) -> Result<()> {
    let target = Path::new("/").join(bind.target.trim_start_matches('/'));
    let is_dir = rustix::fs::fstat(&tree)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(true);
    let make = || -> io::Result<()> {
        if is_dir {
            fs::create_dir_all(&target)
        } else {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            if fs::symlink_metadata(&target).is_err() {
                File::create(&target)?;
            }
            Ok(())
        }
    };
    make().map_err(|e| sys(&format!("create the mount point {}", target.display()), e))?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        &target,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| sys(&format!("mount on {}", target.display()), e))?;
    if bind.read_only {
        use nix::mount::MsFlags;
        nix::mount::mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| sys(&format!("make {} read-only", target.display()), e))?;
    }
    Ok(())
}

fn stat(split: &SplitPath) -> io::Result<PathStat> {
    let path = split.resolve()?;
    let meta = fs::symlink_metadata(&path)?;
    let link_target = if meta.file_type().is_symlink() {
        match fs::canonicalize(&path) {
            Ok(p) => p.display().to_string(),
            // A dangling link: where it would lead.
            Err(_) => {
                let target = fs::read_link(&path)?;
                let base = path.parent().unwrap_or(Path::new("/"));
                lexical_clean(&base.join(target)).display().to_string()
            }
        }
    } else {
        String::new()
    };
    Ok(PathStat {
        name: split.name().to_owned(),
        size: meta.len() as i64,
        mode: go_mode(meta.mode()),
        mtime: berth_image::format_rfc3339(meta.mtime(), meta.mtime_nsec() as u32),
        link_target,
    })
}

/// `/a/b/../c` → `/a/c`, never above `/`.
fn lexical_clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn sorted_children(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    Ok(names)
}

/// Writes tar entries named exactly as Docker names them (`./x` included, which the tar
/// crate's path setter would shorten to `x`), with GNU long-name entries when needed.
struct TarWriter {
    tar: tar::Builder<BoxWrite>,
}

impl TarWriter {
    fn new(out: BoxWrite) -> TarWriter {
        TarWriter {
            tar: tar::Builder::new(out),
        }
    }

    fn finish(mut self) -> io::Result<()> {
        self.tar.finish()?;
        self.tar.get_mut().flush()
    }

    /// `src` (not followed if a symlink) and, for a directory, everything under it.
    fn tree(&mut self, src: &Path, name: &[u8], depth: usize) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(io::Error::other(format!(
                "{}: directories nested too deep",
                src.display()
            )));
        }
        let meta = fs::symlink_metadata(src)?;
        let ft = meta.file_type();
        if ft.is_socket() {
            // Docker skips sockets: they cannot be archived.
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        if ft.is_char_device() || ft.is_block_device() {
            let rdev = meta.rdev();
            header.set_device_major(libc::major(rdev))?;
            header.set_device_minor(libc::minor(rdev))?;
        }
        if ft.is_dir() {
            let mut dir_name = name.to_vec();
            if !dir_name.ends_with(b"/") {
                dir_name.push(b'/');
            }
            self.entry(&mut header, &dir_name, None, io::empty())?;
            for child in sorted_children(src)? {
                let mut child_name = name.to_vec();
                if !child_name.ends_with(b"/") {
                    child_name.push(b'/');
                }
                child_name.extend_from_slice(child.as_bytes());
                self.tree(&src.join(&child), &child_name, depth + 1)?;
            }
            Ok(())
        } else if ft.is_symlink() {
            let target = fs::read_link(src)?;
            header.set_size(0);
            self.entry(
                &mut header,
                name,
                Some(target.as_os_str().as_bytes()),
                io::empty(),
            )
        } else if ft.is_file() {
            // A running container may have swapped the file for a symlink or a FIFO since
            // the lstat: no following, no blocking on a FIFO's open, and a regular file only.
            use std::os::unix::fs::OpenOptionsExt;
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(src)?;
            if !file.metadata()?.is_file() {
                return Err(io::Error::other(format!(
                    "{}: changed while being copied",
                    src.display()
                )));
            }
            // Exactly the size in the header: a file growing meanwhile is cut, one
            // shrinking is padded with zeros, so the archive stays well-formed.
            let len = meta.len();
            let data = file.take(len).chain(io::repeat(0)).take(len);
            self.entry(&mut header, name, None, data)
        } else {
            header.set_size(0);
            self.entry(&mut header, name, None, io::empty())
        }
    }

    fn entry(
        &mut self,
        header: &mut tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> io::Result<()> {
        let name_field = &mut header.as_old_mut().name;
        name_field.fill(0);
        if name.len() > name_field.len() {
            self.long(tar::EntryType::GNULongName, name)?;
        }
        let n = name.len().min(name_field.len());
        name_field[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            let link_field = &mut header.as_old_mut().linkname;
            link_field.fill(0);
            if link.len() > link_field.len() {
                self.long(tar::EntryType::GNULongLink, link)?;
            }
            let n = link.len().min(link_field.len());
            link_field[..n].copy_from_slice(&link[..n]);
        }
        header.set_cksum();
        self.tar.append(header, data)
    }

    /// A GNU `././@LongLink` entry carrying a name or link target over 100 bytes.
    fn long(&mut self, kind: tar::EntryType, value: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        let marker = b"././@LongLink";
        h.as_old_mut().name[..marker.len()].copy_from_slice(marker);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        self.tar.append(&h, value.chain(&b"\0"[..]))
    }
}

/// Unpacks `body` into `dir` (inside the chrooted root). Entries with `..` or an absolute
/// path are refused, as are entries that would land outside `dir` through a symlink the
/// archive or the container put there.
fn extract(body: BoxRead, dir: &Path, opts: ExtractOptions) -> Result<()> {
    let mut archive = tar::Archive::new(body);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(opts.copy_uid_gid);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    let bad = |e: io::Error| CategorizedError::new(Category::InvalidParameter, e.to_string());
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let rel = Path::new(std::ffi::OsStr::from_bytes(&raw));
        if rel.is_absolute() || rel.components().any(|c| c == Component::ParentDir) {
            return Err(CategorizedError::new(
                Category::InvalidParameter,
                format!(
                    "invalid archive entry {shown:?}: it leads outside {}",
                    dir.display()
                ),
            ));
        }
        if opts.no_overwrite_dir_non_dir {
            check_overwrite(dir, rel, entry.header().entry_type().is_dir(), &shown)?;
        }
        let inside = entry.unpack_in(dir).map_err(|e| {
            CategorizedError::new(
                Category::InvalidParameter,
                format!("extract {shown:?}: {e}"),
            )
        })?;
        if !inside {
            return Err(CategorizedError::new(
                Category::InvalidParameter,
                format!(
                    "invalid archive entry {shown:?}: it leads outside {}",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

fn check_overwrite(dir: &Path, rel: &Path, entry_is_dir: bool, shown: &str) -> Result<()> {
    let Ok(existing) = fs::symlink_metadata(dir.join(rel)) else {
        return Ok(());
    };
    let conflict = match (existing.is_dir(), entry_is_dir) {
        (true, false) => format!(
            "cannot overwrite directory {:?} with non-directory {shown:?}",
            dir.join(rel).display().to_string()
        ),
        (false, true) => format!(
            "cannot overwrite non-directory {:?} with directory {shown:?}",
            dir.join(rel).display().to_string()
        ),
        _ => return Ok(()),
    };
    Err(CategorizedError::new(Category::InvalidParameter, conflict))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_split_as_docker_splits_them() {
        let s = SplitPath::new("/etc/passwd");
        assert_eq!((s.dir.as_str(), s.name()), ("/etc", "passwd"));
        let s = SplitPath::new("etc/");
        assert_eq!((s.dir.as_str(), s.name()), ("/", "etc"));
        let s = SplitPath::new("/dir/.");
        assert_eq!((s.dir.as_str(), s.name()), ("/dir", "."));
        let s = SplitPath::new("/");
        assert_eq!(s.name(), "/");
        let s = SplitPath::new("");
        assert_eq!(s.name(), "/");
    }

    #[test]
    fn go_file_modes() {
        assert_eq!(go_mode(libc::S_IFDIR | 0o755), GO_DIR | 0o755);
        assert_eq!(go_mode(libc::S_IFLNK | 0o777), GO_SYMLINK | 0o777);
        assert_eq!(go_mode(libc::S_IFREG | 0o4755), GO_SETUID | 0o755);
        assert_eq!(
            go_mode(libc::S_IFCHR | 0o666),
            GO_DEVICE | GO_CHARDEV | 0o666
        );
    }

    #[test]
    fn lexical_clean_stays_under_root() {
        assert_eq!(lexical_clean(Path::new("/a/../../b")), PathBuf::from("/b"));
        assert_eq!(lexical_clean(Path::new("/a/./b/..")), PathBuf::from("/a"));
    }
}
