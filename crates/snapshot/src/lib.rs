//! berth's layer filesystems: unpacking image layers safely ([`apply_layer`]), overlayfs
//! snapshots to stack them and give containers a writable layer ([`Snapshotter`],
//! [`Mount`]), and turning a container's upper directory back into a layer tar
//! ([`write_diff`]), for `docker commit` and the builder.
//!
//! Layer L1 (mechanisms). It imports `berth-content` for the [`Digest`] type (the
//! `diff_id` of a layer) and nothing else from berth. Layer tars come from untrusted
//! registries, so every rule in [`apply`] is a security boundary; the hostile-tar tests
//! in `tests/` are its regression suite.

pub mod apply;
mod diff;
mod fsutil;
mod mount;
mod overlay;
mod stream;
mod usage;

pub use apply::{
    ApplyError, ApplyOptions, LayerStats, OVERLAY_OPAQUE_XATTR, WhiteoutMode, apply_layer,
};
pub use berth_content::Digest;
pub use diff::{DiffError, DiffStats, write_diff, write_diff_except};
pub use mount::{Mount, MountError, unmount};
pub use overlay::{Info, Kind, SnapshotError, Snapshotter};
pub use stream::Compression;
pub use usage::{Usage, disk_usage};
