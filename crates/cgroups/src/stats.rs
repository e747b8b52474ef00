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
    /// Bytes read and written per block device (v1 `blkio.throttle.io_service_bytes_recursive`,
    /// v2 `io.stat`).
    pub io: Option<Vec<IoEntry>>,
}

/// One counter of one block device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `Read`, `Write`, … on v1 (as the kernel spells it); `read`, `write` on v2, as Docker
    /// reports them.
    pub op: String,
    /// Bytes.
    pub value: u64,
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

/// Parses v1 `blkio.*_recursive`: `MAJ:MIN Op value` lines and a final `Total value`, which
/// is skipped. Malformed lines are an error.
pub(crate) fn parse_v1_io(
    path: &std::path::Path,
    text: &str,
) -> Result<Vec<IoEntry>, crate::CgroupError> {
    let bad = |line: &str| crate::CgroupError::Parse {
        path: path.to_owned(),
        reason: format!("expected `MAJ:MIN Op value`, got {line:?}"),
    };
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Total", _] => {}
            [device, op, value] => {
                let (major, minor) = parse_device(device).ok_or_else(|| bad(line))?;
                entries.push(IoEntry {
                    major,
                    minor,
                    op: (*op).to_owned(),
                    value: crate::fs::parse_u64(path, value)?,
                });
            }
            _ => return Err(bad(line)),
        }
    }
    Ok(entries)
}

/// Parses v2 `io.stat`: `MAJ:MIN rbytes=… wbytes=… …` per device, into `read` and `write`
/// byte counters. Keys other than rbytes/wbytes are ignored.
pub(crate) fn parse_v2_io(
    path: &std::path::Path,
    text: &str,
) -> Result<Vec<IoEntry>, crate::CgroupError> {
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split_whitespace();
        let device = fields.next().unwrap_or_default();
        let (major, minor) = parse_device(device).ok_or_else(|| crate::CgroupError::Parse {
            path: path.to_owned(),
            reason: format!("expected `MAJ:MIN key=value…`, got {line:?}"),
        })?;
        for field in fields {
            let op = match field.split_once('=') {
                Some(("rbytes", v)) => ("read", v),
                Some(("wbytes", v)) => ("write", v),
                _ => continue,
            };
            entries.push(IoEntry {
                major,
                minor,
                op: op.0.to_owned(),
                value: crate::fs::parse_u64(path, op.1)?,
            });
        }
    }
    Ok(entries)
}

fn parse_device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    #[test]
    fn v1_io_lines_parse_and_total_is_skipped() {
        let text = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\nTotal 12288\n";
        let e = parse_v1_io(Path::new("x"), text).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[1].major, e[1].minor, e[1].op.as_str(), e[1].value),
            (8, 0, "Write", 8192)
        );
        assert!(parse_v1_io(Path::new("x"), "Total 0\n").unwrap().is_empty());
    }

    #[test]
    fn v2_io_stat_becomes_read_and_write() {
        let text = "253:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n";
        let e = parse_v2_io(Path::new("x"), text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].op.as_str(), e[0].value), ("read", 100));
        assert_eq!((e[1].op.as_str(), e[1].value), ("write", 200));
    }

    #[test]
    fn hostile_io_lines_are_errors() {
        for bad in [
            "8:0 Read",
            "x:0 Read 1",
            "8:0 Read -1",
            "8 Read 1",
            "8:0 Read 1 extra",
            ":: Read 1",
        ] {
            assert!(parse_v1_io(Path::new("x"), bad).is_err(), "{bad}");
        }
        for bad in ["garbage rbytes=1", "8:0 rbytes=abc", "8:0 rbytes=-5"] {
            assert!(parse_v2_io(Path::new("x"), bad).is_err(), "{bad}");
        }
        // Unknown keys are ignored, not parsed.
        assert!(
            parse_v2_io(Path::new("x"), "8:0 weird=zz")
                .unwrap()
                .is_empty()
        );
    }
}
