//! The OCI operations: create, start, state, kill, delete, exec, pause, resume, ps, list. These
//! run in the caller's process (the `berth runtime` command or the shim), which must be
//! single-threaded when it calls [`create`] or [`exec`].

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::{LinuxIdMapping, Process, Spec};
use serde::Serialize;

use crate::error::{Context, Result, RuntimeError};
use crate::init::{InitPlan, ProcessKind, Stdio};
use crate::namespaces::Namespaces;
use crate::process::CapabilitySets;
use crate::rootfs::{CgroupDir, CgroupView};
use crate::state::{ContainerRecord, StateDir, Status};
use crate::sync::{Channel, Message};

/// Where a container's stdio goes.
pub enum Io {
    Inherit,
    Fds([OwnedFd; 3]),
    /// Path of a unix socket that receives the pty master (`--console-socket`).
    ConsoleSocket(PathBuf),
    /// An already-connected socket that receives the pty master (a foreground `run`).
    Console(UnixStream),
}

/// Options for [`create`].
pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub io: Io,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
}

/// Warnings that did not stop the operation but that the caller should show or log.
pub type Warnings = Vec<String>;

/// Creates a container: its init is set up and waiting for [`start`]. Returns the init's pid.
pub fn create(opts: CreateOptions) -> Result<(i32, Warnings)> {
    let spec = load_bundle_spec(&opts.bundle)?;
    let state = StateDir::create(&opts.root, &opts.id)?;
    let mut cleanup = CleanupOnError {
        state: Some(state.clone()),
        cgroup: None,
        pid: None,
    };
    let (pid, warnings, record) = create_in(&opts, spec, &state, &mut cleanup)?;
    state.save(&record)?;
    if let Some(pid_file) = &opts.pid_file {
        crate::state::write_atomic(pid_file, pid.to_string().as_bytes())?;
    }
    cleanup.disarm();
    Ok((pid, warnings))
}

/// Compiled seccomp programs, by profile digest, in the state root (see
/// [`crate::seccomp::compile_cached`]).
const SECCOMP_CACHE: &str = ".seccomp-cache";

fn create_in(
    opts: &CreateOptions,
    spec: Spec,
    state: &StateDir,
    cleanup: &mut CleanupOnError,
) -> Result<(i32, Warnings, ContainerRecord)> {
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| invalid_config(&opts.bundle, "process is missing"))?;
    let rootfs = rootfs_path(&opts.bundle, &spec)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && !matches!(opts.io, Io::ConsoleSocket(_) | Io::Console(_)) {
        return Err(RuntimeError::InvalidSpec(
            "process.terminal is true but no --console-socket was given to receive the pty".into(),
        ));
    }
    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = Namespaces::from_spec(linux.namespaces().as_deref().unwrap_or(&[]))?;
    let sysctls = validate_sysctls(&linux, &namespaces)?;
    let caps = CapabilitySets::from_spec(process.capabilities().as_ref())?;
    let mut warnings: Warnings = caps
        .unavailable
        .iter()
        .map(|c| format!("capability {c} is not in the runtime's bounding set and was not granted"))
        .collect();
    let cache = opts.root.join(SECCOMP_CACHE);
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(|s| crate::seccomp::compile_cached(s, &cache))
        .transpose()?;
    let cgroup_path = linux
        .cgroups_path()
        .clone()
        .map(|p| p.display().to_string())
        // runc's default: a cgroup of the container's own at the top, so no shared parent is
        // left behind (the daemon always names a path, under its --cgroup-parent).
        .unwrap_or(format!("/{}", opts.id));
    let cgroup = setup_cgroup(&cgroup_path, &linux, &mut warnings)?;
    cleanup.cgroup = Some(cgroup.clone());
    let fifo = make_exec_fifo(state)?;
    let stdio = stdio_for(&opts.io, terminal)?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    let parent_hooks = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
        || hooks
            .create_runtime()
            .as_ref()
            .is_some_and(|h| !h.is_empty());
    state.save_spec(&spec)?;
    let mut record = ContainerRecord {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: absolute(&opts.bundle),
        rootfs: rootfs.clone(),
        created: crate::state::now_rfc3339(),
        owner: String::new(),
        cgroup_path: cgroup_path.clone(),
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    let plan = InitPlan {
        cgroup_view: cgroup_view(&cgroup),
        cgroup: Some(cgroup),
        spec: spec.clone(),
        process,
        rootfs,
        namespaces,
        seccomp,
        caps,
        stdio,
        fifo: Some(fifo),
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        parent_hooks,
        sysctls,
    };
    let uid_maps = (
        spec.linux().as_ref().and_then(|l| l.uid_mappings().clone()),
        spec.linux().as_ref().and_then(|l| l.gid_mappings().clone()),
    );
    let mut on_hooks = |pid: i32, rec: &mut ContainerRecord| -> Result<String> {
        rec.pid = pid;
        // The namespaces exist and the init waits: hooks see the container as "created", as
        // the runtime-spec validation suite expects.
        let json = state_json(rec, Status::Created);
        crate::hooks::run(
            "prestart",
            hooks.prestart().as_deref().unwrap_or(&[]),
            json.as_bytes(),
        )?;
        crate::hooks::run(
            "createRuntime",
            hooks.create_runtime().as_deref().unwrap_or(&[]),
            json.as_bytes(),
        )?;
        Ok(json)
    };
    let pid = spawn(
        plan,
        ProcessKind::Init,
        &uid_maps,
        &mut record,
        &mut on_hooks,
        cleanup,
    )?;
    record.pid = pid;
    record.pid_start_time = crate::state::process_start_time(pid).unwrap_or(0);
    Ok((pid, warnings, record))
}

type IdMaps = (Option<Vec<LinuxIdMapping>>, Option<Vec<LinuxIdMapping>>);

/// Forks the bootstrap child and drives the bring-up conversation until the process is ready.
/// Returns the new process's pid (init or exec'd process) in our pid namespace.
fn spawn(
    plan: InitPlan,
    kind: ProcessKind,
    id_maps: &IdMaps,
    record: &mut ContainerRecord,
    on_hooks: &mut dyn FnMut(i32, &mut ContainerRecord) -> Result<String>,
    cleanup: &mut CleanupOnError,
) -> Result<i32> {
    let (ours, theirs) = UnixStream::pair().context(|| "create sync socketpair".into())?;
    // SAFETY: callers of create/exec are single-threaded (documented on the module).
    match unsafe { nix::unistd::fork() }.context(|| "fork".into())? {
        ForkResult::Child => {
            drop(ours);
            let chan = match Channel::new(theirs) {
                Ok(c) => c,
                // SAFETY: _exit in a forked child.
                Err(_) => unsafe { libc::_exit(1) },
            };
            crate::init::bootstrap(plan, chan, kind)
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            drop(plan);
            let mut chan = Channel::new(ours)?;
            let result = converse(kind, &mut chan, child, id_maps, record, on_hooks, cleanup);
            // The bootstrap child exits right after reporting the pid; reap it either way.
            let _ = waitpid(child, None);
            result
        }
    }
}

fn converse(
    kind: ProcessKind,
    chan: &mut Channel,
    bootstrap: Pid,
    id_maps: &IdMaps,
    record: &mut ContainerRecord,
    on_hooks: &mut dyn FnMut(i32, &mut ContainerRecord) -> Result<String>,
    cleanup: &mut CleanupOnError,
) -> Result<i32> {
    let mut pid = None;
    loop {
        let message = chan.recv()?;
        match message {
            Some(Message::MapIds) => {
                write_id_maps(bootstrap.as_raw(), id_maps)?;
                chan.send(&Message::IdsMapped)?;
            }
            Some(Message::InitPid { pid: p }) => {
                pid = Some(p);
                cleanup.pid = Some(p);
                chan.send(&Message::Proceed)?;
            }
            Some(Message::RunHooks) => {
                let p =
                    pid.ok_or_else(|| crate::sync::unexpected("container", &Message::RunHooks))?;
                match on_hooks(p, record) {
                    Ok(state) => chan.send(&Message::HooksDone { state })?,
                    Err(e) => {
                        let _ = chan.send(&Message::Error {
                            message: e.to_string(),
                            exit_code: 1,
                        });
                        return Err(e);
                    }
                }
            }
            Some(Message::Ready) => {
                let pid = pid.ok_or_else(|| crate::sync::closed("bootstrap"))?;
                if kind == ProcessKind::Exec {
                    // The socket closes on a successful execve; an error comes as a message.
                    match chan.recv()? {
                        None => {}
                        Some(Message::Error { message, exit_code }) => {
                            return Err(RuntimeError::Init { message, exit_code });
                        }
                        Some(other) => return Err(crate::sync::unexpected("process", &other)),
                    }
                }
                return Ok(pid);
            }
            Some(Message::Error { message, exit_code }) => {
                return Err(RuntimeError::Init { message, exit_code });
            }
            Some(other) => return Err(crate::sync::unexpected("container", &other)),
            None => return Err(crate::sync::closed("container process")),
        }
    }
}

fn write_id_maps(pid: i32, (uids, gids): &IdMaps) -> Result<()> {
    let format = |maps: &Option<Vec<LinuxIdMapping>>| -> String {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let uid_map = format(uids);
    let gid_map = format(gids);
    if uid_map.is_empty() || gid_map.is_empty() {
        return Err(RuntimeError::InvalidSpec(
            "a new user namespace needs uidMappings and gidMappings".into(),
        ));
    }
    std::fs::write(format!("/proc/{pid}/uid_map"), &uid_map)
        .context(|| format!("write uid_map {uid_map:?}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &gid_map)
        .context(|| format!("write gid_map {gid_map:?}"))
}

/// Undoes a half-finished create: kills the process, removes the cgroup and the state dir.
struct CleanupOnError {
    state: Option<StateDir>,
    cgroup: Option<berth_cgroups::Cgroup>,
    pid: Option<i32>,
}

impl CleanupOnError {
    fn disarm(&mut self) {
        self.state = None;
        self.cgroup = None;
        self.pid = None;
    }
}

impl Drop for CleanupOnError {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            // Reap it if it is ours (it is, when we are its subreaper); bounded either way.
            wait_gone(pid, Duration::from_secs(2));
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(state) = self.state.take() {
            let _ = state.remove();
        }
    }
}

fn wait_gone(pid: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        if nix::sys::signal::kill(Pid::from_raw(pid), None).is_err() {
            return;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn load_bundle_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    if !path.exists() {
        return Err(invalid_config(bundle, "config.json not found"));
    }
    // serde_json directly: oci-spec's own loader reduces every parse error to "serde failed".
    let bytes = std::fs::read(&path).context(|| format!("read {}", path.display()))?;
    if bytes.len() > MAX_CONFIG_SIZE {
        return Err(invalid_config(bundle, "config.json is larger than 16 MiB"));
    }
    serde_json::from_slice(&bytes).map_err(|e| RuntimeError::InvalidConfig {
        path: path.clone(),
        message: one_line(&e.to_string()),
    })
}

/// No legitimate config comes near this; a bigger one is refused before parsing.
const MAX_CONFIG_SIZE: usize = 16 << 20;

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

fn invalid_config(bundle: &Path, message: &str) -> RuntimeError {
    RuntimeError::InvalidConfig {
        path: bundle.join("config.json"),
        message: message.into(),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid_config(bundle, "root is missing"))?;
    let path = absolute(&bundle.join(root.path()));
    let path = path
        .canonicalize()
        .map_err(|e| invalid_config(bundle, &format!("rootfs {}: {e}", path.display())))?;
    if !path.is_dir() {
        return Err(invalid_config(
            bundle,
            &format!("rootfs {} is not a directory", path.display()),
        ));
    }
    Ok(path)
}

fn validate_sysctls(
    linux: &oci_spec::runtime::Linux,
    ns: &Namespaces,
) -> Result<Vec<(String, String)>> {
    let own = ns.new;
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in linux.sysctl().iter().flatten() {
        out.push((crate::sysctl::validate(k, own)?, v.clone()));
    }
    out.sort();
    Ok(out)
}

fn setup_cgroup(
    path: &str,
    linux: &oci_spec::runtime::Linux,
    _warnings: &mut Warnings,
) -> Result<berth_cgroups::Cgroup> {
    let hierarchy = berth_cgroups::Hierarchy::detect()?;
    let cgroup = berth_cgroups::Cgroup::new(hierarchy, path)?;
    cgroup.create()?;
    if let Some(resources) = linux
        .resources()
        .as_ref()
        .map(|r| with_default_device_rules(r, linux))
        && let Err(e) = cgroup.apply(&resources)
    {
        let _ = cgroup.destroy();
        return Err(e.into());
    }
    Ok(cgroup)
}

/// When the config restricts devices at all, the devices every container gets (runtime-spec
/// "Default Devices", plus the pty devices) and the ones `linux.devices` creates stay usable,
/// as runc arranges: their allow rules go after the config's own.
fn with_default_device_rules(
    resources: &oci_spec::runtime::LinuxResources,
    linux: &oci_spec::runtime::Linux,
) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let mut resources = resources.clone();
    let Some(mut rules) = resources.devices().clone().filter(|r| !r.is_empty()) else {
        return resources;
    };
    let allow = |major: i64, minor: Option<i64>| {
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(LinuxDeviceType::C));
        rule.set_major(Some(major));
        rule.set_minor(minor);
        rule.set_access(Some("rwm".into()));
        rule
    };
    let defaults = [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(2)),
        (136, None),
    ];
    rules.extend(
        defaults
            .into_iter()
            .map(|(major, minor)| allow(major, minor)),
    );
    // mknod of any node (not its use) stays allowed, as with runc: images ship device nodes.
    for typ in [LinuxDeviceType::C, LinuxDeviceType::B] {
        let mut rule = allow(0, None);
        rule.set_typ(Some(typ));
        rule.set_major(None);
        rule.set_access(Some("m".into()));
        rules.push(rule);
    }
    for d in linux.devices().iter().flatten() {
        let mut rule = allow(d.major(), Some(d.minor()));
        rule.set_typ(Some(match d.typ() {
            LinuxDeviceType::B => LinuxDeviceType::B,
            _ => LinuxDeviceType::C,
        }));
        rules.push(rule);
    }
    resources.set_devices(Some(rules));
    resources
}

fn cgroup_view(cgroup: &berth_cgroups::Cgroup) -> CgroupView {
    let paths = cgroup.paths();
    let (mounts, unified) = match cgroup.hierarchy() {
        berth_cgroups::Hierarchy::V2 { .. } => {
            let dirs = paths.get("").map(|d| CgroupDir {
                name: String::new(),
                host_dir: d.clone(),
                aliases: Vec::new(),
            });
            return CgroupView {
                unified: true,
                dirs: dirs.into_iter().collect(),
            };
        }
        berth_cgroups::Hierarchy::V1 {
            controllers,
            unified,
        } => (controllers.clone(), unified.clone()),
    };
    let mut dirs: Vec<CgroupDir> = Vec::new();
    for (controller, dir) in paths {
        // Co-mounted v1 controllers share a directory named after the mount (cpu,cpuacct);
        // the others get symlinks to it, as on the host.
        let mount = if controller.is_empty() {
            unified.clone()
        } else {
            mounts.get(&controller).cloned()
        };
        let Some(name) = mount
            .as_deref()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
        else {
            continue;
        };
        let alias = controller.trim_start_matches("name=").to_string();
        match dirs.iter_mut().find(|d| d.name == name) {
            Some(d) => d.aliases.push(alias),
            None => dirs.push(CgroupDir {
                name: name.to_string(),
                host_dir: dir,
                aliases: vec![alias],
            }),
        }
    }
    for d in &mut dirs {
        d.aliases.retain(|a| !a.is_empty() && *a != d.name);
    }
    CgroupView {
        unified: false,
        dirs,
    }
}

fn make_exec_fifo(state: &StateDir) -> Result<OwnedFd> {
    let path = state.fifo();
    // 0622: the init writes to it after switching to the container's user.
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .context(|| format!("mkfifo {}", path.display()))?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &path,
        nix::sys::stat::Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .context(|| format!("chmod {}", path.display()))?;
    nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context(|| format!("open {}", path.display()))
}

fn stdio_for(io: &Io, terminal: bool) -> Result<Stdio> {
    Ok(match io {
        Io::Inherit => Stdio::Inherit,
        Io::Fds(fds) => Stdio::Fds([
            fds[0].try_clone().context(|| "dup stdin".into())?,
            fds[1].try_clone().context(|| "dup stdout".into())?,
            fds[2].try_clone().context(|| "dup stderr".into())?,
        ]),
        Io::ConsoleSocket(path) if terminal => Stdio::Console(
            crate::tty::connect(path)
                .context(|| format!("connect to console socket {}", path.display()))?,
        ),
        Io::Console(stream) if terminal => {
            Stdio::Console(stream.try_clone().context(|| "dup console socket".into())?)
        }
        Io::ConsoleSocket(_) | Io::Console(_) => Stdio::Inherit,
    })
}

/// The OCI state document, as `state` prints it and hooks receive it.
#[derive(Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: String,
    pub pid: i32,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

fn state_json(rec: &ContainerRecord, status: Status) -> String {
    serde_json::to_string(&oci_state(rec, status)).unwrap_or_default()
}

fn oci_state(rec: &ContainerRecord, status: Status) -> OciState<'_> {
    OciState {
        oci_version: "1.2.0",
        id: &rec.id,
        status: status.to_string(),
        pid: if status == Status::Stopped {
            0
        } else {
            rec.pid
        },
        bundle: &rec.bundle,
        rootfs: &rec.rootfs,
        created: &rec.created,
        owner: &rec.owner,
        annotations: &rec.annotations,
    }
}

/// A loaded container: its state directory, record and current status.
pub struct Container {
    pub state: StateDir,
    pub record: ContainerRecord,
    pub status: Status,
}

impl Container {
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let state = StateDir::open(root, id)?;
        let record = state.load()?;
        let status = current_status(&state, &record);
        Ok(Container {
            state,
            record,
            status,
        })
    }

    /// The state JSON `runc state` prints.
    pub fn state_json(&self) -> String {
        serde_json::to_string_pretty(&oci_state(&self.record, self.status)).unwrap_or_default()
    }

    fn cgroup(&self) -> Result<berth_cgroups::Cgroup> {
        Ok(berth_cgroups::Cgroup::new(
            berth_cgroups::Hierarchy::detect()?,
            &self.record.cgroup_path,
        )?)
    }

    fn wrong_state(&self, action: &'static str, wanted: &'static str) -> RuntimeError {
        RuntimeError::WrongState {
            id: self.record.id.clone(),
            status: self.status.to_string(),
            action,
            wanted,
        }
    }
}

fn current_status(state: &StateDir, rec: &ContainerRecord) -> Status {
    if !crate::state::is_alive(rec.pid, rec.pid_start_time) {
        return Status::Stopped;
    }
    if state.fifo().exists() {
        return Status::Created;
    }
    let frozen = berth_cgroups::Hierarchy::detect()
        .ok()
        .and_then(|h| berth_cgroups::Cgroup::new(h, &rec.cgroup_path).ok())
        .and_then(|cg| cg.is_frozen().ok())
        .unwrap_or(false);
    if frozen {
        Status::Paused
    } else {
        Status::Running
    }
}

/// Lets the created container's init run its program; then runs poststart hooks, whose
/// failures are returned as warnings (runtime-spec: warn and go on).
pub fn start(root: &Path, id: &str) -> Result<Warnings> {
    let c = Container::load(root, id)?;
    if c.status != Status::Created {
        return Err(c.wrong_state("start", "created"));
    }
    release_fifo(&c)?;
    let spec = c.state.load_spec()?;
    let hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
        .unwrap_or_default();
    let json = state_json(&c.record, Status::Running);
    Ok(crate::hooks::run_all("poststart", &hooks, json.as_bytes()))
}

/// Opens the exec fifo for reading, which unblocks the init; reads its byte; removes the fifo.
fn release_fifo(c: &Container) -> Result<()> {
    use std::io::Read;
    let path = c.state.fifo();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(&path)
        .context(|| format!("open {}", path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut f = &file;
    let mut buf = [0u8; 1];
    loop {
        match f.read(&mut buf) {
            Ok(1) => break,
            // The init may have written its byte and run a short program to the end between
            // the read above and this liveness check: the byte is still in the fifo then.
            Ok(_) | Err(_) if !crate::state::is_alive(c.record.pid, c.record.pid_start_time) => {
                if matches!(f.read(&mut buf), Ok(1)) {
                    break;
                }
                let _ = std::fs::remove_file(&path);
                return Err(RuntimeError::Init {
                    message: format!("container {} init exited before start", c.record.id),
                    exit_code: 1,
                });
            }
            _ if Instant::now() > deadline => {
                return Err(RuntimeError::Init {
                    message: "container init did not answer start within 10s".into(),
                    exit_code: 1,
                });
            }
            _ => std::thread::sleep(Duration::from_micros(100)),
        }
    }
    std::fs::remove_file(&path).context(|| format!("remove {}", path.display()))
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// Sends `signal` to the init, or with `all` to every process in the container's cgroup.
pub fn kill(root: &Path, id: &str, signal: Signal, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    if c.status == Status::Stopped {
        return Err(c.wrong_state("kill", "created, running or paused"));
    }
    if all {
        for pid in c.cgroup()?.pids()? {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
        return Ok(());
    }
    nix::sys::signal::kill(Pid::from_raw(c.record.pid), signal)
        .context(|| format!("send {signal} to {}", c.record.pid))
}

/// Removes a stopped (or, with `force`, any) container: kills what is left, removes its cgroup
/// and state, runs poststop hooks (whose failures come back as warnings).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<Warnings> {
    let c = match Container::load(root, id) {
        // A half-created container (state dir without state.json) is removed with --force.
        Err(RuntimeError::NotFound(_)) if force => {
            return remove_leftover(root, id).map(|()| Vec::new());
        }
        other => other?,
    };
    match c.status {
        Status::Stopped => {}
        _ if force => kill_and_wait(&c)?,
        _ => return Err(c.wrong_state("delete", "stopped (or use --force)")),
    }
    let spec = c.state.load_spec().ok();
    if let Ok(cg) = c.cgroup() {
        cg.destroy()?;
    }
    c.state.remove()?;
    let hooks = spec
        .as_ref()
        .and_then(|s| s.hooks().as_ref())
        .and_then(|h| h.poststop().clone())
        .unwrap_or_default();
    let json = state_json(&c.record, Status::Stopped);
    Ok(crate::hooks::run_all("poststop", &hooks, json.as_bytes()))
}

fn remove_leftover(root: &Path, id: &str) -> Result<()> {
    let state = StateDir::new(root, id)?;
    if !state.dir.exists() {
        return Err(RuntimeError::NotFound(id.into()));
    }
    state.remove()
}

fn kill_and_wait(c: &Container) -> Result<()> {
    let cg = c.cgroup()?;
    // A frozen cgroup cannot die: thaw it first.
    if c.status == Status::Paused {
        cg.thaw()?;
    }
    let _ = nix::sys::signal::kill(Pid::from_raw(c.record.pid), Signal::SIGKILL);
    for pid in cg.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::state::is_alive(c.record.pid, c.record.pid_start_time)
        || !cg.pids().unwrap_or_default().is_empty()
    {
        if Instant::now() > deadline {
            return Err(RuntimeError::Init {
                message: format!("container {} did not die after SIGKILL", c.record.id),
                exit_code: 1,
            });
        }
        let _ = waitpid(Pid::from_raw(c.record.pid), Some(WaitPidFlag::WNOHANG));
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Freezes every process of the container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    if c.status != Status::Running {
        return Err(c.wrong_state("pause", "running"));
    }
    Ok(c.cgroup()?.freeze()?)
}

/// Thaws a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    if c.status != Status::Paused {
        return Err(c.wrong_state("resume", "paused"));
    }
    Ok(c.cgroup()?.thaw()?)
}

/// The pids of every process in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    Ok(c.cgroup()?.pids()?)
}

/// Every container under `root`, sorted by id. Broken entries are skipped.
pub fn list(root: &Path) -> Result<Vec<Container>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(|| format!("list {}", root.display())),
    };
    let mut out: Vec<Container> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|id| Container::load(root, &id).ok())
        .collect();
    out.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    Ok(out)
}

/// Options for [`exec`].
pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub io: Io,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// Starts an extra process in a running container. Returns its pid in our pid namespace. The
/// process is a child of the caller when the caller is a child subreaper (the shim, `exec`
/// without `--detach`), otherwise of init.
pub fn exec(opts: ExecOptions) -> Result<(i32, Warnings)> {
    let c = Container::load(&opts.root, &opts.id)?;
    if !matches!(c.status, Status::Running | Status::Created) {
        return Err(c.wrong_state("exec", "running"));
    }
    let spec = c.state.load_spec()?;
    let linux = spec.linux().clone().unwrap_or_default();
    let types = linux
        .namespaces()
        .iter()
        .flatten()
        .fold(CloneFlags::empty(), |acc, n| {
            acc | crate::namespaces::clone_flag(n.typ())
        });
    let namespaces = Namespaces::of_process(c.record.pid, types)?;
    let terminal = opts.process.terminal().unwrap_or(false);
    if terminal && !matches!(opts.io, Io::ConsoleSocket(_) | Io::Console(_)) {
        return Err(RuntimeError::InvalidSpec(
            "a terminal needs --console-socket".into(),
        ));
    }
    let caps = CapabilitySets::from_spec(opts.process.capabilities().as_ref())?;
    let warnings = caps
        .unavailable
        .iter()
        .map(|c| format!("capability {c} was not granted"))
        .collect();
    let plan = InitPlan {
        spec: spec.clone(),
        process: opts.process.clone(),
        rootfs: c.record.rootfs.clone(),
        namespaces,
        cgroup: Some(c.cgroup()?),
        cgroup_view: CgroupView::default(),
        seccomp: linux
            .seccomp()
            .as_ref()
            .map(|s| crate::seccomp::compile_cached(s, &opts.root.join(SECCOMP_CACHE)))
            .transpose()?,
        caps,
        stdio: stdio_for(&opts.io, terminal)?,
        fifo: None,
        preserve_fds: opts.preserve_fds,
        no_pivot: false,
        parent_hooks: false,
        sysctls: Vec::new(),
    };
    let mut record = c.record.clone();
    let mut no_hooks = |_: i32, _: &mut ContainerRecord| Ok(String::new());
    let mut cleanup = CleanupOnError {
        state: None,
        cgroup: None,
        pid: None,
    };
    let pid = spawn(
        plan,
        ProcessKind::Exec,
        &(None, None),
        &mut record,
        &mut no_hooks,
        &mut cleanup,
    )?;
    cleanup.disarm();
    if let Some(pid_file) = &opts.pid_file {
        crate::state::write_atomic(pid_file, pid.to_string().as_bytes())?;
    }
    Ok((pid, warnings))
}

/// Makes the calling process the reaper of its orphaned descendants, so the container's init
/// (a grandchild) becomes its child when the bootstrap process exits.
pub fn become_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    nix::errno::Errno::result(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
        .context(|| "become child subreaper".into())?;
    Ok(())
}
