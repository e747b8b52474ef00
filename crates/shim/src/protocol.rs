//! The control protocol spoken on `<state-dir>/shim.sock` (mode 0600; peers must be root or the
//! shim's own uid, checked with `SO_PEERCRED`).
//!
//! One JSON request per line, one JSON response per line, answered in order per connection;
//! many connections at once. A request is an object whose `op` names the operation; unknown
//! fields are rejected. A response is `{"ok":true, …}` or `{"ok":false,"error":"one line"}`.
//!
//! | request | success response |
//! |---|---|
//! | `{"op":"state"}` | `{"ok":true,"state":{"id","pid","shim_pid","status","tty","deleted","exit"}}` |
//! | `{"op":"start"}` | `{"ok":true}` |
//! | `{"op":"kill","signal":15,"all":false}` (defaults shown) | `{"ok":true}` |
//! | `{"op":"pause"}` / `{"op":"resume"}` | `{"ok":true}` |
//! | `{"op":"wait"}` | once the container has exited: `{"ok":true,"exit":{…}}` |
//! | `{"op":"resize","width":W,"height":H,"exec_id":null}` | `{"ok":true}` |
//! | `{"op":"exec","exec_id":"e1","process":{OCI Process},"tty":false,"stdin":false}` | `{"ok":true}` |
//! | `{"op":"exec_start","exec_id":"e1"}` | `{"ok":true,"pid":N}` |
//! | `{"op":"exec_wait","exec_id":"e1"}` | once it has exited: `{"ok":true,"exit":{…}}` |
//! | `{"op":"exec_state","exec_id":"e1"}` | `{"ok":true,"exec":{"exec_id","pid","status","tty","exit"}}` |
//! | `{"op":"attach","stdin":b,"stdout":b,"stderr":b,"exec_id":null}` | `{"ok":true}`, then stream data |
//! | `{"op":"delete","force":false}` | `{"ok":true}` |
//! | `{"op":"shutdown"}` (only after `delete`) | `{"ok":true}`, then the shim exits |
//!
//! `status` is `created`, `running`, `paused` or `stopped`; `exit` is `null` or
//! `{"exit_code":N,"signal":null|N,"oom_killed":null|bool,"finished_at":"RFC 3339 ns UTC"}`
//! (`exit_code` is 128 + signal when a signal killed the process) — the same object as
//! `exit.json` and `exec-<id>.exit.json` in the state directory.
//!
//! While a `wait`/`exec_wait` is outstanding, later requests on that connection wait behind
//! it; use another connection for them. After a successful `attach` the connection stops
//! carrying JSON: shim → client, output in Docker's stdcopy framing (8-byte header: stream
//! byte 1 = stdout or 2 = stderr, three zero bytes, big-endian u32 length; then the payload),
//! or raw bytes when the process has a TTY; client → shim, raw stdin bytes. The client
//! half-closing its write side is stdin EOF, which closes the process's stdin when
//! `--stdin-once` is set (always for exec processes; with a TTY, a ^D is written instead).
//! The shim closes the stream once the process has exited and its output is drained, and
//! disconnects a client that falls [`MAX_CLIENT_BUFFER`]
//! bytes behind. Attach to an exec before `exec_start` to see all of its output: exec output
//! goes only to attached clients, not to the log (as in Docker).

use serde::{Deserialize, Serialize};

/// How far (bytes) an attached client may fall behind before the shim disconnects it.
pub const MAX_CLIENT_BUFFER: usize = 256 * 1024;

/// The largest request line the shim accepts. An exec's OCI `Process` is the only large field.
pub const MAX_REQUEST_LINE: usize = 1 << 20;

/// One request from a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The container's pid, status and exit.
    State,
    /// `runtime start`: run the user process of a created container.
    Start,
    /// Send `signal` to the container's init, or to all its processes when `all`.
    Kill {
        /// Signal number; 15 (SIGTERM) when omitted.
        #[serde(default = "default_signal")]
        signal: i32,
        /// Signal every process of the container (`runc kill --all`).
        #[serde(default)]
        all: bool,
    },
    /// Freeze the container.
    Pause,
    /// Thaw the container.
    Resume,
    /// Answer once the container has exited (at once when it already has).
    Wait,
    /// Set the terminal size of the container's (or an exec's) pty.
    Resize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
        /// The exec process to resize instead of the container's init.
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// Register an extra process to run in the container (started by `exec_start`).
    Exec {
        /// The caller's name for it: `[A-Za-z0-9_.-]`, 1–128 characters.
        exec_id: String,
        /// The OCI process to run (`args`, `env`, `cwd`, `user`, …).
        process: Box<oci_spec::runtime::Process>,
        /// Give it a pty.
        #[serde(default)]
        tty: bool,
        /// Give it a stdin that attached clients write to.
        #[serde(default)]
        stdin: bool,
    },
    /// Start a registered exec process; answers with its pid.
    ExecStart {
        /// Which exec.
        exec_id: String,
    },
    /// Answer once the exec process has exited.
    ExecWait {
        /// Which exec.
        exec_id: String,
    },
    /// The exec process's pid, status and exit.
    ExecState {
        /// Which exec.
        exec_id: String,
    },
    /// Turn this connection into a stream of the process's stdio.
    Attach {
        /// Forward what the client sends to the process's stdin.
        #[serde(default)]
        stdin: bool,
        /// Send the process's stdout.
        #[serde(default)]
        stdout: bool,
        /// Send the process's stderr.
        #[serde(default)]
        stderr: bool,
        /// Attach to this exec process instead of the container's init.
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// `runtime delete`: remove the container (`force` kills it first).
    Delete {
        /// Delete even when running.
        #[serde(default)]
        force: bool,
    },
    /// End the shim. Allowed once the container is deleted.
    Shutdown,
}

fn default_signal() -> i32 {
    15
}

/// One response; the fields besides `ok`/`error` appear only for the requests that have them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why it failed, on one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// For `wait` and `exec_wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
    /// For `exec_start`: the exec process's pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// For `exec_state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecState>,
}

impl Response {
    /// `{"ok":true}`.
    pub fn ok() -> Response {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    /// `{"ok":false,"error":msg}`.
    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Response::default()
        }
    }
}

/// The lifecycle of the container (and of exec processes, which skip `paused`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created by the runtime, user process not started yet.
    Created,
    /// Running.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// Exited; `exit` says how.
    Stopped,
}

/// How a process ended; also the content of `exit.json` in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit status, or 128 + signal when a signal killed it (as Docker reports).
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer struck in the container's memory cgroup; `null` when
    /// the shim could not tell.
    pub oom_killed: Option<bool>,
    /// When the shim reaped it, RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
}

/// The answer to `state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// The container id.
    pub id: String,
    /// The container init's pid (in the shim's pid namespace).
    pub pid: i32,
    /// The shim's own pid.
    pub shim_pid: i32,
    /// Where the container is in its lifecycle.
    pub status: Status,
    /// Whether the container has a pty.
    pub tty: bool,
    /// Whether `delete` succeeded.
    pub deleted: bool,
    /// How it exited, once it has.
    pub exit: Option<ExitInfo>,
}

/// The answer to `exec_state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecState {
    /// The exec's name.
    pub exec_id: String,
    /// Its pid once started.
    pub pid: Option<i32>,
    /// `created`, `running` or `stopped`.
    pub status: Status,
    /// Whether it has a pty.
    pub tty: bool,
    /// How it exited, once it has.
    pub exit: Option<ExitInfo>,
}

/// The stream byte of a stdcopy frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StdStream {
    /// stdin (never sent by the shim, kept for the format's completeness).
    Stdin = 0,
    /// stdout.
    Stdout = 1,
    /// stderr.
    Stderr = 2,
}

/// The 8-byte header of a Docker stdcopy frame: stream byte, three zero bytes, big-endian length.
pub fn stdcopy_header(stream: StdStream, len: u32) -> [u8; 8] {
    let l = len.to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Whether `id` is acceptable as an exec id (it names files in the state directory).
pub fn valid_exec_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_wire_forms() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9,"all":true}"#).unwrap();
        assert!(matches!(
            r,
            Request::Kill {
                signal: 9,
                all: true
            }
        ));
        let r: Request = serde_json::from_str(r#"{"op":"kill"}"#).unwrap();
        assert!(matches!(
            r,
            Request::Kill {
                signal: 15,
                all: false
            }
        ));
        let r: Request = serde_json::from_str(r#"{"op":"exec_start","exec_id":"e1"}"#).unwrap();
        assert!(matches!(r, Request::ExecStart { .. }));
        assert!(serde_json::from_str::<Request>(r#"{"op":"frobnicate"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Response::ok()).unwrap(),
            r#"{"ok":true}"#
        );
    }

    #[test]
    fn header_and_ids() {
        assert_eq!(
            stdcopy_header(StdStream::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
        assert!(valid_exec_id("exec-1.a_b"));
        assert!(!valid_exec_id("../x"));
        assert!(!valid_exec_id(".hidden"));
        assert!(!valid_exec_id(""));
    }
}
