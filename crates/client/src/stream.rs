//! Decoders for the daemon's streams: the 8-byte stdio framing (attach, exec and logs without
//! a TTY) and newline-separated JSON messages (pull, push, load, import, events).

use serde::Deserialize;

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdin,
    Stdout,
    Stderr,
}

/// A malformed stdio frame header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Unrecognized input header: {0}")]
pub struct FrameError(pub u8);

impl berth_errdefs::HasCategory for FrameError {
    fn category(&self) -> berth_errdefs::Category {
        berth_errdefs::Category::Unknown
    }
}

/// Splits the multiplexed stdio stream into its parts, whatever the chunking of the input.
/// Payloads are passed on as they arrive, so a huge frame length costs no memory.
#[derive(Debug, Default)]
pub struct Demuxer {
    header: [u8; 8],
    header_len: usize,
    remaining: u64,
    stream: Option<StdStream>,
}

impl Demuxer {
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    /// Feeds `input`; calls `out` with each piece of payload and its stream.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut impl FnMut(StdStream, &[u8]),
    ) -> Result<(), FrameError> {
        while !input.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                if let Some(stream) = self.stream {
                    out(stream, &input[..n]);
                }
                self.remaining -= n as u64;
                input = &input[n..];
                continue;
            }
            let take = (8 - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            input = &input[take..];
            if self.header_len == 8 {
                self.header_len = 0;
                self.stream = Some(match self.header[0] {
                    0 => StdStream::Stdin,
                    1 => StdStream::Stdout,
                    2 => StdStream::Stderr,
                    other => return Err(FrameError(other)),
                });
                let len = [
                    self.header[4],
                    self.header[5],
                    self.header[6],
                    self.header[7],
                ];
                self.remaining = u64::from(u32::from_be_bytes(len));
            }
        }
        Ok(())
    }

    /// True when the input so far ended on a frame boundary.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.remaining == 0
    }
}

/// One message of a JSON message stream (§3 of the wire notes).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct JsonMessage {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub progress: Option<String>,
    #[serde(default, rename = "progressDetail")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default, rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default)]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ProgressDetail {
    #[serde(default)]
    pub current: Option<i64>,
    #[serde(default)]
    pub total: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The longest single line a line decoder accepts (a hostile daemon cannot exhaust memory).
pub const MAX_LINE: usize = 16 << 20;

/// A line that was longer than [`MAX_LINE`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("message longer than {MAX_LINE} bytes from the daemon")]
pub struct LineTooLong;

/// Splits a byte stream into `\n`-terminated lines (a trailing `\r` dropped), whatever the
/// chunking.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Feeds `input`, returning the complete lines it finished.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<Vec<u8>>, LineTooLong> {
        self.buf.extend_from_slice(input);
        let mut lines = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(line);
        }
        if self.buf.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        Ok(lines)
    }

    /// What is left when the stream ends (a last line without a newline).
    pub fn finish(self) -> Option<Vec<u8>> {
        let rest = String::from_utf8_lossy(&self.buf).trim().to_owned();
        (!rest.is_empty()).then(|| rest.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&u32::try_from(payload.len()).expect("len").to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn demux_all(input: &[u8], chunk: usize) -> Result<(Vec<u8>, Vec<u8>), FrameError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut d = Demuxer::new();
        for piece in input.chunks(chunk) {
            d.feed(piece, &mut |s, b| match s {
                StdStream::Stderr => err.extend_from_slice(b),
                _ => out.extend_from_slice(b),
            })?;
        }
        assert!(d.at_boundary());
        Ok((out, err))
    }

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        let mut input = frame(1, b"hi\n");
        input.extend(frame(2, b"err1\n"));
        input.extend(frame(1, b""));
        input.extend(frame(1, b"out2\n"));
        for chunk in 1..input.len() {
            let (out, err) = demux_all(&input, chunk).expect("demux");
            assert_eq!(out, b"hi\nout2\n");
            assert_eq!(err, b"err1\n");
        }
    }

    #[test]
    fn unknown_stream_ids_are_refused() {
        let input = frame(7, b"x");
        assert_eq!(demux_all(&input, 100), Err(FrameError(7)));
    }

    #[test]
    fn truncated_frames_are_not_at_a_boundary() {
        let input = frame(1, b"hello");
        let mut d = Demuxer::new();
        d.feed(&input[..6], &mut |_, _| {}).expect("header part");
        assert!(!d.at_boundary());
        d.feed(&input[6..10], &mut |_, _| {}).expect("payload part");
        assert!(!d.at_boundary());
    }

    #[test]
    fn a_huge_declared_length_allocates_nothing() {
        let mut d = Demuxer::new();
        let mut seen = 0;
        d.feed(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, b'a'], &mut |_, b| {
            seen += b.len()
        })
        .expect("feed");
        assert_eq!(seen, 1);
    }

    #[test]
    fn lines_split_on_crlf_and_lf() {
        let mut s = LineSplitter::new();
        let mut lines = s.feed(b"{\"a\":1}\r\n{\"b\"").expect("feed");
        lines.extend(s.feed(b":2}\n{\"c\":3}").expect("feed"));
        assert_eq!(lines, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(s.finish(), Some(b"{\"c\":3}".to_vec()));
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut s = LineSplitter::new();
        let big = vec![b'x'; MAX_LINE + 1];
        assert_eq!(s.feed(&big), Err(LineTooLong));
    }

    #[test]
    fn messages_decode_with_missing_fields() {
        let m: JsonMessage =
            serde_json::from_str(r#"{"errorDetail":{"code":3,"message":"boom"},"error":"boom"}"#)
                .expect("decode");
        assert_eq!(m.error.as_deref(), Some("boom"));
        assert_eq!(m.error_detail.and_then(|d| d.code), Some(3));
        let m: JsonMessage =
            serde_json::from_str(r#"{"status":"Downloading","progressDetail":{},"id":"abc"}"#)
                .expect("decode");
        assert_eq!(m.id.as_deref(), Some("abc"));
    }
}
