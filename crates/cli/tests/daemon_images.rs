//! Images through the real daemon and the real docker CLI: import, images, run, tag,
//! image inspect, history, save | load (ids kept), rmi (untag vs delete, in-use conflicts,
//! -f), image prune, and a garbage import that leaves the daemon answering.
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use daemon_support::Daemon;

fn usable() -> bool {
    if !berth_testsupport::is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: no docker CLI");
        return false;
    }
    true
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A daemon whose containers are force-removed and shims killed at the end of the test.
struct Env {
    daemon: Daemon,
}

impl Env {
    fn new() -> Env {
        Env {
            daemon: Daemon::start(),
        }
    }

    fn dir(&self) -> &Path {
        self.daemon.dir.path()
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.daemon.docker(args)
    }

    /// `docker …` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}\ndaemon log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            tail(&self.daemon.log())
        );
        text(&out.stdout)
    }

    /// `docker …` that must fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {args:?} succeeded: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// A tar of a busybox root filesystem, in the test's directory.
    fn busybox_tar(&self) -> PathBuf {
        daemon_support::busybox_tar(self.dir())
    }

    fn import_busybox(&self) -> String {
        let tar = self.busybox_tar();
        let out = self.ok(&["import", &tar.display().to_string(), "busybox:latest"]);
        out.trim().to_owned()
    }

    /// `docker images -q --no-trunc …`, one entry per image (docker prints one per tag).
    fn ids(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["images", "-q", "--no-trunc"];
        all.extend_from_slice(args);
        let mut ids: Vec<String> = self
            .ok(&all)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        ids.dedup();
        ids
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

fn kill_leftover_shims(dir: &Path) {
    let needle = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = text(&cmdline).replace('\0', " ");
            if cmdline.contains(" shim ") && cmdline.contains(&needle) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn import_list_run_tag_inspect_history() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let id = env.import_busybox();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import printed {id:?}"
    );

    let images = env.ok(&["images"]);
    let line = images
        .lines()
        .find(|l| l.starts_with("busybox "))
        .unwrap_or_else(|| panic!("busybox not listed:\n{images}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1], "latest", "{line}");
    assert_eq!(cols[2], &id[7..19], "{line}");
    assert!(
        line.contains("MB") || line.contains("kB"),
        "no size: {line}"
    );
    assert_eq!(env.ids(&[]), vec![id.clone()]);

    assert_eq!(env.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");

    env.ok(&["tag", "busybox", "bb:1"]);
    let listed = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort();
    assert_eq!(names, ["bb:1", "busybox:latest"]);
    assert_eq!(env.ids(&["bb"]), vec![id.clone()]);

    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "bb:1"])).expect("inspect json");
    let image = &inspect[0];
    assert_eq!(image["Id"], id.as_str());
    let mut tags: Vec<String> = image["RepoTags"]
        .as_array()
        .expect("RepoTags")
        .iter()
        .map(|t| t.as_str().unwrap_or_default().to_owned())
        .collect();
    tags.sort();
    assert_eq!(tags, ["bb:1", "busybox:latest"]);
    assert_eq!(image["Os"], "linux");
    assert_eq!(image["RootFS"]["Type"], "layers");
    assert_eq!(image["Comment"], "Imported from -");

    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Comment}}",
        "bb:1",
    ]);
    assert_eq!(history.trim(), format!("{id} Imported from -"));

    let missing = env.fails(&["image", "inspect", "nosuch"]);
    assert!(missing.contains("No such image"), "{missing}");

    env.ok(&["rmi", "bb:1"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1)
    .to_string();
    let events = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    let raw = env.daemon.http(&format!(
        "GET /v1.41/events?since=0&until={until}&filters=%7B%22type%22%3A%7B%22image%22%3Atrue%7D%7D HTTP/1.1\r\nHost: x\r\n\r\n"
    ));
    let first: serde_json::Value =
        serde_json::from_str(raw.body.lines().next().unwrap_or_default()).expect("event JSON");
    assert_eq!(first["status"], "import", "{}", raw.body);
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["Type"], "image");
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(
        lines,
        [
            format!("import {id} {id}"),
            format!("tag {id} bb:1"),
            format!("untag {id} {id}"),
        ],
        "{events}"
    );
}

#[test]
fn save_load_round_trip_keeps_the_id() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let id = env.import_busybox();
    let archive = env.dir().join("saved.tar");
    env.ok(&["save", "-o", &archive.display().to_string(), "busybox"]);
    assert!(std::fs::metadata(&archive).expect("archive").len() > 100_000);

    let out = env.ok(&["rmi", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(env.ids(&[]).is_empty());

    let out = env.ok(&["load", "-i", &archive.display().to_string()]);
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    assert_eq!(env.ids(&[]), vec![id.clone()]);

    // Through a pipe, as `docker save busybox | docker load`.
    let host = format!("unix://{}", env.daemon.socket.display());
    let piped = Command::new("sh")
        .arg("-c")
        .arg("docker save busybox | docker load")
        .env("DOCKER_HOST", &host)
        .env("DOCKER_CONFIG", env.dir().join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .output()
        .expect("sh");
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(text(&piped.stdout).trim(), "Loaded image: busybox:latest");
    assert_eq!(env.ids(&[]), vec![id.clone()]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1)
    .to_string();
    let events = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    let actions: Vec<&str> = events.lines().collect();
    let want =
        ["import", "save", "untag", "delete", "load", "save", "load"].map(|a| format!("{a} {id}"));
    assert_eq!(actions, want, "{events}");

    // A malformed archive is a clean 4xx and loads nothing.
    let junk = env.dir().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all").expect("junk");
    let err = env.fails(&["load", "-i", &junk.display().to_string()]);
    assert!(err.contains("Error response from daemon"), "{err}");
    assert_eq!(env.ids(&[]).len(), 1);
    let nowhere = env.dir().join("nowhere.tar").display().to_string();
    let missing = env.fails(&["save", "-o", &nowhere, "nosuch:1"]);
    assert!(missing.contains("No such image"), "{missing}");
}

#[test]
fn rmi_untag_delete_conflicts_force_and_prune() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let id = env.import_busybox();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    env.ok(&["tag", "busybox", "bb:1"]);

    // Two names: rmi of one only untags.
    let out = env.ok(&["rmi", "bb:1"]);
    assert_eq!(out.trim(), "Untagged: bb:1");
    assert_eq!(env.ids(&[]), vec![id.clone()]);

    // Used by a stopped container: rmi is refused, -f untags and keeps the image alive.
    env.ok(&["create", "--name", "user", "busybox", "true"]);
    let err = env.fails(&["rmi", "busybox"]);
    assert!(
        err.contains("conflict: unable to remove repository reference \"busybox\"")
            && err.contains("container"),
        "{err}"
    );
    let err = env.fails(&["rmi", short]);
    assert!(err.contains("conflict: unable to delete"), "{err}");

    // Running: refused even with -f.
    env.ok(&["tag", "busybox", "bb:2"]);
    env.ok(&["rm", "user"]);
    env.ok(&["run", "-d", "--name", "runner", "bb:2", "sleep", "30"]);
    let err = env.fails(&["rmi", "-f", short]);
    assert!(
        err.contains("conflict: unable to delete") && err.contains("running"),
        "{err}"
    );
    env.ok(&["rm", "-f", "runner"]);

    // Image prune: dangling images only by default.
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(env.ids(&[]), vec![id.clone()]);
    env.ok(&["rmi", "bb:2"]);
    let out = env.ok(&["rmi", "-f", "busybox"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(env.ids(&[]).is_empty());
    let err = env.fails(&["rmi", "busybox"]);
    assert!(err.contains("No such image: busybox:latest"), "{err}");

    // An untagged (dangling) image goes with prune.
    let tar = env.busybox_tar();
    env.ok(&["import", &tar.display().to_string()]);
    assert_eq!(env.ids(&["-f", "dangling=true"]).len(), 1);
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Deleted"), "{out}");
    assert!(env.ids(&["-a"]).is_empty());
}

#[test]
fn garbage_import_is_a_clean_error() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let junk = env.dir().join("junk.tar");
    std::fs::write(&junk, vec![0x5a_u8; 4096]).expect("junk");
    let err = env.fails(&["import", &junk.display().to_string(), "junk:1"]);
    assert!(err.contains("Error response from daemon"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = env.ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(Instant::now() < deadline);
    assert_eq!(out.trim(), "1.41");
    assert!(env.ids(&["-a"]).is_empty());
    // Tests never reach out of this machine: a loopback port nobody serves.
    let err = env.fails(&["pull", "127.0.0.1:1/busybox"]);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn wire_fields_statuses_and_filters() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let tar = env.busybox_tar();
    let tar = tar.display().to_string();
    let first = env.ok(&[
        "import",
        "-c",
        "LABEL tier=one",
        "-m",
        "first one",
        &tar,
        "one:1",
    ]);
    let first = first.trim().to_owned();
    // A second import of the same tar with another message is another image, made later.
    std::thread::sleep(Duration::from_millis(1100));
    let second = env.ok(&["import", "-c", "CMD [\"sh\"]", &tar, "two:2"]);
    let second = second.trim().to_owned();
    assert_ne!(first, second);

    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "one:1"])).expect("inspect");
    assert_eq!(inspect[0]["Comment"], "first one");
    assert_eq!(inspect[0]["Config"]["Labels"]["tier"], "one");
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "two:2"])).expect("inspect");
    assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    let arm = env.ok(&["import", "--platform", "linux/arm64", &tar, "arm:1"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "arm:1"])).expect("inspect");
    assert_eq!(inspect[0]["Architecture"], "arm64");
    env.ok(&["rmi", arm.trim()]);

    let ids = |filter: &str| env.ids(&["--filter", filter]);
    assert_eq!(ids("label=tier=one"), vec![first.clone()]);
    assert_eq!(ids("reference=two"), vec![second.clone()]);
    assert_eq!(ids("before=two:2"), vec![first.clone()]);
    assert_eq!(ids("since=one:1"), vec![second.clone()]);
    assert!(ids("dangling=true").is_empty());

    // Raw API: statuses and bodies.
    let r = env.daemon.http(
        "POST /v1.41/images/one:1/tag?repo=docker.io%2Flibrary%2Fthree&tag=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = env
        .daemon
        .http("GET /v1.41/images/nosuch:9/json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["message"],
        "no such image: nosuch:9: No such image: nosuch:9"
    );
    let r = env
        .daemon
        .http("DELETE /v1.41/images/nosuch:9 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: nosuch:9");
    let r = env
        .daemon
        .http("DELETE /v1.41/images/three:3 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!([{"Untagged": "three:3"}]));
    env.ok(&["create", "--name", "holder", "two:2", "true"]);
    let r = env
        .daemon
        .http("DELETE /v1.41/images/two:2 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 409, "{}", r.body);
    let r = env.daemon.http(
        "POST /v1.41/images/create?fromImage=127.0.0.1%3A1%2Fbusybox&tag=latest HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    // A registry that cannot be reached (a loopback port nobody serves; tests never leave
    // this machine): a 500 before any stream starts.
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1:1")
    );
    env.ok(&["rm", "holder"]);
    let r = env
        .daemon
        .http("GET /v1.41/images/one:1/get HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    let r = env.daemon.http(
        "POST /v1.41/images/prune?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 400, "{}", r.body);

    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/golden");
    if !golden_dir.exists() {
        eprintln!("no golden files: field checks skipped");
        return;
    }
    let golden = |name: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(golden_dir.join(name)).expect("golden file"))
                .expect("JSON");
        if v.is_array() { v[0].clone() } else { v }
    };
    let get = |path: &str| {
        env.daemon
            .http(&format!("GET /v1.41{path} HTTP/1.1\r\nHost: x\r\n\r\n"))
            .json()
    };
    assert_eq!(
        keys(&get("/images/json")[0]),
        keys(&golden("images-list.json"))
    );
    assert_eq!(
        keys(&get("/images/one:1/json")),
        keys(&golden("image-inspect.json"))
    );
    assert_eq!(
        keys(&get("/images/one:1/history")[0]),
        keys(&golden("image-history.json"))
    );

    // `prune -a` takes every unused image, tagged or not.
    let out = env.ok(&["image", "prune", "-af"]);
    assert!(out.contains(&format!("deleted: {first}")), "{out}");
    assert!(out.contains(&format!("deleted: {second}")), "{out}");
    assert!(env.ids(&["-a"]).is_empty());
}
