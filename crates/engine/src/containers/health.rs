//! Health checks (`HEALTHCHECK`, `docker run --health-*`), as Docker runs them: the test is
//! an exec process in the container every interval (every start interval during the start
//! period, until the first success); exit 0 is healthy, anything else (or the timeout) a
//! failure, and `retries` failures in a row make the container unhealthy. Failures inside
//! the start period do not count. The last five results are kept in `State.Health.Log`; a
//! change of status is a `health_status: …` event. The monitor of a run ends with that run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_errdefs::CategorizedError;
use berth_shim::protocol::Request;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::{AttachOptions, Container, Containers, ExecConfig, Result, invalid, now, shim};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Docker keeps this many results and this much of each one's output.
const MAX_LOG_ENTRIES: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// `Config.Healthcheck`: durations in nanoseconds, 0 meaning "the default" (or the image's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `["CMD", args…]`, `["CMD-SHELL", command]` or `["NONE"]`; empty inherits the image's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Between checks.
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// How long one check may run.
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Failures in this first stretch do not count.
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Between checks during the start period.
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Failures in a row that make the container unhealthy.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    /// Failures in a row.
    pub failing_streak: i64,
    /// The last results, oldest first.
    pub log: Vec<HealthResult>,
}

/// One check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthResult {
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// The test's exit code; -1 when it timed out or could not run.
    pub exit_code: i64,
    /// Its output (stdout and stderr), cut at 4 KiB.
    pub output: String,
}

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// `docker ps`' words for it: `healthy`, `unhealthy`, `health: starting`.
pub fn status_words(h: &Health) -> String {
    if h.status == STARTING {
        "health: starting".to_owned()
    } else {
        h.status.clone()
    }
}

/// Rejects what Docker rejects at create.
pub fn validate(h: Option<&HealthConfig>) -> Result<()> {
    let Some(h) = h else { return Ok(()) };
    let min = 1_000_000; // 1 ms
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if v != 0 && v < min {
            return Err(invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(invalid("Retries in Healthcheck cannot be negative"));
    }
    if let Some(test) = &h.test
        && let Some(kind) = test.first()
        && !matches!(kind.as_str(), "NONE" | "CMD" | "CMD-SHELL")
    {
        return Err(invalid(format!("unknown healthcheck type '{kind}'")));
    }
    Ok(())
}

/// The container's healthcheck: its own settings, each unset one taken from the image's.
pub fn merge(
    user: Option<HealthConfig>,
    image: Option<&serde_json::Value>,
) -> Option<HealthConfig> {
    let image: Option<HealthConfig> = image.and_then(|v| serde_json::from_value(v.clone()).ok());
    let Some(mut h) = user else { return image };
    let Some(img) = image else { return Some(h) };
    if h.test.as_ref().is_none_or(Vec::is_empty) {
        h.test = img.test;
    }
    for (mine, theirs) in [
        (&mut h.interval, img.interval),
        (&mut h.timeout, img.timeout),
        (&mut h.start_period, img.start_period),
        (&mut h.start_interval, img.start_interval),
        (&mut h.retries, img.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
    Some(h)
}

/// The command a check runs, or `None` when there is no check (`NONE`, nothing set).
pub fn probe_command(h: &HealthConfig) -> Option<Vec<String>> {
    let test = h.test.as_ref()?;
    let (kind, rest) = test.split_first()?;
    match kind.as_str() {
        "CMD" if !rest.is_empty() => Some(rest.to_vec()),
        "CMD-SHELL" if !rest.is_empty() => {
            Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")])
        }
        _ => None,
    }
}

fn nanos_or(n: i64, default: Duration) -> Duration {
    u64::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .map_or(default, Duration::from_nanos)
}

/// Applies one result; returns the new status when it changed.
fn record_result(
    h: &mut Health,
    result: HealthResult,
    counts: bool,
    retries: i64,
) -> Option<String> {
    let before = h.status.clone();
    if result.exit_code == 0 {
        h.failing_streak = 0;
        h.status = HEALTHY.to_owned();
    } else if counts {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = UNHEALTHY.to_owned();
        }
    }
    h.log.push(result);
    if h.log.len() > MAX_LOG_ENTRIES {
        let extra = h.log.len() - MAX_LOG_ENTRIES;
        h.log.drain(..extra);
    }
    (h.status != before).then(|| h.status.clone())
}

impl Containers {
    /// Starts the health monitor of `c`'s current run, if it has a check.
    pub(super) fn spawn_health(self: &Arc<Self>, c: Arc<Container>) {
        let (config, run) = {
            let r = c.rec();
            (r.config.healthcheck.clone(), c.life.borrow().exits)
        };
        let Some(config) = config else { return };
        let Some(cmd) = probe_command(&config) else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move { this.monitor_health(c, config, cmd, run).await });
    }

    async fn monitor_health(
        self: Arc<Self>,
        c: Arc<Container>,
        config: HealthConfig,
        cmd: Vec<String>,
        run: u64,
    ) {
        let interval = nanos_or(config.interval, DEFAULT_INTERVAL);
        let timeout = nanos_or(config.timeout, DEFAULT_TIMEOUT);
        let start_interval = nanos_or(config.start_interval, DEFAULT_START_INTERVAL);
        let start_period = nanos_or(config.start_period, Duration::ZERO);
        let retries = if config.retries > 0 {
            config.retries
        } else {
            DEFAULT_RETRIES
        };
        let started = Instant::now();
        let mut life = c.life.subscribe();
        loop {
            let starting = c
                .rec()
                .state
                .health
                .as_ref()
                .is_some_and(|h| h.status == STARTING);
            let pause = if starting && started.elapsed() < start_period {
                start_interval
            } else {
                interval
            };
            // Sleeps, or ends with the run (exit, removal) while sleeping.
            let ended = tokio::select! {
                _ = tokio::time::sleep(pause) => false,
                changed = life.wait_for(|l| l.exits != run || l.removed || !l.running) => {
                    changed.is_ok()
                }
            };
            if ended || !self.same_run(&c, run) {
                return;
            }
            if c.rec().state.paused {
                continue;
            }
            let counts = started.elapsed() >= start_period;
            let result = self.probe(&c.id, &cmd, timeout).await;
            if !self.same_run(&c, run) {
                return;
            }
            let changed = {
                let mut r = c.rec();
                let h = r.state.health.get_or_insert_with(Health::default);
                // A failure in the start period counts once the container was healthy.
                let counts = counts || h.status != STARTING;
                record_result(h, result, counts, retries)
            };
            if let Err(e) = self.save(&c) {
                tracing::warn!("saving {}: {}", c.id, e.message);
            }
            if let Some(status) = changed {
                let record = c.snapshot();
                self.publish(&record, &format!("health_status: {status}"), &[]);
            }
        }
    }

    fn same_run(&self, c: &Container, run: u64) -> bool {
        let l = c.life.borrow();
        l.exits == run && l.running && !l.removed
    }

    /// Runs the check once as an exec process.
    async fn probe(self: &Arc<Self>, id: &str, cmd: &[String], timeout: Duration) -> HealthResult {
        let start = now();
        let (exit_code, output) = match self.run_probe(id, cmd, timeout).await {
            Ok(done) => done,
            Err(e) => (-1, e.message),
        };
        HealthResult {
            start,
            end: now(),
            exit_code,
            output,
        }
    }

    async fn run_probe(
        self: &Arc<Self>,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> std::result::Result<(i64, String), CategorizedError> {
        let cfg = ExecConfig {
            cmd: Some(cmd.to_vec()),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecConfig::default()
        };
        let process = self.exec_process(id, &cfg)?;
        let state_dir = self.state_dir(id);
        let exec_id = format!("health-{}", &berth_reference::generate_id()[..16]);
        shim::call(
            &state_dir,
            Request::Exec {
                exec_id: exec_id.clone(),
                process: Box::new(process),
                tty: false,
                stdin: false,
            },
        )
        .await?;
        let opts = AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
        };
        let mut stream = shim::attach_to(&state_dir, opts, Some(&exec_id)).await?;
        let pid = shim::exec_start(&state_dir, &exec_id).await?;
        let run = async {
            let output = read_output(&mut stream).await;
            let exit = shim::exec_wait(&state_dir, &exec_id).await;
            (output, exit)
        };
        let outcome = tokio::time::timeout(timeout, run).await;
        // The shim keeps each exec's exit in a file; a check every few seconds must not
        // pile them up.
        let _ = std::fs::remove_file(state_dir.join(berth_shim::exec_exit_name(&exec_id)));
        match outcome {
            Ok((output, Ok(exit))) => Ok((i64::from(exit.exit_code), output)),
            Ok((_, Err(e))) => Ok((-1, e)),
            Err(_) => {
                if pid > 0 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Ok((
                    -1,
                    format!(
                        "Health check exceeded timeout ({})",
                        humantime_secs(timeout)
                    ),
                ))
            }
        }
    }
}

/// Go's duration format for whole and fractional seconds (`30s`, `1.5s`).
fn humantime_secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Reads the exec's stdcopy frames to the end; keeps the first 4 KiB of payload.
async fn read_output(stream: &mut tokio::net::UnixStream) -> String {
    let mut kept = Vec::new();
    let mut header = [0u8; 8];
    let mut chunk = vec![0u8; 8192];
    loop {
        if stream.read_exact(&mut header).await.is_err() {
            break;
        }
        let mut left = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        while left > 0 {
            let want = left.min(chunk.len());
            match stream.read(&mut chunk[..want]).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&kept).into_owned(),
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                    left -= n;
                }
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..HealthResult::default()
        }
    }

    #[test]
    fn failures_in_a_row_make_it_unhealthy_and_one_success_heals() {
        let mut h = Health {
            status: STARTING.into(),
            ..Health::default()
        };
        assert_eq!(record_result(&mut h, result(1), false, 2), None);
        assert_eq!(h.failing_streak, 0, "start period failures don't count");
        assert_eq!(record_result(&mut h, result(1), true, 2), None);
        assert_eq!(
            record_result(&mut h, result(-1), true, 2).as_deref(),
            Some(UNHEALTHY)
        );
        assert_eq!(
            record_result(&mut h, result(0), true, 2).as_deref(),
            Some(HEALTHY)
        );
        assert_eq!(h.failing_streak, 0);
        for _ in 0..10 {
            record_result(&mut h, result(0), true, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
    }

    #[test]
    fn user_settings_override_the_images_field_by_field() {
        let image = serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 4});
        let user = HealthConfig {
            timeout: 2_000_000_000,
            ..HealthConfig::default()
        };
        let h = merge(Some(user), Some(&image)).expect("merged");
        assert_eq!(h.test, Some(vec!["CMD-SHELL".into(), "true".into()]));
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (5_000_000_000, 2_000_000_000, 4)
        );
        let none = merge(
            Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..HealthConfig::default()
            }),
            Some(&image),
        )
        .expect("config");
        assert_eq!(probe_command(&none), None);
        assert_eq!(
            probe_command(&h),
            Some(vec!["/bin/sh".into(), "-c".into(), "true".into()])
        );
    }

    #[test]
    fn bad_settings_are_refused_as_docker_does() {
        let bad = |h: HealthConfig| validate(Some(&h)).expect_err("invalid").message;
        assert_eq!(
            bad(HealthConfig {
                interval: 10,
                ..HealthConfig::default()
            }),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            bad(HealthConfig {
                retries: -1,
                ..HealthConfig::default()
            }),
            "Retries in Healthcheck cannot be negative"
        );
        assert!(
            bad(HealthConfig {
                test: Some(vec!["RUN".into()]),
                ..HealthConfig::default()
            })
            .contains("unknown healthcheck type")
        );
    }
}
