//! One build: stages in order, each instruction dispatched on the stage's state, every
//! step committed as an image (with a layer for COPY/ADD/RUN/WORKDIR changes, an empty
//! history entry otherwise), as Docker's classic builder does, with the cache in front.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_dockerfile::{
    BuildArgs, Copy, Dockerfile, Instruction, MountType, NetworkMode, Scope, StageGraph, StageRef,
    Step, is_predefined_arg,
};
use berth_image::{ContainerConfig, History, ImageConfig, ImageStore, now_rfc3339};
use berth_reference::{ImageId, Reference, truncate_id};

use crate::backend::{Backend, OutputStream, RunMount, RunSpec};
use crate::cache::{Cache, key};
use crate::context::{Context, ContextLimits, FileCache, Source, checksum};
use crate::error::{BuildError, Result};
use crate::fsops::{CopyAttrs, CopyJob, copy_into, mkdir_all, parse_chmod, parse_chown};
use crate::history::history_text;
use crate::values::{command, expand_port, healthcheck_json, join_path, run_argv};
use crate::workspace::{Workspace, clean_leftovers, random_hex, top_layer, write_layer};

/// Docker's default PATH, given to a stage that has none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Largest Dockerfile read from a context.
const MAX_DOCKERFILE: usize = berth_dockerfile::limits::MAX_DOCKERFILE_BYTES;

/// What `docker build` asks for.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context (`-f`).
    pub dockerfile: String,
    /// `-t` (any number).
    pub tags: Vec<Reference>,
    /// `--build-arg` (`None`: named without a value and unset on the client; ignored).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--rm` (default true): remove a RUN step's container after it succeeded.
    pub remove: bool,
    /// `--force-rm`: remove it even after a failure.
    pub force_remove: bool,
    /// `--network` for RUN.
    pub network_mode: String,
    /// `--pull`: pull every `FROM` image even when it is present.
    pub pull: bool,
    /// `--cache-from`: images whose history seeds the cache.
    pub cache_from: Vec<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            dockerfile: "Dockerfile".into(),
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            target: None,
            no_cache: false,
            remove: true,
            force_remove: false,
            network_mode: "default".into(),
            pull: false,
            cache_from: Vec::new(),
        }
    }
}

/// What a build reports as it goes (the API turns these into its JSON stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Text for the user (`Step 1/3 : FROM scratch\n`, RUN output, ` ---> id\n`).
    Stream(String),
    /// The final image id (sent before `Successfully built`).
    Aux(ImageId),
}

/// The builder: owns `<data-root>/builder/` (`cache/`, `tmp/`) over the image store.
#[derive(Debug)]
pub struct Builder {
    store: Arc<ImageStore>,
    root: PathBuf,
    /// Files of earlier contexts (`<builder>/files/`), so a re-sent file is compared, not
    /// written and hashed again.
    files: FileCache,
}

impl Builder {
    /// Opens the builder's directory `root` and removes what a crashed build left.
    pub fn open(store: Arc<ImageStore>, root: &Path) -> Result<Builder> {
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(BuildError::io("create", &tmp))?;
        Cache::open(&root.join("cache"))?;
        clean_leftovers(&store, &tmp);
        let files = FileCache::open(&root.join("files"))?;
        files.trim();
        Ok(Builder {
            store,
            root: root.to_path_buf(),
            files,
        })
    }

    /// Unpacks an uploaded context (tar, plain or gzip, or a bare Dockerfile) into a fresh
    /// directory removed when the context is dropped.
    pub fn unpack_context(
        &self,
        input: &mut dyn std::io::Read,
        limits: ContextLimits,
    ) -> Result<Context> {
        Context::from_tar_cached(input, &self.context_dir(), limits, Some(&self.files))
    }

    /// The build cache's records (`system df`): steps, context files, cache mounts.
    pub fn cache_usage(&self) -> Vec<crate::usage::CacheRecord> {
        crate::usage::list(&self.root)
    }

    /// Keeps the file cache within its budget (files no context uses go first).
    pub fn trim_files(&self) {
        self.files.trim();
    }

    /// A fresh directory path (not created) for unpacking an uploaded context.
    pub fn context_dir(&self) -> PathBuf {
        self.tmp().join(format!("ctx-{}", random_hex()))
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Forgets the build cache; returns the number of entries removed.
    pub fn prune_cache(&self) -> Result<usize> {
        self.files.trim_to(0);
        Cache::open(&self.root.join("cache"))?.clear()
    }

    /// Builds `opts.dockerfile` from `ctx`; returns the image id after tagging it.
    pub fn build(
        &self,
        backend: &dyn Backend,
        ctx: &Context,
        opts: &BuildOptions,
        report: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<ImageId> {
        let name = opts.dockerfile.trim_start_matches("./").to_owned();
        let src = ctx.read_file(&name, MAX_DOCKERFILE)?;
        let df =
            Dockerfile::parse(&name, &src).map_err(|e| BuildError::Parse(e.docker_message()))?;
        let cache = Cache::open(&self.root.join("cache"))?;
        let mut run = BuildRun::new(self, backend, ctx, opts, &df, &cache, report)?;
        let id = run.build_all()?;
        run.finish(&id)?;
        Ok(id)
    }
}

/// The state of a stage while its steps run.
struct StageState {
    image: Option<ImageId>,
    config: ImageConfig,
    scope: Scope,
    cmd_set: bool,
}

impl StageState {
    fn container(&self) -> ContainerConfig {
        self.config.config.clone().unwrap_or_default()
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }
}

/// What a step changes.
enum Work {
    /// Only the config.
    None,
    /// COPY/ADD.
    Copy(Box<CopyWork>),
    /// RUN, with its `--mount`s still to resolve.
    Run(RunSpec, Vec<PlannedMount>),
    /// WORKDIR: make the directory.
    Mkdir(String),
}

struct CopyWork {
    /// Sources from the context (or the `--from` image), with their root.
    from: CopySource,
    sources: Vec<String>,
    inline: Vec<(String, String)>,
    dest: String,
    dest_is_dir: bool,
    chown: Option<String>,
    chmod: Option<u32>,
    unpack: bool,
    /// `--exclude` patterns.
    exclude: Vec<String>,
    /// `ADD <url>` files, downloaded while planning (their content is the cache key).
    remote: Option<Downloads>,
}

/// Files `ADD` downloaded, each in its own numbered directory under `dir`; removed on drop.
struct Downloads {
    dir: PathBuf,
    sources: Vec<Source>,
}

impl Drop for Downloads {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `RUN --mount`, checked and with its source located.
enum PlannedMount {
    /// `type=cache`: a directory under `<builder>/mounts/` that outlives builds.
    Cache {
        dir: PathBuf,
        target: String,
        readonly: bool,
    },
    /// `type=bind` from the context: a path inside it.
    Context {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// `type=bind,from=stage|image`: a path inside that image, mounted for the step.
    Image {
        config: Option<Box<ImageConfig>>,
        source: String,
        target: String,
        readonly: bool,
    },
    /// `type=tmpfs`.
    Tmpfs { target: String },
}

enum CopySource {
    Context,
    Image(Option<Box<ImageConfig>>),
}

struct Change {
    container: ContainerConfig,
    created_by: String,
    cache_extra: String,
    work: Work,
    author: Option<String>,
}

struct BuildRun<'a> {
    b: &'a Builder,
    backend: &'a dyn Backend,
    ctx: &'a Context,
    opts: &'a BuildOptions,
    df: &'a Dockerfile,
    cache: &'a Cache,
    report: &'a mut (dyn FnMut(Progress) + Send),
    global: Scope,
    graph: StageGraph,
    step_no: usize,
    total: usize,
    results: Vec<Option<(Option<ImageId>, ImageConfig)>>,
    declared: BTreeSet<String>,
    /// `--build-arg SOURCE_DATE_EPOCH=…`: the time every new config and history entry gets.
    epoch: Option<String>,
}

/// A [`BuildRun`] without its output sink, to start a stage on another thread.
struct Shared<'a> {
    b: &'a Builder,
    backend: &'a dyn Backend,
    ctx: &'a Context,
    opts: &'a BuildOptions,
    df: &'a Dockerfile,
    cache: &'a Cache,
    global: Scope,
    graph: StageGraph,
    total: usize,
    results: Vec<Option<(Option<ImageId>, ImageConfig)>>,
    epoch: Option<String>,
}

impl<'a> Shared<'a> {
    fn with<'s>(self, report: &'s mut (dyn FnMut(Progress) + Send), step_no: usize) -> BuildRun<'s>
    where
        'a: 's,
    {
        BuildRun {
            b: self.b,
            backend: self.backend,
            ctx: self.ctx,
            opts: self.opts,
            df: self.df,
            cache: self.cache,
            report,
            global: self.global,
            graph: self.graph,
            step_no,
            total: self.total,
            results: self.results,
            declared: BTreeSet::new(),
            epoch: self.epoch,
        }
    }
}

impl<'a> BuildRun<'a> {
    fn new(
        b: &'a Builder,
        backend: &'a dyn Backend,
        ctx: &'a Context,
        opts: &'a BuildOptions,
        df: &'a Dockerfile,
        cache: &'a Cache,
        report: &'a mut (dyn FnMut(Progress) + Send),
    ) -> Result<Self> {
        let args = BuildArgs {
            values: opts
                .build_args
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                .collect(),
            ..BuildArgs::default()
        };
        let parse = |e: berth_dockerfile::ParseError| BuildError::Parse(e.docker_message());
        let global = Scope::global(df, &args).map_err(parse)?;
        let graph = StageGraph::build(df, &args).map_err(parse)?;
        let total = df.meta_args.len()
            + df.stages.iter().map(|s| 1 + s.steps.len()).sum::<usize>()
            + usize::from(!opts.labels.is_empty());
        Ok(BuildRun {
            b,
            backend,
            ctx,
            opts,
            df,
            cache,
            report,
            declared: global.declared_args().clone(),
            global,
            graph,
            step_no: 0,
            total,
            epoch: source_date_epoch(opts)?,
            results: vec![None; df.stages.len()],
        })
    }

    fn say(&mut self, text: impl Into<String>) {
        (self.report)(Progress::Stream(text.into()));
    }

    fn header(&mut self, original: &str) {
        self.step_no += 1;
        let line = format!(
            "Step {}/{} : {}\n",
            self.step_no,
            self.total,
            original.trim()
        );
        self.say(line);
    }

    /// Builds the stages the target needs (BuildKit's rule: unused stages are skipped), wave
    /// by wave; the stages of one wave do not depend on each other and run in parallel. Step
    /// numbers follow file order, and a parallel stage's output is shown after the wave's
    /// first stage, so the stream reads like a sequential build.
    fn build_all(&mut self) -> Result<ImageId> {
        for step in &self.df.meta_args {
            self.header(&step.original);
        }
        let target = self
            .df
            .target(self.opts.target.as_deref())
            .map_err(|e| {
                BuildError::Invalid(format!("failed to reach build target {}", e.message))
            })?
            .index;
        let waves = self.graph.waves(target);
        let needed: BTreeSet<usize> = waves.iter().flatten().copied().collect();
        let mut starts = BTreeMap::new();
        let mut next = self.step_no;
        for stage in self.df.stages.iter().filter(|s| needed.contains(&s.index)) {
            starts.insert(stage.index, next);
            next += 1 + stage.steps.len();
        }
        self.total = next + usize::from(!self.opts.labels.is_empty());
        for wave in waves {
            self.build_wave(&wave, &starts, target)?;
        }
        match &self.results[target] {
            Some((Some(id), _)) => Ok(id.clone()),
            _ => Err(BuildError::Invalid(
                "No image was generated. Is your Dockerfile empty?".into(),
            )),
        }
    }

    fn build_wave(
        &mut self,
        wave: &[usize],
        starts: &BTreeMap<usize, usize>,
        target: usize,
    ) -> Result<()> {
        let Some((&first, rest)) = wave.split_first() else {
            return Ok(());
        };
        let outcomes = std::thread::scope(|scope| {
            let others: Vec<_> = rest
                .iter()
                .map(|&i| {
                    let (tx, rx) = std::sync::mpsc::channel::<Progress>();
                    let shared = self.shared();
                    let start = starts.get(&i).copied().unwrap_or_default();
                    let handle = scope.spawn(move || {
                        let mut sink = move |p: Progress| {
                            let _ = tx.send(p);
                        };
                        let mut child = shared.with(&mut sink, start);
                        let r = child.build_stage(i, i == target);
                        (r, child.declared)
                    });
                    (i, handle, rx)
                })
                .collect();
            self.step_no = starts.get(&first).copied().unwrap_or_default();
            let r = self.build_stage(first, first == target);
            let mut outcomes = vec![(first, r, Vec::new())];
            for (i, handle, rx) in others {
                let joined = handle.join();
                let output: Vec<Progress> = rx.try_iter().collect();
                let (r, declared) = joined.unwrap_or_else(|_| {
                    (
                        Err(BuildError::Backend(format!("stage {i} panicked"))),
                        BTreeSet::new(),
                    )
                });
                self.declared.extend(declared);
                outcomes.push((i, r, output));
            }
            outcomes
        });
        for (i, r, output) in outcomes {
            for p in output {
                (self.report)(p);
            }
            self.results[i] = Some(r?);
        }
        Ok(())
    }

    /// What a parallel stage needs from this run (everything but the output sink).
    fn shared(&self) -> Shared<'a> {
        Shared {
            b: self.b,
            backend: self.backend,
            ctx: self.ctx,
            opts: self.opts,
            df: self.df,
            cache: self.cache,
            global: self.global.clone(),
            graph: self.graph.clone(),
            total: self.total,
            results: self.results.clone(),
            epoch: self.epoch.clone(),
        }
    }

    fn build_stage(&mut self, index: usize, last: bool) -> Result<(Option<ImageId>, ImageConfig)> {
        let stage = &self.df.stages[index];
        self.header(&format!("FROM {}", from_text(stage)));
        let mut state = self.begin_stage(index)?;
        self.run_triggers(&mut state)?;
        for step in &stage.steps {
            self.header(&step.original);
            self.dispatch(&mut state, step)?;
        }
        if last && !self.opts.labels.is_empty() {
            let step = label_step(&self.opts.labels)?;
            self.header(&step.original);
            self.dispatch(&mut state, &step)?;
        }
        self.declared
            .extend(state.scope.declared_args().iter().cloned());
        Ok((state.image, state.config))
    }

    fn begin_stage(&mut self, index: usize) -> Result<StageState> {
        let base = self.graph.bases[index].clone();
        let (image, mut config) = match &base {
            StageRef::Scratch => (None, scratch_config()),
            StageRef::Stage(i) => self.results[*i]
                .clone()
                .ok_or_else(|| BuildError::Invalid(format!("stage {i} was not built")))?,
            StageRef::Image(name) => {
                let id = self.base_image(name)?;
                let cfg = self.b.store.config(&id)?;
                (Some(id), cfg)
            }
        };
        match &image {
            Some(id) => self.say(format!(" ---> {}\n", truncate_id(id.as_str()))),
            None => self.say(" ---> \n"),
        }
        let c = config.config.get_or_insert_with(ContainerConfig::default);
        let env = c.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(DEFAULT_PATH.into());
        }
        let pairs: Vec<(String, String)> = env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (e.clone(), String::new()),
            })
            .collect();
        Ok(StageState {
            image,
            scope: self.global.for_stage(&pairs),
            config,
            cmd_set: false,
        })
    }

    /// A `FROM` image: the local one, pulled when missing (or always with `--pull`).
    fn base_image(&mut self, name: &str) -> Result<ImageId> {
        if !self.opts.pull
            && let Ok(id) = self.b.store.resolve(name)
        {
            return Ok(id);
        }
        let backend = self.backend;
        let report = &mut *self.report;
        backend.pull(name, &mut |line| report(Progress::Stream(line)))
    }

    /// ONBUILD triggers of the base image run first, then are cleared (not inherited).
    fn run_triggers(&mut self, state: &mut StageState) -> Result<()> {
        let triggers = state
            .config
            .config
            .as_mut()
            .and_then(|c| c.on_build.take())
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(());
        }
        let n = triggers.len();
        self.say(format!(
            "# Executing {n} build trigger{}\n",
            if n == 1 { "" } else { "s" }
        ));
        for t in &triggers {
            let df = Dockerfile::parse("ONBUILD", format!("FROM scratch\n{t}\n").as_bytes())
                .map_err(|e| BuildError::Parse(e.docker_message()))?;
            for step in &df.stages[0].steps {
                self.dispatch(state, step)?;
            }
        }
        Ok(())
    }

    fn dispatch(&mut self, state: &mut StageState, step: &Step) -> Result<()> {
        let inst = state
            .scope
            .step(&self.df.file, step)
            .map_err(|e| BuildError::Parse(e.docker_message()))?;
        let change = self.plan(state, step, inst)?;
        self.commit_step(state, change)
    }

    /// The new config and work of one instruction.
    fn plan(&mut self, state: &mut StageState, step: &Step, inst: Instruction) -> Result<Change> {
        let mut c = state.container();
        let mut change = Change {
            container: c.clone(),
            created_by: String::new(),
            cache_extra: String::new(),
            work: Work::None,
            author: None,
        };
        let expanded = inst.clone();
        match inst {
            Instruction::From(_) => {
                return Err(BuildError::Invalid("FROM inside a stage".into()));
            }
            Instruction::Env(_) => {
                c.env = Some(
                    state
                        .scope
                        .env()
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                );
            }
            Instruction::Label(kvs) => {
                let labels = c.labels.get_or_insert_with(BTreeMap::new);
                for kv in kvs {
                    labels.insert(kv.key, kv.value);
                }
            }
            Instruction::Maintainer(m) => change.author = Some(m),
            Instruction::Expose(ports) => {
                let map = c.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in ports {
                    for port in expand_port(&p)? {
                        map.insert(port, serde_json::json!({}));
                    }
                }
            }
            Instruction::Volume(vols) => {
                let map = c.volumes.get_or_insert_with(BTreeMap::new);
                for v in vols {
                    map.insert(v, serde_json::json!({}));
                }
            }
            Instruction::User(u) => c.user = u,
            Instruction::Workdir(w) => {
                let dir = join_path(&c.working_dir, &w);
                c.working_dir = dir.clone();
                change.created_by = format!("{} #(nop) WORKDIR {dir}", state.shell().join(" "));
                change.work = Work::Mkdir(dir);
            }
            Instruction::StopSignal(s) => c.stop_signal = s,
            Instruction::Shell(s) => c.shell = Some(s),
            Instruction::Arg(_) => {}
            Instruction::Onbuild(o) => c.on_build.get_or_insert_with(Vec::new).push(o.expression),
            Instruction::Healthcheck(h) => c.healthcheck = Some(healthcheck_json(&h)),
            Instruction::Cmd(cmd) => {
                c.cmd = Some(command(&cmd, &state.shell()));
                state.cmd_set = true;
            }
            Instruction::Entrypoint(ep) => {
                c.entrypoint = Some(command(&ep, &state.shell()));
                if !state.cmd_set {
                    c.cmd = None;
                }
            }
            Instruction::Run(r) => {
                let argv = run_argv(&r.script(), &state.shell());
                let args: Vec<String> = state
                    .scope
                    .args()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let mut created_by = argv.join(" ");
                if !args.is_empty() {
                    created_by = format!("|{} {} {created_by}", args.len(), args.join(" "));
                }
                change.created_by = created_by;
                let image = state.image.clone().ok_or_else(|| {
                    BuildError::Invalid(
                        "cannot RUN in an empty image (FROM scratch has no shell)".into(),
                    )
                })?;
                let network_mode = match r.network {
                    Some(NetworkMode::None) => "none".to_owned(),
                    Some(NetworkMode::Host) => "host".to_owned(),
                    _ => self.opts.network_mode.clone(),
                };
                let (mounts, extra) = self.plan_mounts(&r.mounts, &c.working_dir)?;
                change.cache_extra = extra;
                change.work = Work::Run(
                    RunSpec {
                        image,
                        cmd: argv,
                        env: state
                            .scope
                            .run_env()
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect(),
                        user: c.user.clone(),
                        working_dir: c.working_dir.clone(),
                        network_mode,
                        mounts: Vec::new(),
                    },
                    mounts,
                );
            }
            Instruction::Copy(cp) => self.plan_copy(state, &c, cp, false, &mut change)?,
            Instruction::Add(cp) => self.plan_copy(state, &c, cp, true, &mut change)?,
        }
        if change.created_by.is_empty() {
            // Docker prefixes config steps with the shell in force after the step.
            let shell = c
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            let text =
                history_text(&expanded, &c).unwrap_or_else(|| step.original.trim().to_owned());
            change.created_by = format!("{} #(nop)  {text}", shell.join(" "));
        }
        change.container = c;
        Ok(change)
    }

    fn plan_copy(
        &mut self,
        state: &StageState,
        c: &ContainerConfig,
        cp: Copy,
        add: bool,
        change: &mut Change,
    ) -> Result<()> {
        let cmd = if add { "ADD" } else { "COPY" };
        let mut cp = cp;
        let (urls, locals): (Vec<String>, Vec<String>) =
            cp.sources.drain(..).partition(|s| is_url(s));
        cp.sources = locals;
        if let Some(url) = cp.sources.iter().find(|s| s.contains("://")) {
            return Err(BuildError::Invalid(format!(
                "{cmd} failed: unsupported source {url}: only http and https URLs can be fetched"
            )));
        }
        if !urls.is_empty() && (!add || cp.from.is_some()) {
            return Err(BuildError::Invalid(format!(
                "{cmd} failed: source can't be a URL for COPY"
            )));
        }
        if cp.checksum.is_some() && (urls.len() != 1 || !cp.sources.is_empty()) {
            return Err(BuildError::Invalid(
                "ADD failed: checksum can't be specified for non-HTTP(S) sources".into(),
            ));
        }
        let remote = if urls.is_empty() {
            None
        } else {
            Some(self.download(&urls, cp.checksum.as_deref())?)
        };
        let from = match &cp.from {
            None => CopySource::Context,
            Some(f) => CopySource::Image(self.source_image(f)?),
        };
        let wildcard = cp.sources.iter().any(|s| s.contains(['*', '?', '[']));
        let count = cp.sources.len() + cp.inline.len() + urls.len();
        let dest_is_dir = cp.dest.ends_with('/') || cp.dest.ends_with("/.");
        if (count > 1 || wildcard) && !dest_is_dir && !(count == 1 && wildcard) {
            return Err(BuildError::Invalid(format!(
                "When using {cmd} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let dest = join_path(&c.working_dir, &cp.dest);
        let dest = if dest_is_dir && !dest.ends_with('/') {
            format!("{dest}/")
        } else {
            dest
        };
        let local_hash = match &from {
            CopySource::Context => sources_checksum(self.ctx, &cp.sources, cmd)?,
            CopySource::Image(cfg) => {
                // Content, not the image id: Docker's history names the files' checksum, and
                // an unchanged file from a rebuilt stage keeps the cache.
                let top = cfg.as_deref().and_then(top_layer);
                let view = Workspace::view(&self.b.store, top.as_ref(), &self.b.tmp())?;
                sources_checksum(&Context::image_root(view.root()), &cp.sources, cmd)?
            }
        };
        let hash = match &remote {
            None => local_hash,
            Some(d) => {
                let sum = checksum(&Context::image_root(&d.dir), &d.sources)?;
                match (cp.sources.is_empty(), d.sources.len()) {
                    (true, 1) => format!("file:{sum}"),
                    (true, _) => format!("multi:{sum}"),
                    (false, _) => format!("multi:{}", key(&[&local_hash, &sum])),
                }
            }
        };
        let inline: Vec<(String, String)> = cp
            .inline
            .iter()
            .map(|i| (i.name.clone(), i.heredoc.content.clone()))
            .collect();
        let inline_sum = key(&inline
            .iter()
            .flat_map(|(n, d)| [n.as_str(), d.as_str()])
            .collect::<Vec<_>>());
        // Docker writes `--chown=` with no space before the checksum; kept for fidelity.
        let chown = cp
            .chown
            .as_deref()
            .map(|c| format!("--chown={c}"))
            .unwrap_or_default();
        change.created_by = format!(
            "{} #(nop) {cmd} {chown}{hash} in {dest} ",
            state.shell().join(" ")
        );
        change.cache_extra = format!(
            "{hash}|{inline_sum}|{:?}|{:?}|{}|{:?}",
            cp.chown, cp.chmod, cp.link, cp.exclude
        );
        change.work = Work::Copy(Box::new(CopyWork {
            from,
            sources: cp.sources,
            inline,
            dest,
            dest_is_dir: dest_is_dir || count > 1 || wildcard,
            chown: cp.chown,
            chmod: cp.chmod.as_deref().map(parse_chmod).transpose()?,
            unpack: add && cp.unpack != Some(false),
            exclude: cp.exclude.clone(),
            remote,
        }));
        Ok(())
    }

    /// Downloads `ADD`'s URLs through the backend: mode 0600, mtime from `Last-Modified`,
    /// never unpacked; `--checksum` checked against the bytes.
    fn download(&mut self, urls: &[String], expected: Option<&str>) -> Result<Downloads> {
        let mut d = Downloads {
            dir: self.b.tmp().join(format!("dl-{}", random_hex())),
            sources: Vec::new(),
        };
        for (i, url) in urls.iter().enumerate() {
            let sub = d.dir.join(i.to_string());
            std::fs::create_dir_all(&sub).map_err(BuildError::io("create", &sub))?;
            let part = sub.join(".download");
            let mut file = std::fs::File::create(&part).map_err(BuildError::io("create", &part))?;
            let mut hashing = HashingWriter::new(&mut file);
            let fetched = self
                .backend
                .fetch(url, MAX_DOWNLOAD, &mut hashing)
                .map_err(|e| match e {
                    BuildError::Backend(m) => BuildError::Source(m),
                    other => other,
                })?;
            let digest = format!("sha256:{}", hashing.finish());
            drop(file);
            if let Some(want) = expected
                && want != digest
            {
                return Err(BuildError::Source(format!(
                    "ADD failed: checksum mismatch for {url}: expected {want}, got {digest}"
                )));
            }
            let name = fetched
                .filename
                .as_deref()
                .and_then(safe_file_name)
                .or_else(|| url_file_name(url))
                .ok_or_else(|| {
                    BuildError::Source(format!("cannot determine filename from url: {url}"))
                })?;
            let path = sub.join(&name);
            std::fs::rename(&part, &path).map_err(BuildError::io("rename", &path))?;
            let mode =
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
            std::fs::set_permissions(&path, mode).map_err(BuildError::io("chmod", &path))?;
            if let Some(secs) = fetched.last_modified {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
                let f = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .map_err(BuildError::io("open", &path))?;
                f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
                    .map_err(BuildError::io("set times", &path))?;
            }
            d.sources.push(Source {
                rel: format!("{i}/{name}"),
                path,
                is_dir: false,
            });
        }
        Ok(d)
    }

    /// Checks and locates `RUN --mount`s; returns them and their part of the step's cache
    /// key (the content of bound sources; a cache mount's content is not part of it).
    fn plan_mounts(
        &self,
        mounts: &[berth_dockerfile::Mount],
        workdir: &str,
    ) -> Result<(Vec<PlannedMount>, String)> {
        let mut out = Vec::new();
        let mut key_parts = Vec::new();
        for m in mounts {
            let target = m
                .target
                .as_deref()
                .map(|t| join_path(workdir, t))
                .ok_or_else(|| BuildError::Invalid("mount target is required".into()))?;
            key_parts.push(format!("{}:{target}:{}", m.kind.as_str(), m.readonly));
            match m.kind {
                MountType::Cache => {
                    let id = m.id.clone().unwrap_or_else(|| target.clone());
                    let dir = self
                        .b
                        .root
                        .join("mounts")
                        .join(format!("cache-{}", key(&[&id])));
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir).map_err(BuildError::io("create", &dir))?;
                        let mode = m.mode.unwrap_or(0o755);
                        std::fs::set_permissions(
                            &dir,
                            std::os::unix::fs::PermissionsExt::from_mode(mode),
                        )
                        .map_err(BuildError::io("chmod", &dir))?;
                        std::os::unix::fs::chown(
                            &dir,
                            Some(m.uid.unwrap_or(0)),
                            Some(m.gid.unwrap_or(0)),
                        )
                        .map_err(BuildError::io("chown", &dir))?;
                    }
                    out.push(PlannedMount::Cache {
                        dir,
                        target,
                        readonly: m.readonly,
                    });
                }
                MountType::Tmpfs => out.push(PlannedMount::Tmpfs { target }),
                MountType::Bind => {
                    let source = m.source.clone().unwrap_or_else(|| "/".into());
                    match &m.from {
                        None => {
                            let found = self
                                .ctx
                                .sources(&source)
                                .map_err(|e| copy_failed("mount", e))?;
                            key_parts.push(checksum(self.ctx, &found)?);
                            let path =
                                found.into_iter().next().map(|s| s.path).ok_or_else(|| {
                                    BuildError::Source(format!("mount source {source} not found"))
                                })?;
                            out.push(PlannedMount::Context {
                                source: path,
                                target,
                                // The context is shared with later steps: never written.
                                readonly: true,
                            });
                        }
                        Some(from) => {
                            let config = self.source_image(from)?;
                            let id = config
                                .as_ref()
                                .map(|c| key(&[&serde_json::to_string(c).unwrap_or_default()]));
                            key_parts.push(format!("{}:{source}", id.unwrap_or_default()));
                            out.push(PlannedMount::Image {
                                config,
                                source,
                                target,
                                readonly: true,
                            });
                        }
                    }
                }
                MountType::Secret | MountType::Ssh => {
                    return Err(BuildError::Invalid(format!(
                        "RUN --mount=type={} is not supported by berth yet",
                        m.kind.as_str()
                    )));
                }
            }
        }
        Ok((out, key_parts.join("|")))
    }

    /// `--from=`: an earlier stage (by name or index) or a local image; `None` for an empty
    /// file system.
    fn source_image(&self, from: &str) -> Result<Option<Box<ImageConfig>>> {
        let stage = match from.parse::<usize>() {
            Ok(i) => Some(i),
            Err(_) => self.df.stage_by_name(from).map(|s| s.index),
        };
        if let Some(i) = stage {
            let (_, cfg) = self.results.get(i).cloned().flatten().ok_or_else(|| {
                BuildError::Invalid(format!("invalid from flag value {from}: stage not built"))
            })?;
            return Ok(Some(Box::new(cfg)));
        }
        let id = self.b.store.resolve(from).map_err(|_| {
            BuildError::NotFound(format!(
                "invalid from flag value {from}: berth builds use local images only; no such image: {from}"
            ))
        })?;
        Ok(Some(Box::new(self.b.store.config(&id)?)))
    }

    fn commit_step(&mut self, state: &mut StageState, change: Change) -> Result<()> {
        let parent = state
            .image
            .as_ref()
            .map_or("scratch", |i| i.as_str())
            .to_owned();
        let container_json = serde_json::to_string(&change.container).unwrap_or_default();
        let author = change
            .author
            .clone()
            .unwrap_or_else(|| state.config.author.clone());
        let epoch = self.epoch.clone().unwrap_or_default();
        let k = key(&[
            &parent,
            &change.created_by,
            &container_json,
            &change.cache_extra,
            &author,
            &epoch,
        ]);
        if !self.opts.no_cache
            && let Some(id) = self.cache.get(&self.b.store, &k)
        {
            self.say(" ---> Using cache\n");
            self.say(format!(" ---> {}\n", truncate_id(id.as_str())));
            state.config = self.b.store.config(&id)?;
            state.image = Some(id);
            return Ok(());
        }
        let layer_path = self.b.tmp().join(format!("layer-{}.tar", random_hex()));
        let result = self.make_layer(state, &change.work, &layer_path);
        let outcome = result.and_then(|(layer, container)| {
            self.commit_image(state, &change, author, layer, container)
        });
        let _ = std::fs::remove_file(&layer_path);
        let id = outcome?;
        self.cache.put(&k, &id)?;
        self.say(format!(" ---> {}\n", truncate_id(id.as_str())));
        state.config = self.b.store.config(&id)?;
        state.image = Some(id);
        Ok(())
    }

    fn commit_image(
        &mut self,
        state: &StageState,
        change: &Change,
        author: String,
        layer: Option<std::fs::File>,
        container: Option<String>,
    ) -> Result<ImageId> {
        let created = self.epoch.clone().unwrap_or_else(now_rfc3339);
        let mut config = state.config.clone();
        config.created = Some(created.clone());
        config.author = author;
        config.config = Some(change.container.clone());
        // A child image starts its own comment and container fields (Docker's NewChildImage).
        config.container_config = None;
        config.container = String::new();
        config.comment = String::new();
        config.history.push(History {
            created: Some(created),
            created_by: change.created_by.clone(),
            author: config.author.clone(),
            empty_layer: layer.is_none(),
            ..History::default()
        });
        let mut layer = layer;
        let diff = layer.as_mut().map(|f| f as &mut dyn std::io::Read);
        let id = self
            .b
            .store
            .commit(state.image.as_ref(), diff, config, &[])?;
        if let Some(cid) = container
            && self.opts.remove
        {
            self.backend.remove(&cid)?;
            self.say(format!(
                "Removing intermediate container {}\n",
                truncate_id(&cid)
            ));
        }
        Ok(id)
    }

    /// Does a step's file-system work; the layer tar (if anything changed) and the RUN
    /// container to remove.
    fn make_layer(
        &mut self,
        state: &StageState,
        work: &Work,
        out: &Path,
    ) -> Result<(Option<std::fs::File>, Option<String>)> {
        let top = top_layer(&state.config);
        let tmp = self.b.tmp();
        match work {
            Work::None => Ok((None, None)),
            Work::Mkdir(dir) => {
                let ws = Workspace::writable(&self.b.store, top.as_ref(), &tmp)?;
                mkdir_all(ws.root(), dir, &CopyAttrs::default())?;
                Ok((ws.into_diff(out)?, None))
            }
            Work::Copy(cw) => {
                let ws = Workspace::writable(&self.b.store, top.as_ref(), &tmp)?;
                self.copy(ws.root(), cw)?;
                Ok((ws.into_diff(out)?, None))
            }
            Work::Run(spec, mounts) => {
                // Views of `from=` images stay mounted until the step is done.
                let mut views = Vec::new();
                let mut spec = spec.clone();
                for m in mounts {
                    spec.mounts.push(resolve_mount(self.b, m, &mut views)?);
                }
                self.run_step(&spec, out).map(|(l, c)| (l, Some(c)))
            }
        }
    }

    fn copy(&mut self, rootfs: &Path, cw: &CopyWork) -> Result<()> {
        let (uid, gid) = match &cw.chown {
            Some(spec) => parse_chown(rootfs, spec)?,
            None => (0, 0),
        };
        let attrs = CopyAttrs {
            uid,
            gid,
            chmod: cw.chmod,
        };
        let cmd = if cw.unpack { "ADD" } else { "COPY" };
        if !cw.inline.is_empty() {
            let dir = self.b.tmp().join(format!("inline-{}", random_hex()));
            let res = self.copy_inline(rootfs, cw, &dir, attrs);
            let _ = std::fs::remove_dir_all(&dir);
            res?;
        }
        if let Some(d) = &cw.remote {
            copy_into(
                rootfs,
                &CopyJob {
                    ctx: &Context::image_root(&d.dir),
                    sources: &d.sources,
                    dest: &cw.dest,
                    dest_is_dir: cw.dest_is_dir,
                    attrs,
                    unpack: false,
                },
            )
            .map_err(|e| copy_failed(cmd, e))?;
        }
        if cw.sources.is_empty() {
            return Ok(());
        }
        match &cw.from {
            CopySource::Context => self.copy_from(self.ctx, rootfs, cw, attrs, cmd),
            CopySource::Image(cfg) => {
                let top = cfg.as_deref().and_then(top_layer);
                let view = Workspace::view(&self.b.store, top.as_ref(), &self.b.tmp())?;
                let src = Context::image_root(view.root());
                self.copy_from(&src, rootfs, cw, attrs, cmd)
            }
        }
    }

    fn copy_from(
        &self,
        src: &Context,
        rootfs: &Path,
        cw: &CopyWork,
        attrs: CopyAttrs,
        cmd: &str,
    ) -> Result<()> {
        let narrowed;
        let src = if cw.exclude.is_empty() {
            src
        } else {
            narrowed = src.excluding(&cw.exclude)?;
            &narrowed
        };
        let mut all = Vec::new();
        for s in &cw.sources {
            all.extend(src.sources(s).map_err(|e| copy_failed(cmd, e))?);
        }
        copy_into(
            rootfs,
            &CopyJob {
                ctx: src,
                sources: &all,
                dest: &cw.dest,
                dest_is_dir: cw.dest_is_dir,
                attrs,
                unpack: cw.unpack && matches!(cw.from, CopySource::Context),
            },
        )
        .map_err(|e| copy_failed(cmd, e))
    }

    fn copy_inline(
        &self,
        rootfs: &Path,
        cw: &CopyWork,
        dir: &Path,
        attrs: CopyAttrs,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(BuildError::io("create", dir))?;
        let mut sources = Vec::new();
        for (name, data) in &cw.inline {
            let clean = crate::context::clean_rel(name)
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .ok_or_else(|| {
                    BuildError::Invalid(format!("invalid heredoc file name {name:?}"))
                })?;
            let path = dir.join(&clean);
            std::fs::write(&path, data).map_err(BuildError::io("write", &path))?;
            // Heredoc files are 0644 whatever the daemon's umask (BuildKit's mode).
            let mode =
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644);
            std::fs::set_permissions(&path, mode).map_err(BuildError::io("chmod", &path))?;
            sources.push(Source {
                rel: clean,
                path,
                is_dir: false,
            });
        }
        let src = Context::image_root(dir);
        copy_into(
            rootfs,
            &CopyJob {
                ctx: &src,
                sources: &sources,
                dest: &cw.dest,
                dest_is_dir: cw.dest_is_dir,
                attrs,
                unpack: false,
            },
        )
    }

    fn run_step(&mut self, spec: &RunSpec, out: &Path) -> Result<(Option<std::fs::File>, String)> {
        let id = self.backend.create(spec)?;
        self.say(format!(" ---> Running in {}\n", truncate_id(&id)));
        let report = &mut *self.report;
        let code = self.backend.run(&id, &mut |stream, data| {
            let text = String::from_utf8_lossy(data).into_owned();
            let text = match stream {
                OutputStream::Stdout => text,
                OutputStream::Stderr => format!("\u{1b}[91m{text}\u{1b}[0m"),
            };
            report(Progress::Stream(text));
        });
        let code = match code {
            Ok(c) => c,
            Err(e) => {
                let _ = self.backend.remove(&id);
                return Err(e);
            }
        };
        if code != 0 {
            if self.opts.force_remove {
                let _ = self.backend.remove(&id);
            }
            return Err(BuildError::RunFailed {
                command: spec.cmd.join(" "),
                code,
            });
        }
        let targets: Vec<String> = spec.mounts.iter().map(|m| m.target.clone()).collect();
        let upper = self.backend.changes(&id, &targets)?;
        Ok((write_layer(&upper, out)?, id))
    }

    fn finish(&mut self, id: &ImageId) -> Result<()> {
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.declared.contains(*k) && !is_predefined_arg(k))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            ));
        }
        (self.report)(Progress::Aux(id.clone()));
        self.say(format!("Successfully built {}\n", truncate_id(id.as_str())));
        for tag in &self.opts.tags {
            let tag = tag.clone().with_default_tag();
            // A rebuild that changed nothing leaves the tag as it is (no record rewrite).
            if self.b.store.resolve(&tag.to_string()).ok().as_ref() != Some(id) {
                self.b.store.tag(id.as_str(), &tag)?;
            }
            self.say(format!("Successfully tagged {}\n", tag.familiar_string()));
        }
        Ok(())
    }
}

/// A planned `RUN --mount` as the container gets it; views of images are pushed to
/// `views`, which the caller keeps until the step is done.
fn resolve_mount<'w>(
    b: &'w Builder,
    m: &PlannedMount,
    views: &mut Vec<Workspace<'w>>,
) -> Result<RunMount> {
    Ok(match m {
        PlannedMount::Cache {
            dir,
            target,
            readonly,
        } => RunMount {
            source: Some(dir.clone()),
            target: target.clone(),
            readonly: *readonly,
        },
        PlannedMount::Context {
            source,
            target,
            readonly,
        } => RunMount {
            source: Some(source.clone()),
            target: target.clone(),
            readonly: *readonly,
        },
        PlannedMount::Tmpfs { target } => RunMount {
            source: None,
            target: target.clone(),
            readonly: false,
        },
        PlannedMount::Image {
            config,
            source,
            target,
            readonly,
        } => {
            let top = config.as_deref().and_then(top_layer);
            let view = Workspace::view(&b.store, top.as_ref(), &b.tmp())?;
            let src = Context::image_root(view.root());
            let path = src
                .sources(source)
                .map_err(|e| copy_failed("mount", e))?
                .into_iter()
                .next()
                .map(|s| s.path)
                .ok_or_else(|| BuildError::Source(format!("mount source {source} not found")))?;
            views.push(view);
            RunMount {
                source: Some(path),
                target: target.clone(),
                readonly: *readonly,
            }
        }
    })
}

/// `SOURCE_DATE_EPOCH` (seconds since the epoch) as RFC 3339, for reproducible images.
fn source_date_epoch(opts: &BuildOptions) -> Result<Option<String>> {
    let Some(Some(v)) = opts.build_args.get("SOURCE_DATE_EPOCH") else {
        return Ok(None);
    };
    let secs: i64 = v
        .trim()
        .parse()
        .map_err(|_| BuildError::Invalid(format!("invalid SOURCE_DATE_EPOCH: {v}")))?;
    Ok(Some(berth_image::format_rfc3339(secs, 0)))
}

/// `file:<sum>` (one file), `dir:<sum>` (one directory) or `multi:<sum>`: the sources'
/// content and metadata checksum, as COPY's history text and cache key.
fn sources_checksum(ctx: &Context, sources: &[String], cmd: &str) -> Result<String> {
    if sources.is_empty() {
        return Ok("inline".into());
    }
    let mut all: Vec<Source> = Vec::new();
    for s in sources {
        all.extend(ctx.sources(s).map_err(|e| copy_failed(cmd, e))?);
    }
    let sum = checksum(ctx, &all)?;
    let kind = match all.as_slice() {
        [one] if !one.is_dir => "file",
        [_] => "dir",
        _ => "multi",
    };
    Ok(format!("{kind}:{sum}"))
}

/// Most bytes one `ADD <url>` downloads.
const MAX_DOWNLOAD: u64 = 8 << 30;

fn is_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A name usable as a file name in the destination: one segment, not `.` or `..`.
fn safe_file_name(name: &str) -> Option<String> {
    let name = name.rsplit('/').next()?.trim();
    (!name.is_empty() && name != "." && name != ".." && !name.contains('\0'))
        .then(|| name.to_owned())
}

/// The last segment of a URL's path (Docker's name for a downloaded file).
fn url_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split(['?', '#']).next()?;
    let path = path.split_once('/').map(|(_, p)| p)?;
    safe_file_name(path.trim_end_matches('/').rsplit('/').next()?)
}

/// A writer that hashes (sha256) what it passes on.
struct HashingWriter<W> {
    inner: W,
    hash: sha2::Sha256,
}

impl<W: std::io::Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: <sha2::Sha256 as sha2::Digest>::new(),
        }
    }

    fn finish(self) -> String {
        hex::encode(sha2::Digest::finalize(self.hash))
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn copy_failed(cmd: &str, e: BuildError) -> BuildError {
    match e {
        BuildError::Source(m) => BuildError::Source(format!("{cmd} failed: {m}")),
        other => other,
    }
}

fn from_text(stage: &berth_dockerfile::Stage) -> String {
    let mut s = String::new();
    if let Some(p) = &stage.from.platform {
        s.push_str(&format!("--platform={p} "));
    }
    s.push_str(&stage.from.image);
    if let Some(n) = &stage.name {
        s.push_str(&format!(" AS {n}"));
    }
    s
}

fn scratch_config() -> ImageConfig {
    ImageConfig {
        architecture: berth_image::host_arch().to_owned(),
        os: "linux".into(),
        config: Some(ContainerConfig::default()),
        ..ImageConfig::default()
    }
}

/// The `LABEL` step Docker appends to the target stage for `--label`.
fn label_step(labels: &BTreeMap<String, String>) -> Result<Step> {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect();
    let text = format!("FROM scratch\nLABEL {}\n", pairs.join(" "));
    let df = Dockerfile::parse("labels", text.as_bytes())
        .map_err(|e| BuildError::Invalid(format!("invalid --label: {}", e.message)))?;
    df.stages[0]
        .steps
        .first()
        .cloned()
        .ok_or_else(|| BuildError::Invalid("invalid --label".into()))
}
