//! Protection of the runtime binary against CVE-2019-5736: while runtime code runs inside a
//! container's namespaces, a process in the container could open `/proc/<pid>/exe` and, once
//! the runtime exits, write to the host binary through it. We run from a read-only bind mount
//! of our own binary in a private mount namespace, so any such open for writing fails with
//! EROFS. The cost is one unshare, two mounts and one re-exec per runtime invocation, instead
//! of copying the binary into a sealed memfd for every container.

use std::ffi::CString;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::statvfs::FsFlags;

use crate::error::{Context, Result, RuntimeError};

const MARKER: &str = "_BERTH_RO_EXE";

/// True when the running binary cannot be written through `/proc/self/exe`.
pub fn exe_is_readonly() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY))
}

/// Re-executes the current process from a read-only bind mount of its own binary, unless it
/// already runs from one. On success this does not return.
pub fn reexec_from_readonly_binary() -> Result<()> {
    if exe_is_readonly() {
        // Don't pass the marker on to the container or to hooks.
        // SAFETY: single-threaded at this point (called first thing by the command line).
        unsafe { std::env::remove_var(MARKER) };
        return Ok(());
    }
    if std::env::var_os(MARKER).is_some() {
        return Err(RuntimeError::Init {
            message: "could not run from a read-only copy of the runtime binary".into(),
            exit_code: 1,
        });
    }
    let exe = std::fs::read_link("/proc/self/exe").context(|| "read /proc/self/exe".into())?;
    mount_readonly_copy(&exe)?;
    exec_self(&exe)
}

fn mount_readonly_copy(exe: &Path) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)
        .context(|| "create private mount namespace".into())?;
    // rslave: the host's later mounts still reach us, ours never reach the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context(|| "make / rslave".into())?;
    nix::mount::mount(Some(exe), exe, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .context(|| format!("bind {}", exe.display()))?;
    nix::mount::mount(
        None::<&str>,
        exe,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .context(|| format!("remount {} read-only", exe.display()))
}

fn exec_self(exe: &Path) -> Result<()> {
    let to_c = |s: String| {
        CString::new(s)
            .map_err(|_| RuntimeError::InvalidSpec("argument contains a NUL byte".into()))
    };
    let argv: Vec<CString> = std::env::args().map(to_c).collect::<Result<_>>()?;
    let mut envp: Vec<CString> = std::env::vars()
        .map(|(k, v)| to_c(format!("{k}={v}")))
        .collect::<Result<_>>()?;
    envp.push(to_c(format!("{MARKER}=1"))?);
    let path = crate::rootfs::cstring(exe)?;
    let err = nix::unistd::execve(&path, &argv, &envp).err();
    Err(RuntimeError::Init {
        message: format!("re-exec {}: {err:?}", exe.display()),
        exit_code: 1,
    })
}

/// A read-only view of a binary that sits in no mount table: bind-mounted read-only, opened
/// (`O_PATH`), then detached at once. Executing [`ReadonlyBinary::exec_path`] runs the binary
/// from that read-only mount, so a write through the new process's `/proc/<pid>/exe` fails
/// with EROFS and `berth shim` need not unshare and re-exec itself; and since the mount is
/// detached, nothing is left mounted when the holder dies, however it dies.
#[derive(Debug)]
pub struct ReadonlyBinary {
    fd: std::os::fd::OwnedFd,
}

impl ReadonlyBinary {
    /// Makes the view of `binary`, using a temporary mount point in `scratch_dir`.
    pub fn open(binary: &Path, scratch_dir: &Path) -> Result<ReadonlyBinary> {
        let point = scratch_dir.join(format!(".ro-binary-{}", std::process::id()));
        std::fs::File::create(&point).context(|| format!("create {}", point.display()))?;
        let result = Self::mount_and_open(binary, &point);
        let _ = std::fs::remove_file(&point);
        result
    }

    fn mount_and_open(binary: &Path, point: &Path) -> Result<ReadonlyBinary> {
        nix::mount::mount(
            Some(binary),
            point,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .context(|| format!("bind {}", binary.display()))?;
        let opened = nix::mount::mount(
            None::<&str>,
            point,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .context(|| format!("remount {} read-only", point.display()))
        .and_then(|()| {
            nix::fcntl::open(
                point,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .context(|| format!("open {}", point.display()))
        });
        // The open descriptor keeps the detached mount alive; the mount table forgets it.
        let detached = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH)
            .context(|| format!("detach {}", point.display()));
        let fd = opened?;
        detached?;
        Ok(ReadonlyBinary { fd })
    }

    /// The path to execute (`/proc/self/fd/<n>`): valid in this process and in children
    /// spawned from it, as long as `self` lives.
    pub fn exec_path(&self) -> std::path::PathBuf {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", self.fd.as_raw_fd()).into()
    }
}
