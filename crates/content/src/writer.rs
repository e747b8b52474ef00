//! Streaming, verified writes into the store.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use rustix::fs::{CWD, Mode, RenameFlags};
use rustix::io::Errno;

use crate::digest::{Digest, Hasher};
use crate::error::ContentError;
use crate::store::{lock_or_busy, remove_if_exists};

type Result<T> = std::result::Result<T, ContentError>;

/// An open ingest: bytes written are appended to `ingest/<name>` and hashed as they go.
/// Nothing is visible in the store until [`Writer::commit`] has verified them. Dropping a
/// writer without committing keeps the partial ingest so that a later
/// [`ContentStore::writer_for_ref`](crate::ContentStore::writer_for_ref) can resume it.
///
/// Writes go straight to the file; wrap the writer in a `BufWriter` for small writes.
#[derive(Debug)]
pub struct Writer {
    file: File,
    ingest_path: PathBuf,
    blob_dir: PathBuf,
    ingest_ref: String,
    hasher: Hasher,
    offset: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
}

impl Writer {
    pub(crate) fn open(
        ingest_path: PathBuf,
        blob_dir: PathBuf,
        ingest_ref: String,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Result<Self> {
        let file = open_locked(&ingest_path, &ingest_ref)?;
        let algorithm = expected
            .as_ref()
            .map_or(crate::Algorithm::Sha256, Digest::algorithm);
        let mut w = Writer {
            file,
            ingest_path,
            blob_dir,
            ingest_ref,
            hasher: algorithm.hasher(),
            offset: 0,
            expected,
            expected_size,
        };
        w.rehash()?;
        if w.expected_size.is_some_and(|size| w.offset > size) {
            w.reset()?;
        }
        Ok(w)
    }

    /// Restores the hash state of a resumed ingest by reading what is already there.
    fn rehash(&mut self) -> Result<()> {
        let path = &self.ingest_path;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| ContentError::io("seek ingest", path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ContentError::io("read ingest", path, e)),
            };
            self.hasher.update(&buf[..n]);
            self.offset += n as u64;
        }
        Ok(())
    }

    /// Bytes written so far, including those of a resumed ingest: where an HTTP `Range`
    /// request should continue.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The ingest ref this writer holds.
    pub fn ingest_ref(&self) -> &str {
        &self.ingest_ref
    }

    /// Throws away what was written and starts again at offset 0 (for a server that
    /// ignored a `Range` request and sent the whole blob).
    pub fn reset(&mut self) -> Result<()> {
        let path = &self.ingest_path;
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| ContentError::io("truncate ingest", path, e))?;
        self.hasher = self
            .expected
            .as_ref()
            .map_or(crate::Algorithm::Sha256, Digest::algorithm)
            .hasher();
        self.offset = 0;
        Ok(())
    }

    /// Verifies and publishes the content: fsync the ingest, check its size and digest
    /// against what was expected, rename it to `blobs/<alg>/<hex>`, fsync that directory.
    /// On a mismatch the ingest is deleted and nothing is stored. If the blob already
    /// exists (another writer got there first) the ingest is dropped and this succeeds.
    pub fn commit(self) -> Result<Digest> {
        let Writer {
            file,
            ingest_path,
            blob_dir,
            ingest_ref,
            hasher,
            offset,
            expected,
            expected_size,
        } = self;
        let discard = |err: ContentError| {
            // The ingest is worthless after a mismatch; the caller's error matters more
            // than a failure to remove it.
            let _ = remove_if_exists(&ingest_path);
            err
        };
        file.sync_all()
            .map_err(|e| ContentError::io("fsync ingest", &ingest_path, e))?;
        if let Some(expected) = expected_size.filter(|&s| s != offset) {
            return Err(discard(ContentError::SizeMismatch {
                ingest_ref,
                expected,
                actual: offset,
            }));
        }
        let actual = hasher.finish();
        if let Some(expected) = expected.filter(|e| *e != actual) {
            return Err(discard(ContentError::DigestMismatch { expected, actual }));
        }
        // Blobs are immutable; read-only modes catch accidental writes by other code.
        rustix::fs::fchmod(&file, Mode::from_raw_mode(0o444))
            .map_err(|e| ContentError::io("chmod ingest", &ingest_path, e))?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(&blob_dir)
            .map_err(|e| ContentError::io("create directory", &blob_dir, e))?;
        let target = blob_dir.join(actual.hex());
        match publish(&ingest_path, &target) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                // Same digest, already verified by its own writer: keep the existing file
                // untouched so readers of it are never disturbed.
                remove_if_exists(&ingest_path)?;
                return Ok(actual);
            }
            Err(e) => return Err(ContentError::io("rename ingest to", &target, e)),
        }
        let dir = File::open(&blob_dir).map_err(|e| ContentError::io("open", &blob_dir, e))?;
        dir.sync_all()
            .map_err(|e| ContentError::io("fsync", &blob_dir, e))?;
        drop(file); // releases the ingest lock only once the blob is in place
        Ok(actual)
    }
}

/// Renames without replacing; falls back to a check-then-rename on filesystems without
/// `RENAME_NOREPLACE` (replacing a blob with identical verified bytes is harmless).
fn publish(from: &PathBuf, to: &PathBuf) -> std::result::Result<(), Errno> {
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => {
            if to.exists() {
                return Err(Errno::EXIST);
            }
            rustix::fs::renameat(CWD, from, CWD, to)
        }
        r => r,
    }
}

/// Opens and locks an ingest file, making sure the locked file is still the one at `path`:
/// between our open and our lock, its previous holder may have committed it (renamed it to
/// a blob) or a cleanup may have removed it, and we must never append to either.
fn open_locked(path: &PathBuf, ingest_ref: &str) -> Result<File> {
    for _ in 0..8 {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| ContentError::io("open ingest", path, e))?;
        lock_or_busy(&file, ingest_ref)?;
        let ours = file
            .metadata()
            .map_err(|e| ContentError::io("stat ingest", path, e))?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => return Ok(file),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ContentError::io("stat ingest", path, e)),
        }
    }
    Err(ContentError::IngestLocked(ingest_ref.to_owned()))
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.expected_size
            && self.offset.saturating_add(buf.len() as u64) > limit
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ingest {:?}: write past the expected size of {limit} bytes",
                    self.ingest_ref
                ),
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
