//! Start-up: fork, detach, create the container, then tell the starter whether it worked.
//!
//! The starter (the `berth shim` process the daemon ran) forks; the child becomes the shim:
//! `setsid`, stdio on `/dev/null`, every inherited descriptor closed, child subreaper. The
//! starter waits on a close-on-exec pipe for one line — `ok` or `error: …` — and exits
//! accordingly, so the daemon sees creation errors as the exit status and stderr of the
//! command it ran. The shim does not depend on the starter afterwards.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::signal::{SigHandler, SigSet, Signal, signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2, setsid};

use crate::config::Config;
use crate::error::ShimError;
use crate::runtime::{ExternalRuntime, RUNTIME_TIMEOUT, Runtime};
use crate::server::{PID_NAME, SOCKET_NAME, Shim};

/// Forks the shim and waits for its verdict. Returns the process exit code for the starter.
pub fn spawn(cfg: Config) -> i32 {
    match start(cfg) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("berth shim: {msg}");
            1
        }
    }
}

fn start(cfg: Config) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cfg.state_dir)
        .map_err(|e| format!("create state dir {}: {e}", cfg.state_dir.display()))?;
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe2: {e}"))?;
    // SAFETY: `berth shim` is single-threaded when it gets here (documented on `main_entry`),
    // so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => Err(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(ready_r);
            let code = become_shim(cfg, ready_w);
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { child }) => {
            drop(ready_w);
            await_verdict(ready_r, child)
        }
    }
}

/// Reads the shim's one-line verdict. EOF without one means the shim died.
fn await_verdict(ready: OwnedFd, child: Pid) -> Result<(), String> {
    let mut f = File::from(ready);
    // Creation is bounded by the runtime timeout plus the console wait; allow both.
    let limit = RUNTIME_TIMEOUT + Duration::from_secs(30);
    let readable = crate::sock::wait_readable(&f, limit).map_err(|e| e.to_string())?;
    let mut msg = String::new();
    if readable {
        // Errors here leave `msg` empty, reported below as a dead shim.
        let _ = (&mut f).take(4096).read_to_string(&mut msg);
    }
    let msg = msg.trim();
    if msg == "ok" {
        return Ok(());
    }
    if readable {
        // The shim exits right after reporting a failure; reap it so no zombie is left.
        let _ = waitpid(child, None);
    }
    Err(match msg.strip_prefix("error: ") {
        Some(m) => m.to_owned(),
        None if !readable => "the shim did not report readiness in time".to_owned(),
        None => "the shim exited during start-up".to_owned(),
    })
}

/// The shim process: detach, create, report, serve. Returns its exit code.
fn become_shim(cfg: Config, ready: OwnedFd) -> i32 {
    let mut ready = File::from(ready);
    let runtime: Box<dyn Runtime> = if cfg.runtime.as_os_str() == crate::config::BUILTIN_RUNTIME {
        Box::new(crate::builtin::BuiltinRuntime::new(
            cfg.runtime_root.clone(),
        ))
    } else {
        Box::new(ExternalRuntime::new(
            cfg.runtime.clone(),
            cfg.runtime_root.clone(),
        ))
    };
    let state_dir = cfg.state_dir.clone();
    let created = detach(ready.as_raw_fd()).and_then(|sigfd| {
        crate::persist::write_volatile(
            &state_dir.join(PID_NAME),
            format!("{}\n", std::process::id()).as_bytes(),
        )?;
        Shim::create(cfg, runtime, sigfd)
    });
    let mut shim = match created {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(state_dir.join(SOCKET_NAME));
            let _ = std::fs::remove_file(state_dir.join(PID_NAME));
            let msg = e.to_string().replace(['\n', '\r'], " ");
            // The starter may be gone; then nobody is left to tell.
            let _ = writeln!(ready, "error: {msg}");
            return 1;
        }
    };
    // The starter may be gone; the container exists and a daemon may connect later.
    let _ = ready.write_all(b"ok\n");
    drop(ready);
    // Creating the container (spec parsing, seccomp compilation) freed most of what it
    // allocated; hand those heap pages back, the loop needs few of them.
    // SAFETY: malloc_trim only releases free memory of the allocator; single-threaded here.
    unsafe {
        libc::malloc_trim(0);
    }
    crate::trim::trim_file_mappings();
    match shim.run() {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// New session, no stdio, no inherited descriptors but `keep`, subreaper, SIGCHLD via signalfd.
fn detach(keep: i32) -> Result<SignalFd, ShimError> {
    setsid().map_err(|e| ShimError::sys("setsid", e))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| ShimError::io("open", "/dev/null", e))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| ShimError::sys("dup2", e))?;
    nix::unistd::dup2_stdout(&null).map_err(|e| ShimError::sys("dup2", e))?;
    nix::unistd::dup2_stderr(&null).map_err(|e| ShimError::sys("dup2", e))?;
    drop(null);
    close_inherited(keep);
    // Do not pin whatever directory the starter ran in (it may be a mount to be removed).
    std::env::set_current_dir("/").map_err(|e| ShimError::io("chdir", "/", e))?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| ShimError::sys("PR_SET_CHILD_SUBREAPER", e))?;
    // Whatever the starter ignored (nohup's SIGHUP, …) would be inherited by the container:
    // exec keeps ignored signals ignored. Start from the defaults.
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: SIG_DFL installs no handler code. Errors (none expected) leave one signal
        // as inherited, which is no reason to fail.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    // SAFETY: setting SIGPIPE to SIG_IGN installs no handler code; a write to a departed
    // client then fails with EPIPE instead of killing the shim. (Children get SIG_DFL back
    // from std's spawn.)
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }
        .map_err(|e| ShimError::sys("ignore SIGPIPE", e))?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| ShimError::sys("block SIGCHLD", e))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| ShimError::sys("signalfd", e))
}

/// Closes every descriptor above stderr except `keep`: whatever the starter leaked (its
/// pipes, a daemon's sockets) must not be held by the shim or reach the container.
fn close_inherited(keep: i32) {
    let keep = keep as u32;
    // SAFETY: close_range only closes descriptors; none of those above 2 but `keep` is in use
    // by this freshly forked, single-threaded process.
    unsafe {
        if keep > 3 {
            libc::close_range(3, keep - 1, 0);
        }
        libc::close_range(keep + 1, u32::MAX, 0);
    }
}
