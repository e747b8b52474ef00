//! The shim's event loop: one `poll(2)` over the signalfd, the control listener, client
//! connections, the processes' outputs and their stdin, with a handler per kind of event.
//!
//! Nothing here blocks on a client: output is always read from the container and written to the
//! log, and a client that cannot keep up is disconnected. Runtime commands (`start`, `kill`, …)
//! do run synchronously inside a request handler; while one runs, the container's output waits
//! in its pipe (64 KiB), which a runtime command takes far less time to matter.

mod conn;
mod handlers;
mod proc;

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::pipe2;

use crate::config::Config;
use crate::error::ShimError;
use crate::logfile::JsonFileLog;
use crate::oom::OomWatch;
use crate::persist;
use crate::protocol::{ExitInfo, Response, StdStream};
use crate::runtime::{ProcessIo, Runtime};
use crate::sock::{self, ConsoleSocket};
use crate::timefmt;

use conn::{Conn, Pending, Target};
use proc::{Proc, ReadResult};

/// How long the shim waits for a pty master after the runtime returned.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a process exits, how long its output may still drain (something outside its pid
/// namespace can hold the pipe open) before the exit is reported anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Most connections at once; more are accepted and closed at once.
const MAX_CONNS: usize = 256;
/// Most exec processes remembered; the oldest finished ones are forgotten first.
const MAX_EXECS: usize = 256;
/// Bytes read from one fd per wakeup.
const CHUNK: usize = 32 * 1024;

/// The state directory's file names.
pub const SOCKET_NAME: &str = "shim.sock";
/// The shim's pid, written at start-up.
pub const PID_NAME: &str = "shim.pid";
/// The container's exit, written durably when it exits.
pub const EXIT_NAME: &str = "exit.json";

/// An exec process and what it was registered with.
struct Exec {
    id: String,
    process: Box<oci_spec::runtime::Process>,
    want_stdin: bool,
    proc: Proc,
}

/// What a ready fd in the poll set belongs to.
enum Token {
    Signal,
    Listener,
    Conn(usize),
    Output(Target, usize),
    Stdin(Target),
}

/// A running shim: the container's stdio, its clients and its runtime.
pub struct Shim {
    cfg: Config,
    runtime: Box<dyn Runtime>,
    sigfd: SignalFd,
    listener: UnixListener,
    conns: Vec<Conn>,
    init: Proc,
    execs: Vec<Exec>,
    log: Option<JsonFileLog>,
    oom: Option<OomWatch>,
    deleted: bool,
    done: bool,
    reap_again: bool,
    exec_seq: u32,
    chunk: Vec<u8>,
}

impl Shim {
    /// Binds the control socket, opens the log and creates the container. On error the
    /// caller cleans up (runtime delete) — the container may exist.
    pub fn create(
        cfg: Config,
        runtime: Box<dyn Runtime>,
        sigfd: SignalFd,
    ) -> Result<Shim, ShimError> {
        let listener = sock::bind_private(&cfg.state_dir.join(SOCKET_NAME))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ShimError::stream("listener", e))?;
        let log = cfg.log.clone().map(JsonFileLog::open).transpose()?;
        let mut shim = Shim {
            init: Proc::new(cfg.tty, cfg.stdin_once),
            cfg,
            runtime,
            sigfd,
            listener,
            conns: Vec::new(),
            execs: Vec::new(),
            log,
            oom: None,
            deleted: false,
            done: false,
            reap_again: false,
            exec_seq: 0,
            chunk: Vec::new(),
        };
        shim.create_container()?;
        Ok(shim)
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.cfg.state_dir.join(name)
    }

    fn create_container(&mut self) -> Result<(), ShimError> {
        let pid_file = self.state_path("init.pid");
        let pid = if self.cfg.tty {
            let console = ConsoleSocket::bind(self.state_path("console.sock"))?;
            let io = ProcessIo::Console {
                socket: console.path().to_owned(),
            };
            let pid = self
                .runtime
                .create(&self.cfg.id, &self.cfg.bundle, &io, &pid_file)?;
            let installed = console
                .receive(CONSOLE_TIMEOUT)
                .and_then(|master| self.init.set_master(master, self.cfg.stdin));
            self.undo_create_on_error(installed)?;
            pid
        } else {
            let (io, ours) = pipes(self.cfg.stdin)?;
            let pid = self
                .runtime
                .create(&self.cfg.id, &self.cfg.bundle, &io, &pid_file)?;
            // Drop our copies of the container's ends, so EOF arrives when it closes them.
            drop(io);
            let installed = self.init.set_pipes(ours.stdout, ours.stderr, ours.stdin);
            self.undo_create_on_error(installed)?;
            pid
        };
        // The pid lives on in `state`; the file was only the runtime's way to report it.
        let _ = std::fs::remove_file(&pid_file);
        self.init.pid = pid;
        self.oom = OomWatch::for_pid(pid);
        Ok(())
    }

    /// A step after a successful runtime create failed: remove the container again, so a
    /// failed start-up leaves nothing running. (A failed create cleans up after itself, and
    /// deleting then could hit another container that holds the same id.)
    fn undo_create_on_error(&self, r: Result<(), ShimError>) -> Result<(), ShimError> {
        if r.is_err() {
            let _ = self.runtime.delete(&self.cfg.id, true);
        }
        r
    }

    /// Serves until `shutdown`.
    pub fn run(&mut self) -> Result<(), ShimError> {
        self.chunk = vec![0; CHUNK];
        // Children may have exited before the loop started.
        self.reap();
        while !self.done {
            self.poll_once()?;
            self.finish_exits();
            self.conns.retain(|c| !c.dead);
        }
        self.farewell();
        Ok(())
    }

    /// The socket goes, then a last best-effort flush of responses (the `shutdown` answer):
    /// whoever reads that answer finds the shim unreachable at once and need not poll for it.
    fn farewell(&mut self) {
        let _ = std::fs::remove_file(self.state_path(SOCKET_NAME));
        let _ = std::fs::remove_file(self.state_path(PID_NAME));
        for c in &mut self.conns {
            // The socket is about to close: a blocking send with a short limit is fine now.
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_millis(200)));
            c.flush();
        }
    }

    fn poll_timeout(&self) -> PollTimeout {
        if self.reap_again {
            return PollTimeout::ZERO;
        }
        let now = Instant::now();
        let deadline = std::iter::once(&self.init)
            .chain(self.execs.iter().map(|e| &e.proc))
            .filter_map(|p| p.reaped.as_ref().map(|(_, d)| *d))
            .min();
        match deadline {
            // Round up so the deadline has passed when poll returns.
            Some(d) => {
                PollTimeout::try_from(d.saturating_duration_since(now) + Duration::from_millis(1))
                    .unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        }
    }

    fn poll_once(&mut self) -> Result<(), ShimError> {
        let timeout = self.poll_timeout();
        let ready: Vec<(Token, PollFlags)> = {
            let mut tokens = Vec::new();
            let mut fds = Vec::new();
            self.poll_set(&mut tokens, &mut fds);
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => return Ok(()),
                Err(e) => return Err(ShimError::sys("poll", e)),
            }
            fds.iter()
                .zip(tokens)
                .filter_map(|(fd, t)| fd.revents().filter(|r| !r.is_empty()).map(|r| (t, r)))
                .collect()
        };
        if self.reap_again {
            self.reap_again = false;
            self.reap();
        }
        for (token, revents) in ready {
            self.dispatch(token, revents);
        }
        Ok(())
    }

    fn poll_set<'a>(&'a self, tokens: &mut Vec<Token>, fds: &mut Vec<PollFd<'a>>) {
        let mut add = |t: Token, fd: std::os::fd::BorrowedFd<'a>, ev: PollFlags| {
            tokens.push(t);
            fds.push(PollFd::new(fd, ev));
        };
        add(Token::Signal, self.sigfd.as_fd(), PollFlags::POLLIN);
        add(Token::Listener, self.listener.as_fd(), PollFlags::POLLIN);
        for (target, p) in self.procs() {
            for (k, out) in p.out.iter().enumerate() {
                if let Some(f) = out {
                    add(
                        Token::Output(target.clone(), k),
                        f.as_fd(),
                        PollFlags::POLLIN,
                    );
                }
            }
            if let Some(f) = &p.stdin
                && !p.stdin_buf.is_empty()
            {
                add(Token::Stdin(target), f.as_fd(), PollFlags::POLLOUT);
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            if c.dead {
                continue;
            }
            let wants_input = self.conn_wants_input(c);
            if !wants_input && c.hup_deferred {
                continue;
            }
            let mut ev = PollFlags::empty();
            if wants_input {
                ev |= PollFlags::POLLIN;
            }
            if c.queued() > 0 {
                ev |= PollFlags::POLLOUT;
            }
            add(Token::Conn(i), c.stream.as_fd(), ev);
        }
    }

    /// Every process with its target, init first.
    fn procs(&self) -> impl Iterator<Item = (Target, &Proc)> {
        std::iter::once((Target::Init, &self.init)).chain(
            self.execs
                .iter()
                .map(|e| (Target::Exec(e.id.clone()), &e.proc)),
        )
    }

    fn proc_ref(&self, t: &Target) -> Option<&Proc> {
        match t {
            Target::Init => Some(&self.init),
            Target::Exec(id) => self.execs.iter().find(|e| &e.id == id).map(|e| &e.proc),
        }
    }

    fn proc_mut(&mut self, t: &Target) -> Option<&mut Proc> {
        match t {
            Target::Init => Some(&mut self.init),
            Target::Exec(id) => self
                .execs
                .iter_mut()
                .find(|e| &e.id == id)
                .map(|e| &mut e.proc),
        }
    }

    /// Whether a connection's input should be read now. Attached stdin waits while the
    /// process's stdin buffer is full (the client is slowed, never the container).
    fn conn_wants_input(&self, c: &Conn) -> bool {
        if c.read_closed {
            return false;
        }
        match &c.attach {
            None => c.pending.is_none(),
            Some(a) => match self.proc_ref(&a.target) {
                Some(p) if a.stdin && p.stdin.is_some() && !p.stdin_closing => p.stdin_room(),
                _ => true,
            },
        }
    }

    fn dispatch(&mut self, token: Token, revents: PollFlags) {
        match token {
            Token::Signal => self.on_signal(),
            Token::Listener => self.on_accept(),
            Token::Output(t, k) => self.on_output(&t, k),
            Token::Stdin(t) => {
                // Deferred hung-up clients come back into the poll set by themselves once
                // stdin has room again (see `poll_set`).
                if let Some(p) = self.proc_mut(&t) {
                    p.flush_stdin();
                }
            }
            Token::Conn(i) => self.on_conn(i, revents),
        }
    }

    fn on_signal(&mut self) {
        // Drain every queued siginfo (bounded); SIGCHLD is the only signal routed here.
        for _ in 0..64 {
            match self.sigfd.read_signal() {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
        self.reap();
    }

    /// Collects every exited child. Unknown ones (the runtime's helpers, orphans reparented to
    /// the subreaper) are only reaped.
    fn reap(&mut self) {
        for _ in 0..4096 {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.on_exit(pid.as_raw(), code, None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    let n = sig as i32;
                    self.on_exit(pid.as_raw(), 128 + n, Some(n));
                }
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return,
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(_) => return,
            }
        }
        self.reap_again = true;
    }

    fn on_exit(&mut self, pid: i32, exit_code: i32, signal: Option<i32>) {
        let is_init = self.init.pid == pid;
        let oom_killed = if is_init {
            self.oom.as_ref().and_then(OomWatch::oom_killed)
        } else {
            None
        };
        let info = ExitInfo {
            exit_code,
            signal,
            oom_killed,
            finished_at: timefmt::now_rfc3339_nanos(),
        };
        let proc = if is_init {
            Some(&mut self.init)
        } else {
            self.execs
                .iter_mut()
                .map(|e| &mut e.proc)
                .find(|p| p.pid == pid)
        };
        if let Some(p) = proc
            && p.reaped.is_none()
            && p.exit.is_none()
        {
            p.reaped = Some((info, Instant::now() + DRAIN_GRACE));
        }
    }

    fn on_accept(&mut self) {
        for _ in 0..16 {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(_) => return,
            };
            if self.conns.len() >= MAX_CONNS
                || !sock::peer_allowed(&stream)
                || stream.set_nonblocking(true).is_err()
            {
                continue;
            }
            self.conns.push(Conn::new(stream));
        }
    }

    fn on_output(&mut self, t: &Target, k: usize) {
        let mut buf = std::mem::take(&mut self.chunk);
        let Some(p) = self.proc_mut(t) else {
            self.chunk = buf;
            return;
        };
        let stream = p.stream_of(k);
        let result = p.read_output(k, &mut buf);
        if let ReadResult::Closed = result {
            p.out[k] = None;
        }
        match result {
            ReadResult::Data(n) => self.deliver(t, stream, &buf[..n]),
            ReadResult::Nothing => {}
            ReadResult::Closed => self.end_of_stream(t, stream),
        }
        self.chunk = buf;
    }

    /// Sends output to the log (the container's init only: exec output is not logged, as in
    /// Docker) and to every client attached to `t`.
    fn deliver(&mut self, t: &Target, stream: StdStream, data: &[u8]) {
        if *t == Target::Init
            && let Some(log) = &mut self.log
        {
            // A full disk must not stop the container: the entry is lost, output goes on.
            let _ = log.write(stream, data);
        }
        for c in &mut self.conns {
            if c.attach.as_ref().is_some_and(|a| a.target == *t) {
                c.send_output(stream, data);
            }
        }
    }

    fn end_of_stream(&mut self, t: &Target, stream: StdStream) {
        if *t == Target::Init
            && let Some(log) = &mut self.log
        {
            let _ = log.flush_partial(stream);
        }
    }

    /// Reports exits whose output has drained (or whose grace period ran out).
    fn finish_exits(&mut self) {
        let now = Instant::now();
        let due = |p: &Proc| {
            p.reaped
                .as_ref()
                .is_some_and(|(_, d)| p.outputs_closed() || now >= *d)
        };
        let mut targets = Vec::new();
        if due(&self.init) {
            targets.push(Target::Init);
        }
        for e in &self.execs {
            if due(&e.proc) {
                targets.push(Target::Exec(e.id.clone()));
            }
        }
        for t in targets {
            self.finish_exit(&t);
        }
    }

    fn finish_exit(&mut self, t: &Target) {
        let Some(p) = self.proc_mut(t) else { return };
        let Some((info, _)) = p.reaped.take() else {
            return;
        };
        let tty = p.tty;
        p.close_all();
        p.status = crate::protocol::Status::Stopped;
        p.exit = Some(info.clone());
        if *t == Target::Init
            && let Some(log) = &mut self.log
        {
            let _ = log.flush_partial(StdStream::Stdout);
            if !tty {
                let _ = log.flush_partial(StdStream::Stderr);
            }
        }
        let file = match t {
            Target::Init => EXIT_NAME.to_owned(),
            Target::Exec(id) => exec_exit_name(id),
        };
        // Nowhere to report a failed write; the exit is still answered from memory.
        let _ = persist::write_json_atomic(&self.state_path(&file), &info);
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            if c.pending.as_ref() == Some(&Pending::Wait(t.clone())) {
                c.pending = None;
                c.respond(&Response {
                    exit: Some(info.clone()),
                    ..Response::ok()
                });
                self.process_lines(i);
            } else if c.attach.as_ref().is_some_and(|a| a.target == *t) {
                c.close_after_flush = true;
                c.flush();
            }
        }
    }

    fn on_conn(&mut self, i: usize, revents: PollFlags) {
        if revents.contains(PollFlags::POLLOUT) {
            self.conns[i].flush();
        }
        let c = &self.conns[i];
        if c.dead {
            return;
        }
        let readable = revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP);
        if revents.contains(PollFlags::POLLERR) {
            self.conns[i].dead = true;
        } else if readable && c.attach.is_some() {
            self.on_attach_input(i, revents);
        } else if readable {
            self.on_control_input(i, revents);
        }
    }

    fn on_control_input(&mut self, i: usize, revents: PollFlags) {
        if !self.conn_wants_input(&self.conns[i]) {
            // Only a hang-up gets here: the peer is gone, nobody to answer.
            if revents.contains(PollFlags::POLLHUP) {
                self.conns[i].dead = true;
            }
            return;
        }
        let mut buf = std::mem::take(&mut self.chunk);
        let c = &mut self.conns[i];
        match c.read_some(&mut buf) {
            Some(0) => c.read_closed = true,
            Some(n) => c.inbuf.extend_from_slice(&buf[..n]),
            None => {}
        }
        self.chunk = buf;
        let c = &mut self.conns[i];
        if c.inbuf.len() > crate::protocol::MAX_REQUEST_LINE && !c.inbuf.contains(&b'\n') {
            c.inbuf = Vec::new();
            c.respond(&Response::error("bad request: request line too long"));
            c.close_after_flush = true;
            c.flush();
            return;
        }
        self.process_lines(i);
    }

    /// Handles queued request lines until one must wait, the connection turns into an attach
    /// stream, or the input runs out.
    fn process_lines(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            if c.dead || c.pending.is_some() || c.attach.is_some() {
                break;
            }
            let Some(line) = c.next_line() else { break };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.handle_line(i, &line);
        }
        let c = &mut self.conns[i];
        if c.attach.is_some() && !c.inbuf.is_empty() {
            // Bytes after the attach request are already stream data.
            let rest = std::mem::take(&mut c.inbuf);
            self.attach_input(i, &rest);
        } else if c.read_closed && c.pending.is_none() && c.attach.is_none() {
            c.close_after_flush = true;
            c.flush();
        }
    }

    fn on_attach_input(&mut self, i: usize, revents: PollFlags) {
        if !self.conn_wants_input(&self.conns[i]) {
            let c = &mut self.conns[i];
            if revents.contains(PollFlags::POLLHUP) {
                if c.read_closed {
                    // Fully gone after its stdin ended: nobody to send output to.
                    c.dead = true;
                } else {
                    // Its input must still reach the process; read it when stdin has room.
                    c.hup_deferred = true;
                }
            }
            return;
        }
        let mut buf = std::mem::take(&mut self.chunk);
        match self.conns[i].read_some(&mut buf) {
            Some(0) => self.attach_eof(i),
            Some(n) => self.attach_input(i, &buf[..n]),
            None => {}
        }
        self.chunk = buf;
    }

    /// Client bytes for the attached process's stdin (dropped when it has none).
    fn attach_input(&mut self, i: usize, data: &[u8]) {
        let Some(a) = self.conns[i].attach.clone() else {
            return;
        };
        if a.stdin
            && let Some(p) = self.proc_mut(&a.target)
        {
            p.push_stdin(data);
        }
    }

    fn attach_eof(&mut self, i: usize) {
        let c = &mut self.conns[i];
        c.read_closed = true;
        c.hup_deferred = false;
        let Some(a) = c.attach.clone() else { return };
        // As Docker: a client's EOF ends the process's stdin only without a terminal. With
        // one, the client leaving is a detach (ctrl-p ctrl-q): the shell must live on, and
        // its end of input is the ctrl-d byte written through the terminal.
        if a.stdin
            && let Some(p) = self.proc_mut(&a.target)
            && p.stdin_once
            && !p.tty
        {
            p.close_stdin();
        }
    }
}

/// The file an exec's exit is recorded in.
pub fn exec_exit_name(exec_id: &str) -> String {
    format!("exec-{exec_id}.exit.json")
}

/// The shim's ends of a process's pipes.
struct OurEnds {
    stdout: OwnedFd,
    stderr: OwnedFd,
    stdin: Option<OwnedFd>,
}

/// Pipes for a new process: its ends go to the runtime, ours are returned beside them.
fn pipes(stdin: bool) -> Result<(ProcessIo, OurEnds), ShimError> {
    let mk = || pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("pipe2", e));
    let (out_r, out_w) = mk()?;
    let (err_r, err_w) = mk()?;
    let (in_r, in_w) = if stdin {
        let (r, w) = mk()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    Ok((
        ProcessIo::Pipes {
            stdin: in_r,
            stdout: out_w,
            stderr: err_w,
        },
        OurEnds {
            stdout: out_r,
            stderr: err_r,
            stdin: in_w,
        },
    ))
}
