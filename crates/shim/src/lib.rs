//! berth's per-container monitor, the **shim** (`berth shim …`): one small, single-threaded
//! process per container, in the role of containerd-shim-runc-v2 or Podman's conmon.
//!
//! What it owns:
//! - **the container's lifetime on the host side**: it creates the container through an OCI
//!   runtime ([`Runtime`]; today [`ExternalRuntime`], any runc-compatible binary), is the
//!   child subreaper its processes are reparented to, reaps them and records every exit
//!   durably in its state directory (`exit.json`, `exec-<id>.exit.json`);
//! - **the container's stdio**: the pipes or pty master, the json-file log with rotation
//!   ([`logfile`]), and attach streams in Docker's stdcopy framing;
//! - **the control socket** `<state-dir>/shim.sock` and its line-delimited JSON protocol
//!   ([`protocol`]), which any daemon — also one started after the shim — speaks through
//!   [`client::ShimClient`].
//!
//! It outlives whoever started it (it forks, `setsid`s and detaches), so a daemon can be
//! killed or upgraded without touching running containers. It is one `poll(2)` loop: no
//! threads, no async runtime — it forks, and forking is only sound single-threaded. The
//! built-in runtime (`berth-runtime`) will plug into [`Runtime`]; until it is usable the
//! crate does not depend on it.

pub mod builtin;
pub mod client;
pub mod config;
mod detach;
pub mod error;
pub mod logfile;
mod oom;
mod persist;
pub mod protocol;
pub mod runtime;
mod server;
pub mod sock;
pub mod timefmt;
mod trim;

pub use config::Config;
pub use error::ShimError;
pub use runtime::{ExternalRuntime, ProcessIo, Runtime};
pub use server::{EXIT_NAME, PID_NAME, SOCKET_NAME, exec_exit_name};

/// Runs `berth shim`: `args` are the arguments after the `shim` subcommand (a leading
/// `"shim"` is skipped). Forks the detached shim, waits until it has created the container
/// (or failed to), and returns the exit code for the starting process: 0 when the shim is up,
/// 1 with a one-line error on stderr when creation failed, 2 for bad arguments.
///
/// Must be called from a single-threaded process: it forks and the child goes on running
/// Rust code.
pub fn main_entry(args: Vec<String>) -> i32 {
    let args = match args.first() {
        Some(first) if first == "shim" => &args[1..],
        _ => &args[..],
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", config::USAGE);
        return 0;
    }
    match Config::parse(args) {
        Ok(cfg) if cfg.runtime.as_os_str() == config::BUILTIN_RUNTIME => {
            // The built-in runtime runs its code inside the container's namespaces: run from a
            // read-only view of our own binary first (CVE-2019-5736).
            if let Err(e) = berth_runtime::protect::reexec_from_readonly_binary() {
                eprintln!("berth shim: {e}");
                return 1;
            }
            detach::spawn(cfg)
        }
        Ok(cfg) => detach::spawn(cfg),
        Err(e) => {
            eprintln!("berth shim: {e}\n{}", config::USAGE);
            2
        }
    }
}
