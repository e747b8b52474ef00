//! The build service: `docker build` over the builder crate. The engine's part is the
//! [`Backend`]: a RUN step is a container made by the containers service from the step's
//! image (entrypoint cleared, the step's env, user, workdir and network), started, its log
//! followed into the build stream, waited for; its overlay upper directory is the step's
//! changes, and the container is removed afterwards.
//!
//! The builder is blocking (file copies, layer tars); a build runs on the blocking pool and
//! reaches back into the async containers service through the runtime handle.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use berth_builder::{Backend, BuildError, Builder, ContextLimits, Fetched, OutputStream, RunSpec};
pub use berth_builder::{BuildOptions, CacheRecord, Progress};
use berth_errdefs::{CategorizedError, Category};
use berth_image::ImageStore;
use tokio::sync::mpsc::UnboundedSender;

use crate::containers::{Config, Containers, HostConfig, LogOptions, MountConfig, WaitCondition};
use crate::images::{BoxRead, Images, PullRequest};

/// The build service.
#[derive(Debug)]
pub struct Build {
    builder: Arc<Builder>,
    containers: Arc<Containers>,
    store: Arc<ImageStore>,
    /// The images service, for `FROM` images a build pulls (set once the daemon made it).
    images: OnceLock<Arc<Images>>,
}

/// Why a build failed: the message for `errorDetail` and the code the CLI exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    /// Docker's words.
    pub message: String,
    /// `errorDetail.code`: a RUN's exit code, else 1.
    pub code: i64,
}

impl From<BuildError> for BuildFailure {
    fn from(e: BuildError) -> Self {
        BuildFailure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl Build {
    /// Opens `<data-root>/builder` (removing what a crashed build left).
    pub fn open(
        store: Arc<ImageStore>,
        containers: Arc<Containers>,
        data_root: &std::path::Path,
    ) -> Result<Arc<Build>, CategorizedError> {
        let builder = Builder::open(store.clone(), &data_root.join("builder"))
            .map_err(|e| CategorizedError::from_error(&e))?;
        Ok(Arc::new(Build {
            builder: Arc::new(builder),
            containers,
            store,
            images: OnceLock::new(),
        }))
    }

    /// Lets builds pull the `FROM` images they miss (and `--pull`).
    pub fn use_images(&self, images: Arc<Images>) {
        let _ = self.images.set(images);
    }

    /// Builds from a context tar (plain or gzip); progress goes to `progress` as it
    /// happens. Returns the image id.
    pub async fn build(
        self: &Arc<Self>,
        mut context: BoxRead,
        opts: BuildOptions,
        progress: UnboundedSender<Progress>,
    ) -> Result<String, BuildFailure> {
        let backend = EngineBackend {
            containers: self.containers.clone(),
            store: self.store.clone(),
            images: self.images.get().cloned(),
            handle: tokio::runtime::Handle::current(),
        };
        let builder = self.builder.clone();
        tokio::task::spawn_blocking(move || {
            let ctx = builder.unpack_context(&mut context, ContextLimits::default())?;
            let result = builder.build(&backend, &ctx, &opts, &mut |p| {
                // A client that went away stops reading; the build still finishes.
                let _ = progress.send(p);
            });
            // Off the answer's path: removing the context and trimming the file cache.
            std::thread::spawn(move || {
                drop(ctx);
                builder.trim_files();
            });
            Ok(result?.as_str().to_owned())
        })
        .await
        .map_err(|e| BuildFailure {
            message: format!("build task failed: {e}"),
            code: 1,
        })?
    }

    /// The build cache's records, for `GET /system/df` (`BuildCache`).
    pub async fn cache_usage(self: &Arc<Self>) -> Vec<berth_builder::CacheRecord> {
        let builder = self.builder.clone();
        tokio::task::spawn_blocking(move || builder.cache_usage())
            .await
            .unwrap_or_default()
    }

    /// `POST /build/prune`: forgets the build cache; the intermediate images it pointed
    /// at stay until `image prune`. Returns the number of entries removed.
    pub async fn prune(self: &Arc<Self>) -> Result<usize, CategorizedError> {
        let builder = self.builder.clone();
        tokio::task::spawn_blocking(move || builder.prune_cache())
            .await
            .map_err(|e| CategorizedError::new(Category::System, e.to_string()))?
            .map_err(|e| CategorizedError::from_error(&e))
    }
}

/// Files and directories the runtime creates in a container's root only to mount over them
/// (Docker keeps these in a separate "init" layer); they are not the RUN step's changes.
const MOUNT_POINTS: [&str; 9] = [
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "dev/pts",
    "dev/shm",
    "dev/mqueue",
    "dev",
    "proc",
    "sys",
];

/// Removes from `upper` the mount points the image did not have (see [`runtime_leftovers`]).
fn drop_mount_points(upper: &std::path::Path, lowers: &[PathBuf], extra: &[String]) {
    // Deepest first, so that each directory is empty when its turn comes.
    for rel in runtime_leftovers(upper, lowers, extra) {
        let path = upper.join(&rel);
        if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The entries of `upper` that are only the runtime's mount points (empty files and
/// directories, of [`MOUNT_POINTS`] and the `extra` mount targets and their parents,
/// absent from every lower layer), then `etc` if nothing else is in it and it is an
/// unchanged copy-up; deepest first. Neither a build step's nor a commit's changes.
pub(crate) fn runtime_leftovers(
    upper: &std::path::Path,
    lowers: &[PathBuf],
    extra: &[String],
) -> Vec<String> {
    let in_lower = |rel: &str| {
        lowers
            .iter()
            .any(|l| l.join(rel).symlink_metadata().is_ok())
    };
    let mut all: Vec<String> = extra
        .iter()
        .flat_map(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            (1..=parts.len())
                .map(|n| parts[..n].join("/"))
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    all.extend(MOUNT_POINTS.iter().map(|s| (*s).to_owned()));
    let mut found: Vec<String> = Vec::new();
    // A directory counts as empty when everything in it is already a leftover.
    let only_leftovers = |dir: &str, found: &[String]| {
        std::fs::read_dir(upper.join(dir)).is_ok_and(|entries| {
            entries.flatten().all(|e| {
                let child = format!("{dir}/{}", e.file_name().to_string_lossy());
                found.contains(&child)
            })
        })
    };
    for rel in &all {
        let rel = rel.as_str();
        if found.iter().any(|f| f == rel) {
            continue;
        }
        let Ok(meta) = upper.join(rel).symlink_metadata() else {
            continue;
        };
        if in_lower(rel) {
            continue;
        }
        if (meta.is_file() && meta.len() == 0) || (meta.is_dir() && only_leftovers(rel, &found)) {
            found.push(rel.to_owned());
        }
    }
    let etc = upper.join("etc");
    let same_as_lower = lowers
        .iter()
        .find_map(|l| l.join("etc").metadata().ok())
        .is_some_and(|l| {
            use std::os::unix::fs::MetadataExt;
            etc.metadata()
                .is_ok_and(|u| u.mode() == l.mode() && u.uid() == l.uid() && u.gid() == l.gid())
        });
    if same_as_lower && !is_opaque(&etc) && only_leftovers("etc", &found) {
        found.push("etc".to_owned());
    }
    found
}

/// Whether overlayfs marked `dir` opaque (it then hides the lower directory and must stay).
fn is_opaque(dir: &std::path::Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return true;
    };
    let Ok(name) = std::ffi::CString::new(berth_snapshot::OVERLAY_OPAQUE_XATTR) else {
        return true;
    };
    let mut buf = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n > 0
}

/// RUN steps as containers of the containers service.
struct EngineBackend {
    containers: Arc<Containers>,
    store: Arc<ImageStore>,
    images: Option<Arc<Images>>,
    handle: tokio::runtime::Handle,
}

fn backend_err(e: CategorizedError) -> BuildError {
    BuildError::Backend(e.message)
}

impl Backend for EngineBackend {
    fn create(&self, spec: &RunSpec) -> berth_builder::Result<String> {
        let config = Config {
            image: spec.image.as_str().to_owned(),
            cmd: Some(spec.cmd.clone()),
            // A RUN never goes through the image's ENTRYPOINT.
            entrypoint: Some(vec![String::new()]),
            env: Some(spec.env.clone()),
            user: spec.user.clone(),
            working_dir: spec.working_dir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..Config::default()
        };
        let mounts = spec
            .mounts
            .iter()
            .map(|m| MountConfig {
                kind: if m.source.is_some() { "bind" } else { "tmpfs" }.to_owned(),
                source: m
                    .source
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                target: m.target.clone(),
                read_only: m.readonly,
                ..MountConfig::default()
            })
            .collect();
        let host = HostConfig {
            network_mode: spec.network_mode.clone(),
            mounts: Some(mounts),
            volatile_rootfs: true,
            ..HostConfig::default()
        };
        let created = self
            .handle
            .block_on(
                self.containers
                    .create(None, config, host, Default::default()),
            )
            .map_err(backend_err)?;
        Ok(created.id)
    }

    fn run(
        &self,
        id: &str,
        output: &mut dyn FnMut(OutputStream, &[u8]),
    ) -> berth_builder::Result<i64> {
        self.handle.block_on(async {
            let wait = self
                .containers
                .wait(id, WaitCondition::NextExit)
                .map_err(backend_err)?;
            self.containers.start(id).await.map_err(backend_err)?;
            let opts = LogOptions {
                stdout: true,
                stderr: true,
                follow: true,
                ..LogOptions::default()
            };
            let mut logs = self.containers.logs(id, opts).map_err(backend_err)?;
            while let Some(line) = logs.next().await {
                let stream = if line.stream == 2 {
                    OutputStream::Stderr
                } else {
                    OutputStream::Stdout
                };
                output(stream, &line.data);
            }
            let outcome = wait.await;
            match outcome.error {
                Some(e) => Err(BuildError::Backend(e)),
                None => Ok(outcome.status_code),
            }
        })
    }

    fn changes(&self, id: &str, mount_points: &[String]) -> berth_builder::Result<PathBuf> {
        // The containers service keys a container's snapshot by its id.
        let snaps = self.store.snapshotter();
        let err = |e: berth_snapshot::SnapshotError| {
            BuildError::Backend(format!("the changes of container {id}: {e}"))
        };
        let upper = snaps.fs_dir(id).map_err(err)?;
        let lowers = match snaps.mounts(id).map_err(err)? {
            berth_snapshot::Mount::Overlay { lowerdirs, .. } => lowerdirs,
            berth_snapshot::Mount::Bind { .. } => Vec::new(),
        };
        let extra: Vec<String> = mount_points
            .iter()
            .map(|t| t.trim_start_matches('/').to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        drop_mount_points(&upper, &lowers, &extra);
        Ok(upper)
    }

    fn remove(&self, id: &str) -> berth_builder::Result<()> {
        self.handle
            .block_on(self.containers.remove(id, true))
            .map_err(backend_err)
    }

    fn fetch(
        &self,
        url: &str,
        max: u64,
        out: &mut dyn std::io::Write,
    ) -> berth_builder::Result<Fetched> {
        self.handle.block_on(fetch(url, max, out))
    }

    fn pull(
        &self,
        reference: &str,
        output: &mut dyn FnMut(String),
    ) -> berth_builder::Result<berth_reference::ImageId> {
        let images = self.images.clone().ok_or_else(|| {
            BuildError::NotFound(format!(
                "no such image: {reference}: pulls are not available"
            ))
        })?;
        let named = berth_reference::Reference::parse_normalized(reference)
            .map_err(|e| BuildError::Invalid(format!("invalid reference format: {e}")))?;
        let named = if named.digest().is_some() {
            named
        } else {
            named.with_default_tag()
        };
        let request = PullRequest {
            image: named.to_string(),
            ..PullRequest::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let result = self.handle.block_on(async {
            let task = tokio::spawn(async move { images.pull(request, tx).await });
            while let Some(m) = rx.recv().await {
                if let Some(line) = pull_line(&m) {
                    output(line);
                }
            }
            task.await
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BuildError::NotFound(e.message)),
            Err(e) => return Err(BuildError::Backend(format!("pull task failed: {e}"))),
        }
        self.store
            .resolve(&named.to_string())
            .map_err(|e| BuildError::NotFound(e.to_string()))
    }
}

/// A pull message as a line of the build's text stream (progress bars left out).
fn pull_line(m: &serde_json::Value) -> Option<String> {
    if m.get("progressDetail")
        .is_some_and(|p| p.get("current").is_some())
    {
        return None;
    }
    let status = m.get("status")?.as_str()?;
    Some(match m.get("id").and_then(|i| i.as_str()) {
        Some(id) => format!("{id}: {status}\n"),
        None => format!("{status}\n"),
    })
}

/// Most of an error answer's body quoted in the message.
const MAX_ERROR_BODY: usize = 512;

/// `ADD <url>`: GETs the URL into `out` (redirects followed), with the `Last-Modified` time
/// and a `Content-Disposition` file name.
async fn fetch(
    url: &str,
    max: u64,
    out: &mut dyn std::io::Write,
) -> berth_builder::Result<Fetched> {
    let failed =
        |e: reqwest::Error| BuildError::Backend(format!("failed to GET {url}: {}", chain(&e)));
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(failed)?;
    let mut response = client.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(MAX_ERROR_BODY).collect();
        return Err(BuildError::Backend(format!(
            "failed to GET {url} with status {status}: {}",
            body.trim()
        )));
    }
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let fetched = Fetched {
        last_modified: header(reqwest::header::LAST_MODIFIED)
            .and_then(|v| httpdate::parse_http_date(&v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64),
        filename: header(reqwest::header::CONTENT_DISPOSITION).and_then(|v| disposition_name(&v)),
    };
    let mut total = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        total += chunk.len() as u64;
        if total > max {
            return Err(BuildError::Backend(format!(
                "failed to GET {url}: larger than {max} bytes"
            )));
        }
        out.write_all(&chunk)
            .map_err(|e| BuildError::Backend(format!("write the download of {url}: {e}")))?;
    }
    Ok(fetched)
}

/// An error with its causes, as Go prints wrapped errors.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `attachment; filename="a.tar"` → `a.tar`.
fn disposition_name(value: &str) -> Option<String> {
    value.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case("filename")).then(|| v.trim().trim_matches('"').to_owned())
    })
}
