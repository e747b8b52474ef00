//! Reading a container's json-file log for `docker logs`: tail, since/until, timestamps,
//! and follow (tailing the file until the container has exited and the file is drained).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;

use super::Life;

/// What `docker logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Keep the stream open for new output until the container exits.
    pub follow: bool,
    /// Only the last N lines (`None`: all).
    pub tail: Option<usize>,
    /// Only entries at or after this time (ns since the epoch).
    pub since: Option<i64>,
    /// Only entries before this time (ns since the epoch).
    pub until: Option<i64>,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// The bytes (with the timestamp prefix when asked).
    pub data: Vec<u8>,
}

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// A stream of log lines.
#[derive(Debug)]
pub struct LogStream {
    path: PathBuf,
    opts: LogOptions,
    life: watch::Receiver<Life>,
    /// Whether the container has a TTY (the API layer frames without it).
    pub tty: bool,
    offset: u64,
    queue: VecDeque<LogLine>,
    started: bool,
}

/// `2026-…T…[.frac]Z` → ns since the epoch.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let secs = berth_image::parse_rfc3339(s)?;
    let nanos = s
        .get(19..)
        .and_then(|r| r.strip_prefix('.'))
        .map(|f| {
            let digits: String = f.chars().take_while(char::is_ascii_digit).take(9).collect();
            format!("{digits:0<9}").parse::<i64>().unwrap_or(0)
        })
        .unwrap_or(0);
    Some(secs * 1_000_000_000 + nanos)
}

impl LogStream {
    pub(crate) fn new(
        path: PathBuf,
        opts: LogOptions,
        life: watch::Receiver<Life>,
        tty: bool,
    ) -> LogStream {
        LogStream {
            path,
            opts,
            life,
            tty,
            offset: 0,
            queue: VecDeque::new(),
            started: false,
        }
    }

    fn convert(&self, line: &str) -> Option<LogLine> {
        let e: Entry = serde_json::from_str(line).ok()?;
        let stream = match e.stream.as_str() {
            "stdout" if self.opts.stdout => 1,
            "stderr" if self.opts.stderr => 2,
            _ => return None,
        };
        let t = parse_time(&e.time);
        if let (Some(since), Some(t)) = (self.opts.since, t)
            && t < since
        {
            return None;
        }
        if let (Some(until), Some(t)) = (self.opts.until, t)
            && t >= until
        {
            return None;
        }
        let mut data = Vec::new();
        if self.opts.timestamps {
            data.extend_from_slice(e.time.as_bytes());
            data.push(b' ');
        }
        data.extend_from_slice(e.log.as_bytes());
        Some(LogLine { stream, data })
    }

    /// Reads complete lines added since the last read (blocking file I/O, small).
    fn read_new(&mut self) -> Vec<LogLine> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Rotated or truncated: start over.
            self.offset = 0;
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut reader = BufReader::new(f);
        let mut out = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) if line.ends_with('\n') => {
                    self.offset += n as u64;
                    if let Some(l) = self.convert(line.trim_end()) {
                        out.push(l);
                    }
                }
                Ok(_) => break, // a partial line: read it when complete
            }
        }
        out
    }

    /// The next line; `None` at the end (at once without follow; when the container has
    /// exited and the file is drained with it).
    pub async fn next(&mut self) -> Option<LogLine> {
        if !self.started {
            self.started = true;
            let mut lines = self.read_new();
            if let Some(n) = self.opts.tail {
                let skip = lines.len().saturating_sub(n);
                lines.drain(..skip);
            }
            self.queue.extend(lines);
        }
        loop {
            if let Some(l) = self.queue.pop_front() {
                return Some(l);
            }
            if !self.opts.follow {
                return None;
            }
            if let Some(until) = self.opts.until
                && berth_image::parse_rfc3339(&berth_image::now_rfc3339())
                    .is_some_and(|s| s * 1_000_000_000 >= until)
            {
                return None;
            }
            let exited = {
                let l = self.life.borrow();
                !l.running || l.removed
            };
            let lines = self.read_new();
            if lines.is_empty() {
                if exited {
                    return None;
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), self.life.changed()).await;
            }
            self.queue.extend(lines);
        }
    }
}
