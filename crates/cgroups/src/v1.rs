//! cgroup v1: per-controller resource files, the freezer, statistics.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxPids, LinuxResources,
};

use crate::stats::{CpuStats, MemoryStats, PidsStats, Stats, v1_limit};
use crate::{CgroupError, devices, fs, mkdir};

const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const FREEZE_ATTEMPTS: usize = 2000;

/// The v1 directories of one cgroup: controller → directory.
pub(crate) type Dirs = BTreeMap<String, PathBuf>;

fn need<'a>(dirs: &'a Dirs, controller: &str, setting: &str) -> Result<&'a Path, CgroupError> {
    dirs.get(controller)
        .map(PathBuf::as_path)
        .ok_or_else(|| CgroupError::ControllerMissing {
            controller: controller.to_owned(),
            setting: setting.to_owned(),
        })
}

/// Creates the cpuset directory level by level below its mount point, giving each level the
/// parent's `cpuset.cpus`/`cpuset.mems` when its own are empty: v1 refuses to take tasks
/// into a cpuset with no CPUs or memory nodes (ENOSPC).
pub(crate) fn create_cpuset(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut parent = mount.to_owned();
    for component in rel.components() {
        let level = parent.join(component);
        mkdir(&level)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(&level.join(file))?.is_empty() {
                let inherited = fs::read(&parent.join(file))?;
                fs::write(&level, file, &inherited, "cpuset (copied from the parent)")?;
            }
        }
        parent = level;
    }
    Ok(())
}

/// Writes every requested setting, controller by controller in this order: cpuset, devices,
/// memory, cpu, pids, blkio, hugetlb, net_cls/net_prio. (The hybrid caller then handles what
/// lives in the cgroup2 mount.)
pub(crate) fn apply(dirs: &Dirs, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(c) = r.cpu() {
        cpuset(dirs, c)?;
    }
    if let Some(rules) = r.devices() {
        device_rules(need(dirs, "devices", "devices")?, rules)?;
    }
    if let Some(m) = r.memory() {
        memory(dirs, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dirs, c)?;
    }
    if let Some(p) = r.pids() {
        pids(need(dirs, "pids", "pids.limit")?, p)?;
    }
    if let Some(b) = r.block_io() {
        blkio(dirs, b)?;
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty())
        && let Some(dir) = dirs.get("hugetlb")
    {
        hugetlb(dir, limits)?;
    }
    if let Some(n) = r.network() {
        network(dirs, n)?;
    }
    Ok(())
}

fn cpuset(dirs: &Dirs, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(
            need(dirs, "cpuset", "cpu.cpus")?,
            "cpuset.cpus",
            cpus,
            "cpu.cpus",
        )?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(
            need(dirs, "cpuset", "cpu.mems")?,
            "cpuset.mems",
            mems,
            "cpu.mems",
        )?;
    }
    Ok(())
}

/// Each rule in order, to `devices.allow` or `devices.deny`.
fn device_rules(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    for rule in devices::normalise(rules)? {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        for line in rule.v1_lines() {
            fs::write(dir, file, &line, "devices")?;
        }
    }
    Ok(())
}

/// Limit and swap first (see [`memory_and_swap`]), then the soft limit, the OOM killer switch,
/// swappiness and use_hierarchy. Kernel memory limits are ignored: Linux 5.4 deprecated them
/// and runc ignores them too.
fn memory(dirs: &Dirs, m: &LinuxMemory) -> Result<(), CgroupError> {
    let requested = m.limit().is_some_and(|v| v != 0)
        || m.swap().is_some_and(|v| v != 0)
        || m.reservation().is_some_and(|v| v != 0)
        || m.disable_oom_killer().is_some()
        || m.swappiness().is_some()
        || m.use_hierarchy().is_some();
    if !requested {
        return Ok(());
    }
    let dir = need(dirs, "memory", "memory")?;
    memory_and_swap(
        dir,
        m.limit().filter(|v| *v != 0),
        m.swap().filter(|v| *v != 0),
    )?;
    if let Some(r) = m.reservation().filter(|v| *v != 0) {
        fs::write(
            dir,
            "memory.soft_limit_in_bytes",
            &r.to_string(),
            "memory.reservation",
        )?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        let value = if disable { "1" } else { "0" };
        fs::write(dir, "memory.oom_control", value, "memory.disableOOMKiller")?;
    }
    if let Some(s) = m.swappiness() {
        fs::write(
            dir,
            "memory.swappiness",
            &s.to_string(),
            "memory.swappiness",
        )?;
    }
    if let Some(h) = m.use_hierarchy() {
        let value = if h { "1" } else { "0" };
        fs::write(dir, "memory.use_hierarchy", value, "memory.useHierarchy")?;
    }
    Ok(())
}

/// v1 insists that `memory.memsw.limit_in_bytes` (memory+swap) is never below
/// `memory.limit_in_bytes`, at every moment. So when both are set: if swap is unlimited or
/// above the current memory limit (the limits are going up) swap is written first, otherwise
/// (going down) the memory limit first. An unlimited memory limit with no swap given also
/// makes swap unlimited, where the kernel accounts swap.
fn memory_and_swap(dir: &Path, limit: Option<i64>, swap: Option<i64>) -> Result<(), CgroupError> {
    let swap = match (limit, swap) {
        (Some(-1), None) if dir.join(MEMSW_LIMIT).exists() => Some(-1),
        _ => swap,
    };
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            let current = fs::read_u64(&dir.join(MEMORY_LIMIT))?;
            let raising = swap == -1 || i64::try_from(current).is_ok_and(|c| c < swap);
            if raising {
                set_swap(dir, swap)?;
                set_limit(dir, limit)
            } else {
                set_limit(dir, limit)?;
                set_swap(dir, swap)
            }
        }
        (Some(limit), None) => set_limit(dir, limit),
        (None, Some(swap)) => set_swap(dir, swap),
        (None, None) => Ok(()),
    }
}

/// The kernel answers EBUSY when it cannot reclaim down to a new limit below the usage.
fn set_limit(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    let path = dir.join(MEMORY_LIMIT);
    let value = limit.to_string();
    match fs::try_write(&path, &value) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(CgroupError::MemoryBelowUsage {
            path: dir.to_owned(),
            limit,
            usage: fs::read_u64(&dir.join("memory.usage_in_bytes"))?,
            peak: fs::read_u64(&dir.join("memory.max_usage_in_bytes"))?,
        }),
        Err(e) => Err(fs::write_error(path, &value, "memory.limit", e)),
    }
}

fn set_swap(dir: &Path, swap: i64) -> Result<(), CgroupError> {
    fs::write(dir, MEMSW_LIMIT, &swap.to_string(), "memory.swap")
}

/// Realtime runtime and period, then shares (read back: the kernel clamps silently), then
/// the CFS period, burst and quota, then idle. A period or burst the kernel refuses against
/// the old quota (EINVAL) is retried after the new quota when one is being set; likewise the
/// realtime period against the old runtime.
fn cpu(dirs: &Dirs, c: &LinuxCpu) -> Result<(), CgroupError> {
    let requested = c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some()
        || c.burst().is_some()
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
        || c.idle().is_some();
    if !requested {
        return Ok(());
    }
    let dir = need(dirs, "cpu", "cpu")?;
    realtime(dir, c)?;
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        fs::write(dir, "cpu.shares", &shares.to_string(), "cpu.shares")?;
        let actual = fs::read_u64(&dir.join("cpu.shares"))?;
        if actual != shares {
            return Err(CgroupError::InvalidResource {
                setting: "cpu.shares".to_owned(),
                reason: format!("the kernel clamped {shares} to {actual}"),
            });
        }
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = deferrable(
        dir,
        "cpu.cfs_period_us",
        c.period(),
        quota.is_some(),
        "cpu.period",
    )?;
    let burst = deferrable(
        dir,
        "cpu.cfs_burst_us",
        c.burst(),
        quota.is_some(),
        "cpu.burst",
    )?;
    if let Some(quota) = quota {
        fs::write(dir, "cpu.cfs_quota_us", &quota.to_string(), "cpu.quota")?;
        for (file, value, setting) in [
            ("cpu.cfs_period_us", period, "cpu.period"),
            ("cpu.cfs_burst_us", burst, "cpu.burst"),
        ] {
            if let Some(value) = value {
                fs::write(dir, file, &value, setting)?;
            }
        }
    }
    if let Some(idle) = c.idle() {
        fs::write(dir, "cpu.idle", &idle.to_string(), "cpu.idle")?;
    }
    Ok(())
}

/// Writes `value` to `file`; when the kernel says EINVAL and `retry_later` is set, returns the
/// value to be written again after the setting it depends on.
fn deferrable<T: ToString>(
    dir: &Path,
    file: &str,
    value: Option<T>,
    retry_later: bool,
    setting: &str,
) -> Result<Option<String>, CgroupError> {
    let Some(value) = value.map(|v| v.to_string()) else {
        return Ok(None);
    };
    let path = dir.join(file);
    match fs::try_write(&path, &value) {
        Ok(()) => Ok(None),
        Err(e) if retry_later && e.raw_os_error() == Some(libc::EINVAL) => Ok(Some(value)),
        Err(e) => Err(fs::write_error(path, &value, setting, e)),
    }
}

fn realtime(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    let runtime = c.realtime_runtime().filter(|v| *v != 0);
    let period = c.realtime_period().filter(|v| *v != 0);
    let period = deferrable(
        dir,
        "cpu.rt_period_us",
        period,
        runtime.is_some(),
        "cpu.realtimePeriod",
    )?;
    if let Some(runtime) = runtime {
        fs::write(
            dir,
            "cpu.rt_runtime_us",
            &runtime.to_string(),
            "cpu.realtimeRuntime",
        )?;
        if let Some(period) = period {
            fs::write(dir, "cpu.rt_period_us", &period, "cpu.realtimePeriod")?;
        }
    }
    Ok(())
}

fn pids(dir: &Path, p: &LinuxPids) -> Result<(), CgroupError> {
    let value = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".to_owned()
    };
    fs::write(dir, "pids.max", &value, "pids.limit")
}

/// Weight files are `blkio.weight` with CFQ or `blkio.bfq.weight` with BFQ; either may be
/// absent (as with neither scheduler), which only matters when a weight is requested.
fn blkio(dirs: &Dirs, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let nonzero = |w: Option<u16>| w.filter(|w| *w != 0);
    let wants_weight = nonzero(b.weight()).is_some()
        || nonzero(b.leaf_weight()).is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| nonzero(d.weight()).is_some() || nonzero(d.leaf_weight()).is_some());
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            "blockIO.throttleReadBpsDevice",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            "blockIO.throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            "blockIO.throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            "blockIO.throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
        ),
    ];
    let wants_throttle = throttles
        .iter()
        .any(|(_, _, l)| l.as_ref().is_some_and(|l| !l.is_empty()));
    if !wants_weight && !wants_throttle {
        return Ok(());
    }
    let dir = need(dirs, "blkio", "blockIO")?;
    let (weight_file, device_file) =
        if dir.join("blkio.weight").exists() || !dir.join("blkio.bfq.weight").exists() {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
    if let Some(w) = nonzero(b.weight()) {
        fs::write(dir, weight_file, &w.to_string(), "blockIO.weight")?;
    }
    if let Some(w) = nonzero(b.leaf_weight()) {
        fs::write(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "blockIO.leafWeight",
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = nonzero(d.weight()) {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            fs::write(dir, device_file, &line, "blockIO.weightDevice")?;
        }
        if let Some(w) = nonzero(d.leaf_weight()) {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            fs::write(
                dir,
                "blkio.leaf_weight_device",
                &line,
                "blockIO.weightDevice.leafWeight",
            )?;
        }
    }
    for (file, setting, list) in throttles {
        for d in list.iter().flatten() {
            let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            fs::write(dir, file, &line, setting)?;
        }
    }
    Ok(())
}

/// `hugetlb.<size>.limit_in_bytes`, and `hugetlb.<size>.rsvd.limit_in_bytes` where it exists.
pub(crate) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    let mut rsvd = true;
    for limit in limits {
        let size = limit.page_size();
        let value = limit.limit().max(-1).to_string();
        fs::write(
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            &value,
            "hugepageLimits",
        )?;
        if rsvd {
            let path = dir.join(format!("hugetlb.{size}.rsvd.limit_in_bytes"));
            match fs::try_write(&path, &value) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => rsvd = false,
                Err(e) => return Err(fs::write_error(path, &value, "hugepageLimits", e)),
                Ok(()) => {}
            }
        }
    }
    Ok(())
}

fn network(dirs: &Dirs, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(class_id) = n.class_id() {
        let dir = need(dirs, "net_cls", "network.classID")?;
        fs::write(
            dir,
            "net_cls.classid",
            &class_id.to_string(),
            "network.classID",
        )?;
    }
    for p in n.priorities().iter().flatten() {
        let dir = need(dirs, "net_prio", "network.priorities")?;
        let line = format!("{} {}", p.name(), p.priority());
        fs::write(dir, "net_prio.ifpriomap", &line, "network.priorities")?;
    }
    Ok(())
}

/// Writes FROZEN until `freezer.state` reads FROZEN, within a bounded number of attempts and
/// time. Tasks forking meanwhile can keep a v1 cgroup FREEZING, so every 50 attempts it thaws
/// briefly, which lets the stragglers settle; on failure it thaws rather than leave the
/// cgroup half-frozen.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    let state = dir.join("freezer.state");
    let start = Instant::now();
    for attempt in 0..FREEZE_ATTEMPTS {
        if start.elapsed() > FREEZE_TIMEOUT {
            break;
        }
        if attempt % 50 == 49 {
            let _ = fs::try_write(&state, "THAWED");
            sleep(Duration::from_millis(10));
        }
        fs::write(dir, "freezer.state", "FROZEN", "freeze")?;
        match fs::read(&state)?.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" if attempt >= 10 => sleep(Duration::from_millis(1)),
            "FREEZING" => {}
            other => {
                let _ = fs::try_write(&state, "THAWED");
                return Err(CgroupError::Parse {
                    path: state,
                    reason: format!("unexpected state {other:?} while freezing"),
                });
            }
        }
    }
    let _ = fs::try_write(&state, "THAWED");
    Err(CgroupError::FreezeTimeout {
        path: state,
        millis: start.elapsed().as_millis(),
    })
}

pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fs::write(dir, "freezer.state", "THAWED", "thaw")
}

pub(crate) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    Ok(fs::read(&dir.join("freezer.state"))? == "FROZEN")
}

/// The `oom_kill` line of `memory.oom_control` (Linux 4.13+).
pub(crate) fn oom_kill_count(dirs: &Dirs) -> Result<u64, CgroupError> {
    let path = need(dirs, "memory", "oom kill count")?.join("memory.oom_control");
    let control = fs::parse_keyed(&path, &fs::read(&path)?)?;
    control
        .get("oom_kill")
        .copied()
        .ok_or_else(|| CgroupError::Parse {
            path,
            reason: "no oom_kill line (Linux 4.13 or later is needed)".to_owned(),
        })
}

pub(crate) fn stats(dirs: &Dirs) -> Result<Stats, CgroupError> {
    Ok(Stats {
        memory: dirs.get("memory").map(|d| memory_stats(d)).transpose()?,
        cpu: dirs
            .get("cpuacct")
            .map(|d| cpu_stats(d, dirs.get("cpu")))
            .transpose()?,
        pids: dirs.get("pids").map(|d| pids_stats(d)).transpose()?,
        io: dirs.get("blkio").map(|d| io_stats(d)).transpose()?,
    })
}

/// The throttle counters exist whatever the I/O scheduler, unlike `blkio.io_service_bytes`.
fn io_stats(dir: &Path) -> Result<Vec<crate::IoEntry>, CgroupError> {
    let path = dir.join("blkio.throttle.io_service_bytes_recursive");
    match fs::read_opt(&path)? {
        Some(text) => crate::stats::parse_v1_io(&path, &text),
        None => Ok(Vec::new()),
    }
}

fn memory_stats(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let usage = fs::read_u64(&dir.join("memory.usage_in_bytes"))?;
    let memsw = fs::read_u64_opt(&dir.join("memory.memsw.usage_in_bytes"))?;
    Ok(MemoryStats {
        usage,
        max_usage: Some(fs::read_u64(&dir.join("memory.max_usage_in_bytes"))?),
        limit: v1_limit(fs::read_u64(&dir.join(MEMORY_LIMIT))?),
        swap_usage: memsw.map(|total| total.saturating_sub(usage)),
        stat: fs::read_keyed_opt(&dir.join("memory.stat"))?.unwrap_or_default(),
    })
}

/// Totals from cpuacct; user/system from `cpuacct.usage_user`/`usage_sys` (ns) where they
/// exist, else from `cpuacct.stat` (clock ticks); throttling from the cpu controller.
fn cpu_stats(dir: &Path, cpu_dir: Option<&PathBuf>) -> Result<CpuStats, CgroupError> {
    let percpu_path = dir.join("cpuacct.usage_percpu");
    let per_cpu_ns = match fs::read_opt(&percpu_path)? {
        Some(text) => text
            .split_whitespace()
            .map(|n| fs::parse_u64(&percpu_path, n))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let (user, system) = match (
        fs::read_u64_opt(&dir.join("cpuacct.usage_user"))?,
        fs::read_u64_opt(&dir.join("cpuacct.usage_sys"))?,
    ) {
        (Some(user), Some(system)) => (user, system),
        _ => user_system_from_ticks(dir)?,
    };
    let throttling = match cpu_dir {
        Some(d) => fs::read_keyed_opt(&d.join("cpu.stat"))?.unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let get = |key: &str| throttling.get(key).copied().unwrap_or(0);
    Ok(CpuStats {
        usage_total_ns: fs::read_u64(&dir.join("cpuacct.usage"))?,
        usage_user_ns: user,
        usage_system_ns: system,
        per_cpu_ns,
        periods: get("nr_periods"),
        throttled_periods: get("nr_throttled"),
        throttled_ns: get("throttled_time"),
    })
}

fn user_system_from_ticks(dir: &Path) -> Result<(u64, u64), CgroupError> {
    let path = dir.join("cpuacct.stat");
    let Some(stat) = fs::read_keyed_opt(&path)? else {
        return Ok((0, 0));
    };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ns_per_tick = u64::try_from(ticks)
        .ok()
        .filter(|t| *t > 0)
        .map_or(10_000_000, |t| 1_000_000_000 / t);
    let get = |key: &str| {
        stat.get(key)
            .copied()
            .unwrap_or(0)
            .saturating_mul(ns_per_tick)
    };
    Ok((get("user"), get("system")))
}

fn pids_stats(dir: &Path) -> Result<PidsStats, CgroupError> {
    Ok(PidsStats {
        current: fs::read_u64(&dir.join("pids.current"))?,
        limit: fs::read_u64_opt(&dir.join("pids.max"))?.and_then(crate::stats::v2_limit),
    })
}
