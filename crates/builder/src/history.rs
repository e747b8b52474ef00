//! The `created_by` text Docker's classic builder (20.10) records in an image's history for
//! config steps: Go's `%q` and `%v` renderings of the values it applied, reproduced so that
//! `docker history` reads the same on berth (see `scripts/compare-build-with-docker.sh`).

use berth_dockerfile::{Healthcheck, Instruction};
use berth_image::ContainerConfig;

/// The history text Docker's classic builder records for a config step (Go's `%q`/`%v`
/// renderings of the values it applied); `None` to use the instruction as written.
pub(crate) fn history_text(inst: &Instruction, c: &ContainerConfig) -> Option<String> {
    let kv = |pairs: &[berth_dockerfile::KeyValue]| {
        pairs
            .iter()
            .map(|p| format!("{}={}", p.key, p.value))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(match inst {
        Instruction::Env(p) => format!("ENV {}", kv(p)),
        Instruction::Label(p) => format!("LABEL {}", kv(p)),
        Instruction::Expose(ports) => {
            let mut ports = ports.clone();
            ports.sort();
            format!("EXPOSE {}", ports.join(" "))
        }
        Instruction::Volume(v) => format!("VOLUME [{}]", v.join(" ")),
        Instruction::Shell(v) => format!("SHELL [{}]", v.join(" ")),
        Instruction::User(u) => format!("USER {u}"),
        Instruction::StopSignal(s) => format!("STOPSIGNAL {s}"),
        Instruction::Cmd(_) => format!(
            "CMD {}",
            go_quote_list(c.cmd.as_deref().unwrap_or_default())
        ),
        Instruction::Entrypoint(_) => format!(
            "ENTRYPOINT {}",
            go_quote_list(c.entrypoint.as_deref().unwrap_or_default())
        ),
        Instruction::Healthcheck(h) => format!("HEALTHCHECK {}", go_healthcheck(h)),
        _ => return None,
    })
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%q` of a string (`strconv.Quote`).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String()` for the whole-millisecond values HEALTHCHECK accepts.
fn go_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (sec, frac) = (rest / 1000, rest % 1000);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{sec}s"));
    } else {
        let f = format!("{frac:03}");
        out.push_str(&format!("{sec}.{}s", f.trim_end_matches('0')));
    }
    out
}

/// Docker 20.10 records `HEALTHCHECK %q` of its config struct: `&{["CMD" "x"] "30s" "3s"
/// "0s" '\x02'}` (Test, Interval, Timeout, StartPeriod, and Retries printed as a rune).
fn go_healthcheck(h: &Healthcheck) -> String {
    let zero = std::time::Duration::ZERO;
    let (test, interval, timeout, start, retries) = match h {
        Healthcheck::None => (vec!["NONE".to_owned()], zero, zero, zero, 0),
        Healthcheck::Cmd {
            test,
            interval,
            timeout,
            start_period,
            retries,
            ..
        } => (test.clone(), *interval, *timeout, *start_period, *retries),
    };
    let rune = match char::from_u32(retries) {
        Some('\'') => "'\\''".to_owned(),
        Some('\\') => "'\\\\'".to_owned(),
        Some(c) if (0x20..0x7f).contains(&retries) => format!("'{c}'"),
        _ if retries < 0x80 => format!("'\\x{retries:02x}'"),
        _ => format!("'\\u{retries:04x}'"),
    };
    format!(
        "&{{{} {} {} {} {rune}}}",
        go_quote_list(&test),
        go_quote(&go_duration(interval)),
        go_quote(&go_duration(timeout)),
        go_quote(&go_duration(start))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_text_renders_like_docker_20_10() {
        let h = Healthcheck::Cmd {
            test: vec!["CMD".into(), "/bin/true".into()],
            interval: std::time::Duration::from_secs(30),
            timeout: std::time::Duration::from_millis(1500),
            start_period: std::time::Duration::from_secs(90),
            start_interval: std::time::Duration::ZERO,
            retries: 2,
        };
        assert_eq!(
            go_healthcheck(&h),
            r#"&{["CMD" "/bin/true"] "30s" "1.5s" "1m30s" '\x02'}"#
        );
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(go_duration(std::time::Duration::from_secs(7200)), "2h0m0s");
    }
}
