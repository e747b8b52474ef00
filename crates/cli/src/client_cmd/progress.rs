//! Renders a JSON message stream (pull, push, load, import) as docker does: on a terminal
//! one line per layer id redrawn in place with its progress bar; otherwise plain status
//! lines without the byte-by-byte progress.

use std::collections::HashMap;
use std::io::Write;

use berth_client::Incoming;
use berth_client::stream::{JsonMessage, LineSplitter};
use berth_client::{ClientError, next_chunk};

/// Where the messages go and how.
pub struct Renderer<W: Write> {
    out: W,
    tty: bool,
    /// Line index (from the top of our block) of each layer id on a terminal.
    lines: HashMap<String, usize>,
    total_lines: usize,
}

impl<W: Write> Renderer<W> {
    pub fn new(out: W, tty: bool) -> Renderer<W> {
        Renderer {
            out,
            tty,
            lines: HashMap::new(),
            total_lines: 0,
        }
    }

    /// The writer back (what a buffered renderer held).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Shows one message; an `error` in it ends the stream with that error.
    pub fn show(&mut self, m: &JsonMessage) -> Result<(), ClientError> {
        if let Some(message) = m
            .error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .or_else(|| m.error.clone())
        {
            return Err(ClientError::Stream {
                code: m.error_detail.as_ref().and_then(|d| d.code),
                message,
            });
        }
        if let Some(text) = &m.stream {
            write!(self.out, "{text}")?;
            return Ok(self.out.flush()?);
        }
        let Some(status) = &m.status else {
            return Ok(());
        };
        let line = match &m.id {
            Some(id) => format!("{id}: {status}"),
            None => status.clone(),
        };
        match (&m.id, self.tty) {
            (Some(id), true) => self.redraw(id, &line, m.progress.as_deref())?,
            (Some(_), false) if m.progress.is_some() || is_progress_only(status) => {}
            _ => {
                writeln!(self.out, "{line}")?;
                if self.tty {
                    self.total_lines += 1;
                }
            }
        }
        Ok(self.out.flush()?)
    }

    /// Rewrites the line of `id` in place (or adds it at the bottom).
    fn redraw(&mut self, id: &str, line: &str, progress: Option<&str>) -> std::io::Result<()> {
        let text = match progress {
            Some(p) if !p.is_empty() => format!("{line} {p}"),
            _ => line.to_owned(),
        };
        match self.lines.get(id) {
            Some(&index) => {
                let up = self.total_lines - index;
                // Up to the line, clear it, write, and back down.
                write!(self.out, "\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B")?;
            }
            None => {
                self.lines.insert(id.to_owned(), self.total_lines);
                writeln!(self.out, "{text}")?;
                self.total_lines += 1;
            }
        }
        Ok(())
    }
}

/// Statuses docker shows only as progress bars.
fn is_progress_only(status: &str) -> bool {
    matches!(
        status,
        "Downloading" | "Extracting" | "Pushing" | "Loading layer"
    )
}

/// Reads a whole message stream into `renderer`; the `aux` values seen.
pub async fn render_stream<W: Write>(
    mut body: Incoming,
    renderer: &mut Renderer<W>,
) -> Result<Vec<serde_json::Value>, ClientError> {
    let mut splitter = LineSplitter::new();
    let mut aux = Vec::new();
    let mut handle = |line: &[u8], renderer: &mut Renderer<W>| -> Result<(), ClientError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let m: JsonMessage = serde_json::from_slice(line)?;
        if let Some(a) = &m.aux {
            aux.push(a.clone());
        }
        renderer.show(&m)
    };
    while let Some(chunk) = next_chunk(&mut body).await? {
        let lines = splitter
            .feed(&chunk)
            .map_err(|e| ClientError::Io(std::io::Error::other(e)))?;
        for line in lines {
            handle(&line, renderer)?;
        }
    }
    if let Some(rest) = splitter.finish() {
        handle(&rest, renderer)?;
    }
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> JsonMessage {
        serde_json::from_str(json).expect("message")
    }

    #[test]
    fn plain_output_hides_progress() {
        let mut r = Renderer::new(Vec::new(), false);
        for m in [
            r#"{"status":"Pulling from wire/b","id":"1"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":1,"total":2},"progress":"[==>  ]","id":"abc"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"abc"}"#,
            r#"{"status":"Digest: sha256:f00"}"#,
            r#"{"stream":"Loaded image: bb:1\n"}"#,
        ] {
            r.show(&msg(m)).expect("show");
        }
        assert_eq!(
            String::from_utf8(r.out).expect("utf8"),
            "1: Pulling from wire/b\nabc: Pull complete\nDigest: sha256:f00\nLoaded image: bb:1\n"
        );
    }

    #[test]
    fn terminal_output_redraws_layer_lines() {
        let mut r = Renderer::new(Vec::new(), true);
        r.show(&msg(r#"{"status":"Waiting","id":"a"}"#)).expect("a");
        r.show(&msg(r#"{"status":"Waiting","id":"b"}"#)).expect("b");
        r.show(&msg(
            r#"{"status":"Downloading","progress":"[=> ] 1B/2B","id":"a"}"#,
        ))
        .expect("a again");
        let out = String::from_utf8(r.out).expect("utf8");
        assert!(
            out.ends_with("\x1b[2A\r\x1b[2Ka: Downloading [=> ] 1B/2B\r\x1b[2B"),
            "{out:?}"
        );
    }

    #[test]
    fn errors_end_the_stream_with_their_code() {
        let mut r = Renderer::new(Vec::new(), false);
        let e = r
            .show(&msg(
                r#"{"errorDetail":{"code":3,"message":"boom"},"error":"boom"}"#,
            ))
            .expect_err("error");
        assert!(matches!(e, ClientError::Stream { code: Some(3), .. }));
    }
}
