//! The build service: `docker build` over the builder crate. The engine's part is the
//! [`Backend`]: a RUN step is a container made by the containers service from the step's
//! image (entrypoint cleared, the step's env, user, workdir and network), started, its log
//! followed into the build stream, waited for; its overlay upper directory is the step's
//! changes, and the container is removed afterwards.
//!
//! The builder is blocking (file copies, layer tars); a build runs on the blocking pool and
//! reaches back into the async containers service through the runtime handle.

use std::path::PathBuf;
use std::sync::Arc;

use berth_builder::{Backend, BuildError, Builder, Context, ContextLimits, OutputStream, RunSpec};
pub use berth_builder::{BuildOptions, Progress};
use berth_errdefs::{CategorizedError, Category};
use berth_image::ImageStore;
use tokio::sync::mpsc::UnboundedSender;

use crate::containers::{Config, Containers, HostConfig, LogOptions, WaitCondition};
use crate::images::BoxRead;

/// The build service.
#[derive(Debug)]
pub struct Build {
    builder: Arc<Builder>,
    containers: Arc<Containers>,
    store: Arc<ImageStore>,
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
        }))
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
            handle: tokio::runtime::Handle::current(),
        };
        let builder = self.builder.clone();
        tokio::task::spawn_blocking(move || {
            let dir = builder.context_dir();
            let ctx = Context::from_tar(&mut context, &dir, ContextLimits::default())?;
            let id = builder.build(&backend, &ctx, &opts, &mut |p| {
                // A client that went away stops reading; the build still finishes.
                let _ = progress.send(p);
            })?;
            Ok(id.as_str().to_owned())
        })
        .await
        .map_err(|e| BuildFailure {
            message: format!("build task failed: {e}"),
            code: 1,
        })?
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

/// RUN steps as containers of the containers service.
struct EngineBackend {
    containers: Arc<Containers>,
    store: Arc<ImageStore>,
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
        let host = HostConfig {
            network_mode: spec.network_mode.clone(),
            ..HostConfig::default()
        };
        let created = self
            .handle
            .block_on(self.containers.create(None, config, host))
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

    fn changes(&self, id: &str) -> berth_builder::Result<PathBuf> {
        // The containers service keys a container's snapshot by its id.
        self.store
            .snapshotter()
            .fs_dir(id)
            .map_err(|e| BuildError::Backend(format!("the changes of container {id}: {e}")))
    }

    fn remove(&self, id: &str) -> berth_builder::Result<()> {
        self.handle
            .block_on(self.containers.remove(id, true))
            .map_err(backend_err)
    }
}
