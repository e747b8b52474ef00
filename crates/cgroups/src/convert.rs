//! The conversions from OCI's v1-shaped values to cgroup v2 files, as runc does them, so that
//! a container gets the same v2 settings under berth as under runc.

use crate::CgroupError;

/// `cpu.shares` (2..=262144, default 1024) → `cpu.weight` (1..=10000, default 100).
///
/// A quadratic fit in log2 space that maps the minimum, the default and the maximum onto each
/// other (runc's current formula; the older linear one mapped 1024 to 39, not 100).
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// `blkio.weight` (10..=1000) → `io.weight` (1..=10000), linearly; 0 stays "unset".
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// OCI `memory.swap` is memory+swap; v2 `memory.swap.max` is swap alone. Returns the value to
/// write (`None`: leave the file alone). `-1` means "max".
pub fn memory_swap_to_v2(
    swap: Option<i64>,
    limit: Option<i64>,
) -> Result<Option<i64>, CgroupError> {
    let swap = swap.filter(|s| *s != 0);
    let limit = limit.filter(|l| *l != 0);
    let invalid = |reason: &str| CgroupError::InvalidResource {
        setting: "memory.swap".to_owned(),
        reason: reason.to_owned(),
    };
    match (swap, limit) {
        // An unlimited memory with no word on swap means unlimited swap too, as on v1.
        (None, Some(-1)) => Ok(Some(-1)),
        (None, _) => Ok(None),
        (Some(-1), _) => Ok(Some(-1)),
        (Some(swap), Some(-1)) => Ok(Some(swap)),
        (Some(_), None) => Err(invalid("a swap limit needs a memory limit")),
        (Some(swap), Some(limit)) if swap < limit => Err(invalid(&format!(
            "memory+swap ({swap}) must not be below the memory limit ({limit})"
        ))),
        (Some(swap), Some(limit)) => Ok(Some(swap - limit)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cpu_shares_map_min_default_max() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(1024), 100);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(512), 59);
        assert_eq!(cpu_shares_to_weight(2048), 174);
        let mut last = 0;
        for shares in [3, 10, 100, 1000, 10_000, 100_000, 262_143] {
            let w = cpu_shares_to_weight(shares);
            assert!(w >= last && (1..=10_000).contains(&w), "{shares} -> {w}");
            last = w;
        }
    }

    #[test]
    fn blkio_weight_maps_linearly() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap_minus_memory() {
        assert_eq!(memory_swap_to_v2(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(memory_swap_to_v2(Some(100), Some(100)).unwrap(), Some(0));
        assert_eq!(memory_swap_to_v2(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(memory_swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(memory_swap_to_v2(None, Some(100)).unwrap(), None);
        assert_eq!(memory_swap_to_v2(Some(0), Some(100)).unwrap(), None);
        assert_eq!(memory_swap_to_v2(Some(500), Some(-1)).unwrap(), Some(500));
        assert!(memory_swap_to_v2(Some(50), Some(100)).is_err());
        assert!(memory_swap_to_v2(Some(50), None).is_err());
    }
}
