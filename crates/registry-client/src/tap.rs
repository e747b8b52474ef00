//! Layer taps: a layer's bytes handed to a consumer (an unpacker) while they download, so
//! a layer is decompressed and unpacked as it arrives instead of in a second pass.
//!
//! The contract, which is what makes unpacking unverified bytes safe: a tap sees every
//! byte of the blob exactly once and in order, and [`TapChunk::End`] only after the whole
//! blob matched its digest. A tap whose sender goes away without `End` was abandoned (the
//! download failed, or restarted from the first byte) and its result must be thrown away.

use std::io::{self, Read};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::manifest::Descriptor;

/// Chunks kept in flight between a download and its tap.
pub const TAP_CHUNKS: usize = 256;

/// What a tap receives.
#[derive(Debug)]
pub enum TapChunk {
    /// The next bytes of the blob.
    Data(Bytes),
    /// The blob is complete and verified.
    End,
}

/// Where a pull sends the bytes of the layers it downloads.
pub trait LayerTap: Send + Sync {
    /// A download of `layer` starts from its first byte: the sender for its chunks, or
    /// `None` to leave this layer alone. Called from the pulling task.
    fn open(&self, layer: &Descriptor) -> Option<mpsc::Sender<TapChunk>>;
}

/// The blocking side of a tap: reads the chunks as a byte stream. Ends (EOF) only at
/// [`TapChunk::End`]; a tap abandoned without it is an error.
#[derive(Debug)]
pub struct TapReader {
    rx: mpsc::Receiver<TapChunk>,
    current: Bytes,
    ended: bool,
}

impl TapReader {
    /// Reads what `rx` receives. Must be used outside the async runtime (it blocks).
    pub fn new(rx: mpsc::Receiver<TapChunk>) -> Self {
        TapReader {
            rx,
            current: Bytes::new(),
            ended: false,
        }
    }
}

impl Read for TapReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(TapChunk::Data(b)) => self.current = b,
                Some(TapChunk::End) => self.ended = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "layer download abandoned",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_ends_only_at_end() {
        let (tx, rx) = mpsc::channel(4);
        let sent = std::thread::spawn(move || {
            for part in [&b"hello "[..], b"world"] {
                tx.blocking_send(TapChunk::Data(Bytes::from_static(part)))
                    .map_err(|_| ())?;
            }
            tx.blocking_send(TapChunk::End).map_err(|_| ())
        });
        let mut out = String::new();
        let read = TapReader::new(rx).read_to_string(&mut out);
        assert!(read.is_ok(), "{read:?}");
        assert_eq!(out, "hello world");
        assert!(sent.join().is_ok_and(|r| r.is_ok()));
    }

    #[test]
    fn an_abandoned_tap_is_an_error_not_an_eof() {
        let (tx, rx) = mpsc::channel(4);
        let sent = std::thread::spawn(move || {
            tx.blocking_send(TapChunk::Data(Bytes::from_static(b"partial")))
                .map_err(|_| ())
        });
        let mut out = Vec::new();
        let err = TapReader::new(rx).read_to_end(&mut out);
        assert!(err.is_err_and(|e| e.kind() == io::ErrorKind::UnexpectedEof));
        assert_eq!(out, b"partial");
        assert!(sent.join().is_ok_and(|r| r.is_ok()));
    }
}
