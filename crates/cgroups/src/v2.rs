//! cgroup v2: creation with controller delegation, resource files, freezer, statistics. Also
//! used for the cgroup2 mount of a hybrid host.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxPids,
    LinuxResources, LinuxThrottleDevice,
};

use crate::stats::{CpuStats, MemoryStats, PidsStats, Stats, v2_limit};
use crate::{CgroupError, convert, devices, ebpf, fs, mkdir};

const HIERARCHY: &str = "cgroup v2";
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const FREEZE_POLL: Duration = Duration::from_millis(10);

/// Creates `dir` below `root`, first enabling in every ancestor's `cgroup.subtree_control`
/// the controllers that ancestor has (all of them, or only those in `only`).
pub(crate) fn create(root: &Path, dir: &Path, only: Option<&[&str]>) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut level = root.to_owned();
    for component in rel.components() {
        enable_subtree(&level, only)?;
        level.push(component);
        mkdir(&level)?;
    }
    Ok(())
}

/// Enables the controllers available at `level` (and in `only`, if given) for its children.
fn enable_subtree(level: &Path, only: Option<&[&str]>) -> Result<(), CgroupError> {
    let available = fs::read_opt(&level.join("cgroup.controllers"))?.unwrap_or_default();
    let enabled = fs::read_opt(&level.join("cgroup.subtree_control"))?.unwrap_or_default();
    let missing: Vec<&str> = available
        .split_whitespace()
        .filter(|c| only.is_none_or(|only| only.contains(c)))
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let file = level.join("cgroup.subtree_control");
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if fs::try_write(&file, &all.join(" ")).is_err() {
        // One at a time, so one refused controller (EBUSY when this level has processes of its
        // own, EOPNOTSUPP in a threaded subtree) does not block the others. A controller that
        // stays off shows up as a missing file when a setting that needs it is applied.
        for one in &all {
            let _ = fs::try_write(&file, one);
        }
    }
    Ok(())
}

/// Rejects settings that cgroup v2 has no file for.
pub(crate) fn check_supported(r: &LinuxResources) -> Result<(), CgroupError> {
    let unsupported = |setting: &str| {
        Err(CgroupError::Unsupported {
            setting: setting.to_owned(),
            hierarchy: HIERARCHY,
        })
    };
    if let Some(m) = r.memory() {
        if m.swappiness().is_some() {
            return unsupported("memory.swappiness");
        }
        if m.disable_oom_killer() == Some(true) {
            return unsupported("memory.disableOOMKiller");
        }
        if m.use_hierarchy() == Some(false) {
            return unsupported("memory.useHierarchy=false");
        }
    }
    if let Some(c) = r.cpu()
        && (c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0))
    {
        return unsupported("cpu.realtimeRuntime/realtimePeriod");
    }
    if let Some(b) = r.block_io()
        && (b.leaf_weight().is_some_and(|w| w != 0)
            || b.weight_device()
                .iter()
                .flatten()
                .any(|d| d.leaf_weight().is_some_and(|w| w != 0)))
    {
        return unsupported("blockIO.leafWeight");
    }
    if let Some(n) = r.network()
        && (n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
    {
        return unsupported("network");
    }
    Ok(())
}

/// Writes every requested setting, in this order: pids, memory, io, cpu, devices, cpuset,
/// hugetlb, then the unified key/values (last, so they override the structured settings).
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    check_supported(r)?;
    if let Some(p) = r.pids() {
        pids(dir, p)?;
    }
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(rules) = r.devices() {
        device_filter(dir, rules)?;
    }
    if let Some(c) = r.cpu() {
        cpuset(dir, c)?;
    }
    if let Some(limits) = r.hugepage_limits() {
        hugetlb(dir, limits)?;
    }
    if let Some(map) = r.unified() {
        unified(dir, map)?;
    }
    Ok(())
}

/// `-1` (and any negative) is `max`.
fn max_or(value: i64) -> String {
    if value < 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

fn pids(dir: &Path, p: &LinuxPids) -> Result<(), CgroupError> {
    let value = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".to_owned()
    };
    fs::write(dir, "pids.max", &value, "pids.limit")
}

/// `memory.swap.max` before `memory.max` before `memory.low`. v2 does not tie them together
/// the way v1 does, so the order only mirrors runc's.
fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit().filter(|l| *l != 0);
    let swap = convert::memory_swap_to_v2(m.swap(), limit)?;
    if m.check_before_update() == Some(true)
        && let Some(limit) = limit.filter(|l| *l > 0)
    {
        check_usage_below(dir, limit)?;
    }
    if let Some(swap) = swap {
        let path = dir.join("memory.swap.max");
        let value = max_or(swap);
        match fs::try_write(&path, &value) {
            // Without swap accounting there is no swap to open up or to shut off.
            Err(e) if e.kind() == io::ErrorKind::NotFound && (swap == -1 || swap == 0) => {}
            Err(e) => return Err(fs::write_error(path, &value, "memory.swap", e)),
            Ok(()) => {}
        }
    }
    if let Some(limit) = limit {
        fs::write(dir, "memory.max", &max_or(limit), "memory.limit")?;
    }
    if let Some(reservation) = m.reservation().filter(|r| *r != 0) {
        fs::write(
            dir,
            "memory.low",
            &max_or(reservation),
            "memory.reservation",
        )?;
    }
    Ok(())
}

/// v2 accepts any `memory.max` and reclaims or OOM-kills to meet it; `checkBeforeUpdate`
/// asks to refuse a limit below the current usage instead.
fn check_usage_below(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    let usage = fs::read_u64(&dir.join("memory.current"))?;
    if usage > limit.unsigned_abs() {
        let peak = fs::read_u64_opt(&dir.join("memory.peak"))?.unwrap_or(usage);
        return Err(CgroupError::MemoryBelowUsage {
            path: dir.to_owned(),
            limit,
            usage,
            peak,
        });
    }
    Ok(())
}

/// The BFQ scheduler's own weight file when it exists (it takes blkio's 1..=1000 scale as
/// is), else `io.weight` with runc's conversion; then the throttles in `io.max`, where 0
/// (v1's "no limit") becomes `max`.
fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(weight) = b.weight().filter(|w| *w != 0) {
        if bfq {
            fs::write(dir, "io.bfq.weight", &weight.to_string(), "blockIO.weight")?;
        } else {
            let converted = convert::blkio_weight_to_io_weight(weight);
            fs::write(dir, "io.weight", &converted.to_string(), "blockIO.weight")?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        let Some(weight) = d.weight().filter(|w| *w != 0) else {
            continue;
        };
        let (major, minor) = (d.major(), d.minor());
        if bfq {
            let line = format!("{major}:{minor} {weight}");
            fs::write(dir, "io.bfq.weight", &line, "blockIO.weightDevice")?;
        } else {
            let line = format!(
                "{major}:{minor} {}",
                convert::blkio_weight_to_io_weight(weight)
            );
            fs::write(dir, "io.weight", &line, "blockIO.weightDevice")?;
        }
    }
    let throttles = [
        (
            "rbps",
            "blockIO.throttleReadBpsDevice",
            b.throttle_read_bps_device(),
        ),
        (
            "wbps",
            "blockIO.throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
        ),
        (
            "riops",
            "blockIO.throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
        ),
        (
            "wiops",
            "blockIO.throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
        ),
    ];
    for (key, setting, list) in throttles {
        for d in list.iter().flatten() {
            fs::write(dir, "io.max", &io_max_line(key, d), setting)?;
        }
    }
    Ok(())
}

fn io_max_line(key: &str, d: &LinuxThrottleDevice) -> String {
    let rate = match d.rate() {
        0 => "max".to_owned(),
        rate => rate.to_string(),
    };
    format!("{}:{} {key}={rate}", d.major(), d.minor())
}

/// `cpu.idle`, `cpu.weight`, then burst and `cpu.max`. The kernel can refuse a burst larger
/// than the old quota allows (EINVAL); when a quota is also being set, the burst is retried
/// after it.
fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(idle) = c.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string(), "cpu.idle")?;
    }
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        let weight = convert::cpu_shares_to_weight(shares).to_string();
        fs::write(dir, "cpu.weight", &weight, "cpu.shares")?;
    }
    let sets_max = c.quota().is_some_and(|q| q != 0) || c.period().is_some();
    let mut burst_later = None;
    if let Some(burst) = c.burst() {
        let path = dir.join("cpu.max.burst");
        let value = burst.to_string();
        match fs::try_write(&path, &value) {
            Err(e) if sets_max && e.raw_os_error() == Some(libc::EINVAL) => {
                burst_later = Some(value)
            }
            Err(e) => return Err(fs::write_error(path, &value, "cpu.burst", e)),
            Ok(()) => {}
        }
    }
    if sets_max {
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_owned(),
        };
        // 100ms is the kernel's default period.
        let period = c.period().unwrap_or(100_000);
        fs::write(dir, "cpu.max", &format!("{quota} {period}"), "cpu.quota")?;
    }
    if let Some(burst) = burst_later {
        fs::write(dir, "cpu.max.burst", &burst, "cpu.burst")?;
    }
    Ok(())
}

fn cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.cpus", cpus, "cpu.cpus")?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.mems", mems, "cpu.mems")?;
    }
    Ok(())
}

fn device_filter(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let program = ebpf::program(&devices::normalise(rules)?)?;
    ebpf::attach(dir, &program)
}

/// `hugetlb.<size>.max`, and the reservation limit `hugetlb.<size>.rsvd.max` where the kernel
/// has it (5.7+), set to the same value so reserved-but-unfaulted pages count too.
pub(crate) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    let mut rsvd = true;
    for limit in limits {
        let size = limit.page_size();
        let value = max_or(limit.limit());
        fs::write(
            dir,
            &format!("hugetlb.{size}.max"),
            &value,
            "hugepageLimits",
        )?;
        if rsvd {
            let path = dir.join(format!("hugetlb.{size}.rsvd.max"));
            match fs::try_write(&path, &value) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => rsvd = false,
                Err(e) => return Err(fs::write_error(path, &value, "hugepageLimits", e)),
                Ok(()) => {}
            }
        }
    }
    Ok(())
}

/// Writes the unified key/values in key order, a multi-line value one line per write (as
/// files like `io.max` need).
pub(crate) fn unified(dir: &Path, map: &HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let value = map.get(key).map(String::as_str).unwrap_or_default();
        let setting = format!("unified[{key:?}]");
        let mut lines: Vec<&str> = value.lines().filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            lines.push(value);
        }
        for line in lines {
            fs::write(dir, key, line, &setting)?;
        }
    }
    Ok(())
}

/// Writes `cgroup.freeze` and waits (bounded) until `cgroup.events` says frozen; on timeout the
/// cgroup is thawed again rather than left half-frozen.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    fs::write(dir, "cgroup.freeze", "1", "freeze")?;
    let start = Instant::now();
    loop {
        if is_frozen(dir)? {
            return Ok(());
        }
        if start.elapsed() >= FREEZE_TIMEOUT {
            let _ = fs::try_write(&dir.join("cgroup.freeze"), "0");
            return Err(CgroupError::FreezeTimeout {
                path: dir.join("cgroup.events"),
                millis: FREEZE_TIMEOUT.as_millis(),
            });
        }
        sleep(FREEZE_POLL);
    }
}

pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fs::write(dir, "cgroup.freeze", "0", "thaw")
}

pub(crate) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    let path = dir.join("cgroup.events");
    let events = fs::parse_keyed(&path, &fs::read(&path)?)?;
    Ok(events.get("frozen") == Some(&1))
}

pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64, CgroupError> {
    let path = dir.join("memory.events");
    match fs::read_keyed_opt(&path)? {
        Some(events) => Ok(events.get("oom_kill").copied().unwrap_or(0)),
        None => Err(CgroupError::MissingFile {
            setting: "oom kill count".to_owned(),
            path,
        }),
    }
}

pub(crate) fn stats(dir: &Path) -> Result<Stats, CgroupError> {
    Ok(Stats {
        memory: memory_stats(dir)?,
        cpu: cpu_stats(dir)?,
        pids: pids_stats(dir)?,
        io: io_stats(dir)?,
    })
}

/// `io.stat` exists only where the io controller is enabled.
fn io_stats(dir: &Path) -> Result<Option<Vec<crate::IoEntry>>, CgroupError> {
    let path = dir.join("io.stat");
    fs::read_opt(&path)?
        .map(|text| crate::stats::parse_v2_io(&path, &text))
        .transpose()
}

fn memory_stats(dir: &Path) -> Result<Option<MemoryStats>, CgroupError> {
    let Some(usage) = fs::read_u64_opt(&dir.join("memory.current"))? else {
        return Ok(None);
    };
    Ok(Some(MemoryStats {
        usage,
        max_usage: fs::read_u64_opt(&dir.join("memory.peak"))?,
        limit: fs::read_u64_opt(&dir.join("memory.max"))?.and_then(v2_limit),
        swap_usage: fs::read_u64_opt(&dir.join("memory.swap.current"))?,
        stat: fs::read_keyed_opt(&dir.join("memory.stat"))?.unwrap_or_default(),
    }))
}

/// `cpu.stat` exists in every v2 cgroup; the throttling counters only with the cpu controller.
fn cpu_stats(dir: &Path) -> Result<Option<CpuStats>, CgroupError> {
    let Some(stat) = fs::read_keyed_opt(&dir.join("cpu.stat"))? else {
        return Ok(None);
    };
    let us = |key: &str| stat.get(key).copied().unwrap_or(0).saturating_mul(1000);
    Ok(Some(CpuStats {
        usage_total_ns: us("usage_usec"),
        usage_user_ns: us("user_usec"),
        usage_system_ns: us("system_usec"),
        per_cpu_ns: Vec::new(),
        periods: stat.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
        throttled_ns: us("throttled_usec"),
    }))
}

fn pids_stats(dir: &Path) -> Result<Option<PidsStats>, CgroupError> {
    let Some(current) = fs::read_u64_opt(&dir.join("pids.current"))? else {
        return Ok(None);
    };
    Ok(Some(PidsStats {
        current,
        limit: fs::read_u64_opt(&dir.join("pids.max"))?.and_then(v2_limit),
    }))
}
