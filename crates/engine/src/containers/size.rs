//! Container sizes for `docker ps -s` and `docker system df`: the writable layer (the
//! overlay's upper directory) and that plus the image.

use super::Containers;

/// `SizeRw` and `SizeRootFs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerSize {
    /// Bytes written by the container.
    pub rw: u64,
    /// `rw` plus the image's layers.
    pub root_fs: u64,
}

impl Containers {
    /// How many containers (any state) use the image `image_id`.
    pub fn containers_of_image(&self, image_id: &str) -> usize {
        let all: Vec<_> = self.idx().by_id.values().cloned().collect();
        all.iter().filter(|c| c.rec().image == image_id).count()
    }

    /// The sizes of the container with the full id `id` (zeros for one without an overlay).
    /// Walks the upper directory: call it off the async threads.
    pub fn size_of(&self, id: &str, image_size: u64) -> ContainerSize {
        let upper = self
            .find(id)
            .ok()
            .and_then(|c| c.rec().graph_driver.get("UpperDir").cloned());
        let rw = upper.map_or(0, |dir| {
            crate::volumes::dir_size(std::path::Path::new(&dir), 0)
        });
        ContainerSize {
            rw,
            root_fs: rw.saturating_add(image_size),
        }
    }
}
