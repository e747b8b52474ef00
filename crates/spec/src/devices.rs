//! Devices: the device cgroup allow list (Docker's defaults plus the list runc always adds,
//! written out so every runtime enforces the same thing), `--device` (a node or a directory
//! of them), `--device-cgroup-rule`, and every host device for `--privileged`.
//!
//! CAP_MKNOD is a default capability, so device nodes can exist in a container; the cgroup
//! rules are what stop them being opened.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::config::DeviceMapping;
use crate::error::{Result, SpecError};

/// Directories of `/dev` not walked for `--privileged` (mounted per container, or not
/// devices).
const SKIPPED_DEV_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
/// How deep a `--device` directory or `/dev` is walked.
const MAX_WALK_DEPTH: usize = 8;

/// A device cgroup rule; `None` major/minor is `*`.
fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    r
}

/// The default rules: deny everything; allow null, zero, full, random, urandom, tty, console,
/// ptmx, the pts devices and /dev/net/tun; keep fuse (10:229) closed; allow mknod of anything.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let c = |major, minor| rule(true, C, Some(major), Some(minor), "rwm");
    vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm"),
        // Docker's own allow list.
        c(1, 5),
        c(1, 3),
        c(1, 9),
        c(1, 8),
        c(5, 0),
        c(5, 1),
        rule(false, C, Some(10), Some(229), "rwm"),
        // What runc appends to every container: mknod of anything (opening stays denied),
        // the standard nodes, pts, ptmx and tun.
        rule(true, C, None, None, "m"),
        rule(true, B, None, None, "m"),
        c(1, 7),
        rule(true, C, Some(136), None, "rwm"),
        c(5, 2),
        c(10, 200),
    ]
}

/// Allow everything: `--privileged`.
pub fn allow_all_rules() -> Vec<LinuxDeviceCgroup> {
    vec![rule(true, LinuxDeviceType::A, None, None, "rwm")]
}

/// Parses `--device host[:container][:perms]` as the docker CLI does.
pub fn parse_device(raw: &str) -> Result<DeviceMapping> {
    let invalid = || SpecError::invalid(format!("invalid device specification: {raw}"));
    let parts: Vec<&str> = raw.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [host] => (*host, "", "rwm"),
        [host, second] if valid_device_mode(second) => (*host, "", *second),
        [host, container] => (*host, *container, "rwm"),
        [host, container, perms] => (*host, *container, *perms),
        _ => return Err(invalid()),
    };
    if host.is_empty() {
        return Err(invalid());
    }
    let mapping = DeviceMapping {
        path_on_host: host.to_owned(),
        path_in_container: if container.is_empty() {
            host
        } else {
            container
        }
        .to_owned(),
        cgroup_permissions: perms.to_owned(),
    };
    check_mapping(&mapping)?;
    Ok(mapping)
}

/// `r`, `w`, `m`, each at most once, at least one.
fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.len() <= 3
        && mode.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
        && mode
            .bytes()
            .enumerate()
            .all(|(i, b)| !mode.as_bytes()[..i].contains(&b))
}

fn check_mapping(d: &DeviceMapping) -> Result<()> {
    if !d.cgroup_permissions.is_empty() && !valid_device_mode(&d.cgroup_permissions) {
        return Err(SpecError::invalid(format!(
            "invalid device mode: {}",
            d.cgroup_permissions
        )));
    }
    let target = if d.path_in_container.is_empty() {
        &d.path_on_host
    } else {
        &d.path_in_container
    };
    if !target.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "{target} is not an absolute path"
        )));
    }
    Ok(())
}

/// The devices and cgroup rules for one `--device`: the node itself, or every node under a
/// directory (placed under the container path).
pub fn devices_for_mapping(
    d: &DeviceMapping,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    check_mapping(d)?;
    let err = |reason: String| SpecError::Device {
        path: d.path_on_host.clone(),
        reason,
    };
    let perms = if d.cgroup_permissions.is_empty() {
        "rwm"
    } else {
        &d.cgroup_permissions
    };
    let target = if d.path_in_container.is_empty() {
        &d.path_on_host
    } else {
        &d.path_in_container
    };
    let host = fs::canonicalize(&d.path_on_host).map_err(|e| err(e.to_string()))?;
    let meta = fs::metadata(&host).map_err(|e| err(e.to_string()))?;
    let found = if meta.is_dir() {
        let mut found = Vec::new();
        walk_devices(&host, Path::new(target), 0, &[], &mut found);
        found
    } else {
        let dev = device_from_metadata(&meta, Path::new(target))
            .ok_or_else(|| err("not a device node".into()))?;
        vec![dev]
    };
    let rules = found
        .iter()
        .map(|dev| rule(true, dev.typ(), Some(dev.major()), Some(dev.minor()), perms))
        .collect();
    Ok((found, rules))
}

/// Every char and block device under `/dev`, for `--privileged`.
pub fn host_devices(dev: &Path) -> Vec<LinuxDevice> {
    let mut found = Vec::new();
    walk_devices(dev, dev, 0, &SKIPPED_DEV_DIRS, &mut found);
    // The console belongs to the container's terminal, not the host's.
    found.retain(|d| d.path() != Path::new("/dev/console"));
    found
}

/// Collects device nodes under `dir` (not following symlinks), named under `target`.
fn walk_devices(
    dir: &Path,
    target: &Path,
    depth: usize,
    skip: &[&str],
    out: &mut Vec<LinuxDevice>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let dest = target.join(&name);
        if meta.is_dir() {
            let skipped = depth == 0 && skip.iter().any(|s| name == *s);
            if !skipped && depth < MAX_WALK_DEPTH {
                walk_devices(&entry.path(), &dest, depth + 1, skip, out);
            }
        } else if let Some(dev) = device_from_metadata(&meta, &dest) {
            out.push(dev);
        }
    }
}

fn device_from_metadata(meta: &fs::Metadata, path: &Path) -> Option<LinuxDevice> {
    let file_type = meta.file_type();
    let typ = if file_type.is_char_device() {
        LinuxDeviceType::C
    } else if file_type.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let mut dev = LinuxDevice::default();
    dev.set_path(PathBuf::from(path));
    dev.set_typ(typ);
    dev.set_major(i64::try_from(nix::sys::stat::major(rdev)).ok()?);
    dev.set_minor(i64::try_from(nix::sys::stat::minor(rdev)).ok()?);
    dev.set_file_mode(Some(meta.mode() & 0o777));
    dev.set_uid(Some(meta.uid()));
    dev.set_gid(Some(meta.gid()));
    Some(dev)
}

/// Parses `--device-cgroup-rule "c 1:3 rwm"` (type `a`/`b`/`c`, numbers or `*`).
pub fn parse_device_cgroup_rule(text: &str) -> Result<LinuxDeviceCgroup> {
    let bad = || SpecError::invalid(format!("invalid device cgroup format '{text}'"));
    let fields: Vec<&str> = text.split(' ').collect();
    let [typ, numbers, access] = fields.as_slice() else {
        return Err(bad());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            return Ok(None);
        }
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        n.parse().map(Some).map_err(|_| bad())
    };
    if !valid_device_mode(access) {
        return Err(bad());
    }
    Ok(rule(true, typ, number(major)?, number(minor)?, access))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn line(r: &LinuxDeviceCgroup) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_owned(), |v| v.to_string());
        format!(
            "{} {} {}:{} {}",
            if r.allow() { "allow" } else { "deny" },
            r.typ()
                .map_or_else(|| "a".to_owned(), |t| t.as_str().to_owned()),
            n(r.major()),
            n(r.minor()),
            r.access().as_deref().unwrap_or("")
        )
    }

    #[test]
    fn default_rules_match_dockers_and_runcs_lists() {
        let lines: Vec<String> = default_device_rules().iter().map(line).collect();
        assert_eq!(lines[0], "deny a *:* rwm");
        for want in [
            "allow c 1:3 rwm",
            "allow c 1:5 rwm",
            "allow c 1:7 rwm",
            "allow c 1:8 rwm",
            "allow c 1:9 rwm",
            "allow c 5:0 rwm",
            "allow c 5:1 rwm",
            "allow c 5:2 rwm",
            "allow c 136:* rwm",
            "allow c 10:200 rwm",
            "allow c *:* m",
            "allow b *:* m",
            "deny c 10:229 rwm",
        ] {
            assert!(
                lines.contains(&want.to_owned()),
                "{want} missing from {lines:?}"
            );
        }
        // Nothing else is readable or writable: every other allow is mknod only.
        assert_eq!(lines.len(), 14);
    }

    #[test]
    fn device_flag_forms() {
        let d = parse_device("/dev/null").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/null", "rwm")
        );
        let d = parse_device("/dev/null:r").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/null", "r")
        );
        let d = parse_device("/dev/null:/dev/mynull:rw").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/mynull", "rw")
        );
        for bad in [
            "",
            "/dev/null:/x:rwx",
            "/dev/null:relative",
            "/a:/b:r:extra",
            "/dev/null:/x:rr",
        ] {
            assert!(parse_device(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_device_lookup() {
        let d = parse_device("/dev/null:/dev/xnull:r").unwrap();
        let (devs, rules) = devices_for_mapping(&d).unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].path(), Path::new("/dev/xnull"));
        assert_eq!(
            (devs[0].typ(), devs[0].major(), devs[0].minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(line(&rules[0]), "allow c 1:3 r");

        let missing = parse_device("/dev/berth-no-such-device").unwrap();
        let err = devices_for_mapping(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("error gathering device information while adding custom device"),
            "{err}"
        );
        let file = parse_device("/etc/hostname").unwrap();
        assert!(
            devices_for_mapping(&file)
                .unwrap_err()
                .to_string()
                .contains("not a device node")
        );
    }

    #[test]
    fn host_devices_are_devices_only() {
        let devs = host_devices(Path::new("/dev"));
        assert!(devs.iter().any(|d| d.path() == Path::new("/dev/null")));
        assert!(devs.iter().all(|d| !d.path().starts_with("/dev/pts")));
        assert!(devs.iter().all(|d| d.path() != Path::new("/dev/console")));
    }

    #[test]
    fn cgroup_rules() {
        assert_eq!(
            line(&parse_device_cgroup_rule("c 1:3 mr").unwrap()),
            "allow c 1:3 mr"
        );
        assert_eq!(
            line(&parse_device_cgroup_rule("b *:* m").unwrap()),
            "allow b *:* m"
        );
        for bad in [
            "c 1:3",
            "x 1:3 r",
            "c 1-3 r",
            "c a:3 r",
            "c 1:3 rwx",
            "c  1:3 r",
        ] {
            assert!(parse_device_cgroup_rule(bad).is_err(), "{bad}");
        }
    }
}
