//! The client: resolve a reference to an image manifest, fetch its blobs into the content
//! store, push blobs and a manifest, check credentials.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_content::{ContentError, ContentStore};
use berth_reference::{Digest, Reference};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::auth::Credentials;
use crate::error::{ClientError, Result};
use crate::http::{Repo, api_host, is_loopback, read_limited};
use crate::manifest::{self, Descriptor, Parsed, Platform};
use crate::tap::{LayerTap, TapChunk};
use tokio::sync::mpsc::Sender;

/// Docker's limit for a manifest body (distribution's `maxManifestBodySize`).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;
/// Largest image config fetched (the image store reads it whole; containerd's limit).
pub const MAX_CONFIG_SIZE: u64 = 20 << 20;
/// How often one blob download is attempted (resuming with `Range`) before giving up.
const BLOB_ATTEMPTS: u32 = 5;
/// How long to wait for another pull that holds the same blob's ingest.
const SHARED_WAIT: Duration = Duration::from_secs(600);
/// Most pages of a tag list followed.
const MAX_TAG_PAGES: usize = 100;

/// How the client behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Registries (`host[:port]`) that may be reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once (dockerd's `max-concurrent-downloads`, default 3).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once (dockerd's `max-concurrent-uploads`, default 5).
    pub max_concurrent_uploads: usize,
    /// Docker's `certs.d`: `<dir>/<host[:port]>/*.crt` are extra CA roots, and a registry
    /// with such a directory is always reached over HTTPS, even on loopback.
    pub certs_dir: Option<PathBuf>,
    /// dockerd's `registry-mirrors`: base URLs tried, in order, for Docker Hub images.
    pub registry_mirrors: Vec<String>,
    /// Blobs larger than this are pushed in `PATCH` chunks of this size (with
    /// `Content-Range`) instead of one `PUT`; a registry's `OCI-Chunk-Min-Length` raises it.
    pub push_chunk_size: u64,
}

/// Default [`Options::push_chunk_size`]: one request for all but very large layers.
pub const DEFAULT_PUSH_CHUNK_SIZE: u64 = 512 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure_registries: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            certs_dir: None,
            registry_mirrors: Vec::new(),
            push_chunk_size: DEFAULT_PUSH_CHUNK_SIZE,
        }
    }
}

/// What a pull or push reports as it goes; `id` is the short (12 hex) blob id Docker shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The manifest is resolved; layers follow.
    Resolved,
    /// The blob is already in the content store.
    AlreadyExists { id: String },
    /// The blob will be downloaded.
    Waiting { id: String },
    /// Bytes received so far.
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    /// All bytes are in; the digest is being checked.
    Verifying { id: String },
    /// The blob is verified and stored.
    DownloadComplete { id: String },
    /// The registry already has the blob (push).
    LayerExists { id: String },
    /// The registry linked the blob from another repository (push).
    Mounted { id: String, from: String },
    /// Bytes sent so far (push).
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    /// The blob was uploaded (push).
    Pushed { id: String },
}

/// A callback that receives [`Progress`]; called from the pulling task.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// The result of a pull: everything is in the content store, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The digest of the manifest the reference named (the index's, for a multi-platform
    /// image): what `RepoDigests` records.
    pub digest: Digest,
    /// The image manifest's config blob.
    pub config: Descriptor,
    /// Its layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
}

/// An image to push: blobs already in the content store. `id`s name the layers in progress.
#[derive(Debug, Clone)]
pub struct PushImage {
    /// The config blob.
    pub config: Descriptor,
    /// The layers, bottom first, each with the id progress reports it by.
    pub layers: Vec<(Descriptor, String)>,
    /// Repositories (paths) of the same registry that already hold this image's blobs:
    /// missing blobs are mounted from the first that has them instead of uploaded.
    pub mount_from: Vec<String>,
}

/// What the registry now holds under the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
}

/// A registry client; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    options: Options,
    /// Registries with a `certs.d` directory.
    tls_hosts: BTreeSet<String>,
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

fn to_content(d: &Digest) -> Result<berth_content::Digest> {
    Ok(berth_content::Digest::parse(d.as_str()).map_err(ContentError::from)?)
}

impl Client {
    /// A client with its own connection pool.
    pub fn new(options: Options) -> Result<Client> {
        // reqwest is built without a default crypto provider; another part of the process
        // may have installed one already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30));
        let mut tls_hosts = BTreeSet::new();
        if let Some(dir) = &options.certs_dir {
            for (host, pem) in read_certs_dir(dir)? {
                let bad = |e: String| ClientError::Io {
                    op: format!("read CA certificates for {host}"),
                    source: std::io::Error::other(e),
                };
                let certs =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
                if certs.is_empty() {
                    return Err(bad("no PEM certificate in the file".to_owned()));
                }
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
                tls_hosts.insert(host);
            }
        }
        let http = builder.build().map_err(|source| ClientError::Http {
            method: "",
            url: String::new(),
            source,
        })?;
        Ok(Client {
            http,
            options,
            tls_hosts,
        })
    }

    /// `http://` for loopback and insecure registries without certificates, `https://`
    /// for the others.
    fn base_url(&self, domain: &str) -> String {
        let host = api_host(domain);
        let insecure =
            is_loopback(host) || self.options.insecure_registries.iter().any(|r| r == host);
        let scheme = if insecure && !self.tls_hosts.contains(host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    fn repo(&self, reference: &Reference, creds: Option<Credentials>, push: bool) -> Repo<'_> {
        Repo::new(
            &self.http,
            self.base_url(reference.domain()),
            reference.path().to_owned(),
            creds,
            push,
        )
    }

    /// Pulls `reference` (a tag, `latest` by default, or a digest) for `platform` into
    /// `store`. Blobs already stored are not fetched again; nothing unverified becomes
    /// visible.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        creds: Option<Credentials>,
        store: &ContentStore,
        progress: ProgressFn<'_>,
    ) -> Result<Pulled> {
        self.pull_with_tap(reference, platform, creds, store, progress, None)
            .await
    }

    /// [`Client::pull`], handing each layer downloaded from its first byte to `tap` too.
    pub async fn pull_with_tap(
        &self,
        reference: &Reference,
        platform: &Platform,
        creds: Option<Credentials>,
        store: &ContentStore,
        progress: ProgressFn<'_>,
        tap: Option<&dyn LayerTap>,
    ) -> Result<Pulled> {
        let (repo, (config, layers, digest)) = self
            .resolve_with_mirrors(reference, platform, creds)
            .await?;
        if config.size > MAX_CONFIG_SIZE {
            return Err(ClientError::TooLarge {
                what: format!("image config {}", config.digest),
                limit: MAX_CONFIG_SIZE,
            });
        }
        progress(Progress::Resolved);
        self.fetch_blob(&repo, &config, store, &|_| {}, None)
            .await?;
        // Owned items: a closure taking `&Descriptor` makes the future not `Send` for
        // every lifetime (rust-lang/rust#102211).
        let repo = &repo;
        let fetches = layers.clone().into_iter().map(|layer| async move {
            let id = short(&layer.digest);
            if store.exists(&to_content(&layer.digest)?) {
                progress(Progress::AlreadyExists { id });
                return Ok(());
            }
            progress(Progress::Waiting { id });
            self.fetch_blob(repo, &layer, store, progress, tap).await
        });
        let results: Vec<Result<()>> = futures_util::stream::iter(fetches)
            .buffered(self.options.max_concurrent_downloads.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(Pulled {
            digest,
            config,
            layers,
        })
    }

    /// Resolves `reference` on the first of the registry mirrors that has it (Docker Hub
    /// names only), else on its registry; the blobs then come from the same place.
    async fn resolve_with_mirrors(
        &self,
        reference: &Reference,
        platform: &Platform,
        creds: Option<Credentials>,
    ) -> Result<(Repo<'_>, Resolved)> {
        if api_host(reference.domain()) == api_host("docker.io") {
            for mirror in &self.options.registry_mirrors {
                let base = mirror.trim_end_matches('/').to_owned();
                // Mirrors are anonymous: Docker Hub credentials are not theirs to see.
                let repo = Repo::new(&self.http, base, reference.path().to_owned(), None, false);
                match self.resolve(&repo, reference, platform).await {
                    Ok(resolved) => return Ok((repo, resolved)),
                    Err(e) => tracing::info!("mirror {mirror}: {e}; trying the next source"),
                }
            }
        }
        let repo = self.repo(reference, creds, false);
        let resolved = self.resolve(&repo, reference, platform).await?;
        Ok((repo, resolved))
    }

    /// The config and layers of the image manifest `reference` names for `platform`, and
    /// the digest of the manifest the reference named.
    async fn resolve(
        &self,
        repo: &Repo<'_>,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Resolved> {
        let name = reference.clone().with_default_tag();
        let tag_or_digest = match name.digest() {
            Some(d) => d.as_str().to_owned(),
            None => name.tag().unwrap_or("latest").to_owned(),
        };
        let shown = name.to_string();
        let (bytes, kind, digest) = self
            .fetch_manifest(repo, &tag_or_digest, name.digest(), &shown)
            .await?;
        match manifest::parse(&bytes, &kind, &shown)? {
            Parsed::Image { config, layers } => Ok((config, layers, digest)),
            Parsed::Index(entries) => {
                let chosen = manifest::select(&entries, platform)?;
                let (bytes, kind, _) = self
                    .fetch_manifest(repo, chosen.digest.as_str(), Some(&chosen.digest), &shown)
                    .await?;
                match manifest::parse(&bytes, &kind, &shown)? {
                    Parsed::Image { config, layers } => Ok((config, layers, digest)),
                    Parsed::Index(_) => Err(ClientError::InvalidManifest {
                        reference: shown,
                        reason: "an index entry is itself an index".to_owned(),
                    }),
                }
            }
        }
    }

    /// GETs a manifest, bounded in size and checked against `expected` when the reference
    /// was a digest. Returns its bytes, media type and digest.
    async fn fetch_manifest(
        &self,
        repo: &Repo<'_>,
        tag_or_digest: &str,
        expected: Option<&Digest>,
        shown: &str,
    ) -> Result<(Vec<u8>, String, Digest)> {
        let url = repo.url(&format!("manifests/{tag_or_digest}"));
        let response = repo
            .send("GET", &url, |h| {
                h.get(&url).header(ACCEPT, manifest::ACCEPT)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            let detail = crate::http::error_text(response).await;
            return Err(ClientError::ManifestUnknown {
                reference: shown.to_owned(),
                detail,
            });
        }
        if !response.status().is_success() {
            return Err(repo.status_error("GET", &url, response).await);
        }
        let kind = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let what = format!("manifest {shown}");
        let bytes = read_limited(response, MAX_MANIFEST_SIZE, &what)
            .await
            .map_err(|e| match e {
                crate::http::ReadError::Http(source) => ClientError::Http {
                    method: "GET",
                    url: url.clone(),
                    source,
                },
                crate::http::ReadError::Client(e) => e,
            })?;
        let digest = Digest::sha256_of(&bytes);
        // By tag, the registry's Docker-Content-Digest is the only claim to check against.
        if let Some(want) = expected.or(announced.as_ref()).filter(|w| **w != digest) {
            return Err(ClientError::InvalidManifest {
                reference: shown.to_owned(),
                reason: format!("content digest {digest} does not match {want}"),
            });
        }
        Ok((bytes, kind, digest))
    }

    /// Downloads one blob into the store through a resumable ingest named after its
    /// digest: a second pull of the same blob waits for the first, a broken connection is
    /// resumed with `Range`, and the blob only appears once its digest checked out.
    async fn fetch_blob(
        &self,
        repo: &Repo<'_>,
        desc: &Descriptor,
        store: &ContentStore,
        progress: ProgressFn<'_>,
        tap: Option<&dyn LayerTap>,
    ) -> Result<()> {
        let digest = to_content(&desc.digest)?;
        let id = short(&desc.digest);
        let Some(mut writer) = self.open_ingest(store, &digest, desc.size).await? else {
            progress(Progress::DownloadComplete { id });
            return Ok(());
        };
        // A resumed ingest's first bytes were never seen by a tap.
        let mut tap = tap
            .filter(|_| writer.offset() == 0)
            .and_then(|t| t.open(desc));
        let url = repo.url(&format!("blobs/{}", desc.digest));
        if writer.offset() > 0 {
            tracing::info!(
                "blob {digest}: resuming a partial download at byte {}",
                writer.offset()
            );
        }
        let mut last = String::new();
        let mut attempts = 0;
        while writer.offset() < desc.size && attempts < BLOB_ATTEMPTS {
            attempts += 1;
            match self
                .download(repo, &url, &mut writer, &mut tap, desc.size, &id, progress)
                .await
            {
                Ok(()) => {}
                Err(Interrupted::Retry(why)) => {
                    tracing::debug!("blob {digest}: {why}; resuming at {}", writer.offset());
                    last = why;
                }
                Err(Interrupted::Fatal(e)) => return Err(e),
            }
        }
        if writer.offset() < desc.size {
            return Err(ClientError::Incomplete {
                digest: desc.digest.to_string(),
                attempts,
                last,
            });
        }
        progress(Progress::Verifying { id: id.clone() });
        let committed = tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(|e| ClientError::Io {
                op: "commit blob".to_owned(),
                source: std::io::Error::other(e),
            })?;
        match committed {
            Ok(_) => {}
            Err(ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. }) => {
                return Err(ClientError::Verification(desc.digest.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        // Before the tap's end, so that what the tap reports after it (extraction) comes
        // after "Download complete".
        progress(Progress::DownloadComplete { id });
        if let Some(tap) = tap {
            // A tap gone already has nothing to be told.
            let _ = tap.send(TapChunk::End).await;
        }
        Ok(())
    }

    /// The ingest writer for `digest`, or `None` once the blob is stored (possibly by a
    /// concurrent pull that held the ingest while we waited).
    async fn open_ingest(
        &self,
        store: &ContentStore,
        digest: &berth_content::Digest,
        size: u64,
    ) -> Result<Option<berth_content::Writer>> {
        let started = Instant::now();
        let ingest_ref = format!("pull-{digest}");
        loop {
            if store.exists(digest) {
                return Ok(None);
            }
            match store.writer_for_ref(&ingest_ref, Some(digest.clone()), Some(size)) {
                Ok(w) => return Ok(Some(w)),
                Err(ContentError::IngestLocked(_)) if started.elapsed() < SHARED_WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One GET of a blob from the writer's offset on; `tap` gets the same bytes.
    #[allow(clippy::too_many_arguments)]
    async fn download(
        &self,
        repo: &Repo<'_>,
        url: &str,
        writer: &mut berth_content::Writer,
        tap: &mut Option<Sender<TapChunk>>,
        total: u64,
        id: &str,
        progress: ProgressFn<'_>,
    ) -> std::result::Result<(), Interrupted> {
        let offset = writer.offset();
        let mut response = repo
            .send("GET", url, |h| {
                let r = h.get(url);
                if offset > 0 {
                    r.header(RANGE, format!("bytes={offset}-"))
                } else {
                    r
                }
            })
            .await
            .map_err(retry_if_http)?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT if range_start(&response) == Some(offset) => {}
            StatusCode::OK => {
                // The server ignored the Range: start over, without the tap, which has
                // the first bytes already.
                if offset > 0 {
                    *tap = None;
                }
                writer.reset().map_err(|e| Interrupted::Fatal(e.into()))?;
            }
            s if s.is_server_error() => return Err(Interrupted::Retry(format!("status {s}"))),
            _ => {
                return Err(Interrupted::Fatal(
                    repo.status_error("GET", url, response).await,
                ));
            }
        }
        let mut last_report = Instant::now();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(Interrupted::Retry(e.to_string())),
            };
            if writer.offset() + chunk.len() as u64 > total {
                return Err(Interrupted::Fatal(ClientError::Verification(
                    url.rsplit('/').next().unwrap_or(url).to_owned(),
                )));
            }
            writer.write_all(&chunk).map_err(|e| {
                Interrupted::Fatal(ClientError::Io {
                    op: format!("write blob {id}"),
                    source: e,
                })
            })?;
            if let Some(tx) = tap.as_ref()
                && tx.send(TapChunk::Data(chunk)).await.is_err()
            {
                // The consumer gave up (it failed); the download goes on without it.
                *tap = None;
            }
            if last_report.elapsed() > Duration::from_millis(100) || writer.offset() == total {
                last_report = Instant::now();
                progress(Progress::Downloading {
                    id: id.to_owned(),
                    current: writer.offset(),
                    total,
                });
            }
        }
        Ok(())
    }

    /// Uploads `image`'s blobs that the registry lacks, then its manifest under `tag`.
    pub async fn push(
        &self,
        reference: &Reference,
        creds: Option<Credentials>,
        store: &ContentStore,
        image: &PushImage,
        progress: ProgressFn<'_>,
    ) -> Result<Pushed> {
        let mut repo = self.repo(reference, creds, true);
        repo.extra_scopes = image
            .mount_from
            .iter()
            .map(|from| format!("repository:{from}:pull"))
            .collect();
        let repo = &repo;
        let mount_from = &image.mount_from;
        let uploads = image
            .layers
            .clone()
            .into_iter()
            .map(|(desc, id)| async move {
                self.push_blob(repo, &desc, &id, mount_from, store, progress)
                    .await
            });
        let results: Vec<Result<()>> = futures_util::stream::iter(uploads)
            .buffered(self.options.max_concurrent_uploads.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        self.push_blob(repo, &image.config, "config", mount_from, store, &|_| {})
            .await?;
        let layers: Vec<Descriptor> = image.layers.iter().map(|(d, _)| d.clone()).collect();
        let body = manifest::docker_manifest(&image.config, &layers);
        let tag = reference.tag().unwrap_or("latest");
        self.put_manifest(repo, tag, &body).await
    }

    async fn put_manifest(&self, repo: &Repo<'_>, tag: &str, body: &[u8]) -> Result<Pushed> {
        let kind = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_else(|| manifest::DOCKER_MANIFEST.to_owned());
        let url = repo.url(&format!("manifests/{tag}"));
        let response = repo
            .send("PUT", &url, |h| {
                h.put(&url)
                    .header(CONTENT_TYPE, kind.as_str())
                    .body(body.to_vec())
            })
            .await?;
        if response.status() != StatusCode::CREATED && !response.status().is_success() {
            return Err(repo.status_error("PUT", &url, response).await);
        }
        Ok(Pushed {
            digest: Digest::sha256_of(body),
            size: body.len() as u64,
        })
    }

    /// HEAD, then (if missing) a monolithic upload: `POST` a session, `PUT ?digest=` the
    /// bytes streamed from the content store.
    async fn push_blob(
        &self,
        repo: &Repo<'_>,
        desc: &Descriptor,
        id: &str,
        mount_from: &[String],
        store: &ContentStore,
        progress: ProgressFn<'_>,
    ) -> Result<()> {
        let url = repo.url(&format!("blobs/{}", desc.digest));
        let head = repo.send("HEAD", &url, |h| h.head(&url)).await?;
        if head.status().is_success() {
            progress(Progress::LayerExists { id: id.to_owned() });
            return Ok(());
        }
        for from in mount_from.iter().filter(|f| **f != repo.path) {
            if self.mount(repo, desc, from).await? {
                progress(Progress::Mounted {
                    id: id.to_owned(),
                    from: from.clone(),
                });
                return Ok(());
            }
        }
        let start = repo.url("blobs/uploads/");
        let response = repo
            .send("POST", &start, |h| h.post(&start).header(CONTENT_LENGTH, 0))
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(repo.status_error("POST", &start, response).await);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::AuthProtocol(format!("POST {start}: no Location")))?;
        let min_chunk = response
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let location = location.to_owned();
        let path = store.blob_path(&to_content(&desc.digest)?);
        progress(Progress::Pushing {
            id: id.to_owned(),
            current: 0,
            total: desc.size,
        });
        let sent = Arc::new(AtomicU64::new(0));
        let chunk = self.options.push_chunk_size.max(min_chunk).max(1);
        let upload = async {
            if desc.size > chunk {
                self.upload_chunks(repo, &location, desc, &path, chunk, &sent)
                    .await
            } else {
                self.upload_whole(repo, &location, desc, &path, &sent).await
            }
        };
        tokio::pin!(upload);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                done = &mut upload => break done?,
                _ = tick.tick() => progress(Progress::Pushing {
                    id: id.to_owned(),
                    current: sent.load(Ordering::Relaxed),
                    total: desc.size,
                }),
            }
        }
        progress(Progress::Pushing {
            id: id.to_owned(),
            current: desc.size,
            total: desc.size,
        });
        progress(Progress::Pushed { id: id.to_owned() });
        Ok(())
    }

    /// A monolithic upload: one `PUT ?digest=` with the whole blob.
    async fn upload_whole(
        &self,
        repo: &Repo<'_>,
        location: &str,
        desc: &Descriptor,
        path: &Path,
        sent: &Arc<AtomicU64>,
    ) -> Result<()> {
        let put_url = upload_url(&repo.base, location, &desc.digest)?;
        // A fresh body per attempt: `send` may need to repeat the request after a 401.
        let response = repo
            .send("PUT", &put_url, |h| {
                sent.store(0, Ordering::Relaxed);
                h.put(&put_url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, desc.size)
                    .body(file_body(path.to_owned(), 0, desc.size, sent.clone()))
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(repo.status_error("PUT", &put_url, response).await);
        }
        Ok(())
    }

    /// A chunked upload: `PATCH`es of `chunk` bytes with `Content-Range`, each to the
    /// `Location` the previous answer gave, then an empty `PUT ?digest=`.
    async fn upload_chunks(
        &self,
        repo: &Repo<'_>,
        location: &str,
        desc: &Descriptor,
        path: &Path,
        chunk: u64,
        sent: &Arc<AtomicU64>,
    ) -> Result<()> {
        let mut location = location.to_owned();
        let mut offset = 0;
        let mut chunks = 0u64;
        while offset < desc.size {
            let len = chunk.min(desc.size - offset);
            let url = absolute_url(&repo.base, &location)?;
            let response = repo
                .send("PATCH", &url, |h| {
                    sent.store(offset, Ordering::Relaxed);
                    h.patch(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{offset}-{}", offset + len - 1))
                        .header(CONTENT_LENGTH, len)
                        .body(file_body(path.to_owned(), offset, len, sent.clone()))
                })
                .await?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(repo.status_error("PATCH", &url, response).await);
            }
            location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| ClientError::AuthProtocol(format!("PATCH {url}: no Location")))?
                .to_owned();
            offset += len;
            chunks += 1;
        }
        let put_url = upload_url(&repo.base, &location, &desc.digest)?;
        let response = repo
            .send("PUT", &put_url, |h| {
                h.put(&put_url).header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(repo.status_error("PUT", &put_url, response).await);
        }
        tracing::debug!("blob {}: uploaded in {chunks} chunks", desc.digest);
        Ok(())
    }

    /// Asks the registry to link `desc` from the repository `from` (`POST
    /// ?mount=&from=`): `201` means done; anything else (`202` opens an upload session,
    /// which is left to expire) means upload it.
    async fn mount(&self, repo: &Repo<'_>, desc: &Descriptor, from: &str) -> Result<bool> {
        let url = repo.url("blobs/uploads/");
        let query = [("mount", desc.digest.as_str()), ("from", from)];
        let response = repo
            .send("POST", &url, |h| {
                h.post(&url).query(&query).header(CONTENT_LENGTH, 0)
            })
            .await?;
        Ok(response.status() == StatusCode::CREATED)
    }

    /// Every tag of the repository `reference` names (`GET /v2/<name>/tags/list`,
    /// following `Link: <…>; rel="next"` pages), for `docker pull -a`.
    pub async fn tags(
        &self,
        reference: &Reference,
        creds: Option<Credentials>,
    ) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let repo = self.repo(reference, creds, false);
        let mut url = repo.url("tags/list");
        let mut out = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let response = repo.send("GET", &url, |h| h.get(&url)).await?;
            if !response.status().is_success() {
                return Err(repo.status_error("GET", &url, response).await);
            }
            let next = next_link(&response);
            let body = read_limited(response, MAX_MANIFEST_SIZE, "tag list")
                .await
                .map_err(|e| match e {
                    crate::http::ReadError::Http(source) => ClientError::Http {
                        method: "GET",
                        url: url.clone(),
                        source,
                    },
                    crate::http::ReadError::Client(e) => e,
                })?;
            let list: TagList =
                serde_json::from_slice(&body).map_err(|e| ClientError::InvalidManifest {
                    reference: reference.to_string(),
                    reason: format!("tag list: {e}"),
                })?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                Some(path) if path.starts_with('/') => url = format!("{}{path}", repo.base),
                Some(absolute) => url = absolute,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// `docker login`: checks `creds` against the registry at `server` (`host[:port]`, a
    /// URL, or Docker Hub's index address) with `GET /v2/`, answering its challenge.
    pub async fn login(&self, server: &str, creds: Credentials) -> Result<()> {
        let host = login_host(server);
        let base = self.base_url(&host);
        let url = format!("{base}/v2/");
        let repo = Repo::new(&self.http, base, String::new(), Some(creds), false);
        let response = match repo.send("GET", &url, |h| h.get(&url)).await {
            Ok(r) => r,
            Err(ClientError::Unauthorized(_)) => {
                return Err(ClientError::Unauthorized(format!(
                    "login attempt to {url} failed with status: 401 Unauthorized"
                )));
            }
            Err(e) => return Err(e),
        };
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        Err(ClientError::Unauthorized(format!(
            "login attempt to {url} failed with status: {status}"
        )))
    }
}

/// The target of a `Link: <url>; rel="next"` header.
fn next_link(response: &reqwest::Response) -> Option<String> {
    parse_next_link(
        response
            .headers()
            .get(reqwest::header::LINK)?
            .to_str()
            .ok()?,
    )
}

fn parse_next_link(value: &str) -> Option<String> {
    let (target, params) = value.split_once(';')?;
    if !params.replace(' ', "").contains("rel=\"next\"") {
        return None;
    }
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    Some(target.to_owned())
}

/// `(host, PEM)` for every `<dir>/<host>/*.crt`; a missing `dir` has none.
fn read_certs_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let io = |op: String| move |source| ClientError::Io { op, source };
    let hosts = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("read {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for host in hosts {
        let host = host.map_err(io(format!("read {}", dir.display())))?;
        let Ok(name) = host.file_name().into_string() else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(host.path()) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "crt") {
                let pem = std::fs::read(&path).map_err(io(format!("read {}", path.display())))?;
                out.push((name.clone(), pem));
            }
        }
    }
    Ok(out)
}

/// An image manifest's config and layers, and the digest of what the reference named.
type Resolved = (Descriptor, Vec<Descriptor>, Digest);

enum Interrupted {
    /// The connection broke or the server stumbled: try again from the current offset.
    Retry(String),
    Fatal(ClientError),
}

fn retry_if_http(e: ClientError) -> Interrupted {
    match e {
        ClientError::Http { source, .. } => Interrupted::Retry(source.to_string()),
        e => Interrupted::Fatal(e),
    }
}

/// The first byte a `206` covers (`Content-Range: bytes 100-199/200`).
fn range_start(response: &reqwest::Response) -> Option<u64> {
    parse_range_start(response.headers().get(CONTENT_RANGE)?.to_str().ok()?)
}

fn parse_range_start(value: &str) -> Option<u64> {
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// `len` bytes of the file at `path` from `start` on, streamed as a request body in 1 MiB
/// chunks, counting into `sent`: a layer is never held in memory whole.
fn file_body(path: PathBuf, start: u64, len: u64, sent: Arc<AtomicU64>) -> reqwest::Body {
    let chunks = futures_util::stream::try_unfold(
        (path, None::<tokio::fs::File>, len),
        move |(path, file, left)| async move {
            if left == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            let mut file = match file {
                Some(f) => f,
                None => {
                    let mut f = tokio::fs::File::open(&path).await?;
                    f.seek(std::io::SeekFrom::Start(start)).await?;
                    f
                }
            };
            let want = usize::try_from(left.min(1 << 20)).unwrap_or(1 << 20);
            let mut buf = vec![0u8; want];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} is shorter than expected", path.display()),
                ));
            }
            buf.truncate(n);
            Ok(Some((
                bytes::Bytes::from(buf),
                (path, Some(file), left - n as u64),
            )))
        },
    );
    reqwest::Body::wrap_stream(chunks.map_ok(move |chunk| {
        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        chunk
    }))
}

/// A `Location` (absolute or relative to the registry) as an absolute URL.
fn absolute_url(base: &str, location: &str) -> Result<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        Ok(location.to_owned())
    } else if location.starts_with('/') {
        Ok(format!("{base}{location}"))
    } else {
        Err(ClientError::AuthProtocol(format!(
            "upload location {location:?} is not a URL or absolute path"
        )))
    }
}

/// The upload URL of a `Location` (absolute or relative to the registry) with
/// `digest=<d>` added to its query.
fn upload_url(base: &str, location: &str, digest: &Digest) -> Result<String> {
    let absolute = absolute_url(base, location)?;
    let sep = if absolute.contains('?') { '&' } else { '?' };
    Ok(format!("{absolute}{sep}digest={digest}"))
}

/// The registry host of a `docker login` server argument.
fn login_host(server: &str) -> String {
    let trimmed = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed.split('/').next().unwrap_or(trimmed);
    match host {
        "" | "index.docker.io" | "docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        h => h.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_locations() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(
            upload_url("http://h:1", "/v2/a/blobs/uploads/u?_state=s", &d).ok(),
            Some(format!(
                "http://h:1/v2/a/blobs/uploads/u?_state=s&digest={d}"
            ))
        );
        assert_eq!(
            upload_url("http://h:1", "https://other/up/1", &d).ok(),
            Some(format!("https://other/up/1?digest={d}"))
        );
        assert!(upload_url("http://h:1", "relative/x", &d).is_err());
    }

    #[test]
    fn link_and_range_headers() {
        assert_eq!(
            parse_next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        for bad in [
            "",
            "</x>",
            r#"</x>; rel="prev""#,
            r#"/x; rel="next""#,
            r#"<x; rel="next""#,
        ] {
            assert_eq!(parse_next_link(bad), None, "{bad}");
        }
        assert_eq!(parse_range_start("bytes 100-199/200"), Some(100));
        for bad in [
            "",
            "bytes */200",
            "items 1-2/3",
            "bytes -1-2/3",
            "bytes 99999999999999999999-1/2",
        ] {
            assert_eq!(parse_range_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn certs_dirs_are_read_per_host() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(read_certs_dir(&dir.path().join("missing")).is_ok_and(|c| c.is_empty()));
        let host = dir.path().join("127.0.0.1:5000");
        std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(host.join("ca.crt"), b"not a certificate").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(host.join("client.key"), b"ignored").unwrap_or_else(|e| panic!("{e}"));
        let certs = read_certs_dir(dir.path()).unwrap_or_default();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].0, "127.0.0.1:5000");
        // Garbage where a certificate should be is an error, not a silent skip.
        let options = Options {
            certs_dir: Some(dir.path().to_owned()),
            ..Options::default()
        };
        assert!(Client::new(options).is_err());
    }

    #[test]
    fn login_hosts() {
        assert_eq!(login_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }
}
