//! The container's filesystem view: root propagation, the rootfs bind mount, the config's mounts,
//! `/dev`, pivot_root, masked and read-only paths.
//!
//! Every path inside the rootfs is resolved with `openat2(RESOLVE_IN_ROOT)` and mounted onto
//! through `/proc/self/fd/N`, so a symlink planted by an image cannot redirect a mount, a device
//! node or a mask onto the host (CVE-2021-30465, CVE-2025-31133, CVE-2026-41579).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat, makedev, mkdirat, mknodat};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use crate::error::{Context, Result, RuntimeError};

/// A mount point source for the `cgroup` mount type: one hierarchy of the container's cgroup.
#[derive(Debug, Clone)]
pub struct CgroupDir {
    /// The directory name under the mount's destination (`memory`, `cpu,cpuacct`, `unified`).
    pub name: String,
    /// The container's cgroup directory on the host.
    pub host_dir: PathBuf,
    /// Controller names that get a symlink to `name` (`cpu` and `cpuacct` → `cpu,cpuacct`).
    pub aliases: Vec<String>,
}

/// How the container's cgroup filesystem should appear at a `cgroup` mount.
#[derive(Debug, Clone, Default)]
pub struct CgroupView {
    /// cgroup v2 (unified mode): one directory mounted at the destination itself.
    pub unified: bool,
    pub dirs: Vec<CgroupDir>,
}

/// Sets the propagation of `/` in the new mount namespace so that nothing the container mounts
/// reaches the host (rslave unless the config asks otherwise), then makes the rootfs a mount point.
pub fn prepare_root(rootfs: &Path, propagation: Option<&str>) -> Result<()> {
    let flags = match propagation {
        Some(p) => propagation_flag(p)
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("unknown rootfsPropagation {p:?}")))?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .context(|| "set propagation of /".into())?;
    // pivot_root needs the new root to be a mount point, and a private parent keeps the
    // old root's mounts from following us.
    make_parent_private(rootfs)?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| format!("bind mount rootfs {}", rootfs.display()))
}

// pivot_root(2) fails with EINVAL when the new root's parent mount is shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let Some(mountpoint) = mount_point_of(rootfs.parent().unwrap_or(Path::new("/"))) else {
        return Ok(());
    };
    match mount(
        None::<&str>,
        &mountpoint,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    ) {
        Ok(()) | Err(Errno::EINVAL) => Ok(()),
        Err(e) => Err(e).context(|| format!("make {} private", mountpoint.display())),
    }
}

/// The mount point that contains `path`, from `/proc/self/mountinfo`.
fn mount_point_of(path: &Path) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
}

fn unescape_mountinfo(s: &str) -> PathBuf {
    PathBuf::from(
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\"),
    )
}

/// Opens the rootfs as the anchor every in-container path is resolved against.
pub fn open_root(rootfs: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("open rootfs {}", rootfs.display()))
}

/// Resolves `path` inside `root` as if `root` were `/`; symlinks cannot leave it.
pub fn resolve_in_root(root: &OwnedFd, path: &Path, extra: ResolveFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS | extra);
    openat2(root.as_fd(), relative(path), how)
}

fn relative(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

/// `/proc/self/fd/N` for an fd, the way to hand a resolved path to mount(2).
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// What a mount point must be: a directory, or a file for file bind mounts and device nodes.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Dir,
    File,
}

/// Creates `path` (and its parents) inside `root` and returns an O_PATH handle on it. Each
/// component is resolved inside the root, so symlinks in the image stay in the image.
pub fn mkdir_all_in_root(root: &OwnedFd, path: &Path, last: Kind) -> Result<OwnedFd> {
    let mut done = PathBuf::from("/");
    let mut parent =
        resolve_in_root(root, &done, ResolveFlag::empty()).context(|| "open rootfs".into())?;
    let components: Vec<_> = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    for (i, comp) in components.iter().enumerate() {
        done.push(comp);
        let is_last = i + 1 == components.len();
        parent = match resolve_in_root(root, &done, ResolveFlag::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                create_entry(
                    &parent,
                    comp.as_os_str(),
                    if is_last { last } else { Kind::Dir },
                    &done,
                )?;
                resolve_in_root(root, &done, ResolveFlag::empty())
                    .context(|| format!("open {}", done.display()))?
            }
            Err(e) => return Err(e).context(|| format!("resolve {} in rootfs", done.display())),
        };
    }
    Ok(parent)
}

fn create_entry(parent: &OwnedFd, name: &std::ffi::OsStr, kind: Kind, shown: &Path) -> Result<()> {
    // mkdirat/openat on an O_PATH parent need a real directory fd.
    let dir = reopen_dir(parent)?;
    let result = match kind {
        Kind::Dir => mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)),
        Kind::File => nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match result {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e).context(|| format!("create mount point {}", shown.display())),
    }
}

fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd> {
    nix::fcntl::open(
        &fd_path(fd),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(|| "reopen directory".into())
}

/// Mount flags and propagation parsed from OCI mount options.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags that must be cleared (`rw`, `suid`, …) — only matter for remounts.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
}

/// Parses OCI mount options into mount(2) flags, propagation changes and fs-specific data.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
    };
    for opt in options {
        if let Some(p) = propagation_flag(opt) {
            out.propagation.push(p);
            continue;
        }
        let (set, flag) = match opt.as_str() {
            "ro" => (true, MsFlags::MS_RDONLY),
            "rw" => (false, MsFlags::MS_RDONLY),
            "nosuid" => (true, MsFlags::MS_NOSUID),
            "suid" => (false, MsFlags::MS_NOSUID),
            "nodev" => (true, MsFlags::MS_NODEV),
            "dev" => (false, MsFlags::MS_NODEV),
            "noexec" => (true, MsFlags::MS_NOEXEC),
            "exec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (true, MsFlags::MS_SYNCHRONOUS),
            "async" => (false, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (true, MsFlags::MS_DIRSYNC),
            "remount" => (true, MsFlags::MS_REMOUNT),
            "mand" => (true, MsFlags::MS_MANDLOCK),
            "nomand" => (false, MsFlags::MS_MANDLOCK),
            "atime" => (false, MsFlags::MS_NOATIME),
            "noatime" => (true, MsFlags::MS_NOATIME),
            "diratime" => (false, MsFlags::MS_NODIRATIME),
            "nodiratime" => (true, MsFlags::MS_NODIRATIME),
            "relatime" => (true, MsFlags::MS_RELATIME),
            "norelatime" => (false, MsFlags::MS_RELATIME),
            "strictatime" => (true, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
            "bind" => (true, MsFlags::MS_BIND),
            "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
            "defaults" => continue,
            // runc's copy-up of image content into a tmpfs: a Docker nicety, skipped.
            "tmpcopyup" => continue,
            other => {
                out.data.push(other.to_owned());
                continue;
            }
        };
        if set {
            out.flags |= flag;
            out.cleared &= !flag;
        } else {
            out.flags &= !flag;
            out.cleared |= flag;
        }
    }
    out
}

fn propagation_flag(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Mounts one config entry inside the rootfs.
pub fn mount_entry(root: &OwnedFd, m: &Mount, cgroups: &CgroupView) -> Result<()> {
    let dest = m.destination();
    if !dest.is_absolute() {
        return Err(RuntimeError::InvalidSpec(format!(
            "mount destination {} is not absolute",
            dest.display()
        )));
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let is_bind = opts.flags.contains(MsFlags::MS_BIND) || typ == "bind";
    match typ {
        "cgroup" | "cgroup2" if !is_bind => mount_cgroup(root, dest, &opts, cgroups),
        _ if is_bind => mount_bind(root, m, &opts),
        _ => mount_fs(root, m, typ, &opts),
    }
}

fn mount_fs(root: &OwnedFd, m: &Mount, typ: &str, opts: &MountOptions) -> Result<()> {
    let dest = m.destination();
    // procfs and sysfs must land on a real directory: an image with `/proc -> /somewhere`
    // would otherwise steer later procfs writes (CVE-2019-16884 class).
    let target = if matches!(typ, "proc" | "sysfs") {
        mkdir_all_in_root(root, dest, Kind::Dir)?;
        resolve_in_root(root, dest, ResolveFlag::RESOLVE_NO_SYMLINKS)
            .context(|| format!("mount destination {} must not be a symlink", dest.display()))?
    } else {
        mkdir_all_in_root(root, dest, Kind::Dir)?
    };
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = opts.data.join(",");
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let result = mount(
        Some(&source),
        &fd_path(&target),
        Some(typ),
        flags,
        some_str(&data),
    );
    match result {
        // sysfs cannot be mounted in a user namespace that does not own the network namespace:
        // fall back to a read-only recursive bind of the host's /sys, as runc does.
        Err(Errno::EPERM) if typ == "sysfs" => {
            mount(
                Some("/sys"),
                &fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .context(|| format!("bind /sys at {}", dest.display()))?;
            let flags =
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            remount(&target_after_mount(root, dest)?, dest, flags)
        }
        other => other.context(|| format!("mount {typ} at {}", dest.display())),
    }?;
    if opts.propagation.is_empty() {
        return Ok(());
    }
    apply_propagation(&target_after_mount(root, dest)?, dest, &opts.propagation)
}

fn mount_bind(root: &OwnedFd, m: &Mount, opts: &MountOptions) -> Result<()> {
    let dest = m.destination();
    let source = m.source().clone().ok_or_else(|| {
        RuntimeError::InvalidSpec(format!("bind mount to {} has no source", dest.display()))
    })?;
    let meta =
        std::fs::metadata(&source).context(|| format!("bind mount source {}", source.display()))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = mkdir_all_in_root(root, dest, kind)?;
    let rec = opts.flags & MsFlags::MS_REC;
    mount(
        Some(&source),
        &fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND | rec,
        None::<&str>,
    )
    .context(|| format!("bind mount {} at {}", source.display(), dest.display()))?;
    // The bind mount is a new mount on the same path: resolve again to get a handle on it.
    let target = resolve_in_root(root, dest, ResolveFlag::empty())
        .context(|| format!("reopen {}", dest.display()))?;
    let wanted = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !wanted.is_empty() {
        remount(&target, dest, wanted)?;
    }
    apply_propagation(&target, dest, &opts.propagation)
}

/// Remounts a bind mount with `flags` added, keeping the flags the kernel locks in a user
/// namespace (nosuid, nodev, noexec, atime) so the remount is not refused.
fn remount(target: &OwnedFd, dest: &Path, flags: MsFlags) -> Result<()> {
    let locked = locked_flags(target);
    mount(
        None::<&str>,
        &fd_path(target),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked,
        None::<&str>,
    )
    .context(|| format!("remount {} with {flags:?}", dest.display()))
}

fn locked_flags(target: &OwnedFd) -> MsFlags {
    use nix::sys::statvfs::{FsFlags, fstatvfs};
    let Ok(st) = fstatvfs(target) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(s, _)| f.contains(*s))
        .fold(MsFlags::empty(), |acc, (_, m)| acc | *m)
}

fn apply_propagation(target: &OwnedFd, dest: &Path, propagation: &[MsFlags]) -> Result<()> {
    for p in propagation {
        mount(
            None::<&str>,
            &fd_path(target),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .context(|| format!("set propagation {p:?} on {}", dest.display()))?;
    }
    Ok(())
}

/// A `cgroup` mount: a tmpfs holding one bind mount per v1 hierarchy of the container's cgroup,
/// or for v2 the container's cgroup directory itself.
fn mount_cgroup(root: &OwnedFd, dest: &Path, opts: &MountOptions, view: &CgroupView) -> Result<()> {
    let target = mkdir_all_in_root(root, dest, Kind::Dir)?;
    let ro = opts.flags & MsFlags::MS_RDONLY;
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if view.unified {
        if let Some(dir) = view.dirs.first() {
            bind_cgroup_dir(root, dest, &dir.host_dir, base | ro)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .context(|| format!("mount tmpfs for cgroups at {}", dest.display()))?;
    for dir in &view.dirs {
        let sub = dest.join(&dir.name);
        bind_cgroup_dir(root, &sub, &dir.host_dir, base | ro)?;
        for alias in dir.aliases.iter().filter(|a| **a != dir.name) {
            let parent = reopen_dir(&target_after_mount(root, dest)?)?;
            match nix::unistd::symlinkat(dir.name.as_str(), parent.as_fd(), alias.as_str()) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).context(|| format!("symlink cgroup {alias}")),
            }
        }
    }
    if !ro.is_empty() {
        let target = target_after_mount(root, dest)?;
        mount(
            None::<&str>,
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_REMOUNT | base | ro,
            Some("mode=755"),
        )
        .context(|| format!("remount {} read-only", dest.display()))?;
    }
    Ok(())
}

fn target_after_mount(root: &OwnedFd, dest: &Path) -> Result<OwnedFd> {
    resolve_in_root(root, dest, ResolveFlag::empty())
        .context(|| format!("reopen {}", dest.display()))
}

fn bind_cgroup_dir(root: &OwnedFd, dest: &Path, host_dir: &Path, flags: MsFlags) -> Result<()> {
    let target = mkdir_all_in_root(root, dest, Kind::Dir)?;
    mount(
        Some(host_dir),
        &fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| format!("bind cgroup {} at {}", host_dir.display(), dest.display()))?;
    remount(&target_after_mount(root, dest)?, dest, flags)
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn default_devices() -> Vec<LinuxDevice> {
    let dev = |path: &str, major: i64, minor: i64| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(path));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(major);
        d.set_minor(minor);
        d.set_file_mode(Some(0o666));
        d.set_uid(Some(0));
        d.set_gid(Some(0));
        d
    };
    vec![
        dev("/dev/null", 1, 3),
        dev("/dev/zero", 1, 5),
        dev("/dev/full", 1, 7),
        dev("/dev/random", 1, 8),
        dev("/dev/urandom", 1, 9),
        dev("/dev/tty", 5, 0),
    ]
}

/// Creates a device node inside the rootfs: mknod when we may, a bind mount of the host's node
/// inside a user namespace (where mknod is refused).
pub fn create_device(root: &OwnedFd, d: &LinuxDevice, bind: bool) -> Result<()> {
    let path = d.path();
    if !path.starts_with("/dev") {
        return Err(RuntimeError::InvalidSpec(format!(
            "device {} is not under /dev",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        mkdir_all_in_root(root, parent, Kind::Dir)?;
    }
    if bind {
        let target = mkdir_all_in_root(root, path, Kind::File)?;
        return mount(
            Some(path),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .context(|| format!("bind device {}", path.display()));
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(RuntimeError::InvalidSpec(format!(
                "device {} has type 'a'",
                path.display()
            )));
        }
    };
    let parent = mkdir_all_in_root(root, path.parent().unwrap_or(Path::new("/dev")), Kind::Dir)?;
    let parent = reopen_dir(&parent)?;
    let name = path
        .file_name()
        .ok_or_else(|| RuntimeError::InvalidSpec(format!("bad device path {}", path.display())))?;
    let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
    let rdev = makedev(d.major() as u64, d.minor() as u64);
    match nix::unistd::unlinkat(
        parent.as_fd(),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).context(|| format!("replace {}", path.display())),
    }
    mknodat(parent.as_fd(), name, kind, mode, rdev)
        .context(|| format!("mknod {}", path.display()))?;
    // mknod applies the umask; the config's mode and owner are what the container must see.
    nix::sys::stat::fchmodat(
        parent.as_fd(),
        name,
        mode,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .context(|| format!("chmod {}", path.display()))?;
    nix::unistd::fchownat(
        parent.as_fd(),
        name,
        d.uid().map(nix::unistd::Uid::from_raw),
        d.gid().map(nix::unistd::Gid::from_raw),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .context(|| format!("chown {}", path.display()))
}

/// `/dev/fd`, `/dev/stdin`… and `/dev/ptmx` → `pts/ptmx`, as every runtime provides.
pub fn create_dev_symlinks(root: &OwnedFd) -> Result<()> {
    let dev = reopen_dir(&mkdir_all_in_root(root, Path::new("/dev"), Kind::Dir)?)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).context(|| format!("symlink /dev/{name}")),
        }
    }
    // /dev/ptmx must be the devpts instance's ptmx so ptys belong to the container's devpts.
    let _ = nix::unistd::unlinkat(dev.as_fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
    nix::unistd::symlinkat("pts/ptmx", dev.as_fd(), "ptmx").context(|| "symlink /dev/ptmx".into())
}

/// Switches the process's root to `rootfs` with pivot_root and detaches the old root.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(|| "open old root".into())?;
    let new = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("open {}", rootfs.display()))?;
    fchdir(&new).context(|| "chdir to rootfs".into())?;
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then
    // removes it without needing a directory for it inside the container.
    pivot_root(".", ".").context(|| format!("pivot_root into {}", rootfs.display()))?;
    fchdir(&old).context(|| "chdir to old root".into())?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| "make old root rslave".into())?;
    umount2(".", MntFlags::MNT_DETACH).context(|| "detach old root".into())?;
    chdir("/").context(|| "chdir /".into())
}

/// The fallback for a rootfs pivot_root cannot use (ramfs, `--no-pivot`): move it over `/`
/// and chroot.
pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).context(|| format!("chdir {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .context(|| "move rootfs to /".into())?;
    chroot(".").context(|| "chroot".into())?;
    chdir("/").context(|| "chdir /".into())
}

/// Makes each existing path unreadable: /dev/null over files, an empty read-only tmpfs over
/// directories. Missing paths are skipped, as runc does.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let root = open_root(Path::new("/"))?;
    let null = verified_dev_null(&root)?;
    for p in paths {
        let target = match resolve_in_root(&root, Path::new(p), ResolveFlag::RESOLVE_NO_SYMLINKS) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
            Err(e) => return Err(e).context(|| format!("resolve masked path {p}")),
        };
        let is_dir = fstat(&target)
            .map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR);
        let result = if is_dir.unwrap_or(false) {
            mount(
                Some("tmpfs"),
                &fd_path(&target),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0"),
            )
        } else {
            mount(
                Some(&fd_path(&null)),
                &fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        result.context(|| format!("mask {p}"))?;
    }
    Ok(())
}

// Masks are bind mounts of /dev/null: make sure it is the real char device 1:3 and not an
// image-planted symlink or file (CVE-2025-31133).
fn verified_dev_null(root: &OwnedFd) -> Result<OwnedFd> {
    let fd = resolve_in_root(
        root,
        Path::new("/dev/null"),
        ResolveFlag::RESOLVE_NO_SYMLINKS,
    )
    .context(|| "open /dev/null in the container".into())?;
    let st = fstat(&fd).context(|| "stat /dev/null".into())?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || st.st_rdev != makedev(1, 3) {
        return Err(RuntimeError::InvalidSpec(
            "/dev/null in the container is not the null device".into(),
        ));
    }
    Ok(fd)
}

/// Makes each existing path read-only with a bind mount onto itself.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    let root = open_root(Path::new("/"))?;
    for p in paths {
        let target = match resolve_in_root(&root, Path::new(p), ResolveFlag::RESOLVE_NO_SYMLINKS) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
            Err(e) => return Err(e).context(|| format!("resolve read-only path {p}")),
        };
        mount(
            Some(&fd_path(&target)),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .context(|| format!("bind {p} read-only"))?;
        let target = resolve_in_root(&root, Path::new(p), ResolveFlag::RESOLVE_NO_SYMLINKS)
            .context(|| format!("reopen {p}"))?;
        remount(
            &target,
            Path::new(p),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
    }
    Ok(())
}

/// Remounts the container's `/` read-only (`root.readonly`).
pub fn remount_root_readonly() -> Result<()> {
    let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| "open /".into())?;
    remount(&root, Path::new("/"), MsFlags::MS_RDONLY)
}

/// Sets `/`'s propagation after pivot_root when the config asked for one.
pub fn set_root_propagation(propagation: &str) -> Result<()> {
    let flags = propagation_flag(propagation).ok_or_else(|| {
        RuntimeError::InvalidSpec(format!("unknown rootfsPropagation {propagation:?}"))
    })?;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .context(|| "set propagation of the container's /".into())
}

fn some_str(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// Checks that `fd` is on a real procfs before the runtime writes through it (sysctls,
/// oom_score_adj): an image or a racing mount must not redirect those writes (CVE-2025-52881).
pub fn ensure_procfs(fd: &OwnedFd, what: &str) -> Result<()> {
    let st = nix::sys::statfs::fstatfs(fd).context(|| format!("statfs {what}"))?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(RuntimeError::InvalidSpec(format!(
            "{what} is not on procfs"
        )));
    }
    Ok(())
}

/// A C string for paths handed to libc directly.
pub fn cstring(path: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        RuntimeError::InvalidSpec(format!("path {} contains a NUL byte", path.display()))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_become_flags_propagation_and_data() {
        let o = opts(&[
            "nosuid",
            "noexec",
            "nodev",
            "mode=755",
            "size=65536k",
            "rprivate",
            "ro",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = opts(&["ro", "rw", "rbind"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn mkdir_all_stays_inside_root_through_absolute_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let rootfs = dir.path();
        // An image symlink pointing at an absolute host path must resolve inside the rootfs.
        std::os::unix::fs::symlink(outside.path(), rootfs.join("escape")).unwrap();
        std::fs::create_dir_all(rootfs.join(outside.path().strip_prefix("/").unwrap())).unwrap();
        let root = open_root(rootfs).unwrap();
        mkdir_all_in_root(&root, Path::new("/escape/created"), Kind::Dir).unwrap();
        assert!(!outside.path().join("created").exists());
        assert!(
            rootfs
                .join(outside.path().strip_prefix("/").unwrap())
                .join("created")
                .is_dir()
        );
    }

    #[test]
    fn dangling_symlinks_are_not_followed_to_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        let root = open_root(dir.path()).unwrap();
        assert!(mkdir_all_in_root(&root, Path::new("/escape/created"), Kind::Dir).is_err());
        assert!(!outside.path().join("created").exists());
    }

    #[test]
    fn dotdot_cannot_climb_out_of_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_root(dir.path()).unwrap();
        mkdir_all_in_root(
            &root,
            Path::new("/../../../tmp-berth-should-not-exist"),
            Kind::Dir,
        )
        .unwrap();
        assert!(!Path::new("/tmp-berth-should-not-exist").exists());
        assert!(dir.path().join("tmp-berth-should-not-exist").is_dir());
    }

    #[test]
    fn file_mount_points_are_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_root(dir.path()).unwrap();
        mkdir_all_in_root(&root, Path::new("/etc/hosts"), Kind::File).unwrap();
        assert!(dir.path().join("etc/hosts").is_file());
    }
}
