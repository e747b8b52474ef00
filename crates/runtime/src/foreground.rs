//! What a foreground `run` or `exec` does while its process lives: forward the signals the
//! runtime receives, relay a pty between the user's terminal and the container, and return the
//! process's exit status.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Context, Result, RuntimeError};

/// Signals a foreground runtime passes on to the container's process.
const FORWARDED: [Signal; 8] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Blocks the forwarded signals and SIGCHLD so they arrive through a signalfd. Call it before
/// the process is created, so no signal is lost in between; children get a clean mask anyway.
pub fn block_signals() -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.thread_block().context(|| "block signals".into())?;
    SignalFd::new(&mask).context(|| "signalfd".into())
}

/// Waits for `pid` (our child, or reparented to us as subreaper), forwarding signals and, with
/// `console`, relaying between our stdin/stdout and the pty master. Returns the exit code, or
/// 128 + signal, as Docker reports it.
pub fn wait(signals: &SignalFd, pid: i32, console: Option<OwnedFd>) -> Result<i32> {
    let _raw = match &console {
        Some(master) => {
            copy_window_size(master);
            RawTerminal::enter()
        }
        None => None,
    };
    let mut relay = console.map(Relay::new);
    loop {
        if let Some(code) = reap(pid)? {
            if let Some(r) = relay.as_mut() {
                r.drain();
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(r) = &relay {
            fds.extend(r.poll_fds());
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context(|| "poll".into()),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);
        if ready[0] {
            handle_signal(signals, pid, relay.as_ref())?;
        }
        if let Some(r) = relay.as_mut() {
            r.pump(&ready[1..]);
        }
    }
}

fn handle_signal(signals: &SignalFd, pid: i32, relay: Option<&Relay>) -> Result<()> {
    let Some(info) = signals.read_signal().context(|| "read signalfd".into())? else {
        return Ok(());
    };
    let sig = info.ssi_signo as i32;
    match (sig, relay) {
        (libc::SIGCHLD, _) => {}
        // With a pty the kernel tells the container's foreground group about size changes.
        (libc::SIGWINCH, Some(r)) => copy_window_size(&r.master),
        _ => {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::try_from(sig).ok());
        }
    }
    Ok(())
}

/// Reaps every exited child; returns the exit status of `pid` once it has exited.
fn reap(pid: i32) -> Result<Option<i32>> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                return Ok(Some(128 + sig as i32));
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                return Err(RuntimeError::Init {
                    message: format!("process {pid} is not our child"),
                    exit_code: 1,
                });
            }
            Err(e) => return Err(e).context(|| "waitpid".into()),
        }
    }
}

/// Copies bytes stdin → pty master and pty master → stdout.
struct Relay {
    master: OwnedFd,
    stdin_open: bool,
    master_open: bool,
}

impl Relay {
    fn new(master: OwnedFd) -> Relay {
        Relay {
            master,
            stdin_open: true,
            master_open: true,
        }
    }

    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        // SAFETY: fd 0 stays open for the life of the process.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let flags = |open: bool| {
            if open {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            }
        };
        vec![
            PollFd::new(stdin, flags(self.stdin_open)),
            PollFd::new(self.master.as_fd(), flags(self.master_open)),
        ]
    }

    fn pump(&mut self, ready: &[bool]) {
        let mut buf = [0u8; 16 * 1024];
        if ready.first() == Some(&true) && self.stdin_open {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => self.stdin_open = false,
                Ok(n) => {
                    let _ = write_all_fd(&self.master, &buf[..n]);
                }
            }
        }
        if ready.get(1) == Some(&true) && self.master_open {
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) | Err(_) => self.master_open = false,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                }
            }
        }
    }

    /// Output the process wrote just before exiting is still in the pty: copy what is there.
    fn drain(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..64 {
            let mut fd = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fd, PollTimeout::ZERO), Ok(n) if n > 0) {
                return;
            }
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = std::io::stdout().write_all(&buf[..n]);
                }
                _ => return,
            }
        }
        let _ = std::io::stdout().flush();
    }
}

fn write_all_fd(fd: &OwnedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        let n = nix::unistd::write(fd, bytes)?;
        bytes = &bytes[n..];
    }
    Ok(())
}

fn copy_window_size(master: &OwnedFd) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into a valid pointer; failure (stdin not a tty) is fine.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        let _ = crate::tty::resize(master, ws.ws_row, ws.ws_col);
    }
}

/// Our terminal in raw mode for the life of the relay, restored on drop.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
