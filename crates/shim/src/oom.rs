//! Whether the kernel's OOM killer struck in a container's memory cgroup, for `oom_killed`.
//!
//! The shim finds the cgroup from `/proc/<init>/cgroup` right after create (the runtime has
//! placed the init there by then) and compares the cgroup's `oom_kill` counter at exit. The
//! runtime removes the cgroup only on delete, so it is still there when the init is reaped.

use std::path::{Path, PathBuf};

/// The memory cgroup of a container and its OOM-kill count at creation.
#[derive(Debug, Clone)]
pub struct OomWatch {
    /// The counter file: `memory.oom_control` (v1) or `memory.events` (v2).
    file: PathBuf,
    baseline: u64,
}

impl OomWatch {
    /// Finds the memory cgroup of `pid`; `None` when there is none to watch.
    pub fn for_pid(pid: i32) -> Option<OomWatch> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let file = counter_file(&text, Path::new("/sys/fs/cgroup"))?;
        let baseline = read_oom_kills(&file)?;
        Some(OomWatch { file, baseline })
    }

    /// Whether the count rose since creation; `None` when it can no longer be read.
    pub fn oom_killed(&self) -> Option<bool> {
        read_oom_kills(&self.file).map(|n| n > self.baseline)
    }
}

/// The counter file named by a `/proc/<pid>/cgroup` text under `root`.
fn counter_file(proc_cgroup: &str, root: &Path) -> Option<PathBuf> {
    let mut v2 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            return Some(root.join("memory").join(rel).join("memory.oom_control"));
        }
        if controllers.is_empty() {
            v2 = Some(root.join(rel).join("memory.events"));
        }
    }
    // A v2 path only counts on a pure v2 host; on a hybrid one the unified tree has no memory.
    v2.filter(|p| p.exists())
}

fn read_oom_kills(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_v1_memory_controller() {
        let text = "12:pids:/a\n5:memory:/berth/c1\n0::/berth/c1\n";
        assert_eq!(
            counter_file(text, Path::new("/sys/fs/cgroup")),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/berth/c1/memory.oom_control"
            ))
        );
    }
}
