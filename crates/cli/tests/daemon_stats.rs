//! `docker stats`, `docker update` through the real docker CLI against a berth daemon:
//! memory and CPU of real hogs, streaming, stopped containers, limits applied live to the
//! cgroup and kept across a restart, hostile values.

mod daemon_support;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use daemon_support::Daemon;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A daemon with a busybox image; its drop removes the containers and ends the daemon.
struct Env {
    daemon: Daemon,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            daemon: Daemon::start(),
        };
        let tar = daemon_support::busybox_tar(env.daemon.dir.path());
        env.ok(&["import", &tar.display().to_string(), "busybox:latest"]);
        std::fs::remove_file(&tar).expect("remove tar");
        env
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.daemon.docker(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}{}\ndaemon log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.daemon.log()
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

    fn get(&self, path: &str) -> daemon_support::Response {
        self.daemon
            .http(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    fn post_json(&self, path: &str, body: &str) -> daemon_support::Response {
        self.daemon.http(&format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// A v1 controller's (or v2's) file of the cgroup `pid` is in.
    fn cgroup_file(&self, name: &str, controller: &str, file: &str) -> String {
        let pid = self.ok(&["inspect", "--format", "{{.State.Pid}}", name]);
        let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim()))
            .expect("read /proc/pid/cgroup");
        let v1 = cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names
                .split(',')
                .any(|n| n == controller)
                .then(|| path.to_owned())
        });
        let dir = match v1 {
            Some(path) => format!("/sys/fs/cgroup/{controller}{path}"),
            None => {
                let path = cgroups
                    .lines()
                    .find_map(|l| l.strip_prefix("0::"))
                    .expect("a cgroup2 line");
                format!("/sys/fs/cgroup{path}")
            }
        };
        std::fs::read_to_string(format!("{dir}/{file}"))
            .unwrap_or_else(|e| panic!("read {dir}/{file}: {e}"))
            .trim()
            .to_owned()
    }
}

/// `12.5MiB / 1GiB` → bytes of the first figure.
fn parse_size(text: &str) -> f64 {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().unwrap_or_else(|_| panic!("size {text:?}"));
    let mult = match unit.trim() {
        "B" => 1.0,
        "KiB" | "kB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {text:?}"),
    };
    n * mult
}

#[test]
fn stats_show_a_memory_hog_and_a_busy_cpu() {
    let env = Env::new();
    // 40 MiB in the container's /dev/shm (a tmpfs charged to its memory cgroup), then spin.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hog",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/shm/f bs=1M count=40 2>/dev/null; touch /tmp/ready; while :; do :; done",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while env
        .docker(&["exec", "hog", "test", "-e", "/tmp/ready"])
        .status
        .code()
        != Some(0)
    {
        assert!(Instant::now() < deadline, "the hog never got ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = Instant::now();
    let out = env.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.CPUPerc}}|{{.PIDs}}|{{.NetIO}}|{{.BlockIO}}",
        "hog",
    ]);
    eprintln!(
        "measured: docker stats --no-stream took {:?}: {}",
        started.elapsed(),
        out.trim()
    );
    let fields: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(fields.len(), 6, "{out}");
    assert_eq!(fields[0], "hog");
    let (used, limit) = fields[1].split_once(" / ").expect("usage / limit");
    let used = parse_size(used);
    assert!(
        (40.0 * 1048576.0..200.0 * 1048576.0).contains(&used),
        "memory {used} from {out}"
    );
    // No limit: Docker shows the host's memory.
    assert!(parse_size(limit) > 512.0 * 1048576.0, "{out}");
    let cpu: f64 = fields[2].trim_end_matches('%').parse().expect("cpu %");
    assert!(
        cpu > 1.0,
        "a busy loop shows CPU% (shared, loaded host): {out}"
    );
    assert!(fields[3].parse::<u32>().expect("pids") >= 1, "{out}");
    assert!(fields[4].contains(" / "), "{out}");

    // The JSON Docker's CLI reads: one-shot has no precpu; networks has eth0.
    let started = Instant::now();
    let resp = env.get("/containers/hog/stats?stream=false&one-shot=true");
    eprintln!("measured: one-shot stats answer in {:?}", started.elapsed());
    assert_eq!(resp.status, 200, "{}", resp.body);
    let j = resp.json();
    assert_eq!(j["name"], "/hog");
    assert!(j["memory_stats"]["usage"].as_u64().expect("usage") >= 40 << 20);
    assert!(
        j["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .expect("cpu")
            > 0
    );
    assert!(j["cpu_stats"]["system_cpu_usage"].as_u64().expect("system") > 0);
    assert!(j["cpu_stats"]["online_cpus"].as_u64().expect("cpus") >= 1);
    assert_eq!(j["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert_eq!(j["preread"], "0001-01-01T00:00:00Z");
    assert!(j["networks"]["eth0"]["rx_bytes"].is_u64(), "{j}");
    assert!(j["pids_stats"]["current"].as_u64().expect("pids") >= 1);

    // Streaming: a line a second, until the client goes (bounded read of ~3.5 s).
    let mut child = Command::new("docker")
        .args(["stats", "--format", "{{.Name}} {{.CPUPerc}}", "hog"])
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.daemon.socket.display()),
        )
        .env("DOCKER_CONFIG", env.daemon.dir.path().join("docker-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker stats");
    std::thread::sleep(Duration::from_millis(3500));
    let _ = child.kill();
    let mut streamed = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut streamed);
    }
    let _ = child.wait();
    assert!(
        streamed.matches("hog ").count() >= 2,
        "at least two refreshes: {streamed:?}"
    );

    // Without names: every running container; -a adds the others.
    env.ok(&["create", "--name", "idle", "busybox", "true"]);
    let listed = env.ok(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(listed, "hog\n");
    let mut listed: Vec<String> = env
        .ok(&["stats", "-a", "--no-stream", "--format", "{{.Name}}"])
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    assert_eq!(listed, vec!["hog", "idle"]);
    // A stopped container: zeros, as Docker answers.
    env.ok(&["rm", "-f", "hog"]);
    let out = env.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}|{{.CPUPerc}}",
        "idle",
    ]);
    assert_eq!(out.trim(), "0B / 0B|0.00%");
    let j = env.get("/containers/idle/stats?stream=false").json();
    assert_eq!(j["read"], "0001-01-01T00:00:00Z");
    assert_eq!(j["id"].as_str().map(str::len), Some(64));
}

#[test]
fn update_limits_a_running_container_and_a_restart_keeps_them() {
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "u1", "busybox", "sleep", "1000"]);
    let out = env.ok(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "--cpu-shares",
        "512",
        "--restart",
        "on-failure:3",
        "u1",
    ]);
    assert_eq!(out.trim(), "u1");
    assert_eq!(
        env.cgroup_file("u1", "memory", "memory.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(env.cgroup_file("u1", "pids", "pids.max"), "20");
    assert_eq!(env.cgroup_file("u1", "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(env.cgroup_file("u1", "cpu", "cpu.shares"), "512");
    let j = env
        .get("/containers/u1/stats?stream=false&one-shot=true")
        .json();
    assert_eq!(j["memory_stats"]["limit"], 32 << 20);
    assert_eq!(j["pids_stats"]["limit"], 20);
    // A hog over the new limit is OOM-killed.
    let hog = env.docker(&[
        "exec",
        "u1",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=96M",
        "count=1",
    ]);
    assert_eq!(hog.status.code(), Some(137), "{}", text(&hog.stderr));
    let inspect = env.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "u1",
    ]);
    assert_eq!(inspect.trim(), "33554432 500000000 20 on-failure:3");

    env.ok(&["restart", "-t", "0", "u1"]);
    assert_eq!(
        env.cgroup_file("u1", "memory", "memory.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(env.cgroup_file("u1", "pids", "pids.max"), "20");

    // cpuset and blkio weight too (blkio.weight exists only with CFQ/BFQ; here it may not).
    env.ok(&["update", "--cpuset-cpus", "0", "u1"]);
    assert_eq!(env.cgroup_file("u1", "cpuset", "cpuset.cpus"), "0");
    assert_eq!(
        env.ok(&[
            "inspect",
            "--format",
            "{{.HostConfig.CpusetCpus}} {{.HostConfig.Memory}}",
            "u1"
        ])
        .trim(),
        "0 33554432"
    );
    // A stopped container: stored, applied at the next start.
    env.ok(&["stop", "-t", "0", "u1"]);
    env.ok(&["update", "--memory", "48m", "--memory-swap", "96m", "u1"]);
    env.ok(&["start", "u1"]);
    assert_eq!(
        env.cgroup_file("u1", "memory", "memory.limit_in_bytes"),
        "50331648"
    );
    assert_eq!(env.cgroup_file("u1", "pids", "pids.max"), "20");
}

#[test]
fn hostile_updates_and_stats_requests_are_refused() {
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "h1", "busybox", "sleep", "1000"]);
    let err = env.fails(&["update", "--cpus", "abc", "h1"]);
    assert!(err.contains("invalid argument \"abc\""), "{err}");
    let err = env.fails(&["update", "--memory", "1k", "h1"]);
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    let err = env.fails(&["update", "--memory", "32m", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let err = env.fails(&["stats", "--no-stream", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    for (body, needle) in [
        (r#"{"Memory":-5}"#, "negative"),
        (r#"{"NanoCpus":-1}"#, "Range of CPUs"),
        (r#"{"NanoCpus":1000000000000}"#, "Range of CPUs"),
        (r#"{"CpuQuota":5}"#, "CPU cfs quota"),
        (r#"{"BlkioWeight":5}"#, "blkio weight"),
        (r#"{"CpusetCpus":"1-0"}"#, "cpuset"),
        (r#"{"Memory":"abc"}"#, ""),
        (r#"{"Memory":1"#, ""),
        (
            r#"{"RestartPolicy":{"Name":"sometimes"}}"#,
            "restart policy",
        ),
    ] {
        let resp = env.post_json("/containers/h1/update", body);
        assert_eq!(resp.status, 400, "{body}: {}", resp.body);
        assert!(resp.body.contains(needle), "{body}: {}", resp.body);
    }
    let resp = env.post_json("/containers/nosuch/update", "{}");
    assert_eq!(resp.status, 404);
    let resp = env.get("/containers/h1/stats?stream=true&one-shot=true");
    assert_eq!(resp.status, 400);
    // Nothing was changed by the refused requests.
    assert_eq!(
        env.ok(&[
            "inspect",
            "--format",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            "h1"
        ])
        .trim(),
        "0 0"
    );
}

/// `docker build` with the classic builder (what berth serves), bounded in time.
fn build(env: &Env, tag: &str, dockerfile: &str) {
    let ctx = env.daemon.dir.path().join(format!("ctx-{tag}"));
    std::fs::create_dir_all(&ctx).expect("context dir");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("Dockerfile");
    let out = Command::new("timeout")
        .args(["120", "docker", "build", "-q", "-t", tag])
        .arg(&ctx)
        .env(
            "DOCKER_HOST",
            format!("unix://{}", env.daemon.socket.display()),
        )
        .env("DOCKER_CONFIG", env.daemon.dir.path().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .expect("docker build");
    assert!(
        out.status.success(),
        "build: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn system_df_agrees_with_images_containers_volumes_and_build_cache() {
    let env = Env::new();
    let busybox_size: u64 = env
        .ok(&["image", "inspect", "--format", "{{.Size}}", "busybox"])
        .trim()
        .parse()
        .expect("size");
    assert!(busybox_size > 100_000);
    // A build on top of busybox shares its layer, and leaves a 200000-byte cache mount.
    build(
        &env,
        "cached:1",
        "FROM busybox\nRUN --mount=type=cache,target=/c head -c 200000 /dev/zero > /c/blob && echo hi > /hi\n",
    );
    let cached_size: u64 = env
        .ok(&["image", "inspect", "--format", "{{.Size}}", "cached:1"])
        .trim()
        .parse()
        .expect("size");
    assert!(cached_size > busybox_size);
    env.ok(&["volume", "create", "empty"]);
    env.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "full:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /data/v && head -c 100000 /dev/zero > /rw",
    ]);

    let started = Instant::now();
    let j = env.get("/system/df").json();
    eprintln!("measured: /system/df answered in {:?}", started.elapsed());
    assert_eq!(j["LayersSize"], cached_size, "{j}");
    let images = j["Images"].as_array().expect("images");
    assert_eq!(images.len(), 2, "{j}");
    let find = |tag: &str| {
        images
            .iter()
            .find(|i| i["RepoTags"].to_string().contains(tag))
            .unwrap_or_else(|| panic!("{tag} in {j}"))
    };
    let bb = find("busybox:latest");
    assert_eq!(bb["Size"], busybox_size);
    assert_eq!(bb["SharedSize"], busybox_size);
    assert_eq!(bb["Containers"], 1);
    let cached = find("cached:1");
    assert_eq!(cached["Size"], cached_size);
    assert_eq!(cached["SharedSize"], busybox_size);
    assert_eq!(cached["Containers"], 0);
    let containers = j["Containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let rw = containers[0]["SizeRw"].as_u64().expect("SizeRw");
    assert!((100_000..120_000).contains(&rw), "{rw}");
    assert_eq!(containers[0]["SizeRootFs"], rw + busybox_size);
    let volume = |name: &str| {
        j["Volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["Name"] == name)
            .unwrap_or_else(|| panic!("{name} in {j}"))["UsageData"]
            .clone()
    };
    assert_eq!(
        volume("full"),
        serde_json::json!({"Size": 300000, "RefCount": 1})
    );
    assert_eq!(
        volume("empty"),
        serde_json::json!({"Size": 0, "RefCount": 0})
    );
    let cache = j["BuildCache"].as_array().expect("build cache");
    let mount = cache
        .iter()
        .find(|c| c["Type"] == "exec.cachemount")
        .unwrap_or_else(|| panic!("a cache mount in {j}"));
    assert_eq!(mount["Size"], 200000);
    assert!(cache.iter().any(|c| c["Type"] == "regular"), "{j}");

    // The docker CLI's views of it.
    let out = env.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("Images|2|1|"), "{out}");
    assert!(lines[1].starts_with("Containers|1|0|100"), "{out}");
    assert_eq!(lines[2], "Local Volumes|2|1|300kB", "{out}");
    assert!(lines[3].starts_with("Build Cache|"), "{out}");
    let out = env.ok(&["system", "df", "-v"]);
    for needle in ["cached", "writer", "full", "300kB", "exec.cachemount"] {
        assert!(out.contains(needle), "{needle} in {out}");
    }
    let out = env.ok(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(out.starts_with("writer 100kB (virtual "), "{out}");
    // Removing the container frees the volume (still counted) and the writable layer.
    env.ok(&["rm", "writer"]);
    let j = env.get("/system/df").json();
    assert_eq!(j["Containers"], serde_json::json!([]));
    assert!(
        j["Volumes"]
            .to_string()
            .contains(r#""RefCount":0,"Size":300000"#),
        "{j}"
    );
}

#[test]
fn volumes_from_shares_volumes_and_binds_and_keeps_them_in_use() {
    let env = Env::new();
    let host_dir = env.daemon.dir.path().join("bind-src");
    std::fs::create_dir_all(&host_dir).expect("bind dir");
    std::fs::write(host_dir.join("h"), "host\n").expect("bind file");
    let bind = format!("{}:/hostbind", host_dir.display());
    env.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "vol1:/data",
        "-v",
        "/anon",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f && echo anon > /anon/a",
    ]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "busybox",
        "sh",
        "-c",
        "cat /data/f /anon/a /hostbind/h && echo more > /data/g",
    ]);
    assert_eq!(out, "hello\nanon\nhost\n");
    // `:ro` makes every one of them read-only.
    let out = env.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/g; echo x > /data/h || echo refused; echo y > /hostbind/y || echo refused",
    ]);
    assert_eq!(
        text(&out.stdout),
        "more\nrefused\nrefused\n",
        "{}",
        text(&out.stderr)
    );
    assert!(!host_dir.join("y").exists());
    // The container's own -v wins over the imported one at the same path.
    let out = env.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "-v",
        "other:/data",
        "busybox",
        "ls",
        "/data",
    ]);
    assert_eq!(out, "");

    env.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--volumes-from",
        "src",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        env.ok(&["inspect", "--format", "{{.HostConfig.VolumesFrom}}", "user"])
            .trim(),
        "[src]"
    );
    let anon = env.ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        "src",
    ]);
    let anon = anon.trim().to_owned();
    assert_eq!(anon.len(), 64, "{anon}");
    // Removing the source with -v keeps the volumes its user still mounts.
    env.ok(&["rm", "-v", "src"]);
    assert_eq!(
        env.ok(&["exec", "user", "cat", "/anon/a", "/data/f"]),
        "anon\nhello\n"
    );
    let err = env.fails(&["volume", "rm", &anon]);
    assert!(err.contains("volume is in use"), "{err}");
    // A later start of the user does not need the source any more.
    env.ok(&["restart", "-t", "0", "user"]);
    assert_eq!(env.ok(&["exec", "user", "cat", "/anon/a"]), "anon\n");
    env.ok(&["rm", "-f", "-v", "user"]);
    // Not the user's own anonymous volume: rm -v leaves it.
    assert!(env.ok(&["volume", "ls", "-q"]).contains(&anon));

    let err = env.fails(&["create", "--volumes-from", "nosuch", "busybox", "true"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    env.ok(&["create", "--name", "src2", "-v", "/x", "busybox", "true"]);
    for (spec, needle) in [
        ("src2:rx", "invalid mode: rx"),
        ("src2:ro:rw", "invalid mode"),
    ] {
        let err = env.fails(&["create", "--volumes-from", spec, "busybox", "true"]);
        assert!(err.contains(needle), "{spec}: {err}");
    }
    let body = r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"VolumesFrom":[""]}}"#;
    let resp = env.post_json("/containers/create", body);
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(
        resp.body.contains("cannot be an empty string"),
        "{}",
        resp.body
    );
}

/// The berth client against the same daemon.
fn berth(env: &Env, args: &[&str]) -> Output {
    let mut all = vec![
        "-H".to_owned(),
        format!("unix://{}", env.daemon.socket.display()),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth");
    let deadline = Instant::now() + Duration::from_secs(30);
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth {args:?} did not finish in 30s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("berth output")
}

#[test]
fn berth_client_stats_update_and_system_df() {
    let env = Env::new();
    env.ok(&["volume", "create", "vz"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "b1",
        "-v",
        "vz:/v",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /v/z; while :; do :; done",
    ]);
    let out = berth(
        &env,
        &["update", "--memory", "64m", "--pids-limit", "30", "b1"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "b1\n");
    assert_eq!(
        env.cgroup_file("b1", "memory", "memory.limit_in_bytes"),
        "67108864"
    );
    let out = berth(&env, &["update", "b1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("you must provide one or more flags"),
        "{}",
        text(&out.stderr)
    );
    let out = berth(&env, &["update", "--cpus", "abc", "b1"]);
    assert_ne!(out.status.code(), Some(0));
    let out = berth(&env, &["update", "--memory", "1k", "b1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        text(&out.stderr)
    );

    let out = berth(
        &env,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}}|{{.MemUsage}}|{{.CPUPerc}}|{{.PIDs}}",
            "b1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let fields: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(fields[0], "b1", "{line}");
    assert!(fields[1].ends_with(" / 64MiB"), "{line}");
    let cpu: f64 = fields[2].trim_end_matches('%').parse().expect("cpu");
    assert!(cpu > 1.0, "{line}");
    assert_eq!(fields[3], "1", "{line}");
    let table = text(&berth(&env, &["stats", "--no-stream", "b1"]).stdout);
    assert!(
        table.starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT"),
        "{table}"
    );

    // system df: the same text as the docker CLI's.
    env.ok(&["stop", "-t", "0", "b1"]);
    for args in [
        vec!["system", "df"],
        vec![
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}",
        ],
    ] {
        let ours = berth(&env, &args);
        assert!(ours.status.success(), "{}", text(&ours.stderr));
        assert_eq!(text(&ours.stdout), env.ok(&args), "{args:?}");
    }
    let verbose = text(&berth(&env, &["system", "df", "-v"]).stdout);
    for needle in [
        "Images space usage:",
        "busybox",
        "Local Volumes space usage:",
        "5kB",
        "Build cache usage: 0B",
    ] {
        assert!(verbose.contains(needle), "{needle} in {verbose}");
    }
}
