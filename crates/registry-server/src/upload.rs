//! Request bodies streamed into content-store writers, and upload sessions' writers.

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use berth_content::{Algorithm, Digest, Writer};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::Registry;
use crate::error::{Code, RegistryError, Result};

/// Frames in flight between the connection and the writing thread: bounds the memory one
/// upload holds, whatever its size.
const CHANNEL_FRAMES: usize = 16;

/// Upload writers kept open between requests.
const MAX_OPEN_WRITERS: usize = 256;

/// Runs blocking storage work off the async workers.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(RegistryError::internal)?
}

/// Appends a request body to `writer` as it arrives, returning the writer and the number of
/// bytes written. On failure the writer is dropped: its ingest keeps what was written and a
/// later request resumes from there.
pub(crate) async fn stream_into(writer: Writer, body: Body) -> Result<(Writer, u64)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_FRAMES);
    let sink = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut written = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            writer.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        Ok::<_, std::io::Error>((writer, written))
    });
    let mut frames = body.into_data_stream();
    let mut body_error = None;
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(chunk) => {
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Err(e) => {
                body_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let (writer, written) = sink.await.map_err(RegistryError::internal)??;
    match body_error {
        Some(e) => Err(
            RegistryError::new(Code::BlobUploadInvalid, "request body failed")
                .detail(e.to_string()),
        ),
        None => Ok((writer, written)),
    }
}

impl Registry {
    /// The writer of an upload session (in the staging store): the open one, or its ingest
    /// reopened, re-hashing what it holds. Sessions hash with SHA-256 as bytes arrive; when
    /// the last request names a digest of another algorithm, the ingest is re-hashed with it.
    pub(crate) async fn take_writer(
        self: &Arc<Self>,
        id: &str,
        expected: Option<&Digest>,
    ) -> Result<Writer> {
        let rehash_as = expected
            .filter(|d| d.algorithm() != Algorithm::Sha256)
            .cloned();
        let open = self.lock_sessions().remove(id);
        if let Some(writer) = open {
            if rehash_as.is_none() {
                return Ok(writer);
            }
            drop(writer); // releases the ingest lock for the reopen below
        }
        let registry = Arc::clone(self);
        let ingest_ref = Registry::ingest_ref(id);
        blocking(move || {
            Ok(registry
                .staging
                .writer_for_ref(&ingest_ref, rehash_as, None)?)
        })
        .await
    }

    /// Keeps a session's writer open for its next request. Abandoned sessions would pin a
    /// descriptor each, so past [`MAX_OPEN_WRITERS`] one is closed (its ingest stays and
    /// reopens on demand).
    pub(crate) fn put_writer(&self, id: &str, writer: Writer) {
        let mut sessions = self.lock_sessions();
        if sessions.len() >= MAX_OPEN_WRITERS
            && let Some(evict) = sessions.keys().next().cloned()
        {
            sessions.remove(&evict);
        }
        sessions.insert(id.to_owned(), writer);
    }

    /// Drops a session's open writer, if any.
    pub(crate) fn forget_writer(&self, id: &str) {
        self.lock_sessions().remove(id);
    }

    fn lock_sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Writer>> {
        // A panic while holding the map leaves it consistent (inserts and removes only).
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
