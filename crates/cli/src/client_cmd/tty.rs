//! The local side of an attached stream: raw mode on the terminal, size and SIGWINCH, the
//! ctrl-p ctrl-q detach keys, and the pumps between stdio and a hijacked connection.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use berth_client::Hijacked;
use berth_client::stream::{Demuxer, StdStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::CliError;

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Docker's `--detach-keys` syntax: comma-separated `ctrl-<x>` or single characters.
pub fn parse_detach_keys(spec: Option<&str>) -> Result<Vec<u8>, CliError> {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return Ok(DETACH_KEYS.to_vec());
    };
    let invalid = || CliError::Message(format!("Invalid detach keys ({spec}) provided"));
    let mut keys = Vec::new();
    for part in spec.split(',') {
        if let Some(c) = part.strip_prefix("ctrl-") {
            let &[b] = c.as_bytes() else {
                return Err(invalid());
            };
            let code = match b {
                b'a'..=b'z' => b - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(invalid()),
            };
            keys.push(code);
        } else if let &[b] = part.as_bytes() {
            keys.push(b);
        } else {
            return Err(invalid());
        }
    }
    Ok(keys)
}

/// Puts the terminal on stdin in raw mode until dropped.
pub struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    /// Raw mode if stdin is a terminal; a no-op guard otherwise.
    pub fn enable() -> RawMode {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        // Keep output post-processing so our own messages stay readable; the remote pty
        // does its own.
        raw.output_flags |= nix::sys::termios::OutputFlags::OPOST;
        if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let stdin = std::io::stdin();
            let _ = nix::sys::termios::tcsetattr(
                stdin.as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// The size of the terminal on stdout (or stdin) as (rows, columns).
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to struct, which lives
        // for the whole call.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The daemon closed the stream (the process ended).
    Closed,
    /// The user typed the detach keys.
    Detached,
}

/// Copies stdin to the connection (if `stdin`) and the connection to stdout/stderr (raw with
/// a TTY, demultiplexed without) until the daemon closes it or the user detaches.
pub async fn pump(io: Hijacked, stdin: bool, tty: bool, keys: Vec<u8>) -> Result<End, CliError> {
    let (mut reader, mut writer) = tokio::io::split(io);
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let input = stdin.then(|| {
        tokio::spawn(async move {
            let mut local = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            let mut matched = 0usize;
            loop {
                let n = match local.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (chunk, detach) = if tty {
                    scan_detach(&buf[..n], &keys, &mut matched)
                } else {
                    (buf[..n].to_vec(), false)
                };
                if writer.write_all(&chunk).await.is_err() {
                    return;
                }
                if detach {
                    let _ = detach_tx.send(());
                    return;
                }
            }
            // Stdin's end: half-close, so the container sees EOF and output keeps flowing.
            let _ = writer.shutdown().await;
        })
    });
    let mut demux = Demuxer::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut detach_closed = false;
    let end = loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    break End::Closed;
                }
                write_out(&buf[..n], tty, &mut demux)?;
            }
            signal = &mut detach_rx, if !detach_closed => {
                if signal.is_ok() {
                    break End::Detached;
                }
                // The stdin side ended without detaching: keep reading output.
                detach_closed = true;
            }
        }
    };
    if let Some(task) = input {
        task.abort();
    }
    Ok(end)
}

fn write_out(data: &[u8], tty: bool, demux: &mut Demuxer) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    if tty {
        stdout.write_all(data)?;
        stdout.flush()?;
        return Ok(());
    }
    let mut stderr = std::io::stderr().lock();
    let mut failed = None;
    demux
        .feed(data, &mut |stream, payload| {
            let result = match stream {
                StdStream::Stderr => stderr.write_all(payload),
                _ => stdout.write_all(payload).and_then(|()| stdout.flush()),
            };
            if let Err(e) = result {
                failed = Some(e);
            }
        })
        .map_err(|e| CliError::Message(e.to_string()))?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Looks for ctrl-p ctrl-q across reads (`matched` carries a partial match over): the bytes
/// to forward, and whether the sequence completed. A partial match is held back and
/// forwarded when the next byte does not continue it.
fn scan_detach(chunk: &[u8], keys: &[u8], matched: &mut usize) -> (Vec<u8>, bool) {
    if keys.is_empty() {
        return (chunk.to_vec(), false);
    }
    let mut out = Vec::with_capacity(chunk.len());
    for &b in chunk {
        if b == keys[*matched] {
            *matched += 1;
            if *matched == keys.len() {
                *matched = 0;
                return (out, true);
            }
            continue;
        }
        out.extend_from_slice(&keys[..*matched]);
        *matched = 0;
        if b == keys[0] {
            *matched = 1;
        } else {
            out.push(b);
        }
    }
    (out, false)
}

/// Keeps the remote terminal's size in step with ours: once now, then on every SIGWINCH.
pub fn follow_size<F, Fut>(resize: F)
where
    F: Fn(u16, u16) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        if let Some((h, w)) = terminal_size() {
            resize(h, w).await;
        }
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Some((h, w)) = terminal_size() {
                resize(h, w).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_specs() {
        assert_eq!(
            parse_detach_keys(None).expect("default"),
            DETACH_KEYS.to_vec()
        );
        assert_eq!(
            parse_detach_keys(Some("ctrl-a,x")).expect("spec"),
            vec![1, b'x']
        );
        assert_eq!(parse_detach_keys(Some("ctrl-[")).expect("esc"), vec![27]);
        for bad in ["ctrl-", "ctrl-ab", "xy", "ctrl-1"] {
            assert!(parse_detach_keys(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn detach_keys_in_one_read() {
        let mut m = 0;
        assert_eq!(
            scan_detach(b"ab\x10\x11cd", &DETACH_KEYS, &mut m),
            (b"ab".to_vec(), true)
        );
    }

    #[test]
    fn detach_keys_split_across_reads() {
        let mut m = 0;
        assert_eq!(
            scan_detach(b"ab\x10", &DETACH_KEYS, &mut m),
            (b"ab".to_vec(), false)
        );
        assert_eq!(
            scan_detach(b"\x11", &DETACH_KEYS, &mut m),
            (Vec::new(), true)
        );
    }

    #[test]
    fn a_lone_ctrl_p_is_passed_on_later() {
        let mut m = 0;
        assert_eq!(
            scan_detach(b"x\x10", &DETACH_KEYS, &mut m),
            (b"x".to_vec(), false)
        );
        assert_eq!(
            scan_detach(b"y", &DETACH_KEYS, &mut m),
            (b"\x10y".to_vec(), false)
        );
        assert_eq!(
            scan_detach(b"\x10\x10\x11", &DETACH_KEYS, &mut m),
            (b"\x10".to_vec(), true)
        );
    }
}
