//! The blob store: `blobs/<algorithm>/<hex>` for verified content, `ingest/<name>` for
//! writes in progress.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::FlockOperation;

use crate::digest::{Algorithm, Digest};
use crate::error::ContentError;
use crate::writer::Writer;

type Result<T> = std::result::Result<T, ContentError>;

/// Longest ingest ref accepted; refs are hashed into file names, so this only bounds memory.
const MAX_REF_LEN: usize = 256;

/// A content-addressed blob store rooted at one directory (an OCI image layout's `blobs/`
/// tree plus an `ingest/` directory for partial writes).
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// What [`ContentStore::info`] reports about a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

impl ContentStore {
    /// Opens (creating if needed) a store at `root`. New directories are mode 0700: blobs
    /// are only read by the daemon.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = ContentStore { root: root.into() };
        for dir in [
            store.root.join("ingest"),
            store.algorithm_dir(Algorithm::Sha256),
        ] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| ContentError::io("create directory", &dir, e))?;
        }
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob with this digest lives (whether or not it exists). Safe to join because
    /// a [`Digest`] is always validated.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.algorithm_dir(digest.algorithm()).join(digest.hex())
    }

    fn algorithm_dir(&self, algorithm: Algorithm) -> PathBuf {
        self.root.join("blobs").join(algorithm.name())
    }

    /// Starts a new write with a random ingest ref. `expected` and `expected_size`, when
    /// given, are checked at [`Writer::commit`]; the size also bounds the writes.
    pub fn writer(&self, expected: Option<Digest>, expected_size: Option<u64>) -> Result<Writer> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| ContentError::io("getrandom", &self.root, io::Error::other(e)))?;
        self.writer_for_ref(&hex::encode(random), expected, expected_size)
    }

    /// Starts or resumes the write identified by `ingest_ref` (for example `pull-<digest>`).
    /// If a partial ingest exists, its bytes are re-hashed and writing continues at
    /// [`Writer::offset`], which is what an HTTP `Range` request should ask for. Only one
    /// writer may hold a ref at a time; a second gets [`ContentError::IngestLocked`].
    pub fn writer_for_ref(
        &self,
        ingest_ref: &str,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Result<Writer> {
        if ingest_ref.is_empty() || ingest_ref.len() > MAX_REF_LEN {
            return Err(ContentError::InvalidRef(
                ingest_ref.chars().take(300).collect(),
            ));
        }
        let algorithm = expected
            .as_ref()
            .map_or(Algorithm::Sha256, Digest::algorithm);
        Writer::open(
            self.ingest_path(ingest_ref),
            self.algorithm_dir(algorithm),
            ingest_ref.to_owned(),
            expected,
            expected_size,
        )
    }

    /// Deletes the partial ingest for `ingest_ref`, if any. Refuses while a writer holds it.
    pub fn abort(&self, ingest_ref: &str) -> Result<()> {
        let path = self.ingest_path(ingest_ref);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ContentError::io("open ingest", &path, e)),
        };
        lock_or_busy(&file, ingest_ref)?;
        remove_if_exists(&path)
    }

    /// Ingest files are named by a hash of the ref so that any ref string is a safe name.
    fn ingest_path(&self, ingest_ref: &str) -> PathBuf {
        self.root
            .join("ingest")
            .join(Digest::sha256_of(ingest_ref.as_bytes()).hex())
    }

    /// Opens a blob for reading.
    pub fn get(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| self.not_found_or(digest, "open blob", &path, e))
    }

    /// Reads a whole blob into memory, refusing one larger than `max_size` (for manifests
    /// and configs), and checks that it still hashes to its digest.
    pub fn read_all(&self, digest: &Digest, max_size: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let file = self.get(digest)?;
        let size = file
            .metadata()
            .map_err(|e| ContentError::io("stat blob", &path, e))?
            .len();
        let too_large = |size| ContentError::TooLarge {
            digest: digest.clone(),
            size,
            limit: max_size,
        };
        if size > max_size {
            return Err(too_large(size));
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // Read at most one byte past the limit, in case the file is being replaced.
        file.take(max_size.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| ContentError::io("read blob", &path, e))?;
        if data.len() as u64 > max_size {
            return Err(too_large(data.len() as u64));
        }
        let mut hasher = digest.algorithm().hasher();
        hasher.update(&data);
        let actual = hasher.finish();
        if &actual != digest {
            return Err(ContentError::Corrupt {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Whether a blob is stored.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The size of a stored blob.
    pub fn info(&self, digest: &Digest) -> Result<Info> {
        let path = self.blob_path(digest);
        let meta =
            fs::metadata(&path).map_err(|e| self.not_found_or(digest, "stat blob", &path, e))?;
        Ok(Info {
            digest: digest.clone(),
            size: meta.len(),
        })
    }

    /// Removes a blob.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| self.not_found_or(digest, "remove blob", &path, e))
    }

    /// Every stored blob, sorted. Files whose names are not valid digests are ignored.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for algorithm in Algorithm::ALL {
            let dir = self.algorithm_dir(algorithm);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ContentError::io("list blobs", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| ContentError::io("list blobs", &dir, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Ok(d) = Digest::parse(&format!("{algorithm}:{name}")) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Start-up repair: deletes ingests not written to for `older_than` and not held by a
    /// writer. Returns how many were removed.
    pub fn cleanup_ingests(&self, older_than: Duration) -> Result<usize> {
        let dir = self.root.join("ingest");
        let entries = fs::read_dir(&dir).map_err(|e| ContentError::io("list ingests", &dir, e))?;
        let cutoff = SystemTime::now().checked_sub(older_than);
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| ContentError::io("list ingests", &dir, e))?;
            let path = entry.path();
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue; // a live writer holds it
            }
            let modified = file.metadata().and_then(|m| m.modified()).ok();
            let old = match (modified, cutoff) {
                (Some(m), Some(c)) => m <= c,
                _ => true,
            };
            if old {
                remove_if_exists(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn not_found_or(
        &self,
        digest: &Digest,
        op: &'static str,
        path: &Path,
        e: io::Error,
    ) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound(digest.clone())
        } else {
            ContentError::io(op, path, e)
        }
    }
}

pub(crate) fn lock_or_busy(file: &File, ingest_ref: &str) -> Result<()> {
    rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).map_err(|e| {
        if e == rustix::io::Errno::WOULDBLOCK {
            ContentError::IngestLocked(ingest_ref.to_owned())
        } else {
            ContentError::io("lock ingest", ingest_ref, e)
        }
    })
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ContentError::io("remove", path, e)),
        _ => Ok(()),
    }
}
