//! `berth build` against a real daemon: the context sent with `.dockerignore` applied on the
//! client (the Dockerfile and `.dockerignore` always go), tags, build args, labels, target,
//! `-q`, `--iidfile`, `--no-cache`, a Dockerfile outside the context, `-` from stdin, and a
//! failing RUN's exit code — the same results as the docker CLI against the same daemon.
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise.

mod client_support;
mod daemon_support;

use std::path::{Path, PathBuf};

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

fn context(env: &Env, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let ctx = env.daemon.dir.path().join(name);
    for (file, content) in files {
        let p = ctx.join(file);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
    }
    ctx
}

/// The docker CLI with the classic builder (no buildx), bounded in time.
fn docker_build(env: &Env, args: &[&str]) -> std::process::Output {
    let child = std::process::Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", env.host())
        .env("DOCKER_CONFIG", env.daemon.dir.path().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("docker");
    finish(child, args)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn berth_build_sends_the_context_and_reports_steps() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let ctx = context(
        &env,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox AS base\nARG GREETING=hi\nCOPY . /ctx/\nRUN echo \"$GREETING\" > /greeting\n\
                 FROM base AS extra\nRUN touch /extra\n",
            ),
            (
                ".dockerignore",
                "secret.txt\nignored/\nDockerfile\n.dockerignore\n",
            ),
            ("keep.txt", "kept\n"),
            ("secret.txt", "do not send\n"),
            ("ignored/a.txt", "no\n"),
            ("sub/b.txt", "b\n"),
        ],
    );
    let iid = env.daemon.dir.path().join("iid");
    let out = env.ok(&[
        "build",
        "-t",
        "cb:1",
        "--build-arg",
        "GREETING=hello",
        "--label",
        "team=berth",
        "--target",
        "base",
        "--iidfile",
        &p(&iid),
        &p(&ctx),
    ]);
    assert!(
        out.starts_with("Sending build context to Docker daemon  "),
        "{out}"
    );
    assert!(out.contains("Step 1/5 : FROM busybox AS base\n"), "{out}");
    assert!(out.contains("Successfully tagged cb:1\n"), "{out}");
    // `--target base`: the later stage is skipped.
    assert!(!out.contains("touch /extra"), "{out}");
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    assert!(id.starts_with("sha256:"), "{id}");
    assert!(
        out.contains(&format!("Successfully built {}\n", &id[7..19])),
        "{out}"
    );

    let files = env.ok(&[
        "run",
        "--rm",
        "cb:1",
        "sh",
        "-c",
        "cd /ctx && find . | sort",
    ]);
    assert_eq!(
        files, ".\n./keep.txt\n./sub\n./sub/b.txt\n",
        "ignored files were sent"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "cb:1", "cat", "/greeting"]),
        "hello\n"
    );
    let label = env.ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"team\"}}",
        "cb:1",
    ]);
    assert_eq!(label, "berth\n");

    // A rebuild hits the cache; `-q` prints the id alone; `--no-cache` runs the steps again.
    let again = env.ok(&[
        "build",
        "-t",
        "cb:1",
        "--build-arg",
        "GREETING=hello",
        "--label",
        "team=berth",
        "--target",
        "base",
        &p(&ctx),
    ]);
    assert!(again.contains(" ---> Using cache\n"), "{again}");
    let quiet = env.ok(&[
        "build",
        "-q",
        "--build-arg",
        "GREETING=hello",
        "--label",
        "team=berth",
        "--target",
        "base",
        &p(&ctx),
    ]);
    assert_eq!(quiet, format!("{id}\n"));
    // The docker CLI builds the same context into the same image (same cache keys).
    let docker = docker_build(
        &env,
        &[
            "build",
            "-q",
            "--build-arg",
            "GREETING=hello",
            "--label",
            "team=berth",
            "--target",
            "base",
            &p(&ctx),
        ],
    );
    assert!(docker.status.success(), "{}", text(&docker.stderr));
    assert_eq!(text(&docker.stdout), format!("{id}\n"));
    let fresh = env.ok(&["build", "--no-cache", "--target", "base", &p(&ctx)]);
    assert!(!fresh.contains("Using cache"), "{fresh}");
}

#[test]
fn berth_build_failures_dockerfile_elsewhere_and_stdin() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let ctx = context(
        &env,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo about to fail; exit 3\n",
        )],
    );
    let out = env.berth(&["build", &p(&ctx)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("about to fail"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        text(&out.stderr),
        "The command '/bin/sh -c echo about to fail; exit 3' returned a non-zero code: 3\n"
    );
    let docker = docker_build(&env, &["build", &p(&ctx)]);
    assert_eq!(docker.status.code(), Some(3));

    let missing = env.berth(&["build", &p(&ctx.join("nope"))]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("unable to prepare context"),
        "{}",
        text(&missing.stderr)
    );
    let unknown = env.berth(&["build", "--no-such-flag", &p(&ctx)]);
    assert_eq!(
        unknown.status.code(),
        Some(125),
        "{}",
        text(&unknown.stderr)
    );

    // `-f` outside the context: sent under a generated name.
    let data = context(&env, "data", &[("a.txt", "from the context\n")]);
    let df = context(
        &env,
        "elsewhere",
        &[(
            "Build.df",
            "FROM busybox\nCOPY a.txt /\nCMD [\"cat\", \"/a.txt\"]\n",
        )],
    );
    env.ok(&[
        "build",
        "-f",
        &p(&df.join("Build.df")),
        "-t",
        "elsewhere:1",
        &p(&data),
    ]);
    assert_eq!(
        env.ok(&["run", "--rm", "elsewhere:1"]),
        "from the context\n"
    );

    // `-`: the Dockerfile on stdin, no context.
    let out = env.berth_input(
        &["build", "-t", "stdin:1", "-"],
        Some(b"FROM busybox\nRUN echo from-stdin > /s.txt\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        env.ok(&["run", "--rm", "stdin:1", "cat", "/s.txt"]),
        "from-stdin\n"
    );
}
