//! Snapshots the builder mounts for one step: a writable one on the step's parent image
//! (COPY, ADD, WORKDIR write into it, and its upper directory becomes the new layer) and
//! read-only views of other images (`COPY --from`). Keys start with `build-`; a guard
//! unmounts and removes them on every path, and [`clean_leftovers`] after a crash.

use std::fs::File;
use std::path::{Path, PathBuf};

use berth_image::{ImageConfig, ImageStore, chain_ids};
use berth_reference::Digest;
use berth_snapshot::Mount;

use crate::error::{BuildError, Result};

/// Prefix of every snapshot key the builder makes.
pub(crate) const KEY_PREFIX: &str = "build-";

/// A mounted snapshot, unmounted and removed on drop.
pub(crate) struct Workspace<'a> {
    store: &'a ImageStore,
    key: String,
    mountpoint: PathBuf,
    mounted: bool,
}

/// The top layer's chain id of an image config (`None` for an image without layers).
pub(crate) fn top_layer(config: &ImageConfig) -> Option<Digest> {
    chain_ids(&config.rootfs.diff_ids).pop()
}

pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 8];
    // A failed getrandom leaves zeros; a clash is then caught by the snapshotter.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

impl<'a> Workspace<'a> {
    /// A writable snapshot over `top` (or empty), mounted under `tmp`.
    pub(crate) fn writable(
        store: &'a ImageStore,
        top: Option<&Digest>,
        tmp: &Path,
    ) -> Result<Self> {
        Self::open(store, top, tmp, true)
    }

    /// A read-only view of `top` (or an empty directory), mounted under `tmp`.
    pub(crate) fn view(store: &'a ImageStore, top: Option<&Digest>, tmp: &Path) -> Result<Self> {
        Self::open(store, top, tmp, false)
    }

    fn open(store: &'a ImageStore, top: Option<&Digest>, tmp: &Path, rw: bool) -> Result<Self> {
        let key = format!("{KEY_PREFIX}{}", random_hex());
        let snaps = store.snapshotter();
        let parent = top.map(Digest::as_str);
        let mut mount = if rw {
            snaps.prepare(&key, parent)
        } else {
            snaps.view(&key, parent)
        }
        .map_err(|e| BuildError::Backend(format!("prepare a build snapshot: {e}")))?;
        if let Mount::Overlay {
            extra,
            upperdir: Some(_),
            ..
        } = &mut mount
        {
            // Unmounting an overlay syncs its upper file system (a second per 50 MB here);
            // a step's snapshot is scratch space that a crash discards anyway.
            extra.push("volatile".to_owned());
        }
        let mut ws = Workspace {
            store,
            mountpoint: tmp.join(format!("mnt-{key}")),
            key,
            mounted: false,
        };
        std::fs::create_dir_all(&ws.mountpoint)
            .map_err(BuildError::io("create mount point", &ws.mountpoint))?;
        mount
            .mount(&ws.mountpoint)
            .map_err(|e| BuildError::Backend(format!("mount a build snapshot: {e}")))?;
        ws.mounted = true;
        Ok(ws)
    }

    /// Where the file system is mounted.
    pub(crate) fn root(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and writes the changes as a layer tar to `out`; `None` when nothing changed.
    pub(crate) fn into_diff(mut self, out: &Path) -> Result<Option<File>> {
        self.unmount()?;
        let upper = self
            .store
            .snapshotter()
            .fs_dir(&self.key)
            .map_err(|e| BuildError::Backend(format!("find the build snapshot: {e}")))?;
        write_layer(&upper, out)
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            berth_snapshot::unmount(&self.mountpoint)
                .map_err(|e| BuildError::Backend(format!("unmount a build snapshot: {e}")))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Workspace<'_> {
    fn drop(&mut self) {
        // Best effort: leftovers are removed by `clean_leftovers` at the next start.
        if self.unmount().is_ok() {
            let _ = std::fs::remove_dir(&self.mountpoint);
            let _ = self.store.snapshotter().remove(&self.key);
        }
    }
}

/// Writes the layer tar of an upper directory to `out`; `None` when it holds nothing.
pub(crate) fn write_layer(upper: &Path, out: &Path) -> Result<Option<File>> {
    let file = File::create(out).map_err(BuildError::io("create", out))?;
    let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
    let (buffered, stats) = berth_snapshot::write_diff(upper, buffered)
        .map_err(|e| BuildError::Backend(format!("write the layer: {e}")))?;
    buffered
        .into_inner()
        .map_err(|e| BuildError::io("write", out)(e.into_error()))?;
    if stats.entries == 0 {
        return Ok(None);
    }
    File::open(out)
        .map(Some)
        .map_err(BuildError::io("open", out))
}

/// Unmounts and removes what a crashed build left: mounts and files under `tmp`, and
/// `build-` snapshots.
pub(crate) fn clean_leftovers(store: &ImageStore, tmp: &Path) {
    if let Ok(entries) = std::fs::read_dir(tmp) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = berth_snapshot::unmount(&path);
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    for info in store.snapshotter().list() {
        if info.key.starts_with(KEY_PREFIX) {
            let _ = store.snapshotter().remove(&info.key);
        }
    }
}
