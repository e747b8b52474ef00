//! Helpers for the kernel-facing tests: children that wait for a go signal, and guards that
//! clean up cgroups on every path.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use berth_cgroups::Cgroup;

/// A shell script child whose stdin is kept open: the script typically begins with `read _`
/// so it can be moved into a cgroup before it does anything. Killed and reaped on drop.
pub struct ShChild {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ShChild {
    pub fn spawn(script: &str) -> ShChild {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        ShChild { child, stdin }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Lets the script past one `read _`.
    pub fn go(&mut self) {
        self.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    }

    /// Waits (bounded) for the child to exit; returns its status, stdout and stderr.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        self.stdin.take();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < timeout,
                "child {} did not exit within {timeout:?}",
                self.pid()
            );
            sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        let mut err = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, out, err)
    }
}

impl Drop for ShChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Owns a test cgroup: on drop it thaws it (frozen v1 tasks cannot die), kills whatever is
/// inside (bounded), and destroys it.
pub struct CgroupGuard(pub Cgroup);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = self.0.thaw();
        for _ in 0..100 {
            let pids = self.0.pids().unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            sleep(Duration::from_millis(20));
        }
        if let Err(e) = self.0.destroy() {
            eprintln!("cleanup of {:?} failed: {e}", self.0.paths());
        }
    }
}

impl std::ops::Deref for CgroupGuard {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.0
    }
}

/// Restores a cgroup2 directory's `cgroup.subtree_control` on drop: controllers enabled since
/// it was made are disabled again. Drop it after the cgroups below it are gone.
pub struct SubtreeControlGuard {
    dir: PathBuf,
    before: Vec<String>,
}

impl SubtreeControlGuard {
    pub fn new(dir: &Path) -> SubtreeControlGuard {
        SubtreeControlGuard {
            dir: dir.to_owned(),
            before: subtree_control(dir),
        }
    }
}

fn subtree_control(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

impl Drop for SubtreeControlGuard {
    fn drop(&mut self) {
        for controller in subtree_control(&self.dir) {
            if !self.before.contains(&controller) {
                let file = self.dir.join("cgroup.subtree_control");
                if let Err(e) = std::fs::write(&file, format!("-{controller}")) {
                    eprintln!("could not disable {controller} in {}: {e}", file.display());
                }
            }
        }
    }
}

pub fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.as_ref().display()))
        .trim()
        .to_owned()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(10));
    }
    cond()
}
