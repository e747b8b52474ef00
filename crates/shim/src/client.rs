//! A blocking client for the shim's control socket, for the daemon and for tests.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::error::ShimError;
use crate::protocol::{ExecState, ExitInfo, Request, Response, State, StdStream};

/// One connection to a shim. Requests are answered in order.
#[derive(Debug)]
pub struct ShimClient {
    reader: BufReader<UnixStream>,
}

/// Which streams an attach carries.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Send stdin.
    pub stdin: bool,
    /// Receive stdout.
    pub stdout: bool,
    /// Receive stderr.
    pub stderr: bool,
    /// An exec process instead of the container's init.
    pub exec_id: Option<String>,
}

impl ShimClient {
    /// Connects to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<ShimClient, ShimError> {
        let path = path.as_ref();
        let stream = crate::sock::connect(path).map_err(|e| ShimError::io("connect", path, e))?;
        Ok(ShimClient {
            reader: BufReader::new(stream),
        })
    }

    /// Connects to the shim serving `state_dir`.
    pub fn connect_state_dir(state_dir: impl AsRef<Path>) -> Result<ShimClient, ShimError> {
        ShimClient::connect(state_dir.as_ref().join(crate::server::SOCKET_NAME))
    }

    /// Bounds every read and write (`None`: wait forever, the default; `wait` needs that).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ShimError> {
        let s = self.reader.get_ref();
        s.set_read_timeout(timeout)
            .and_then(|()| s.set_write_timeout(timeout))
            .map_err(|e| ShimError::stream("set timeout", e))
    }

    /// Sends one raw line (a newline is appended) and reads the response. For tests of
    /// malformed input; use the typed methods otherwise.
    pub fn raw_request(&mut self, line: &[u8]) -> Result<Response, ShimError> {
        let mut buf = line.to_vec();
        buf.push(b'\n');
        self.reader
            .get_mut()
            .write_all(&buf)
            .map_err(|e| ShimError::stream("send request", e))?;
        self.read_response()
    }

    fn read_response(&mut self) -> Result<Response, ShimError> {
        let mut line = String::new();
        let n = (&mut self.reader)
            .take(crate::protocol::MAX_REQUEST_LINE as u64)
            .read_line(&mut line)
            .map_err(|e| ShimError::stream("read response", e))?;
        if n == 0 {
            return Err(ShimError::stream(
                "read response",
                std::io::Error::new(ErrorKind::UnexpectedEof, "the shim closed the connection"),
            ));
        }
        serde_json::from_str(&line).map_err(|e| ShimError::BadRequest(format!("response: {e}")))
    }

    /// Sends `req` and returns the response as is (also when `ok` is false).
    pub fn request(&mut self, req: &Request) -> Result<Response, ShimError> {
        let line = serde_json::to_vec(req).map_err(|e| ShimError::BadRequest(e.to_string()))?;
        self.raw_request(&line)
    }

    /// Sends `req`; a response with `ok: false` becomes [`ShimError::Remote`].
    pub fn call(&mut self, req: &Request) -> Result<Response, ShimError> {
        let resp = self.request(req)?;
        if resp.ok {
            Ok(resp)
        } else {
            Err(ShimError::Remote(
                resp.error.unwrap_or_else(|| "request failed".into()),
            ))
        }
    }

    /// The container's state.
    pub fn state(&mut self) -> Result<State, ShimError> {
        self.call(&Request::State)?
            .state
            .ok_or_else(|| missing("state"))
    }

    /// Starts the created container.
    pub fn start(&mut self) -> Result<(), ShimError> {
        self.call(&Request::Start).map(drop)
    }

    /// Signals the container's init (or all its processes).
    pub fn kill(&mut self, signal: i32, all: bool) -> Result<(), ShimError> {
        self.call(&Request::Kill { signal, all }).map(drop)
    }

    /// Freezes the container.
    pub fn pause(&mut self) -> Result<(), ShimError> {
        self.call(&Request::Pause).map(drop)
    }

    /// Thaws the container.
    pub fn resume(&mut self) -> Result<(), ShimError> {
        self.call(&Request::Resume).map(drop)
    }

    /// Blocks until the container has exited.
    pub fn wait(&mut self) -> Result<ExitInfo, ShimError> {
        self.call(&Request::Wait)?
            .exit
            .ok_or_else(|| missing("exit"))
    }

    /// Resizes the pty of the container (or of an exec).
    pub fn resize(
        &mut self,
        width: u16,
        height: u16,
        exec_id: Option<&str>,
    ) -> Result<(), ShimError> {
        self.call(&Request::Resize {
            width,
            height,
            exec_id: exec_id.map(str::to_owned),
        })
        .map(drop)
    }

    /// Registers an exec process.
    pub fn exec(
        &mut self,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        tty: bool,
        stdin: bool,
    ) -> Result<(), ShimError> {
        self.call(&Request::Exec {
            exec_id: exec_id.to_owned(),
            process: Box::new(process.clone()),
            tty,
            stdin,
        })
        .map(drop)
    }

    /// Starts a registered exec process; returns its pid.
    pub fn exec_start(&mut self, exec_id: &str) -> Result<i32, ShimError> {
        self.call(&Request::ExecStart {
            exec_id: exec_id.to_owned(),
        })?
        .pid
        .ok_or_else(|| missing("pid"))
    }

    /// Blocks until the exec process has exited.
    pub fn exec_wait(&mut self, exec_id: &str) -> Result<ExitInfo, ShimError> {
        self.call(&Request::ExecWait {
            exec_id: exec_id.to_owned(),
        })?
        .exit
        .ok_or_else(|| missing("exit"))
    }

    /// The exec process's state.
    pub fn exec_state(&mut self, exec_id: &str) -> Result<ExecState, ShimError> {
        self.call(&Request::ExecState {
            exec_id: exec_id.to_owned(),
        })?
        .exec
        .ok_or_else(|| missing("exec"))
    }

    /// Deletes the container from the runtime.
    pub fn delete(&mut self, force: bool) -> Result<(), ShimError> {
        self.call(&Request::Delete { force }).map(drop)
    }

    /// Ends the shim (after `delete`).
    pub fn shutdown(&mut self) -> Result<(), ShimError> {
        self.call(&Request::Shutdown).map(drop)
    }

    /// Turns this connection into an attach stream.
    pub fn attach(mut self, opts: &AttachOptions) -> Result<AttachStream, ShimError> {
        self.call(&Request::Attach {
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
            exec_id: opts.exec_id.clone(),
        })?;
        let writer = self
            .reader
            .get_ref()
            .try_clone()
            .map_err(|e| ShimError::stream("clone stream", e))?;
        Ok(AttachStream {
            reader: self.reader,
            writer,
        })
    }
}

fn missing(field: &str) -> ShimError {
    ShimError::BadRequest(format!("response lacks {field:?}"))
}

/// An attached connection: stdin goes out raw, output comes back in stdcopy frames (or raw
/// with a TTY).
#[derive(Debug)]
pub struct AttachStream {
    // Keeps bytes the shim sent right after the attach response.
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl AttachStream {
    /// Sends bytes to the process's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<(), ShimError> {
        self.writer
            .write_all(data)
            .map_err(|e| ShimError::stream("write stdin", e))
    }

    /// Half-closes: stdin EOF for the process (closes it when stdin-once applies).
    pub fn close_stdin(&mut self) -> Result<(), ShimError> {
        self.writer
            .shutdown(Shutdown::Write)
            .map_err(|e| ShimError::stream("shutdown", e))
    }

    /// Bounds reads (`None` waits forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), ShimError> {
        self.writer
            .set_read_timeout(timeout)
            .map_err(|e| ShimError::stream("set timeout", e))
    }

    /// Reads one stdcopy frame; `None` at the end of the stream.
    pub fn read_frame(&mut self) -> Result<Option<(StdStream, Vec<u8>)>, ShimError> {
        let mut header = [0u8; 8];
        match self.reader.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(ShimError::stream("read frame", e)),
        }
        let stream = match header[0] {
            0 => StdStream::Stdin,
            1 => StdStream::Stdout,
            2 => StdStream::Stderr,
            b => {
                return Err(ShimError::BadRequest(format!(
                    "bad stdcopy stream byte {b}"
                )));
            }
        };
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut data = vec![0u8; len];
        self.reader
            .read_exact(&mut data)
            .map_err(|e| ShimError::stream("read frame", e))?;
        Ok(Some((stream, data)))
    }

    /// Reads raw bytes (TTY attach); 0 at the end of the stream.
    pub fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize, ShimError> {
        self.reader
            .read(buf)
            .map_err(|e| ShimError::stream("read", e))
    }
}
