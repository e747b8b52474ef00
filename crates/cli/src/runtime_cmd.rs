//! `berth runtime …`: the OCI runtime with runc's command line, so containerd-style callers,
//! the OCI validation suite and runc users' habits work unchanged.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use std::os::unix::net::UnixStream;

use berth_runtime::container::{self, CreateOptions, ExecOptions, Io};
use berth_runtime::foreground;
use clap::{Args, Parser, Subcommand};
use nix::sys::signal::Signal;

/// berth's OCI runtime (runc-compatible command line).
#[derive(Parser, Debug)]
#[command(name = "berth runtime", version, about)]
pub struct RuntimeCli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/berth/runtime")]
    root: PathBuf,
    /// Also write errors and warnings to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the --log file: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
    /// Verbose logging (accepted for runc compatibility).
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd's cgroup driver (not supported: berth manages cgroupfs directly).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Run the user-specified program of a created container.
    Start { id: String },
    /// Create and start a container, and wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after starting instead of waiting for the container to exit.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print the container's OCI state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        /// Signal every process in the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Remove a container and its resources.
    Delete {
        /// Kill the container first if it is running.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        /// table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Only print ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the processes of a container.
    Ps {
        /// table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Options passed to ps(1) for the table format.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run an extra process in a running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print the features this runtime supports (JSON).
    Features,
    /// Write a default config.json.
    Spec {
        /// Bundle directory to write config.json into.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Make a spec for an unprivileged user (user namespace, no cgroups).
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Bundle directory holding config.json.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Write the init's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility; berth never creates a session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many extra fds (from 3 up) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: i32,
    id: String,
}

#[derive(Args, Debug)]
struct ExecArgs {
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a pty.
    #[arg(short, long)]
    tty: bool,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Extra groups.
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// A JSON file with the whole OCI process.
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Accepted for runc compatibility (no SELinux here).
    #[arg(long)]
    process_label: Option<String>,
    /// Accepted for runc compatibility (no AppArmor here).
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long)]
    no_new_privs: bool,
    /// Capabilities to add.
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long, default_value_t = 0)]
    preserve_fds: i32,
    #[arg(long)]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Entry point for `berth runtime ARGS…`; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match RuntimeCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let log = Logger {
        path: cli.log.clone(),
        json: cli.log_format == "json",
    };
    match dispatch(&cli, &log) {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<berth_runtime::RuntimeError>()
                .map(|r| r.exit_code())
                .unwrap_or(1);
            let message = format!("{e:#}");
            log.write("error", &message);
            eprintln!("berth runtime: {message}");
            code
        }
    }
}

fn dispatch(cli: &RuntimeCli, log: &Logger) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!("the systemd cgroup driver is not supported; berth manages cgroupfs directly");
    }
    let root = cli.root.as_path();
    match &cli.command {
        Command::Create(args) => {
            protect_unless_private_pid_ns(&BundleFacts::read(&args.bundle))?;
            let (_, warnings) = container::create(create_options(root, args)?)?;
            log.warnings(&warnings);
            Ok(0)
        }
        Command::Start { id } => {
            log.warnings(&container::start(root, id)?);
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => run(root, create, *detach, *keep, log),
        Command::State { id } => {
            println!("{}", container::Container::load(root, id)?.state_json());
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            container::kill(
                root,
                id,
                parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?,
                *all,
            )?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            log.warnings(&container::delete(root, id, *force)?);
            Ok(0)
        }
        Command::List { format, quiet } => list(root, format, *quiet),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(root, id, format, ps_args),
        Command::Exec(args) => exec(root, args, log),
        Command::Pause { id } => container::pause(root, id).map(|()| 0).map_err(Into::into),
        Command::Resume { id } => container::resume(root, id).map(|()| 0).map_err(Into::into),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&berth_runtime::features::document())?
            );
            Ok(0)
        }
        Command::Spec { bundle, rootless } => write_default_spec(bundle, *rootless),
    }
}

fn protect() -> Result<()> {
    berth_runtime::protect::reexec_from_readonly_binary().context("protect the runtime binary")
}

/// CVE-2019-5736 needs a process in the container that can see runtime code running: with a
/// new pid namespace nothing else lives in it until the init has exec'd the user's program, so
/// `create` and `run` skip the read-only re-exec (a millisecond per container). A shared or
/// joined pid namespace, and every `exec`, get it.
fn protect_unless_private_pid_ns(facts: &BundleFacts) -> Result<()> {
    if facts.private_pid_ns {
        Ok(())
    } else {
        protect()
    }
}

/// What the command line needs to know about a bundle before `create` reads it properly.
struct BundleFacts {
    terminal: bool,
    private_pid_ns: bool,
}

impl BundleFacts {
    /// Unreadable configs count as "needs everything"; `create` reports the real error.
    fn read(bundle: &Path) -> BundleFacts {
        let spec = oci_spec::runtime::Spec::load(bundle.join("config.json")).ok();
        let terminal = spec
            .as_ref()
            .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
            .unwrap_or(false);
        let private_pid_ns = spec
            .as_ref()
            .and_then(|s| s.linux().as_ref())
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|list| {
                list.iter().any(|n| {
                    n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
                })
            });
        BundleFacts {
            terminal,
            private_pid_ns,
        }
    }
}

fn create_options(root: &Path, args: &CreateArgs) -> Result<CreateOptions> {
    Ok(CreateOptions {
        root: root.to_path_buf(),
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        io: match &args.console_socket {
            Some(s) => Io::ConsoleSocket(s.clone()),
            None => Io::Inherit,
        },
        pid_file: args.pid_file.clone(),
        no_pivot: args.no_pivot,
        preserve_fds: args.preserve_fds,
    })
}

fn run(root: &Path, args: &CreateArgs, detach: bool, keep: bool, log: &Logger) -> Result<i32> {
    let facts = BundleFacts::read(&args.bundle);
    protect_unless_private_pid_ns(&facts)?;
    let terminal = facts.terminal;
    if detach {
        if terminal && args.console_socket.is_none() {
            bail!("cannot allocate a tty for a detached container without --console-socket");
        }
        container::create(create_options(root, args)?).map(|(_, w)| log.warnings(&w))?;
        return start_or_delete(root, &args.id, log).map(|()| 0);
    }
    // The init is our grandchild; as subreaper we get to wait for it. Signals are blocked
    // before it exists so none is lost.
    container::become_subreaper()?;
    let signals = foreground::block_signals()?;
    let mut opts = create_options(root, args)?;
    let console = match (terminal, &args.console_socket) {
        (true, None) => {
            let (ours, theirs) = UnixStream::pair().context("create console socketpair")?;
            opts.io = Io::Console(theirs);
            Some(ours)
        }
        _ => None,
    };
    let (pid, warnings) = container::create(opts)?;
    log.warnings(&warnings);
    let master = console
        .map(|c| berth_runtime::tty::recv_fd(&c))
        .transpose()?;
    start_or_delete(root, &args.id, log)?;
    let code = foreground::wait(&signals, pid, master)?;
    if !keep {
        log.warnings(&container::delete(root, &args.id, true)?);
    }
    Ok(code)
}

fn start_or_delete(root: &Path, id: &str, log: &Logger) -> Result<()> {
    match container::start(root, id) {
        Ok(warnings) => {
            log.warnings(&warnings);
            Ok(())
        }
        Err(e) => {
            let _ = container::delete(root, id, true);
            Err(e.into())
        }
    }
}

fn exec(root: &Path, args: &ExecArgs, log: &Logger) -> Result<i32> {
    protect()?;
    let c = container::Container::load(root, &args.id)?;
    if c.status == berth_runtime::Status::Paused && !args.ignore_paused {
        bail!("container {} is paused, unpause it first", args.id);
    }
    let process = exec_process(&c, args)?;
    let terminal = process.terminal().unwrap_or(false);
    if args.detach && terminal && args.console_socket.is_none() {
        bail!("cannot allocate a tty for a detached process without --console-socket");
    }
    let signals = if args.detach {
        None
    } else {
        container::become_subreaper()?;
        Some(foreground::block_signals()?)
    };
    let mut console = None;
    let io = match &args.console_socket {
        Some(s) => Io::ConsoleSocket(s.clone()),
        None if terminal => {
            let (ours, theirs) = UnixStream::pair().context("create console socketpair")?;
            console = Some(ours);
            Io::Console(theirs)
        }
        None => Io::Inherit,
    };
    let opts = ExecOptions {
        root: root.to_path_buf(),
        id: args.id.clone(),
        process,
        io,
        pid_file: args.pid_file.clone(),
        preserve_fds: args.preserve_fds,
    };
    let (pid, warnings) = container::exec(opts)?;
    log.warnings(&warnings);
    let master = console
        .map(|c| berth_runtime::tty::recv_fd(&c))
        .transpose()?;
    match signals {
        Some(signals) => Ok(foreground::wait(&signals, pid, master)?),
        None => Ok(0),
    }
}

/// The process to exec: `--process` JSON, or the container's own process with the command
/// line's overrides (args, env, cwd, user, tty, caps, no_new_privs).
fn exec_process(c: &container::Container, args: &ExecArgs) -> Result<oci_spec::runtime::Process> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("parse process JSON {}", path.display()));
    }
    if args.command.is_empty() {
        bail!("exec needs a command (or --process)");
    }
    let spec = c.state.load_spec()?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let mut u = p.user().clone();
        u.set_uid(
            uid.parse()
                .with_context(|| format!("invalid uid in --user {user:?}"))?,
        );
        u.set_gid(
            gid.parse()
                .with_context(|| format!("invalid gid in --user {user:?}"))?,
        );
        u.set_additional_gids(Some(args.additional_gids.clone()));
        p.set_user(u);
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let extra: Vec<oci_spec::runtime::Capability> = args
            .cap
            .iter()
            .map(|c| {
                serde_json::from_value(serde_json::Value::String(c.clone()))
                    .with_context(|| format!("unknown capability {c:?}"))
            })
            .collect::<Result<_>>()?;
        let add = |s: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = s.clone().unwrap_or_default();
            s.extend(extra.iter().copied());
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<i32> {
    let containers = container::list(root)?;
    if quiet {
        for c in &containers {
            println!("{}", c.record.id);
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let states: Vec<serde_json::Value> = containers
                .iter()
                .map(|c| serde_json::from_str(&c.state_json()).unwrap_or(serde_json::Value::Null))
                .collect();
            println!("{}", serde_json::to_string(&states)?);
        }
        "table" => {
            let mut out = std::io::stdout().lock();
            let rows: Vec<[String; 6]> = containers
                .iter()
                .map(|c| {
                    let pid = if c.status == berth_runtime::Status::Stopped {
                        0
                    } else {
                        c.record.pid
                    };
                    [
                        c.record.id.clone(),
                        pid.to_string(),
                        c.status.to_string(),
                        c.record.bundle.display().to_string(),
                        c.record.created.clone(),
                        owner_name(&c.record.owner),
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            write_table(&mut out, &header, &rows)?;
        }
        other => bail!("invalid format {other:?}: use table or json"),
    }
    Ok(0)
}

fn owner_name(owner: &str) -> String {
    if owner.is_empty() {
        "root".into()
    } else {
        owner.into()
    }
}

fn write_table(out: &mut impl Write, header: &[String; 6], rows: &[[String; 6]]) -> Result<()> {
    let mut widths = header.each_ref().map(|h| h.len());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = container::pids(root, id)?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args = if ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{line}");
                }
            }
        }
        other => bail!("invalid format {other:?}: use table or json"),
    }
    Ok(0)
}

/// `KILL`, `SIGKILL`, `9` → SIGKILL.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("invalid signal number {n}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .with_context(|| format!("invalid signal {s:?}"))
}

fn write_default_spec(bundle: &Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut spec = oci_spec::runtime::Spec::default();
    spec.set_hostname(Some("berth".into()));
    // Like runc since CVE-2022-29162: no inheritable or ambient capabilities by default.
    if let Some(mut process) = spec.process().clone() {
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_inheritable(None);
            caps.set_ambient(None);
            process.set_capabilities(Some(caps));
        }
        spec.set_process(Some(process));
    }
    if rootless {
        spec = oci_spec::runtime::Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        spec.set_hostname(Some("berth".into()));
    }
    let json = serde_json::to_vec_pretty(&spec)?;
    std::fs::write(&path, json).with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

/// The `--log` file: one line per error or warning, in runc's text or JSON shape.
struct Logger {
    path: Option<PathBuf>,
    json: bool,
}

impl Logger {
    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.path else { return };
        let time = berth_runtime::state::now_rfc3339();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    fn warnings(&self, warnings: &[String]) {
        for w in warnings {
            self.write("warning", w);
            eprintln!("berth runtime: warning: {w}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
