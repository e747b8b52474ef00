//! berth's content store: blobs (compressed layers, image configs, manifests) addressed by
//! their digest under `<root>/blobs/<algorithm>/<hex>`, the OCI image-layout tree, like
//! containerd's local content store.
//!
//! Writes stream into `<root>/ingest/` while being hashed; [`Writer::commit`] fsyncs,
//! checks size and digest, renames into place and fsyncs the directory, so a blob is never
//! visible unless it is complete and verified, and a crash leaves at most an ingest that
//! [`ContentStore::cleanup_ingests`] removes (or a resumed writer continues). Digests are
//! parsed strictly before they become paths ([`Digest::parse`]).
//!
//! Layer L1 (mechanisms). It imports no other berth crate: [`Digest`] is defined here until
//! `berth-reference` provides the shared type, and errors carry no `berth-errdefs`
//! category yet ([`ContentError::is_not_found`] stands in).

mod digest;
mod error;
mod store;
mod writer;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error::ContentError;
pub use store::{ContentStore, Info};
pub use writer::Writer;
