//! The container log in Docker's `json-file` format, with Docker's rotation.
//!
//! Each line of output becomes one JSON object on one line:
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-25T09:30:01.123456789Z"}`. A line longer
//! than [`MAX_ENTRY`] is cut into entries of that size without the newline, as Docker does
//! (a "partial" message). Rotation: when the next entry would take the file past `max_size`,
//! `L.(n-1)` → `L.n`, …, `L` → `L.1`, and a new `L` starts; with `max_files` 1 the file is
//! truncated instead.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::ShimError;
use crate::protocol::StdStream;
use crate::timefmt;

/// The longest `log` value of one entry (Docker's copier buffer size).
pub const MAX_ENTRY: usize = 16 * 1024;

/// Where the log goes and how it rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The current log file `L`.
    pub path: PathBuf,
    /// Rotate before the file would exceed this many bytes; `None` never rotates.
    pub max_size: Option<u64>,
    /// How many files to keep, counting `L` itself (at least 1).
    pub max_files: u32,
}

/// A json-file log writer.
#[derive(Debug)]
pub struct JsonFileLog {
    cfg: LogConfig,
    file: File,
    size: u64,
    /// Output of each stream (stdout, stderr) since its last newline.
    pending: [Vec<u8>; 2],
    /// Reused buffer for one encoded entry.
    scratch: Vec<u8>,
}

impl JsonFileLog {
    /// Opens (appends to) the log file, creating it with mode 0640.
    pub fn open(cfg: LogConfig) -> Result<JsonFileLog, ShimError> {
        let file = open_log(&cfg.path)?;
        let size = file
            .metadata()
            .map_err(|e| ShimError::io("stat", &cfg.path, e))?
            .len();
        Ok(JsonFileLog {
            cfg,
            file,
            size,
            pending: [Vec::new(), Vec::new()],
            scratch: Vec::new(),
        })
    }

    /// Logs a chunk of a stream's output, emitting an entry per complete line (and per
    /// [`MAX_ENTRY`] bytes of an unfinished one). Keeps the rest for the next chunk.
    pub fn write(&mut self, stream: StdStream, mut data: &[u8]) -> Result<(), ShimError> {
        let idx = stream_index(stream);
        let mut result = Ok(());
        while !data.is_empty() {
            let mut pend = std::mem::take(&mut self.pending[idx]);
            let room = MAX_ENTRY - pend.len();
            let window = &data[..data.len().min(room)];
            let cut = match window.iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => window.len(),
            };
            let complete = window[..cut].last() == Some(&b'\n');
            let full = pend.len() + cut == MAX_ENTRY;
            if complete || full {
                let r = if pend.is_empty() {
                    self.emit(stream, &data[..cut])
                } else {
                    pend.extend_from_slice(&data[..cut]);
                    let r = self.emit(stream, &pend);
                    pend.clear();
                    r
                };
                // Keep going after a failed write: later entries may fit again (disk freed).
                if result.is_ok() {
                    result = r;
                }
            } else {
                pend.extend_from_slice(&data[..cut]);
            }
            self.pending[idx] = pend;
            data = &data[cut..];
        }
        result
    }

    /// Emits what is left of an unfinished line of `stream` (at EOF).
    pub fn flush_partial(&mut self, stream: StdStream) -> Result<(), ShimError> {
        let idx = stream_index(stream);
        let pend = std::mem::take(&mut self.pending[idx]);
        if pend.is_empty() {
            return Ok(());
        }
        self.emit(stream, &pend)
    }

    fn emit(&mut self, stream: StdStream, text: &[u8]) -> Result<(), ShimError> {
        let mut line = std::mem::take(&mut self.scratch);
        line.clear();
        encode_entry(&mut line, stream, text);
        let r = self.append(&line);
        self.scratch = line;
        r
    }

    fn append(&mut self, line: &[u8]) -> Result<(), ShimError> {
        if let Some(max) = self.cfg.max_size
            && self.size > 0
            && self.size + line.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file
            .write_all(line)
            .map_err(|e| ShimError::io("write", &self.cfg.path, e))?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), ShimError> {
        let path = &self.cfg.path;
        if self.cfg.max_files <= 1 {
            self.file
                .set_len(0)
                .map_err(|e| ShimError::io("truncate", path, e))?;
            self.size = 0;
            return Ok(());
        }
        for i in (1..self.cfg.max_files - 1).rev() {
            let from = numbered(path, i);
            if from.exists() {
                std::fs::rename(&from, numbered(path, i + 1))
                    .map_err(|e| ShimError::io("rotate", &from, e))?;
            }
        }
        std::fs::rename(path, numbered(path, 1)).map_err(|e| ShimError::io("rotate", path, e))?;
        self.file = open_log(path)?;
        self.size = 0;
        Ok(())
    }
}

fn stream_index(stream: StdStream) -> usize {
    match stream {
        StdStream::Stderr => 1,
        _ => 0,
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_log(path: &Path) -> Result<File, ShimError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| ShimError::io("open log", path, e))
}

/// Appends one json-file entry (with its newline) to `out`. Invalid UTF-8 becomes U+FFFD,
/// as in Docker.
pub fn encode_entry(out: &mut Vec<u8>, stream: StdStream, text: &[u8]) {
    out.extend_from_slice(b"{\"log\":");
    let s = String::from_utf8_lossy(text);
    // Serializing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*s);
    out.extend_from_slice(match stream {
        StdStream::Stderr => b",\"stream\":\"stderr\",\"time\":\"",
        _ => b",\"stream\":\"stdout\",\"time\":\"",
    });
    let mut t = String::with_capacity(32);
    timefmt::write_rfc3339_nanos(std::time::SystemTime::now(), &mut t);
    out.extend_from_slice(t.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entries(path: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v["time"].as_str().unwrap().ends_with('Z'));
                (
                    v["log"].as_str().unwrap().to_owned(),
                    v["stream"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn log(dir: &Path, max_size: Option<u64>, max_files: u32) -> JsonFileLog {
        JsonFileLog::open(LogConfig {
            path: dir.join("c-json.log"),
            max_size,
            max_files,
        })
        .unwrap()
    }

    #[test]
    fn splits_lines_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = log(dir.path(), None, 1);
        l.write(StdStream::Stdout, b"hel").unwrap();
        l.write(StdStream::Stderr, b"oops\n").unwrap();
        l.write(StdStream::Stdout, b"lo\nwor").unwrap();
        l.write(StdStream::Stdout, b"ld\n\"q\"\n").unwrap();
        l.write(StdStream::Stdout, b"tail").unwrap();
        l.flush_partial(StdStream::Stdout).unwrap();
        let e = entries(&dir.path().join("c-json.log"));
        let want: Vec<(String, String)> = [
            ("oops\n", "stderr"),
            ("hello\n", "stdout"),
            ("world\n", "stdout"),
            ("\"q\"\n", "stdout"),
            ("tail", "stdout"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(e, want);
    }

    #[test]
    fn long_lines_become_partial_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = log(dir.path(), None, 1);
        let mut data = vec![b'x'; MAX_ENTRY * 2 + 10];
        data.push(b'\n');
        for chunk in data.chunks(5000) {
            l.write(StdStream::Stdout, chunk).unwrap();
        }
        let e = entries(&dir.path().join("c-json.log"));
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].0.len(), MAX_ENTRY);
        assert_eq!(e[1].0.len(), MAX_ENTRY);
        assert_eq!(e[2].0, format!("{}\n", "x".repeat(10)));
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = log(dir.path(), Some(1000), 3);
        for i in 0..100 {
            l.write(StdStream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let base = dir.path().join("c-json.log");
        for p in [base.clone(), numbered(&base, 1), numbered(&base, 2)] {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= 1000 && len > 0, "{p:?} {len}");
        }
        assert!(!numbered(&base, 3).exists());
        let last = entries(&base);
        assert_eq!(last.last().unwrap().0, "line 99\n");
    }

    #[test]
    fn single_file_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = log(dir.path(), Some(500), 1);
        for i in 0..100 {
            l.write(StdStream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let base = dir.path().join("c-json.log");
        assert!(std::fs::metadata(&base).unwrap().len() <= 500);
        assert!(!numbered(&base, 1).exists());
    }
}
