//! The containers service: create, start, attach, wait, stop, kill, restart, remove, list,
//! inspect and logs, and restoring all of it after a daemon restart.
//!
//! The daemon never forks a container: each started container has its own `berth shim`
//! (see [`shim`]), which holds its stdio and log, reaps it and records its exit. The service
//! keeps one record per container (`<data-root>/containers/<id>/config.v2.json`, written
//! atomically), a names index, and per container a monitor task that waits on the shim and
//! records the exit. Layout:
//!
//! | path | what |
//! |---|---|
//! | `<data-root>/containers/<id>/` | record, `hostname`, `hosts`, `resolv.conf`, `<id>-json.log`, `rootfs/` (the overlay's mount point) |
//! | `<exec-root>/bundles/<id>/config.json` | the OCI bundle |
//! | `<exec-root>/shims/<id>/` | the shim's state dir (`shim.sock`, `shim.pid`, `exit.json`) |
//! | `<exec-root>/runtime/` | the built-in runtime's state |

mod archive;
mod changes;
mod config;
mod exec;
mod files;
mod health;
mod logs;
mod shim;
mod size;
mod stats;
mod top;
mod update;
mod volumes;
mod volumes_from;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use berth_errdefs::{CategorizedError, Category, HasCategory};
use berth_image::ImageStore;
use berth_reference::{ContainerName, Filters, resolve_prefix};
use berth_shim::protocol::{ExitInfo, Request};
use tokio::sync::{oneshot, watch};

pub use archive::{ExtractOptions, PathStat};
pub use changes::{Change, ChangeKind, CommitOptions};
pub use config::{
    BindOptions, Config, ContainerRecord, DriverConfig, HostConfig, MountConfig, MountPoint,
    RestartPolicy, State, TmpfsOptions, UlimitConfig, VolumeOptions, ZERO_TIME,
};
pub use exec::{ExecConfig, ExecInfo};
pub(crate) use files::write_atomic;
pub use health::{Health, HealthConfig, HealthResult, status_words as health_words};
pub use logs::{LogLine, LogOptions, LogStream};
pub use shim::AttachOptions;
pub use size::ContainerSize;
pub use stats::{
    CgroupStats, CpuStats, IoEntry, MemoryStats, NetCounters, PidsStats, StatsSample, Usage,
};
pub use top::TopReport;
pub use update::UpdateRequest;

use crate::events::{Event, EventType, Events};
use crate::networks::{ContainerNet, EndpointRequest, NetworkSettings, Networks};

type Result<T> = std::result::Result<T, CategorizedError>;

/// Where the service keeps things and how it starts shims.
#[derive(Debug, Clone)]
pub struct ContainersConfig {
    /// `--data-root`.
    pub data_root: PathBuf,
    /// `--exec-root`.
    pub exec_root: PathBuf,
    /// The binary run as `<binary> shim …` (the daemon's own, `std::env::current_exe()`).
    pub shim_binary: PathBuf,
    /// `--runtime` for the shim: `None` is the built-in runtime.
    pub runtime: Option<String>,
    /// The static init bind-mounted at `/sbin/docker-init` for `--init` (dockerd's
    /// `--init-path`); `None`: `--init` is refused with a clear message.
    pub init_path: Option<PathBuf>,
    /// The daemon's `--init`: containers that do not say get the init.
    pub init_default: bool,
    /// `--cgroup-parent`: where containers' cgroups go unless they name one (`/berth`).
    pub cgroup_parent: String,
}

/// How a wait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// At once if not running, else at the next exit.
    NotRunning,
    /// At the next exit.
    NextExit,
    /// Once the container has been removed.
    Removed,
}

/// The answer of a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOutcome {
    /// The exit code.
    pub status_code: i64,
    /// Why waiting failed, if it did.
    pub error: Option<String>,
}

/// What `create` answers.
#[derive(Debug, Clone)]
pub struct Created {
    /// The new id.
    pub id: String,
    /// Warnings for the client.
    pub warnings: Vec<String>,
}

/// A container in a listing: the record plus nothing else (the API shapes it).
pub type Summary = ContainerRecord;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Life {
    /// Exits seen so far.
    exits: u64,
    exit_code: i32,
    running: bool,
    removed: bool,
}

type PendingAttach = (
    AttachOptions,
    oneshot::Sender<Result<tokio::net::UnixStream>>,
);

#[derive(Debug)]
struct Container {
    id: String,
    record: Mutex<ContainerRecord>,
    /// Serialises lifecycle operations (start, stop, remove).
    op: tokio::sync::Mutex<()>,
    life: watch::Sender<Life>,
    /// Attaches made before the shim exists; served by `start` before the process runs.
    pending: Mutex<Vec<PendingAttach>>,
}

impl Container {
    fn new(record: ContainerRecord) -> Arc<Container> {
        let life = Life {
            exits: 0,
            exit_code: record.state.exit_code,
            running: record.state.running,
            removed: false,
        };
        Arc::new(Container {
            id: record.id.clone(),
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
            life: watch::Sender::new(life),
            pending: Mutex::new(Vec::new()),
        })
    }

    fn rec(&self) -> MutexGuard<'_, ContainerRecord> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot(&self) -> ContainerRecord {
        self.rec().clone()
    }
}

#[derive(Debug, Default)]
struct Index {
    by_id: BTreeMap<String, Arc<Container>>,
    /// name (no slash) → id.
    names: BTreeMap<String, String>,
}

/// The containers service.
#[derive(Debug)]
pub struct Containers {
    cfg: ContainersConfig,
    images: Arc<ImageStore>,
    events: Arc<Events>,
    networks: Arc<Networks>,
    index: Mutex<Index>,
    execs: Mutex<BTreeMap<String, ExecInfo>>,
    /// Set once by [`Containers::use_volumes`]; without it volume mounts are refused.
    volumes: OnceLock<Arc<crate::Volumes>>,
}

fn sys(context: &str, e: impl std::fmt::Display) -> CategorizedError {
    CategorizedError::new(Category::System, format!("{context}: {e}"))
}

fn invalid(msg: impl Into<String>) -> CategorizedError {
    CategorizedError::new(Category::InvalidParameter, msg)
}

fn now() -> String {
    berth_image::now_rfc3339()
}

impl Containers {
    /// Opens the service: loads every record under `<data-root>/containers`. Call
    /// [`Containers::restore`] from the async runtime afterwards.
    pub fn open(
        cfg: ContainersConfig,
        images: Arc<ImageStore>,
        events: Arc<Events>,
        networks: Arc<Networks>,
    ) -> Result<Arc<Containers>> {
        for dir in [
            cfg.data_root.join("containers"),
            cfg.exec_root.join("bundles"),
            cfg.exec_root.join("shims"),
            cfg.exec_root.join("runtime"),
        ] {
            files::create_dir(&dir)?;
        }
        let mut index = Index::default();
        let dir = cfg.data_root.join("containers");
        let entries = std::fs::read_dir(&dir).map_err(|e| sys("read containers", e))?;
        for entry in entries.flatten() {
            let path = entry.path().join(files::RECORD_NAME);
            match files::read_record(&path) {
                Ok(Some(record)) => {
                    index.names.insert(record.name.clone(), record.id.clone());
                    index
                        .by_id
                        .insert(record.id.clone(), Container::new(record));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping container {}: {}", path.display(), e),
            }
        }
        Ok(Arc::new(Containers {
            cfg,
            images,
            events,
            networks,
            index: Mutex::new(index),
            execs: Mutex::new(BTreeMap::new()),
            volumes: OnceLock::new(),
        }))
    }

    /// Gives the service the volumes service, and registers the volumes each loaded
    /// container uses (so they are in use across a daemon restart).
    pub fn use_volumes(&self, service: Arc<crate::Volumes>) {
        for c in self.idx().by_id.values() {
            for point in c.rec().mount_points.values() {
                service.add_ref(&point.name, &c.id);
            }
        }
        let _ = self.volumes.set(service);
    }

    fn execs_lock(&self) -> MutexGuard<'_, BTreeMap<String, ExecInfo>> {
        self.execs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn idx(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("bundles").join(id)
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("shims").join(id)
    }

    /// The built-in runtime's `--root`, shared by every shim.
    fn runtime_root(&self) -> PathBuf {
        self.cfg.exec_root.join("runtime")
    }

    fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    /// Finds a container by full id, name (with or without `/`) or unique id prefix.
    fn find(&self, name_or_id: &str) -> Result<Arc<Container>> {
        let not_found = || {
            CategorizedError::new(
                Category::NotFound,
                format!("No such container: {name_or_id}"),
            )
        };
        let idx = self.idx();
        if let Some(c) = idx.by_id.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(id) = idx.names.get(name)
            && let Some(c) = idx.by_id.get(id)
        {
            return Ok(c.clone());
        }
        match resolve_prefix(idx.by_id.keys(), name_or_id) {
            Ok(id) => idx.by_id.get(id.as_str()).cloned().ok_or_else(not_found),
            Err(e) if e.category() == Category::InvalidParameter => {
                Err(CategorizedError::from_error(&e))
            }
            Err(_) => Err(not_found()),
        }
    }

    fn save(&self, c: &Container) -> Result<()> {
        let record = c.snapshot();
        files::write_record(&self.container_dir(&c.id).join(files::RECORD_NAME), &record)
    }

    fn publish(&self, record: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_owned(), record.name.clone());
        attrs.insert("image".to_owned(), record.config.image.clone());
        for (k, v) in record.config.labels.iter().flatten() {
            attrs.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.clone());
        }
        self.events
            .publish(Event::now(EventType::Container, action, &record.id, attrs));
    }

    /// `POST /containers/create`.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        config: Config,
        host_config: HostConfig,
        endpoints: BTreeMap<String, EndpointRequest>,
    ) -> Result<Created> {
        let this = self.clone();
        let name = name.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            this.create_blocking(name, config, host_config, endpoints)
        })
        .await
        .map_err(|e| sys("create task", e))?
    }

    fn reserve_name(&self, name: Option<String>, id: &str) -> Result<String> {
        let mut idx = self.idx();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let parsed =
                    ContainerName::parse(&n).map_err(|e| CategorizedError::from_error(&e))?;
                let n = parsed.as_str().to_owned();
                if let Some(other) = idx.names.get(&n) {
                    return Err(CategorizedError::new(
                        Category::Conflict,
                        format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                        ),
                    ));
                }
                n
            }
            None => {
                let mut retry = 0;
                loop {
                    let n = ContainerName::random(retry).as_str().to_owned();
                    if !idx.names.contains_key(&n) {
                        break n;
                    }
                    retry += 1;
                }
            }
        };
        idx.names.insert(name.clone(), id.to_owned());
        Ok(name)
    }

    fn release_name(&self, name: &str, id: &str) {
        let mut idx = self.idx();
        if idx.names.get(name).is_some_and(|i| i == id) {
            idx.names.remove(name);
        }
    }

    fn create_blocking(
        self: &Arc<Self>,
        name: Option<String>,
        mut config: Config,
        host: HostConfig,
        endpoints: BTreeMap<String, EndpointRequest>,
    ) -> Result<Created> {
        if config.image.is_empty() {
            return Err(invalid("No command specified"));
        }
        health::validate(config.healthcheck.as_ref())?;
        let image_id = self
            .images
            .resolve(&config.image)
            .map_err(|e| CategorizedError::from_error(&e))?;
        let image_config = self
            .images
            .config(&image_id)
            .map_err(|e| CategorizedError::from_error(&e))?;
        if let Some(ports) = image_config
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.clone())
        {
            let exposed = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for (port, v) in ports {
                exposed.entry(port).or_insert(v);
            }
        }
        let id = berth_reference::generate_id();
        // A bad -p fails create; an unknown network fails start, as in Docker (a 404 from
        // create would make the docker CLI try to pull the image).
        port_specs(&config, &host)?;
        let name = self.reserve_name(name, &id)?;
        let mut cleanup = files::Cleanup::default();
        match self.create_files(
            &id,
            &name,
            &image_id,
            image_config.config.as_ref(),
            &mut config,
            &host,
            endpoints,
            &mut cleanup,
        ) {
            Ok(record) => {
                if let Some(v) = self.volumes.get() {
                    for point in record.mount_points.values() {
                        v.add_ref(&point.name, &id);
                    }
                }
                let c = Container::new(record.clone());
                self.idx().by_id.insert(id.clone(), c);
                self.publish(&record, "create", &[]);
                Ok(Created {
                    id,
                    warnings: Vec::new(),
                })
            }
            Err(e) => {
                cleanup.run(&self.images);
                self.release_name(&name, &id);
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_files(
        &self,
        id: &str,
        name: &str,
        image_id: &berth_reference::ImageId,
        image: Option<&berth_image::ContainerConfig>,
        config: &mut Config,
        host: &HostConfig,
        endpoints: BTreeMap<String, EndpointRequest>,
        cleanup: &mut files::Cleanup,
    ) -> Result<ContainerRecord> {
        let mut spec_cfg = merged_spec_config(config, host, image)?;
        self.add_volumes_from(&mut spec_cfg, host, false)?;
        let args: Vec<String> = spec_cfg
            .entrypoint
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.is_empty())
            .chain(spec_cfg.cmd.iter().cloned())
            .collect();
        let Some((path, rest)) = args.split_first() else {
            return Err(invalid("No command specified"));
        };
        // Inspect shows the config with the image's defaults merged in, as Docker's does.
        config.env = Some(spec_cfg.env.clone()).filter(|e| !e.is_empty());
        if config.cmd.as_ref().is_none_or(Vec::is_empty) && !spec_cfg.cmd.is_empty() {
            config.cmd = Some(spec_cfg.cmd.clone());
        }
        if config.entrypoint.is_none() {
            config.entrypoint = spec_cfg.entrypoint.clone().filter(|e| !e.is_empty());
        }
        if config.working_dir.is_empty() {
            config.working_dir = spec_cfg.working_dir.clone();
        }
        if config.user.is_empty() {
            config.user = spec_cfg.user.clone();
        }
        if config.stop_signal.as_deref().is_none_or(str::is_empty) {
            config.stop_signal = spec_cfg.stop_signal.clone();
        }
        config.healthcheck = health::merge(
            config.healthcheck.take(),
            image.and_then(|i| i.healthcheck.as_ref()),
        );
        config.labels = Some(spec_cfg.labels.clone());
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_owned();
        }
        if config.labels.is_none() {
            config.labels = Some(BTreeMap::new());
        }
        let dir = self.container_dir(id);
        files::create_dir(&dir)?;
        cleanup.dirs.push(dir.clone());
        let mut mount = self
            .images
            .prepare_rootfs(image_id, id)
            .map_err(|e| CategorizedError::from_error(&e))?;
        if let berth_snapshot::Mount::Overlay { extra, .. } = &mut mount
            && host.volatile_rootfs
        {
            extra.push("volatile".to_owned());
        }
        cleanup.snapshot = Some(id.to_owned());
        let rootfs = self.rootfs_dir(id);
        files::create_dir(&rootfs)?;
        mount
            .mount(&rootfs)
            .map_err(|e| sys("mount the root filesystem", e))?;
        cleanup.mounts.push(rootfs.clone());
        let user_network =
            |mode: &str| crate::networks::mode_network(mode).is_some_and(|n| n != "bridge");
        let embedded_dns =
            user_network(&host.network_mode) || endpoints.keys().any(|n| user_network(n));
        let etc = files::write_etc_files(&dir, &config.hostname, host, embedded_dns)?;
        cleanup.dirs.push(self.bundle_dir(id));
        // `container:` modes get their namespace at start, when the other container runs.
        let network = files::network_namespace(&host.network_mode)?;
        let mount_points = self.write_bundle(
            id,
            &config.hostname,
            network,
            &spec_cfg,
            &etc,
            (host, &BTreeMap::new(), true),
        )?;
        let mut graph = BTreeMap::new();
        graph.insert("MergedDir".to_owned(), rootfs.display().to_string());
        if let berth_snapshot::Mount::Overlay {
            lowerdirs,
            upperdir,
            workdir,
            ..
        } = &mount
        {
            let lower: Vec<String> = lowerdirs.iter().map(|p| p.display().to_string()).collect();
            graph.insert("LowerDir".to_owned(), lower.join(":"));
            if let Some(u) = upperdir {
                graph.insert("UpperDir".to_owned(), u.display().to_string());
            }
            if let Some(w) = workdir {
                graph.insert("WorkDir".to_owned(), w.display().to_string());
            }
        }
        let record = ContainerRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            created: now(),
            path: path.clone(),
            args: rest.to_vec(),
            image: image_id.to_string(),
            config: config.clone(),
            host_config: host.clone(),
            state: State::default(),
            graph_driver: graph,
            resolv_conf_path: etc.resolv_conf.display().to_string(),
            hostname_path: etc.hostname.display().to_string(),
            hosts_path: etc.hosts.display().to_string(),
            log_path: dir.join(format!("{id}-json.log")).display().to_string(),
            restart_count: 0,
            has_been_manually_stopped: false,
            network_settings: NetworkSettings::default(),
            endpoints_config: endpoints,
            mount_points,
        };
        files::write_record(&dir.join(files::RECORD_NAME), &record)?;
        Ok(record)
    }

    /// Generates the OCI spec and writes the bundle (at create, and at start when the exec
    /// root was wiped, as by a reboot). The root filesystem must be mounted.
    /// `volumes`: the host config, the container's known mount points and whether to copy
    /// image content into new volumes (at create); returns the mount points.
    fn write_bundle(
        &self,
        id: &str,
        hostname: &str,
        network: berth_spec::NetworkNamespace,
        spec_cfg: &berth_spec::ContainerConfig,
        etc: &files::EtcFiles,
        volumes: (&HostConfig, &BTreeMap<String, MountPoint>, bool),
    ) -> Result<BTreeMap<String, MountPoint>> {
        let mut ctx = berth_spec::RuntimeContext::new(id, self.rootfs_dir(id));
        ctx.hostname = hostname.to_owned();
        ctx.hostname_path = Some(etc.hostname.clone());
        ctx.hosts_path = Some(etc.hosts.clone());
        ctx.resolv_conf_path = Some(etc.resolv_conf.clone());
        ctx.network = network;
        ctx.init_path = self.cfg.init_path.clone();
        ctx.init_default = self.cfg.init_default;
        if !self.cfg.cgroup_parent.is_empty() {
            ctx.cgroup_parent = self.cfg.cgroup_parent.clone();
        }
        let rootfs = self.rootfs_dir(id);
        let resolver = volumes::Resolver {
            volumes: self.volumes.get().map(|v| &**v),
            rootfs: &rootfs,
            known: volumes.1,
            copy_up: volumes.2,
            found: Default::default(),
        };
        let source = |req: &berth_spec::VolumeRequest<'_>| resolver.resolve(req);
        let spec = match berth_spec::generate(spec_cfg, &ctx, &source) {
            Ok(spec) => spec,
            Err(e) => {
                if volumes.2 {
                    resolver.discard_anonymous();
                }
                return Err(CategorizedError::from_error(&e));
            }
        };
        let points = resolver.mount_points(&spec, volumes.0);
        let bundle = self.bundle_dir(id);
        files::create_dir(&bundle)?;
        let spec_json = serde_json::to_vec_pretty(&spec).map_err(|e| sys("encode the spec", e))?;
        files::write_replace(&bundle.join("config.json"), &spec_json)?;
        Ok(points)
    }

    /// Rewrites the bundle from the record and the image's config: when it is missing, and
    /// at each start of a container that joins another's network (`joined`: that
    /// container's record), whose namespace, hostname and `/etc` files it shares.
    fn rewrite_bundle(
        &self,
        record: &ContainerRecord,
        joined: Option<&ContainerRecord>,
    ) -> Result<()> {
        let image_id = berth_reference::ImageId::parse(&record.image)
            .map_err(|e| CategorizedError::from_error(&e))?;
        let image = self
            .images
            .config(&image_id)
            .map_err(|e| CategorizedError::from_error(&e))?;
        let mut spec_cfg =
            merged_spec_config(&record.config, &record.host_config, image.config.as_ref())?;
        self.add_volumes_from(&mut spec_cfg, &record.host_config, true)?;
        let files_of = joined.unwrap_or(record);
        let etc = files::EtcFiles {
            hostname: PathBuf::from(&files_of.hostname_path),
            hosts: PathBuf::from(&files_of.hosts_path),
            resolv_conf: PathBuf::from(&files_of.resolv_conf_path),
        };
        let network = match joined {
            Some(other) => berth_spec::NetworkNamespace::Container(other.state.pid),
            None => files::network_namespace(&record.host_config.network_mode)?,
        };
        self.write_bundle(
            &record.id,
            &files_of.config.hostname,
            network,
            &spec_cfg,
            &etc,
            (&record.host_config, &record.mount_points, false),
        )
        .map(|_| ())
    }

    /// For `--network container:<name>`: the running container whose namespace to join.
    fn joined_container(&self, record: &ContainerRecord) -> Result<Option<ContainerRecord>> {
        let Some(target) = record.host_config.network_mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let other = self.find(target)?.snapshot();
        if other.id == record.id {
            return Err(invalid("cannot join own network"));
        }
        if !other.state.running || other.state.pid <= 0 {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!(
                    "cannot join network of a non running container: {}",
                    other.id
                ),
            ));
        }
        Ok(Some(other))
    }

    /// `POST /containers/{id}/start`. NotModified when already running.
    pub async fn start(self: &Arc<Self>, name_or_id: &str) -> Result<()> {
        let c = self.find(name_or_id)?;
        self.start_inner(&c, true).await
    }

    async fn start_inner(self: &Arc<Self>, c: &Arc<Container>, by_user: bool) -> Result<()> {
        let name_or_id = c.id.clone();
        let name_or_id = name_or_id.as_str();
        let _op = c.op.lock().await;
        if by_user {
            c.rec().has_been_manually_stopped = false;
        }
        if c.life.borrow().removed {
            return Err(CategorizedError::new(
                Category::NotFound,
                format!("No such container: {name_or_id}"),
            ));
        }
        if c.rec().state.running {
            return Err(CategorizedError::new(
                Category::NotModified,
                "container already started",
            ));
        }
        match self.start_locked(c).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let code = if e.message.contains("executable file not found")
                    || e.message.contains("no such file or directory")
                {
                    127
                } else if e.message.contains("permission denied") {
                    126
                } else {
                    128
                };
                {
                    let mut r = c.rec();
                    r.state.error = e.message.clone();
                    r.state.exit_code = code;
                }
                let _ = self.save(c);
                // Attachers waiting for this start get nothing: close them.
                c.pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
                c.life.send_modify(|l| l.exit_code = code);
                if c.rec().host_config.auto_remove {
                    let this = self.clone();
                    let id = c.id.clone();
                    tokio::spawn(async move {
                        if let Err(e) = this.remove_inner(&id, true, true).await {
                            tracing::warn!("auto-remove of {id}: {}", e.message);
                        }
                    });
                }
                Err(e)
            }
        }
    }

    async fn start_locked(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let id = c.id.clone();
        let state_dir = self.state_dir(&id);
        // A previous run's shim still holds the old exit: end it first.
        shim::teardown(&state_dir, &self.runtime_root(), &id).await;
        let _ = std::fs::remove_dir_all(&state_dir);
        let rootfs = self.rootfs_dir(&id);
        if !files::is_mountpoint(&rootfs) {
            let image_id = berth_reference::ImageId::parse(&c.rec().image)
                .map_err(|e| CategorizedError::from_error(&e))?;
            let mount = self
                .images
                .prepare_rootfs(&image_id, &id)
                .or_else(|_| self.images.snapshotter().mounts(&id).map_err(|e| e.into()))
                .map_err(|e: berth_image::ImageError| CategorizedError::from_error(&e))?;
            mount
                .mount(&rootfs)
                .map_err(|e| sys("mount the root filesystem", e))?;
        }
        let record = c.snapshot();
        let joined = self.joined_container(&record)?;
        if joined.is_some() || !self.bundle_dir(&id).join("config.json").exists() {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.rewrite_bundle(&record, joined.as_ref()))
                .await
                .map_err(|e| sys("bundle task", e))??;
        }
        let settings = self.prepare_network(c)?;
        let pid = match self.launch(c, &state_dir, &settings).await {
            Ok(pid) => pid,
            Err(e) => {
                self.networks.release(&id, &settings).await;
                return Err(e);
            }
        };
        let record = {
            let mut r = c.rec();
            r.state = State {
                status: "running".into(),
                running: true,
                pid,
                started_at: now(),
                health: r
                    .config
                    .healthcheck
                    .as_ref()
                    .and_then(health::probe_command)
                    .map(|_| Health {
                        status: health::STARTING.into(),
                        ..Health::default()
                    }),
                ..State::default()
            };
            r.network_settings = settings;
            r.clone()
        };
        self.save(c)?;
        c.life.send_modify(|l| l.running = true);
        if let Some(v) = self.volumes.get() {
            volumes::publish_mounts(v, &record, "mount");
        }
        self.publish(&record, "start", &[]);
        self.spawn_monitor(c.clone());
        self.spawn_health(c.clone());
        Ok(())
    }

    /// Allocates the container's addresses and host ports and writes its `/etc/hosts` with
    /// its address, before the runtime bind-mounts the file.
    fn prepare_network(&self, c: &Container) -> Result<NetworkSettings> {
        let r = c.snapshot();
        let ports = port_specs(&r.config, &r.host_config)?;
        let mac = match r.config.mac_address.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => Some(crate::networks::parse_mac(m)?),
            None => None,
        };
        let settings = self.networks.prepare(&ContainerNet {
            id: &r.id,
            name: &r.name,
            hostname: &r.config.hostname,
            mode: &r.host_config.network_mode,
            endpoints: &r.endpoints_config,
            port_bindings: &ports,
            mac,
        })?;
        if r.host_config.network_mode != "host" {
            let ip = settings.primary().map(|e| e.ip_address.as_str());
            let hosts = self.linked_hosts(&r).and_then(|linked| {
                files::write_hosts(
                    std::path::Path::new(&r.hosts_path),
                    &r.config.hostname,
                    ip,
                    &r.host_config,
                    &linked,
                )
            });
            if let Err(e) = hosts {
                self.networks.release_now(&r.id, &settings);
                return Err(e);
            }
        }
        Ok(settings)
    }

    /// `/etc/hosts` lines for `--link name[:alias]`: the linked container's address on the
    /// default bridge with the alias, its short id and its name, as Docker writes them.
    fn linked_hosts(&self, r: &ContainerRecord) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for link in r.host_config.links.iter().flatten() {
            let (target, alias) = link.split_once(':').unwrap_or((link, link));
            let target = target.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            let other = self.find(target)?.snapshot();
            let ip = other
                .network_settings
                .networks
                .get("bridge")
                .map(|e| e.ip_address.clone())
                .filter(|ip| other.state.running && !ip.is_empty())
                .ok_or_else(|| {
                    invalid(format!(
                        "Cannot link to a non running container: /{} AS /{}/{alias}",
                        other.name, r.name
                    ))
                })?;
            let mut names = vec![alias.to_owned(), other.id[..12].to_owned()];
            if other.name != alias {
                names.push(other.name.clone());
            }
            lines.push(format!("{ip}\t{}", names.join(" ")));
        }
        Ok(lines)
    }

    /// Starts the shim (the runtime creates the container), wires its network into the
    /// created init's namespace, then lets it run. Returns the init's pid.
    async fn launch(
        &self,
        c: &Arc<Container>,
        state_dir: &std::path::Path,
        settings: &NetworkSettings,
    ) -> Result<i32> {
        let id = c.id.clone();
        let (tty, stdin, stdin_once, log_path) = {
            let r = c.rec();
            (
                r.config.tty,
                r.config.open_stdin,
                r.config.stdin_once,
                PathBuf::from(&r.log_path),
            )
        };
        shim::launch(shim::ShimLaunch {
            binary: self.cfg.shim_binary.clone(),
            runtime: self.cfg.runtime.clone(),
            runtime_root: self.runtime_root(),
            id: id.clone(),
            bundle: self.bundle_dir(&id),
            state_dir: state_dir.to_owned(),
            log_path,
            tty,
            stdin,
            stdin_once,
        })
        .await
        .map_err(|msg| CategorizedError::new(Category::InvalidParameter, msg))?;
        // Connect the clients that attached before start, so they see all output.
        let pending: Vec<PendingAttach> =
            std::mem::take(&mut *c.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (opts, tx) in pending {
            let _ = tx.send(shim::attach(state_dir, opts).await);
        }
        let pid = shim::state(state_dir).await.map(|s| s.pid).unwrap_or(0);
        if let Err(e) = self.networks.plumb(&id, pid, settings).await {
            shim::teardown(state_dir, &self.runtime_root(), &id).await;
            return Err(e);
        }
        if let Err(e) = shim::call(state_dir, Request::Start).await {
            shim::teardown(state_dir, &self.runtime_root(), &id).await;
            return Err(CategorizedError::new(
                Category::InvalidParameter,
                e.message.trim_start_matches("shim: ").to_owned(),
            ));
        }
        Ok(pid)
    }

    fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>) {
        let this = self.clone();
        tokio::spawn(async move {
            let state_dir = this.state_dir(&c.id);
            let exit = match shim::wait(&state_dir).await {
                Ok(exit) => exit,
                Err(e) => {
                    tracing::warn!("lost the shim of {}: {e}", c.id);
                    shim::recorded_exit(&state_dir).unwrap_or(ExitInfo {
                        exit_code: 255,
                        signal: None,
                        oom_killed: None,
                        finished_at: now(),
                    })
                }
            };
            this.record_exit(&c, &exit).await;
        });
    }

    async fn record_exit(self: &Arc<Self>, c: &Arc<Container>, exit: &ExitInfo) {
        let settings = c.rec().network_settings.clone();
        self.networks.release(&c.id, &settings).await;
        let record = {
            let mut r = c.rec();
            r.network_settings = settings.stopped();
            r.state.status = "exited".into();
            r.state.running = false;
            r.state.paused = false;
            r.state.pid = 0;
            r.state.exit_code = exit.exit_code;
            r.state.oom_killed = exit.oom_killed.unwrap_or(false);
            r.state.finished_at = exit.finished_at.clone();
            r.clone()
        };
        // A `--rm` container's record is about to go: no durable write for it. Should the
        // daemon die first, the record still says running and start-up records the exit
        // from the shim and removes the container then.
        if !record.host_config.auto_remove
            && let Err(e) = self.save(c)
        {
            tracing::warn!("saving {}: {}", c.id, e.message);
        }
        if let Some(v) = self.volumes.get() {
            volumes::publish_mounts(v, &record, "unmount");
        }
        self.publish(&record, "die", &[("exitCode", exit.exit_code.to_string())]);
        c.life.send_modify(|l| {
            l.exits += 1;
            l.exit_code = exit.exit_code;
            l.running = false;
        });
        if record.host_config.auto_remove {
            if let Err(e) = self.remove_inner(&c.id, true, true).await {
                tracing::warn!("auto-remove of {}: {}", c.id, e.message);
            }
        } else if should_restart(&record, exit.exit_code) {
            self.schedule_restart(c.clone(), record.restart_count);
        }
    }

    /// Starts `c` again after a back-off (100 ms doubling per restart, at most ~50 s), unless
    /// a user stops or removes it meanwhile.
    fn schedule_restart(self: &Arc<Self>, c: Arc<Container>, count: i64) {
        {
            let mut r = c.rec();
            r.state.restarting = true;
            r.state.status = "restarting".into();
        }
        let this = self.clone();
        tokio::spawn(async move {
            let delay = Duration::from_millis(100u64 << count.clamp(0, 9));
            tokio::time::sleep(delay).await;
            let go = !c.rec().has_been_manually_stopped && !c.life.borrow().removed;
            let settle = |c: &Container| {
                let mut r = c.rec();
                r.state.restarting = false;
                if r.state.status == "restarting" {
                    r.state.status = "exited".into();
                }
            };
            if !go {
                settle(&c);
                return;
            }
            c.rec().restart_count += 1;
            if let Err(e) = this.start_inner(&c, false).await {
                settle(&c);
                tracing::warn!("restarting {}: {}", c.id, e.message);
            }
        });
    }

    /// `POST /containers/{id}/attach`: resolves the container now (404 before the upgrade);
    /// the returned future yields the shim's attach stream — at once for a running
    /// container, at start for one not started yet.
    pub fn attach(
        &self,
        name_or_id: &str,
        opts: AttachOptions,
    ) -> Result<(bool, BoxFut<Result<tokio::net::UnixStream>>)> {
        let c = self.find(name_or_id)?;
        let tty = c.rec().config.tty;
        let (tx, rx) = oneshot::channel();
        let running = c.rec().state.running;
        let state_dir = self.state_dir(&c.id);
        if running {
            let fut = async move { shim::attach(&state_dir, opts).await };
            return Ok((tty, Box::pin(fut)));
        }
        c.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((opts, tx));
        let fut = async move {
            rx.await.unwrap_or_else(|_| {
                Err(CategorizedError::new(
                    Category::Conflict,
                    "the container did not start",
                ))
            })
        };
        Ok((tty, Box::pin(fut)))
    }

    /// `POST /containers/{id}/wait`: resolves the container now; the future completes when
    /// `condition` is met.
    pub fn wait(
        &self,
        name_or_id: &str,
        condition: WaitCondition,
    ) -> Result<impl std::future::Future<Output = WaitOutcome> + use<>> {
        let c = self.find(name_or_id)?;
        let mut rx = c.life.subscribe();
        let start = *rx.borrow_and_update();
        Ok(async move {
            let done = |l: &Life| match condition {
                WaitCondition::NotRunning => !l.running,
                WaitCondition::NextExit => l.exits > start.exits,
                WaitCondition::Removed => l.removed,
            };
            let found = rx.wait_for(done).await.map(|l| *l).ok();
            // Without `found` the sender is gone: the container was removed.
            let l = found.unwrap_or_else(|| *rx.borrow());
            WaitOutcome {
                status_code: i64::from(l.exit_code),
                error: None,
            }
        })
    }

    /// `POST /containers/{id}/stop`. NotModified when not running.
    pub async fn stop(self: &Arc<Self>, name_or_id: &str, timeout: Option<i64>) -> Result<()> {
        let c = self.find(name_or_id)?;
        c.rec().has_been_manually_stopped = true;
        let _op = c.op.lock().await;
        let _ = self.save(&c);
        if !c.rec().state.running {
            return Err(CategorizedError::new(
                Category::NotModified,
                "container already stopped",
            ));
        }
        self.stop_locked(&c, timeout).await
    }

    async fn stop_locked(&self, c: &Arc<Container>, timeout: Option<i64>) -> Result<()> {
        let (signal, default_timeout) = {
            let r = c.rec();
            (
                r.config.stop_signal.clone().unwrap_or_default(),
                r.config.stop_timeout.unwrap_or(10),
            )
        };
        let signal = if signal.is_empty() {
            libc::SIGTERM
        } else {
            parse_signal(&signal).unwrap_or(libc::SIGTERM)
        };
        let timeout = timeout.unwrap_or(default_timeout);
        let mut rx = c.life.subscribe();
        let state_dir = self.state_dir(&c.id);
        if c.rec().state.paused {
            // A frozen process cannot act on signals: thaw it first, as Docker does.
            shim::call(&state_dir, Request::Resume).await?;
            let mut r = c.rec();
            r.state.paused = false;
            r.state.status = "running".into();
        }
        if timeout != 0 {
            let _ = shim::call(&state_dir, Request::Kill { signal, all: false }).await;
        }
        let wait_stopped = |rx: &mut watch::Receiver<Life>, secs: u64| {
            let mut rx = rx.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(secs), rx.wait_for(|l| !l.running))
                    .await
                    .is_ok()
            }
        };
        if timeout < 0 {
            let _ = rx.wait_for(|l| !l.running).await;
            return Ok(());
        }
        if timeout > 0 && wait_stopped(&mut rx, timeout as u64).await {
            return Ok(());
        }
        let killed = shim::call(
            &state_dir,
            Request::Kill {
                signal: libc::SIGKILL,
                all: true,
            },
        )
        .await;
        // A container that exited on its own a moment ago makes the kill fail ("not
        // running") before its monitor has recorded the exit: that is a stop, not an error.
        let grace = if killed.is_ok() { 30 } else { 5 };
        if wait_stopped(&mut rx, grace).await {
            return Ok(());
        }
        killed?;
        Err(sys("stop", "the container did not exit after SIGKILL"))
    }

    /// `POST /containers/{id}/kill`. Conflict when not running.
    pub async fn kill(&self, name_or_id: &str, signal: Option<&str>) -> Result<()> {
        let c = self.find(name_or_id)?;
        let signal = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s).ok_or_else(|| invalid(format!("Invalid signal: {s}")))?,
            None => libc::SIGKILL,
        };
        if !c.rec().state.running {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!(
                    "Cannot kill container: {name_or_id}: Container {} is not running",
                    c.id
                ),
            ));
        }
        if matches!(signal, libc::SIGKILL | libc::SIGTERM | libc::SIGINT) {
            c.rec().has_been_manually_stopped = true;
            let _ = self.save(&c);
        }
        shim::call(&self.state_dir(&c.id), Request::Kill { signal, all: false }).await
    }

    /// `POST /containers/{id}/resize`: the container's terminal size.
    pub async fn resize(&self, name_or_id: &str, width: u16, height: u16) -> Result<()> {
        let c = self.find(name_or_id)?;
        if !c.rec().state.running {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("Container {} is not running", c.id),
            ));
        }
        shim::call(
            &self.state_dir(&c.id),
            Request::Resize {
                width,
                height,
                exec_id: None,
            },
        )
        .await
    }

    /// `POST /containers/{id}/pause` (`pause: true`) and `…/unpause`.
    pub async fn pause(&self, name_or_id: &str, pause: bool) -> Result<()> {
        let c = self.find(name_or_id)?;
        let _op = c.op.lock().await;
        let (running, paused) = {
            let r = c.rec();
            (r.state.running, r.state.paused)
        };
        if !running {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("Container {} is not running", c.id),
            ));
        }
        if pause && paused {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("Container {} is already paused", c.id),
            ));
        }
        if !pause && !paused {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!("Container {} is not paused", c.id),
            ));
        }
        let req = if pause {
            Request::Pause
        } else {
            Request::Resume
        };
        shim::call(&self.state_dir(&c.id), req).await?;
        let record = {
            let mut r = c.rec();
            r.state.paused = pause;
            r.state.status = if pause { "paused" } else { "running" }.into();
            r.clone()
        };
        self.save(&c)?;
        self.publish(&record, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn rename(&self, name_or_id: &str, new_name: &str) -> Result<()> {
        let c = self.find(name_or_id)?;
        let _op = c.op.lock().await;
        let parsed =
            ContainerName::parse(new_name).map_err(|e| CategorizedError::from_error(&e))?;
        let new_name = parsed.as_str().to_owned();
        let old_name = c.rec().name.clone();
        if new_name == old_name {
            return Err(invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            let mut idx = self.idx();
            if let Some(other) = idx.names.get(&new_name) {
                return Err(CategorizedError::new(
                    Category::Conflict,
                    format!(
                        "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    ),
                ));
            }
            idx.names.remove(&old_name);
            idx.names.insert(new_name.clone(), c.id.clone());
        }
        c.rec().name = new_name.clone();
        if let Err(e) = self.save(&c) {
            let mut idx = self.idx();
            idx.names.remove(&new_name);
            idx.names.insert(old_name.clone(), c.id.clone());
            c.rec().name = old_name;
            return Err(e);
        }
        let record = c.snapshot();
        self.publish(&record, "rename", &[("oldName", format!("/{old_name}"))]);
        Ok(())
    }

    /// `POST /containers/prune`: removes stopped containers matching `filters` (`label`,
    /// `label!`, `until`); returns their ids.
    pub async fn prune(self: &Arc<Self>, filters: &Filters) -> Result<Vec<String>> {
        filters
            .validate(&["label", "label!", "until"])
            .map_err(|e| CategorizedError::from_error(&e))?;
        let until = match filters.get("until").first() {
            Some(u) => Some(
                berth_image::parse_rfc3339(u)
                    .or_else(|| u.split('.').next().and_then(|s| s.parse::<i64>().ok()))
                    .ok_or_else(|| invalid(format!("invalid until: {u}")))?,
            ),
            None => None,
        };
        let candidates: Vec<ContainerRecord> = self
            .idx()
            .by_id
            .values()
            .map(|c| c.snapshot())
            .filter(|r| !r.state.running)
            .collect();
        let mut removed = Vec::new();
        for r in candidates {
            let labels = r.config.labels.clone().unwrap_or_default();
            if filters.contains("label") && !filters.match_kv_list("label", &labels) {
                continue;
            }
            if filters.contains("label!") && filters.match_kv_list("label!", &labels) {
                continue;
            }
            if let Some(until) = until
                && berth_image::parse_rfc3339(&r.created).is_some_and(|c| c >= until)
            {
                continue;
            }
            if self.remove_inner(&r.id, false, false).await.is_ok() {
                removed.push(r.id);
            }
        }
        Ok(removed)
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(self: &Arc<Self>, name_or_id: &str, timeout: Option<i64>) -> Result<()> {
        let c = self.find(name_or_id)?;
        {
            let _op = c.op.lock().await;
            if c.rec().state.running {
                self.stop_locked(&c, timeout).await?;
            }
        }
        self.start(&c.id).await
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, name_or_id: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(name_or_id, force, false).await
    }

    /// `DELETE /containers/{id}?v=1`: also removes the container's anonymous volumes.
    pub async fn remove_with_volumes(
        self: &Arc<Self>,
        name_or_id: &str,
        force: bool,
        remove_volumes: bool,
    ) -> Result<()> {
        let c = self.find(name_or_id)?;
        if !force && c.rec().state.running {
            return Err(CategorizedError::new(
                Category::Conflict,
                format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id
                ),
            ));
        }
        self.remove_inner(&c.id, force, remove_volumes).await
    }

    async fn remove_inner(
        self: &Arc<Self>,
        id: &str,
        force: bool,
        remove_volumes: bool,
    ) -> Result<()> {
        let Ok(c) = self.find(id) else {
            return Ok(());
        };
        let _op = c.op.lock().await;
        if c.life.borrow().removed {
            return Ok(());
        }
        if c.rec().state.running {
            if !force {
                return Err(CategorizedError::new(
                    Category::Conflict,
                    format!(
                        "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
                    ),
                ));
            }
            self.stop_locked(&c, Some(0)).await?;
        }
        let state_dir = self.state_dir(id);
        shim::teardown(&state_dir, &self.runtime_root(), id).await;
        let this = self.clone();
        let id2 = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let rootfs = this.rootfs_dir(&id2);
            if files::is_mountpoint(&rootfs) {
                let _ = berth_snapshot::unmount(&rootfs);
            }
            if let Err(e) = this.images.remove_rootfs(&id2) {
                tracing::warn!("removing the snapshot of {id2}: {e}");
            }
            for dir in [
                this.state_dir(&id2),
                this.bundle_dir(&id2),
                this.container_dir(&id2),
            ] {
                if let Err(e) = std::fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!("removing {}: {e}", dir.display());
                }
            }
        })
        .await
        .map_err(|e| sys("remove task", e))?;
        let record = c.snapshot();
        {
            let mut idx = self.idx();
            idx.by_id.remove(id);
            if idx.names.get(&record.name).is_some_and(|i| i == id) {
                idx.names.remove(&record.name);
            }
        }
        self.execs_lock().retain(|_, e| e.container_id != id);
        if let Some(v) = self.volumes.get().cloned() {
            // Removing anonymous volumes deletes their data: off the async threads.
            let r = record.clone();
            let released =
                tokio::task::spawn_blocking(move || volumes::release(&v, &r, remove_volumes)).await;
            if let Err(e) = released {
                tracing::warn!("releasing the volumes of {id}: {e}");
            }
        }
        self.publish(&record, "destroy", &[]);
        c.life.send_modify(|l| l.removed = true);
        Ok(())
    }

    /// `POST /networks/{id}/connect`: a running container is wired at once; a stopped one
    /// joins the network at its next start.
    pub async fn connect(
        self: &Arc<Self>,
        network: &str,
        name_or_id: &str,
        request: EndpointRequest,
    ) -> Result<()> {
        let c = self.find(name_or_id)?;
        let net = self.networks.find(network)?;
        let _op = c.op.lock().await;
        let r = c.snapshot();
        if crate::networks::mode_network(&r.host_config.network_mode).is_none()
            || net.driver != "bridge"
        {
            return Err(CategorizedError::new(
                Category::Forbidden,
                "container sharing network namespace with another container or host cannot be connected to any other network",
            ));
        }
        if self.connected_key(&r, &net.id).is_some() {
            return Err(CategorizedError::new(
                Category::Forbidden,
                format!(
                    "endpoint with name {} already exists in network {}",
                    r.name, net.name
                ),
            ));
        }
        if r.state.running {
            let mut settings = r.network_settings.clone();
            let net_ctx = ContainerNet {
                id: &r.id,
                name: &r.name,
                hostname: &r.config.hostname,
                mode: &r.host_config.network_mode,
                endpoints: &r.endpoints_config,
                port_bindings: &[],
                mac: None,
            };
            self.networks
                .connect_live(&net_ctx, r.state.pid, &net.name, &request, &mut settings)
                .await?;
            c.rec().network_settings = settings;
        }
        c.rec().endpoints_config.insert(net.name.clone(), request);
        self.save(&c)?;
        self.networks
            .publish_container_event(&net, "connect", &r.id);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(
        self: &Arc<Self>,
        network: &str,
        name_or_id: &str,
        _force: bool,
    ) -> Result<()> {
        let c = self.find(name_or_id)?;
        let net = self.networks.find(network)?;
        let _op = c.op.lock().await;
        let r = c.snapshot();
        let Some(key) = self.connected_key(&r, &net.id) else {
            return Err(CategorizedError::new(
                Category::Forbidden,
                format!(
                    "container {} is not connected to network {}",
                    r.id, net.name
                ),
            ));
        };
        if key.is_none() {
            return Err(CategorizedError::new(
                Category::NotImplemented,
                format!(
                    "berth: disconnecting a container from the network its --network names ({}) is not supported yet",
                    net.name
                ),
            ));
        }
        if r.state.running {
            let mut settings = r.network_settings.clone();
            if let Some(ep) = settings.networks.remove(&net.name) {
                self.networks.release_endpoint(&r.id, &ep).await;
            }
            c.rec().network_settings = settings;
        }
        if let Some(key) = key {
            c.rec().endpoints_config.remove(&key);
        }
        self.save(&c)?;
        self.networks
            .publish_container_event(&net, "disconnect", &r.id);
        Ok(())
    }

    /// How `r` names network `net_id`: `Some(None)` through its `--network`,
    /// `Some(Some(key))` through its endpoints config, `None` when it does not.
    fn connected_key(&self, r: &ContainerRecord, net_id: &str) -> Option<Option<String>> {
        let is = |name: &str| {
            crate::networks::mode_network(name)
                .and_then(|n| self.networks.find(n).ok())
                .is_some_and(|n| n.id == net_id)
        };
        if is(&r.host_config.network_mode) {
            return Some(None);
        }
        r.endpoints_config
            .keys()
            .find(|k| is(k))
            .map(|k| Some(k.clone()))
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name_or_id: &str) -> Result<ContainerRecord> {
        Ok(self.find(name_or_id)?.snapshot())
    }

    /// Whether a container uses the image `image_id` (`sha256:…`), preferring a running one:
    /// the image store's in-use question for `docker rmi` and `image prune`.
    pub fn image_user(&self, image_id: &str) -> Option<berth_image::ImageUse> {
        let all: Vec<Arc<Container>> = self.idx().by_id.values().cloned().collect();
        let mut found = None;
        for c in all {
            let rec = c.rec();
            if rec.image != image_id {
                continue;
            }
            let user = berth_image::ImageUse {
                container_id: rec.id.clone(),
                running: rec.state.running,
            };
            if user.running {
                return Some(user);
            }
            found.get_or_insert(user);
        }
        found
    }

    /// `GET /containers/json`: newest first.
    pub fn list(&self, all: bool, filters: &Filters, limit: Option<usize>) -> Result<Vec<Summary>> {
        filters
            .validate(&[
                "name", "id", "label", "status", "ancestor", "exited", "before", "since", "health",
            ])
            .map_err(|e| CategorizedError::from_error(&e))?;
        for h in filters.get("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&h) {
                return Err(invalid(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        for s in filters.get("status") {
            if ![
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .contains(&s)
            {
                return Err(invalid(format!("Invalid filter 'status={s}'")));
            }
        }
        let all = all || filters.contains("status") || filters.contains("exited");
        let bound = |key: &str| -> Result<Option<i64>> {
            match filters.get(key).first() {
                Some(name) => Ok(Some(created_nanos(&self.find(name)?.snapshot()))),
                None => Ok(None),
            }
        };
        let (before, since) = (bound("before")?, bound("since")?);
        let records: Vec<ContainerRecord> =
            self.idx().by_id.values().map(|c| c.snapshot()).collect();
        let mut out: Vec<ContainerRecord> = records
            .into_iter()
            .filter(|r| all || r.state.running)
            .filter(|r| self.matches(r, filters))
            .filter(|r| before.is_none_or(|b| created_nanos(r) < b))
            .filter(|r| since.is_none_or(|b| created_nanos(r) > b))
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(created_nanos(r)));
        if let Some(n) = limit.filter(|n| *n > 0) {
            out.truncate(n);
        }
        Ok(out)
    }

    fn matches(&self, r: &ContainerRecord, f: &Filters) -> bool {
        if f.contains("name")
            && !f.fuzzy_match("name", &format!("/{}", r.name))
            && !f.fuzzy_match("name", &r.name)
        {
            return false;
        }
        if f.contains("id") && !f.get("id").iter().any(|p| r.id.starts_with(p)) {
            return false;
        }
        if f.contains("status") && !f.get("status").contains(&r.state.status.as_str()) {
            return false;
        }
        if f.contains("health") {
            let status = r
                .state
                .health
                .as_ref()
                .map_or("none", |h| h.status.as_str());
            if !f.get("health").contains(&status) {
                return false;
            }
        }
        if f.contains("exited") {
            if r.state.running || r.state.status != "exited" {
                return false;
            }
            if !f
                .get("exited")
                .iter()
                .any(|e| e.parse::<i32>().ok() == Some(r.state.exit_code))
            {
                return false;
            }
        }
        if f.contains("label") {
            let labels = r.config.labels.clone().unwrap_or_default();
            if !f.match_labels(&labels) {
                return false;
            }
        }
        if f.contains("ancestor") {
            let ok = f.get("ancestor").iter().any(|a| {
                *a == r.config.image
                    || self
                        .images
                        .resolve(a)
                        .is_ok_and(|id| id.to_string() == r.image)
            });
            if !ok {
                return false;
            }
        }
        true
    }

    /// `GET /containers/{id}/logs`.
    pub fn logs(&self, name_or_id: &str, opts: LogOptions) -> Result<LogStream> {
        let c = self.find(name_or_id)?;
        let r = c.snapshot();
        Ok(LogStream::new(
            PathBuf::from(&r.log_path),
            opts,
            c.life.subscribe(),
            r.config.tty,
        ))
    }

    /// Re-attaches to the shims of containers that were running when the daemon stopped;
    /// records the exit of those whose shim is gone.
    pub async fn restore(self: &Arc<Self>) {
        let containers: Vec<Arc<Container>> = self.idx().by_id.values().cloned().collect();
        // Bridges and rules first: containers restarted below need them, running ones
        // keep their published ports.
        let running: Vec<(String, NetworkSettings)> = containers
            .iter()
            .map(|c| c.snapshot())
            .filter(|r| r.state.running)
            .map(|r| (r.id, r.network_settings))
            .collect();
        if let Err(e) = self.networks.restore(&running).await {
            tracing::error!("restoring networks: {}", e.message);
        }
        for c in containers {
            if !c.rec().state.running {
                // A shim started just before the daemon died, whose start was never recorded:
                // its container holds addresses nobody re-registered (allocations live in
                // memory), so it must not go on running.
                let state_dir = self.state_dir(&c.id);
                let live = shim::alive(&state_dir)
                    && shim::state(&state_dir)
                        .await
                        .is_ok_and(|s| s.exit.is_none());
                if live {
                    tracing::info!("ending the unrecorded start of {}", c.id);
                    shim::teardown(&state_dir, &self.runtime_root(), &c.id).await;
                }
                let (policy, manual) = {
                    let r = c.rec();
                    (
                        r.host_config
                            .restart_policy
                            .as_ref()
                            .map(|p| p.name.clone())
                            .unwrap_or_default(),
                        r.has_been_manually_stopped,
                    )
                };
                if policy == "always" || (policy == "unless-stopped" && !manual) {
                    let this = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = this.start_inner(&c, false).await {
                            tracing::warn!("restarting {} at start-up: {}", c.id, e.message);
                        }
                    });
                }
                continue;
            }
            let state_dir = self.state_dir(&c.id);
            match shim::state(&state_dir).await {
                Ok(s) if s.exit.is_none() => {
                    c.rec().state.pid = s.pid;
                    let settings = c.rec().network_settings.clone();
                    self.networks.reattach(&c.id, s.pid, &settings);
                    tracing::info!("reconnected to the shim of {}", c.id);
                    self.spawn_monitor(c.clone());
                    self.spawn_health(c.clone());
                }
                Ok(s) => {
                    if let Some(exit) = s.exit {
                        self.record_exit(&c, &exit).await;
                    }
                }
                Err(_) => {
                    let exit = shim::recorded_exit(&state_dir).unwrap_or(ExitInfo {
                        exit_code: 255,
                        signal: None,
                        oom_killed: None,
                        finished_at: now(),
                    });
                    self.record_exit(&c, &exit).await;
                }
            }
        }
    }
}

/// The container's published ports: `-p` bindings and, with `-P`, its exposed ports.
fn port_specs(config: &Config, host: &HostConfig) -> Result<Vec<berth_network::ports::PortSpec>> {
    crate::networks::port_specs(
        host.port_bindings.as_ref(),
        host.publish_all_ports,
        config.exposed_ports.iter().flat_map(|m| m.keys()),
    )
}

/// The spec crate's input: the container's config with the image's merged under it.
fn merged_spec_config(
    config: &Config,
    host: &HostConfig,
    image: Option<&berth_image::ContainerConfig>,
) -> Result<berth_spec::ContainerConfig> {
    let mut spec_cfg = files::spec_config(config, host)?;
    volumes::add_anonymous_volumes(&mut spec_cfg, config, image);
    if let Some(image) = image {
        let img = berth_spec::ImageConfig {
            user: image.user.clone(),
            env: image.env.clone().unwrap_or_default(),
            cmd: image.cmd.clone().unwrap_or_default(),
            entrypoint: image.entrypoint.clone().unwrap_or_default(),
            working_dir: image.working_dir.clone(),
            stop_signal: image.stop_signal.clone(),
            labels: image.labels.clone().unwrap_or_default(),
        };
        berth_spec::merge_image_config(&img, &mut spec_cfg);
    }
    Ok(spec_cfg)
}

/// When the container was created, in ns since the epoch (for ordering).
fn created_nanos(r: &ContainerRecord) -> i64 {
    logs::parse_time(&r.created).unwrap_or(0)
}

/// Whether the restart policy asks for another run after an exit with `code`.
fn should_restart(r: &ContainerRecord, code: i32) -> bool {
    if r.has_been_manually_stopped {
        return false;
    }
    let Some(policy) = &r.host_config.restart_policy else {
        return false;
    };
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0
                && (policy.maximum_retry_count == 0 || r.restart_count < policy.maximum_retry_count)
        }
        _ => false,
    }
}

/// A boxed future.
pub type BoxFut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// `KILL`, `SIGKILL`, `9`, `SIGRTMIN+3` → a number.
pub fn parse_signal(raw: &str) -> Option<i32> {
    if let Ok(n) = raw.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = berth_spec::parse_stop_signal(raw).ok()?;
    if let Some(k) = name.strip_prefix("SIGRTMIN+") {
        return k.parse::<i32>().ok().map(|k| 34 + k);
    }
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}
