//! Instruction values → container-config values, with Docker's rules: CMD/ENTRYPOINT/RUN
//! argv through the stage's SHELL, WORKDIR/COPY paths, EXPOSE ports, HEALTHCHECK JSON.

use berth_dockerfile::{CommandLine, Healthcheck, RunScript};

use crate::error::{BuildError, Result};

/// CMD/ENTRYPOINT: exec form as is, shell form through the stage's SHELL.
pub(crate) fn command(cmd: &CommandLine, shell: &[String]) -> Vec<String> {
    match cmd {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// The argv of a RUN. A heredoc script with a shebang is written to a temporary file by a
/// small shell wrapper and executed directly.
pub(crate) fn run_argv(script: &RunScript, shell: &[String]) -> Vec<String> {
    match script {
        RunScript::Exec(v) => v.clone(),
        RunScript::Shell(s) => command(&CommandLine::Shell(s.clone()), shell),
        RunScript::File { data, .. } => vec![
            "/bin/sh".into(),
            "-c".into(),
            "f=$(mktemp) && printf '%s' \"$1\" > \"$f\" && chmod +x \"$f\" && \"$f\"; r=$?; rm -f \"$f\"; exit $r".into(),
            "sh".into(),
            data.clone(),
        ],
    }
}

/// WORKDIR/COPY destination: absolute as is, relative joined to the current WORKDIR; the
/// result cleaned, a trailing `/` kept.
pub(crate) fn join_path(base: &str, p: &str) -> String {
    let full = if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("{}/{p}", if base.is_empty() { "" } else { base })
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if (p.ends_with('/') || p.ends_with("/.")) && out != "/" {
        out.push('/');
    }
    out
}

/// `80` → `80/tcp`; `8000-8001/udp` → both ports.
pub(crate) fn expand_port(p: &str) -> Result<Vec<String>> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let bad = || BuildError::Invalid(format!("Invalid containerPort: {p}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let n = ports.parse::<u16>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if hi < lo || hi - lo > 1000 {
        return Err(bad());
    }
    Ok((lo..=hi)
        .map(|n| format!("{n}/{}", proto.to_lowercase()))
        .collect())
}

pub(crate) fn healthcheck_json(h: &Healthcheck) -> serde_json::Value {
    match h {
        Healthcheck::None => serde_json::json!({ "Test": ["NONE"] }),
        Healthcheck::Cmd {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let mut m = serde_json::Map::new();
            m.insert("Test".into(), serde_json::json!(test));
            for (name, d) in [
                ("Interval", interval),
                ("Timeout", timeout),
                ("StartPeriod", start_period),
                ("StartInterval", start_interval),
            ] {
                if !d.is_zero() {
                    m.insert(name.into(), serde_json::json!(d.as_nanos() as u64));
                }
            }
            if *retries > 0 {
                m.insert("Retries".into(), serde_json::json!(retries));
            }
            serde_json::Value::Object(m)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_join_like_docker() {
        assert_eq!(join_path("", "app"), "/app");
        assert_eq!(join_path("/srv", "app/"), "/srv/app/");
        assert_eq!(join_path("/srv", "/x/../y"), "/y");
        assert_eq!(join_path("/srv", "."), "/srv");
        assert_eq!(join_path("/srv", "./"), "/srv/");
    }

    #[test]
    fn ports_expand() {
        assert_eq!(expand_port("80").unwrap(), ["80/tcp"]);
        assert_eq!(expand_port("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(expand_port("8000-8001").unwrap(), ["8000/tcp", "8001/tcp"]);
        assert!(expand_port("x").is_err());
    }
}
