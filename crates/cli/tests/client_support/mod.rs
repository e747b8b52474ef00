//! Shared by the `client_*` tests: a daemon with busybox, and the `berth` and docker CLIs
//! run against it.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon_support::Daemon;

pub fn usable() -> bool {
    if !berth_testsupport::is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: no docker CLI");
        return false;
    }
    true
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh state dir whose data root already holds `busybox:latest`.
pub fn prepared_dir() -> tempfile::TempDir {
    crate::daemon_support::busybox_dir()
}

/// Waits (bounded) for a child and collects its output.
pub fn finish(mut child: std::process::Child, args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || read_all(stdout));
    let err_reader = std::thread::spawn(move || read_all(stderr));
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("berth {args:?} did not finish in 30s");
    }
    let status = child.wait().expect("wait");
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

pub fn read_all(pipe: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut buf);
    }
    buf
}

pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The shims of this test: processes whose command line is a `shim` and mentions `dir`.
pub fn kill_leftover_shims(dir: &Path) {
    let needle = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = text(&cmdline).replace('\0', " ");
            if cmdline.contains(" shim ") && cmdline.contains(&needle) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Names unique to this process and test.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// A daemon with busybox; each test file adds its own cleanup (`Drop`) and helpers.
pub struct Env {
    pub daemon: Daemon,
}

impl Env {
    pub fn new() -> Env {
        Env {
            daemon: Daemon::start_in(prepared_dir(), &[]),
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.daemon.socket.display())
    }

    /// The `berth` CLI against this daemon (through `BERTH_HOST`), bounded in time.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_input(args, None)
    }

    pub fn berth_input(&self, args: &[&str], input: Option<&[u8]>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("BERTH_HOST", self.host())
            .env_remove("DOCKER_HOST")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        if let Some(input) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(input).expect("write stdin");
        }
        finish(child, args)
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.daemon.docker(args)
    }

    /// `berth …` that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}): {}\n{}\ndaemon log:\n{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr),
            tail(&self.daemon.log())
        );
        text(&out.stdout)
    }
}
