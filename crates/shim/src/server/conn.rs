//! One client connection: a control channel (JSON lines) that may turn into an attach stream.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use crate::protocol::{Response, StdStream, stdcopy_header};

// Output never waits for a client: one that falls this far behind is disconnected (the log
// still has everything).
use crate::protocol::MAX_CLIENT_BUFFER;

/// Which process a connection is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The container's init.
    Init,
    /// An exec process, by id.
    Exec(String),
}

/// What an attached connection receives and sends.
#[derive(Debug, Clone)]
pub struct Attach {
    pub target: Target,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Raw bytes (TTY) instead of stdcopy frames.
    pub raw: bool,
}

/// A request that is answered later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// `wait` or `exec_wait`.
    Wait(Target),
}

/// One accepted connection.
#[derive(Debug)]
pub struct Conn {
    pub stream: UnixStream,
    /// Bytes received and not yet handled (control mode).
    pub inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// Set once the connection became an attach stream.
    pub attach: Option<Attach>,
    /// A request waiting for an event; later requests wait behind it.
    pub pending: Option<Pending>,
    /// The client shut its write side (EOF read).
    pub read_closed: bool,
    /// The peer hung up while the shim could not take its input; not polled until it can.
    pub hup_deferred: bool,
    /// Close once everything queued is sent.
    pub close_after_flush: bool,
    /// To be dropped at the end of this loop iteration.
    pub dead: bool,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            attach: None,
            pending: None,
            read_closed: false,
            hup_deferred: false,
            close_after_flush: false,
            dead: false,
        }
    }

    /// Bytes queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Queues a response line and tries to send it.
    pub fn respond(&mut self, resp: &Response) {
        // Serializing these plain structs cannot fail; an empty line would only confuse.
        if let Ok(mut line) = serde_json::to_vec(resp) {
            line.push(b'\n');
            self.out.extend_from_slice(&line);
        }
        self.flush();
    }

    /// Queues process output for an attached client, framed unless raw. A client that is
    /// too far behind is disconnected.
    pub fn send_output(&mut self, stream: StdStream, data: &[u8]) {
        let Some(a) = &self.attach else { return };
        let wanted = match stream {
            StdStream::Stderr => a.stderr,
            _ => a.stdout,
        };
        if !wanted || self.dead || data.is_empty() {
            return;
        }
        let raw = a.raw;
        // Send straight away when nothing is queued: the common case copies nothing.
        let mut rest: &[u8] = data;
        let header = stdcopy_header(stream, data.len() as u32);
        let mut hdr: &[u8] = if raw { &[] } else { &header };
        if self.queued() == 0 {
            let sent = self.write_now(&[hdr, rest]);
            let from_hdr = sent.min(hdr.len());
            hdr = &hdr[from_hdr..];
            rest = &rest[sent - from_hdr..];
        }
        if hdr.is_empty() && rest.is_empty() {
            return;
        }
        if self.queued() + hdr.len() + rest.len() > MAX_CLIENT_BUFFER {
            self.dead = true;
            return;
        }
        self.out.extend_from_slice(hdr);
        self.out.extend_from_slice(rest);
    }

    /// Writes as much as the socket takes without blocking; returns the bytes written.
    fn write_now(&mut self, parts: &[&[u8]]) -> usize {
        let slices: Vec<std::io::IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| std::io::IoSlice::new(p))
            .collect();
        if slices.is_empty() {
            return 0;
        }
        match self.stream.write_vectored(&slices) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => 0,
            Err(_) => {
                self.dead = true;
                0
            }
        }
    }

    /// Sends queued bytes until the socket would block (bounded: at most the queue).
    pub fn flush(&mut self) {
        while self.queued() > 0 && !self.dead {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => self.dead = true,
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => self.dead = true,
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            // Give back a large buffer once drained: an idle shim should stay small.
            if self.out.capacity() > 64 * 1024 {
                self.out = Vec::new();
            }
        } else if self.out_pos > self.out.len() / 2 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        if self.close_after_flush && self.queued() == 0 {
            self.dead = true;
        }
    }

    /// Reads what is available into `buf`; `Ok(0)` is EOF. `None` when it would block.
    pub fn read_some(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            match self.stream.read(buf) {
                Ok(n) => return Some(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(_) => {
                    self.dead = true;
                    return None;
                }
            }
        }
    }

    /// Takes the next complete request line out of the input, if any.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        let nl = self.inbuf.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.inbuf.drain(..=nl).collect();
        line.pop();
        Some(line)
    }
}
