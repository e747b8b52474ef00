//! Docker's output conventions: `--format` (table, json, templates), the tab-aligned table
//! (Go's tabwriter with minwidth 10, padding 3), human sizes and durations, Go's time text.

use std::collections::BTreeMap;

use serde_json::Value;

use super::template::{Data, Template, TemplateError};

/// One row to format: its fields (strings, as Docker's formatting contexts give them) and, for
/// containers, the labels `.Label "k"` reads.
pub struct Row {
    pub fields: Value,
    pub labels: BTreeMap<String, String>,
}

/// Renders rows with `format` (Docker's `table …`, `json`, or a template). `headers` maps a
/// field to its column title.
pub fn render(
    format: &str,
    rows: &[Row],
    headers: &[(&str, &str)],
) -> Result<String, TemplateError> {
    let (table, body) = prepare(format);
    let template = Template::parse(&body)?;
    let mut lines = Vec::new();
    if table {
        let header_map: serde_json::Map<String, Value> = template
            .top_fields()
            .into_iter()
            .map(|f| {
                let title = headers
                    .iter()
                    .find(|(k, _)| *k == f)
                    .map_or_else(|| f.to_uppercase(), |(_, t)| (*t).to_owned());
                (f, Value::String(title))
            })
            .collect();
        lines.push(render_header(&template, &Value::Object(header_map)));
    }
    for row in rows {
        lines.push(template.render(&Data {
            value: &row.fields,
            labels: Some(&row.labels),
        })?);
    }
    Ok(if table {
        tabulate(&lines)
    } else {
        lines.iter().map(|l| format!("{l}\n")).collect()
    })
}

/// The header line: each field replaced by its title (`.Label "x"` gives "LABEL").
fn render_header(template: &Template, headers: &Value) -> String {
    template.render_header(headers)
}

/// Splits Docker's `table` prefix off and turns the typed `\t` and `\n` into real ones.
pub fn prepare(format: &str) -> (bool, String) {
    let (table, rest) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let rest = if rest.trim() == "json" && !table {
        "{{json .}}"
    } else {
        rest.trim_matches(' ')
    };
    (table, rest.replace("\\t", "\t").replace("\\n", "\n"))
}

/// Go's tabwriter as Docker configures it: cells end at tabs; every column is as wide as
/// its widest cell plus 3, and at least 10; the last cell of a line is not padded.
pub fn tabulate(lines: &[String]) -> String {
    tabulate_min(lines, 10)
}

/// [`tabulate`] with another minimum column width.
pub fn tabulate_min(lines: &[String], min: usize) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &rows {
        for (i, cell) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let w = (cell.chars().count() + 3).max(min);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for cells in &rows {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// go-units' `HumanSizeWithPrecision(size, 3)`: decimal units, `%.3g`.
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 3)
}

/// go-units' `HumanSizeWithPrecision`.
pub fn human_size_precision(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(size, precision), UNITS[i])
}

/// go-units' `BytesSize`: binary units, `%.4g` (`23.54GiB`).
pub fn binary_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(size, 4), UNITS[i])
}

/// Go's `%.<p>g`: `p` significant digits, trailing zeros dropped, exponent form when the
/// exponent is below -4 or at least `p`.
fn go_g(x: f64, p: usize) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let digits = p.saturating_sub(1);
    // Round first: 999.5 at %.3g becomes 1e+03, as in Go.
    let sci = format!("{x:.digits$e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let p_i32 = i32::try_from(p).unwrap_or(i32::MAX);
    if exp < -4 || exp >= p_i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs());
    }
    let decimals = usize::try_from(p_i32 - 1 - exp).unwrap_or(0);
    trim_zeros(&format!("{x:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// go-units' `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let minutes = secs / 60;
    let hours = (secs + 1800) / 3600;
    match secs {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// Seconds since the epoch now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// "About a minute ago", as ps and images print creation times.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(now_unix() - unix))
}

/// Go's `time.Time.String()` of a unix time, in UTC: `2026-12-03 17:19:11 +0000 UTC`.
pub fn go_time(unix: i64) -> String {
    let (days, rem) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
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

/// Docker's `TruncateID`: no algorithm prefix, 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, hex)| hex);
    id.chars().take(12).collect()
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the text ps shows.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units_prints_them() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1982347.0), "1.98MB");
        assert_eq!(human_size(4096.0), "4.1kB");
        assert_eq!(human_size(12_345_678.0), "12.3MB");
        assert_eq!(human_size(123_456_789.0), "123MB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(999_999.0), "1e+03kB");
        assert_eq!(binary_size(25_276_063_744.0), "23.54GiB");
        assert_eq!(binary_size(1024.0), "1KiB");
        assert_eq!(binary_size(100.0), "100B");
    }

    #[test]
    fn durations_as_go_units_prints_them() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(20 * 86_400), "2 weeks");
        assert_eq!(human_duration(100 * 86_400), "3 months");
        assert_eq!(human_duration(800 * 86_400), "2 years");
    }

    #[test]
    fn go_time_text() {
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(1_795_595_968), "2026-11-25 08:39:28 +0000 UTC");
    }

    #[test]
    fn tables_align_like_tabwriter() {
        let out = tabulate(&["A\tBB\tC".to_owned(), "longer-than-ten\tx\ty".to_owned()]);
        assert_eq!(
            out,
            "A                 BB        C\nlonger-than-ten   x         y\n"
        );
    }

    #[test]
    fn table_and_json_formats() {
        let rows = vec![Row {
            fields: serde_json::json!({"ID":"abc","Names":"n"}),
            labels: BTreeMap::new(),
        }];
        let headers = [("ID", "CONTAINER ID"), ("Names", "NAMES")];
        let out = render("table {{.ID}}\\t{{.Names}}", &rows, &headers).expect("render");
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            n\n");
        let out = render("json", &rows, &headers).expect("render");
        assert_eq!(out, "{\"ID\":\"abc\",\"Names\":\"n\"}\n");
        let out = render("{{.ID}}", &rows, &headers).expect("render");
        assert_eq!(out, "abc\n");
    }

    #[test]
    fn ids_commands_and_quotes() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(
            ellipsis("sleep 1000000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(go_quote("sh -c \"x\"\n"), "\"sh -c \\\"x\\\"\\n\"");
    }
}
