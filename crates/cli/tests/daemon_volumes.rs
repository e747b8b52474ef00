//! Volumes through the real docker CLI against a berth daemon: named volumes shared between
//! containers, `:ro`, copy-up of image content, anonymous volumes from `-v /path` and from the
//! image's `VOLUME`, `volume ls/inspect/rm/prune` with filters, in-use refusal, `rm -v`,
//! hostile names, and survival across a daemon restart.

mod daemon_support;

use std::path::Path;
use std::process::{Command, Output};

use daemon_support::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A daemon with a busybox image; its drop ends the daemon (containers and volumes live in
/// its temp data-root).
struct Env {
    daemon: Daemon,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-v")
            .tempdir_in("/tmp")
            .expect("tempdir");
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("config file");
        let env = Env {
            daemon: Daemon::start_in(dir, &[]),
        };
        env.import("busybox:latest", &[], &[]);
        env
    }

    /// `docker import` of busybox plus `files` (path, content), with `--change`s.
    fn import(&self, tag: &str, files: &[(&str, &str)], changes: &[&str]) {
        let rootfs = self.daemon.dir.path().join("rootfs-import");
        let _ = std::fs::remove_dir_all(&rootfs);
        berth_testsupport::busybox_rootfs(&rootfs);
        for (path, content) in files {
            let p = rootfs.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, content).expect("write");
        }
        let tar = self.daemon.dir.path().join("import.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("tar");
        assert!(out.status.success(), "tar: {}", text(&out.stderr));
        let mut args = vec!["import".to_owned()];
        for c in changes {
            args.push("--change".into());
            args.push((*c).into());
        }
        args.push(tar.display().to_string());
        args.push(tag.into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&args);
        std::fs::remove_dir_all(&rootfs).expect("remove rootfs");
        std::fs::remove_file(&tar).expect("remove tar");
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.daemon.docker(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}{}\ndaemon log tail:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            tail(&self.daemon.log())
        );
        text(&out.stdout)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "docker {args:?} should have failed: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    fn names(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["volume", "ls", "-q"];
        all.extend_from_slice(args);
        let mut names: Vec<String> = self.ok(&all).lines().map(str::to_owned).collect();
        names.sort();
        names
    }

    fn volumes_dir(&self) -> std::path::PathBuf {
        self.daemon.data_root.join("volumes")
    }
}

#[test]
fn named_volume_is_shared_between_containers_and_ro_refuses_writes() {
    let env = Env::new();
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "shared1:/data",
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "shared1:/data",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "hello\n");
    // `--mount` names the same volume.
    let out = env.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=shared1,dst=/m",
        "busybox",
        "cat",
        "/m/f",
    ]);
    assert_eq!(out, "hello\n");
    let err = env.fails(&[
        "run",
        "--rm",
        "-v",
        "shared1:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    let err = env.fails(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=shared1,dst=/data,readonly",
        "busybox",
        "touch",
        "/data/g",
    ]);
    assert!(err.contains("Read-only file system"), "{err}");
    // The volume is a directory on the host, where the data is.
    let on_host = env.volumes_dir().join("shared1/_data/f");
    assert_eq!(
        std::fs::read_to_string(on_host).expect("on host"),
        "hello\n"
    );
    // A named volume outlives `--rm` containers (only anonymous ones go with them).
    assert_eq!(env.names(&[]), vec!["shared1".to_owned()]);
}

#[test]
fn inspect_shows_the_volume_mount() {
    let env = Env::new();
    env.ok(&[
        "create",
        "--name",
        "c1",
        "-v",
        "vi:/data:ro",
        "busybox",
        "true",
    ]);
    let raw = env.ok(&["inspect", "--format", "{{json .Mounts}}", "c1"]);
    let mounts: serde_json::Value = serde_json::from_str(raw.trim()).expect("json");
    let source = env.volumes_dir().join("vi/_data").display().to_string();
    assert_eq!(
        mounts,
        serde_json::json!([{"Type": "volume", "Name": "vi", "Source": source,
            "Destination": "/data", "Driver": "local", "Mode": "ro", "RW": false,
            "Propagation": ""}])
    );
    let raw = env.ok(&["volume", "inspect", "vi"]);
    let v: serde_json::Value = serde_json::from_str(&raw).expect("json");
    assert_eq!(v[0]["Name"], "vi");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Mountpoint"], source.as_str());
    let record = env.volumes_dir().join("vi/volume.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record).expect("record")).expect("record json");
    assert_eq!(record["Name"], "vi");
}

#[test]
fn copy_up_and_anonymous_volume_from_image_volume() {
    let env = Env::new();
    env.import(
        "withvol:1",
        &[("/data/seed.txt", "from-image\n")],
        &["VOLUME /data"],
    );
    // Anonymous volume from the image's VOLUME, populated from the image.
    env.ok(&[
        "create",
        "--name",
        "anon",
        "withvol:1",
        "cat",
        "/data/seed.txt",
    ]);
    let out = env.ok(&["start", "-a", "anon"]);
    assert_eq!(out, "from-image\n");
    let name = env
        .ok(&["inspect", "--format", "{{(index .Mounts 0).Name}}", "anon"])
        .trim()
        .to_owned();
    assert_eq!(name.len(), 64, "{name}");
    assert!(name.bytes().all(|b| b.is_ascii_hexdigit()));
    let labels = env.ok(&["volume", "inspect", "--format", "{{json .Labels}}", &name]);
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");
    // A new named volume is populated too; `nocopy` leaves it empty.
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "seeded:/data",
        "withvol:1",
        "cat",
        "/data/seed.txt",
    ]);
    assert_eq!(out, "from-image\n");
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "empty1:/data:nocopy",
        "withvol:1",
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(out, "");
    let out = env.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=empty2,dst=/data,volume-nocopy",
        "withvol:1",
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(out, "");
    // A non-empty volume is not overwritten by copy-up.
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "seeded:/data",
        "withvol:1",
        "sh",
        "-c",
        "echo changed > /data/seed.txt",
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "seeded:/data",
        "withvol:1",
        "cat",
        "/data/seed.txt",
    ]);
    assert_eq!(out, "changed\n");
    // `rm -v` removes the anonymous volume, never a named one.
    env.ok(&[
        "create",
        "--name",
        "both",
        "-v",
        "keepme:/k",
        "withvol:1",
        "true",
    ]);
    let anon2 = env
        .ok(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}{{end}}{{end}}",
            "both",
        ])
        .trim()
        .to_owned();
    assert_eq!(anon2.len(), 64, "{anon2}");
    env.ok(&["rm", "-v", "both"]);
    let names = env.names(&[]);
    assert!(!names.contains(&anon2), "{names:?}");
    assert!(names.contains(&"keepme".to_owned()), "{names:?}");
    assert!(!env.volumes_dir().join(&anon2).exists());
    // `--rm` removes the anonymous volume of `-v /path` too.
    let before = env.names(&[]);
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "busybox",
        "touch",
        "/scratch/x",
    ]);
    assert_eq!(env.names(&[]), before);
    // Without -v, rm leaves the anonymous volume (now dangling).
    env.ok(&["rm", "anon"]);
    assert!(env.names(&["--filter", "dangling=true"]).contains(&name));
}

#[test]
fn ls_filters_rm_in_use_and_prune() {
    let env = Env::new();
    env.ok(&["volume", "create", "--label", "team=a", "va"]);
    // Idempotent create of an existing name.
    let out = env.ok(&["volume", "create", "va"]);
    assert_eq!(out.trim(), "va");
    env.ok(&["volume", "create", "--label", "team=b", "vb"]);
    env.ok(&["volume", "create", "other"]);
    assert_eq!(env.names(&["--filter", "label=team=a"]), vec!["va"]);
    assert_eq!(env.names(&["--filter", "label=team"]), vec!["va", "vb"]);
    assert_eq!(env.names(&["--filter", "name=v"]), vec!["va", "vb"]);
    assert_eq!(env.names(&["--filter", "driver=local"]).len(), 3);
    env.ok(&["create", "--name", "user", "-v", "vb:/x", "busybox", "true"]);
    assert_eq!(env.names(&["--filter", "dangling=false"]), vec!["vb"]);
    assert_eq!(
        env.names(&["--filter", "dangling=true"]),
        vec!["other", "va"]
    );
    let id = env.ok(&["inspect", "--format", "{{.Id}}", "user"]);
    let err = env.fails(&["volume", "rm", "vb"]);
    assert!(
        err.contains(&format!("remove vb: volume is in use - [{}]", id.trim())),
        "{err}"
    );
    let resp = env
        .daemon
        .http("DELETE /volumes/vb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 409);
    let err = env.fails(&["volume", "rm", "nosuch"]);
    assert!(err.contains("no such volume"), "{err}");
    env.ok(&["volume", "rm", "-f", "nosuch"]);
    // API 1.41, as Docker 20.10 serves it: prune takes every unused local volume, named ones
    // too (docker CLI 28 negotiates 1.41 and sends no `all`).
    env.ok(&[
        "run",
        "--name",
        "anonuser",
        "-v",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "head -c 1000 /dev/zero > /scratch/z",
    ]);
    env.ok(&["rm", "anonuser"]);
    let before = env.names(&[]);
    assert_eq!(before.len(), 4, "{before:?}");
    let out = env.ok(&["volume", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 1kB"), "{out}");
    assert!(out.contains("\nother\n") && out.contains("\nva\n"), "{out}");
    assert_eq!(env.names(&[]), vec!["vb"], "vb is in use");
    let err = env.fails(&["volume", "prune", "-af"]);
    assert!(err.contains("\"--all\" requires API version 1.42"), "{err}");
    env.ok(&["volume", "create", "--label", "team=a", "va"]);
    env.ok(&["volume", "create", "other"]);
    let prune = |path: &str, filters: &str| {
        let q: String = filters
            .bytes()
            .map(|b| match b {
                b'{' => "%7B".to_owned(),
                b'}' => "%7D".to_owned(),
                b'[' => "%5B".to_owned(),
                b']' => "%5D".to_owned(),
                b'"' => "%22".to_owned(),
                b'=' => "%3D".to_owned(),
                other => (other as char).to_string(),
            })
            .collect();
        env.daemon.http(&format!(
            "POST {path}?filters={q} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
    };
    let resp = prune("/v1.41/volumes/prune", r#"{"label":["team=a"]}"#);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["VolumesDeleted"], serde_json::json!(["va"]));
    assert_eq!(env.names(&[]), vec!["other", "vb"]);
    // Docker 20.10 has no `all` filter and refuses it like any unknown one.
    let resp = prune("/volumes/prune", r#"{"all":["true"]}"#);
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(resp.body.contains("invalid filter 'all'"), "{}", resp.body);
    assert_eq!(env.names(&[]), vec!["other", "vb"]);
    let resp = prune("/v1.40/volumes/prune", "{}");
    assert_eq!(resp.json()["VolumesDeleted"], serde_json::json!(["other"]));
    assert_eq!(env.names(&[]), vec!["vb"], "vb is in use");
    env.ok(&["rm", "user"]);
    env.ok(&["volume", "rm", "vb"]);
    assert!(env.names(&[]).is_empty());
}

#[test]
fn hostile_names_are_refused_and_nothing_is_created() {
    let env = Env::new();
    for name in ["../x", "a/b", "..", "x"] {
        let body = format!(r#"{{"Name":{}}}"#, serde_json::json!(name));
        let req = format!(
            "POST /volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let resp = env.daemon.http(&req);
        assert_eq!(resp.status, 400, "{name}: {}", resp.body);
        assert!(
            resp.body
                .contains("includes invalid characters for a local volume name"),
            "{}",
            resp.body
        );
    }
    let err = env.fails(&["volume", "create", "../x"]);
    assert!(err.contains("invalid characters"), "{err}");
    let err = env.fails(&["run", "--rm", "-v", "a/b:/data", "busybox", "true"]);
    assert!(err.contains("invalid"), "{err}");
    let err = env.fails(&["run", "--rm", "-v", ":/data", "busybox", "true"]);
    assert!(err.contains("invalid"), "{err}");
    let left: Vec<_> = std::fs::read_dir(env.volumes_dir())
        .expect("volumes dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!Path::new(&env.daemon.data_root).join("x").exists());
}

#[test]
fn volumes_and_their_use_survive_a_daemon_restart() {
    let mut env = Env::new();
    env.ok(&["volume", "create", "--label", "k=v", "persist"]);
    env.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "persist:/d",
        "busybox",
        "sh",
        "-c",
        "echo kept > /d/f",
    ]);
    let (status, log) = env.daemon.terminate();
    assert_eq!(status, Some(0), "{}", tail(&log));
    let placeholder = tempfile::tempdir().expect("tempdir");
    let dir = std::mem::replace(&mut env.daemon.dir, placeholder);
    env.daemon = Daemon::start_in(dir, &[]);
    assert_eq!(env.names(&["--filter", "label=k=v"]), vec!["persist"]);
    let out = env.ok(&["run", "--rm", "-v", "persist:/d", "busybox", "cat", "/d/f"]);
    assert_eq!(out, "kept\n");
    // Still in use by the stopped container after the restart.
    let err = env.fails(&["volume", "rm", "persist"]);
    assert!(err.contains("volume is in use"), "{err}");
    env.ok(&["rm", "writer"]);
    env.ok(&["volume", "rm", "persist"]);
}

#[test]
fn volume_events_create_mount_unmount_destroy() {
    let env = Env::new();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    let start = now().saturating_sub(1);
    env.ok(&["run", "--name", "ev", "-v", "evvol:/d", "busybox", "true"]);
    env.ok(&["rm", "ev"]);
    env.ok(&["volume", "rm", "evvol"]);
    // A past or present `until` makes `docker events` replay and return at once.
    let until = now() + 1;
    let out = env.ok(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "create evvol local",
            "mount evvol local",
            "unmount evvol local",
            "destroy evvol local"
        ],
        "{out}"
    );
}

#[test]
fn bad_driver_options_are_refused_and_a_failed_create_leaves_no_volume() {
    let env = Env::new();
    let err = env.fails(&["volume", "create", "-o", "bogus=1", "t1"]);
    assert!(err.contains("invalid option: \"bogus\""), "{err}");
    let err = env.fails(&["volume", "create", "-o", "o=size=1m", "t1"]);
    assert!(err.contains("missing required option: \"type\""), "{err}");
    let err = env.fails(&["volume", "create", "-d", "nfsplugin", "t2"]);
    assert!(err.contains("plugin \"nfsplugin\" not found"), "{err}");
    let err = env.fails(&[
        "create",
        "-v",
        "/aaa",
        "--mount",
        "type=volume,src=t3,dst=/zzz,volume-opt=bogus=1",
        "busybox",
        "true",
    ]);
    assert!(err.contains("invalid option"), "{err}");
    let left: Vec<_> = std::fs::read_dir(env.volumes_dir())
        .expect("volumes dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());
}

fn mounted_fs_type(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let want = path.display().to_string();
    info.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&want.as_str())).then(|| fields[sep + 1].to_owned())
    })
}

#[test]
fn local_driver_options_mount_a_tmpfs_or_a_bind_at_first_use() {
    let env = Env::new();
    env.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m,mode=0777",
        "tv",
    ]);
    let opts = env.ok(&["volume", "inspect", "--format", "{{json .Options}}", "tv"]);
    assert!(opts.contains(r#""type":"tmpfs""#), "{opts}");
    let data = env.volumes_dir().join("tv/_data");
    assert_eq!(mounted_fs_type(&data), None, "mounted before use");
    env.ok(&[
        "create",
        "--name",
        "t1",
        "-v",
        "tv:/t",
        "busybox",
        "sh",
        "-c",
        "echo in-tmpfs > /t/f; df -k /t",
    ]);
    assert_eq!(mounted_fs_type(&data).as_deref(), Some("tmpfs"));
    let out = env.ok(&["start", "-a", "t1"]);
    assert!(out.contains("2048"), "size=2m not applied: {out}");
    let out = env.ok(&["run", "--rm", "-v", "tv:/t", "busybox", "cat", "/t/f"]);
    assert_eq!(out, "in-tmpfs\n");
    env.ok(&["rm", "t1"]);
    assert_eq!(
        mounted_fs_type(&data),
        None,
        "still mounted after the last user went"
    );
    env.ok(&["volume", "rm", "tv"]);

    // A bind-style volume: the data lands in the host directory, and removing the volume
    // leaves that directory's content alone.
    let host = tempfile::Builder::new()
        .prefix("berth-vbind")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let _guard = RemoveDir(host.path().to_owned());
    std::fs::write(host.path().join("keep"), "precious").expect("write");
    let device = format!("device={}", host.path().display());
    env.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "bv",
    ]);
    let out = env.ok(&[
        "run",
        "--name",
        "b1",
        "-v",
        "bv:/b",
        "busybox",
        "sh",
        "-c",
        "cat /b/keep; echo new > /b/new",
    ]);
    assert_eq!(out, "precious");
    let err = env.fails(&["volume", "rm", "bv"]);
    assert!(err.contains("volume is in use"), "{err}");
    env.ok(&["rm", "b1"]);
    env.ok(&["volume", "rm", "bv"]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("keep")).expect("keep"),
        "precious"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).expect("new"),
        "new\n"
    );
    assert!(!env.volumes_dir().join("bv").exists());
}

/// Removes a host directory on every path.
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn copy_up_through_an_escaping_symlink_stays_in_the_image() {
    let env = Env::new();
    // A host directory the image's symlink points at, were it resolved on the host.
    let host_dir = tempfile::Builder::new()
        .prefix("berth-escape")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let _guard = RemoveDir(host_dir.path().to_owned());
    std::fs::write(host_dir.path().join("host-secret"), "secret").expect("write");
    let rootfs = env.daemon.dir.path().join("rootfs-escape");
    berth_testsupport::busybox_rootfs(&rootfs);
    let _rootfs_guard = RemoveDir(rootfs.clone());
    let target = format!("../../../../../../..{}", host_dir.path().display());
    std::os::unix::fs::symlink(&target, rootfs.join("data")).expect("symlink");
    // The same path inside the image, which is what the symlink must resolve to.
    let inside = rootfs.join(host_dir.path().strip_prefix("/").expect("absolute"));
    std::fs::create_dir_all(&inside).expect("mkdir in image");
    std::fs::write(inside.join("image-file"), "image").expect("write");
    let tar = env.daemon.dir.path().join("escape.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    env.ok(&["import", &tar.display().to_string(), "escape:1"]);
    env.ok(&["run", "--rm", "-v", "esc:/data", "escape:1", "true"]);
    let data = env.volumes_dir().join("esc/_data");
    let copied: Vec<_> = std::fs::read_dir(&data)
        .expect("volume data")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(copied, vec![std::ffi::OsString::from("image-file")]);
    // And the host directory was not written through the symlink either.
    let host: Vec<_> = std::fs::read_dir(host_dir.path())
        .expect("host dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(host.len(), 1, "{host:?}");
}
