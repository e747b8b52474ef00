//! File operations relative to a root directory fd that can never leave that root.
//!
//! Every path from a layer tar is resolved with `openat2(RESOLVE_IN_ROOT)`: symlinks met on
//! the way (including absolute ones and `..` in their targets) are resolved as if the root
//! were `/`, the way Docker and containerd scope them. Where `openat2` is missing (kernels
//! before 5.6, or a seccomp filter returning ENOSYS) a component-by-component walk with
//! `O_NOFOLLOW` is used instead, which refuses symlinked parents outright. The last
//! component of a path is never followed: callers act on it with `*at` calls on the parent
//! fd.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Dir, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Set once `openat2` turns out to be unavailable, so the fallback is not retried per call.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `path` as a directory fd suitable as a root for [`open_dir_in`].
pub(crate) fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the directory at `comps` (relative to `root`) for reading and fd-based metadata
/// changes, resolving every component inside `root`.
pub(crate) fn open_dir_in(root: BorrowedFd<'_>, comps: &[OsString]) -> io::Result<OwnedFd> {
    if comps.is_empty() {
        return Ok(rustix::io::fcntl_dupfd_cloexec(root, 0)?);
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let path = join(comps);
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(root, &path, flags, Mode::empty(), how) {
            // EAGAIN: a concurrent rename elsewhere on the system; the kernel asks to retry.
            Err(Errno::AGAIN) => return open_dir_in(root, comps),
            Err(Errno::NOSYS | Errno::PERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            r => return Ok(r?),
        }
    }
    walk_no_symlinks(root, comps)
}

/// The fallback resolver: one `openat(O_NOFOLLOW)` per component, so a symlink anywhere on
/// the way is an error (ELOOP or ENOTDIR) rather than something to follow.
pub(crate) fn walk_no_symlinks(root: BorrowedFd<'_>, comps: &[OsString]) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = rustix::io::fcntl_dupfd_cloexec(root, 0)?;
    for c in comps {
        if c == ".." || c == "." || c.is_empty() || c.as_bytes().contains(&b'/') {
            return Err(io::Error::from(Errno::INVAL));
        }
        cur = rustix::fs::openat(&cur, c.as_os_str(), flags, Mode::empty())?;
    }
    Ok(cur)
}

/// Like [`open_dir_in`], creating missing directories (mode 0755, like Docker's implicit
/// parents). Returns the fd of the last one.
pub(crate) fn mkdir_all_in(root: BorrowedFd<'_>, comps: &[OsString]) -> io::Result<OwnedFd> {
    match open_dir_in(root, comps) {
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
        r => return r,
    }
    let mut cur = rustix::io::fcntl_dupfd_cloexec(root, 0)?;
    for i in 0..comps.len() {
        cur = match open_dir_in(root, &comps[..=i]) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                // mkdirat never follows a symlink in the last component: a dangling
                // symlink here gives EEXIST instead of creating its target.
                match rustix::fs::mkdirat(&cur, comps[i].as_os_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!(
                                "{:?} is a symlink to a directory missing from the layer",
                                join(&comps[..=i])
                            ),
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
                open_dir_in(root, &comps[..=i])?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Removes `name` inside `dir`, recursively if it is a directory. Never follows symlinks.
/// A missing name is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    clear_dir(sub.as_fd(), |_| true)?;
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes every entry of `dir` for which `keep_not` returns true.
pub(crate) fn clear_dir(
    dir: BorrowedFd<'_>,
    mut remove: impl FnMut(&OsStr) -> bool,
) -> io::Result<()> {
    for name in list_dir(dir)? {
        if remove(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// The names in a directory, without `.` and `..`, sorted (so walks are deterministic).
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Joins path components with `/`.
pub(crate) fn join(comps: &[OsString]) -> PathBuf {
    comps.iter().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fallback_walk_refuses_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("x")).unwrap();
        std::os::unix::fs::symlink("a", d.path().join("y")).unwrap();
        let root = open_root(d.path()).unwrap();
        let c = |s: &str| s.split('/').map(OsString::from).collect::<Vec<_>>();
        assert!(walk_no_symlinks(root.as_fd(), &c("a/b")).is_ok());
        assert!(walk_no_symlinks(root.as_fd(), &c("x")).is_err());
        assert!(walk_no_symlinks(root.as_fd(), &c("y/b")).is_err());
        assert!(walk_no_symlinks(root.as_fd(), &c("a/../..")).is_err());
    }

    #[test]
    fn in_root_resolution_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root_dir = d.path().join("root");
        std::fs::create_dir_all(root_dir.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root_dir.join("x")).unwrap();
        std::os::unix::fs::symlink("../../../..", root_dir.join("up")).unwrap();
        let root = open_root(&root_dir).unwrap();
        let inode = |fd: &OwnedFd| rustix::fs::fstat(fd).unwrap().st_ino;
        let etc = open_dir_in(root.as_fd(), &[OsString::from("etc")]).unwrap();
        let via_link = open_dir_in(root.as_fd(), &[OsString::from("x")]).unwrap();
        assert_eq!(inode(&etc), inode(&via_link));
        let up = open_dir_in(root.as_fd(), &[OsString::from("up")]).unwrap();
        assert_eq!(inode(&up), inode(&root));
    }
}
