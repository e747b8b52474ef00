//! Disk usage of the image store for `docker system df`: each layer counted once, and per
//! image the bytes it shares with other images.

use std::collections::BTreeMap;

use crate::store::ImageStore;

/// What `system df` needs from the image store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Bytes of every layer, each counted once (Docker's `LayersSize`).
    pub layers_size: u64,
    /// Image id (`sha256:…`) → bytes of its layers that another image also uses.
    pub shared_size: BTreeMap<String, u64>,
}

impl ImageStore {
    /// Layer bytes in total and shared per image.
    pub fn disk_usage(&self) -> DiskUsage {
        let st = self.lock();
        let mut users: BTreeMap<_, usize> = BTreeMap::new();
        for img in st.images.values() {
            for chain_id in &img.chain {
                *users.entry(chain_id).or_default() += 1;
            }
        }
        let layers_size = st.layers.values().map(|l| l.diff_size).sum();
        let shared_size = st
            .images
            .values()
            .map(|img| {
                let shared = img
                    .chain
                    .iter()
                    .filter(|c| users.get(c).is_some_and(|n| *n > 1))
                    .filter_map(|c| st.layers.get(c))
                    .map(|l| l.diff_size)
                    .sum();
                (img.id.to_string(), shared)
            })
            .collect();
        DiskUsage {
            layers_size,
            shared_size,
        }
    }
}
