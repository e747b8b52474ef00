//! The `berth` docker-style CLI against a real daemon, compared with what the real docker CLI
//! prints against the same daemon: ps, images, --format, version/info, flag errors, and the
//! container commands (run, logs, exec, inspect, stop, rm, -it through a pty).
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise.

mod client_support;
mod daemon_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client_support::*;
use daemon_support::wait_bounded;

impl Env {
    /// Runs the same arguments through docker and berth until both print the same (time
    /// cells can tick between the two runs); the last outputs.
    fn same_as_docker(&self, args: &[&str]) -> (String, String) {
        let mut last = (String::new(), String::new());
        for _ in 0..5 {
            let d = self.docker(args);
            let b = self.berth(args);
            assert_eq!(
                d.status.code(),
                b.status.code(),
                "exit codes of {args:?} differ; docker: {}{}; berth: {}{}",
                text(&d.stdout),
                text(&d.stderr),
                text(&b.stdout),
                text(&b.stderr)
            );
            last = (text(&d.stdout), text(&b.stdout));
            if last.0 == last.1 {
                return last;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "berth {args:?} differs from docker:\n--- docker\n{}--- berth\n{}",
            last.0, last.1
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
        kill_leftover_shims(self.daemon.dir.path());
    }
}

#[test]
fn ps_output_is_dockers() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let running = unique("cli-ps-run");
    let exited = unique("cli-ps-exit");
    let r = env.docker(&[
        "run", "-d", "--name", &running, "-l", "tier=web", "busybox", "sleep", "1000",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let e = env.docker(&["run", "--name", &exited, "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(e.status.code(), Some(3));

    let (docker, berth) = env.same_as_docker(&["ps"]);
    assert!(
        berth.starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{berth}"
    );
    assert!(
        berth.contains(&running) && !berth.contains(&exited),
        "{docker}"
    );
    let (_, berth) = env.same_as_docker(&["ps", "-a"]);
    assert!(berth.contains("Exited (3)"), "{berth}");
    env.same_as_docker(&["ps", "-a", "--no-trunc"]);
    env.same_as_docker(&["ps", "-aq"]);
    env.same_as_docker(&["ps", "-l"]);
    env.same_as_docker(&["ps", "-n", "1", "-q"]);
    env.same_as_docker(&["ps", "-a", "-f", "status=exited", "-q"]);
    env.same_as_docker(&["ps", "-a", "--filter", &format!("name={running}")]);
    env.same_as_docker(&["ps", "-a", "--format", "{{json .}}"]);
    env.same_as_docker(&["ps", "-a", "--format", "json"]);
    env.same_as_docker(&["ps", "-a", "--format", "{{.ID}}\t{{.Names}} {{.State}}"]);
    env.same_as_docker(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}"]);
    let (_, berth) = env.same_as_docker(&["ps", "--format", "{{.Label \"tier\"}}|{{json .Names}}"]);
    assert_eq!(berth, format!("web|\"{running}\"\n"));
    env.same_as_docker(&["ps", "--format", "table {{.ID}}\\t{{.Label \"tier\"}}"]);
    env.same_as_docker(&["container", "ls", "-a"]);
    env.same_as_docker(&["ps", "-a", "-s"]);
    env.same_as_docker(&["ps", "-a", "--format", "{{.Size}} {{.Names}}"]);
    env.same_as_docker(&["ps", "-f", "name=nothing-is-called-this"]);
    same_error(&env, &["ps", "-f", "nonsense"]);
}

#[test]
fn images_output_is_dockers() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let tag = unique("cli-img");
    let t = env.docker(&["tag", "busybox", &format!("{tag}:v1")]);
    assert!(t.status.success(), "{}", text(&t.stderr));
    let (_, berth) = env.same_as_docker(&["images"]);
    assert!(berth.starts_with("REPOSITORY "), "{berth}");
    assert!(berth.contains(&format!("{tag}   v1 ")), "{berth}");
    env.same_as_docker(&["images", "-q"]);
    env.same_as_docker(&["images", "-a"]);
    env.same_as_docker(&["images", "--digests"]);
    env.same_as_docker(&["images", "--no-trunc"]);
    env.same_as_docker(&["images", "busybox"]);
    env.same_as_docker(&["images", "--format", "{{json .}}"]);
    env.same_as_docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    env.same_as_docker(&["images", "--format", "table {{.Repository}}\\t{{.Size}}"]);
    env.same_as_docker(&["image", "ls", "-f", "dangling=true"]);
}

#[test]
fn version_and_info_talk_to_the_daemon() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let out = env.ok(&["version"]);
    assert!(out.contains("Server: berth"), "{out}");
    assert!(
        out.contains("API version:      1.41 (minimum version"),
        "{out}"
    );
    assert_eq!(
        env.ok(&["version", "--format", "{{.Server.ApiVersion}}"])
            .trim(),
        "1.41"
    );
    let out = env.ok(&["info"]);
    assert!(
        out.contains(&format!(
            "Docker Root Dir: {}",
            env.daemon.data_root.display()
        )),
        "{out}"
    );
    let (docker, _) = env.same_as_docker(&["info", "--format", "{{.Images}} {{.DockerRootDir}}"]);
    assert!(docker.contains(&env.daemon.data_root.display().to_string()));
    // -H wins over the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-H", &env.host(), "info", "-f", "{{.DockerRootDir}}"])
        .env("BERTH_HOST", "unix:///nonexistent/berth.sock")
        .output()
        .expect("berth");
    assert_eq!(
        text(&out.stdout).trim(),
        env.daemon.data_root.display().to_string(),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_daemon_is_dockers_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["ps"])
        .env("BERTH_HOST", "unix:///nonexistent/berth.sock")
        .output()
        .expect("berth");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Cannot connect to the berth daemon at unix:///nonexistent/berth.sock. Is the berth daemon running?\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-H", "tcp://127.0.0.1:1", "ps"])
        .output()
        .expect("berth");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_flags_and_arguments_get_dockers_message_and_status() {
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: no docker CLI");
        return;
    }
    // Flag errors are found before any connection, so no daemon is needed; docker's own
    // message (with "docker" for "berth") is the reference.
    for args in [
        &["ps", "--bogus"][..],
        &["ps", "-z"],
        &["ps", "-n", "x"],
        &["images", "--nope"],
        &["images", "-f", "nonsense"],
        &["run", "--cpus", "many", "busybox"],
        &["run", "--ulimit", "nofile", "busybox"],
        &["exec"],
        &["logs"],
        &["ps", "extra"],
        &["tag", "only-one"],
        &["rm"],
    ] {
        let d = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .expect("docker");
        let b = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("BERTH_HOST", "unix:///nonexistent/berth.sock")
            .output()
            .expect("berth");
        assert_eq!(b.status.code(), d.status.code(), "{args:?}");
        assert_eq!(
            text(&b.stderr),
            text(&d.stderr).replace("docker", "berth"),
            "{args:?}"
        );
    }
}

/// berth and docker agree on exit status and stderr (with "docker" read as "berth").
fn same_error(env: &Env, args: &[&str]) {
    let d = env.docker(args);
    let b = env.berth(args);
    assert_eq!(
        b.status.code(),
        d.status.code(),
        "{args:?}: {}",
        text(&b.stderr)
    );
    assert_eq!(
        text(&b.stderr),
        text(&d.stderr).replace("docker", "berth"),
        "{args:?}"
    );
}

#[test]
fn run_attached_gives_output_and_exit_codes() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(text(&out.stdout), "hi\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(
        (text(&out.stdout).as_str(), text(&out.stderr).as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(out.status.code(), Some(3));
    // 127: no such command; 126: not executable; both with docker's words.
    same_error(&env, &["run", "--rm", "busybox", "/nonexistent"]);
    assert_eq!(
        env.berth(&["run", "--rm", "busybox", "/nonexistent"])
            .status
            .code(),
        Some(127)
    );
    same_error(&env, &["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(
        env.berth(&["run", "--rm", "busybox", "/etc/passwd"])
            .status
            .code(),
        Some(126)
    );
    // 125: the daemon refuses (name in use), and a flag error.
    let name = unique("cli-run-dup");
    env.ok(&["create", "--name", &name, "busybox", "true"]);
    same_error(&env, &["run", "--name", &name, "busybox", "true"]);
    same_error(&env, &["run", "-m", "lots", "busybox", "true"]);
    same_error(&env, &["run"]);
    same_error(&env, &["run", "--bogus", "busybox"]);
    // Flags after the image belong to the command, as with docker.
    let out = env.ok(&["run", "--rm", "busybox", "echo", "--rm", "-d", "x"]);
    assert_eq!(out, "--rm -d x\n");
    // stdin with -i, half-closed at its end.
    let out = env.berth_input(&["run", "-i", "--rm", "busybox", "cat"], Some(b"piped\n"));
    assert_eq!(text(&out.stdout), "piped\n", "{}", text(&out.stderr));
    // Nothing left behind by --rm: only the created one remains.
    assert_eq!(env.ok(&["ps", "-aq"]).lines().count(), 1);
}

#[test]
fn detached_containers_through_their_life() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let name = unique("cli-life");
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "GREETING=hey",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING; echo to-err >&2; exec sleep 1000",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    // logs: the same as docker's, stdout and stderr apart.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.ok(&["logs", &name]).contains("hey") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for args in [
        &["logs", &name][..],
        &["logs", "--tail", "1", &name],
        &["logs", "-t", &name],
    ] {
        let d = env.docker(args);
        let b = env.berth(args);
        assert_eq!(text(&b.stdout), text(&d.stdout), "{args:?}");
        assert_eq!(text(&b.stderr), text(&d.stderr), "{args:?}");
    }
    // exec: output, environment, working dir, exit code.
    let out = env.berth(&["exec", &name, "sh", "-c", "echo o; echo e >&2; exit 7"]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("o\n".into(), "e\n".into())
    );
    assert_eq!(out.status.code(), Some(7));
    let out = env.ok(&[
        "exec",
        "-e",
        "E=1",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo $E; pwd",
    ]);
    assert_eq!(out, "1\n/tmp\n");
    let out = env.berth_input(&["exec", "-i", &name, "cat"], Some(b"in\n"));
    assert_eq!(text(&out.stdout), "in\n");
    // inspect -f paths and json, as docker prints them.
    for f in [
        "{{.State.Status}}",
        "{{.Name}} {{.Config.Image}} {{.State.Running}}",
        "{{json .Config.Cmd}}",
        "{{.Config.Env}}",
        "{{index .Config.Labels \"nope\"}}",
    ] {
        env.same_as_docker(&["inspect", "-f", f, &name]);
    }
    env.same_as_docker(&["inspect", "--format", "{{.Id}}", "busybox"]);
    env.same_as_docker(&["top", &name]);
    // stop, then ps shows it exited; rm; unknown container messages.
    assert_eq!(env.ok(&["stop", "-t", "1", &name]), format!("{name}\n"));
    let status = env.ok(&["inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(status.trim(), "exited");
    assert_eq!(env.ok(&["rm", &name]), format!("{name}\n"));
    same_error(&env, &["rm", &name]);
    same_error(&env, &["stop", "nosuch-container"]);
    same_error(&env, &["logs", "nosuch-container"]);
    same_error(&env, &["exec", "nosuch-container", "true"]);
    same_error(&env, &["inspect", "nosuch-container"]);
}

#[test]
fn create_start_attach_wait_and_logs_follow() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let name = unique("cli-start");
    env.ok(&[
        "create",
        "--name",
        &name,
        "busybox",
        "sh",
        "-c",
        "echo started; exit 4",
    ]);
    let out = env.berth(&["start", "-a", &name]);
    assert_eq!(text(&out.stdout), "started\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(env.ok(&["wait", &name]), "4\n");
    let follow = unique("cli-follow");
    env.ok(&[
        "run",
        "-d",
        "--name",
        &follow,
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    // -f ends when the container does, with everything it wrote.
    assert_eq!(env.ok(&["logs", "-f", &follow]), "a\nb\n");
    assert_eq!(
        env.ok(&["restart", "-t", "1", &follow]),
        format!("{follow}\n")
    );
    assert_eq!(env.ok(&["kill", &follow]), format!("{follow}\n"));
    let code = env.ok(&["wait", &follow]);
    assert_eq!(code.trim(), "137");
    assert_eq!(
        env.ok(&["rm", "-f", &name, &follow]),
        format!("{name}\n{follow}\n")
    );
}

#[test]
fn run_it_through_a_pty() {
    if !usable() {
        return;
    }
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    let env = Env::new();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave: OwnedFd = pty.slave;
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["run", "-it", "--rm", "busybox", "sh"])
        .env("BERTH_HOST", env.host())
        .stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave))
        .spawn()
        .expect("berth");
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().expect("dup master");
    let collected = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once every slave fd is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    std::thread::sleep(Duration::from_millis(700));
    master
        .write_all(b"echo hel''lo-from-tty; tty\n")
        .expect("type");
    std::thread::sleep(Duration::from_millis(500));
    master.write_all(b"exit 3\n").expect("type exit");
    let code = wait_bounded(&mut child, Duration::from_secs(30));
    let out = text(&collected.join().unwrap_or_default());
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("hello-from-tty"), "{out}");
    // The shell's stdin is the container's own terminal.
    assert!(out.contains("/dev/pts/"), "{out}");
}

#[test]
fn image_commands_match_docker() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let repo = unique("cli-imgs");
    let (t1, t2) = (format!("{repo}:t1"), format!("{repo}:t2"));
    assert_eq!(env.ok(&["tag", "busybox", &t1]), "");
    env.ok(&["tag", "busybox", &t2]);
    env.same_as_docker(&["images", &repo]);
    env.same_as_docker(&["history", "busybox"]);
    env.same_as_docker(&["history", "--no-trunc", "-H=false", "busybox"]);
    env.same_as_docker(&["image", "inspect", "-f", "{{.Id}} {{.RepoTags}}", &t1]);
    // rmi prints docker's Untagged lines.
    let d = env.docker(&["rmi", &t2]);
    let b = env.berth(&["rmi", &t1]);
    assert_eq!(text(&b.stdout), text(&d.stdout).replace(":t2", ":t1"));
    same_error(&env, &["rmi", &t1]);
    // save | load round trip keeps the image id.
    let id = env.ok(&["inspect", "-f", "{{.Id}}", "busybox"]);
    let tar = env.daemon.dir.path().join("bb-save.tar");
    let tar_s = tar.display().to_string();
    assert_eq!(env.ok(&["save", "-o", &tar_s, "busybox"]), "");
    env.ok(&["tag", "busybox", &t1]);
    env.ok(&["rmi", "busybox"]);
    let d = env.docker(&["load", "-i", &tar_s]);
    env.ok(&["rmi", "busybox"]);
    let b = env.berth(&["load", "-i", &tar_s]);
    assert_eq!(text(&b.stdout), text(&d.stdout));
    assert_eq!(text(&b.stdout), "Loaded image: busybox:latest\n");
    assert_eq!(env.ok(&["inspect", "-f", "{{.Id}}", "busybox"]), id);
    // save to a pipe gives the same archive as docker's.
    let saved = env.berth(&["save", "busybox"]);
    assert!(saved.stdout.len() > 1 << 20, "{}", text(&saved.stderr));
    // import from a file and from stdin, with a tag.
    let imported = env.ok(&["import", &tar_s, &format!("{repo}:imp")]);
    assert!(imported.starts_with("sha256:"), "{imported}");
    let raw = std::fs::read(&tar).expect("archive");
    let out = env.berth_input(&["import", "-", &format!("{repo}:stdin")], Some(&raw));
    assert!(
        text(&out.stdout).starts_with("sha256:"),
        "{}",
        text(&out.stderr)
    );
    // pull and push go to the daemon and give its answer exactly as docker does.
    same_error(&env, &["pull", "127.0.0.1:1/none/such:1"]);
    // Push to a loopback port nobody serves: never to Docker Hub from a test.
    let local = format!("127.0.0.1:1/{repo}:t1");
    env.same_as_docker(&["tag", &t1, &local]);
    same_error(&env, &["push", &local]);
    // prune with nothing dangling.
    env.same_as_docker(&["image", "prune", "-f"]);
}

#[test]
fn more_container_commands_and_events() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let name = unique("cli-more");
    let renamed = format!("{name}-new");
    // Events, streamed while a container is created, started and removed.
    let mut events = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["events", "--filter", "type=container"])
        .env("BERTH_HOST", env.host())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("berth events");
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"]);
    assert_eq!(env.ok(&["rename", &name, &renamed]), "");
    assert_eq!(env.ok(&["pause", &renamed]), format!("{renamed}\n"));
    let status = env.ok(&[
        "ps",
        "--format",
        "{{.Status}}",
        "-f",
        &format!("name={renamed}"),
    ]);
    assert!(status.contains("(Paused)"), "{status}");
    assert_eq!(env.ok(&["unpause", &renamed]), format!("{renamed}\n"));
    env.same_as_docker(&["port", &renamed]);
    env.ok(&["rm", "-f", &renamed]);
    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let mut out = String::new();
    if let Some(mut pipe) = events.stdout.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut out);
    }
    let _ = events.wait();
    for action in ["create", "start", "rename", "pause", "unpause", "destroy"] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!(" container {action} ")) && l.ends_with(')')),
            "no {action} event in:\n{out}"
        );
    }
    // container prune removes stopped containers and lists them.
    let stopped = unique("cli-prune");
    env.ok(&["run", "--name", &stopped, "busybox", "true"]);
    let id = env.ok(&["inspect", "-f", "{{.Id}}", &stopped]);
    let out = env.ok(&["container", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Containers:\n") && out.contains(id.trim()),
        "{out}"
    );
    assert!(out.ends_with("Total reclaimed space: 0B\n"), "{out}");
    same_error(&env, &["inspect", &stopped]);
}

/// A berth process on a fresh pty of `rows`×`cols`; the master side and the output so far.
struct PtyRun {
    child: std::process::Child,
    master: std::fs::File,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PtyRun {
    fn start(env: &Env, args: &[&str], rows: u16, cols: u16) -> PtyRun {
        use std::io::Read;
        use std::os::fd::OwnedFd;
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("BERTH_HOST", env.host())
            .stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave))
            .spawn()
            .expect("berth");
        drop(slave);
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().expect("dup master");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave fd is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut all) = sink.lock() {
                    all.extend_from_slice(&buf[..n]);
                }
            }
        });
        PtyRun {
            child,
            master,
            output,
            reader: Some(reader),
        }
    }

    fn type_in(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.master.write_all(bytes).expect("type");
    }

    fn text(&self) -> String {
        self.output.lock().map(|o| text(&o)).unwrap_or_default()
    }

    /// Waits (bounded) until the output contains `needle`.
    fn expect(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.text().contains(needle) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            self.text().contains(needle),
            "no {needle:?} in {:?}",
            self.text()
        );
    }

    fn resize(&mut self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from a live local.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ");
        // The pty is not berth's controlling terminal, so deliver SIGWINCH by hand.
        daemon_support::signal(&self.child, libc::SIGWINCH);
    }

    fn wait(&mut self) -> Option<i32> {
        let code = wait_bounded(&mut self.child, Duration::from_secs(30));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        code
    }
}

impl Drop for PtyRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn tty_size_follows_the_terminal_and_detach_keys_detach() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let mut run = PtyRun::start(&env, &["run", "-it", "--rm", "busybox", "sh"], 30, 100);
    run.expect("# ");
    run.type_in(b"stty size\n");
    run.expect("30 100");
    run.resize(40, 120);
    std::thread::sleep(Duration::from_millis(300));
    run.type_in(b"stty size\n");
    run.expect("40 120");
    run.type_in(b"exit 3\n");
    assert_eq!(run.wait(), Some(3), "{}", run.text());
    // ctrl-p ctrl-q: berth exits 0 and the container keeps running. (The daemon does not
    // take detach keys yet, so a process that reads stdin would see it close: sleep doesn't.)
    let name = unique("cli-tty");
    let mut run = PtyRun::start(
        &env,
        &["run", "-it", "--name", &name, "busybox", "sleep", "1000"],
        30,
        100,
    );
    std::thread::sleep(Duration::from_millis(700));
    run.type_in(&[0x10, 0x11]);
    assert_eq!(run.wait(), Some(0), "{}", run.text());
    let state = env.ok(&["inspect", "-f", "{{.State.Running}}", &name]);
    assert_eq!(state.trim(), "true");
    // Attach again, leave with a custom key.
    let mut again = PtyRun::start(&env, &["attach", "--detach-keys", "ctrl-x", &name], 30, 100);
    std::thread::sleep(Duration::from_millis(500));
    again.type_in(&[0x18]);
    assert_eq!(again.wait(), Some(0), "{}", again.text());
    let state = env.ok(&["inspect", "-f", "{{.State.Running}}", &name]);
    assert_eq!(state.trim(), "true");
    // exec -it: a terminal of our size, the exec's own exit code.
    let mut exec = PtyRun::start(&env, &["exec", "-it", &name, "sh"], 25, 90);
    exec.expect("# ");
    exec.type_in(b"stty size; tty\n");
    exec.expect("25 90");
    exec.expect("/dev/pts/");
    exec.type_in(b"exit 4\n");
    assert_eq!(exec.wait(), Some(4), "{}", exec.text());
    env.ok(&["rm", "-f", &name]);
}

#[test]
fn signals_reach_an_attached_container() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .env("BERTH_HOST", env.host())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text(&seen).contains("ready") && Instant::now() < deadline {
        use std::io::Read;
        let mut buf = [0u8; 256];
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert!(text(&seen).contains("ready"), "{}", text(&seen));
    daemon_support::signal(&child, libc::SIGTERM);
    let code = wait_bounded(&mut child, Duration::from_secs(20));
    let rest = read_all(Some(stdout));
    assert_eq!(code, Some(5), "{}{}", text(&seen), text(&rest));
    assert!(text(&rest).contains("got-term"), "{}", text(&rest));
}

/// The client crate on its own against the daemon: version negotiation, typed errors, a
/// hijacked attach with half-close, demultiplexed logs.
#[test]
fn client_crate_against_the_daemon() {
    if !usable() {
        return;
    }
    use berth_client::stream::{Demuxer, StdStream};
    use berth_client::types::ContainerCreate;
    use berth_client::{Client, ClientError, Host};
    use berth_errdefs::{Category, HasCategory};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let env = Env::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = Client::new(Host::parse(&env.host()).expect("host"));
        client.negotiate().await.expect("ping");
        assert_eq!(client.api_version(), "1.41");
        let err = client
            .container_inspect("nosuch-container")
            .await
            .expect_err("404");
        assert!(
            matches!(&err, ClientError::Daemon { status: 404, message } if message == "No such container: nosuch-container"),
            "{err:?}"
        );
        assert_eq!(err.category(), Category::NotFound);

        // cat through a hijacked attach: stdin goes up raw, EOF by half-close, output framed.
        let body = ContainerCreate {
            image: "busybox".into(),
            cmd: Some(vec!["sh".into(), "-c".into(), "cat; echo done >&2".into()]),
            attach_stdin: true,
            attach_stdout: true,
            attach_stderr: true,
            open_stdin: true,
            stdin_once: true,
            ..Default::default()
        };
        let id = client
            .container_create(Some(&unique("cli-api")), &body)
            .await
            .expect("create")
            .id;
        let mut io = client
            .container_attach(&id, true, true, true)
            .await
            .expect("attach");
        let wait = client
            .container_wait(&id, Some("next-exit"))
            .await
            .expect("wait");
        client.container_start(&id).await.expect("start");
        io.write_all(b"through the socket\n").await.expect("write");
        io.shutdown().await.expect("half-close");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), io.read_to_end(&mut raw))
            .await
            .expect("output in time")
            .expect("read");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        Demuxer::new()
            .feed(&raw, &mut |s, b| match s {
                StdStream::Stderr => err.extend_from_slice(b),
                _ => out.extend_from_slice(b),
            })
            .expect("frames");
        assert_eq!(text(&out), "through the socket\n");
        assert_eq!(text(&err), "done\n");
        assert_eq!(wait.status().await.expect("status").status_code, 0);

        // Removing twice: the second is a typed 404.
        client
            .container_remove(&id, true, false)
            .await
            .expect("remove");
        let again = client
            .container_remove(&id, true, false)
            .await
            .expect_err("gone");
        assert!(again.is_not_found(), "{again:?}");
    });
}
