//! Kernel parameters set inside the container. Only keys that belong to a namespace the
//! container owns are accepted; the rest would change the host (CVE-2022-0811).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::ResolveFlag;
use nix::sched::CloneFlags;

use crate::error::{Context, Result, RuntimeError};
use crate::rootfs::{ensure_procfs, open_root, resolve_in_root};

const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Checks one key against the namespaces the container creates (`own`): IPC keys and
/// `fs.mqueue.*` need an IPC namespace, `net.*` a network namespace, `kernel.domainname` a UTS
/// namespace. Everything else is refused.
pub fn validate(key: &str, own: CloneFlags) -> Result<String> {
    let normalized = key.replace('/', ".");
    if normalized
        .split('.')
        .any(|c| c.is_empty() || c == ".." || c == ".")
        || !normalized
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'*'))
    {
        return Err(RuntimeError::InvalidSpec(format!(
            "sysctl {key:?} is not a valid key"
        )));
    }
    let needs = if IPC_KEYS.contains(&normalized.as_str()) || normalized.starts_with("fs.mqueue.") {
        Some((CloneFlags::CLONE_NEWIPC, "an IPC"))
    } else if normalized.starts_with("net.") {
        Some((CloneFlags::CLONE_NEWNET, "a network"))
    } else if normalized == "kernel.domainname" {
        Some((CloneFlags::CLONE_NEWUTS, "a UTS"))
    } else {
        None
    };
    match needs {
        Some((flag, _)) if own.contains(flag) => Ok(normalized),
        Some((_, what)) => Err(RuntimeError::InvalidSpec(format!(
            "sysctl {key:?} needs {what} namespace of the container's own"
        ))),
        None => Err(RuntimeError::InvalidSpec(format!(
            "sysctl {key:?} is not namespaced and would change the host: refused"
        ))),
    }
}

/// `net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`.
pub fn proc_path(normalized: &str) -> PathBuf {
    Path::new("/proc/sys").join(normalized.replace('.', "/"))
}

/// Writes one validated sysctl inside the container (after pivot_root), through a handle that
/// cannot follow symlinks and is checked to be on procfs. The value is written verbatim.
pub fn write(normalized: &str, value: &str) -> Result<()> {
    let root = open_root(Path::new("/"))?;
    let path = proc_path(normalized);
    let fd: OwnedFd = resolve_in_root(
        &root,
        &path,
        ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_XDEV,
    )
    .or_else(|_| resolve_in_root(&root, &path, ResolveFlag::RESOLVE_NO_SYMLINKS))
    .context(|| format!("open {}", path.display()))?;
    ensure_procfs(&fd, &path.display().to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(crate::rootfs::fd_path(&fd))
        .context(|| format!("open {} for writing", path.display()))?;
    file.write_all(value.as_bytes())
        .context(|| format!("set sysctl {normalized} to {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: CloneFlags = CloneFlags::from_bits_truncate(
        CloneFlags::CLONE_NEWIPC.bits()
            | CloneFlags::CLONE_NEWNET.bits()
            | CloneFlags::CLONE_NEWUTS.bits(),
    );

    #[test]
    fn namespaced_keys_pass_with_their_namespace() {
        assert!(validate("kernel.shm_rmid_forced", ALL).is_ok());
        assert!(validate("fs.mqueue.msg_max", ALL).is_ok());
        assert!(validate("net.ipv4.ip_forward", ALL).is_ok());
        assert!(validate("net/ipv4/ping_group_range", ALL).is_ok());
        assert!(validate("kernel.domainname", ALL).is_ok());
    }

    #[test]
    fn host_keys_and_missing_namespaces_are_refused() {
        assert!(validate("kernel.core_pattern", ALL).is_err());
        assert!(validate("vm.overcommit_memory", ALL).is_err());
        assert!(validate("kernel.hostname", ALL).is_err());
        assert!(validate("net.ipv4.ip_forward", CloneFlags::CLONE_NEWIPC).is_err());
        assert!(validate("kernel.sem", CloneFlags::CLONE_NEWNET).is_err());
    }

    #[test]
    fn cr8escape_style_keys_are_refused() {
        assert!(validate("kernel.shm_rmid_forced=1+kernel.core_pattern", ALL).is_err());
        assert!(validate("net/../../kernel/core_pattern", ALL).is_err());
        assert!(validate("net..ipv4", ALL).is_err());
    }
}
