//! berth's Dockerfile builder: runs a parsed Dockerfile (`berth-dockerfile`) into the local
//! image store (`berth-image`), the way Docker's classic builder does — one image per step,
//! empty layers for config-only steps, history entries, `Step N/M` progress — with a
//! content-checksum cache in front of every step.
//!
//! Layer 5: above `image`, below `engine`. It never starts a process: RUN steps go through
//! the [`Backend`] trait, which the engine implements with its containers service. It owns
//! `<data-root>/builder/` (`cache/`: step key → image id; `tmp/`: unpacked contexts and
//! mounted step snapshots, emptied at start-up).
//!
//! Untrusted input: the context tar (no `..`, no absolute paths, size limits), COPY sources
//! (never outside the context, even through symlinks), and image file systems (writes
//! resolve symlinks inside the image's root).

mod backend;
mod build;
mod cache;
mod context;
mod error;
mod fsops;
mod history;
mod scope_path;
mod usage;
mod values;
mod workspace;

pub use backend::{Backend, Fetched, OutputStream, RunMount, RunSpec};
pub use build::{BuildOptions, Builder, Progress};
pub use context::{Context, ContextLimits, FileCache};
pub use error::{BuildError, Result};
pub use usage::CacheRecord;
