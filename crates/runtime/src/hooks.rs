//! OCI hooks: programs run at lifecycle points with the container's state JSON on stdin.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Result, RuntimeError};

/// Runs `hooks` in order; the first failure stops the rest. A hook without a timeout may run
/// for at most `DEFAULT_TIMEOUT`, so a stuck hook cannot wedge the runtime forever.
pub fn run(phase: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    hooks.iter().try_for_each(|h| run_one(phase, h, state_json))
}

/// Runs every hook even when some fail, for the phases where the runtime-spec says a failure
/// is only a warning (poststart, poststop). Returns one message per failed hook.
pub fn run_all(phase: &'static str, hooks: &[Hook], state_json: &[u8]) -> Vec<String> {
    hooks
        .iter()
        .filter_map(|h| run_one(phase, h, state_json).err())
        .map(|e| e.to_string())
        .collect()
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

fn run_one(phase: &'static str, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let fail = |message: String| RuntimeError::Hook {
        phase,
        path: hook.path().clone(),
        message,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some(argv0) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().map_err(|e| fail(format!("start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let limit = hook
        .timeout()
        .map(|t| Duration::from_secs(t.max(1) as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let status = wait_bounded(&mut child, limit).map_err(|e| fail(e.to_string()))?;
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut stderr);
            }
            Err(fail(format!(
                "{s}{}{}",
                if stderr.is_empty() { "" } else { ": " },
                stderr.trim()
            )))
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(fail(format!("timed out after {}s", limit.as_secs())))
        }
    }
}

fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hook_gets_state_on_stdin_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo $X >> {0}"],"env":["X=42"]}}"#,
            out.display()
        ));
        run("prestart", &[h], b"{\"id\":\"c\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}42\n");
    }

    #[test]
    fn failing_and_slow_hooks_are_errors() {
        let failing = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo nope >&2; exit 3"]}"#);
        let err = run("prestart", &[failing], b"{}").unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("prestart"), "{err}");
        let slow = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 5"],"timeout":1}"#);
        let err = run("poststart", &[slow], b"{}").unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
    }
}
