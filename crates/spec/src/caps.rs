//! Capabilities: Docker's default set of 14, `--cap-add`/`--cap-drop` (with `ALL`, with or
//! without `CAP_`, any case) and `--privileged`.
//!
//! "All capabilities" means all the runtime's bounding set holds, not all the kernel knows:
//! asking for one the runtime lacks makes the container fail to start (Docker 20.10's
//! `--privileged` fails on this project's hosts, which lack CAP_SYS_RESOURCE).

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::error::{Result, SpecError};

/// Every capability the kernel defines, indexed by its number.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capabilities (moby `DefaultCapabilities`).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The word that stands for every capability in `--cap-add` and `--cap-drop`.
const ALL: &str = "ALL";

/// Normalises `--cap-add`/`--cap-drop` names the way Docker does: any case, `CAP_` optional,
/// `ALL` kept as is. Unknown names are an error naming the normalised form.
pub fn normalize_capabilities(names: &[String]) -> Result<Vec<String>> {
    names.iter().map(|name| normalize_one(name)).collect()
}

fn normalize_one(name: &str) -> Result<String> {
    let upper = name.to_ascii_uppercase();
    if upper == ALL {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::UnknownCapability(full))
    }
}

/// The container's capability list: Docker's defaults tweaked by `--cap-add`/`--cap-drop`,
/// or everything the runtime holds for `--privileged`. `ALL` in `--cap-add` grants what the
/// runtime holds minus `--cap-drop`; `ALL` in `--cap-drop` starts from nothing plus
/// `--cap-add`. The result never exceeds `bounding` (the runtime's own set).
pub fn container_capabilities(
    add: &[String],
    drop: &[String],
    privileged: bool,
    bounding: &BTreeSet<String>,
) -> Result<BTreeSet<String>> {
    // Names are checked even when privileged makes them moot, as Docker does.
    let add = normalize_capabilities(add)?;
    let drop = normalize_capabilities(drop)?;
    if privileged {
        return Ok(bounding.clone());
    }
    let set: BTreeSet<String> = if add.iter().any(|c| c == ALL) {
        bounding
            .iter()
            .filter(|c| !drop.contains(c))
            .cloned()
            .collect()
    } else if drop.iter().any(|c| c == ALL) {
        add.into_iter().collect()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    Ok(set.into_iter().filter(|c| bounding.contains(c)).collect())
}

/// The OCI capability sets: for root, bounding = permitted = effective = `caps`; for any
/// other user only the bounding set, because execve as non-root clears the others anyway (and
/// so the process sees what Docker's does). Inheritable and ambient stay empty: a non-empty
/// inheritable set lets file capabilities be gained after execve (CVE-2022-24769).
pub fn capability_sets(caps: &BTreeSet<String>, uid: u32) -> Result<LinuxCapabilities> {
    let set = to_oci(caps)?;
    let mut sets = LinuxCapabilities::default();
    sets.set_bounding(Some(set.clone()));
    let (effective, permitted) = if uid == 0 {
        (set.clone(), set)
    } else {
        (HashSet::new(), HashSet::new())
    };
    sets.set_effective(Some(effective));
    sets.set_permitted(Some(permitted));
    sets.set_inheritable(Some(HashSet::new()));
    sets.set_ambient(Some(HashSet::new()));
    Ok(sets)
}

fn to_oci(caps: &BTreeSet<String>) -> Result<HashSet<Capability>> {
    caps.iter()
        .map(|name| {
            let bare = name.strip_prefix("CAP_").unwrap_or(name);
            Capability::from_str(bare).map_err(|_| SpecError::UnknownCapability(name.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::host::caps_from_mask;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// This host's runtime: everything but CAP_SYS_RESOURCE.
    fn bounding() -> BTreeSet<String> {
        caps_from_mask(0x1ff_feff_ffff)
    }

    fn defaults() -> BTreeSet<String> {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    }

    #[test]
    fn default_is_dockers_fourteen() {
        let caps = container_capabilities(&[], &[], false, &bounding()).unwrap();
        assert_eq!(caps, defaults());
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn names_are_normalised_case_insensitively() {
        let caps = container_capabilities(
            &strings(&["sys_admin", "CAP_net_admin", "Cap_Sys_Ptrace"]),
            &strings(&["mknod", "CAP_NET_RAW"]),
            false,
            &bounding(),
        )
        .unwrap();
        let mut want = defaults();
        want.remove("CAP_MKNOD");
        want.remove("CAP_NET_RAW");
        want.extend(strings(&[
            "CAP_SYS_ADMIN",
            "CAP_NET_ADMIN",
            "CAP_SYS_PTRACE",
        ]));
        assert_eq!(caps, want);
    }

    #[test]
    fn unknown_names_are_refused_with_dockers_words() {
        let err = container_capabilities(&strings(&["foo"]), &[], false, &bounding()).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown capability: "CAP_FOO""#);
        let err =
            container_capabilities(&[], &strings(&["CAP_BAR"]), true, &bounding()).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown capability: "CAP_BAR""#);
        assert!(container_capabilities(&strings(&[""]), &[], false, &bounding()).is_err());
    }

    #[test]
    fn add_all_grants_what_the_runtime_holds_minus_drops() {
        let caps = container_capabilities(
            &strings(&["all"]),
            &strings(&["NET_ADMIN"]),
            false,
            &bounding(),
        )
        .unwrap();
        assert_eq!(caps.len(), 39);
        assert!(!caps.contains("CAP_SYS_RESOURCE"));
        assert!(!caps.contains("CAP_NET_ADMIN"));
    }

    #[test]
    fn drop_all_keeps_only_adds() {
        let caps =
            container_capabilities(&strings(&["chown"]), &strings(&["ALL"]), false, &bounding())
                .unwrap();
        assert_eq!(caps, BTreeSet::from(["CAP_CHOWN".to_owned()]));
        let none = container_capabilities(&[], &strings(&["ALL"]), false, &bounding()).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn privileged_is_the_runtime_bounding_set() {
        let caps = container_capabilities(&[], &strings(&["chown"]), true, &bounding()).unwrap();
        assert_eq!(caps, bounding());
        // A capability the runtime lacks is never asked for, even when added by name.
        let caps =
            container_capabilities(&strings(&["SYS_RESOURCE"]), &[], false, &bounding()).unwrap();
        assert!(!caps.contains("CAP_SYS_RESOURCE"));
    }

    #[test]
    fn root_gets_three_equal_sets_and_others_only_bounding() {
        let sets = capability_sets(&defaults(), 0).unwrap();
        assert_eq!(sets.bounding().as_ref().unwrap().len(), 14);
        assert_eq!(sets.bounding(), sets.effective());
        assert_eq!(sets.bounding(), sets.permitted());
        assert!(sets.inheritable().as_ref().unwrap().is_empty());
        assert!(sets.ambient().as_ref().unwrap().is_empty());

        let sets = capability_sets(&defaults(), 1000).unwrap();
        assert_eq!(sets.bounding().as_ref().unwrap().len(), 14);
        assert!(sets.effective().as_ref().unwrap().is_empty());
        assert!(sets.permitted().as_ref().unwrap().is_empty());
    }

    #[test]
    fn every_kernel_capability_converts() {
        let all: BTreeSet<String> = ALL_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
        assert_eq!(to_oci(&all).unwrap().len(), 41);
    }
}
