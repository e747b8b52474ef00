//! The messages the runtime's processes exchange over a socketpair while a container comes up:
//! the parent (the `create` caller), the bootstrap child that enters namespaces, and the
//! container's init. One JSON object per line; an error travels the same way, so a failure inside
//! the container reaches the caller as a message instead of a log line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result, RuntimeError};

/// One step of the bring-up conversation.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// bootstrap → parent: I have unshared the user namespace; write my id maps.
    MapIds,
    /// parent → bootstrap: the maps are written.
    IdsMapped,
    /// bootstrap → parent: the init's pid, in the parent's pid namespace.
    InitPid { pid: i32 },
    /// parent → init: the pid is recorded; start building the container.
    Proceed,
    /// init → parent: namespaces and mounts are ready; run the prestart/createRuntime hooks.
    RunHooks,
    /// parent → init: hooks are done, go on; `state` is what in-container hooks get on stdin.
    HooksDone { state: String },
    /// init (or exec'd process) → parent: everything is set up; waiting for `start`.
    Ready,
    /// any → parent: bring-up failed.
    Error { message: String, exit_code: i32 },
}

/// A line-oriented channel over one end of a socketpair.
pub struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Channel {
    pub fn new(stream: UnixStream) -> Result<Channel> {
        let writer = stream.try_clone().context(|| "clone sync socket".into())?;
        Ok(Channel {
            reader: BufReader::new(stream),
            writer,
        })
    }

    pub fn send(&mut self, message: &Message) -> Result<()> {
        let mut line = serde_json::to_vec(message)
            .map_err(|e| RuntimeError::InvalidSpec(format!("encode sync message: {e}")))?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .context(|| "write to sync socket".into())
    }

    /// The next message, or `None` when the other side closed without saying more.
    pub fn recv(&mut self) -> Result<Option<Message>> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .context(|| "read from sync socket".into())?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| RuntimeError::InvalidSpec(format!("bad sync message {line:?}: {e}")))
    }

    /// Waits for `expected`; an `Error` message or an early close becomes an error.
    pub fn expect(&mut self, expected: Message, peer: &str) -> Result<()> {
        match self.recv()? {
            Some(m) if m == expected => Ok(()),
            Some(Message::Error { message, exit_code }) => {
                Err(RuntimeError::Init { message, exit_code })
            }
            Some(other) => Err(unexpected(peer, &other)),
            None => Err(closed(peer)),
        }
    }

    /// The fds this channel holds, so a forked child can keep them while closing the rest.
    pub fn raw_fds(&self) -> [std::os::fd::RawFd; 2] {
        use std::os::fd::AsRawFd;
        [self.reader.get_ref().as_raw_fd(), self.writer.as_raw_fd()]
    }

    /// A second channel on the same socket, for a forked child (the buffer starts empty).
    pub fn try_clone(&self) -> Result<Channel> {
        let stream = self
            .writer
            .try_clone()
            .context(|| "clone sync socket".into())?;
        Channel::new(stream)
    }
}

pub fn unexpected(peer: &str, message: &Message) -> RuntimeError {
    RuntimeError::Init {
        message: format!("{peer} sent an unexpected message: {message:?}"),
        exit_code: 1,
    }
}

pub fn closed(peer: &str) -> RuntimeError {
    RuntimeError::Init {
        message: format!("{peer} exited before the container was ready"),
        exit_code: 1,
    }
}
