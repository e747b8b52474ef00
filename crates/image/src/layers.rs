//! Registering one layer: a single pass over its tar both unpacks it into a fresh snapshot
//! and streams its blob into the content store. The snapshot is committed under the layer's
//! chain id, and its record written, only once the tar's diff id matched what the image
//! config promises and the blob verified.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use berth_content::Writer;
use berth_reference::Digest;
use berth_snapshot::{SnapshotError, apply_layer};

use crate::config::chain_ids;
use crate::error::{ImageError, Result};
use crate::fsutil::{TeeReader, apparent_size, random_hex, write_atomic};
use crate::store::{ImageStore, LayerRecord, from_content, to_content};

/// How a layer's blob is kept.
pub(crate) enum BlobMode {
    /// Store the bytes as received (a load); `digest` and `size`, when the archive names
    /// them, are verified by the content store.
    AsIs {
        digest: Option<Digest>,
        size: Option<u64>,
    },
    /// Decompress the input and store it gzip-compressed (an import).
    Gzip,
}

/// Where the blob bytes go while the layer unpacks. One lives per layer, so its size does
/// not matter.
#[allow(clippy::large_enum_variant)]
enum Sink {
    Plain(BufWriter<Writer>),
    Gzip(flate2::write::GzEncoder<BufWriter<Writer>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> io::Result<Writer> {
        let buffered = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

/// The result of [`ImageStore::add_layer`].
pub(crate) struct Added {
    pub(crate) record: LayerRecord,
    /// False when the layer was already there (nothing was read or written).
    pub(crate) created: bool,
}

impl ImageStore {
    /// Registers the layer `input` on top of the layer `parent` (a chain id). With
    /// `expected` (the diff id from the image config) an already registered layer is reused
    /// without reading `input`, and a mismatch is refused.
    pub(crate) fn add_layer(
        &self,
        index: usize,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
        input: &mut dyn Read,
        mode: BlobMode,
    ) -> Result<Added> {
        if let Some(diff_id) = expected {
            let chain_id = chain_of(parent, diff_id);
            if let Some(record) = self.lock().layers.get(&chain_id) {
                return Ok(Added {
                    record: record.clone(),
                    created: false,
                });
            }
        }
        let key = format!("extract-{}", random_hex(12));
        self.snapshots.prepare(&key, parent.map(Digest::as_str))?;
        let (writer_digest, writer_size, gzip) = match &mode {
            BlobMode::AsIs { digest, size } => {
                (digest.as_ref().map(to_content).transpose()?, *size, false)
            }
            BlobMode::Gzip => (None, None, true),
        };
        let writer = match self.content.writer(writer_digest, writer_size) {
            Ok(w) => w,
            Err(e) => {
                let _ = self.snapshots.remove(&key);
                return Err(e.into());
            }
        };
        let ingest_ref = writer.ingest_ref().to_owned();
        let result = self.unpack_and_commit(index, &key, parent, expected, input, writer, gzip);
        if result.is_err() {
            // The error says what went wrong; cleanup failures only leave debris for repair.
            let _ = self.snapshots.remove(&key);
            let _ = self.content.abort(&ingest_ref);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn unpack_and_commit(
        &self,
        index: usize,
        key: &str,
        parent: Option<&Digest>,
        expected: Option<&Digest>,
        input: &mut dyn Read,
        writer: Writer,
        gzip: bool,
    ) -> Result<Added> {
        let fs_dir = self.snapshots.fs_dir(key)?;
        let buffered = BufWriter::with_capacity(1 << 20, writer);
        let (sink, stats) = if gzip {
            let sink = Sink::Gzip(flate2::write::GzEncoder::new(
                buffered,
                flate2::Compression::default(),
            ));
            let plain =
                decompress(input).map_err(|e| ImageError::archive(format!("read tarball: {e}")))?;
            let mut tee = TeeReader { inner: plain, sink };
            let stats = apply_layer(&mut tee, &fs_dir, &self.apply_options())?;
            (tee.sink, stats)
        } else {
            let mut tee = TeeReader {
                inner: input,
                sink: Sink::Plain(buffered),
            };
            let stats = apply_layer(&mut tee, &fs_dir, &self.apply_options())?;
            (tee.sink, stats)
        };
        let diff_id = from_content(&stats.diff_id)?;
        if let Some(expected) = expected.filter(|e| **e != diff_id) {
            return Err(ImageError::LayerMismatch {
                index,
                expected: expected.to_string(),
                actual: diff_id.to_string(),
            });
        }
        let writer = sink
            .finish()
            .map_err(ImageError::io("write blob", self.content.root()))?;
        let blob = from_content(&writer.commit()?)?;
        let diff_size = apparent_size(&fs_dir).map_err(ImageError::io("measure", &fs_dir))?;
        let record = LayerRecord {
            chain_id: chain_of(parent, &diff_id),
            diff_id,
            parent: parent.cloned(),
            blob,
            compression: if gzip {
                "gzip".to_owned()
            } else {
                format!("{:?}", stats.compression).to_lowercase()
            },
            tar_size: stats.size,
            diff_size,
        };
        self.commit_layer(key, record)
    }

    /// Commits the unpacked snapshot `key` as the layer `record`, unless another writer got
    /// there first.
    pub(crate) fn commit_layer(&self, key: &str, record: LayerRecord) -> Result<Added> {
        let mut st = self.lock();
        if let Some(existing) = st.layers.get(&record.chain_id) {
            let _ = self.snapshots.remove(key);
            return Ok(Added {
                record: existing.clone(),
                created: false,
            });
        }
        let parent = record.parent.as_ref().map(Digest::as_str);
        match self
            .snapshots
            .commit_onto(record.chain_id.as_str(), key, parent)
        {
            // Committed by a run that crashed before writing the record: the files were
            // verified before that commit, so the record is all that is missing.
            Err(SnapshotError::AlreadyExists(_)) => {
                let _ = self.snapshots.remove(key);
            }
            r => r?,
        }
        let data = serde_json::to_vec(&record).map_err(|e| ImageError::Corrupt {
            path: self.layer_record_path(&record.chain_id),
            reason: e.to_string(),
        })?;
        write_atomic(&self.layer_record_path(&record.chain_id), &data)?;
        st.layers.insert(record.chain_id.clone(), record.clone());
        Ok(Added {
            record,
            created: true,
        })
    }

    /// Undoes the layers a failed load or import created (those no image uses).
    pub(crate) fn rollback_layers(&self, created: &[Digest]) {
        let mut st = self.lock();
        // Best effort: what is left is removed by repair.
        let _ = self.remove_unused_layers(&mut st, created);
    }
}

/// The chain id of `diff_id` on top of the chain `parent`.
pub(crate) fn chain_of(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => chain_ids(&[p.clone(), diff_id.clone()])
            .pop()
            .unwrap_or_else(|| diff_id.clone()),
    }
}

/// A plain tar stream from a plain, gzip or zstd one (detected by magic bytes).
pub(crate) fn decompress<'a>(input: &'a mut dyn Read) -> io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(1 << 16, input);
    let magic = r.fill_buf()?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r)?)
    } else {
        Box::new(r)
    })
}
