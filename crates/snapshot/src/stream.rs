//! The byte stream under the tar parser: compression detected by magic bytes, the
//! uncompressed bytes hashed (the layer's `diff_id`) and counted against the limits as they
//! are produced, so that a bomb is stopped after reading little more than the limit.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use berth_content::{Algorithm, Digest, Hasher};

/// How a layer stream was compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// Zstandard.
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The compression announced by a stream's first bytes. Anything else is taken to be a
/// plain tar (whose parser rejects it if it is not one).
pub(crate) fn detect(magic: &[u8]) -> Compression {
    if magic.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if magic.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` (already buffered) in the decoder for `c`.
pub(crate) fn decoder<'a, R: BufRead + 'a>(c: Compression, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        // Registries and `docker save` may produce multi-member gzip (pigz, concatenation);
        // Go's gzip reader accepts it, so must we.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

/// Counts bytes read from the caller's (compressed) reader.
pub(crate) struct CountingReader<R> {
    pub(crate) inner: R,
    pub(crate) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Why the guarded stream stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    /// More uncompressed bytes than `max_size`.
    Size(u64),
    /// More than `max_ratio` uncompressed bytes per compressed byte.
    Ratio(u64),
    /// Too many bytes between two entries (oversized long-name or PAX headers).
    Headers(u64),
}

/// Shared state between the guarded stream and the code driving the tar parser.
#[derive(Default)]
pub(crate) struct Meter {
    /// Uncompressed bytes produced so far.
    pub(crate) uncompressed: Cell<u64>,
    /// Compressed bytes consumed so far.
    pub(crate) compressed: Rc<Cell<u64>>,
    /// Uncompressed offset past which reading is refused (moved by the entry loop).
    pub(crate) header_fence: Cell<u64>,
    /// Set when a limit stopped the stream.
    pub(crate) tripped: Cell<Option<Tripped>>,
}

/// Ratios are only judged after this many uncompressed bytes: tiny layers of zeros have
/// huge ratios and are harmless.
const RATIO_GRACE: u64 = 16 << 20;

/// Hashes and meters the uncompressed stream.
pub(crate) struct GuardedStream<'a> {
    pub(crate) inner: Box<dyn Read + 'a>,
    pub(crate) hasher: Option<Hasher>,
    pub(crate) meter: Rc<Meter>,
    pub(crate) max_size: u64,
    pub(crate) max_ratio: Option<u64>,
}

impl GuardedStream<'_> {
    pub(crate) fn new<'a>(
        inner: Box<dyn Read + 'a>,
        meter: Rc<Meter>,
        max_size: u64,
        max_ratio: Option<u64>,
    ) -> GuardedStream<'a> {
        GuardedStream {
            inner,
            hasher: Some(Algorithm::Sha256.hasher()),
            meter,
            max_size,
            max_ratio,
        }
    }

    pub(crate) fn finish(&mut self) -> Option<Digest> {
        self.hasher.take().map(Hasher::finish)
    }

    fn check(&self, total: u64) -> Result<(), Tripped> {
        if total > self.max_size {
            return Err(Tripped::Size(self.max_size));
        }
        if let Some(ratio) = self.max_ratio {
            let compressed = self.meter.compressed.get().max(1);
            if total > RATIO_GRACE && total / compressed > ratio {
                return Err(Tripped::Ratio(ratio));
            }
        }
        if total > self.meter.header_fence.get() {
            return Err(Tripped::Headers(crate::apply::HEADER_BUDGET));
        }
        Ok(())
    }
}

impl Read for GuardedStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(t) = self.meter.tripped.get() {
            return Err(io::Error::other(format!("layer stream stopped: {t:?}")));
        }
        let n = self.inner.read(buf)?;
        let total = self.meter.uncompressed.get() + n as u64;
        self.meter.uncompressed.set(total);
        if let Err(t) = self.check(total) {
            self.meter.tripped.set(Some(t));
            return Err(io::Error::other(format!("layer stream stopped: {t:?}")));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A buffer size that keeps syscalls and per-call overheads low for ~100 MB layers.
pub(crate) const BUF_SIZE: usize = 256 * 1024;

/// Builds the reader chain and returns it with the detected compression.
pub(crate) fn open<'a, R: Read + 'a>(
    reader: R,
    meter: Rc<Meter>,
    max_size: u64,
    max_ratio: Option<u64>,
) -> io::Result<(Compression, GuardedStream<'a>)> {
    let mut counting = CountingReader {
        inner: reader,
        count: meter.compressed.clone(),
    };
    // A slow reader may hand out fewer bytes than a magic number per read.
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match counting.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = detect(&magic[..got]);
    let replay = io::Cursor::new(magic).take(got as u64).chain(counting);
    let inner = decoder(compression, BufReader::with_capacity(BUF_SIZE, replay))?;
    Ok((
        compression,
        GuardedStream::new(inner, meter, max_size, max_ratio),
    ))
}
