//! Harness of the runtime conformance suite (`tests/runtime_conformance.rs`), in the spirit of
//! youki's `tests/contest`: every case is a plain function run against each runtime under test
//! (berth's own `berth runtime`, runc, crun), with the runc-compatible command line they share.
//!
//! - Selection: `BERTH_CONFORMANCE_RUNTIMES=berth,runc` (default: every available runtime).
//! - Each case gets a [`Ctx`]: its own `--root`, scratch directory and unique container ids. Its
//!   `Drop` kills and force-deletes every container it named and undoes host changes (mounts,
//!   network namespaces, cgroup directories) on every path, including panics.
//! - Every runtime command and every wait is bounded in time.
//! - `BERTH_CONFORMANCE_REPORT=<file>` appends one `case runtime verdict` line per result.

#![allow(dead_code)] // Not every helper is used by every build of the suite.

use std::cell::{Cell, RefCell};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_testsupport::{Bundle, is_root, unique_name};
use serde_json::Value;

/// What a case returns: `Err` carries a human-readable reason.
pub type CaseResult = Result<(), String>;
/// A conformance case.
pub type CaseFn = fn(&RuntimeUnderTest) -> CaseResult;

/// Default bound for one runtime command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound for a container to reach a state.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(15);

/// crun 1.8 refuses every container on a cgroup v1 "hybrid" host (v1 controllers plus a cgroup2
/// mount at /sys/fs/cgroup/unified): a known crun limitation, not a bug of the case.
const CRUN_HYBRID: &str = "cgroups in hybrid mode not supported";

/// One OCI runtime with a runc-compatible command line.
pub struct RuntimeUnderTest {
    /// Short name used for selection and reports: `berth`, `runc`, `crun`, `crun-v1`.
    pub name: String,
    /// The executable.
    pub binary: PathBuf,
    /// Arguments placed right after the binary, before the global options (`runtime` for berth).
    pub extra_args: Vec<String>,
    /// A command line that every invocation is wrapped in (empty for most runtimes).
    pub wrapper: Vec<String>,
    /// A refusal known to be a limitation of this runtime on this host: when a case's error
    /// contains the first string, the failure is expected, for the reason in the second.
    pub known_refusal: Option<(&'static str, &'static str)>,
}

impl RuntimeUnderTest {
    /// A command for `args` (after the global options) with `--root root`.
    pub fn command(&self, root: &Path, args: &[&str]) -> Command {
        let mut cmd;
        if let Some((first, rest)) = self.wrapper.split_first() {
            cmd = Command::new(first);
            cmd.args(rest).arg(&self.binary);
        } else {
            cmd = Command::new(&self.binary);
        }
        cmd.args(&self.extra_args)
            .arg("--root")
            .arg(root)
            .args(args);
        cmd
    }
}

/// True when /sys/fs/cgroup is v1 with a cgroup2 hierarchy mounted at /sys/fs/cgroup/unified.
pub fn cgroup_hybrid() -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let sep = f.iter().position(|x| *x == "-");
                f.get(4) == Some(&"/sys/fs/cgroup/unified")
                    && sep.and_then(|i| f.get(i + 1)) == Some(&"cgroup2")
            })
        })
        .unwrap_or(false)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn berth_runtime() -> RuntimeUnderTest {
    RuntimeUnderTest {
        name: "berth".into(),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_berth")),
        extra_args: vec!["runtime".into()],
        wrapper: vec![],
        known_refusal: None,
    }
}

/// `berth runtime` counts as available once `berth runtime features` prints a JSON object.
fn berth_available(rt: &RuntimeUnderTest) -> bool {
    let out = Command::new(&rt.binary)
        .args(["runtime", "features"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    matches!(out, Ok(o) if o.status.success()
        && serde_json::from_slice::<Value>(&o.stdout).is_ok_and(|v| v.is_object()))
}

/// Every runtime this suite knows, with whether it is available here, and why not.
fn known_runtimes() -> Vec<(RuntimeUnderTest, Result<(), String>)> {
    let mut all = Vec::new();
    let berth = berth_runtime();
    let ok = if berth_available(&berth) {
        Ok(())
    } else {
        Err("`berth runtime features` does not print JSON yet".to_string())
    };
    all.push((berth, ok));
    let runc = which("runc");
    all.push((
        RuntimeUnderTest {
            name: "runc".into(),
            binary: runc.clone().unwrap_or_else(|| "runc".into()),
            extra_args: vec![],
            wrapper: vec![],
            known_refusal: None,
        },
        runc.map(|_| ())
            .ok_or_else(|| "runc is not installed".to_string()),
    ));
    let crun = which("crun");
    let hybrid = cgroup_hybrid();
    all.push((
        RuntimeUnderTest {
            name: "crun".into(),
            binary: crun.clone().unwrap_or_else(|| "crun".into()),
            extra_args: vec![],
            wrapper: vec![],
            known_refusal: hybrid.then_some((
                CRUN_HYBRID,
                "crun 1.8 refuses any container on a cgroup v1 hybrid host",
            )),
        },
        crun.clone()
            .map(|_| ())
            .ok_or_else(|| "crun is not installed".to_string()),
    ));
    // crun-v1: crun in a private (slave) mount namespace where /sys/fs/cgroup/unified is
    // unmounted, so it sees a pure cgroup v1 host and can be compared with the others here.
    let unshare = which("unshare");
    all.push((
        RuntimeUnderTest {
            name: "crun-v1".into(),
            binary: crun.clone().unwrap_or_else(|| "crun".into()),
            extra_args: vec![],
            wrapper: vec![
                unshare
                    .clone()
                    .unwrap_or_else(|| "unshare".into())
                    .display()
                    .to_string(),
                "--mount".into(),
                "--propagation".into(),
                "slave".into(),
                "/bin/sh".into(),
                "-c".into(),
                "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"".into(),
            ],
            known_refusal: None,
        },
        match (crun, unshare, hybrid) {
            (Some(_), Some(_), true) => Ok(()),
            (None, _, _) => Err("crun is not installed".into()),
            (_, None, _) => Err("unshare is not installed".into()),
            (_, _, false) => Err("only needed on a cgroup v1 hybrid host".into()),
        },
    ));
    all
}

/// The runtimes selected by `BERTH_CONFORMANCE_RUNTIMES`, or every available one.
pub fn selected() -> &'static Result<Vec<RuntimeUnderTest>, String> {
    static SELECTED: OnceLock<Result<Vec<RuntimeUnderTest>, String>> = OnceLock::new();
    SELECTED.get_or_init(|| {
        let known = known_runtimes();
        match std::env::var("BERTH_CONFORMANCE_RUNTIMES") {
            Ok(list) if !list.trim().is_empty() => {
                let mut out = Vec::new();
                let mut known: Vec<_> = known.into_iter().map(Some).collect();
                for want in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let slot = known
                        .iter_mut()
                        .find(|k| k.as_ref().is_some_and(|(rt, _)| rt.name == want));
                    match slot.and_then(Option::take) {
                        // Asked for by name: berth runs even if `features` is not there yet.
                        Some((rt, avail)) => {
                            if rt.name != "berth" {
                                avail.map_err(|why| format!("{want}: {why}"))?;
                            }
                            out.push(rt);
                        }
                        None => {
                            return Err(format!(
                                "BERTH_CONFORMANCE_RUNTIMES: unknown or repeated runtime {want:?} \
                                 (known: berth, runc, crun, crun-v1)"
                            ));
                        }
                    }
                }
                Ok(out)
            }
            _ => {
                let mut out = Vec::new();
                for (rt, avail) in known {
                    match avail {
                        Ok(()) => out.push(rt),
                        Err(why) => eprintln!("[conformance] runtime {} skipped: {why}", rt.name),
                    }
                }
                Ok(out)
            }
        }
    })
}

/// Runs `case` against every selected runtime and panics if any result is unexpected.
/// `xfail` lists `(runtime, reason)` pairs for runtimes known to fail this case.
pub fn check(case: &str, f: CaseFn, xfail: &[(&str, &str)]) {
    if !is_root() {
        eprintln!("[conformance] {case}: skipped, needs root");
        return;
    }
    let runtimes = match selected() {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let mut bad = Vec::new();
    for rt in runtimes {
        let started = Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| f(rt))).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {msg}"))
        });
        let declared = xfail.iter().find(|(n, _)| *n == rt.name).map(|(_, w)| *w);
        let verdict = match (res, declared) {
            (Ok(()), None) => "PASS".to_string(),
            (Ok(()), Some(why)) => {
                bad.push(format!(
                    "{}: passed but is declared to fail ({why}): remove the declaration",
                    rt.name
                ));
                format!("XPASS (declared: {why})")
            }
            (Err(e), Some(why)) => format!("XFAIL ({why}): {e}"),
            (Err(e), None) => match rt.known_refusal {
                Some((pat, why)) if e.contains(pat) => format!("XFAIL ({why})"),
                _ => {
                    bad.push(format!("{}: {e}", rt.name));
                    format!("FAIL: {e}")
                }
            },
        };
        let line = format!(
            "{case} {} {verdict} [{:.1}s]",
            rt.name,
            started.elapsed().as_secs_f32()
        );
        eprintln!("[conformance] {line}");
        if let Ok(path) = std::env::var("BERTH_CONFORMANCE_REPORT") {
            let one_line = line.replace('\n', " | ");
            if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(f, "{one_line}");
            }
        }
    }
    if !bad.is_empty() {
        panic!("{case}:\n  {}", bad.join("\n  "));
    }
}

/// The outcome of one runtime command.
#[derive(Debug)]
pub struct Out {
    /// Exit code, or 128 + signal number.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Where stdout went; a container started by `create` keeps writing its output there.
    pub stdout_path: PathBuf,
    pub cmdline: String,
}

impl Out {
    /// A one-paragraph description for error messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {}; stdout: {:?}; stderr: {:?}",
            self.cmdline,
            self.code,
            clip(&self.stdout),
            clip(&self.stderr)
        )
    }

    /// `Ok(self)` on exit 0, otherwise an error describing the command.
    pub fn ok(self) -> Result<Out, String> {
        if self.code == 0 {
            Ok(self)
        } else {
            Err(self.describe())
        }
    }

    /// The current contents of the stdout file (the container's output after `create`).
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.len() > 1500 {
        let mut end = 1500;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr into files under `dir`, killing it
/// after `timeout`.
pub fn run_bounded(
    mut cmd: Command,
    dir: &Path,
    tag: &str,
    timeout: Duration,
) -> Result<Out, String> {
    let so = dir.join(format!("{tag}.out"));
    let se = dir.join(format!("{tag}.err"));
    let cmdline = format!("{cmd:?}").replace('"', "");
    let fo = File::create(&so).map_err(|e| format!("create {}: {e}", so.display()))?;
    let fe = File::create(&se).map_err(|e| format!("create {}: {e}", se.display()))?;
    cmd.stdin(Stdio::null()).stdout(fo).stderr(fe);
    let mut child = cmd.spawn().map_err(|e| format!("spawn `{cmdline}`: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{cmdline}` timed out after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait `{cmdline}`: {e}")),
        }
    };
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Out {
        code,
        stdout: fs::read_to_string(&so).unwrap_or_default(),
        stderr: fs::read_to_string(&se).unwrap_or_default(),
        stdout_path: so,
        cmdline,
    })
}

/// A shell command on the host that must succeed.
pub fn host_sh(script: &str) -> Result<String, String> {
    let out = Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("sh -c {script:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "host command {script:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One case's run against one runtime: its own `--root`, scratch space, container ids and
/// host-side cleanups, all undone on drop.
pub struct Ctx<'a> {
    pub rt: &'a RuntimeUnderTest,
    dir: tempfile::TempDir,
    ids: RefCell<Vec<String>>,
    bundles: RefCell<Vec<Rc<Bundle>>>,
    cleanups: RefCell<Vec<Box<dyn FnOnce()>>>,
    seq: Cell<u32>,
}

impl<'a> Ctx<'a> {
    pub fn new(rt: &'a RuntimeUnderTest) -> Result<Ctx<'a>, String> {
        let dir = tempfile::Builder::new()
            .prefix("berth-conf")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        fs::create_dir(dir.path().join("root")).map_err(|e| format!("mkdir root: {e}"))?;
        fs::create_dir(dir.path().join("io")).map_err(|e| format!("mkdir io: {e}"))?;
        Ok(Ctx {
            rt,
            dir,
            ids: RefCell::new(Vec::new()),
            bundles: RefCell::new(Vec::new()),
            cleanups: RefCell::new(Vec::new()),
            seq: Cell::new(0),
        })
    }

    /// The `--root` passed to every runtime command.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A directory for the case's own files (removed on drop).
    pub fn scratch(&self, name: &str) -> Result<PathBuf, String> {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
        Ok(p)
    }

    /// A fresh container id, force-deleted on drop.
    pub fn id(&self) -> String {
        let id = unique_name("conf");
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Registers `f` to run on drop, after the containers are deleted (last registered first).
    pub fn on_drop(&self, f: impl FnOnce() + 'static) {
        self.cleanups.borrow_mut().push(Box::new(f));
    }

    /// A busybox bundle running `args`, with its config.json edited by `edit` (the spec as JSON).
    pub fn bundle(
        &self,
        args: &[&str],
        edit: impl FnOnce(&mut Value),
    ) -> Result<Rc<Bundle>, String> {
        let b = Rc::new(Bundle::new(args));
        let mut cfg = serde_json::to_value(&b.spec).map_err(|e| format!("spec to json: {e}"))?;
        edit(&mut cfg);
        write_config(&b, &cfg)?;
        self.bundles.borrow_mut().push(b.clone());
        Ok(b)
    }

    /// `bundle(&["sh", "-c", script], edit)`.
    pub fn sh_bundle(
        &self,
        script: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Rc<Bundle>, String> {
        self.bundle(&["sh", "-c", script], edit)
    }

    /// Runs the runtime with `args`, bounded by `timeout`; any exit code is returned, except
    /// that a refusal known to be a limitation of the runtime on this host is an error (so a
    /// case that expects some failure cannot pass by it).
    pub fn rt_timeout(&self, args: &[&str], timeout: Duration) -> Result<Out, String> {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let tag = format!("{n}-{}", args.first().copied().unwrap_or("none"));
        let cmd = self.rt.command(&self.root(), args);
        let out = run_bounded(cmd, &self.dir.path().join("io"), &tag, timeout)?;
        match self.rt.known_refusal {
            Some((pat, _)) if out.code != 0 && out.stderr.contains(pat) => Err(out.describe()),
            _ => Ok(out),
        }
    }

    /// Runs the runtime with `args`; any exit code is returned.
    pub fn rt(&self, args: &[&str]) -> Result<Out, String> {
        self.rt_timeout(args, CMD_TIMEOUT)
    }

    /// `create --bundle <b> <id>`, which must succeed. The container's stdout and stderr are
    /// files: `Out::stdout_now` reads the former.
    pub fn create(&self, id: &str, b: &Bundle) -> Result<Out, String> {
        let bp = b.path().display().to_string();
        self.rt(&["create", "--bundle", &bp, id])?.ok()
    }

    pub fn start(&self, id: &str) -> Result<Out, String> {
        self.rt(&["start", id])?.ok()
    }

    /// `run --bundle <b> <id>` in the foreground; returns whatever it exits with.
    pub fn run(&self, id: &str, b: &Bundle) -> Result<Out, String> {
        let bp = b.path().display().to_string();
        self.rt_timeout(&["run", "--bundle", &bp, id], Duration::from_secs(60))
    }

    /// Runs `b` under a fresh id; it must exit 0. Returns its stdout.
    pub fn run_ok(&self, b: &Bundle) -> Result<String, String> {
        let id = self.id();
        let out = self.run(&id, b)?;
        if out.code != 0 {
            return Err(out.describe());
        }
        Ok(out.stdout)
    }

    /// `state <id>` parsed as JSON.
    pub fn state(&self, id: &str) -> Result<Value, String> {
        let out = self.rt(&["state", id])?.ok()?;
        serde_json::from_str(&out.stdout).map_err(|e| format!("state JSON {:?}: {e}", out.stdout))
    }

    /// `state <id>`'s status string.
    pub fn status(&self, id: &str) -> Result<String, String> {
        let st = self.state(id)?;
        st["status"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("state without status: {st}"))
    }

    /// The container's init pid from `state`.
    pub fn pid(&self, id: &str) -> Result<i32, String> {
        let st = self.state(id)?;
        st["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("state without a pid: {st}"))
    }

    /// Polls `state` until it reports `want`.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.status(id) {
                Ok(s) if s == want => return Ok(()),
                Ok(s) => last = s,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{id} did not reach {want:?} within {timeout:?} (last: {last})"
        ))
    }

    /// create + start, then waits for the container to stop; returns its stdout.
    pub fn create_start_wait(&self, id: &str, b: &Bundle) -> Result<String, String> {
        let out = self.create(id, b)?;
        self.start(id)?;
        self.wait_status(id, "stopped", WAIT_TIMEOUT)?;
        Ok(out.stdout_now())
    }

    /// Names left in `--root` (a clean runtime leaves none after a container is gone).
    pub fn root_entries(&self) -> Vec<String> {
        fs::read_dir(self.root())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mounts on the host that mention `path` (none should survive a failed create).
    pub fn host_mounts_under(path: &Path) -> Vec<String> {
        let p = path.display().to_string();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&p))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter().rev() {
            let _ = self.rt_timeout(&["kill", id, "KILL"], Duration::from_secs(10));
            let _ = self.rt_timeout(&["delete", "--force", id], Duration::from_secs(20));
        }
        let cleanups: Vec<_> = self.cleanups.borrow_mut().drain(..).collect();
        for f in cleanups.into_iter().rev() {
            f();
        }
        self.bundles.borrow_mut().clear();
    }
}

/// Writes `cfg` as the bundle's config.json.
pub fn write_config(b: &Bundle, cfg: &Value) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(cfg).map_err(|e| format!("config to json: {e}"))?;
    let p = b.path().join("config.json");
    fs::write(&p, json).map_err(|e| format!("write {}: {e}", p.display()))
}

/// Appends `item` to the array at `v` (creating it).
pub fn push(v: &mut Value, item: Value) {
    if !v.is_array() {
        *v = Value::Array(Vec::new());
    }
    if let Value::Array(a) = v {
        a.push(item);
    }
}

/// `Err(msg)` unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> CaseResult {
    if cond { Ok(()) } else { Err(msg()) }
}

/// `Err` unless `haystack` contains `needle`.
pub fn expect_contains(what: &str, haystack: &str, needle: &str) -> CaseResult {
    ensure(haystack.contains(needle), || {
        format!("{what}: expected {needle:?} in {:?}", clip(haystack))
    })
}

/// The inode of a namespace link such as `/proc/self/ns/net` (`net:[4026531840]`).
pub fn ns_link(path: &str) -> Result<String, String> {
    fs::read_link(path)
        .map(|p| p.display().to_string())
        .map_err(|e| format!("readlink {path}: {e}"))
}

/// Inode number of a file.
pub fn inode(path: &Path) -> Result<u64, String> {
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("stat {}: {e}", path.display()))
}

/// `sha256sum` of a file.
pub fn sha256(path: &Path) -> Result<String, String> {
    let out = host_sh(&format!("sha256sum '{}'", path.display()))?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("sha256sum of {}: no output", path.display()))
}

/// Reads the host sysctl `key` (dotted).
pub fn host_sysctl(key: &str) -> Result<String, String> {
    let p = format!("/proc/sys/{}", key.replace('.', "/"));
    fs::read_to_string(&p).map_err(|e| format!("read {p}: {e}"))
}

/// A cgroup v1 directory of `controller` for `cgroups_path` (absolute, as in the spec).
pub fn cgroup_v1_dir(controller: &str, cgroups_path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(cgroups_path.trim_start_matches('/'))
}

/// Waits up to `timeout` for `cond`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
