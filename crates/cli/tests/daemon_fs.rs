//! The container file-system commands through the real docker CLI against a berth daemon:
//! `docker cp` in and out of running and stopped containers (files, directories, `-` tar
//! streams, volumes), containment of container symlinks and hostile archives, `docker
//! diff`, `docker commit` (with `--change`) and `docker export`.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_support::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A daemon with a busybox image, and a scratch directory on the host.
struct Env {
    daemon: Daemon,
    work: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-fs")
            .tempdir_in("/tmp")
            .expect("tempdir");
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("config file");
        let daemon = Daemon::start_in(dir, &[]);
        let work = daemon.dir.path().join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        let env = Env { daemon, work };
        env.import_busybox();
        env
    }

    fn import_busybox(&self) {
        let tar = daemon_support::busybox_tar(self.daemon.dir.path());
        self.ok(&["import", &tar.display().to_string(), "busybox:latest"]);
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

    /// The docker CLI with `stdin` as its standard input (for `cp -`), bounded in time.
    fn docker_stdin(&self, args: &[&str], stdin: &Path) -> Output {
        let mut child = Command::new("docker")
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.daemon.socket.display()),
            )
            .env(
                "DOCKER_CONFIG",
                self.daemon.dir.path().join("docker-config"),
            )
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(std::fs::File::open(stdin).expect("stdin file"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        child.wait_with_output().expect("docker output")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }

    fn write(&self, rel: &str, content: &str) -> String {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p.display().to_string()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel))
            .unwrap_or_else(|e| panic!("read {}: {e}", self.path(rel).display()))
    }

    /// Polls `docker exec <c> test -e <path>` until it succeeds (bounded).
    fn wait_for(&self, container: &str, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .docker(&["exec", container, "test", "-e", path])
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{path} never appeared in {container}");
    }
}

/// A unique name for host paths the tests must not create.
fn unique(tag: &str) -> String {
    format!(
        "berth-fs-{tag}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
    )
}

/// Removes a host path on drop (a test that failed must not leave it behind).
struct HostPath(PathBuf);

impl Drop for HostPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tar_names(tar: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(tar)
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar -t: {}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn cp_files_and_directories_in_and_out_of_running_and_stopped_containers() {
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "fs-run", "busybox", "sleep", "300"]);
    let f = env.write("in/hello.txt", "hello from the host\n");
    env.write("in/dir/a.txt", "a\n");
    env.write("in/dir/sub/b.txt", "b\n");
    let dir = env.path("in/dir").display().to_string();

    // Into a running container: a file to a path, a directory into a directory.
    env.ok(&["cp", &f, "fs-run:/tmp/hello.txt"]);
    assert_eq!(
        env.ok(&["exec", "fs-run", "cat", "/tmp/hello.txt"]),
        "hello from the host\n"
    );
    env.ok(&["cp", &dir, "fs-run:/tmp/"]);
    assert_eq!(
        env.ok(&["exec", "fs-run", "cat", "/tmp/dir/sub/b.txt"]),
        "b\n"
    );
    // Files copied in without -a belong to root.
    assert_eq!(
        env.ok(&["exec", "fs-run", "stat", "-c", "%u:%g", "/tmp/dir/a.txt"]),
        "0:0\n"
    );

    // -a keeps the archive's owners; without it they are root's.
    let owned = env.write("owned.txt", "owned\n");
    std::os::unix::fs::chown(&owned, Some(1234), Some(4321)).expect("chown");
    env.ok(&["cp", "-a", &owned, "fs-run:/tmp/owned-a.txt"]);
    env.ok(&["cp", &owned, "fs-run:/tmp/owned.txt"]);
    assert_eq!(
        env.ok(&[
            "exec",
            "fs-run",
            "stat",
            "-c",
            "%u:%g",
            "/tmp/owned-a.txt",
            "/tmp/owned.txt"
        ]),
        "1234:4321\n0:0\n"
    );
    // A file is not a directory to copy into.
    let err = env.fails(&["cp", &f, "fs-run:/etc/passwd/x"]);
    assert!(err.contains("not a directory"), "{err}");

    // Out of it: a file, a directory, a directory's content (`/.`).
    let out = env.path("out").display().to_string();
    std::fs::create_dir_all(&out).expect("out dir");
    env.ok(&["cp", "fs-run:/tmp/hello.txt", &format!("{out}/copy.txt")]);
    assert_eq!(env.read("out/copy.txt"), "hello from the host\n");
    env.ok(&["cp", "fs-run:/tmp/dir", &out]);
    assert_eq!(env.read("out/dir/sub/b.txt"), "b\n");
    env.ok(&["cp", "fs-run:/tmp/dir/.", &format!("{out}/content")]);
    assert_eq!(env.read("out/content/a.txt"), "a\n");
    assert_eq!(env.read("out/content/sub/b.txt"), "b\n");

    // `-`: a tar on stdout, and a tar from stdin.
    let tar = env.path("etc.tar");
    let o = env.docker(&["cp", "fs-run:/etc/passwd", "-"]);
    assert!(o.status.success(), "cp to stdout: {}", text(&o.stderr));
    std::fs::write(&tar, &o.stdout).expect("write tar");
    assert_eq!(tar_names(&tar), vec!["passwd"]);
    // A directory: its entries under its name (small: the helper reads stdout at exit).
    let o = env.docker(&["cp", "fs-run:/etc", "-"]);
    assert!(o.status.success(), "cp /etc to stdout: {}", text(&o.stderr));
    std::fs::write(&tar, &o.stdout).expect("write tar");
    let names = tar_names(&tar);
    assert!(names.iter().any(|n| n == "etc/"), "{names:?}");
    assert!(names.iter().any(|n| n == "etc/passwd"), "{names:?}");
    let src = env.path("streamed");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("streamed.txt"), "via stdin\n").expect("write");
    let stdin_tar = env.path("stdin.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&stdin_tar)
        .arg("streamed.txt")
        .status()
        .expect("tar");
    assert!(st.success());
    let o = env.docker_stdin(&["cp", "-", "fs-run:/tmp"], &stdin_tar);
    assert!(o.status.success(), "cp from stdin: {}", text(&o.stderr));
    assert_eq!(
        env.ok(&["exec", "fs-run", "cat", "/tmp/streamed.txt"]),
        "via stdin\n"
    );

    // Docker's error for a path that is not there.
    let err = env.fails(&["cp", "fs-run:/no/such/file", &out]);
    assert!(
        err.contains("Could not find the file /no/such/file in container fs-run"),
        "{err}"
    );

    // A stopped container: its root is read and written all the same, and a restart sees
    // what was copied in.
    env.ok(&["stop", "-t", "1", "fs-run"]);
    env.ok(&["cp", "fs-run:/tmp/dir/a.txt", &format!("{out}/stopped.txt")]);
    assert_eq!(env.read("out/stopped.txt"), "a\n");
    env.ok(&["cp", &f, "fs-run:/tmp/while-stopped.txt"]);
    env.ok(&["start", "fs-run"]);
    assert_eq!(
        env.ok(&["exec", "fs-run", "cat", "/tmp/while-stopped.txt"]),
        "hello from the host\n"
    );

    // A container never started.
    env.ok(&[
        "create",
        "--name",
        "fs-new",
        "busybox",
        "cat",
        "/copied.txt",
    ]);
    env.ok(&["cp", &f, "fs-new:/copied.txt"]);
    assert_eq!(env.ok(&["start", "-a", "fs-new"]), "hello from the host\n");
}

#[test]
fn cp_reaches_volumes_of_running_and_stopped_containers() {
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "fs-vol",
        "-v",
        "fsvol:/data",
        "busybox",
        "sleep",
        "300",
    ]);
    let f = env.write("v.txt", "into the volume\n");
    env.ok(&["cp", &f, "fs-vol:/data/v.txt"]);
    assert_eq!(
        env.ok(&["exec", "fs-vol", "cat", "/data/v.txt"]),
        "into the volume\n"
    );
    // The file is in the volume, not in the container's own layer.
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "-v",
            "fsvol:/data",
            "busybox",
            "cat",
            "/data/v.txt"
        ]),
        "into the volume\n"
    );
    env.ok(&["stop", "-t", "1", "fs-vol"]);
    // As after a reboot: the stopped container's root is not mounted; a copy mounts it.
    let id = env.ok(&["inspect", "--format", "{{.Id}}", "fs-vol"]);
    let rootfs = env
        .daemon
        .data_root
        .join("containers")
        .join(id.trim())
        .join("rootfs");
    let st = Command::new("umount")
        .arg(&rootfs)
        .status()
        .expect("umount");
    assert!(st.success(), "umount {}", rootfs.display());
    let etc = env.path("etc-passwd").display().to_string();
    env.ok(&["cp", "fs-vol:/etc/passwd", &etc]);
    assert!(env.read("etc-passwd").starts_with("root:"));
    let out = env.path("from-volume.txt").display().to_string();
    env.ok(&["cp", "fs-vol:/data/v.txt", &out]);
    assert_eq!(env.read("from-volume.txt"), "into the volume\n");
    let diff = env.ok(&["diff", "fs-vol"]);
    assert!(!diff.contains("/data/v.txt"), "{diff}");
}

#[test]
fn cp_reaches_bind_mounts_and_respects_read_only_ones() {
    let env = Env::new();
    let bind = env.path("bind");
    std::fs::create_dir_all(&bind).expect("bind dir");
    std::fs::write(bind.join("from-host.txt"), "host side\n").expect("write");
    let ro = env.path("ro");
    std::fs::create_dir_all(&ro).expect("ro dir");
    let spec = format!("{}:/mnt/bind", bind.display());
    let ro_spec = format!("{}:/mnt/ro:ro", ro.display());
    env.ok(&[
        "run", "-d", "--name", "fs-bind", "-v", &spec, "-v", &ro_spec, "busybox", "sleep", "300",
    ]);
    // Out of and into the bind mount: the host directory is what the container sees.
    let out = env.path("got.txt").display().to_string();
    env.ok(&["cp", "fs-bind:/mnt/bind/from-host.txt", &out]);
    assert_eq!(env.read("got.txt"), "host side\n");
    let f = env.write("to-bind.txt", "container side\n");
    env.ok(&["cp", &f, "fs-bind:/mnt/bind/to-bind.txt"]);
    assert_eq!(
        std::fs::read_to_string(bind.join("to-bind.txt")).expect("on the host"),
        "container side\n"
    );
    // A read-only mount stays read-only for cp too.
    env.fails(&["cp", &f, "fs-bind:/mnt/ro/x.txt"]);
    assert!(!ro.join("x.txt").exists());
    // Stopped: the binds are still where the container sees them.
    env.ok(&["stop", "-t", "1", "fs-bind"]);
    env.ok(&["cp", "fs-bind:/mnt/bind/to-bind.txt", &out]);
    assert_eq!(env.read("got.txt"), "container side\n");
}

#[test]
fn cp_never_leaves_the_container_through_its_symlinks() {
    let env = Env::new();
    let marker = unique("marker");
    let host_marker = HostPath(PathBuf::from("/tmp").join(&marker));
    std::fs::write(&host_marker.0, "HOST-SECRET\n").expect("host marker");
    let script = "ln -s / /escape && ln -s ../../../.. /up && ln -s /etc /etclink \
                  && echo container-shadow > /etc/shadow";
    // One stopped container, one running (whose links exist before the copies start).
    env.ok(&["run", "--name", "fs-esc", "busybox", "sh", "-c", script]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "fs-esc-run",
        "busybox",
        "sh",
        "-c",
        &format!("{script} && sleep 300"),
    ]);
    env.wait_for("fs-esc-run", "/etc/shadow");
    let host_shadow = std::fs::read("/etc/shadow").unwrap_or_default();
    for c in ["fs-esc", "fs-esc-run"] {
        for link in ["escape", "up"] {
            // Reading through the link reads the container's file, never the host's.
            let out = env
                .path(&format!("{c}-{link}-shadow"))
                .display()
                .to_string();
            env.ok(&["cp", &format!("{c}:/{link}/etc/shadow"), &out]);
            let got = std::fs::read(&out).expect("copied shadow");
            assert_eq!(got, b"container-shadow\n", "{c}:/{link}/etc/shadow");
            assert_ne!(got, host_shadow);
            let err = env.fails(&["cp", &format!("{c}:/{link}/tmp/{marker}"), &out]);
            assert!(err.contains("Could not find the file"), "{err}");

            // Writing through the link writes into the container, never on the host.
            let name = unique("written");
            let host_target = HostPath(PathBuf::from("/tmp").join(&name));
            let f = env.write(&format!("{name}.src"), "from cp\n");
            env.ok(&["cp", &f, &format!("{c}:/{link}/tmp/{name}")]);
            assert!(
                !host_target.0.exists(),
                "docker cp wrote {} on the host",
                host_target.0.display()
            );
            let back = env.path(&format!("{name}.back")).display().to_string();
            env.ok(&["cp", &format!("{c}:/tmp/{name}"), &back]);
            assert_eq!(std::fs::read_to_string(&back).expect("back"), "from cp\n");
            // Into a directory through the link.
            env.ok(&["cp", &f, &format!("{c}:/{link}/tmp/")]);
            assert!(!PathBuf::from("/tmp").join(format!("{name}.src")).exists());
        }
        // A link to a directory is followed inside the container, as Docker does.
        let out = env.path(&format!("{c}-etclink")).display().to_string();
        env.ok(&["cp", "-L", &format!("{c}:/etclink"), &out]);
        assert_eq!(
            std::fs::read_to_string(format!("{out}/shadow")).expect("shadow"),
            "container-shadow\n"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&host_marker.0).expect("marker"),
        "HOST-SECRET\n"
    );
}

/// A tar whose entries are written byte for byte (the tar crate refuses `..` names).
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

#[test]
fn hostile_archives_through_put_stay_inside_the_container() {
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "fs-tar", "busybox", "sleep", "300"]);
    let dotdot = unique("dotdot");
    let host_dotdot = HostPath(PathBuf::from("/tmp").join(&dotdot));
    let via_link = unique("vialink");
    let host_via_link = HostPath(PathBuf::from("/tmp").join(&via_link));
    let abs = unique("abs");
    let host_abs = HostPath(PathBuf::from("/tmp").join(&abs));

    // `../` entries are refused.
    let evil = raw_tar(&[(
        &format!("../../../../../../tmp/{dotdot}"),
        tar::EntryType::Regular,
        "",
        b"evil\n",
    )]);
    let p = env.path("dotdot.tar");
    std::fs::write(&p, evil).expect("write");
    let o = env.docker_stdin(&["cp", "-", "fs-tar:/tmp"], &p);
    assert!(!o.status.success(), "a ../ entry was accepted");
    assert!(
        !host_dotdot.0.exists(),
        "a ../ entry was written on the host"
    );

    // An absolute entry is refused too.
    let evil = raw_tar(&[(
        &format!("/tmp/{abs}"),
        tar::EntryType::Regular,
        "",
        b"evil\n",
    )]);
    let p = env.path("abs.tar");
    std::fs::write(&p, evil).expect("write");
    let o = env.docker_stdin(&["cp", "-", "fs-tar:/tmp"], &p);
    assert!(!o.status.success(), "an absolute entry was accepted");
    assert!(!host_abs.0.exists());

    // A symlink to `/`, then a file through it: never on the host.
    let evil = raw_tar(&[
        ("link", tar::EntryType::Symlink, "/", b""),
        (
            &format!("link/tmp/{via_link}"),
            tar::EntryType::Regular,
            "",
            b"evil\n",
        ),
    ]);
    let p = env.path("link.tar");
    std::fs::write(&p, evil).expect("write");
    let _ = env.docker_stdin(&["cp", "-", "fs-tar:/tmp"], &p);
    assert!(
        !host_via_link.0.exists(),
        "a file behind an archive symlink landed on the host"
    );
    // The daemon is still fine.
    assert_eq!(env.ok(&["exec", "fs-tar", "echo", "ok"]), "ok\n");
}

#[test]
fn diff_commit_and_export_see_the_containers_changes() {
    let env = Env::new();
    env.ok(&[
        "run",
        "--name",
        "fs-ch",
        "busybox",
        "sh",
        "-c",
        "mkdir /newdir && echo x > /newdir/f && echo more >> /etc/passwd && rm /etc/group",
    ]);
    let diff = env.ok(&["diff", "fs-ch"]);
    assert_eq!(
        diff, "C /etc\nD /etc/group\nC /etc/passwd\nA /newdir\nA /newdir/f\n",
        "docker diff"
    );

    let id = env.ok(&[
        "commit",
        "--change",
        r#"CMD ["cat", "/newdir/f"]"#,
        "--change",
        "ENV COMMITTED=yes",
        "--change",
        "ENV ALSO=$COMMITTED-too",
        "--change",
        "WORKDIR /newdir",
        "-m",
        "the message",
        "-a",
        "someone",
        "fs-ch",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(env.ok(&["run", "--rm", "committed:v1"]), "x\n");
    assert_eq!(
        env.ok(&["run", "--rm", "committed:v1", "sh", "-c", "echo $COMMITTED"]),
        "yes\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "committed:v1", "sh", "-c", "echo $ALSO; pwd"]),
        "yes-too\n/newdir\n"
    );
    env.fails(&["run", "--rm", "committed:v1", "cat", "/etc/group"]);
    let err = env.fails(&["commit", "--change", "RUN rm -rf /", "fs-ch", "never:1"]);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    assert_eq!(
        env.ok(&[
            "inspect",
            "--format",
            "{{.Comment}}|{{.Author}}",
            "committed:v1"
        ]),
        "the message|someone\n"
    );
    // The runtime's mount points are not part of the image.
    let history = env.ok(&["history", "--no-trunc", "committed:v1"]);
    assert!(history.contains("the message"), "{history}");
    env.ok(&["run", "--name", "fs-ch2", "committed:v1"]);
    assert_eq!(env.ok(&["diff", "fs-ch2"]), "");

    // Export: the merged root file system.
    let tar = env.path("export.tar").display().to_string();
    env.ok(&["export", "-o", &tar, "fs-ch"]);
    let names = tar_names(Path::new(&tar));
    assert!(names.iter().any(|n| n == "newdir/f"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(!names.iter().any(|n| n == "etc/group"), "{names:?}");
}

#[test]
fn commit_pauses_a_running_container_and_leaves_it_running() {
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "fs-live",
        "busybox",
        "sh",
        "-c",
        "echo live > /live.txt && sleep 300",
    ]);
    env.wait_for("fs-live", "/live.txt");
    env.ok(&["commit", "fs-live", "live:1"]);
    assert_eq!(
        env.ok(&["inspect", "--format", "{{.State.Status}}", "fs-live"]),
        "running\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "live:1", "cat", "/live.txt"]),
        "live\n"
    );
    let err = env.fails(&["commit", "no-such-container"]);
    assert!(
        err.contains("No such container: no-such-container"),
        "{err}"
    );
}
