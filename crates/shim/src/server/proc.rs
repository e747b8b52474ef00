//! A process whose stdio the shim holds: the container's init or an exec process.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::time::Instant;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use crate::error::ShimError;
use crate::protocol::{ExitInfo, Status, StdStream};

/// Most stdin bytes buffered for a process that is not reading; attached clients wait
/// (their input is not read) until it drains.
pub const MAX_STDIN_BUFFER: usize = 64 * 1024;

/// What reading one output gave.
pub enum ReadResult {
    /// Bytes in the shim's chunk buffer.
    Data(usize),
    /// Nothing now.
    Nothing,
    /// End of output (EOF, or EIO from a pty master whose slave is closed).
    Closed,
}

/// Stdio and lifecycle of one process.
#[derive(Debug)]
pub struct Proc {
    /// Pid once created/started; 0 before.
    pub pid: i32,
    pub tty: bool,
    pub status: Status,
    /// Output read ends: `[stdout, stderr]` for pipes, `[master, None]` for a pty.
    pub out: [Option<File>; 2],
    /// Where stdin goes: a pipe's write end or a dup of the pty master.
    pub stdin: Option<File>,
    pub stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written (stdin EOF from a client with stdin-once).
    pub stdin_closing: bool,
    pub stdin_once: bool,
    /// Reaped, waiting for its output to drain until the deadline.
    pub reaped: Option<(ExitInfo, Instant)>,
    pub exit: Option<ExitInfo>,
}

impl Proc {
    pub fn new(tty: bool, stdin_once: bool) -> Proc {
        Proc {
            pid: 0,
            tty,
            status: Status::Created,
            out: [None, None],
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_closing: false,
            stdin_once,
            reaped: None,
            exit: None,
        }
    }

    /// Installs pipe read ends (and the stdin write end) after the runtime started the process.
    pub fn set_pipes(
        &mut self,
        stdout: OwnedFd,
        stderr: OwnedFd,
        stdin: Option<OwnedFd>,
    ) -> Result<(), ShimError> {
        self.out = [Some(nonblocking(stdout)?), Some(nonblocking(stderr)?)];
        self.stdin = stdin.map(nonblocking).transpose()?;
        Ok(())
    }

    /// Installs the pty master received from the runtime.
    pub fn set_master(&mut self, master: OwnedFd, stdin: bool) -> Result<(), ShimError> {
        let master = nonblocking(master)?;
        if stdin {
            self.stdin = Some(
                master
                    .try_clone()
                    .map_err(|e| ShimError::stream("dup pty master", e))?,
            );
        }
        self.out = [Some(master), None];
        Ok(())
    }

    /// The pty master, for resizing.
    pub fn master(&self) -> Option<&File> {
        if self.tty { self.out[0].as_ref() } else { None }
    }

    /// Which stream output `k` is.
    pub fn stream_of(&self, k: usize) -> StdStream {
        if k == 1 && !self.tty {
            StdStream::Stderr
        } else {
            StdStream::Stdout
        }
    }

    /// Whether every output is closed.
    pub fn outputs_closed(&self) -> bool {
        self.out.iter().all(Option::is_none)
    }

    /// Reads once from output `k` into `buf`.
    pub fn read_output(&mut self, k: usize, buf: &mut [u8]) -> ReadResult {
        let Some(f) = self.out[k].as_mut() else {
            return ReadResult::Closed;
        };
        loop {
            return match f.read(buf) {
                Ok(0) => ReadResult::Closed,
                Ok(n) => ReadResult::Data(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => ReadResult::Nothing,
                // EIO is how a pty master reports that the last slave fd closed.
                Err(_) => ReadResult::Closed,
            };
        }
    }

    /// Whether stdin can take more input from clients now.
    pub fn stdin_room(&self) -> bool {
        self.stdin.is_some() && !self.stdin_closing && self.stdin_buf.len() < MAX_STDIN_BUFFER
    }

    /// Queues client input for the process.
    pub fn push_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_some() && !self.stdin_closing {
            self.stdin_buf.extend_from_slice(data);
            self.flush_stdin();
        }
    }

    /// Stdin EOF from a client: close the process's stdin once the buffer is written. With a
    /// pty there is no pipe to close; the terminal's EOF character (^D) does the same for a
    /// reader in canonical mode.
    pub fn close_stdin(&mut self) {
        if self.stdin.is_none() || self.stdin_closing {
            return;
        }
        if self.tty {
            self.stdin_buf.push(0x04);
        }
        self.stdin_closing = true;
        self.flush_stdin();
    }

    /// Writes buffered stdin without blocking.
    pub fn flush_stdin(&mut self) {
        let Some(f) = self.stdin.as_mut() else {
            self.stdin_buf.clear();
            return;
        };
        let mut written = 0;
        let mut broken = false;
        while written < self.stdin_buf.len() {
            match f.write(&self.stdin_buf[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // EPIPE: the process closed its stdin; nothing more will be read.
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        self.stdin_buf.drain(..written);
        if broken || (self.stdin_closing && self.stdin_buf.is_empty()) {
            self.stdin = None;
            self.stdin_buf = Vec::new();
        }
    }

    /// Drops every stdio fd (after the process exited).
    pub fn close_all(&mut self) {
        self.out = [None, None];
        self.stdin = None;
        self.stdin_buf = Vec::new();
    }
}

fn nonblocking(fd: OwnedFd) -> Result<File, ShimError> {
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(|e| ShimError::sys("fcntl", e))?;
    fcntl(
        &fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| ShimError::sys("fcntl", e))?;
    Ok(File::from(fd))
}
