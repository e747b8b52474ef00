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
