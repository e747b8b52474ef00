//! Go's `time.ParseDuration`, which HEALTHCHECK flags use (`30s`, `1m30s`, `1.5h`, `100ms`).

/// Parses a Go duration string into signed nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (value, after) = number(rest).ok_or_else(invalid)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = unit_nanos(unit).ok_or_else(|| {
            if unit.is_empty() {
                format!("time: missing unit in duration {s:?}")
            } else {
                format!("time: unknown unit {unit:?} in duration {s:?}")
            }
        })?;
        total += value.0 * scale + value.1 * scale / value.2;
        if total > u128::from(u64::MAX >> 1) {
            return Err(invalid());
        }
        rest = next;
    }
    let total = i128::try_from(total).map_err(|_| invalid())?;
    Ok(if neg { -total } else { total })
}

/// Reads `int[.frac]`: returns (int, frac digits as integer, 10^frac_len) and the rest.
fn number(s: &str) -> Option<((u128, u128, u128), &str)> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let int: u128 = if int_len == 0 {
        0
    } else {
        s[..int_len].parse().ok()?
    };
    let mut rest = &s[int_len..];
    let (mut frac, mut scale) = (0u128, 1u128);
    let mut frac_len = 0;
    if let Some(r) = rest.strip_prefix('.') {
        frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
        // Digits beyond nanosecond precision do not change the result.
        for b in r[..frac_len].bytes().take(18) {
            frac = frac * 10 + u128::from(b - b'0');
            scale *= 10;
        }
        rest = &r[frac_len..];
    }
    if int_len == 0 && frac_len == 0 {
        return None;
    }
    Some(((int, frac, scale), rest))
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = [
            ("0", 0),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("100ms", 100_000_000),
            ("2us", 2_000),
            (".5s", 500_000_000),
        ];
        for (s, nanos) in ok {
            assert_eq!(parse_go_duration(s), Ok(nanos), "{s}");
        }
        assert_eq!(parse_go_duration("-1.5s"), Ok(-1_500_000_000));
        for bad in ["", "s", "10", "1x", "1.s.", "99999999999999999999h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
