//! ARG/ENV scoping across stages and expansion exactly where Docker applies it; stage graph.
#![allow(clippy::unwrap_used)]

use berth_dockerfile::{
    BuildArgs, CommandLine, Dockerfile, Instruction, KeyValue, Platform, Scope, StageGraph,
    StageRef,
};

fn parse(src: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", src.as_bytes()).unwrap()
}

fn args(pairs: &[(&str, &str)]) -> BuildArgs {
    BuildArgs {
        values: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        build_platform: Platform::parse("linux/amd64").unwrap(),
        target_platform: Platform::parse("linux/arm64/v8").unwrap(),
    }
}

/// Steps every stage through a scope; returns each stage's expanded instructions and final
/// scope.
fn run(src: &str, build_args: &BuildArgs) -> Vec<(Vec<Instruction>, Scope)> {
    let df = parse(src);
    let global = Scope::global(&df, build_args).unwrap();
    df.stages
        .iter()
        .map(|stage| {
            let mut scope = global.for_stage(&[]);
            let out = stage
                .steps
                .iter()
                .map(|s| scope.step(&df.file, s).unwrap())
                .collect();
            (out, scope)
        })
        .collect()
}

fn env_of(scope: &Scope) -> Vec<(String, String)> {
    scope.env().to_vec()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_pairs_see_the_old_values() {
    let r = run("FROM x\nENV a=1\nENV a=2 b=$a c=${a}3\n", &args(&[]));
    assert_eq!(
        env_of(&r[0].1),
        pairs(&[("a", "2"), ("b", "1"), ("c", "13")])
    );
}

#[test]
fn env_legacy_form_and_quotes() {
    let r = run(
        "FROM x\nENV p /a b\nENV q=\"x $p\" r='$p' s=a\\ b\n",
        &args(&[]),
    );
    assert_eq!(
        env_of(&r[0].1),
        pairs(&[("p", "/a b"), ("q", "x /a b"), ("r", "$p"), ("s", "a b")])
    );
}

#[test]
fn global_args_only_in_from_unless_redeclared() {
    let src = "ARG V=global\nARG IMG=busybox:${V}\nFROM ${IMG} AS one\nENV seen=\"$V\"\nARG V\nENV now=$V\nFROM x\nENV two=$V\n";
    let df = parse(src);
    let global = Scope::global(&df, &args(&[])).unwrap();
    assert_eq!(
        global.expand_from(&df.stages[0].from).unwrap().image,
        "busybox:global"
    );
    let r = run(src, &args(&[]));
    assert_eq!(env_of(&r[0].1), pairs(&[("seen", ""), ("now", "global")]));
    assert_eq!(env_of(&r[1].1), pairs(&[("two", "")]));

    let r = run(src, &args(&[("V", "cli")]));
    assert_eq!(env_of(&r[0].1), pairs(&[("seen", ""), ("now", "cli")]));
}

#[test]
fn build_args_override_defaults_and_env_overrides_args() {
    let src = "FROM x\nARG a=1 b=$a\nENV out=$a,$b\nENV a=env\nARG a=3\nENV final=$a\n";
    let r = run(src, &args(&[]));
    assert_eq!(
        env_of(&r[0].1),
        pairs(&[("out", "1,1"), ("a", "env"), ("final", "env")])
    );
    let r = run(src, &args(&[("a", "cli")]));
    assert_eq!(env_of(&r[0].1)[0], ("out".into(), "cli,cli".into()));
    assert_eq!(r[0].1.args(), pairs(&[("a", "cli"), ("b", "cli")]));
}

#[test]
fn args_do_not_leak_between_stages() {
    let r = run("FROM x\nARG s=1\nFROM y\nENV got=${s:-none}\n", &args(&[]));
    assert_eq!(env_of(&r[1].1), pairs(&[("got", "none")]));
}

#[test]
fn predefined_platform_and_proxy_args() {
    let src = "FROM --platform=$BUILDPLATFORM x\nENV before=${TARGETARCH:-unset}\nARG TARGETARCH TARGETPLATFORM TARGETVARIANT\nENV a=$TARGETARCH p=$TARGETPLATFORM v=$TARGETVARIANT\n";
    let df = parse(src);
    let ba = args(&[("HTTP_PROXY", "http://proxy:3128"), ("other", "x")]);
    let global = Scope::global(&df, &ba).unwrap();
    assert_eq!(
        global
            .expand_from(&df.stages[0].from)
            .unwrap()
            .platform
            .as_deref(),
        Some("linux/amd64")
    );
    let r = run(src, &ba);
    assert_eq!(
        env_of(&r[0].1),
        pairs(&[
            ("before", "unset"),
            ("a", "arm64"),
            ("p", "linux/arm64/v8"),
            ("v", "v8")
        ])
    );
    let run_env = r[0].1.run_env();
    assert!(run_env.contains(&("HTTP_PROXY".into(), "http://proxy:3128".into())));
    assert!(!run_env.iter().any(|(k, _)| k == "other"));
    assert!(run_env.contains(&("TARGETARCH".into(), "arm64".into())));
}

#[test]
fn expansion_applies_exactly_where_docker_applies_it() {
    let src = r#"FROM x
ARG d=/data u=app p=8080 sig=TERM
LABEL "k.$u"="v $d"
EXPOSE $p 9000/udp
VOLUME $d ["$d/x"]
USER $u
WORKDIR $d/w
STOPSIGNAL SIG$sig
COPY --chown=$u --from=build $d/a ${d}/b/
ADD $d/src.tar /opt/$u
COPY <<EOF <<'RAW' /etc/$u/
home=$d
EOF
home=$d
RAW
RUN --mount=type=cache,target=$d/cache echo $d
CMD echo $d
ENTRYPOINT ["echo", "$d"]
"#;
    let r = run(src, &args(&[]));
    let i = &r[0].0;
    assert_eq!(
        i[1],
        Instruction::Label(vec![KeyValue {
            key: "k.app".into(),
            value: "v /data".into(),
            legacy: false
        }])
    );
    assert_eq!(
        i[2],
        Instruction::Expose(vec!["8080".into(), "9000/udp".into()])
    );
    // VOLUME's shell form splits on blanks before expansion.
    assert_eq!(
        i[3],
        Instruction::Volume(vec!["/data".into(), "[/data/x]".into()])
    );
    assert_eq!(i[4], Instruction::User("app".into()));
    assert_eq!(i[5], Instruction::Workdir("/data/w".into()));
    assert_eq!(i[6], Instruction::StopSignal("SIGTERM".into()));
    let Instruction::Copy(c) = &i[7] else {
        panic!()
    };
    assert_eq!(
        (c.sources.clone(), c.dest.as_str()),
        (vec!["/data/a".to_string()], "/data/b/")
    );
    assert_eq!(
        (c.chown.as_deref(), c.from.as_deref()),
        (Some("app"), Some("build"))
    );
    let Instruction::Add(a) = &i[8] else { panic!() };
    assert_eq!(a.dest, "/opt/app");
    let Instruction::Copy(h) = &i[9] else {
        panic!()
    };
    assert_eq!(h.dest, "/etc/app/");
    assert_eq!(h.inline[0].heredoc.content, "home=/data\n");
    assert_eq!(h.inline[1].heredoc.content, "home=$d\n");
    let Instruction::Run(run) = &i[10] else {
        panic!()
    };
    assert_eq!(run.mounts[0].target.as_deref(), Some("/data/cache"));
    assert_eq!(run.command, CommandLine::Shell("echo $d".into()));
    assert_eq!(
        i[11],
        Instruction::Cmd(CommandLine::Shell("echo $d".into()))
    );
    assert_eq!(
        i[12],
        Instruction::Entrypoint(CommandLine::Exec(vec!["echo".into(), "$d".into()]))
    );
}

#[test]
fn expansion_errors_carry_the_line() {
    let df = parse("FROM x\n\nWORKDIR ${dir:?need a dir}\n");
    let mut scope = Scope::global(&df, &args(&[])).unwrap().for_stage(&[]);
    let e = scope.step(&df.file, &df.stages[0].steps[0]).unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(
        e.message,
        "failed to process \"${dir:?need a dir}\": dir: need a dir"
    );
}

#[test]
fn image_env_is_inherited() {
    let df = parse("FROM x\nENV PATH=$PATH:/app/bin\n");
    let base = pairs(&[("PATH", "/usr/bin")]);
    let mut scope = Scope::global(&df, &args(&[])).unwrap().for_stage(&base);
    scope.step(&df.file, &df.stages[0].steps[0]).unwrap();
    assert_eq!(env_of(&scope), pairs(&[("PATH", "/usr/bin:/app/bin")]));
}

const MULTI: &str = "ARG BASE=alpine
FROM $BASE AS base
FROM scratch AS tools
FROM base AS deps
RUN --mount=type=bind,from=tools,target=/t true
FROM golang AS build
COPY --from=deps /a /a
COPY --from=0 /b /b
COPY --from=nginx:latest /c /c
FROM build AS test
FROM alpine AS final
COPY --from=build /app /app
FROM later AS unused
FROM x AS later
";

#[test]
fn stage_graph_and_targets() {
    let df = parse(MULTI);
    let g = StageGraph::build(&df, &args(&[])).unwrap();
    assert_eq!(g.bases[0], StageRef::Image("alpine".into()));
    assert_eq!(g.bases[1], StageRef::Scratch);
    assert_eq!(g.bases[2], StageRef::Stage(0));
    assert_eq!(g.sources[2], [StageRef::Stage(1)]);
    // FROM a name defined only later is an image, as in Docker.
    assert_eq!(g.bases[6], StageRef::Image("later".into()));
    assert_eq!(
        g.sources[3],
        [
            StageRef::Stage(2),
            StageRef::Stage(0),
            StageRef::Image("nginx:latest".into())
        ]
    );
    let final_stage = df.target(None).unwrap().index;
    assert_eq!(final_stage, 7);
    let fin = df.target(Some("FINAL")).unwrap().index;
    assert_eq!(g.build_order(fin), [0, 1, 2, 3, 5]);
    assert_eq!(g.waves(fin), vec![vec![0, 1], vec![2], vec![3], vec![5]]);
    let test = df.target(Some("test")).unwrap().index;
    assert_eq!(g.waves(test), vec![vec![0, 1], vec![2], vec![3], vec![4]]);
    assert_eq!(
        df.target(Some("nope")).unwrap_err().message,
        "target stage \"nope\" could not be found"
    );
}

#[test]
fn independent_stages_share_a_wave() {
    let df = parse("FROM a AS x\nFROM b AS y\nFROM c\nCOPY --from=x / /\nCOPY --from=y / /\n");
    let g = StageGraph::build(&df, &args(&[])).unwrap();
    assert_eq!(g.waves(2), vec![vec![0, 1], vec![2]]);
}

#[test]
fn bad_from_references() {
    for (src, line, msg) in [
        (
            "FROM a\nCOPY --from=b / /\nFROM c AS b\n",
            2,
            "cannot copy from stage \"b\", it needs to be defined before current stage \"0\"",
        ),
        (
            "FROM a AS s\nCOPY --from=s / /\n",
            2,
            "cannot copy from stage \"s\", it needs to be defined before current stage \"s\"",
        ),
        ("FROM a\nCOPY --from=7 / /\n", 2, "invalid stage index 7"),
        (
            "FROM a\nARG X=y\nCOPY --from=$X / /\n",
            3,
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
        ),
        (
            "FROM ${X:?nobase}\n",
            1,
            "failed to process \"${X:?nobase}\": X: nobase",
        ),
    ] {
        let df = parse(src);
        let e = StageGraph::build(&df, &args(&[])).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (line, msg), "{src}");
    }
}

#[test]
fn arg_defaults_resolve_in_order_and_build_args_skip_them() {
    let src = "FROM x\nARG a=1 b=${a}2 c=${unset:?need_c}\n";
    let df = parse(src);
    let step = &df.stages[0].steps[0];

    let mut scope = Scope::global(&df, &args(&[])).unwrap().for_stage(&[]);
    let e = scope.step(&df.file, step).unwrap_err();
    assert_eq!(
        e.message,
        "failed to process \"${unset:?need_c}\": unset: need_c"
    );

    // A build arg replaces the default without evaluating it.
    let mut scope = Scope::global(&df, &args(&[("c", "given")]))
        .unwrap()
        .for_stage(&[]);
    let Instruction::Arg(decls) = scope.step(&df.file, step).unwrap() else {
        panic!()
    };
    let resolved: Vec<(&str, Option<&str>)> = decls
        .iter()
        .map(|d| (d.name.as_str(), d.default.as_deref()))
        .collect();
    assert_eq!(
        resolved,
        [("a", Some("1")), ("b", Some("12")), ("c", Some("given"))]
    );
    assert!(scope.declared_args().contains("c"));
}

#[test]
fn arg_names_are_not_expanded() {
    let r = run("FROM x\nARG n=v\nARG $n=1\nENV x=${v:-unset}\n", &args(&[]));
    assert_eq!(env_of(&r[0].1), pairs(&[("x", "unset")]));
    assert_eq!(r[0].1.args(), pairs(&[("n", "v"), ("$n", "1")]));
}

#[test]
fn predefined_args_are_never_unused() {
    use berth_dockerfile::is_predefined_arg;
    for name in [
        "HTTP_PROXY",
        "no_proxy",
        "TARGETARCH",
        "BUILDKIT_INLINE_CACHE",
        "SOURCE_DATE_EPOCH",
    ] {
        assert!(is_predefined_arg(name), "{name}");
    }
    assert!(!is_predefined_arg("VERSION"));
}

#[test]
fn mount_values_expand_when_the_step_runs() {
    let src = "FROM x\nARG T=cache D=/root/.cache\nRUN --mount=type=$T,target=$D,id=${T}-1 --mount=type=bind,target=/b make\n";
    let df = parse(src);
    let Instruction::Run(parsed) = &df.stages[0].steps[1].instruction else {
        panic!()
    };
    // Before expansion only the spec without variables is parsed.
    assert_eq!(parsed.mount_specs.len(), 2);
    assert_eq!(parsed.mounts.len(), 1);
    let r = run(src, &args(&[]));
    let Instruction::Run(run) = &r[0].0[1] else {
        panic!()
    };
    let m = &run.mounts[0];
    assert_eq!(m.kind, berth_dockerfile::MountType::Cache);
    assert_eq!(
        (m.target.as_deref(), m.id.as_deref()),
        (Some("/root/.cache"), Some("cache-1"))
    );
    assert!(run.mounts[1].readonly);

    let df = parse("FROM x\nRUN --mount=type=${T:-nope},target=/x a\n");
    let mut scope = Scope::global(&df, &args(&[])).unwrap().for_stage(&[]);
    let e = scope.step(&df.file, &df.stages[0].steps[0]).unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "unsupported mount type \"nope\"")
    );
}

/// A realistic multi-stage file, driven the way the builder will drive it.
#[test]
fn walkthrough_of_a_realistic_dockerfile() {
    let src = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
RUN go build -ldflags "-X main.version=${VERSION}" -o /out/app .

FROM alpine:3.20
RUN apk add --no-cache ca-certificates
COPY --from=build /out/app /usr/local/bin/app
ENV APP_HOME=/srv/app PATH=/usr/local/bin:$PATH
USER 65534:65534
EXPOSE 8080
HEALTHCHECK --interval=30s CMD ["app", "health"]
ENTRYPOINT ["app"]
CMD ["serve"]
"#;
    let df = parse(src);
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    let ba = args(&[("VERSION", "1.2.3")]);
    let graph = StageGraph::build(&df, &ba).unwrap();
    let target = df.target(None).unwrap().index;
    assert_eq!(graph.waves(target), vec![vec![0], vec![1]]);

    let global = Scope::global(&df, &ba).unwrap();
    let base = global.expand_from(&df.stages()[0].from).unwrap();
    assert_eq!(base.image, "golang:1.22-alpine");

    let mut build = global.for_stage(&[]);
    for step in &df.stages()[0].steps {
        build.step(&df.file, step).unwrap();
    }
    assert_eq!(build.args(), pairs(&[("VERSION", "1.2.3")]));

    let mut fin = global.for_stage(&pairs(&[("PATH", "/usr/bin:/bin")]));
    let out: Vec<Instruction> = df.stages()[1]
        .steps
        .iter()
        .map(|s| fin.step(&df.file, s).unwrap())
        .collect();
    assert_eq!(
        env_of(&fin),
        pairs(&[
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("APP_HOME", "/srv/app")
        ])
    );
    assert_eq!(out[3], Instruction::User("65534:65534".into()));
}
