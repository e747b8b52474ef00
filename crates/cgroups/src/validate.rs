//! Checks on requested resources that do not depend on the hierarchy. They all run before
//! anything is written, so an invalid request changes nothing.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use crate::CgroupError;
use crate::devices;

/// The kernel's bounds on `cpu.cfs_period_us` / the `cpu.max` period, in microseconds.
const CPU_PERIOD_RANGE: std::ops::RangeInclusive<u64> = 1_000..=1_000_000;
/// The smallest quota the kernel takes, in microseconds.
const CPU_QUOTA_MIN: i64 = 1_000;
/// The kernel's bounds on v1 `cpu.shares`.
const CPU_SHARES_RANGE: std::ops::RangeInclusive<u64> = 2..=262_144;
/// The bounds of v1 blkio weights, which the v2 conversion assumes too.
const BLKIO_WEIGHT_RANGE: std::ops::RangeInclusive<u16> = 10..=1000;

/// Unified keys that would move processes or kill them rather than set a resource.
const FORBIDDEN_UNIFIED: &[&str] = &["cgroup.procs", "cgroup.threads", "cgroup.kill"];

pub(crate) fn invalid(setting: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        setting: setting.to_owned(),
        reason: reason.into(),
    }
}

/// Validates everything in `r` that can be checked without the kernel.
pub(crate) fn check(r: &LinuxResources) -> Result<(), CgroupError> {
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(CgroupError::Unsupported {
            setting: "rdma".to_owned(),
            hierarchy: "berth yet (rdma limits are not implemented)",
        });
    }
    if let Some(m) = r.memory() {
        memory(m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c)?;
    }
    if let Some(b) = r.block_io() {
        block_io(b)?;
    }
    for limit in r.hugepage_limits().iter().flatten() {
        page_size(limit.page_size())?;
    }
    if let Some(rules) = r.devices() {
        devices::normalise(rules)?;
    }
    for (key, value) in r.unified().iter().flatten() {
        unified(key, value)?;
    }
    if let Some(network) = r.network() {
        for p in network.priorities().iter().flatten() {
            if p.name().is_empty() || p.name().contains(|c: char| c.is_whitespace() || c == '\0') {
                return Err(invalid(
                    "network.priorities",
                    format!("bad interface name {:?}", p.name()),
                ));
            }
        }
    }
    Ok(())
}

fn memory(m: &LinuxMemory) -> Result<(), CgroupError> {
    for (setting, value) in [
        ("memory.limit", m.limit()),
        ("memory.reservation", m.reservation()),
        ("memory.swap", m.swap()),
    ] {
        if let Some(v) = value.filter(|v| *v < -1) {
            return Err(invalid(
                setting,
                format!("{v} is negative (only -1, unlimited, is allowed)"),
            ));
        }
    }
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap())
        && limit > 0
        && swap > 0
        && swap < limit
    {
        return Err(invalid(
            "memory.swap",
            format!("memory+swap ({swap}) must not be below the memory limit ({limit})"),
        ));
    }
    if let Some(s) = m.swappiness().filter(|s| *s > 100) {
        return Err(invalid(
            "memory.swappiness",
            format!("{s} is not in 0..=100"),
        ));
    }
    Ok(())
}

fn cpu(c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(p) = c.period().filter(|p| !CPU_PERIOD_RANGE.contains(p)) {
        return Err(invalid(
            "cpu.period",
            format!(
                "{p} is not in {}..={} microseconds",
                CPU_PERIOD_RANGE.start(),
                CPU_PERIOD_RANGE.end()
            ),
        ));
    }
    if let Some(q) = c.quota()
        && (q < -1 || (q > 0 && q < CPU_QUOTA_MIN))
    {
        return Err(invalid(
            "cpu.quota",
            format!("{q} must be -1 (unlimited) or at least {CPU_QUOTA_MIN} microseconds"),
        ));
    }
    if let Some(s) = c
        .shares()
        .filter(|s| *s != 0 && !CPU_SHARES_RANGE.contains(s))
    {
        return Err(invalid(
            "cpu.shares",
            format!(
                "{s} is not in {}..={}",
                CPU_SHARES_RANGE.start(),
                CPU_SHARES_RANGE.end()
            ),
        ));
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r < -1) {
        return Err(invalid("cpu.realtimeRuntime", format!("{r} is negative")));
    }
    if let Some(i) = c.idle().filter(|i| *i != 0 && *i != 1) {
        return Err(invalid("cpu.idle", format!("{i} must be 0 or 1")));
    }
    cpu_list("cpu.cpus", c.cpus().as_deref())?;
    cpu_list("cpu.mems", c.mems().as_deref())
}

/// A cpuset list such as `0-3,7`.
fn cpu_list(setting: &str, list: Option<&str>) -> Result<(), CgroupError> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let well_formed = list.split(',').all(|range| {
        let mut ends = range.splitn(2, '-');
        ends.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if !well_formed {
        return Err(invalid(
            setting,
            format!("{list:?} is not a list like 0-3,7"),
        ));
    }
    Ok(())
}

fn block_io(b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = |setting: &str, w: Option<u16>| match w {
        Some(w) if w != 0 && !BLKIO_WEIGHT_RANGE.contains(&w) => Err(invalid(
            setting,
            format!(
                "{w} is not in {}..={}",
                BLKIO_WEIGHT_RANGE.start(),
                BLKIO_WEIGHT_RANGE.end()
            ),
        )),
        _ => Ok(()),
    };
    weight("blockIO.weight", b.weight())?;
    weight("blockIO.leafWeight", b.leaf_weight())?;
    for d in b.weight_device().iter().flatten() {
        device_number("blockIO.weightDevice", d.major(), d.minor())?;
        weight("blockIO.weightDevice.weight", d.weight())?;
        weight("blockIO.weightDevice.leafWeight", d.leaf_weight())?;
    }
    for (setting, list) in [
        (
            "blockIO.throttleReadBpsDevice",
            b.throttle_read_bps_device(),
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
        ),
    ] {
        for d in list.iter().flatten() {
            device_number(setting, d.major(), d.minor())?;
        }
    }
    Ok(())
}

fn device_number(setting: &str, major: i64, minor: i64) -> Result<(), CgroupError> {
    if u32::try_from(major).is_err() || u32::try_from(minor).is_err() {
        return Err(invalid(
            setting,
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(())
}

/// A hugepage size such as `2MB` or `1GB`; it becomes part of a file name.
pub(crate) fn page_size(size: &str) -> Result<(), CgroupError> {
    let digits = ["KB", "MB", "GB"]
        .iter()
        .find_map(|unit| size.strip_suffix(unit));
    match digits {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => {
            return Err(invalid(
                "hugepageLimits.pageSize",
                format!("{size:?} is not like 2MB or 1GB"),
            ));
        }
    }
    Ok(())
}

/// A unified key must be a plain `controller.parameter` file name in the cgroup directory.
pub(crate) fn unified(key: &str, value: &str) -> Result<(), CgroupError> {
    let setting = format!("unified[{key:?}]");
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    let shaped = key
        .split_once('.')
        .is_some_and(|(c, p)| !c.is_empty() && !p.is_empty());
    if !plain || !shaped {
        return Err(invalid(
            &setting,
            "key must be a file name like memory.high",
        ));
    }
    if FORBIDDEN_UNIFIED.contains(&key) {
        return Err(invalid(
            &setting,
            "this file moves or kills processes; it is not a resource",
        ));
    }
    if value.contains('\0') {
        return Err(invalid(&setting, "value contains a NUL byte"));
    }
    Ok(())
}
