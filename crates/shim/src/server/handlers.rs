//! One handler per control request.

use crate::error::ShimError;
use crate::protocol::{ExecState, Request, Response, State, Status, valid_exec_id};
use crate::runtime::ProcessIo;
use crate::sock::{self, ConsoleSocket};

use super::conn::{Attach, Pending, Target};
use super::proc::Proc;
use super::{CONSOLE_TIMEOUT, Exec, MAX_EXECS, Shim, pipes};

/// What a handler produced: an answer now, or one later (`wait`).
// Lives for one call on the stack; boxing the common case would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Now(Response),
    Later(Pending),
}

impl Shim {
    /// Parses and handles one request line from connection `i`, queueing the answer.
    pub(super) fn handle_line(&mut self, i: usize, line: &[u8]) {
        let outcome = match serde_json::from_slice::<Request>(line) {
            Ok(req) => self.handle(i, req),
            Err(e) => Err(ShimError::BadRequest(e.to_string())),
        };
        let c = &mut self.conns[i];
        match outcome {
            Ok(Outcome::Now(resp)) => c.respond(&resp),
            Ok(Outcome::Later(p)) => c.pending = Some(p),
            Err(e) => c.respond(&Response::error(one_line(&e.to_string()))),
        }
    }

    fn handle(&mut self, i: usize, req: Request) -> Result<Outcome, ShimError> {
        let ok = || Ok(Outcome::Now(Response::ok()));
        match req {
            Request::State => Ok(Outcome::Now(Response {
                state: Some(self.state()),
                ..Response::ok()
            })),
            Request::Start => self.start().and_then(|()| ok()),
            Request::Kill { signal, all } => self.kill(signal, all).and_then(|()| ok()),
            Request::Pause => self.pause(true).and_then(|()| ok()),
            Request::Resume => self.pause(false).and_then(|()| ok()),
            Request::Wait => self.wait(Target::Init),
            Request::Resize {
                width,
                height,
                exec_id,
            } => self.resize(exec_id, width, height).and_then(|()| ok()),
            Request::Exec {
                exec_id,
                process,
                tty,
                stdin,
            } => self
                .exec_add(exec_id, process, tty, stdin)
                .and_then(|()| ok()),
            Request::ExecStart { exec_id } => {
                let pid = self.exec_start(&exec_id)?;
                Ok(Outcome::Now(Response {
                    pid: Some(pid),
                    ..Response::ok()
                }))
            }
            Request::ExecWait { exec_id } => {
                self.exec_index(&exec_id)?;
                self.wait(Target::Exec(exec_id))
            }
            Request::ExecState { exec_id } => {
                let e = &self.execs[self.exec_index(&exec_id)?];
                Ok(Outcome::Now(Response {
                    exec: Some(ExecState {
                        exec_id,
                        pid: (e.proc.pid > 0).then_some(e.proc.pid),
                        status: e.proc.status,
                        tty: e.proc.tty,
                        exit: e.proc.exit.clone(),
                    }),
                    ..Response::ok()
                }))
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
                exec_id,
            } => {
                self.attach(i, exec_id, stdin, stdout, stderr)?;
                ok()
            }
            Request::Delete { force } => self.delete(force).and_then(|()| ok()),
            Request::Shutdown => {
                if !self.deleted {
                    return Err(ShimError::Conflict(
                        "the container is not deleted; delete it before shutdown".into(),
                    ));
                }
                self.done = true;
                ok()
            }
        }
    }

    fn state(&self) -> State {
        State {
            id: self.cfg.id.clone(),
            pid: self.init.pid,
            shim_pid: std::process::id() as i32,
            status: self.init.status,
            tty: self.init.tty,
            deleted: self.deleted,
            exit: self.init.exit.clone(),
        }
    }

    /// Whether the init is alive as far as the shim knows (not reaped).
    fn init_alive(&self) -> bool {
        self.init.reaped.is_none() && self.init.exit.is_none()
    }

    fn require_alive(&self, what: &str) -> Result<(), ShimError> {
        if self.deleted {
            return Err(ShimError::Conflict(format!(
                "cannot {what}: container is deleted"
            )));
        }
        if !self.init_alive() {
            return Err(ShimError::Conflict(format!(
                "cannot {what}: container is not running"
            )));
        }
        Ok(())
    }

    fn start(&mut self) -> Result<(), ShimError> {
        self.require_alive("start")?;
        if self.init.status != Status::Created {
            return Err(ShimError::Conflict(format!(
                "cannot start: container is {}",
                status_name(self.init.status)
            )));
        }
        self.runtime.start(&self.cfg.id)?;
        self.init.status = Status::Running;
        Ok(())
    }

    fn kill(&mut self, signal: i32, all: bool) -> Result<(), ShimError> {
        if !(1..=64).contains(&signal) {
            return Err(ShimError::BadRequest(format!("invalid signal {signal}")));
        }
        self.require_alive("kill")?;
        self.runtime.kill(&self.cfg.id, signal, all)
    }

    fn pause(&mut self, pause: bool) -> Result<(), ShimError> {
        let (what, from, to) = if pause {
            ("pause", Status::Running, Status::Paused)
        } else {
            ("resume", Status::Paused, Status::Running)
        };
        self.require_alive(what)?;
        if self.init.status != from {
            return Err(ShimError::Conflict(format!(
                "cannot {what}: container is {}",
                status_name(self.init.status)
            )));
        }
        if pause {
            self.runtime.pause(&self.cfg.id)?;
        } else {
            self.runtime.resume(&self.cfg.id)?;
        }
        self.init.status = to;
        Ok(())
    }

    fn wait(&self, t: Target) -> Result<Outcome, ShimError> {
        let exit = self.proc_ref(&t).and_then(|p| p.exit.clone());
        Ok(match exit {
            Some(exit) => Outcome::Now(Response {
                exit: Some(exit),
                ..Response::ok()
            }),
            None => Outcome::Later(Pending::Wait(t)),
        })
    }

    fn target(&self, exec_id: Option<String>) -> Result<Target, ShimError> {
        match exec_id {
            None => Ok(Target::Init),
            Some(id) => {
                self.exec_index(&id)?;
                Ok(Target::Exec(id))
            }
        }
    }

    fn resize(
        &mut self,
        exec_id: Option<String>,
        width: u16,
        height: u16,
    ) -> Result<(), ShimError> {
        let t = self.target(exec_id)?;
        let p = self
            .proc_ref(&t)
            .ok_or_else(|| ShimError::Conflict("no such process".into()))?;
        let master = p.master().ok_or_else(|| {
            ShimError::Conflict("cannot resize: the process has no terminal (or has exited)".into())
        })?;
        sock::set_winsize(master, width, height)
    }

    pub(super) fn exec_index(&self, id: &str) -> Result<usize, ShimError> {
        self.execs
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| ShimError::NoSuchExec(id.to_owned()))
    }

    fn exec_add(
        &mut self,
        id: String,
        process: Box<oci_spec::runtime::Process>,
        tty: bool,
        stdin: bool,
    ) -> Result<(), ShimError> {
        if !valid_exec_id(&id) {
            return Err(ShimError::BadRequest(format!(
                "invalid exec_id {id:?}: use 1-128 of [A-Za-z0-9_.-], not starting with '.'"
            )));
        }
        if self.execs.iter().any(|e| e.id == id) {
            return Err(ShimError::Conflict(format!("exec {id} already exists")));
        }
        self.require_alive("exec")?;
        if self.execs.len() >= MAX_EXECS {
            // Forget the oldest finished exec; its exit file stays in the state directory.
            let old = self
                .execs
                .iter()
                .position(|e| e.proc.exit.is_some())
                .ok_or_else(|| ShimError::Conflict("too many exec processes".into()))?;
            self.execs.remove(old);
        }
        self.execs.push(Exec {
            id,
            process,
            want_stdin: stdin,
            // Docker closes an exec's stdin when the attached client's input ends.
            proc: Proc::new(tty, true),
        });
        Ok(())
    }

    fn exec_start(&mut self, id: &str) -> Result<i32, ShimError> {
        let idx = self.exec_index(id)?;
        self.require_alive("exec")?;
        if self.init.status != Status::Running {
            return Err(ShimError::Conflict(format!(
                "cannot exec: container is {}",
                status_name(self.init.status)
            )));
        }
        if self.execs[idx].proc.pid != 0 || self.execs[idx].proc.exit.is_some() {
            return Err(ShimError::Conflict(format!(
                "exec {id} was already started"
            )));
        }
        self.exec_seq += 1;
        let pid_file = self.state_path(&format!("exec-{id}.pid"));
        let mut process = (*self.execs[idx].process).clone();
        let tty = self.execs[idx].proc.tty;
        let want_stdin = self.execs[idx].want_stdin;
        process.set_terminal(Some(tty));
        let result = if tty {
            // A short name: socket paths are limited to 107 bytes.
            let console =
                ConsoleSocket::bind(self.state_path(&format!("e{}.sock", self.exec_seq)))?;
            let io = ProcessIo::Console {
                socket: console.path().to_owned(),
            };
            self.runtime
                .exec(&self.cfg.id, &process, &io, &pid_file)
                .and_then(|pid| {
                    let master = console.receive(CONSOLE_TIMEOUT)?;
                    self.execs[idx].proc.set_master(master, want_stdin)?;
                    Ok(pid)
                })
        } else {
            let (io, ours) = pipes(want_stdin)?;
            let r = self.runtime.exec(&self.cfg.id, &process, &io, &pid_file);
            drop(io);
            r.and_then(|pid| {
                self.execs[idx]
                    .proc
                    .set_pipes(ours.stdout, ours.stderr, ours.stdin)?;
                Ok(pid)
            })
        };
        // The pid is kept in memory and in exec_state; the file was only for the runtime.
        let _ = std::fs::remove_file(&pid_file);
        let pid = result?;
        let p = &mut self.execs[idx].proc;
        p.pid = pid;
        p.status = Status::Running;
        Ok(pid)
    }

    fn attach(
        &mut self,
        i: usize,
        exec_id: Option<String>,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<(), ShimError> {
        let target = self.target(exec_id)?;
        let p = self
            .proc_ref(&target)
            .ok_or_else(|| ShimError::Conflict("no such process".into()))?;
        if p.exit.is_some() || p.reaped.is_some() {
            return Err(ShimError::Conflict(
                "cannot attach: the process has exited".into(),
            ));
        }
        let raw = p.tty;
        self.conns[i].attach = Some(Attach {
            target,
            stdin,
            stdout,
            stderr,
            raw,
        });
        Ok(())
    }

    fn delete(&mut self, force: bool) -> Result<(), ShimError> {
        if self.deleted {
            return Ok(());
        }
        self.runtime.delete(&self.cfg.id, force)?;
        self.deleted = true;
        Ok(())
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Created => "created",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Stopped => "stopped",
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}
