//! `docker pull`, `docker push` and `docker login` for the images service: the registry
//! client moves the blobs, the image store registers them, and the progress comes out as
//! the JSON messages dockerd streams (the API server only forwards them).

use std::collections::HashMap;
use std::sync::Arc;

use berth_errdefs::{CategorizedError, Category};
use berth_image::{ImageStore, PushCompression, Unpacked};
use berth_reference::{Digest, ImageId, Reference};
use berth_registry_client::manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
};
use berth_registry_client::{
    Client, Credentials, Descriptor, LayerTap, Platform, Progress, PushImage, TAP_CHUNKS, TapChunk,
    TapReader,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

use super::{Images, Result, blocking, cat};

/// A `POST /images/create?fromImage=` request.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `fromImage`: a repository, possibly with `:tag` or `@digest`.
    pub image: String,
    /// `tag`: a tag or a digest (the CLI sends `name@sha256:…` as `tag=sha256:…`).
    pub tag: String,
    /// `platform` (`os/arch[/variant]`), empty for linux/amd64.
    pub platform: String,
    /// The raw `X-Registry-Auth` header.
    pub auth: String,
}

/// A `POST /images/{name}/push?tag=` request.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// The repository (`127.0.0.1:5000/app`), possibly with a tag.
    pub name: String,
    /// `tag`, empty for every tag of the repository (`latest` here).
    pub tag: String,
    /// The raw `X-Registry-Auth` header.
    pub auth: String,
    /// How layers stored uncompressed are compressed (`gzip`, `zstd`); empty for the
    /// daemon's default (berth's own `compression` query parameter).
    pub compression: String,
}

/// Where progress messages go (one JSON object each).
pub type Messages = UnboundedSender<Value>;

/// A pull or push failure. dockerd reports a registry's refusal as a plain error (500), not
/// as 401: on a 401 the CLI would prompt for credentials, which hangs a script.
fn registry_error(e: berth_registry_client::ClientError) -> CategorizedError {
    let mut err = cat(e);
    if err.category == Category::Unauthorized {
        err.category = Category::Unknown;
    }
    err
}

fn credentials(header: &str) -> Result<Option<Credentials>> {
    Credentials::from_header(header).map_err(cat)
}

/// `fromImage` + `tag` as one reference, `latest` when neither names a version.
fn pull_reference(image: &str, tag: &str) -> Result<Reference> {
    let reference = Reference::parse_normalized(image).map_err(cat)?;
    let reference = if tag.is_empty() {
        reference
    } else if tag.contains(':') {
        let digest = Digest::parse(tag).map_err(cat)?;
        reference.name_only().with_digest(digest)
    } else {
        reference.with_tag(tag).map_err(cat)?
    };
    Ok(if reference.digest().is_some() {
        reference
    } else {
        reference.with_default_tag()
    })
}

/// `value` with 4 significant digits and a decimal unit, as Docker's `units.HumanSize`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        3
    } else if value >= 10.0 {
        2
    } else {
        1
    };
    let text = format!("{value:.*}", 4 - digits);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

/// The `progress` text of a message: Docker's 50-column bar and `current/total`.
fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let percent = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    format!(
        "[{}>{}] {:>8}/{}",
        "=".repeat(percent),
        " ".repeat(50 - percent),
        human_size(current),
        human_size(total)
    )
}

fn status(text: impl Into<String>) -> Value {
    json!({ "status": text.into() })
}

fn layer_status(text: &str, id: &str) -> Value {
    json!({ "status": text, "progressDetail": {}, "id": id })
}

fn layer_progress(text: &str, id: &str, current: u64, total: u64) -> Value {
    json!({
        "status": text,
        "progressDetail": { "current": current, "total": total },
        "progress": progress_bar(current, total),
        "id": id,
    })
}

/// The message dockerd sends for a pull event.
fn pull_message(event: &Progress) -> Option<Value> {
    Some(match event {
        Progress::Resolved => return None,
        Progress::AlreadyExists { id } => layer_status("Already exists", id),
        Progress::Waiting { id } => layer_status("Pulling fs layer", id),
        Progress::Downloading { id, current, total } => {
            layer_progress("Downloading", id, *current, *total)
        }
        Progress::Verifying { id } => layer_status("Verifying Checksum", id),
        Progress::DownloadComplete { id } => layer_status("Download complete", id),
        Progress::LayerExists { id } => layer_status("Layer already exists", id),
        Progress::Mounted { id, from } => layer_status(&format!("Mounted from {from}"), id),
        Progress::Pushing { id, current, total } => layer_progress("Pushing", id, *current, *total),
        Progress::Pushed { id } => layer_status("Pushed", id),
    })
}

fn send(out: &Messages, message: Value) {
    // A client that went away does not stop the pull (dockerd finishes it too).
    let _ = out.send(message);
}

impl Images {
    /// `docker pull`: fetches the image into the content store, registers it, tags it and
    /// records its digest. Nothing is sent on `out` before the manifest is resolved, so an
    /// `Err` with nothing sent is the request's status; later errors are for the stream.
    pub async fn pull(self: &Arc<Self>, request: PullRequest, out: Messages) -> Result<()> {
        let named = Reference::parse_normalized(&request.image).map_err(cat)?;
        if request.tag.is_empty() && named.is_name_only() {
            return self.pull_all_tags(named, request, out).await;
        }
        self.pull_one(request, &out, true).await?;
        Ok(())
    }

    /// `docker pull -a`: every tag of the repository, one after the other.
    async fn pull_all_tags(
        self: &Arc<Self>,
        named: Reference,
        request: PullRequest,
        out: Messages,
    ) -> Result<()> {
        let creds = credentials(&request.auth)?;
        let tags = self
            .client()?
            .tags(&named, creds)
            .await
            .map_err(registry_error)?;
        let mut newer = false;
        for tag in tags {
            let one = PullRequest {
                tag,
                ..request.clone()
            };
            newer |= self.pull_one(one, &out, false).await?;
        }
        let shown = named.familiar_name();
        send(
            &out,
            status(if newer {
                format!("Status: Downloaded newer image for {shown}")
            } else {
                format!("Status: Image is up to date for {shown}")
            }),
        );
        Ok(())
    }

    /// One reference; whether it brought a newer image. `pull -a` sends one `Status:`
    /// line for the repository instead of one per tag.
    async fn pull_one(
        self: &Arc<Self>,
        request: PullRequest,
        out: &Messages,
        final_status: bool,
    ) -> Result<bool> {
        let reference = pull_reference(&request.image, &request.tag)?;
        let platform = if request.platform.is_empty() {
            Platform::linux_amd64()
        } else {
            Platform::parse(&request.platform).map_err(cat)?
        };
        let creds = credentials(&request.auth)?;
        let version = match reference.digest() {
            Some(d) => d.to_string(),
            None => reference.tag().unwrap_or("latest").to_owned(),
        };
        let path = reference.path().to_owned();
        let fetched = std::sync::Mutex::new(Vec::new());
        let on_progress = |event: Progress| {
            match &event {
                Progress::Resolved => send(
                    out,
                    json!({ "status": format!("Pulling from {path}"), "id": version }),
                ),
                Progress::Waiting { id } => fetched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(id.clone()),
                _ => {}
            }
            if let Some(m) = pull_message(&event) {
                send(out, m);
            }
        };
        let store = self.store.clone();
        let unpacker = Unpacker::new(store.clone(), out.clone());
        let pulled = self
            .client()?
            .pull_with_tap(
                &reference,
                &platform,
                creds,
                store.content(),
                &on_progress,
                Some(&unpacker),
            )
            .await;
        let unpacked = unpacker.finish().await;
        let pulled = match pulled {
            Ok(p) => p,
            Err(e) => {
                discard_all(&store, unpacked).await;
                return Err(registry_error(e));
            }
        };
        let previous = store.resolve(&reference.familiar_string()).ok();
        let id = self.register_pulled(&reference, &pulled, unpacked).await?;
        for short in fetched.into_inner().unwrap_or_else(|p| p.into_inner()) {
            send(out, layer_status("Pull complete", &short));
        }
        send(out, status(format!("Digest: {}", pulled.digest)));
        let shown = reference.familiar_string();
        let newer = previous.as_ref() != Some(&id);
        if final_status {
            send(
                out,
                status(if newer {
                    format!("Status: Downloaded newer image for {shown}")
                } else {
                    format!("Status: Image is up to date for {shown}")
                }),
            );
        }
        self.publish("pull", &shown, Some(shown.clone()));
        Ok(newer)
    }

    /// Registers a pulled image: layers unpacked, the tag (if the reference had one) and
    /// `name@digest` pointing at it.
    async fn register_pulled(
        self: &Arc<Self>,
        reference: &Reference,
        pulled: &berth_registry_client::Pulled,
        mut unpacked: HashMap<Digest, Unpacked>,
    ) -> Result<ImageId> {
        let store: Arc<ImageStore> = self.store.clone();
        let reference = reference.clone();
        let config = pulled.config.digest.clone();
        let layers: Vec<Digest> = pulled.layers.iter().map(|l| l.digest.clone()).collect();
        let digest = pulled.digest.clone();
        blocking(move || {
            let tags: Vec<Reference> = if reference.digest().is_some() {
                Vec::new()
            } else {
                vec![reference.clone()]
            };
            let registered = store.register_unpacked(&config, &layers, &tags, &mut unpacked);
            for (_, left) in unpacked.drain() {
                store.discard(left);
            }
            let id = registered.map_err(cat)?;
            let by_digest = reference.name_only().with_digest(digest);
            store.add_digest(&by_digest, &id).map_err(cat)?;
            Ok(id)
        })
        .await
    }

    /// `docker push`: uploads the image `name:tag` names (every local tag of the
    /// repository when no tag is given: `push -a`) and streams dockerd's messages, ending
    /// with `aux {Tag, Digest, Size}` for each tag.
    pub async fn push(self: &Arc<Self>, request: PushRequest, out: Messages) -> Result<()> {
        let named = Reference::parse_normalized(&request.name).map_err(cat)?;
        let references = if !request.tag.is_empty() {
            vec![named.with_tag(&request.tag).map_err(cat)?]
        } else if named.tag().is_some() {
            vec![named]
        } else {
            self.local_tags(named).await?
        };
        let creds = credentials(&request.auth)?;
        let compression = if request.compression.is_empty() {
            self.push_compression
        } else {
            PushCompression::parse(&request.compression).ok_or_else(|| {
                CategorizedError::new(
                    Category::InvalidParameter,
                    format!(
                        "invalid compression {:?}: must be gzip or zstd",
                        request.compression
                    ),
                )
            })?
        };
        for (i, reference) in references.into_iter().enumerate() {
            self.push_tag(reference, creds.clone(), &out, i == 0, compression)
                .await?;
        }
        Ok(())
    }

    /// Every local `name:tag` of the repository `named`, sorted.
    async fn local_tags(self: &Arc<Self>, named: Reference) -> Result<Vec<Reference>> {
        let store = self.store.clone();
        blocking(move || {
            let repo = named.familiar_name();
            let filter = json!({ "reference": { repo.clone(): true } }).to_string();
            let options = berth_image::ListOptions {
                all: false,
                filters: berth_reference::Filters::parse(&filter).map_err(cat)?,
            };
            let prefix = format!("{repo}:");
            let mut tags: Vec<Reference> = store
                .list(&options)
                .map_err(cat)?
                .into_iter()
                .flat_map(|image| image.repo_tags.unwrap_or_default())
                .filter(|t| t.starts_with(&prefix))
                .filter_map(|t| Reference::parse_normalized(&t).ok())
                .collect();
            tags.sort_by_key(Reference::to_string);
            tags.dedup();
            if tags.is_empty() {
                return Err(CategorizedError::new(
                    Category::NotFound,
                    format!("An image does not exist locally with the tag: {repo}"),
                ));
            }
            Ok(tags)
        })
        .await
    }

    /// Pushes one tag; the first of a `push -a` also says which repository it is.
    async fn push_tag(
        self: &Arc<Self>,
        reference: Reference,
        creds: Option<Credentials>,
        out: &Messages,
        first: bool,
        compression: PushCompression,
    ) -> Result<()> {
        let shown = reference.familiar_string();
        let store = self.store.clone();
        let lookup = shown.clone();
        let (dist, repo_digests) = blocking(move || {
            let missing = |e| match e {
                berth_image::ImageError::NoSuchImage { .. } => CategorizedError::new(
                    Category::NotFound,
                    format!("An image does not exist locally with the tag: {lookup}"),
                ),
                e => cat(e),
            };
            let mut dist = store.distribution(&lookup).map_err(missing)?;
            compress_plain_layers(&store, &mut dist, compression)?;
            let digests = store
                .inspect(dist.id.as_str())
                .map(|i| i.repo_digests)
                .unwrap_or_default();
            Ok((dist, digests))
        })
        .await?;
        if first {
            send(
                out,
                status(format!(
                    "The push refers to repository [{}]",
                    reference.clone().name_only().familiar_name()
                )),
            );
        }
        let image = push_image(&dist, mount_sources(&reference, &repo_digests));
        for (_, id) in image.layers.iter().rev() {
            send(out, layer_status("Preparing", id));
        }
        let on_progress = |event: Progress| {
            if let Some(m) = pull_message(&event) {
                send(out, m);
            }
        };
        let pushed = self
            .client()?
            .push(
                &reference,
                creds,
                self.store.content(),
                &image,
                &on_progress,
            )
            .await
            .map_err(registry_error)?;
        let tag = reference.tag().unwrap_or("latest").to_owned();
        send(
            out,
            status(format!(
                "{tag}: digest: {} size: {}",
                pushed.digest, pushed.size
            )),
        );
        send(
            out,
            json!({
                "progressDetail": {},
                "aux": { "Tag": tag, "Digest": pushed.digest.to_string(), "Size": pushed.size },
            }),
        );
        let store = self.store.clone();
        let by_digest = reference.name_only().with_digest(pushed.digest);
        let id = dist.id.clone();
        blocking(move || store.add_digest(&by_digest, &id).map_err(cat)).await?;
        self.publish("push", &shown, Some(shown.clone()));
        Ok(())
    }

    /// `docker login`: checks the credentials of a `POST /auth` body against the registry.
    pub async fn login(self: &Arc<Self>, body: Vec<u8>) -> Result<()> {
        let server = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["serveraddress"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let creds = Credentials::from_json(&body).map_err(cat)?.ok_or_else(|| {
            CategorizedError::new(Category::InvalidParameter, "no username given")
        })?;
        self.client()?.login(&server, creds).await.map_err(cat)
    }

    fn client(&self) -> Result<Client> {
        Client::new(self.registry.clone()).map_err(cat)
    }
}

/// Unpacks each layer as it downloads (the pull's [`LayerTap`]), one blocking task per
/// layer, each into its own snapshot; the image store commits them once verified.
struct Unpacker {
    store: Arc<ImageStore>,
    out: Messages,
    jobs: std::sync::Mutex<Vec<(Digest, JoinHandle<berth_image::Result<Unpacked>>)>>,
}

impl Unpacker {
    fn new(store: Arc<ImageStore>, out: Messages) -> Self {
        Unpacker {
            store,
            out,
            jobs: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Waits for every unpack; the layers that unpacked whole, by blob digest. One that
    /// failed is unpacked again from its stored blob by the registration, which reports
    /// the error if it was the layer's fault.
    async fn finish(self) -> HashMap<Digest, Unpacked> {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|p| p.into_inner()));
        let mut out = HashMap::new();
        for (blob, job) in jobs {
            match job.await {
                Ok(Ok(unpacked)) => {
                    tracing::debug!("layer {blob} unpacked while it downloaded");
                    if let Some(twice) = out.insert(blob, unpacked) {
                        self.store.discard(twice);
                    }
                }
                Ok(Err(e)) => tracing::debug!("unpacking {blob} while pulling: {e}"),
                Err(e) => tracing::warn!("unpacking {blob} while pulling: {e}"),
            }
        }
        out
    }
}

impl LayerTap for Unpacker {
    fn open(&self, layer: &Descriptor) -> Option<mpsc::Sender<TapChunk>> {
        let (tx, rx) = mpsc::channel(TAP_CHUNKS);
        let store = self.store.clone();
        let out = self.out.clone();
        let (id, total) = (layer.digest.hex()[..12].to_owned(), layer.size);
        let job = tokio::task::spawn_blocking(move || {
            let mut input = std::io::BufReader::with_capacity(1 << 20, TapReader::new(rx));
            let unpacked = store.unpack_detached(&mut input)?;
            // The tap ended, so "Download complete" went out: the layer's files are in
            // place, as dockerd's last "Extracting" says before "Pull complete".
            send(&out, layer_progress("Extracting", &id, total, total));
            Ok(unpacked)
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((layer.digest.clone(), job));
        Some(tx)
    }
}

/// Throws away layers unpacked for a pull that failed.
async fn discard_all(store: &Arc<ImageStore>, unpacked: HashMap<Digest, Unpacked>) {
    let store = store.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (_, u) in unpacked {
            store.discard(u);
        }
    })
    .await;
}

/// Descriptors for the stored blobs: Docker's media types for gzip layers (so the manifest
/// is the one `docker push` makes), OCI's for the others.
fn push_image(dist: &berth_image::Distribution, mount_from: Vec<String>) -> PushImage {
    let all_gzip = dist.layers.iter().all(|l| l.compression == "gzip");
    let layers = dist
        .layers
        .iter()
        .map(|l| {
            let kind = match (l.compression.as_str(), all_gzip) {
                ("gzip", true) => DOCKER_LAYER_GZIP,
                ("gzip", false) => OCI_LAYER_GZIP,
                ("zstd", _) => OCI_LAYER_ZSTD,
                _ => OCI_LAYER,
            };
            let descriptor = Descriptor {
                media_type: kind.to_owned(),
                size: l.size,
                digest: l.blob.clone(),
                platform: None,
            };
            (descriptor, l.diff_id.hex()[..12].to_owned())
        })
        .collect();
    PushImage {
        config: Descriptor {
            media_type: if all_gzip { DOCKER_CONFIG } else { OCI_CONFIG }.to_owned(),
            size: dist.config_size,
            digest: dist.id.digest().clone(),
            platform: None,
        },
        layers,
        mount_from,
    }
}

/// Replaces the uncompressed layers (those `docker load`, builds and commits stored as
/// they came) by compressed copies (gzip as dockerd pushes them, or zstd); one thread per
/// layer.
fn compress_plain_layers(
    store: &ImageStore,
    dist: &mut berth_image::Distribution,
    kind: PushCompression,
) -> Result<()> {
    std::thread::scope(|scope| {
        let jobs: Vec<_> = dist
            .layers
            .iter_mut()
            .filter(|l| l.compression == "none")
            .map(|layer| {
                scope.spawn(move || -> Result<()> {
                    let (blob, size) = store.compress_blob(&layer.blob, kind).map_err(cat)?;
                    layer.blob = blob;
                    layer.size = size;
                    layer.compression = kind.name().to_owned();
                    Ok(())
                })
            })
            .collect();
        for job in jobs {
            job.join().map_err(|_| {
                CategorizedError::new(Category::System, "layer compression panicked")
            })??;
        }
        Ok(())
    })
}

/// Repositories of `target`'s registry the image was pulled from or pushed to (its
/// `RepoDigests`), where the registry can mount its blobs from.
fn mount_sources(target: &Reference, repo_digests: &[String]) -> Vec<String> {
    let mut out: Vec<String> = repo_digests
        .iter()
        .filter_map(|d| Reference::parse_normalized(d).ok())
        .filter(|r| r.domain() == target.domain() && r.path() != target.path())
        .map(|r| r.path().to_owned())
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_read_as_dockers() {
        assert_eq!(human_size(115), "115B");
        assert_eq!(human_size(36352), "36.35kB");
        assert_eq!(human_size(1982347), "1.982MB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(
            progress_bar(115, 115),
            format!("[{}>]     115B/115B", "=".repeat(50))
        );
        assert_eq!(
            progress_bar(36352, 1982347),
            format!("[>{}]  36.35kB/1.982MB", " ".repeat(50))
        );
    }

    #[test]
    fn pull_references_combine_from_image_and_tag() {
        let r = |i, t| pull_reference(i, t).map(|r| r.to_string()).ok();
        assert_eq!(
            r("busybox", ""),
            Some("docker.io/library/busybox:latest".into())
        );
        assert_eq!(
            r("127.0.0.1:5000/a/b", "1"),
            Some("127.0.0.1:5000/a/b:1".into())
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(r("x", &d), Some(format!("docker.io/library/x@{d}")));
        assert_eq!(r("x", "sha256:short"), None);
        assert_eq!(r("UPPER", ""), None);
    }
}
