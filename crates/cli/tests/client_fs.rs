//! `berth cp`, `berth diff`, `berth export` and `berth commit` against a real daemon,
//! compared with the real docker CLI against the same daemon where output is printed.
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise.

mod client_support;
mod daemon_support;

use std::path::Path;
use std::process::Command;

use client_support::*;

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
        kill_leftover_shims(self.daemon.dir.path());
    }
}

fn tar_names(bytes: &[u8], dir: &Path, file: &str) -> Vec<String> {
    let path = dir.join(file);
    std::fs::write(&path, bytes).expect("write tar");
    let out = Command::new("tar")
        .arg("-tf")
        .arg(&path)
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar -t: {}", text(&out.stderr));
    let mut names: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    names.sort();
    names
}

#[test]
fn diff_export_cp_and_commit_match_the_docker_cli() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let c = unique("bfs");
    env.ok(&[
        "run",
        "--name",
        &c,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo one > /data/sub/f && echo more >> /etc/passwd && rm /etc/group",
    ]);

    // diff: the same lines, in the same order.
    let b = env.ok(&["diff", &c]);
    let d = env.docker(&["diff", &c]);
    assert!(d.status.success(), "docker diff: {}", text(&d.stderr));
    assert_eq!(b, text(&d.stdout));
    assert!(
        b.contains("A /data/sub/f\n") && b.contains("D /etc/group\n"),
        "{b}"
    );
    // An unknown container: docker's message and exit code.
    let bo = env.berth(&["diff", "no-such-ctr"]);
    let dout = env.docker(&["diff", "no-such-ctr"]);
    assert_eq!(bo.status.code(), dout.status.code());
    assert_eq!(text(&bo.stderr), text(&dout.stderr));

    // export: the same file list as docker's export.
    let work = env.daemon.dir.path().join("cmp");
    std::fs::create_dir_all(&work).expect("work dir");
    let b = env.berth(&["export", &c]);
    assert!(b.status.success(), "berth export: {}", text(&b.stderr));
    // (docker's stdout is a pipe nobody drains while it runs: a file instead.)
    let d_tar = work.join("docker-export.tar");
    let d = env.docker(&["export", "-o", &d_tar.display().to_string(), &c]);
    assert!(d.status.success(), "docker export: {}", text(&d.stderr));
    let names = tar_names(&b.stdout, &work, "b.tar");
    let d_bytes = std::fs::read(&d_tar).expect("docker's export");
    assert_eq!(names, tar_names(&d_bytes, &work, "d.tar"));
    assert!(names.iter().any(|n| n == "data/sub/f"), "{names:?}");

    // cp out: a directory, a directory's content, a file; and `-` as a tar.
    let out = work.join("out");
    std::fs::create_dir_all(&out).expect("out");
    env.ok(&["cp", &format!("{c}:/data"), &out.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(out.join("data/sub/f")).expect("f"),
        "one\n"
    );
    env.ok(&[
        "cp",
        &format!("{c}:/data/."),
        &out.join("content").display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("content/sub/f")).expect("f"),
        "one\n"
    );
    env.ok(&[
        "cp",
        &format!("{c}:/data/sub/f"),
        &out.join("renamed").display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("renamed")).expect("renamed"),
        "one\n"
    );
    // The whole root, by both CLIs (the daemon names its entries `/…`, as dockerd does).
    for (cli, dir) in [("berth", "root-b"), ("docker", "root-d")] {
        let args = [
            "cp",
            &format!("{c}:/"),
            &out.join(dir).display().to_string(),
        ];
        let o = if cli == "berth" {
            env.berth(&args)
        } else {
            env.docker(&args)
        };
        assert!(o.status.success(), "{cli} cp /: {}", text(&o.stderr));
        assert_eq!(
            std::fs::read_to_string(out.join(dir).join("data/sub/f")).expect("f"),
            "one\n"
        );
        assert!(out.join(dir).join("bin/busybox").is_file());
    }
    let b = env.berth(&["cp", &format!("{c}:/data"), "-"]);
    let d = env.docker(&["cp", &format!("{c}:/data"), "-"]);
    assert!(b.status.success() && d.status.success());
    assert_eq!(
        tar_names(&b.stdout, &work, "cpb.tar"),
        tar_names(&d.stdout, &work, "cpd.tar")
    );
    let bo = env.berth(&["cp", &format!("{c}:/nope"), &out.display().to_string()]);
    let dout = env.docker(&["cp", &format!("{c}:/nope"), &out.display().to_string()]);
    assert_eq!(bo.status.code(), dout.status.code());
    assert!(
        text(&bo.stderr).contains(&format!("Could not find the file /nope in container {c}")),
        "{}",
        text(&bo.stderr)
    );

    // cp in: a file to a new name, a directory into a directory, a tar from stdin.
    let src = work.join("src");
    std::fs::create_dir_all(src.join("tree")).expect("src");
    std::fs::write(src.join("tree/x"), "x\n").expect("x");
    std::fs::write(src.join("single"), "single\n").expect("single");
    env.ok(&[
        "cp",
        &src.join("single").display().to_string(),
        &format!("{c}:/data/renamed-single"),
    ]);
    env.ok(&[
        "cp",
        &src.join("tree").display().to_string(),
        &format!("{c}:/data/"),
    ]);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    b.append_data(&mut h, "piped", &b"piped\n"[..])
        .expect("append");
    let piped = b.into_inner().expect("tar");
    let o = env.berth_input(&["cp", "-", &format!("{c}:/data")], Some(&piped));
    assert!(o.status.success(), "berth cp -: {}", text(&o.stderr));

    // commit with --change; the image runs the changed CMD and sees the copied files.
    let image = format!("{c}-img:v1");
    let id = env.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/data/renamed-single\", \"/data/tree/x\", \"/data/piped\"]",
        "-m",
        "from berth",
        &c,
        &image,
    ]);
    assert!(id.starts_with("sha256:") && id.ends_with('\n'), "{id}");
    let d = env.docker(&["run", "--rm", &image]);
    assert_eq!(text(&d.stdout), "single\nx\npiped\n", "{}", text(&d.stderr));
    let d = env.docker(&["inspect", "--format", "{{.Comment}}", &image]);
    assert_eq!(text(&d.stdout), "from berth\n");
    let _ = env.docker(&["rmi", "-f", &image]);
}
