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
//! visible; see `archive` and `load` for the rules, and `store` for the order of writes that
//! keeps a crash from exposing half-done work.
//!
//! The operations, all on [`ImageStore`] and all blocking (call them from a blocking task):
//!
//! | Docker | method |
//! |---|---|
//! | `docker import` | [`ImageStore::import`] |
//! | `docker load` | [`ImageStore::load`] (docker-archive of any Docker version, OCI layout) |
//! | `docker save` | [`ImageStore::save`] (Docker 25+'s layout: docker-archive and OCI layout in one) |
//! | `docker images` | [`ImageStore::list`] |
//! | `docker image inspect` / `history` | [`ImageStore::inspect`], [`ImageStore::history`] |
//! | `docker tag` | [`ImageStore::tag`], [`ImageStore::untag`] |
//! | `docker pull` (after the registry client fetched the blobs) | [`ImageStore::register`], [`ImageStore::add_digest`] |
//! | `docker push` (what the registry client uploads) | [`ImageStore::distribution`] |
//! | `docker rmi` / `image prune` | [`ImageStore::remove`], [`ImageStore::prune`] |
//! | `docker commit`, build steps | [`ImageStore::commit`] |
//! | a container's root | [`ImageStore::prepare_rootfs`], [`ImageStore::remove_rootfs`] |
//! | start-up | [`ImageStore::repair`] |
//!
//! Whether a container uses an image is the engine's knowledge, asked through an [`InUse`]
//! callback that also says whether the container runs: Docker refuses `rmi -f` of a running
//! container's image but allows it for a stopped one.

mod archive;
mod commit;
mod config;
mod error;
mod fsutil;
mod import;
mod layers;
mod load;
mod pulled;
mod query;
mod remove;
mod repair;
mod save;
mod store;
mod tags;
mod usage;

pub use config::{
    ContainerConfig, History, ImageConfig, RootFs, chain_ids, format_rfc3339, now_rfc3339,
    parse_rfc3339,
};
pub use error::{ImageError, Result};
pub use import::{ImportOptions, host_arch};
pub use load::LoadedImage;
pub use pulled::{Distribution, DistributionLayer, PushCompression, Unpacked};
pub use query::{
    GraphDriver, HistoryItem, ImageInspect, ImageSummary, ListOptions, Metadata, RootFsInfo,
};
pub use remove::{DeleteItem, ImageUse, InUse, PruneReport};
pub use repair::RepairReport;
pub use store::{ImageStore, MAX_JSON_SIZE, UnpackLimits};
pub use usage::DiskUsage;

#[cfg(test)]
mod tests {
    /// The engine shares one store between threads (and calls it from blocking tasks).
    #[test]
    fn the_store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::ImageStore>();
        check::<crate::ImageError>();
    }
}
