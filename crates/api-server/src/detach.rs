//! Detach keys on an attached stdin (`ctrl-p,ctrl-q` unless the client names others): when
//! the client types the whole sequence, the daemon ends the attach and the container runs on.
//! The docker CLI watches for them itself on a terminal; the daemon must too, for `-i`
//! without a terminal and for every other client (SDKs pass `detachKeys`).

use berth_errdefs::Category;

use crate::error::ApiError;

/// Docker's default sequence, ctrl-p ctrl-q.
pub const DEFAULT_KEYS: [u8; 2] = [16, 17];

/// Parses Docker's detach-key syntax: comma-separated keys, each a single character or
/// `ctrl-<c>` with `<c>` one of `a-z @ [ \ ] ^ _`. Empty means the default.
pub fn parse(spec: &str) -> Result<Vec<u8>, ApiError> {
    if spec.is_empty() {
        return Ok(DEFAULT_KEYS.to_vec());
    }
    let invalid = || {
        ApiError::new(
            Category::InvalidParameter,
            format!("Invalid detach keys ({spec}) provided"),
        )
    };
    spec.split(',')
        .map(|key| {
            let key = key.trim();
            if let Some(c) = key.to_ascii_lowercase().strip_prefix("ctrl-") {
                match c.as_bytes() {
                    [b @ b'a'..=b'z'] => Ok(b - b'a' + 1),
                    [b'@'] => Ok(0),
                    [b @ (b'[' | b'\\' | b']' | b'^' | b'_')] => Ok(b - b'@'),
                    _ => Err(invalid()),
                }
            } else {
                match key.as_bytes() {
                    [b] if b.is_ascii() && !b.is_ascii_control() => Ok(*b),
                    _ => Err(invalid()),
                }
            }
        })
        .collect()
}

/// Finds the detach sequence in a stream of chunks. Bytes that might start the sequence are
/// held back until the next byte tells; a false start is passed on unchanged.
#[derive(Debug, Clone)]
pub struct Detector {
    keys: Vec<u8>,
    matched: usize,
}

/// What a chunk of input amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Forward these bytes (possibly none: all held back).
    Forward(Vec<u8>),
    /// The sequence was typed: forward these bytes first, then detach.
    Detach(Vec<u8>),
}

impl Detector {
    /// A detector for `keys` (never empty: see [`parse`]).
    pub fn new(keys: Vec<u8>) -> Detector {
        Detector { keys, matched: 0 }
    }

    /// Scans the next chunk of client input.
    pub fn scan(&mut self, chunk: &[u8]) -> Scan {
        let mut out = Vec::with_capacity(chunk.len() + self.matched);
        for &b in chunk {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
                continue;
            }
            // A false start: what was held back is input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Scan::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_key_syntax() {
        assert_eq!(parse("").expect("valid keys"), vec![16, 17]);
        assert_eq!(parse("ctrl-p,ctrl-q").expect("valid keys"), vec![16, 17]);
        assert_eq!(
            parse("ctrl-a,x,ctrl-@,ctrl-[,ctrl-_").expect("valid keys"),
            vec![1, b'x', 0, 27, 31]
        );
        assert_eq!(parse("e,x,i,t").expect("valid keys"), b"exit".to_vec());
        for bad in ["ctrl-", "ctrl-1", "ab", "ctrl-pq", ",", "x,", "\u{e9}"] {
            let e = parse(bad).expect_err("invalid keys");
            assert_eq!(e.message, format!("Invalid detach keys ({bad}) provided"));
        }
    }

    #[test]
    fn sequence_across_chunks_detaches_and_false_starts_pass_through() {
        let mut d = Detector::new(vec![16, 17]);
        assert_eq!(d.scan(b"ls\n\x10"), Scan::Forward(b"ls\n".to_vec()));
        assert_eq!(d.scan(b"\x11rest"), Scan::Detach(Vec::new()));
        // ctrl-p then something else: both reach the container.
        let mut d = Detector::new(vec![16, 17]);
        assert_eq!(d.scan(b"\x10a"), Scan::Forward(b"\x10a".to_vec()));
        assert_eq!(d.scan(b"\x10\x10\x11"), Scan::Detach(b"\x10".to_vec()));
        let mut one = Detector::new(vec![b'q']);
        assert_eq!(one.scan(b"abq"), Scan::Detach(b"ab".to_vec()));
    }
}
