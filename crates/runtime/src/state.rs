//! What the runtime remembers about a container between commands: `<root>/<id>/state.json`
//! (written atomically), a copy of the config it was created from, and the exec fifo whose
//! presence means "created but not started".

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Result, RuntimeError};

/// The OCI lifecycle states, spelled as `state` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The record kept in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// The init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat), so a recycled pid is not mistaken
    /// for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    pub owner: String,
    pub cgroup_path: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

/// Container ids become directory names: refuse anything that could leave `<root>`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_owned()))
    }
}

/// The state directory of one container.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub id: String,
    pub dir: PathBuf,
}

impl StateDir {
    /// The state directory of `id` under `root`, without touching the disk.
    pub fn new(root: &Path, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        Ok(StateDir {
            id: id.to_owned(),
            dir: root.join(id),
        })
    }

    /// Creates the directory; fails if the container exists.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        let state = StateDir::new(root, id)?;
        create_root(root)?;
        match fs::create_dir(&state.dir) {
            Ok(()) => Ok(state),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::Exists(id.into()))
            }
            Err(e) => Err(e).context(|| format!("create {}", state.dir.display())),
        }
    }

    /// An existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<StateDir> {
        let state = StateDir::new(root, id)?;
        if state.dir.join("state.json").exists() {
            Ok(state)
        } else {
            Err(RuntimeError::NotFound(id.into()))
        }
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    pub fn load(&self) -> Result<ContainerRecord> {
        let path = self.dir.join("state.json");
        let bytes = fs::read(&path).context(|| format!("read {}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::InvalidConfig {
            path,
            message: e.to_string(),
        })
    }

    pub fn save(&self, record: &ContainerRecord) -> Result<()> {
        let json =
            serde_json::to_vec(record).map_err(|e| RuntimeError::InvalidSpec(e.to_string()))?;
        write_atomic(&self.dir.join("state.json"), &json)
    }

    /// The config the container was created from (the bundle may change afterwards).
    pub fn load_spec(&self) -> Result<Spec> {
        let path = self.dir.join("config.json");
        Spec::load(&path).map_err(|e| RuntimeError::InvalidConfig {
            path,
            message: e.to_string(),
        })
    }

    pub fn save_spec(&self, spec: &Spec) -> Result<()> {
        let json =
            serde_json::to_vec(spec).map_err(|e| RuntimeError::InvalidSpec(e.to_string()))?;
        write_atomic(&self.dir.join("config.json"), &json)
    }

    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context(|| format!("remove {}", self.dir.display()))
            }
            _ => Ok(()),
        }
    }
}

fn create_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .context(|| format!("create state root {}", root.display()))
}

/// tmp → rename: a reader sees the old or the new file, never half of one.
///
/// No fsync: runtime state describes live processes, which do not survive the crash or power
/// loss an fsync would guard against (and `--root` is normally on tmpfs). On a busy disk the
/// fsyncs cost more than the rest of `run` together.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    };
    write().context(|| format!("write {}", path.display()))
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: count from its end.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split(' ').nth(19)?.parse().ok()
}

/// True when `pid` is alive, is the process we recorded (same start time) and not a zombie.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let state = fields.first().copied().unwrap_or("X");
    let started = fields.get(19).and_then(|s| s.parse::<u64>().ok());
    state != "Z" && state != "X" && started == Some(start_time)
}

/// The current time as RFC 3339 with nanoseconds, UTC (the format runc's `state` prints).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Formats a Unix time as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let mut out = String::with_capacity(30);
    write_rfc3339(secs, nanos, &mut out);
    out
}

/// Appends a Unix time as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` to `out` (no allocation when `out`
/// has room: log writers call this per line).
pub fn write_rfc3339(secs: i64, nanos: u32, out: &mut String) {
    use std::fmt::Write;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

// Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian calendar.
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_that_could_escape_the_root_are_refused() {
        for bad in [
            "", "a/b", "..", "../x", ".hidden", "-flag", "a b", "a\0b", "x/../y",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["abc", "A-1_b.c", "0123456789abcdef"] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap();
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        assert!(!is_alive(0, 0));
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
