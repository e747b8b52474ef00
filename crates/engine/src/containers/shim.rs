//! Talking to a container's shim: starting `berth shim` (the daemon's own binary, or the one
//! configured for tests), blocking control calls moved off the async threads, and the attach
//! handshake on an async socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_errdefs::{CategorizedError, Category};
use berth_shim::client::ShimClient;
use berth_shim::protocol::{ExitInfo, Request, State};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long a control call (not `wait`) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What `berth shim` needs for one container.
#[derive(Debug, Clone)]
pub(crate) struct ShimLaunch {
    pub binary: PathBuf,
    pub runtime: Option<String>,
    pub runtime_root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
}

/// Runs `berth shim …` and waits for its verdict (the container created, or why not).
pub(crate) async fn launch(l: ShimLaunch) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(&l.binary);
        cmd.arg("shim")
            .arg("--id")
            .arg(&l.id)
            .arg("--bundle")
            .arg(&l.bundle)
            .arg("--state-dir")
            .arg(&l.state_dir)
            .arg("--runtime-root")
            .arg(&l.runtime_root)
            .arg("--log-path")
            .arg(&l.log_path);
        if let Some(runtime) = &l.runtime {
            cmd.arg("--runtime").arg(runtime);
        }
        for (flag, on) in [
            ("--tty", l.tty),
            ("--stdin", l.stdin),
            ("--stdin-once", l.stdin_once),
        ] {
            if on {
                cmd.arg(flag);
            }
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run the shim {}: {e}", l.binary.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let line = line.strip_prefix("berth shim: ").unwrap_or(line).trim();
        Err(if line.is_empty() {
            format!("the shim failed ({})", out.status)
        } else {
            line.to_owned()
        })
    })
    .await
    .map_err(|e| format!("shim launch task: {e}"))?
}

fn system(context: &str, e: impl std::fmt::Display) -> CategorizedError {
    CategorizedError::new(Category::System, format!("{context}: {e}"))
}

/// One blocking request/response on a fresh connection, on the blocking pool.
pub(crate) async fn call(state_dir: &Path, req: Request) -> Result<(), CategorizedError> {
    let dir = state_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut c = ShimClient::connect_state_dir(&dir).map_err(|e| system("shim", e))?;
        c.set_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| system("shim", e))?;
        c.call(&req).map(drop).map_err(|e| system("shim", e))
    })
    .await
    .map_err(|e| system("shim task", e))?
}

/// The shim's view of the container.
pub(crate) async fn state(state_dir: &Path) -> Result<State, CategorizedError> {
    let dir = state_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut c = ShimClient::connect_state_dir(&dir).map_err(|e| system("shim", e))?;
        c.set_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| system("shim", e))?;
        c.state().map_err(|e| system("shim", e))
    })
    .await
    .map_err(|e| system("shim task", e))?
}

/// Waits until the container exits, on an async connection (no thread is held while a
/// container runs). `Err` when the shim is gone.
pub(crate) async fn wait(state_dir: &Path) -> Result<ExitInfo, String> {
    request_exit(state_dir, Request::Wait).await
}

async fn request_exit(state_dir: &Path, req: Request) -> Result<ExitInfo, String> {
    let stream = connect_shim(state_dir)
        .await
        .map_err(|e| format!("connect to the shim: {e}"))?;
    let mut stream = tokio::io::BufReader::new(stream);
    let mut line = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream
        .get_mut()
        .write_all(&line)
        .await
        .map_err(|e| format!("send wait: {e}"))?;
    let mut answer = String::new();
    let n = stream
        .read_line(&mut answer)
        .await
        .map_err(|e| format!("read wait: {e}"))?;
    if n == 0 {
        return Err("the shim closed the connection".into());
    }
    let resp: berth_shim::protocol::Response =
        serde_json::from_str(&answer).map_err(|e| format!("wait answer: {e}"))?;
    match (resp.ok, resp.exit) {
        (true, Some(exit)) => Ok(exit),
        _ => Err(resp.error.unwrap_or_else(|| "wait failed".into())),
    }
}

/// `exit.json` of a shim that is gone.
pub(crate) fn recorded_exit(state_dir: &Path) -> Option<ExitInfo> {
    let data = std::fs::read(state_dir.join(berth_shim::EXIT_NAME)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// An async connection to the shim of `state_dir`; deep state directories are reached through
/// a short `/proc/self/fd` path (unix socket paths stop at 107 bytes).
async fn connect_shim(state_dir: &Path) -> std::io::Result<UnixStream> {
    let addr = berth_shim::sock::SocketPath::new(&state_dir.join(berth_shim::SOCKET_NAME))?;
    UnixStream::connect(addr.as_path()).await
}

/// Whether a shim answers on `state_dir`.
pub(crate) fn alive(state_dir: &Path) -> bool {
    berth_shim::sock::connect(&state_dir.join(berth_shim::SOCKET_NAME)).is_ok()
}

/// Deletes the container in the shim and ends the shim. When the shim is already gone (it was
/// killed, or the host rebooted) the runtime's leftovers — processes, cgroup, state — are
/// removed directly, so no container cgroup outlives its record.
pub(crate) async fn teardown(state_dir: &Path, runtime_root: &Path, id: &str) {
    if !alive(state_dir) {
        let (root, id) = (runtime_root.to_path_buf(), id.to_owned());
        let _ = tokio::task::spawn_blocking(move || {
            match berth_runtime::container::delete(&root, &id, true) {
                Ok(_) | Err(berth_runtime::RuntimeError::NotFound(_)) => {}
                Err(e) => tracing::warn!("remove runtime state of {id}: {e}"),
            }
        })
        .await;
        return;
    }
    if let Err(e) = call(state_dir, Request::Delete { force: true }).await {
        tracing::debug!("shim delete: {}", e.message);
    }
    if let Err(e) = call(state_dir, Request::Shutdown).await {
        tracing::debug!("shim shutdown: {}", e.message);
    }
    // Give it a moment to go, so its socket is not reused by a new shim.
    for _ in 0..50 {
        if !alive(state_dir) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which streams an attach carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Forward the client's bytes to the process's stdin.
    pub stdin: bool,
    /// Send stdout.
    pub stdout: bool,
    /// Send stderr.
    pub stderr: bool,
}

/// Connects and turns the connection into an attach stream (stdcopy frames or raw TTY bytes
/// from the shim; raw stdin to it). Reads the one-line answer byte by byte so that no output
/// that follows it is consumed.
pub(crate) async fn attach(
    state_dir: &Path,
    opts: AttachOptions,
) -> Result<UnixStream, CategorizedError> {
    attach_to(state_dir, opts, None).await
}

/// [`attach`] to the container's init or to an exec process.
pub(crate) async fn attach_to(
    state_dir: &Path,
    opts: AttachOptions,
    exec_id: Option<&str>,
) -> Result<UnixStream, CategorizedError> {
    let mut stream = connect_shim(state_dir)
        .await
        .map_err(|e| system("connect to the shim", e))?;
    let mut line = serde_json::to_vec(&Request::Attach {
        stdin: opts.stdin,
        stdout: opts.stdout,
        stderr: opts.stderr,
        exec_id: exec_id.map(str::to_owned),
    })
    .map_err(|e| system("attach", e))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .await
        .map_err(|e| system("attach", e))?;
    let mut answer = Vec::new();
    let read = async {
        loop {
            let b = stream.read_u8().await?;
            if b == b'\n' {
                return Ok::<_, std::io::Error>(());
            }
            answer.push(b);
            if answer.len() > 64 * 1024 {
                return Err(std::io::Error::other("answer too long"));
            }
        }
    };
    tokio::time::timeout(CALL_TIMEOUT, read)
        .await
        .map_err(|_| system("attach", "the shim did not answer"))?
        .map_err(|e| system("attach", e))?;
    let resp: berth_shim::protocol::Response =
        serde_json::from_slice(&answer).map_err(|e| system("attach", e))?;
    if !resp.ok {
        return Err(CategorizedError::new(
            Category::Conflict,
            resp.error.unwrap_or_else(|| "attach failed".into()),
        ));
    }
    Ok(stream)
}

/// Starts a registered exec process; its pid.
pub(crate) async fn exec_start(state_dir: &Path, exec_id: &str) -> Result<i32, CategorizedError> {
    let dir = state_dir.to_owned();
    let exec_id = exec_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut c = ShimClient::connect_state_dir(&dir).map_err(|e| system("shim", e))?;
        c.set_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| system("shim", e))?;
        c.exec_start(&exec_id)
            .map_err(|e| CategorizedError::new(Category::InvalidParameter, e.to_string()))
    })
    .await
    .map_err(|e| system("shim task", e))?
}

/// The exit code of an exec process, if it has exited.
pub(crate) async fn exec_exit(
    state_dir: &Path,
    exec_id: &str,
) -> Result<Option<i32>, CategorizedError> {
    let dir = state_dir.to_owned();
    let exec_id = exec_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut c = ShimClient::connect_state_dir(&dir).map_err(|e| system("shim", e))?;
        c.set_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| system("shim", e))?;
        c.exec_state(&exec_id)
            .map(|s| s.exit.map(|e| e.exit_code))
            .map_err(|e| system("shim", e))
    })
    .await
    .map_err(|e| system("shim task", e))?
}

/// Waits (async connection) until an exec process exits.
pub(crate) async fn exec_wait(state_dir: &Path, exec_id: &str) -> Result<ExitInfo, String> {
    request_exit(
        state_dir,
        Request::ExecWait {
            exec_id: exec_id.to_owned(),
        },
    )
    .await
}
