//! The builder against a real image store (overlay mounts: needs root): FROM scratch, COPY
//! and ADD with Docker's rules, every config instruction, multi-stage `COPY --from`, the
//! cache, and hostile contexts. RUN needs the engine and is tested through the daemon.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_builder::{
    Backend, BuildError, BuildOptions, Builder, Context, ContextLimits, OutputStream, Progress,
    RunSpec,
};
use berth_image::ImageStore;
use berth_reference::{ImageId, Reference};

/// These tests have no containers; a RUN is an error here.
struct NoRun;

impl Backend for NoRun {
    fn create(&self, _: &RunSpec) -> berth_builder::Result<String> {
        Err(BuildError::Backend(
            "RUN is not available in this test".into(),
        ))
    }
    fn run(&self, _: &str, _: &mut dyn FnMut(OutputStream, &[u8])) -> berth_builder::Result<i64> {
        Err(BuildError::Backend("unused".into()))
    }
    fn changes(&self, _: &str, _: &[String]) -> berth_builder::Result<PathBuf> {
        Err(BuildError::Backend("unused".into()))
    }
    fn remove(&self, _: &str) -> berth_builder::Result<()> {
        Ok(())
    }
}

struct Env {
    dir: tempfile::TempDir,
    store: Arc<ImageStore>,
    builder: Builder,
}

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ImageStore::open(&dir.path().join("data")).unwrap());
        let builder = Builder::open(store.clone(), &dir.path().join("data/builder")).unwrap();
        Env {
            dir,
            store,
            builder,
        }
    }

    /// A context directory with `files` (`name` → content; a content starting with `->` is a
    /// symlink target).
    fn context(&self, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.dir.path().join(format!("ctx-{}", files.len()));
        let _ = std::fs::remove_dir_all(&ctx);
        for (name, content) in files {
            let p = ctx.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            match content.strip_prefix("->") {
                Some(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
                None => std::fs::write(&p, content).unwrap(),
            }
        }
        ctx
    }

    fn build_dir(&self, ctx: &Path, opts: &BuildOptions) -> (Result<ImageId, BuildError>, String) {
        let context = Context::from_dir(ctx).unwrap();
        let mut out = String::new();
        let r = self.builder.build(&NoRun, &context, opts, &mut |p| {
            if let Progress::Stream(s) = p {
                out.push_str(&s)
            }
        });
        (r, out)
    }

    fn build(&self, files: &[(&str, &str)], opts: &BuildOptions) -> (ImageId, String) {
        let ctx = self.context(files);
        let (r, out) = self.build_dir(&ctx, opts);
        match r {
            Ok(id) => (id, out),
            Err(e) => panic!("build failed: {e}\n{out}"),
        }
    }

    fn fail(&self, files: &[(&str, &str)]) -> String {
        let ctx = self.context(files);
        let (r, out) = self.build_dir(&ctx, &BuildOptions::default());
        match r {
            Ok(_) => panic!("build succeeded:\n{out}"),
            Err(e) => e.to_string(),
        }
    }

    /// Mounts the image, runs `f` on its root, unmounts.
    fn with_rootfs<T>(&self, id: &ImageId, f: impl FnOnce(&Path) -> T) -> T {
        let key = format!("test-{}", &id.as_str()[7..19]);
        let mount = self.store.prepare_rootfs(id, &key).unwrap();
        let mnt = self.dir.path().join(&key);
        std::fs::create_dir_all(&mnt).unwrap();
        mount.mount(&mnt).unwrap();
        let out = f(&mnt);
        berth_snapshot::unmount(&mnt).unwrap();
        self.store.remove_rootfs(&key).unwrap();
        out
    }
}

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn mode(root: &Path, p: &str) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(root.join(p)).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn scratch_copy_and_config_instructions() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let dockerfile = r#"FROM scratch
COPY hello.txt /
COPY dir /app/
COPY --chown=7:8 --chmod=600 hello.txt /app/secret
COPY *.md /docs/
WORKDIR /app
COPY hello.txt rel.txt
ENV A=1 B="two words"
ENV C=${A}-x
LABEL l1=v1 "l 2"="v 2"
EXPOSE 80 53/udp
VOLUME ["/data"]
USER 1000:1000
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=3 CMD ["/check"]
SHELL ["/bin/ash", "-c"]
ONBUILD COPY . /onbuild
CMD echo hi
ENTRYPOINT ["/entry"]
"#;
    let files = [
        ("Dockerfile", dockerfile),
        ("hello.txt", "hello\n"),
        ("dir/a.txt", "a"),
        ("dir/sub/b.txt", "b"),
        ("one.md", "1"),
        ("two.md", "2"),
    ];
    let opts = BuildOptions {
        tags: vec![Reference::parse_normalized("built:1").unwrap()],
        labels: BTreeMap::from([("extra".to_owned(), "yes".to_owned())]),
        ..BuildOptions::default()
    };
    let (id, out) = env.build(&files, &opts);
    assert!(out.starts_with("Step 1/20 : FROM scratch\n"), "{out}");
    assert!(
        out.contains("Step 20/20 : LABEL \"extra\"=\"yes\"\n"),
        "{out}"
    );
    assert!(out.contains("Successfully tagged built:1\n"), "{out}");
    assert_eq!(env.store.resolve("built:1").unwrap(), id);

    let cfg = env.store.config(&id).unwrap();
    let c = cfg.config.clone().unwrap();
    assert_eq!(
        c.env.unwrap(),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "B=two words",
            "C=1-x"
        ]
    );
    let labels = c.labels.unwrap();
    assert_eq!(labels["l1"], "v1");
    assert_eq!(labels["l 2"], "v 2");
    assert_eq!(labels["extra"], "yes");
    let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["53/udp", "80/tcp"]);
    assert!(c.volumes.unwrap().contains_key("/data"));
    assert_eq!(c.user, "1000:1000");
    assert_eq!(c.working_dir, "/app");
    assert_eq!(c.stop_signal, "SIGINT");
    assert_eq!(
        c.healthcheck.unwrap(),
        serde_json::json!({"Test": ["CMD", "/check"], "Interval": 5_000_000_000u64, "Retries": 3})
    );
    assert_eq!(c.shell.unwrap(), ["/bin/ash", "-c"]);
    assert_eq!(c.on_build.unwrap(), ["COPY . /onbuild"]);
    // CMD set in this stage survives ENTRYPOINT; its shell form used the SHELL of the time.
    assert_eq!(c.cmd.unwrap(), ["/bin/ash", "-c", "echo hi"]);
    assert_eq!(c.entrypoint.unwrap(), ["/entry"]);
    // One history entry per step; only COPY and WORKDIR made layers.
    assert_eq!(cfg.history.len(), 19);
    let layers = cfg.history.iter().filter(|h| !h.empty_layer).count();
    assert_eq!(layers, cfg.rootfs.diff_ids.len());
    assert_eq!(layers, 5, "{:#?}", cfg.history);
    assert!(
        cfg.history[0]
            .created_by
            .starts_with("/bin/sh -c #(nop) COPY file:"),
        "{:?}",
        cfg.history[0]
    );
    assert!(
        cfg.history[6].created_by.contains("ENV A=1"),
        "{:?}",
        cfg.history[6]
    );

    env.with_rootfs(&id, |r| {
        assert_eq!(read(r, "hello.txt"), "hello\n");
        assert_eq!(read(r, "app/a.txt"), "a");
        assert_eq!(read(r, "app/sub/b.txt"), "b");
        assert!(!r.join("app/dir").exists());
        assert_eq!(read(r, "app/secret"), "hello\n");
        assert_eq!(mode(r, "app/secret"), (0o600, 7, 8));
        assert_eq!(mode(r, "app/a.txt").1, 0);
        assert_eq!(read(r, "docs/one.md"), "1");
        assert_eq!(read(r, "docs/two.md"), "2");
        assert_eq!(read(r, "app/rel.txt"), "hello\n");
    });
}

#[test]
fn multi_stage_copy_from_target_args_and_cache() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let dockerfile = r#"ARG BASE=scratch
FROM ${BASE} AS build
ARG VERSION=dev
COPY src/ /out/
LABEL version=$VERSION
FROM scratch AS unused
COPY nope /
FROM scratch
COPY --from=build /out/main.txt /bin/main.txt
COPY --from=0 /out /all
COPY input.txt /
"#;
    let files = [
        ("Dockerfile", dockerfile),
        ("src/main.txt", "main"),
        ("src/lib/x.txt", "x"),
        ("input.txt", "one"),
        (".dockerignore", "src/lib\n"),
    ];
    let mut opts = BuildOptions::default();
    opts.build_args.insert("VERSION".into(), Some("1.2".into()));
    opts.target = Some("build".into());
    let (build_id, _) = env.build(&files, &opts);
    let cfg = env.store.config(&build_id).unwrap();
    assert_eq!(cfg.config.unwrap().labels.unwrap()["version"], "1.2");

    // The unused stage is skipped (its missing file would fail it); the `build` stage's
    // first two steps come from the --target build's cache.
    let mut files2 = files.to_vec();
    let (id, out) = env.build(&files2, &BuildOptions::default());
    assert!(!out.contains("COPY nope"), "{out}");
    assert!(out.contains("Step 9/9 : COPY input.txt /"), "{out}");
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    env.with_rootfs(&id, |r| {
        assert_eq!(read(r, "bin/main.txt"), "main");
        assert_eq!(read(r, "all/main.txt"), "main");
        assert!(
            !r.join("all/lib").exists(),
            ".dockerignore'd directory was copied"
        );
        assert_eq!(read(r, "input.txt"), "one");
    });

    // Nothing changed: every step from the cache, same image.
    let (again, out) = env.build(&files2, &BuildOptions::default());
    assert_eq!(again, id);
    assert_eq!(out.matches("Using cache").count(), 6, "{out}");

    // Only the last source changed: every step before it is cached.
    files2.retain(|(n, _)| *n != "input.txt");
    files2.push(("input.txt", "two"));
    let (changed, out) = env.build(&files2, &BuildOptions::default());
    assert_ne!(changed, id);
    assert_eq!(out.matches("Using cache").count(), 5, "{out}");
    env.with_rootfs(&changed, |r| assert_eq!(read(r, "input.txt"), "two"));

    // --no-cache rebuilds everything.
    let nc = BuildOptions {
        no_cache: true,
        ..BuildOptions::default()
    };
    let (_, out) = env.build(&files2, &nc);
    assert!(!out.contains("Using cache"), "{out}");
}

#[test]
fn independent_stages_build_in_parallel_and_report_in_order() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let dockerfile = "FROM scratch AS a\nCOPY a.txt /\nFROM scratch AS b\nCOPY b.txt /\nFROM scratch AS c\nCOPY c.txt /\nFROM scratch\nCOPY --from=a /a.txt /\nCOPY --from=b /b.txt /\nCOPY --from=c /c.txt /\n";
    let files = [
        ("Dockerfile", dockerfile),
        ("a.txt", "a"),
        ("b.txt", "b"),
        ("c.txt", "c"),
    ];
    let (id, out) = env.build(&files, &BuildOptions::default());
    let steps: Vec<usize> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Step "))
        .filter_map(|l| l.split('/').next()?.parse().ok())
        .collect();
    assert_eq!(steps, (1..=10).collect::<Vec<_>>(), "{out}");
    env.with_rootfs(&id, |r| {
        assert_eq!(read(r, "a.txt"), "a");
        assert_eq!(read(r, "b.txt"), "b");
        assert_eq!(read(r, "c.txt"), "c");
    });
    // A failing stage of a parallel wave fails the build with its own error.
    let files = [("Dockerfile", dockerfile), ("a.txt", "a"), ("c.txt", "c")];
    let ctx = env.context(&files);
    let (r, _) = env.build_dir(&ctx, &BuildOptions::default());
    let e = r.unwrap_err().to_string();
    assert!(e.contains("stat b.txt: file does not exist"), "{e}");
}

#[test]
fn a_tar_context_and_the_same_directory_share_cache_keys() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let files = [
        ("Dockerfile", "FROM scratch\nCOPY . /ctx/\nCOPY big.bin /\n"),
        ("big.bin", "0123456789abcdef"),
        ("sub/x.txt", "x"),
    ];
    let dir = env.context(&files);
    let (from_dir, _) = env.build_dir(&dir, &BuildOptions::default());
    let from_dir = from_dir.unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", &dir).unwrap();
    let bytes = tar.into_inner().unwrap();
    let ctx = Context::from_tar(
        &mut &bytes[..],
        &env.dir.path().join("tarctx"),
        ContextLimits::default(),
    )
    .unwrap();
    let mut out = String::new();
    let from_tar = env
        .builder
        .build(&NoRun, &ctx, &BuildOptions::default(), &mut |p| {
            if let Progress::Stream(s) = p {
                out.push_str(&s)
            }
        })
        .unwrap();
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    assert_eq!(from_tar, from_dir);
}

#[test]
fn copy_heredocs_become_files() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let dockerfile = "FROM scratch\nENV NAME=berth\nCOPY <<EOF /greeting.txt\nhello $NAME\nEOF\nCOPY <<'RAW' <<TWO /etc/\nkeep $NAME\nRAW\ntwo\nTWO\n";
    let (id, _) = env.build(&[("Dockerfile", dockerfile)], &BuildOptions::default());
    env.with_rootfs(&id, |r| {
        assert_eq!(read(r, "greeting.txt"), "hello berth\n");
        assert_eq!(mode(r, "greeting.txt"), (0o644, 0, 0));
        assert_eq!(read(r, "etc/RAW"), "keep $NAME\n");
        assert_eq!(read(r, "etc/TWO"), "two\n");
    });
}

#[test]
fn copy_exclude_leaves_matches_out() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let files = [
        (
            "Dockerfile",
            "FROM scratch\nCOPY --exclude=*.log --exclude=secret . /app/\n",
        ),
        ("keep.txt", "k"),
        ("debug.log", "l"),
        ("secret/key", "s"),
    ];
    let (id, _) = env.build(&files, &BuildOptions::default());
    env.with_rootfs(&id, |r| {
        assert_eq!(read(r, "app/keep.txt"), "k");
        assert!(!r.join("app/debug.log").exists());
        assert!(!r.join("app/secret").exists());
    });
}

#[test]
fn add_unpacks_local_archives() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let ctx = env.context(&[
        (
            "Dockerfile",
            "FROM scratch\nADD a.tar.gz /x/\nADD plain.txt /\n",
        ),
        ("plain.txt", "p"),
    ]);
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(ctx.join("a.tar.gz")).unwrap(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o640);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_cksum();
    tar.append_data(&mut h, "inner/file.txt", &b"abc"[..])
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let (r, out) = env.build_dir(&ctx, &BuildOptions::default());
    let id = r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    env.with_rootfs(&id, |r| {
        assert_eq!(read(r, "x/inner/file.txt"), "abc");
        assert_eq!(mode(r, "x/inner/file.txt").0, 0o640);
        assert_eq!(read(r, "plain.txt"), "p");
    });
}

#[test]
fn hostile_contexts_give_clear_errors() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let e = env.fail(&[("Dockerfile", "FROM scratch\nCOPY missing.txt /\n")]);
    assert_eq!(
        e,
        "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist"
    );
    let e = env.fail(&[("Dockerfile", "FROM scratch\nCOPY ../../etc/passwd /\n")]);
    assert!(
        e.contains("forbidden path outside the build context: ../../etc/passwd"),
        "{e}"
    );
    let e = env.fail(&[
        ("Dockerfile", "FROM scratch\nCOPY link /\n"),
        ("link", "->/etc/passwd"),
    ]);
    assert!(
        e.contains("forbidden path outside the build context: link"),
        "{e}"
    );
    let e = env.fail(&[
        ("Dockerfile", "FROM scratch\nCOPY up/passwd /\n"),
        ("up", "->../../../../etc"),
    ]);
    assert!(
        e.contains("forbidden path outside the build context"),
        "{e}"
    );
    let e = env.fail(&[
        ("Dockerfile", "FROM scratch\nCOPY secret /\n"),
        ("secret", "s"),
        (".dockerignore", "secret"),
    ]);
    assert!(
        e.contains("file not found in build context or excluded by .dockerignore"),
        "{e}"
    );
    let e = env.fail(&[("Dockerfile", "FROM scratch\nFOO bar\n")]);
    assert_eq!(
        e,
        "dockerfile parse error on line 2: unknown instruction: FOO"
    );
    let e = env.fail(&[("Dockerfile", "FROM scratch\nRUN <<EOF\necho hi\n")]);
    assert!(e.starts_with("dockerfile parse error on line 2"), "{e}");
    let e = env.fail(&[("Dockerfile", "FROM nosuchimage:1\n")]);
    assert!(e.contains("pull access denied for nosuchimage:1"), "{e}");
    let e = env.fail(&[("x", "")]);
    assert_eq!(e, "Cannot locate specified Dockerfile: Dockerfile");
    // A symlink *inside* a copied directory is copied as a link, not followed.
    let (id, _) = env.build(
        &[
            ("Dockerfile", "FROM scratch\nCOPY d /d\n"),
            ("d/link", "->/etc/passwd"),
        ],
        &BuildOptions::default(),
    );
    env.with_rootfs(&id, |r| {
        assert_eq!(
            std::fs::read_link(r.join("d/link")).unwrap(),
            Path::new("/etc/passwd")
        );
    });
}

fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut raw = Vec::new();
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        // Write the name bytes directly: the tar crate refuses `..` in set_path.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        raw.extend_from_slice(data);
        raw.resize(raw.len().div_ceil(512) * 512, 0);
    }
    raw.extend_from_slice(&[0u8; 1024]);
    raw
}

#[test]
fn context_tars_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ok = tar_with(&[("Dockerfile", b"FROM scratch\n"), ("a/b.txt", b"b")]);
    let ctx = Context::from_tar(
        &mut &ok[..],
        &dir.path().join("c1"),
        ContextLimits::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(ctx.root().join("a/b.txt")).unwrap(), b"b");
    let root = ctx.root().to_path_buf();
    drop(ctx);
    assert!(!root.exists(), "an unpacked context is removed on drop");

    let evil = tar_with(&[("../escape.txt", b"x")]);
    let e = Context::from_tar(
        &mut &evil[..],
        &dir.path().join("c2"),
        ContextLimits::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("forbidden path outside the build context"),
        "{e}"
    );
    assert!(!dir.path().join("escape.txt").exists());

    let big = tar_with(&[("a", &[0u8; 4096]), ("b", &[0u8; 4096])]);
    let limits = ContextLimits {
        max_bytes: 5000,
        max_entries: 100,
    };
    let e = Context::from_tar(&mut &big[..], &dir.path().join("c3"), limits).unwrap_err();
    assert!(e.to_string().contains("larger than the limit"), "{e}");

    // Not a tar: the body is the Dockerfile (`docker build - < Dockerfile`).
    let plain = b"FROM scratch\nCOPY x /\n";
    let ctx = Context::from_tar(
        &mut &plain[..],
        &dir.path().join("c5"),
        ContextLimits::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(ctx.root().join("Dockerfile")).unwrap(), plain);

    // Cut inside a file's data: an error, not a short file.
    let long = tar_with(&[("Dockerfile", b"FROM scratch\n"), ("big", &[7u8; 4096])]);
    let truncated = &long[..1024 + 512 + 1000];
    assert!(
        Context::from_tar(
            &mut &truncated[..],
            &dir.path().join("c4"),
            ContextLimits::default()
        )
        .is_err()
    );
    // Cut right after the last entry's data (no padding, no end blocks), as the docker CLI
    // sends a context whose Dockerfile lives outside it: accepted whole.
    let cli = tar_with(&[("a.txt", b"a"), (".dockerignore", b"x\n")]);
    let cut = &cli[..512 + 512 + 512 + 2];
    let ctx = Context::from_tar(
        &mut &cut[..],
        &dir.path().join("c6"),
        ContextLimits::default(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(ctx.root().join(".dockerignore")).unwrap(),
        b"x\n"
    );
}

/// A context tar whose every file has the same header (mode, owner, mtime) for the same
/// name and size, so only the bytes can tell two versions apart.
fn fixed_header_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o640);
        h.set_mtime(1_600_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn the_file_cache_links_unchanged_files_and_never_trusts_headers() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let env = Env::new();
    let df: &[u8] = b"FROM scratch\nCOPY data.bin /data.bin\n";
    let build = |data: &[u8]| {
        let tar = fixed_header_tar(&[("Dockerfile", df), ("data.bin", data)]);
        let ctx = env
            .builder
            .unpack_context(&mut &tar[..], ContextLimits::default())
            .unwrap();
        let nlink = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(ctx.root().join("data.bin"))
                .unwrap()
                .nlink()
        };
        let mut out = String::new();
        let id = env
            .builder
            .build(&NoRun, &ctx, &BuildOptions::default(), &mut |p| {
                if let Progress::Stream(s) = p {
                    out.push_str(&s)
                }
            })
            .unwrap();
        (id, out, nlink)
    };
    let first_data = vec![7u8; 300_000];
    let (first, _, _) = build(&first_data);
    // The same bytes again: the cached file is linked in, and the step hits the cache.
    let (again, out, nlink) = build(&first_data);
    assert_eq!(again, first);
    assert_eq!(out.matches("Using cache").count(), 1, "{out}");
    assert_eq!(nlink, 2, "an unchanged file is a link to the cached one");
    // Same name, size, mode and mtime, one byte changed near the end: a miss, new content.
    let mut changed = first_data.clone();
    changed[299_999] = 8;
    let (third, out, _) = build(&changed);
    assert_ne!(third, first, "{out}");
    assert!(!out.contains("Using cache"), "{out}");
    env.with_rootfs(&third, |r| {
        assert_eq!(std::fs::read(r.join("data.bin")).unwrap(), changed);
    });
    // `system df` material: the step entries and the cached context files, none in use.
    let usage = env.builder.cache_usage();
    assert!(
        usage.iter().any(|r| r.kind == "regular" && r.shared),
        "{usage:?}"
    );
    let files: Vec<_> = usage.iter().filter(|r| r.kind == "source.local").collect();
    assert!(
        files
            .iter()
            .any(|r| r.size == 300_000 && !r.in_use && r.last_used.is_some()),
        "{usage:?}"
    );
    // And back: the first version's image is found again by content.
    let (fourth, out, _) = build(&first_data);
    assert_eq!(fourth, first, "{out}");
    env.with_rootfs(&fourth, |r| {
        assert_eq!(std::fs::read(r.join("data.bin")).unwrap(), first_data);
    });
}
