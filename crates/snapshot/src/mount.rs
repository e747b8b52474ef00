//! Mount descriptions and the mount/unmount calls.
//!
//! A page is the most the kernel copies of `mount(2)`'s option string, so a deep
//! `lowerdir=` list of absolute paths stops fitting after a hundred or so layers. When it
//! does not fit, the mount is done from a helper thread that has its own working directory
//! (`unshare(CLONE_FS)`) set to the snapshots directory, with relative `<id>/fs` paths:
//! containerd's trick, without forking a multi-threaded process.

use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

/// How to mount a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A bind mount of one directory (a snapshot with no parent, or a one-layer view).
    Bind {
        /// The directory.
        source: PathBuf,
        /// Mount read-only.
        readonly: bool,
    },
    /// An overlay. Without an upper directory it is read-only.
    Overlay {
        /// Lower directories, top-most first (the order of `lowerdir=`).
        lowerdirs: Vec<PathBuf>,
        /// The writable layer.
        upperdir: Option<PathBuf>,
        /// overlayfs's scratch directory, on the same filesystem as `upperdir`.
        workdir: Option<PathBuf>,
        /// Extra options (`index=off`, …).
        extra: Vec<String>,
        /// Directory the lower/upper/work paths may be made relative to if the options
        /// would not fit in a page.
        base: PathBuf,
    },
}

/// Why a mount or unmount failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The system call failed.
    #[error("mount {kind} on {target}: {source} (options {options:?})")]
    Mount {
        /// `overlay` or `bind`.
        kind: &'static str,
        /// Where.
        target: PathBuf,
        /// The option string passed.
        options: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Even relative paths do not fit in the kernel's option page.
    #[error("mount on {target}: {layers} layers do not fit in one page of mount options")]
    TooManyLayers {
        /// Where.
        target: PathBuf,
        /// How many lower directories.
        layers: usize,
    },
    /// unmount failed.
    #[error("unmount {target}: {source}")]
    Unmount {
        /// Where.
        target: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The most bytes of mount data the kernel accepts (one page, NUL included).
fn page_limit() -> usize {
    rustix::param::page_size() - 1
}

impl Mount {
    /// The overlay option string with absolute paths (or the bind flags' description).
    pub fn options(&self) -> String {
        match self {
            Mount::Bind { readonly, .. } => if *readonly { "bind,ro" } else { "bind" }.to_owned(),
            Mount::Overlay { .. } => self.overlay_options(None),
        }
    }

    fn overlay_options(&self, relative_to: Option<&Path>) -> String {
        let Mount::Overlay {
            lowerdirs,
            upperdir,
            workdir,
            extra,
            ..
        } = self
        else {
            return String::new();
        };
        let show = |p: &Path| {
            relative_to
                .and_then(|base| p.strip_prefix(base).ok())
                .unwrap_or(p)
                .display()
                .to_string()
        };
        let lowers: Vec<String> = lowerdirs.iter().map(|p| show(p)).collect();
        let mut opts = vec![format!("lowerdir={}", lowers.join(":"))];
        if let (Some(u), Some(w)) = (upperdir, workdir) {
            opts.push(format!("upperdir={}", show(u)));
            opts.push(format!("workdir={}", show(w)));
        }
        opts.extend(extra.iter().cloned());
        opts.join(",")
    }

    /// Mounts at `target` (an existing directory).
    pub fn mount(&self, target: &Path) -> Result<(), MountError> {
        match self {
            Mount::Bind { source, readonly } => bind(source, target, *readonly),
            Mount::Overlay {
                base, lowerdirs, ..
            } => {
                let options = self.overlay_options(None);
                if options.len() <= page_limit() {
                    return overlay(target, &options, None);
                }
                let relative = self.overlay_options(Some(base));
                if relative.len() > page_limit() {
                    return Err(MountError::TooManyLayers {
                        target: target.to_owned(),
                        layers: lowerdirs.len(),
                    });
                }
                // The target is resolved by the helper thread, whose cwd differs.
                let target = std::path::absolute(target).map_err(|source| MountError::Mount {
                    kind: "overlay",
                    target: target.to_owned(),
                    options: relative.clone(),
                    source,
                })?;
                overlay(&target, &relative, Some(base))
            }
        }
    }
}

fn overlay(target: &Path, options: &str, cwd: Option<&Path>) -> Result<(), MountError> {
    let err = |source: io::Error| MountError::Mount {
        kind: "overlay",
        target: target.to_owned(),
        options: options.to_owned(),
        source,
    };
    let data = std::ffi::CString::new(options)
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let call = || {
        rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        )
    };
    let Some(cwd) = cwd else {
        return call().map_err(|e| err(e.into()));
    };
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // SAFETY: CLONE_FS only gives this thread its own cwd/root/umask; it does not
            // touch the fd table, so no other thread can observe a changed fd.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }?;
            rustix::process::chdir(cwd)?;
            call()?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount helper thread panicked")))
    })
    .map_err(err)
}

fn bind(source: &Path, target: &Path, readonly: bool) -> Result<(), MountError> {
    let err = |source: Errno| MountError::Mount {
        kind: "bind",
        target: target.to_owned(),
        options: if readonly { "bind,ro" } else { "bind" }.to_owned(),
        source: source.into(),
    };
    rustix::mount::mount_bind(source, target).map_err(err)?;
    if readonly {
        // A bind mount ignores MS_RDONLY on creation; it takes a remount.
        let flags = MountFlags::BIND | MountFlags::RDONLY;
        if let Err(e) = rustix::mount::mount_remount(target, flags, "") {
            let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
            return Err(err(e));
        }
    }
    Ok(())
}

/// Unmounts `target`. If it is busy, detaches it (it goes away once the last user leaves)
/// rather than failing: callers are tearing down.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    let err = |e: Errno| MountError::Unmount {
        target: target.to_owned(),
        source: e.into(),
    };
    match rustix::mount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(Errno::BUSY) => {
            rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)
                .map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}
