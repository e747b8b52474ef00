//! berth's local image store: image records keyed by image id (the digest of the config
//! blob), tags, and the formats images come and go in: `docker import` tarballs and `docker
//! save`/`docker load` archives (docker-archive and OCI image layout).
//!
//! It owns `<data-root>/images/` (records and tags) and uses, below it, the content store
//! (`berth-content`: configs and layer blobs, verified writes) and the snapshotter
//! (`berth-snapshot`: each layer unpacked once, committed under its chain id, shared by all
//! images that have it). Containers' root filesystems are overlays prepared on top of an
//! image's layers ([`ImageStore::prepare_rootfs`]).
//!
//! Layer 4 (mechanisms). It must not import the engine, the API types or anything HTTP:
//! results are plain structs that serialise to the Engine API's JSON, errors carry a
//! [`berth_errdefs::Category`] and Docker's wording. Registries (pull/push) are someone
//! else's job; a registry client registers what it fetched through the same store.
//!
//! Everything untrusted (archives, configs, layer tars) is checked before anything becomes
//! visible; see [`archive`](crate::archive) and [`load`](crate::load) for the rules, and
//! `store` for the order of writes that keeps a crash from exposing half-done work.

mod archive;
mod commit;
mod config;
mod error;
mod fsutil;
mod import;
mod layers;
mod load;
mod query;
mod remove;
mod repair;
mod save;
mod store;
mod tags;

pub use config::{
    ContainerConfig, History, ImageConfig, RootFs, chain_ids, format_rfc3339, now_rfc3339,
    parse_rfc3339,
};
pub use error::{ImageError, Result};
pub use import::{ImportOptions, host_arch};
pub use load::LoadedImage;
pub use query::{
    GraphDriver, HistoryItem, ImageInspect, ImageSummary, ListOptions, Metadata, RootFsInfo,
};
pub use remove::{DeleteItem, ImageUse, InUse, PruneReport};
pub use repair::RepairReport;
pub use store::{ImageStore, MAX_JSON_SIZE};
