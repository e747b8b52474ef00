//! Seccomp profiles in Docker's format, turned into the OCI `linux.seccomp` section for one
//! container.
//!
//! Docker's format extends the OCI one: `archMap` (a native architecture and the 32-bit ABIs
//! to filter with it), and per rule `includes`/`excludes` conditions on the host architecture,
//! the container's capabilities and the kernel version. They are evaluated here, once per
//! container, so the runtime only ever sees plain OCI rules. A rule gated on a capability
//! counts the capability as held when it is in the container's capability list (what root in
//! the container has in its effective set), so `--cap-add SYS_ADMIN` unlocks `mount`,
//! `unshare`… and lifts the mask on `clone`'s namespace flags.
//!
//! The default profile is data, `seccomp-default.json`, written for berth from the facts of
//! Docker's profile and libseccomp's syscall tables.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSyscall,
};
use serde::Deserialize;

use crate::error::{Result, SpecError};

/// Berth's default profile, in Docker's format.
pub const DEFAULT_PROFILE: &str = include_str!("seccomp-default.json");

/// Profiles larger than this are refused before parsing (Docker's own is about 20 KiB).
const MAX_PROFILE_BYTES: usize = 1 << 20;
/// At most this many rules, and this many syscall names in all, per profile.
const MAX_RULES: usize = 4096;
const MAX_NAMES: usize = 16 * 1024;
/// Syscalls take at most six arguments.
const MAX_ARGS: usize = 6;

/// A profile in Docker's JSON format (`docker run --security-opt seccomp=profile.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<DockerSyscall>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    /// The old single-name form.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Option<Condition>,
    #[serde(default)]
    excludes: Option<Condition>,
}

/// `includes`/`excludes`: conditions on the container and the host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(default)]
    caps: Option<Vec<String>>,
    /// libseccomp's native names: `amd64`, `x86`, `arm64`, `s390x`…
    #[serde(default)]
    arches: Option<Vec<String>>,
    /// `"<major>.<minor>"`.
    #[serde(default)]
    min_kernel: Option<String>,
}

/// What a rule's conditions are checked against.
#[derive(Debug, Clone)]
pub struct ProfileTarget<'a> {
    /// The container's capabilities (`CAP_…`).
    pub caps: &'a BTreeSet<String>,
    /// The host kernel as (major, minor).
    pub kernel: (u32, u32),
    /// libseccomp's name of the native architecture (`amd64`…), see [`native_arch`].
    pub arch: &'a str,
}

impl DockerProfile {
    /// Parses a profile, refusing oversized or malformed input with Docker's
    /// "Decoding seccomp profile failed" prefix.
    pub fn parse(json: &str) -> Result<Self> {
        if json.len() > MAX_PROFILE_BYTES {
            return Err(SpecError::SeccompProfile(format!(
                "profile is {} bytes, at most {MAX_PROFILE_BYTES} are accepted",
                json.len()
            )));
        }
        let profile: DockerProfile =
            serde_json::from_str(json).map_err(|e| SpecError::SeccompProfile(e.to_string()))?;
        profile.check_limits()?;
        Ok(profile)
    }

    /// Berth's default profile.
    pub fn default_profile() -> Result<Self> {
        Self::parse(DEFAULT_PROFILE)
    }

    fn check_limits(&self) -> Result<()> {
        let rules = self.syscalls.as_deref().unwrap_or_default();
        let names: usize = rules
            .iter()
            .map(|r| r.names.as_ref().map_or(0, Vec::len) + usize::from(r.name.is_some()))
            .sum();
        if rules.len() > MAX_RULES || names > MAX_NAMES {
            return Err(SpecError::SeccompProfile(format!(
                "{} rules naming {names} syscalls is too many (at most {MAX_RULES} rules, \
                 {MAX_NAMES} names)",
                rules.len()
            )));
        }
        if let Some(rule) = rules
            .iter()
            .find(|r| r.args.as_ref().is_some_and(|a| a.len() > MAX_ARGS))
        {
            return Err(SpecError::SeccompProfile(format!(
                "rule for {:?} has more than {MAX_ARGS} argument conditions",
                rule_names(rule)
            )));
        }
        Ok(())
    }

    /// The OCI section for one container, or `None` when the profile disables seccomp (no
    /// default action and no rules, as Docker treats it).
    pub fn resolve(&self, target: &ProfileTarget<'_>) -> Result<Option<LinuxSeccomp>> {
        let rules = self.syscalls.as_deref().unwrap_or_default();
        let Some(default_action) = self.default_action else {
            if rules.is_empty() {
                return Ok(None);
            }
            return Err(SpecError::SeccompProfile(
                "defaultAction is required when syscalls are listed".into(),
            ));
        };
        if self.architectures.as_ref().is_some_and(|a| !a.is_empty())
            && self.arch_map.as_ref().is_some_and(|a| !a.is_empty())
        {
            return Err(SpecError::SeccompProfile(
                "both 'architectures' and 'archMap' are specified in the seccomp profile, use \
                 either 'architectures' or 'archMap'"
                    .into(),
            ));
        }
        let mut syscalls = Vec::new();
        for rule in rules {
            if rule.applies(target)? {
                syscalls.push(rule.to_oci()?);
            }
        }
        let mut out = LinuxSeccomp::default();
        out.set_default_action(default_action);
        out.set_default_errno_ret(self.default_errno_ret);
        out.set_architectures(Some(self.architectures_for(target.arch)));
        out.set_flags(self.flags.clone());
        out.set_listener_path(self.listener_path.as_ref().map(Into::into));
        out.set_listener_metadata(self.listener_metadata.clone());
        out.set_syscalls(Some(syscalls));
        Ok(Some(out))
    }

    /// `architectures` as given, or the `archMap` entry of the native architecture with its
    /// sub-architectures (32-bit ABIs must be filtered too, or they are a way around).
    fn architectures_for(&self, native: &str) -> Vec<Arch> {
        if let Some(list) = self.architectures.as_ref().filter(|a| !a.is_empty()) {
            return list.clone();
        }
        let Some(native) = scmp_arch(native) else {
            return Vec::new();
        };
        self.arch_map
            .iter()
            .flatten()
            .find(|entry| entry.architecture == native)
            .map(|entry| {
                std::iter::once(entry.architecture)
                    .chain(entry.sub_architectures.iter().flatten().copied())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl DockerSyscall {
    /// Whether the rule is part of this container's filter: every `includes` condition holds
    /// and no `excludes` condition does.
    fn applies(&self, target: &ProfileTarget<'_>) -> Result<bool> {
        if let Some(exc) = &self.excludes
            && (exc.arches.iter().flatten().any(|a| a == target.arch)
                || exc.caps.iter().flatten().any(|c| target.caps.contains(c))
                || exc
                    .min_kernel
                    .as_deref()
                    .map(parse_min_kernel)
                    .transpose()?
                    .is_some_and(|min| target.kernel >= min))
        {
            return Ok(false);
        }
        if let Some(inc) = &self.includes {
            let arches = inc.arches.as_deref().unwrap_or_default();
            if !arches.is_empty() && !arches.iter().any(|a| a == target.arch) {
                return Ok(false);
            }
            if !inc.caps.iter().flatten().all(|c| target.caps.contains(c)) {
                return Ok(false);
            }
            if let Some(min) = inc.min_kernel.as_deref()
                && target.kernel < parse_min_kernel(min)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn to_oci(&self) -> Result<LinuxSyscall> {
        let names = match (&self.name, &self.names) {
            (Some(_), Some(names)) if !names.is_empty() => {
                return Err(SpecError::SeccompProfile(
                    "both 'name' and 'names' are specified in the seccomp profile, use either \
                     'name' or 'names'"
                        .into(),
                ));
            }
            (Some(name), _) => vec![name.clone()],
            (None, names) => names.clone().unwrap_or_default(),
        };
        let mut rule = LinuxSyscall::default();
        rule.set_names(names);
        rule.set_action(self.action);
        rule.set_errno_ret(self.errno_ret);
        rule.set_args(self.args.clone());
        Ok(rule)
    }
}

fn rule_names(rule: &DockerSyscall) -> Vec<String> {
    rule.names
        .clone()
        .or_else(|| rule.name.clone().map(|n| vec![n]))
        .unwrap_or_default()
}

/// `"4.8"` → (4, 8); Docker refuses anything but `<major>.<minor>`, and `0.0`.
fn parse_min_kernel(text: &str) -> Result<(u32, u32)> {
    let bad = || {
        SpecError::SeccompProfile(format!(
            "invalid kernel version: {text:?}, expected \"<kernel>.<major>\""
        ))
    };
    let (major, minor) = text.split_once('.').ok_or_else(bad)?;
    let major: u8 = major.parse().map_err(|_| bad())?;
    let minor: u8 = minor.parse().map_err(|_| bad())?;
    if major == 0 && minor == 0 {
        return Err(bad());
    }
    Ok((major.into(), minor.into()))
}

/// Reads a profile file for `--security-opt seccomp=<file>`, as the docker CLI does before it
/// sends the content in the request; files larger than [`DockerProfile::parse`] accepts are
/// refused without reading them whole.
pub fn read_profile_file(path: &Path) -> Result<String> {
    let failed = |e: std::io::Error| {
        SpecError::invalid(format!(
            "opening seccomp profile ({}) failed: {e}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut text = String::new();
    file.take(MAX_PROFILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(failed)?;
    if text.len() > MAX_PROFILE_BYTES {
        return Err(SpecError::SeccompProfile(format!(
            "{} is larger than {MAX_PROFILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(text)
}

/// libseccomp's name for the architecture this binary runs on (what `includes.arches` and
/// `excludes.arches` are compared with).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loongarch64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        other => other,
    }
}

/// The OCI architecture for a libseccomp native name.
fn scmp_arch(native: &str) -> Option<Arch> {
    Some(match native {
        "amd64" => Arch::ScmpArchX86_64,
        "x86" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "riscv64" => Arch::ScmpArchRiscv64,
        "s390x" => Arch::ScmpArchS390x,
        "s390" => Arch::ScmpArchS390,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "ppc64" => Arch::ScmpArchPpc64,
        "loongarch64" => Arch::ScmpArchLoongarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mipsel64" => Arch::ScmpArchMipsel64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::caps::DEFAULT_CAPABILITIES;

    fn defaults() -> BTreeSet<String> {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    }

    fn resolve(caps: &BTreeSet<String>, kernel: (u32, u32), arch: &str) -> LinuxSeccomp {
        let target = ProfileTarget { caps, kernel, arch };
        DockerProfile::default_profile()
            .unwrap()
            .resolve(&target)
            .unwrap()
            .unwrap()
    }

    fn allowed(seccomp: &LinuxSeccomp) -> BTreeSet<String> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
            .flat_map(|r| r.names().clone())
            .collect()
    }

    fn rules_for<'a>(seccomp: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn default_profile_structure() {
        let s = resolve(&defaults(), (6, 18), "amd64");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_deref().unwrap(),
            [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        let allowed = allowed(&s);
        for name in [
            "read",
            "execve",
            "chroot",
            "arch_prctl",
            "modify_ldt",
            "ptrace",
        ] {
            assert!(allowed.contains(name), "{name}");
        }
        for name in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "io_uring_setup",
            "kexec_load",
            "pivot_root",
            "userfaultfd",
            "open_by_handle_at",
            "reboot",
            "swapon",
            "init_module",
            "clock_settime",
            "iopl",
            "acct",
            "kcmp",
            "set_tls",
            "clone",
        ] {
            assert!(!allowed.contains(name), "{name}");
        }
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!((arg.index(), arg.value()), (0, 0x7E02_0000));
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        assert_eq!(rules_for(&s, "socket").len(), 3);
        assert_eq!(rules_for(&s, "personality").len(), 5);
    }

    #[test]
    fn sys_admin_unlocks_its_group_and_lifts_the_clone_mask() {
        let mut caps = defaults();
        caps.insert("CAP_SYS_ADMIN".into());
        let s = resolve(&caps, (6, 18), "amd64");
        let allowed = allowed(&s);
        for name in [
            "mount",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "umount2",
            "sethostname",
        ] {
            assert!(allowed.contains(name), "{name}");
        }
        assert!(rules_for(&s, "clone").iter().all(|r| r.args().is_none()));
        assert!(
            rules_for(&s, "clone3")
                .iter()
                .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        );
        assert!(!allowed.contains("keyctl"));
    }

    #[test]
    fn other_capability_groups() {
        let caps: BTreeSet<String> = ["CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_DAC_READ_SEARCH"]
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let allowed = allowed(&resolve(&caps, (6, 18), "amd64"));
        for name in ["kcmp", "pidfd_getfd", "clock_settime", "open_by_handle_at"] {
            assert!(allowed.contains(name), "{name}");
        }
        // Without CAP_SYS_CHROOT, chroot is not allowed.
        assert!(!allowed.contains("chroot"));
    }

    #[test]
    fn min_kernel_and_arch_conditions() {
        let old = allowed(&resolve(&defaults(), (4, 4), "amd64"));
        assert!(!old.contains("ptrace"));
        let arm = resolve(&defaults(), (6, 1), "arm64");
        let arm_allowed = allowed(&arm);
        assert!(arm_allowed.contains("set_tls"));
        assert!(!arm_allowed.contains("arch_prctl"));
        assert_eq!(
            arm.architectures().as_deref().unwrap(),
            [Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        let s390 = resolve(&defaults(), (6, 1), "s390x");
        let clone = rules_for(&s390, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args().as_ref().unwrap()[0].index(), 1);
    }

    #[test]
    fn profile_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, DEFAULT_PROFILE).unwrap();
        let text = read_profile_file(&path).unwrap();
        assert!(DockerProfile::parse(&text).is_ok());
        std::fs::write(&path, vec![b' '; MAX_PROFILE_BYTES + 10]).unwrap();
        assert!(read_profile_file(&path).is_err());
        let err = read_profile_file(&dir.path().join("missing.json")).unwrap_err();
        assert!(
            err.to_string().starts_with("opening seccomp profile ("),
            "{err}"
        );
    }

    #[test]
    fn custom_profiles_in_dockers_format() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"name":"mkdir","action":"SCMP_ACT_ERRNO"},
            {"names":["chmod"],"action":"SCMP_ACT_ERRNO","excludes":{"minKernel":"3.0"}},
            {"names":["chown"],"action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        let caps = defaults();
        let target = ProfileTarget {
            caps: &caps,
            kernel: (6, 18),
            arch: "amd64",
        };
        let s = DockerProfile::parse(json)
            .unwrap()
            .resolve(&target)
            .unwrap()
            .unwrap();
        let rules = s.syscalls().as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].names(), &["mkdir".to_owned()]);
        assert!(s.architectures().as_ref().unwrap().is_empty());

        // Nothing at all: seccomp off, as Docker reads it.
        assert!(
            DockerProfile::parse("{}")
                .unwrap()
                .resolve(&target)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn hostile_and_malformed_profiles_are_clear_errors() {
        let caps = defaults();
        let target = ProfileTarget {
            caps: &caps,
            kernel: (6, 18),
            arch: "amd64",
        };
        let cases = [
            "not json",
            r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_BOGUS"}]}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"]}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":"mkdir"}"#,
        ];
        for json in cases {
            let err = DockerProfile::parse(json).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("Decoding seccomp profile failed: "),
                "{err}"
            );
        }
        let resolve_err = |json: &str| {
            DockerProfile::parse(json)
                .unwrap()
                .resolve(&target)
                .unwrap_err()
                .to_string()
        };
        assert!(resolve_err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#
        )
        .contains("both 'architectures' and 'archMap'"));
        assert!(resolve_err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#
        )
        .contains("both 'name' and 'names'"));
        assert!(resolve_err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"four"}}]}"#
        )
        .contains("invalid kernel version"));

        let huge = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","pad":"{}"}}"#,
            "x".repeat(2 << 20)
        );
        assert!(
            DockerProfile::parse(&huge)
                .unwrap_err()
                .to_string()
                .contains("bytes")
        );
        let many = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
            vec![r#"{"names":["a"],"action":"SCMP_ACT_ERRNO"}"#; 5000].join(",")
        );
        assert!(
            DockerProfile::parse(&many)
                .unwrap_err()
                .to_string()
                .contains("too many")
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(DockerProfile::parse(&deep).is_err());
        let args = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[
            {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":1,"op":"SCMP_CMP_EQ"},
            {"index":2,"value":1,"op":"SCMP_CMP_EQ"},{"index":3,"value":1,"op":"SCMP_CMP_EQ"},
            {"index":4,"value":1,"op":"SCMP_CMP_EQ"},{"index":5,"value":1,"op":"SCMP_CMP_EQ"},
            {"index":5,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#;
        assert!(DockerProfile::parse(args).is_err());
    }
}
