//! Resource usage of a cgroup, shaped for `docker stats`.

use std::collections::BTreeMap;

/// A snapshot of a cgroup's usage. A section is `None` when its controller is not available
/// for this cgroup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Memory usage.
    pub memory: Option<MemoryStats>,
    /// CPU time used.
    pub cpu: Option<CpuStats>,
    /// Process counts.
    pub pids: Option<PidsStats>,
}

/// Memory usage in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Current usage, page cache included (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage: u64,
    /// Peak usage, when the kernel reports it (v2 `memory.peak` needs Linux 5.19).
    pub max_usage: Option<u64>,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// Swap in use (not memory+swap); `None` without swap accounting.
    pub swap_usage: Option<u64>,
    /// The raw `memory.stat` counters. `docker stats` subtracts `total_inactive_file` (v1) or
    /// `inactive_file` (v2) from `usage`.
    pub stat: BTreeMap<String, u64>,
}

/// CPU time in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Total CPU time of all tasks.
    pub usage_total_ns: u64,
    /// Time in user mode.
    pub usage_user_ns: u64,
    /// Time in kernel mode.
    pub usage_system_ns: u64,
    /// Total time per CPU (v1 only; empty on v2, which does not report it).
    pub per_cpu_ns: Vec<u64>,
    /// CFS periods that have elapsed while the cgroup had a quota.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total time throttled.
    pub throttled_ns: u64,
}

/// Task counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PidsStats {
    /// Tasks in the cgroup now.
    pub current: u64,
    /// `pids.max`; `None` when unlimited.
    pub limit: Option<u64>,
}

/// v1 reports "no limit" as the largest page-aligned i64 (or more on 32-bit page counters).
pub(crate) fn v1_limit(value: u64) -> Option<u64> {
    (value < 0x7FFF_FFFF_FFFF_F000).then_some(value)
}

/// v2 reports "no limit" as `max`, which [`crate::fs::parse_u64`] reads as `u64::MAX`.
pub(crate) fn v2_limit(value: u64) -> Option<u64> {
    (value != u64::MAX).then_some(value)
}
