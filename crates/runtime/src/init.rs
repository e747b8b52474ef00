//! The forked side of container bring-up: the bootstrap child that enters and creates
//! namespaces, and the container's init, which builds the filesystem view, drops privileges and
//! waits on the exec fifo for `start`. Each step is a named function; a failing step sends its
//! error to the parent over the sync channel and the process exits.
//!
//! Everything expensive or fallible that does not need the new namespaces (parsing, seccomp
//! compilation, capability conversion, opening namespace paths) is done by the parent before
//! the fork and handed over in an [`InitPlan`].

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Gid, Uid};
use oci_spec::runtime::{Process, Spec};

use crate::error::{Context, Result, RuntimeError};
use crate::namespaces::Namespaces;
use crate::process::{self, CapabilitySets, ExecArgs};
use crate::rootfs::{self, CgroupView};
use crate::sync::{Channel, Message};

/// Where the container's stdio comes from.
pub enum Stdio {
    /// Inherit the runtime's own 0, 1 and 2.
    Inherit,
    /// These fds become 0, 1 and 2.
    Fds([OwnedFd; 3]),
    /// A new pty; its master goes to this connected console socket.
    Console(UnixStream),
}

/// Everything the forked processes need, prepared by the parent.
pub struct InitPlan {
    pub spec: Spec,
    pub process: Process,
    pub rootfs: PathBuf,
    pub namespaces: Namespaces,
    pub cgroup: Option<berth_cgroups::Cgroup>,
    pub cgroup_view: CgroupView,
    pub seccomp: Option<crate::seccomp::Filter>,
    pub caps: CapabilitySets,
    pub stdio: Stdio,
    /// O_PATH handle on the exec fifo; `None` for exec'd processes, which run at once.
    pub fifo: Option<OwnedFd>,
    /// Extra fds (3..3+n) passed to the process untouched.
    pub preserve_fds: RawFd,
    pub no_pivot: bool,
    /// Whether the parent has prestart/createRuntime hooks to run mid-bring-up.
    pub parent_hooks: bool,
    /// sysctls already validated: (normalized key, value).
    pub sysctls: Vec<(String, String)>,
}

/// Runs in the first child. Joins the cgroup and the namespaces given by path, creates the new
/// ones, and forks the process that will be the container's init (pid 1 in a new pid
/// namespace). Never returns.
pub fn bootstrap(plan: InitPlan, mut chan: Channel, kind: ProcessKind) -> ! {
    close_inherited_fds(&plan, &chan);
    let result =
        enter_namespaces(&plan, &mut chan).and_then(|()| fork_child(plan, &mut chan, kind));
    if let Err(e) = result {
        report_and_exit(&mut chan, &e);
    }
    // SAFETY: _exit skips destructors, which belong to the parent's copy of the process.
    unsafe { libc::_exit(0) }
}

/// Whether the forked process becomes a container's init or an extra process in a running one.
#[derive(Clone, Copy, PartialEq)]
pub enum ProcessKind {
    Init,
    Exec,
}

/// Closes every fd the caller had open except the ones the container needs. Without this the
/// container's init would hold the caller's pipes and sockets (a shim's readiness pipe, a
/// daemon's connections) until it execs, and a bug could leak them into the container.
fn close_inherited_fds(plan: &InitPlan, chan: &Channel) {
    let mut keep: Vec<RawFd> = (0..3 + plan.preserve_fds).collect();
    keep.extend(chan.raw_fds());
    keep.extend(plan.namespaces.join.iter().map(|(_, fd)| fd.as_raw_fd()));
    keep.extend(plan.fifo.as_ref().map(|fd| fd.as_raw_fd()));
    match &plan.stdio {
        Stdio::Inherit => {}
        Stdio::Fds(fds) => keep.extend(fds.iter().map(|fd| fd.as_raw_fd())),
        Stdio::Console(socket) => keep.push(socket.as_raw_fd()),
    }
    keep.sort_unstable();
    keep.dedup();
    let mut next: RawFd = 0;
    for fd in keep.into_iter().chain(std::iter::once(RawFd::MAX)) {
        if fd > next {
            // SAFETY: close_range on fds this process owns; the kept ones are skipped.
            unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    next as libc::c_uint,
                    (fd - 1) as libc::c_uint,
                    0,
                )
            };
        }
        next = fd.saturating_add(1);
    }
}

fn enter_namespaces(plan: &InitPlan, chan: &mut Channel) -> Result<()> {
    process::set_dumpable(false)?;
    // If the runtime dies mid-bring-up, so do we, instead of lingering half set up.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if let Some(cg) = &plan.cgroup {
        cg.add_process(0)?;
    }
    plan.namespaces.join_all()?;
    if plan.namespaces.new.contains(CloneFlags::CLONE_NEWUSER) {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
            .context(|| "create user namespace".into())?;
        chan.send(&Message::MapIds)?;
        chan.expect(Message::IdsMapped, "runtime")?;
    }
    if plan.namespaces.has(CloneFlags::CLONE_NEWUSER) {
        // Become the namespace's root so what we create is owned by the mapped root.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .context(|| "become root in the user namespace (gid)".into())?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .context(|| "become root in the user namespace (uid)".into())?;
    }
    let rest = plan.namespaces.new - CloneFlags::CLONE_NEWUSER;
    if !rest.is_empty() {
        nix::sched::unshare(rest).context(|| format!("create namespaces {rest:?}"))?;
    }
    Ok(())
}

fn fork_child(plan: InitPlan, chan: &mut Channel, kind: ProcessKind) -> Result<()> {
    // SAFETY: the runtime is single-threaded, so the child may run arbitrary code.
    match unsafe { nix::unistd::fork() }.context(|| "fork container process".into())? {
        ForkResult::Parent { child } => chan.send(&Message::InitPid {
            pid: child.as_raw(),
        }),
        ForkResult::Child => {
            let mut chan = match chan.try_clone() {
                Ok(c) => c,
                // SAFETY: nothing to clean up in a child that cannot talk to its parent.
                Err(_) => unsafe { libc::_exit(1) },
            };
            let result = chan
                .expect(Message::Proceed, "runtime")
                .and_then(|()| match kind {
                    ProcessKind::Init => init(plan, &mut chan),
                    ProcessKind::Exec => exec_process(plan, &mut chan),
                });
            let err = match result {
                Ok(never) => match never {},
                Err(e) => e,
            };
            report_and_exit(&mut chan, &err)
        }
    }
}

fn report_and_exit(chan: &mut Channel, err: &RuntimeError) -> ! {
    let _ = chan.send(&Message::Error {
        message: err.to_string(),
        exit_code: err.exit_code(),
    });
    // SAFETY: _exit in a forked child.
    unsafe { libc::_exit(1) }
}

/// The container's init: every step from an empty mount namespace to the user's program.
fn init(plan: InitPlan, chan: &mut Channel) -> Result<std::convert::Infallible> {
    let has_mount_ns = plan.namespaces.has(CloneFlags::CLONE_NEWNS);
    if !has_mount_ns {
        return Err(RuntimeError::InvalidSpec(
            "a mount namespace is required".into(),
        ));
    }
    setup_filesystem(&plan)?;
    let state_json = run_parent_hooks(&plan, chan)?;
    let hooks = plan.spec.hooks().clone().unwrap_or_default();
    if let Some(h) = hooks.create_container() {
        crate::hooks::run("createContainer", h, state_json.as_bytes())?;
    }
    enter_root(&plan)?;
    finish_filesystem(&plan)?;
    set_identity(&plan.spec, &plan.namespaces)?;
    let exec = prepare_process(&plan, ProcessKind::Init)?;
    drop_privileges(&plan)?;
    chan.send(&Message::Ready)?;
    // The parent is gone from here on: failures go to the container's stderr, as with runc.
    let after_start = || -> Result<std::convert::Infallible> {
        wait_for_start(&plan)?;
        if let Some(h) = hooks.start_container() {
            crate::hooks::run("startContainer", h, state_json.as_bytes())?;
        }
        final_exec(&plan, &exec)
    };
    let err = match after_start() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!("berth: {err}");
    // SAFETY: _exit in the container's init.
    unsafe { libc::_exit(err.exit_code()) }
}

/// Root propagation, the rootfs mount point, the config's mounts and `/dev`.
fn setup_filesystem(plan: &InitPlan) -> Result<()> {
    let linux = plan.spec.linux().clone().unwrap_or_default();
    rootfs::prepare_root(&plan.rootfs, linux.rootfs_propagation().as_deref())?;
    let root = rootfs::open_root(&plan.rootfs)?;
    let mounts = plan.spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        rootfs::mount_entry(&root, m, &plan.cgroup_view)?;
    }
    let dev_is_bind = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && rootfs::parse_options(m.options().as_deref().unwrap_or(&[]))
                .flags
                .contains(nix::mount::MsFlags::MS_BIND)
    });
    let bind_devices = plan.namespaces.has(CloneFlags::CLONE_NEWUSER);
    if !dev_is_bind {
        for d in rootfs::default_devices() {
            rootfs::create_device(&root, &d, bind_devices)?;
        }
        rootfs::create_dev_symlinks(&root)?;
    }
    for d in linux.devices().iter().flatten() {
        rootfs::create_device(&root, d, bind_devices)?;
    }
    Ok(())
}

/// Asks the parent to run prestart and createRuntime hooks now that the namespaces exist;
/// returns the state JSON that in-container hooks receive.
fn run_parent_hooks(plan: &InitPlan, chan: &mut Channel) -> Result<String> {
    if !plan.parent_hooks && !has_container_hooks(&plan.spec) {
        return Ok(String::new());
    }
    chan.send(&Message::RunHooks)?;
    match chan.recv()? {
        Some(Message::HooksDone { state }) => Ok(state),
        Some(Message::Error { message, exit_code }) => {
            Err(RuntimeError::Init { message, exit_code })
        }
        Some(other) => Err(crate::sync::unexpected("runtime", &other)),
        None => Err(crate::sync::closed("runtime")),
    }
}

pub fn has_container_hooks(spec: &Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        h.create_container().as_ref().is_some_and(|v| !v.is_empty())
            || h.start_container().as_ref().is_some_and(|v| !v.is_empty())
    })
}

fn enter_root(plan: &InitPlan) -> Result<()> {
    if plan.no_pivot {
        return rootfs::move_root(&plan.rootfs);
    }
    match rootfs::pivot(&plan.rootfs) {
        // pivot_root refuses a rootfs on ramfs/initramfs: fall back to MS_MOVE + chroot.
        Err(RuntimeError::Sys {
            source: nix::errno::Errno::EINVAL,
            ..
        }) => rootfs::move_root(&plan.rootfs),
        other => other,
    }
}

/// Everything done inside the new root: propagation, sysctls, masks, read-only paths and root.
fn finish_filesystem(plan: &InitPlan) -> Result<()> {
    let linux = plan.spec.linux().clone().unwrap_or_default();
    if let Some(p) = linux.rootfs_propagation() {
        rootfs::set_root_propagation(p)?;
    }
    for (key, value) in &plan.sysctls {
        crate::sysctl::write(key, value)?;
    }
    rootfs::mask_paths(linux.masked_paths().as_deref().unwrap_or(&[]))?;
    rootfs::readonly_paths(linux.readonly_paths().as_deref().unwrap_or(&[]))?;
    if plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::remount_root_readonly()?;
    }
    Ok(())
}

fn set_identity(spec: &Spec, ns: &Namespaces) -> Result<()> {
    let wants_names = spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_deref().is_some_and(|d| !d.is_empty());
    if wants_names && !ns.has(CloneFlags::CLONE_NEWUTS) {
        // Without its own UTS namespace the container would rename the host.
        return Err(RuntimeError::InvalidSpec(
            "hostname and domainname need a uts namespace".into(),
        ));
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).context(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        let c = std::ffi::CString::new(d)
            .map_err(|_| RuntimeError::InvalidSpec("domainname has a NUL".into()))?;
        // SAFETY: setdomainname reads len bytes from a valid C string.
        nix::errno::Errno::result(unsafe { libc::setdomainname(c.as_ptr(), d.len()) })
            .context(|| format!("set domainname {d:?}"))?;
    }
    Ok(())
}

/// Stdio, rlimits, oom score, the executable and the working directory: everything that still
/// needs root, done before privileges are dropped.
fn prepare_process(plan: &InitPlan, kind: ProcessKind) -> Result<ExecArgs> {
    setup_stdio(&plan.stdio, plan.process.console_size().as_ref())?;
    process::set_rlimits(plan.process.rlimits().as_deref().unwrap_or(&[]))?;
    if let Some(score) = plan.process.oom_score_adj() {
        process::set_oom_score_adj(score)?;
    }
    let args = plan.process.args().clone().unwrap_or_default();
    let program = args
        .first()
        .ok_or_else(|| RuntimeError::InvalidSpec("process.args is empty".into()))?;
    let env = plan.process.env().clone().unwrap_or_default();
    if kind == ProcessKind::Init {
        // Like runc: a missing working directory is created (we are inside the new root, so
        // nothing outside it can be reached).
        process::create_cwd(plan.process.cwd())?;
    }
    process::enter_cwd(plan.process.cwd())?;
    let path = process::find_executable(program, &env)?;
    let keep: Vec<RawFd> = (3..3 + plan.preserve_fds).collect();
    process::close_fds_on_exec(&keep)?;
    ExecArgs::new(&path, &plan.process)
}

fn setup_stdio(stdio: &Stdio, size: Option<&oci_spec::runtime::Box>) -> Result<()> {
    match stdio {
        Stdio::Inherit => Ok(()),
        Stdio::Fds(fds) => {
            crate::tty::dup_stdio(&[fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()])
        }
        Stdio::Console(socket) => {
            let (master, slave) = crate::tty::open_pty()?;
            if let Some(size) = size {
                let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
                crate::tty::resize(&master, clamp(size.height()), clamp(size.width()))?;
            }
            crate::tty::send_fd(socket, &master, "/dev/ptmx")?;
            drop(master);
            crate::tty::become_terminal_session(&slave)
        }
    }
}

/// Seccomp (early, when no_new_privs is off: installing it then needs CAP_SYS_ADMIN), the
/// bounding set, the user, the capability sets, no_new_privs.
fn drop_privileges(plan: &InitPlan) -> Result<()> {
    let nnp = plan.process.no_new_privileges().unwrap_or(false);
    if !nnp && let Some(filter) = &plan.seccomp {
        filter.install()?;
    }
    process::limit_bounding_set(&plan.caps)?;
    process::set_user(plan.process.user())?;
    process::apply_capabilities(&plan.caps)?;
    if nnp {
        process::set_no_new_privileges()?;
    }
    Ok(())
}

/// Blocks on the exec fifo until `start` opens it, then tells `start` we are going.
fn wait_for_start(plan: &InitPlan) -> Result<()> {
    let Some(fifo) = &plan.fifo else {
        return Ok(());
    };
    use std::io::Write;
    let path = rootfs::fd_path(fifo);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .context(|| "open exec fifo".into())?;
    f.write_all(b"0").context(|| "write exec fifo".into())
}

/// The last steps before the user's program: no_new_privs seccomp, default signal handling.
fn final_exec(plan: &InitPlan, exec: &ExecArgs) -> Result<std::convert::Infallible> {
    if plan.process.no_new_privileges().unwrap_or(false)
        && let Some(filter) = &plan.seccomp
    {
        filter.install()?;
    }
    reset_signals();
    Err(exec.exec())
}

/// Undoes what Rust's runtime and our parent set up: SIGPIPE ignored, signals blocked. Both
/// survive execve and would change how the container's program behaves.
pub fn reset_signals() {
    // SAFETY: plain libc calls on valid, zeroed sigset and sigaction structures.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// An extra process in a running container (`exec`): already in its namespaces and cgroup.
fn exec_process(plan: InitPlan, chan: &mut Channel) -> Result<std::convert::Infallible> {
    let exec = prepare_process(&plan, ProcessKind::Exec)?;
    drop_privileges(&plan)?;
    chan.send(&Message::Ready)?;
    final_exec(&plan, &exec)
}
