//! Turning the current process into the container's process: rlimits, oom score, user and
//! groups, capabilities, no_new_privs, the working directory, and the final execve. Shared by the
//! container's init and by `exec`.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, PosixRlimitType, Process, User};

use crate::error::{Context, Result, RuntimeError};

/// The capability sets to apply, converted and checked once, before any fork.
#[derive(Debug, Clone, Default)]
pub struct CapabilitySets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    /// Requested capabilities the runtime itself does not hold (this host's bounding set lacks
    /// CAP_SYS_RESOURCE, for example): they cannot be granted and are reported as a warning.
    pub unavailable: Vec<String>,
}

impl CapabilitySets {
    /// Converts the config's sets, dropping what the runtime's own bounding set cannot grant.
    pub fn from_spec(spec: Option<&LinuxCapabilities>) -> Result<CapabilitySets> {
        let own =
            caps::read(None, CapSet::Bounding).map_err(|e| caps_error("read bounding set", e))?;
        let mut unavailable = HashSet::new();
        let mut convert = |set: Option<&oci_spec::runtime::Capabilities>| -> Result<CapsHashSet> {
            let mut out = CapsHashSet::new();
            for cap in set.into_iter().flatten() {
                let c = convert_cap(cap)?;
                if own.contains(&c) {
                    out.insert(c);
                } else {
                    unavailable.insert(c.to_string());
                }
            }
            Ok(out)
        };
        let Some(spec) = spec else {
            return Ok(CapabilitySets::default());
        };
        let sets = CapabilitySets {
            bounding: convert(spec.bounding().as_ref())?,
            effective: convert(spec.effective().as_ref())?,
            permitted: convert(spec.permitted().as_ref())?,
            inheritable: convert(spec.inheritable().as_ref())?,
            ambient: convert(spec.ambient().as_ref())?,
            unavailable: Vec::new(),
        };
        let mut unavailable: Vec<String> = unavailable.into_iter().collect();
        unavailable.sort();
        Ok(CapabilitySets {
            unavailable,
            ..sets
        })
    }
}

fn convert_cap(cap: &oci_spec::runtime::Capability) -> Result<Capability> {
    let name = serde_json::to_value(cap)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Capability::from_str(&name)
        .map_err(|_| RuntimeError::InvalidSpec(format!("unknown capability {name:?}")))
}

fn caps_error(what: &str, e: caps::errors::CapsError) -> RuntimeError {
    RuntimeError::Init {
        message: format!("{what}: {e}"),
        exit_code: 1,
    }
}

/// Applies every rlimit of the process.
pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    for r in rlimits {
        let resource = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct; the resource id comes from a fixed table.
        let rc = unsafe { libc::setrlimit(resource, &lim) };
        Errno::result(rc).context(|| {
            format!(
                "setrlimit {:?} soft {} hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Writes `/proc/self/oom_score_adj` through a handle checked to be on procfs.
pub fn set_oom_score_adj(value: i32) -> Result<()> {
    use std::io::Write;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/oom_score_adj")
        .context(|| "open /proc/self/oom_score_adj".into())?;
    crate::rootfs::ensure_procfs(
        &std::os::fd::OwnedFd::from(file.try_clone().context(|| "dup".into())?),
        "/proc/self/oom_score_adj",
    )?;
    (&file)
        .write_all(value.to_string().as_bytes())
        .context(|| format!("set oom_score_adj to {value}"))
}

/// Switches to the process's uid, gid and supplementary groups, keeping capabilities across the
/// uid change so [`apply_capabilities`] can set exactly the configured ones afterwards.
pub fn set_user(user: &User) -> Result<()> {
    // SAFETY: prctl(PR_SET_KEEPCAPS) takes plain integers.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })
        .context(|| "keep capabilities".into())?;
    let gid = Gid::from_raw(user.gid());
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        // Refused in a user namespace whose setgroups is "deny": only an error if groups were asked for.
        Err(Errno::EPERM) if groups.is_empty() => {}
        other => other.context(|| format!("setgroups {groups:?}"))?,
    }
    nix::unistd::setresgid(gid, gid, gid).context(|| format!("setgid {gid}"))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).context(|| format!("setuid {uid}"))?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// Drops the bounding set to the configured one. Needs CAP_SETPCAP, so it runs before the uid
/// change; the other sets come after it ([`apply_capabilities`]).
pub fn limit_bounding_set(sets: &CapabilitySets) -> Result<()> {
    for cap in caps::all() {
        if !sets.bounding.contains(&cap) {
            match caps::drop(None, CapSet::Bounding, cap) {
                Ok(()) => {}
                // Capabilities newer than the running kernel do not exist to drop.
                Err(_) if !cap_supported(cap) => {}
                Err(e) => return Err(caps_error(&format!("drop {cap} from the bounding set"), e)),
            }
        }
    }
    Ok(())
}

fn cap_supported(cap: Capability) -> bool {
    // SAFETY: PR_CAPBSET_READ only reads.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap.index() as libc::c_ulong, 0, 0, 0) >= 0 }
}

/// Sets the effective, permitted, inheritable and ambient sets to exactly the configured ones.
pub fn apply_capabilities(sets: &CapabilitySets) -> Result<()> {
    // capset(2) wants inheritable ⊆ old permitted and effective ⊆ permitted at every step:
    // shrink inheritable and effective while permitted is still full, then permitted.
    caps::set(None, CapSet::Inheritable, &sets.inheritable)
        .map_err(|e| caps_error("set inheritable capabilities", e))?;
    caps::set(None, CapSet::Effective, &sets.effective)
        .map_err(|e| caps_error("set effective capabilities", e))?;
    caps::set(None, CapSet::Permitted, &sets.permitted)
        .map_err(|e| caps_error("set permitted capabilities", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_error("clear ambient capabilities", e))?;
    for cap in &sets.ambient {
        caps::raise(None, CapSet::Ambient, *cap)
            .map_err(|e| caps_error(&format!("raise ambient {cap}"), e))?;
    }
    Ok(())
}

/// PR_SET_NO_NEW_PRIVS: setuid bits and file capabilities grant nothing after execve.
pub fn set_no_new_privileges() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
        .context(|| "set no_new_privs".into())?;
    Ok(())
}

/// Makes the process non-dumpable so processes in the container cannot ptrace it or open its
/// `/proc/<pid>/exe` while it still runs runtime code (CVE-2019-5736, CVE-2016-9962).
pub fn set_dumpable(dumpable: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            libc::c_ulong::from(dumpable),
            0,
            0,
            0,
        )
    })
    .context(|| "set dumpable".into())?;
    Ok(())
}

/// Creates a missing working directory (and its parents) inside the container's root.
pub fn create_cwd(cwd: &Path) -> Result<()> {
    if cwd.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(cwd).context(|| format!("create cwd {}", cwd.display()))
}

/// The working directory, checked to be inside the container: a leaked host fd used as
/// `cwd` (`/proc/self/fd/N`) must not put the process on the host filesystem (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd)
        .context(|| format!("chdir to cwd {:?} set in config.json", cwd.display()))?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(RuntimeError::Init {
            message: format!("cwd {} is outside the container's root", cwd.display()),
            exit_code: 1,
        }),
    }
}

/// Marks every fd from 3 up close-on-exec, except `keep` (the fds `--preserve-fds` passes on),
/// so nothing the runtime or its caller held reaches the container.
pub fn close_fds_on_exec(keep: &[RawFd]) -> Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .context(|| "list /proc/self/fd".into())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2 && !keep.contains(fd))
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on an fd number; a stale number (the read_dir fd itself) fails harmlessly.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Finds the program to execute the way execvp would, using the container's PATH.
pub fn find_executable(program: &str, env: &[String]) -> Result<PathBuf> {
    if program.is_empty() {
        return Err(not_found(program));
    }
    if program.contains('/') {
        return check_executable(Path::new(program)).map(|()| PathBuf::from(program));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e @ RuntimeError::Init { exit_code: 126, .. }) => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| not_found(program)))
}

fn check_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(RuntimeError::Init {
            message: format!("exec: {:?}: permission denied", path.display().to_string()),
            exit_code: 126,
        }),
        Err(_) => Err(not_found(&path.display().to_string())),
    }
}

fn not_found(program: &str) -> RuntimeError {
    RuntimeError::Init {
        message: format!("exec: {program:?}: executable file not found in $PATH"),
        exit_code: 127,
    }
}

/// Everything execve needs, converted before the point of no return.
pub struct ExecArgs {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

impl ExecArgs {
    pub fn new(path: &Path, process: &Process) -> Result<ExecArgs> {
        let c = |s: &str| {
            CString::new(s)
                .map_err(|_| RuntimeError::InvalidSpec(format!("{s:?} contains a NUL byte")))
        };
        Ok(ExecArgs {
            path: crate::rootfs::cstring(path)?,
            argv: process
                .args()
                .iter()
                .flatten()
                .map(|a| c(a))
                .collect::<Result<_>>()?,
            envp: process
                .env()
                .iter()
                .flatten()
                .map(|e| c(e))
                .collect::<Result<_>>()?,
        })
    }

    /// Replaces the process image. Returns only on failure.
    pub fn exec(&self) -> RuntimeError {
        let err = nix::unistd::execve(&self.path, &self.argv, &self.envp)
            .err()
            .unwrap_or(Errno::EINVAL);
        let exit_code = if err == Errno::ENOENT { 127 } else { 126 };
        RuntimeError::Init {
            message: format!("exec {:?}: {err}", self.path),
            exit_code,
        }
    }
}

/// The rlimit types an OCI config may use, for `features`.
pub fn rlimit_names() -> Vec<String> {
    [
        "RLIMIT_AS",
        "RLIMIT_CORE",
        "RLIMIT_CPU",
        "RLIMIT_DATA",
        "RLIMIT_FSIZE",
        "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_NOFILE",
        "RLIMIT_NPROC",
        "RLIMIT_RSS",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
        "RLIMIT_SIGPENDING",
        "RLIMIT_STACK",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn executables_are_found_on_the_containers_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).unwrap().ends_with("sh"));
        let missing = find_executable("no-such-program-berth", &env).unwrap_err();
        assert_eq!(missing.exit_code(), 127);
        assert!(missing.to_string().contains("executable file not found"));
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("data");
        std::fs::write(&plain, "not a program").unwrap();
        let plain = plain.to_str().unwrap();
        assert_eq!(find_executable(plain, &env).unwrap_err().exit_code(), 126);
        assert_eq!(
            find_executable("/nonexistent/x", &env)
                .unwrap_err()
                .exit_code(),
            127
        );
    }

    #[test]
    fn unknown_capability_names_do_not_parse() {
        let json = r#"{"bounding":["CAP_CHOWN","CAP_NOT_A_THING"]}"#;
        assert!(serde_json::from_str::<LinuxCapabilities>(json).is_err());
        let ok: LinuxCapabilities =
            serde_json::from_str(r#"{"bounding":["CAP_CHOWN"],"effective":["CAP_KILL"]}"#).unwrap();
        let sets = CapabilitySets::from_spec(Some(&ok)).unwrap();
        assert!(sets.bounding.contains(&Capability::CAP_CHOWN));
        assert!(sets.effective.contains(&Capability::CAP_KILL));
        assert!(sets.permitted.is_empty());
    }
}
