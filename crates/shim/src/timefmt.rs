//! RFC 3339 timestamps with nanoseconds in UTC, the format Docker writes in json-file logs
//! and in `State.FinishedAt` (`2026-11-25T09:30:01.123456789Z`, always nine digits).
//!
//! The formatting itself is the runtime's (`berth_runtime::state::write_rfc3339`).

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time, formatted.
pub fn now_rfc3339_nanos() -> String {
    let mut out = String::with_capacity(30);
    write_rfc3339_nanos(SystemTime::now(), &mut out);
    out
}

/// Appends `t` to `out` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. Times before 1970 print as the epoch:
/// the shim only formats "now".
pub fn write_rfc3339_nanos(t: SystemTime, out: &mut String) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    berth_runtime::state::write_rfc3339(d.as_secs() as i64, d.subsec_nanos(), out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(secs: u64, nanos: u32) -> String {
        let mut s = String::new();
        write_rfc3339_nanos(UNIX_EPOCH + Duration::new(secs, nanos), &mut s);
        s
    }

    #[test]
    fn known_instants() {
        assert_eq!(fmt(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(fmt(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        // 2026-11-25T09:30:01Z
        assert_eq!(
            fmt(1_795_599_001, 123_456_789),
            "2026-11-25T09:30:01.123456789Z"
        );
        assert_eq!(fmt(4_107_542_399, 0), "2100-02-28T23:59:59.000000000Z");
    }
}
