//! Facts about the host and the runtime that a spec must respect: the runtime's own bounding
//! capability set (this host's lacks CAP_SYS_RESOURCE, so "all capabilities" must mean "all
//! we hold"), hard rlimits (they cannot be raised without CAP_SYS_RESOURCE), the kernel version
//! (seccomp `minKernel`), the CPU count (`--cpus`), the cgroup version (cgroupns default) and
//! which per-CPU thermal files exist (masked paths).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use nix::sys::resource::{Resource, getrlimit};

use crate::caps::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES};
use crate::resources::RLIMITS;

/// What [`HostFacts::probe`] found; tests build their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Capabilities in the runtime's bounding set (`CAP_…` names): the most a container can
    /// get, and what `--privileged` and `--cap-add ALL` grant.
    pub bounding: BTreeSet<String>,
    /// Kernel version as (major, minor), e.g. (6, 18).
    pub kernel: (u32, u32),
    /// Hard rlimits of the runtime by Docker name (`nofile`); `u64::MAX` is unlimited.
    pub hard_limits: BTreeMap<String, u64>,
    /// CPUs usable by the runtime (bounds `--cpus`).
    pub cpus: u32,
    /// `/sys/fs/cgroup` is a pure cgroup v2 hierarchy (cgroupns then defaults to private).
    pub cgroup_v2: bool,
    /// The memory controller can limit swap (v1 `memory.memsw.*` exists, or v2); without it
    /// `--memory-swap` is dropped, as Docker does.
    pub swap_limit: bool,
    /// Per-CPU `thermal_throttle` directories that exist (masked like Docker does).
    pub thermal_throttle: Vec<String>,
}

impl HostFacts {
    /// Reads the facts from `/proc`, `/sys` and the calling process. Whatever cannot be read
    /// falls back to the safe side: no capabilities beyond Docker's defaults, kernel (0, 0),
    /// one CPU, no raisable limits.
    pub fn probe() -> Self {
        let cgroup_v2 = is_cgroup2(Path::new("/sys/fs/cgroup"));
        HostFacts {
            bounding: read_bounding_set().unwrap_or_else(|| {
                DEFAULT_CAPABILITIES
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect()
            }),
            kernel: read_kernel_version().unwrap_or((0, 0)),
            hard_limits: read_hard_limits(),
            cpus: std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            cgroup_v2,
            swap_limit: cgroup_v2
                || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
            thermal_throttle: thermal_throttle_dirs(Path::new("/sys/devices/system/cpu")),
        }
    }
}

/// The `CapBnd` line of `/proc/self/status` as capability names.
fn read_bounding_set() -> Option<BTreeSet<String>> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    let mask = u64::from_str_radix(hex.trim(), 16).ok()?;
    Some(caps_from_mask(mask))
}

/// Capability names for the bits set in `mask` (bits the kernel knows but we do not are
/// ignored: they have no name a spec could carry).
pub fn caps_from_mask(mask: u64) -> BTreeSet<String> {
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

/// `6.18.0-amd64` → (6, 18).
fn read_kernel_version() -> Option<(u32, u32)> {
    parse_kernel_version(&fs::read_to_string("/proc/sys/kernel/osrelease").ok()?)
}

/// Parses the leading `major.minor` of a kernel release string; suffixes are ignored.
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor_digits: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor_digits.parse().ok()?))
}

fn read_hard_limits() -> BTreeMap<String, u64> {
    RLIMITS
        .iter()
        .filter_map(|&(name, resource)| {
            let (_, hard) = getrlimit(resource).ok()?;
            Some((name.to_owned(), hard))
        })
        .collect()
}

/// The nix resource for a Docker ulimit name.
pub(crate) fn rlimit_resource(name: &str) -> Option<Resource> {
    RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

fn is_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// `/sys/devices/system/cpu/cpu<N>/thermal_throttle` for every N where it exists.
fn thermal_throttle_dirs(cpu_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(cpu_dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path().join("thermal_throttle"))
        .filter(|p| p.is_dir())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_ignore_suffixes() {
        assert_eq!(parse_kernel_version("6.18.0-amd64\n"), Some((6, 18)));
        assert_eq!(parse_kernel_version("3.12-1-amd64"), Some((3, 12)));
        assert_eq!(parse_kernel_version("4.8-rc5"), Some((4, 8)));
        assert_eq!(parse_kernel_version("5.15+"), Some((5, 15)));
        assert_eq!(parse_kernel_version("garbage"), None);
    }

    #[test]
    fn this_hosts_bounding_mask_lacks_sys_resource() {
        let caps = caps_from_mask(0x1ff_feff_ffff);
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains("CAP_SYS_RESOURCE"));
        assert!(caps.contains("CAP_CHECKPOINT_RESTORE"));
    }
}
