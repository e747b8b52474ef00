//! RFC 3339 timestamps with nanoseconds in UTC, the format Docker writes in json-file logs
//! and in `State.FinishedAt` (`2026-11-25T09:30:01.123456789Z`, always nine digits).
//!
//! Written by hand so the shim needs no date crate for one format.

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
    use std::fmt::Write;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_nanos()
    );
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days` algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
