//! Writing COPY/ADD results into a mounted root file system with Docker's rules: directory
//! sources copy their contents, a destination ending in `/` (or several sources) is a
//! directory, new files and directories belong to root or the `--chown` owner, modes are
//! kept unless `--chmod`, and ADD unpacks local tar archives. Every destination path is
//! resolved inside the root ([`Escape::Clamp`]), so an image's symlinks cannot redirect a
//! write to the host.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::context::{Context, Source, join_rel, sorted_entries};
use crate::error::{BuildError, Result};
use crate::scope_path::{Escape, resolve};

/// Owner and mode for what COPY writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CopyAttrs {
    pub uid: u32,
    pub gid: u32,
    /// `--chmod`, applied to every copied file and directory.
    pub chmod: Option<u32>,
}

/// One COPY/ADD: `sources` (all from `ctx`) to `dest` (absolute, in the image).
pub(crate) struct CopyJob<'a> {
    pub ctx: &'a Context,
    pub sources: &'a [Source],
    pub dest: &'a str,
    /// The destination names a directory (trailing `/`, several sources, or a wildcard).
    pub dest_is_dir: bool,
    pub attrs: CopyAttrs,
    /// ADD: unpack local archives.
    pub unpack: bool,
}

fn scoped(root: &Path, path: &str) -> Result<PathBuf> {
    resolve(root, path, Escape::Clamp)
        .map_err(|_| BuildError::Source(format!("cannot resolve {path}: too many symbolic links")))
}

/// Runs `job` into the file system mounted at `rootfs`.
pub(crate) fn copy_into(rootfs: &Path, job: &CopyJob<'_>) -> Result<()> {
    for src in job.sources {
        if src.is_dir {
            let target = mkdir_all(rootfs, job.dest, &job.attrs)?;
            if let Some(mode) = job.attrs.chmod {
                set_mode(&target, mode)?;
            }
            copy_dir_contents(job.ctx, &src.path, &src.rel, rootfs, job.dest, &job.attrs)?;
            continue;
        }
        if job.unpack && is_tar(&src.path)? {
            let target = mkdir_all(rootfs, job.dest, &job.attrs)?;
            extract(&src.path, &target)?;
            continue;
        }
        let existing_dir = scoped(rootfs, job.dest)?.is_dir();
        let target = if job.dest_is_dir || existing_dir {
            let base = src.rel.rsplit('/').next().unwrap_or(&src.rel);
            join_rel(job.dest.trim_end_matches('/'), base)
        } else {
            job.dest.to_owned()
        };
        let parent = Path::new(&target)
            .parent()
            .map_or("/".into(), |p| p.display().to_string());
        mkdir_all(rootfs, &parent, &job.attrs)?;
        copy_entry(&src.path, &scoped(rootfs, &target)?, &job.attrs)?;
    }
    Ok(())
}

/// `mkdir -p` inside the root; new directories get mode 0755 and the copy's owner. Returns
/// the resolved path.
pub(crate) fn mkdir_all(rootfs: &Path, path: &str, attrs: &CopyAttrs) -> Result<PathBuf> {
    let mut prefix = String::new();
    let mut resolved = rootfs.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        prefix.push('/');
        prefix.push_str(part);
        resolved = scoped(rootfs, &prefix)?;
        match fs::symlink_metadata(&resolved) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(BuildError::Source(format!(
                    "cannot create directory {prefix}: a file is in the way"
                )));
            }
            Err(_) => {
                fs::create_dir(&resolved).map_err(BuildError::io("mkdir", &resolved))?;
                set_mode(&resolved, 0o755)?;
                std::os::unix::fs::lchown(&resolved, Some(attrs.uid), Some(attrs.gid))
                    .map_err(BuildError::io("chown", &resolved))?;
            }
        }
    }
    Ok(resolved)
}

fn copy_dir_contents(
    ctx: &Context,
    dir: &Path,
    rel: &str,
    rootfs: &Path,
    dest: &str,
    attrs: &CopyAttrs,
) -> Result<()> {
    for (name, path, meta) in sorted_entries(dir)? {
        let child_rel = join_rel(rel, &name);
        let child_dest = join_rel(dest.trim_end_matches('/'), &name);
        if meta.is_dir() {
            if ctx.excluded(&child_rel) && !ctx.descend(&child_rel) {
                continue;
            }
            let target = mkdir_all(rootfs, &child_dest, attrs)?;
            let mode = attrs.chmod.unwrap_or(meta.mode() & 0o7777);
            set_mode(&target, mode)?;
            std::os::unix::fs::lchown(&target, Some(attrs.uid), Some(attrs.gid))
                .map_err(BuildError::io("chown", &target))?;
            copy_dir_contents(ctx, &path, &child_rel, rootfs, &child_dest, attrs)?;
            set_times(&target, &meta)?;
        } else if !ctx.excluded(&child_rel) {
            copy_entry(&path, &scoped(rootfs, &child_dest)?, attrs)?;
        }
    }
    Ok(())
}

/// Copies one file or symlink (not followed) to `target`, replacing what is there.
fn copy_entry(src: &Path, target: &Path, attrs: &CopyAttrs) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(BuildError::io("stat", src))?;
    if let Ok(old) = fs::symlink_metadata(target)
        && !old.is_dir()
    {
        fs::remove_file(target).map_err(BuildError::io("replace", target))?;
    }
    if meta.file_type().is_symlink() {
        let link = fs::read_link(src).map_err(BuildError::io("readlink", src))?;
        std::os::unix::fs::symlink(&link, target).map_err(BuildError::io("symlink", target))?;
    } else if meta.is_file() {
        fs::copy(src, target).map_err(BuildError::io("copy", target))?;
        set_mode(target, attrs.chmod.unwrap_or(meta.mode() & 0o7777))?;
    } else {
        // Sockets, fifos and devices in a context are skipped, as tar would.
        return Ok(());
    }
    std::os::unix::fs::lchown(target, Some(attrs.uid), Some(attrs.gid))
        .map_err(BuildError::io("chown", target))?;
    set_times(target, &meta)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(BuildError::io("chmod", path))
}

/// Keeps the source's modification time, as Docker's COPY does.
fn set_times(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let ts = Timespec {
        tv_sec: meta.mtime(),
        tv_nsec: meta.mtime_nsec(),
    };
    let times = Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| BuildError::io("set times", path)(e.into()))
}

/// Whether `path` is a tar archive, plain or gzip-compressed (what ADD unpacks).
fn is_tar(path: &Path) -> Result<bool> {
    let f = fs::File::open(path).map_err(BuildError::io("open", path))?;
    let mut r = BufReader::new(f);
    let head = r.fill_buf().map_err(BuildError::io("read", path))?;
    let mut block = Vec::with_capacity(512);
    if head.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::bufread::GzDecoder::new(r)
            .take(512)
            .read_to_end(&mut block);
    } else {
        let _ = r.take(512).read_to_end(&mut block);
    }
    Ok(block.len() == 512 && &block[257..262] == b"ustar")
}

fn extract(archive: &Path, dest: &Path) -> Result<()> {
    let f = fs::File::open(archive).map_err(BuildError::io("open", archive))?;
    let mut r = BufReader::new(f);
    let gzip = r
        .fill_buf()
        .map_err(BuildError::io("read", archive))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(true);
    tar.set_preserve_ownerships(true);
    tar.set_preserve_mtime(true);
    tar.set_overwrite(true);
    // `unpack` refuses entries that would land outside `dest` (`..`, links out).
    tar.unpack(dest).map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        BuildError::Source(format!(
            "failed to extract {}: {e}{cause}",
            archive.display()
        ))
    })
}

/// `--chown` → uid and gid, names looked up in the image's `/etc/passwd` and `/etc/group`.
/// A user without a group uses the same number as the group (Docker's rule).
pub(crate) fn parse_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = lookup(rootfs, "/etc/passwd", user, "user")?;
    let gid = match group {
        Some(g) => lookup(rootfs, "/etc/group", g, "group")?,
        None => uid,
    };
    Ok((uid, gid))
}

fn lookup(rootfs: &Path, file: &str, name: &str, what: &str) -> Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let fail = || {
        BuildError::Invalid(format!(
            "unable to convert uid/gid chown string to host mapping: can't find {} for {what} {name}: no such {what}: {name}",
            if what == "user" { "uid" } else { "gid" }
        ))
    };
    let path = scoped(rootfs, file)?;
    let text = fs::read(&path).map_err(|_| fail())?;
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (n == name).then_some(id)
        })
        .next()
        .ok_or_else(fail)
}

/// `--chmod=755` → the mode bits.
pub(crate) fn parse_chmod(spec: &str) -> Result<u32> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| BuildError::Invalid(format!("invalid chmod parameter: {spec}")))
}
