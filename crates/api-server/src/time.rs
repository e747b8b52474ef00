//! Time formats of the wire: Go's RFC 3339 with nanoseconds, and Docker's `sec[.nanos]`
//! timestamps in `since`/`until`.

use crate::error::ApiError;

/// `2026-11-25T09:23:29.806905363Z`, with trailing zeros of the fraction dropped as Go's
/// `time.RFC3339Nano` does.
pub(crate) fn rfc3339_nano(unix_nanos: i64) -> String {
    let secs = unix_nanos.div_euclid(1_000_000_000);
    let nanos = unix_nanos.rem_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Howard Hinnant's days-since-epoch → (year, month, day) for the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses Docker's `since`/`until` value: Unix seconds with an optional fraction of up to
/// nine digits (`1795596007`, `1795596007.5`). Returns Unix nanoseconds.
pub(crate) fn parse_timestamp(name: &str, value: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::invalid(format!("invalid value for {name}: {value:?}"));
    let (secs, fraction) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().map_err(|_| invalid())?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let nanos: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| invalid())?
    };
    // Times past 2262 do not fit; they mean "far future", so saturate.
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_795_598_605_539_157_704),
            "2026-11-25T09:23:25.539157704Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_500_000_000),
            "2000-02-29T00:00:00.5Z"
        );
    }

    #[test]
    fn parses_docker_timestamps() {
        assert_eq!(parse_timestamp("since", "12").ok(), Some(12_000_000_000));
        assert_eq!(parse_timestamp("since", "12.5").ok(), Some(12_500_000_000));
        assert!(parse_timestamp("since", "1m").is_err());
        assert!(parse_timestamp("since", "1.1234567890").is_err());
    }
}
