//! `docker build` through the real daemon and the real docker CLI (classic builder,
//! `DOCKER_BUILDKIT=0`): RUN in containers (output, heredocs, files later seen by `docker
//! run`), USER/WORKDIR/ENV/ENTRYPOINT/CMD in `docker inspect` and at `docker run`, build args,
//! labels, multi-stage `COPY --from`, `.dockerignore`, the cache on rebuilds, a failing RUN's
//! exit code, and hostile contexts.
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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

struct Env {
    daemon: Daemon,
}

impl Env {
    /// A daemon with `busybox:latest` imported.
    fn new() -> Env {
        let env = Env {
            daemon: Daemon::start(),
        };
        let tar = daemon_support::busybox_tar(env.dir());
        env.ok(&["import", &tar.display().to_string(), "busybox:latest"]);
        env
    }

    fn dir(&self) -> &Path {
        self.daemon.dir.path()
    }

    /// The docker CLI with the classic builder selected; bounded in time.
    fn docker(&self, args: &[&str]) -> Output {
        let mut child = Command::new("docker")
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.daemon.socket.display()),
            )
            .env("DOCKER_CONFIG", self.dir().join("docker-config"))
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the docker CLI is installed");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("docker output")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}\ndaemon log tail:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            tail(&self.daemon.log())
        );
        text(&out.stdout)
    }

    /// A context directory with `files`; a content starting with `->` is a symlink.
    fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.dir().join(name);
        for (file, content) in files {
            let p = ctx.join(file);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            let _ = std::fs::remove_file(&p);
            match content.strip_prefix("->") {
                Some(target) => std::os::unix::fs::symlink(target, &p).expect("symlink"),
                None => std::fs::write(&p, content).expect("write"),
            }
        }
        ctx
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
        v[0].clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn run_heredoc_config_and_cache_through_docker_build() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let dockerfile = r#"FROM busybox
ARG GREETING=hello
ENV APP=/app
WORKDIR $APP
RUN echo "$GREETING from run" > made.txt && echo to-stdout && echo to-stderr >&2
RUN <<EOF
set -e
echo heredoc > /app/heredoc.txt
EOF
COPY hello.txt .
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["id -u; pwd; cat made.txt heredoc.txt hello.txt; echo $APP"]
"#;
    let ctx = env.context(
        "app",
        &[("Dockerfile", dockerfile), ("hello.txt", "hello\n")],
    );
    let ctx = ctx.display().to_string();
    let out = env.ok(&[
        "build",
        "-t",
        "app:1",
        "-t",
        "app:2",
        "--build-arg",
        "GREETING=hi",
        "--label",
        "l=1",
        &ctx,
    ]);
    assert!(out.contains("Step 1/11 : FROM busybox\n"), "{out}");
    assert!(out.contains("to-stdout\n"), "{out}");
    assert!(out.contains("to-stderr"), "{out}");
    assert!(out.contains("Removing intermediate container"), "{out}");
    assert!(out.contains("Step 11/11 : LABEL \"l\"=\"1\""), "{out}");
    assert!(out.contains("Successfully tagged app:1\n"), "{out}");
    assert!(out.contains("Successfully tagged app:2\n"), "{out}");

    let image = env.inspect("app:1");
    let config = &image["Config"];
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["id -u; pwd; cat made.txt heredoc.txt hello.txt; echo $APP"])
    );
    assert_eq!(config["Labels"]["l"], "1");
    let env_list = config["Env"].as_array().expect("Env");
    assert!(env_list.iter().any(|e| e == "APP=/app"), "{env_list:?}");
    assert!(
        !env_list
            .iter()
            .any(|e| e.as_str().is_some_and(|s| s.starts_with("GREETING"))),
        "a build arg leaked into the image's Env: {env_list:?}"
    );

    let run = env.ok(&["run", "--rm", "app:1"]);
    assert_eq!(run, "1000\n/app\nhi from run\nheredoc\nhello\n/app\n");

    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "app:1",
    ]);
    assert!(
        history.contains("|1 GREETING=hi /bin/sh -c echo \"$GREETING from run\""),
        "{history}"
    );

    // Nothing changed: every step from the cache, and the same image.
    let again = env.ok(&[
        "build",
        "-t",
        "app:1",
        "--build-arg",
        "GREETING=hi",
        "--label",
        "l=1",
        &ctx,
    ]);
    assert_eq!(again.matches("Using cache").count(), 10, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(env.inspect("app:1")["Id"], image["Id"]);

    // -q prints just the id.
    let quiet = env.ok(&[
        "build",
        "-q",
        "--build-arg",
        "GREETING=hi",
        "--label",
        "l=1",
        &ctx,
    ]);
    assert_eq!(quiet.trim(), image["Id"].as_str().expect("Id"));

    // A changed COPY source rebuilds from that step on only.
    env.context("app", &[("hello.txt", "changed\n")]);
    let changed = env.ok(&["build", "-t", "app:3", "--build-arg", "GREETING=hi", &ctx]);
    assert_eq!(changed.matches("Using cache").count(), 5, "{changed}");
    let run = env.ok(&["run", "--rm", "app:3"]);
    assert!(run.contains("changed\n"), "{run}");
}

#[test]
fn multi_stage_build_args_and_dockerignore() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let dockerfile = r#"ARG BASE=busybox
FROM $BASE AS build
ARG V=1
RUN mkdir /out && echo "v=$V" > /out/version
COPY . /src
RUN ls /src | sort > /out/listing

FROM busybox
COPY --from=build /out/ /result/
CMD ["cat", "/result/version", "/result/listing"]
"#;
    let ctx = env.context(
        "ms",
        &[
            ("Dockerfile", dockerfile),
            ("keep.txt", "k"),
            ("secret.txt", "s"),
            ("debug.log", "l"),
            (".dockerignore", "secret.txt\n*.log\n"),
        ],
    );
    let ctx = ctx.display().to_string();
    env.ok(&["build", "-t", "ms:1", "--build-arg", "V=2", &ctx]);
    let run = env.ok(&["run", "--rm", "ms:1"]);
    assert_eq!(run, "v=2\nDockerfile\nkeep.txt\n");
    // --target stops at the named stage.
    env.ok(&[
        "build",
        "-t",
        "ms:build",
        "--target",
        "build",
        "--build-arg",
        "V=2",
        &ctx,
    ]);
    let run = env.ok(&["run", "--rm", "ms:build", "cat", "/out/version"]);
    assert_eq!(run, "v=2\n");
}

#[test]
fn failures_exit_with_docker_messages_and_tag_nothing() {
    if !usable() {
        return;
    }
    let env = Env::new();
    // (name, context files, expected message, expected exit code)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, i32);
    let cases: &[Case] = &[
        (
            "run",
            &[("Dockerfile", "FROM busybox\nRUN echo before && exit 3\n")],
            "The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3",
            3,
        ),
        (
            "missing",
            &[("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")],
            "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist",
            1,
        ),
        (
            "traversal",
            &[("Dockerfile", "FROM busybox\nCOPY ../../etc/passwd /\n")],
            "COPY failed: forbidden path outside the build context: ../../etc/passwd",
            1,
        ),
        (
            "symlink",
            &[
                ("Dockerfile", "FROM busybox\nCOPY link /\n"),
                ("link", "->/etc/shadow"),
            ],
            "COPY failed: forbidden path outside the build context: link",
            1,
        ),
        (
            "unknown",
            &[("Dockerfile", "FROM busybox\nFOO bar\n")],
            "dockerfile parse error on line 2: unknown instruction: FOO",
            1,
        ),
    ];
    for (name, files, message, code) in cases {
        let ctx = env.context(name, files).display().to_string();
        let tag = format!("fail-{name}:1");
        let out = env.docker(&["build", "-t", &tag, &ctx]);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{name}: {stderr}\n{}",
            text(&out.stdout)
        );
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(
            !env.docker(&["image", "inspect", &tag]).status.success(),
            "{name}: a failed build tagged an image"
        );
    }
}

#[test]
fn onbuild_healthcheck_and_clean_run_layers() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let base = "FROM busybox\nHEALTHCHECK --interval=30s --retries=2 CMD [\"true\"]\nONBUILD RUN echo triggered > /trigger.txt\nONBUILD COPY data.txt /data.txt\n";
    let ctx = env.context("base", &[("Dockerfile", base)]);
    env.ok(&["build", "-t", "base:1", &ctx.display().to_string()]);
    let config = env.inspect("base:1")["Config"].clone();
    assert_eq!(
        config["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "true"], "Interval": 30_000_000_000u64, "Retries": 2})
    );
    assert_eq!(
        config["OnBuild"],
        serde_json::json!([
            "RUN echo triggered > /trigger.txt",
            "COPY data.txt /data.txt"
        ])
    );

    let child = "FROM base:1\nRUN echo hi > /x\n";
    let ctx = env.context("child", &[("Dockerfile", child), ("data.txt", "data\n")]);
    let out = env.ok(&["build", "-t", "child:1", &ctx.display().to_string()]);
    assert!(out.contains("# Executing 2 build triggers"), "{out}");
    let run = env.ok(&[
        "run",
        "--rm",
        "child:1",
        "cat",
        "/trigger.txt",
        "/data.txt",
        "/x",
    ]);
    assert_eq!(run, "triggered\ndata\nhi\n");
    // Triggers are not inherited; the health check is.
    let config = env.inspect("child:1")["Config"].clone();
    assert!(
        config["OnBuild"].is_null() || config["OnBuild"] == serde_json::json!([]),
        "{config}"
    );
    assert_eq!(
        config["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );

    // The last RUN's layer holds its file only: not the runtime's mount points
    // (/etc/hosts, /etc/hostname, /etc/resolv.conf).
    let saved = env.dir().join("child.tar");
    env.ok(&["save", "-o", &saved.display().to_string(), "child:1"]);
    let unpacked = env.dir().join("child-saved");
    std::fs::create_dir_all(&unpacked).expect("mkdir");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&unpacked)
        .arg("-xf")
        .arg(&saved)
        .output()
        .expect("tar");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).expect("manifest"))
            .expect("json");
    let layers = manifest[0]["Layers"].as_array().expect("layers");
    let last = layers.last().and_then(|l| l.as_str()).expect("a layer");
    let list = Command::new("tar")
        .arg("-tf")
        .arg(unpacked.join(last))
        .output()
        .expect("tar");
    assert_eq!(text(&list.stdout), "x\n");
}

#[test]
fn run_mounts_and_source_date_epoch() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let dockerfile = r#"FROM busybox AS tools
RUN mkdir /tools && echo tool-data > /tools/t.txt
FROM busybox
RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /count
RUN --mount=type=bind,source=input.txt,target=/in.txt cat /in.txt > /copied
RUN --mount=type=bind,from=tools,source=/tools,target=/mnt/t cat /mnt/t/t.txt > /from-stage
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && ls /scratch > /tmpfs-listing
"#;
    let ctx = env.context(
        "mounts",
        &[("Dockerfile", dockerfile), ("input.txt", "input\n")],
    );
    let ctx = ctx.display().to_string();
    env.ok(&["build", "--no-cache", "-t", "mounts:1", &ctx]);
    // The cache mount outlives the build: the second (uncached) build sees the first's file.
    let out = env.ok(&[
        "build",
        "--no-cache",
        "-t",
        "mounts:2",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        &ctx,
    ]);
    assert!(out.contains("Successfully tagged mounts:2"), "{out}");
    let run = env.ok(&[
        "run",
        "--rm",
        "mounts:2",
        "cat",
        "/count",
        "/copied",
        "/from-stage",
        "/tmpfs-listing",
    ]);
    assert_eq!(run, "2\ninput\ntool-data\nx\n");
    // Mount targets are not part of the image.
    let ls = env.ok(&["run", "--rm", "mounts:2", "ls", "/"]);
    for absent in ["cache", "in.txt", "scratch", "mnt"] {
        assert!(!ls.contains(absent), "{absent} left in the image:\n{ls}");
    }
    let image = env.inspect("mounts:2");
    assert_eq!(image["Created"], "2023-11-14T22:13:20Z");
}

#[test]
fn independent_stages_run_at_the_same_time() {
    if !usable() {
        return;
    }
    let env = Env::new();
    // Each stage waits (bounded) for the other's mark in a shared cache mount: a sequential
    // build would fail the first stage after 10 s; only concurrent stages both succeed.
    let wait_for = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=rendezvous,target=/sync touch /sync/{me} && i=0 && while [ ! -e /sync/{other} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done && test -e /sync/{other} && echo {me} > /{me}.txt"
        )
    };
    let dockerfile = format!(
        "FROM busybox AS a\n{}\nFROM busybox AS b\n{}\nFROM busybox\nCOPY --from=a /a.txt /\nCOPY --from=b /b.txt /\nCMD [\"cat\", \"/a.txt\", \"/b.txt\"]\n",
        wait_for("a", "b"),
        wait_for("b", "a")
    );
    let ctx = env.context("parallel", &[("Dockerfile", &dockerfile)]);
    let out = env.ok(&["build", "-t", "parallel:1", &ctx.display().to_string()]);
    let steps: Vec<usize> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Step "))
        .filter_map(|l| l.split('/').next()?.parse().ok())
        .collect();
    assert_eq!(steps, (1..=8).collect::<Vec<_>>(), "{out}");
    assert_eq!(env.ok(&["run", "--rm", "parallel:1"]), "a\nb\n");
}

#[test]
fn dockerfile_outside_the_context_stdin_and_iidfile() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let ctx = env.context("outside-ctx", &[("a.txt", "from the context\n")]);
    let df = env.context(
        "outside-df",
        &[(
            "Custom.df",
            "FROM busybox\nCOPY a.txt /\nCMD [\"cat\", \"/a.txt\"]\n",
        )],
    );
    let iid = env.dir().join("iid");
    env.ok(&[
        "build",
        "-f",
        &df.join("Custom.df").display().to_string(),
        "--iidfile",
        &iid.display().to_string(),
        "-t",
        "outside:1",
        &ctx.display().to_string(),
    ]);
    assert_eq!(env.ok(&["run", "--rm", "outside:1"]), "from the context\n");
    let id = std::fs::read_to_string(&iid).expect("iidfile");
    assert_eq!(id, env.inspect("outside:1")["Id"].as_str().expect("Id"));

    // `docker build - < Dockerfile`: no context at all.
    let mut child = Command::new("docker")
        .args(["build", "-t", "stdin:1", "-"])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.daemon.socket.display()),
        )
        .env("DOCKER_CONFIG", env.dir().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"FROM busybox\nRUN echo from-stdin > /s.txt\n")
            .expect("write");
    }
    let out = child.wait_with_output().expect("docker build -");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        env.ok(&["run", "--rm", "stdin:1", "cat", "/s.txt"]),
        "from-stdin\n"
    );
}
