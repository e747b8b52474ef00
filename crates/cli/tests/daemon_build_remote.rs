//! Builds that reach the network, all on loopback: a `FROM` image missing locally is pulled
//! from `berth registry serve` (and `--pull` asks again), and `ADD <http URL>` downloads from
//! a small HTTP server started here (mode 0600, `Last-Modified` as mtime, never unpacked,
//! `--checksum` honoured, the content as the cache key, Docker's words for a failed GET).
//!
//! Needs root (overlay mounts, namespaces) and the docker CLI; skipped otherwise.

mod client_support;
mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use client_support::*;
use daemon_support::RegistryProcess;

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.daemon.docker(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.daemon.docker(&["rm", "-f", id]);
        }
        kill_leftover_shims(self.daemon.dir.path());
    }
}

fn context(env: &Env, name: &str, dockerfile: &str) -> PathBuf {
    let ctx = env.daemon.dir.path().join(name);
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write");
    ctx
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn from_pulls_a_missing_image_and_pull_asks_again() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let registry = RegistryProcess::start(&[]);
    let image = format!("{}/bb:1", registry.addr);
    env.docker(&["tag", "busybox", &image]);
    let pushed = env.docker(&["push", &image]);
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    let rmi = env.docker(&["rmi", &image]);
    assert!(rmi.status.success(), "{}", text(&rmi.stderr));

    let ctx = context(
        &env,
        "pull",
        &format!("FROM {image}\nRUN echo pulled > /p.txt\n"),
    );
    let out = env.ok(&["build", "-t", "pulled:1", &p(&ctx)]);
    assert!(out.contains("1: Pulling from bb\n"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}\n")),
        "{out}"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "pulled:1", "cat", "/p.txt"]),
        "pulled\n"
    );
    let images = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains(&image), "{images}");

    // Present now: no pull; `--pull` resolves it again and keeps the cache.
    let again = env.ok(&["build", "-t", "pulled:1", &p(&ctx)]);
    assert!(!again.contains("Pulling from"), "{again}");
    let repull = env.ok(&["build", "--pull", "-t", "pulled:1", &p(&ctx)]);
    assert!(
        repull.contains(&format!("Status: Image is up to date for {image}\n")),
        "{repull}"
    );
    assert!(repull.contains(" ---> Using cache\n"), "{repull}");

    // A name the registry does not have fails the build with the registry's answer.
    let missing = context(&env, "missing", &format!("FROM {}/nope:1\n", registry.addr));
    let out = env.berth(&["build", &p(&missing)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(!text(&out.stderr).is_empty());
}

/// A loopback HTTP server for `ADD <url>`; its runtime stops on drop.
struct Files {
    addr: String,
    changing: Arc<Mutex<String>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Files {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const LAST_MODIFIED_SECS: i64 = 1_445_412_480;

fn a_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "inner.txt", &b"inside"[..])
        .expect("tar entry");
    b.into_inner().expect("tar")
}

fn serve_files() -> Files {
    use axum::http::header;
    use axum::routing::get;
    let changing = Arc::new(Mutex::new("first\n".to_owned()));
    let state = changing.clone();
    let app = axum::Router::new()
        .route(
            "/files/data.tar",
            get(|| async { ([(header::LAST_MODIFIED, LAST_MODIFIED)], a_tar()) }),
        )
        .route(
            "/named",
            get(|| async {
                (
                    [(
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"from-header.txt\"",
                    )],
                    "named\n",
                )
            }),
        )
        .route(
            "/missing",
            get(|| async { (axum::http::StatusCode::NOT_FOUND, "nothing here") }),
        )
        .route(
            "/changing",
            get(move || {
                let state = state.clone();
                async move { state.lock().map(|s| s.clone()).unwrap_or_default() }
            }),
        );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    runtime.spawn(async move { axum::serve(listener, app).await });
    Files {
        addr,
        changing,
        runtime: Some(runtime),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    text(&out.stdout)
        .split_whitespace()
        .next()
        .expect("sum")
        .to_owned()
}

#[test]
fn add_url_downloads_checks_and_caches_by_content() {
    if !usable() {
        return;
    }
    let env = Env::new();
    let files = serve_files();
    let base = format!("http://{}", files.addr);
    let sum = sha256_hex(&a_tar());
    let ctx = context(
        &env,
        "add",
        &format!(
            "FROM busybox\nADD {base}/files/data.tar /dl/\n\
             ADD --checksum=sha256:{sum} {base}/files/data.tar /sum.tar\n\
             ADD {base}/named /dl/\n"
        ),
    );
    env.ok(&["build", "-t", "added:1", &p(&ctx)]);
    let listing = env.ok(&[
        "run",
        "--rm",
        "added:1",
        "sh",
        "-c",
        "ls /dl; stat -c '%a %Y' /dl/data.tar; tar -tf /sum.tar",
    ]);
    assert_eq!(
        listing,
        format!("data.tar\nfrom-header.txt\n600 {LAST_MODIFIED_SECS}\ninner.txt\n")
    );

    let bad = context(
        &env,
        "bad-sum",
        &format!(
            "FROM busybox\nADD --checksum=sha256:{} {base}/files/data.tar /x\n",
            "0".repeat(64)
        ),
    );
    let out = env.berth(&["build", &p(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("checksum mismatch for {base}/files/data.tar")),
        "{}",
        text(&out.stderr)
    );

    let missing = context(
        &env,
        "missing",
        &format!("FROM busybox\nADD {base}/missing /x\n"),
    );
    let out = env.berth(&["build", &p(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!(
            "failed to GET {base}/missing with status 404 Not Found: nothing here"
        )),
        "{}",
        text(&out.stderr)
    );

    let refused = context(
        &env,
        "refused",
        "FROM busybox\nADD http://127.0.0.1:1/x /x\n",
    );
    let out = env.berth(&["build", &p(&refused)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("failed to GET http://127.0.0.1:1/x"),
        "{}",
        text(&out.stderr)
    );

    // The downloaded content is the cache key: same bytes hit, new bytes miss.
    let ctx = context(
        &env,
        "changing",
        &format!("FROM busybox\nADD {base}/changing /c.txt\nRUN cat /c.txt\n"),
    );
    env.ok(&["build", "-t", "changing:1", &p(&ctx)]);
    let cached = env.ok(&["build", "-t", "changing:1", &p(&ctx)]);
    assert_eq!(cached.matches(" ---> Using cache\n").count(), 2, "{cached}");
    *files.changing.lock().expect("lock") = "second\n".to_owned();
    let changed = env.ok(&["build", "-t", "changing:1", &p(&ctx)]);
    assert!(!changed.contains("Using cache"), "{changed}");
    assert_eq!(
        env.ok(&["run", "--rm", "changing:1", "cat", "/c.txt"]),
        "second\n"
    );
}
