//! The images service: the local image store ([`ImageStore`], shared with the containers
//! service) behind the image endpoints, with image events and the containers service as the
//! judge of whether an image is in use.
//!
//! Every store call is blocking and runs in `spawn_blocking`. Streams in and out (import,
//! load, save) are plain `Read`/`Write` objects; the API server bridges them to HTTP bodies.
//! Pull, push and login are in [`registry`].

mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::Arc;

use berth_errdefs::{CategorizedError, Category};
pub use berth_image::{
    ContainerConfig, DeleteItem, HistoryItem, ImageInspect, ImageStore, ImageSummary,
    ImportOptions, ListOptions, LoadedImage, PruneReport, PushCompression,
};
use berth_reference::{Filters, ImageId, Reference};

pub use self::registry::{Messages, PullRequest, PushRequest};
use crate::containers::Containers;
use crate::events::{Event, EventType, Events};
pub use berth_registry_client::Options as RegistryOptions;

type Result<T> = std::result::Result<T, CategorizedError>;

/// The images service.
#[derive(Debug)]
pub struct Images {
    store: Arc<ImageStore>,
    events: Arc<Events>,
    containers: Arc<Containers>,
    registry: RegistryOptions,
    push_compression: PushCompression,
}

/// A blocking reader the caller hands over to the service.
pub type BoxRead = Box<dyn Read + Send>;
/// A blocking writer the caller hands over to the service.
pub type BoxWrite = Box<dyn Write + Send>;

fn cat(e: impl berth_errdefs::HasCategory + std::fmt::Display) -> CategorizedError {
    CategorizedError::from_error(&e)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CategorizedError::new(Category::System, format!("image task failed: {e}")))?
}

impl Images {
    /// The service over `store` (the same instance the containers service uses).
    pub fn new(store: Arc<ImageStore>, events: Arc<Events>, containers: Arc<Containers>) -> Self {
        Images {
            store,
            events,
            containers,
            registry: RegistryOptions::default(),
            push_compression: PushCompression::default(),
        }
    }

    /// How pushes compress layers stored uncompressed when the request does not say.
    pub fn with_push_compression(mut self, compression: PushCompression) -> Self {
        self.push_compression = compression;
        self
    }

    /// How pulls and pushes reach registries (insecure registries, concurrency, CAs).
    pub fn with_registry_options(mut self, options: RegistryOptions) -> Self {
        self.registry = options;
        self
    }

    /// An image event as dockerd logs it: the actor is the image id, `name` the new tag for
    /// `tag` and the id itself for every other action.
    fn publish(&self, action: &str, id: &str, name: Option<String>) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_owned(), name.unwrap_or_else(|| id.to_owned()));
        self.events
            .publish(Event::now(EventType::Image, action, id, attrs));
    }

    /// `docker import`: the tarball as a one-layer image; returns its id.
    pub async fn import(
        self: &Arc<Self>,
        mut tarball: BoxRead,
        opts: ImportOptions,
    ) -> Result<String> {
        let this = self.clone();
        blocking(move || {
            let id = this.store.import(&mut tarball, &opts).map_err(cat)?;
            this.publish("import", id.as_str(), None);
            Ok(id.as_str().to_owned())
        })
        .await
    }

    /// `docker load`.
    pub async fn load(self: &Arc<Self>, mut archive: BoxRead) -> Result<Vec<LoadedImage>> {
        let this = self.clone();
        blocking(move || {
            let loaded = this.store.load(&mut archive).map_err(cat)?;
            for image in &loaded {
                this.publish("load", image.id.as_str(), None);
            }
            Ok(loaded)
        })
        .await
    }

    /// Checks that every name of a `docker save` resolves (so a missing one is a 404
    /// before the archive starts).
    pub async fn check_save(self: &Arc<Self>, names: Vec<String>) -> Result<()> {
        let this = self.clone();
        blocking(move || {
            for name in &names {
                this.store.resolve(name).map_err(cat)?;
            }
            Ok(())
        })
        .await
    }

    /// `docker save`: writes the archive to `out`.
    pub async fn save(self: &Arc<Self>, names: Vec<String>, mut out: BoxWrite) -> Result<()> {
        let this = self.clone();
        blocking(move || {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            this.store.save(&refs, &mut out).map_err(cat)?;
            out.flush()
                .map_err(|e| CategorizedError::new(Category::System, e.to_string()))?;
            for name in &names {
                if let Ok(id) = this.store.resolve(name) {
                    this.publish("save", id.as_str(), None);
                }
            }
            Ok(())
        })
        .await
    }

    /// `docker images`.
    pub async fn list(self: &Arc<Self>, opts: ListOptions) -> Result<Vec<ImageSummary>> {
        let this = self.clone();
        blocking(move || this.store.list(&opts).map_err(cat)).await
    }

    /// `docker image inspect`.
    pub async fn inspect(self: &Arc<Self>, name: String) -> Result<ImageInspect> {
        let this = self.clone();
        blocking(move || this.store.inspect(&name).map_err(cat)).await
    }

    /// `docker history`.
    pub async fn history(self: &Arc<Self>, name: String) -> Result<Vec<HistoryItem>> {
        let this = self.clone();
        blocking(move || this.store.history(&name).map_err(cat)).await
    }

    /// `docker tag source repo:tag` (`tag` empty: `latest`).
    pub async fn tag(self: &Arc<Self>, source: String, repo: String, tag: String) -> Result<()> {
        let this = self.clone();
        blocking(move || {
            let mut target = Reference::parse_normalized(&repo).map_err(cat)?;
            if !tag.is_empty() {
                target = target.with_tag(&tag).map_err(cat)?;
            }
            let target = target.with_default_tag();
            this.store.tag(&source, &target).map_err(cat)?;
            let id = this.store.resolve(&source).map_err(cat)?;
            this.publish("tag", id.as_str(), Some(target.familiar_string()));
            Ok(())
        })
        .await
    }

    /// `docker rmi` (`noprune`: keep untagged parents).
    pub async fn remove(
        self: &Arc<Self>,
        name: String,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<DeleteItem>> {
        let this = self.clone();
        blocking(move || {
            let in_use = |id: &ImageId| this.containers.image_user(id.as_str());
            let image = this.store.resolve(&name).ok();
            let known = this.image_ids();
            let items = this
                .store
                .remove(&name, force, !noprune, &in_use)
                .map_err(cat)?;
            this.publish_removed(&items, image.as_ref(), &known);
            Ok(items)
        })
        .await
    }

    /// `docker image prune`.
    pub async fn prune(self: &Arc<Self>, filters: Filters) -> Result<PruneReport> {
        let this = self.clone();
        blocking(move || {
            let in_use = |id: &ImageId| this.containers.image_user(id.as_str());
            let known = this.image_ids();
            let report = this.store.prune(&filters, &in_use).map_err(cat)?;
            this.publish_removed(&report.images_deleted, None, &known);
            Ok(report)
        })
        .await
    }

    /// `docker system df`: the layer totals and the top-level images (as `docker images`
    /// lists them), with how many containers use each.
    pub async fn disk_usage(
        self: &Arc<Self>,
    ) -> Result<(berth_image::DiskUsage, Vec<(ImageSummary, usize)>)> {
        let this = self.clone();
        blocking(move || {
            let usage = this.store.disk_usage();
            let list = this.store.list(&ListOptions::default()).map_err(cat)?;
            let counted = list
                .into_iter()
                .map(|i| {
                    let n = this.containers.containers_of_image(&i.id);
                    (i, n)
                })
                .collect();
            Ok((usage, counted))
        })
        .await
    }

    /// Every image id in the store (to tell deleted images from deleted layers).
    fn image_ids(&self) -> BTreeSet<String> {
        let all = ListOptions {
            all: true,
            ..ListOptions::default()
        };
        self.store
            .list(&all)
            .map(|list| list.into_iter().map(|i| i.id).collect())
            .unwrap_or_default()
    }

    /// `untag` and `delete` events (images only: layers go without one, as in dockerd).
    fn publish_removed(
        &self,
        items: &[DeleteItem],
        image: Option<&ImageId>,
        known: &BTreeSet<String>,
    ) {
        for item in items {
            match item {
                DeleteItem::Untagged(name) => {
                    let actor = image.map_or(name.as_str(), ImageId::as_str);
                    self.publish("untag", actor, None);
                }
                DeleteItem::Deleted(id) if known.contains(id) => {
                    self.publish("delete", id, None);
                }
                DeleteItem::Deleted(_) => {}
            }
        }
    }
}
