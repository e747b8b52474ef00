//! Parsing: directives, continuations, comments, heredocs, every instruction and form, and
//! error messages with line numbers.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use berth_dockerfile::{
    CommandLine, Dockerfile, Healthcheck, Instruction, KeyValue, MountType, NetworkMode,
    ParseError, Sharing,
};

fn parse(src: &str) -> Dockerfile {
    match Dockerfile::parse("Dockerfile", src.as_bytes()) {
        Ok(df) => df,
        Err(e) => panic!("{src:?}: {e}"),
    }
}

fn err(src: &str) -> ParseError {
    match Dockerfile::parse("Dockerfile", src.as_bytes()) {
        Ok(df) => panic!("{src:?} parsed: {df:?}"),
        Err(e) => e,
    }
}

/// The instructions of the only stage of `FROM x\n<body>`.
fn body(body: &str) -> Vec<Instruction> {
    let df = parse(&format!("FROM x\n{body}"));
    df.stages[0]
        .steps
        .iter()
        .map(|s| s.instruction.clone())
        .collect()
}

fn one(line: &str) -> Instruction {
    let mut v = body(line);
    assert_eq!(v.len(), 1, "{line:?}: {v:?}");
    v.remove(0)
}

fn shell(s: &str) -> CommandLine {
    CommandLine::Shell(s.into())
}

fn exec(v: &[&str]) -> CommandLine {
    CommandLine::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn kv(k: &str, v: &str, legacy: bool) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
        legacy,
    }
}

#[test]
fn directives_only_at_the_top() {
    let df = parse("# syntax=docker/dockerfile:1\n#ESCAPE = `\n# check=skip=all\nFROM x\n");
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.directives.escape, '`');
    assert_eq!(df.directives.check.as_deref(), Some("skip=all"));

    // After a comment, a blank line or an instruction, `# escape=` is just a comment.
    for src in [
        "# hello\n# escape=`\nFROM x\n",
        "\n# escape=`\nFROM x\n",
        "FROM x\n# escape=`\n",
        "# unknown=1\n# escape=`\nFROM x\n",
    ] {
        assert_eq!(parse(src).directives.escape, '\\', "{src:?}");
    }
}

#[test]
fn directive_errors() {
    let e = err("# escape=x\nFROM x\n");
    assert_eq!(e.message, "invalid escape token 'x' does not match ` or \\");
    assert_eq!(e.line, 1);
    let e = err("# syntax=a\n# syntax=b\nFROM x\n");
    assert_eq!(e.message, "only one syntax parser directive can be used");
    assert_eq!(e.line, 2);
}

#[test]
fn backtick_escape_continues_lines() {
    let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\n");
    let Instruction::Run(run) = &df.stages[0].steps[0].instruction else {
        panic!()
    };
    assert_eq!(run.command, shell("dir c:\\   && echo hi"));
}

#[test]
fn continuations_skip_comments_and_blank_lines() {
    let src =
        "FROM x\nRUN echo a \\\n# a comment\n    # indented comment\n\n  b \\  \t\n c\nUSER u\n";
    let df = parse(src);
    let steps = &df.stages[0].steps;
    assert_eq!(
        steps[0].instruction,
        Instruction::Run(run_shell("echo a   b  c"))
    );
    assert_eq!((steps[0].line, steps[0].end_line), (2, 7));
    assert_eq!(steps[1].line, 8);
}

fn run_shell(s: &str) -> berth_dockerfile::Run {
    berth_dockerfile::Run {
        command: shell(s),
        heredocs: vec![],
        mount_specs: vec![],
        mounts: vec![],
        network: None,
        security: None,
        devices: vec![],
    }
}

#[test]
fn escaped_escape_is_not_a_continuation() {
    assert_eq!(
        body("RUN echo a\\\\\nUSER u"),
        vec![
            Instruction::Run(run_shell("echo a\\\\")),
            Instruction::User("u".into())
        ]
    );
}

#[test]
fn continuation_at_eof() {
    // Docker keeps what it has; an instruction left without arguments is an error.
    assert_eq!(
        one("RUN echo hi \\"),
        Instruction::Run(run_shell("echo hi"))
    );
    let e = err("FROM x\nUSER \\\n");
    assert_eq!(e.message, "USER requires exactly one argument");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.docker_message(),
        "dockerfile parse error on line 2: USER requires exactly one argument"
    );
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: USER requires exactly one argument"
    );
}

#[test]
fn keywords_are_case_insensitive_and_comments_ignored() {
    let df = parse("\u{feff}# c\nfrom x AS Build\n  # c2\nrun echo\nWorkDir /w\n");
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].steps.len(), 2);
}

#[test]
fn exec_and_shell_forms() {
    let cases: Vec<(&str, Instruction)> = vec![
        (r#"CMD ["a", "b c"]"#, Instruction::Cmd(exec(&["a", "b c"]))),
        ("CMD a b", Instruction::Cmd(shell("a b"))),
        ("CMD []", Instruction::Cmd(exec(&[]))),
        // Not JSON: Docker silently takes the shell form.
        ("CMD [a, b]", Instruction::Cmd(shell("[a, b]"))),
        (r#"CMD ["a" ] x"#, Instruction::Cmd(shell(r#"["a" ] x"#))),
        (
            r#"ENTRYPOINT ["/bin/sh","-c"]"#,
            Instruction::Entrypoint(exec(&["/bin/sh", "-c"])),
        ),
        (
            "ENTRYPOINT top -b",
            Instruction::Entrypoint(shell("top -b")),
        ),
        (
            r#"RUN ["echo", "\u0041"]"#,
            Instruction::Run(berth_dockerfile::Run {
                command: exec(&["echo", "A"]),
                ..run_shell("")
            }),
        ),
        (
            r#"SHELL ["powershell", "-command"]"#,
            Instruction::Shell(vec!["powershell".into(), "-command".into()]),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(one(line), want, "{line}");
    }
    let e = err("FROM x\nCMD [\"a\", 1]\n");
    assert_eq!(
        e.message,
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
}

#[test]
fn shell_needs_json() {
    let e = err("FROM x\n\nSHELL /bin/sh -c\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "SHELL requires the arguments to be in JSON form")
    );
    assert_eq!(
        err("FROM x\nSHELL []\n").message,
        "SHELL requires at least one argument"
    );
}

#[test]
fn env_and_label_forms() {
    let cases: Vec<(&str, Vec<KeyValue>)> = vec![
        (
            "ENV a=1 b=2",
            vec![kv("a", "1", false), kv("b", "2", false)],
        ),
        (
            r#"ENV a="x y" b=c\ d"#,
            vec![kv("a", "\"x y\"", false), kv("b", "c\\ d", false)],
        ),
        ("ENV a b c  d", vec![kv("a", "b c  d", true)]),
        ("ENV a=", vec![kv("a", "", false)]),
        (
            "ENV a=1 \\\n    b=2",
            vec![kv("a", "1", false), kv("b", "2", false)],
        ),
    ];
    for (line, want) in cases {
        assert_eq!(one(line), Instruction::Env(want), "{line}");
    }
    assert_eq!(
        one(r#"LABEL "com.example.a"="v 1" b=2"#),
        Instruction::Label(vec![
            kv("\"com.example.a\"", "\"v 1\"", false),
            kv("b", "2", false)
        ])
    );
    assert_eq!(
        one("LABEL k some value"),
        Instruction::Label(vec![kv("k", "some value", true)])
    );
    let e = err("FROM x\nENV a=1 b\n");
    assert_eq!(
        e.message,
        "Syntax error - can't find = in \"b\". Must be of the form: name=value"
    );
    assert_eq!(
        err("FROM x\nENV a\n").message,
        "ENV must have two arguments"
    );
    assert_eq!(
        err("FROM x\nENV\n").message,
        "ENV requires at least one argument"
    );
    assert_eq!(
        err("FROM x\nENV =1\n").message,
        "ENV names can not be blank"
    );
    assert_eq!(
        err("FROM x\nLABEL\n").message,
        "LABEL requires at least one argument"
    );
}

#[test]
fn simple_instructions() {
    let cases: Vec<(&str, Instruction)> = vec![
        (
            "MAINTAINER Jane <j@x>",
            Instruction::Maintainer("Jane <j@x>".into()),
        ),
        ("USER app:app", Instruction::User("app:app".into())),
        ("WORKDIR /a b", Instruction::Workdir("/a b".into())),
        (
            "STOPSIGNAL SIGKILL",
            Instruction::StopSignal("SIGKILL".into()),
        ),
        (
            "EXPOSE 80 443/tcp  53/udp",
            Instruction::Expose(vec!["80".into(), "443/tcp".into(), "53/udp".into()]),
        ),
        (
            "VOLUME /a /b",
            Instruction::Volume(vec!["/a".into(), "/b".into()]),
        ),
        (
            r#"VOLUME ["/a", "/b c"]"#,
            Instruction::Volume(vec!["/a".into(), "/b c".into()]),
        ),
    ];
    for (line, want) in cases {
        assert_eq!(one(line), want, "{line}");
    }
    for (line, msg) in [
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        (
            r#"VOLUME [""]"#,
            "VOLUME specified can not be an empty string",
        ),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("USER --foo=1 x", "unknown flag: --foo"),
    ] {
        assert_eq!(err(&format!("FROM x\n{line}\n")).message, msg, "{line}");
    }
}

#[test]
fn from_forms() {
    let df = parse(
        "ARG V=1\nFROM --platform=$BUILDPLATFORM img:${V} AS b1\nFROM b1\nFROM scratch as Last\n",
    );
    assert_eq!(df.meta_args.len(), 1);
    let s = &df.stages;
    assert_eq!(s[0].from.image, "img:${V}");
    assert_eq!(s[0].from.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s[0].name.as_deref(), Some("b1"));
    assert_eq!((s[1].index, s[1].name.as_deref()), (1, None));
    assert_eq!(s[2].name.as_deref(), Some("last"));
    assert_eq!(s[2].line, 4);
    for (src, msg) in [
        ("FROM", "FROM requires either one or three arguments"),
        ("FROM a b", "FROM requires either one or three arguments"),
        (
            "FROM a AS 1x",
            "invalid name for build stage: \"1x\", name can't start with a number or contain symbols",
        ),
        ("FROM --foo a", "unknown flag: --foo"),
        ("RUN x", "no build stage in current context"),
        ("ARG a", "dockerfile contains no stages to build"),
        ("", "file with no instructions"),
        ("# only a comment\n", "file with no instructions"),
    ] {
        assert_eq!(err(src).message, msg, "{src:?}");
    }
}

#[test]
fn arg_forms() {
    let Instruction::Arg(a) = one("ARG a b=2 c=\"x y\"") else {
        panic!()
    };
    let got: Vec<(&str, Option<&str>)> = a
        .iter()
        .map(|d| (d.name.as_str(), d.default.as_deref()))
        .collect();
    assert_eq!(got, [("a", None), ("b", Some("2")), ("c", Some("\"x y\""))]);
    assert_eq!(
        err("FROM x\nARG\n").message,
        "ARG requires at least one argument"
    );
    assert_eq!(
        err("FROM x\nARG =1\n").message,
        "ARG names can not be blank"
    );
}

#[test]
fn copy_and_add_flags() {
    let Instruction::Copy(c) = one("COPY --from=build --chown=1:2 --chmod=0755 --link a b /dst/")
    else {
        panic!()
    };
    assert_eq!(c.sources, ["a", "b"]);
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link);
    let Instruction::Copy(c) = one(r#"COPY ["a b", "/d"]"#) else {
        panic!()
    };
    assert_eq!(
        (c.sources, c.dest, c.json),
        (vec!["a b".to_string()], "/d".to_string(), true)
    );
    let Instruction::Add(a) =
        one("ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y /z")
    else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert!(a.keep_git_dir && !a.link);
    for (line, msg) in [
        (
            "COPY a",
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
        (
            "ADD a",
            "ADD requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
        ("COPY --foo a b", "unknown flag: --foo"),
        ("ADD --from=x a b", "unknown flag: --from"),
        ("COPY --from a b", "missing a value on flag: --from"),
        ("COPY --link= a b", "missing a value on flag: --link"),
        (
            "COPY --link=maybe a b",
            "expecting boolean value for flag --link, not: maybe",
        ),
        (
            "COPY --from=a --from=b a b",
            "duplicate flag specified: --from",
        ),
        (
            "COPY a <<EOF\nx\nEOF",
            "COPY cannot accept a heredoc as a destination",
        ),
    ] {
        assert_eq!(err(&format!("FROM x\n{line}\n")).message, msg, "{line}");
    }
}

#[test]
fn run_flags_and_mounts() {
    let Instruction::Run(r) = one(
        "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked \\\n --mount=type=bind,source=/src,target=/s,from=build,rw \\\n --mount=type=tmpfs,target=/tmp --mount=type=secret,id=tok,required \\\n --network=none --security=insecure make",
    ) else {
        panic!()
    };
    assert_eq!(r.command, shell("make"));
    assert_eq!(r.network, Some(NetworkMode::None));
    assert_eq!(r.security.as_deref(), Some("insecure"));
    let m = &r.mounts;
    assert_eq!(
        (m[0].kind, m[0].target.as_deref(), m[0].id.as_deref()),
        (MountType::Cache, Some("/root/.cache"), Some("pip"))
    );
    assert_eq!(m[0].sharing, Some(Sharing::Locked));
    assert!(!m[0].readonly);
    assert_eq!(
        (m[1].kind, m[1].from.as_deref(), m[1].readonly),
        (MountType::Bind, Some("build"), false)
    );
    assert_eq!(m[1].target.as_deref(), Some("/s"));
    assert_eq!((m[2].kind, m[2].readonly), (MountType::Tmpfs, false));
    assert!(m[3].required && m[3].kind == MountType::Secret && m[3].readonly);
    for (line, msg) in [
        (
            "RUN --mount=type=nope,target=/x a",
            "unsupported mount type \"nope\"",
        ),
        (
            "RUN --mount=target=/x,bogus=1 a",
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            "RUN --mount=type=cache,target=/x,sharing=all a",
            "unsupported sharing value \"all\"",
        ),
        (
            "RUN --mount=target=/x,sharing=locked a",
            "invalid cache sharing set for bind mount",
        ),
        (
            "RUN --mount=target=/x,required a",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "RUN --mount=target=/x,uid=1 a",
            "uid not allowed for \"bind\" type mounts",
        ),
        (
            "RUN --mount=type=cache,target=/x,mode=9 a",
            "invalid value 9 for mode",
        ),
        (
            "RUN --mount=target=/x,ro=maybe a",
            "invalid value for ro: maybe",
        ),
        (
            "RUN --mount=target=/x,size=1m a",
            "unexpected key 'size' for mount type 'bind'",
        ),
        (
            "RUN --mount=type=secret,id=a,from=b a",
            "secret mount should not have a from",
        ),
        (
            "RUN --mount=type=secret a",
            "invalid secret mount. one of source, target required",
        ),
        (
            "RUN --mount=target=/x,from=$STAGE a",
            "'from' doesn't support variable expansion, define alias stage instead",
        ),
        (
            "RUN --mount=target a",
            "invalid field 'target' must be a key=value pair",
        ),
        (
            "RUN --network=bridge2 a",
            "invalid network mode \"bridge2\"",
        ),
        ("RUN --foo a", "unknown flag: --foo"),
    ] {
        assert_eq!(err(&format!("FROM x\n{line}\n")).message, msg, "{line}");
    }
}

#[test]
fn heredocs() {
    let df = parse("FROM x\nRUN <<EOF\necho $HOME\n  echo two\nEOF\nUSER u\n");
    let steps = &df.stages[0].steps;
    let Instruction::Run(r) = &steps[0].instruction else {
        panic!()
    };
    assert_eq!(r.command, shell("<<EOF"));
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(r.heredocs[0].content, "echo $HOME\n  echo two\n");
    assert!(r.heredocs[0].expand && !r.heredocs[0].chomp);
    assert_eq!((steps[0].line, steps[0].end_line, steps[1].line), (2, 5, 6));

    // `<<-` strips leading tabs from the body and the terminator.
    let Instruction::Run(r) = one("RUN <<-EOT bash\n\techo a\n\t\techo b\n\tEOT") else {
        panic!()
    };
    assert!(r.heredocs[0].chomp);
    assert_eq!(r.heredocs[0].data(), "echo a\necho b\n");

    // Quoted delimiters disable expansion; several heredocs on one line are read in order.
    let Instruction::Run(r) = one("RUN <<'A' cat - && cat 3<<\"B\" > /x\nbody a\nA\nbody b\nB")
    else {
        panic!()
    };
    let names: Vec<(&str, bool, Option<u32>)> = r
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.expand, h.fd))
        .collect();
    assert_eq!(names, [("A", false, None), ("B", false, Some(3))]);
    assert_eq!(r.heredocs[1].content, "body b\n");

    // COPY <<EOF /dest: the heredoc is a source.
    let Instruction::Copy(c) = one("COPY <<EOF <<-\"two\" /dest/\nhello\nEOF\n\tworld\n\ttwo")
    else {
        panic!()
    };
    assert!(c.sources.is_empty());
    assert_eq!(c.inline.len(), 2);
    assert_eq!(
        (
            c.inline[0].name.as_str(),
            c.inline[0].heredoc.content.as_str()
        ),
        ("EOF", "hello\n")
    );
    assert_eq!(c.inline[1].heredoc.data(), "world\n");
    assert!(!c.inline[1].heredoc.expand);
    assert_eq!(c.dest, "/dest/");

    // `cat<<EOF` is not a marker for Docker (the word must start with `<<`), nor is JSON form.
    assert_eq!(one("RUN cat<<EOF"), Instruction::Run(run_shell("cat<<EOF")));
    let Instruction::Run(r) = one(r#"RUN ["cat", "<<EOF"]"#) else {
        panic!()
    };
    assert!(r.heredocs.is_empty());

    // ONBUILD carries its trigger's heredocs into the stored expression.
    let Instruction::Onbuild(o) = one("ONBUILD RUN <<EOF\necho hi\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<EOF\necho hi\nEOF");
    let Instruction::Run(r) = *o.trigger else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "echo hi\n");
}

#[test]
fn unterminated_heredoc() {
    let e = err("FROM x\nRUN <<EOF\necho hi\n");
    assert_eq!((e.line, e.message.as_str()), (2, "unterminated heredoc"));
    let e = err("FROM x\nRUN <<A <<B\na\nA\nb\n");
    assert_eq!(
        (e.line, e.end_line, e.message.as_str()),
        (2, 5, "unterminated heredoc")
    );
}

#[test]
fn onbuild_rules() {
    let Instruction::Onbuild(o) = one("onbuild  ADD . /app/src") else {
        panic!()
    };
    assert_eq!(o.expression, "ADD . /app/src");
    assert!(matches!(*o.trigger, Instruction::Add(_)));
    for (line, msg) in [
        (
            "ONBUILD ONBUILD RUN x",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        (
            "ONBUILD maintainer me",
            "MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD FOO x", "unknown instruction: FOO"),
    ] {
        assert_eq!(err(&format!("FROM x\n{line}\n")).message, msg, "{line}");
    }
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    let h = one(
        "HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1",
    );
    assert_eq!(
        h,
        Instruction::Healthcheck(Healthcheck::Cmd {
            test: vec![
                "CMD-SHELL".into(),
                "curl -f http://localhost/ || exit 1".into()
            ],
            interval: Duration::from_secs(300),
            timeout: Duration::from_secs(3),
            start_period: Duration::from_secs(90),
            start_interval: Duration::from_millis(500),
            retries: 3,
        })
    );
    let Instruction::Healthcheck(Healthcheck::Cmd { test, .. }) =
        one(r#"HEALTHCHECK cmd ["/bin/check", "-q"]"#)
    else {
        panic!()
    };
    assert_eq!(test, ["CMD", "/bin/check", "-q"]);
    for (line, msg) in [
        (
            "HEALTHCHECK --interval=5 CMD x",
            "time: missing unit in duration \"5\"",
        ),
        (
            "HEALTHCHECK --interval=abc CMD x",
            "time: invalid duration \"abc\"",
        ),
        (
            "HEALTHCHECK --timeout=1ns CMD x",
            "Interval \"timeout\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --interval=-5s CMD x",
            "Interval \"interval\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD x",
            "--retries cannot be negative (-1)",
        ),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        (
            "HEALTHCHECK RUN x",
            "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
        ),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK --foo=1 CMD x", "unknown flag: --foo"),
    ] {
        let e = err(&format!("FROM x\n{line}\n"));
        assert_eq!((e.line, e.message.as_str()), (2, msg), "{line}");
    }
}

#[test]
fn unknown_instruction_has_line_number() {
    let e = err("FROM x\nRUN a\n\n  FOO bar\n");
    assert_eq!(e.message, "unknown instruction: FOO");
    assert_eq!(e.line, 4);
    assert_eq!(e.file, "Dockerfile");
    let e = Dockerfile::parse("build/Dockerfile.dev", b"FROM x\ncopyy a b\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "build/Dockerfile.dev:2: unknown instruction: copyy"
    );
    assert_eq!(
        berth_errdefs::HasCategory::category(&e),
        berth_errdefs::Category::InvalidParameter
    );
}

#[test]
fn limits() {
    let fits = format!("FROM x\nRUN {}\n", "a".repeat(65_535 - 4));
    assert_eq!(parse(&fits).stages[0].steps.len(), 1);
    let long = format!("FROM x\nRUN {}\n", "a".repeat(65_535 - 3));
    assert_eq!(
        err(&long).message,
        "dockerfile line greater than max allowed size of 65535"
    );
    let huge = vec![b'#'; berth_dockerfile::limits::MAX_DOCKERFILE_BYTES + 1];
    assert_eq!(Dockerfile::parse("Dockerfile", &huge).unwrap_err().line, 0);
    let many = format!("FROM x\n{}", "USER a\n".repeat(10_001));
    assert_eq!(
        err(&many).message,
        "too many instructions in the Dockerfile"
    );
}

#[test]
fn flag_words_and_double_dash() {
    let Instruction::Copy(c) = one("COPY --link -- --weird-name /tmp/") else {
        panic!()
    };
    assert!(c.link);
    assert_eq!(c.sources, ["--weird-name"]);
    let Instruction::Copy(c) = one("COPY -- foo /tmp/") else {
        panic!()
    };
    assert_eq!(c.sources, ["foo"]);
    let Instruction::Copy(c) = one("COPY --chown=\"a b\" x y") else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("a b"));
    assert_eq!(
        err("FROM x\nMAINTAINER --boo joe@example.com\n").message,
        "unknown flag: --boo"
    );
}

#[test]
fn values_keep_their_quotes_and_escapes_until_expansion() {
    let cases: Vec<(&str, &str)> = vec![
        (
            r#"ENV name="value'quote space'value2""#,
            r#""value'quote space'value2""#,
        ),
        (r#"ENV name='a\'b''"#, r#"'a\'b''"#),
        (r#"ENV name="a\"b""#, r#""a\"b""#),
        (
            "ENV name=\"value2a \\\n           value2b\"",
            "\"value2a            value2b\"",
        ),
    ];
    for (line, want) in cases {
        let Instruction::Env(kv) = one(line) else {
            panic!()
        };
        assert_eq!(kv[0].value, want, "{line}");
    }
    // Legacy LABEL/ENV values are the raw rest of the line.
    let Instruction::Label(kv) = one(r#"LABEL maintainer Erik \\Hollensbe <e@h.org>\""#) else {
        panic!()
    };
    assert_eq!(kv[0].value, r#"Erik \\Hollensbe <e@h.org>\""#);
}

#[test]
fn run_scripts_resolve_heredocs_like_buildkit() {
    use berth_dockerfile::RunScript;
    let script = |line: &str| match one(line) {
        Instruction::Run(r) => r.script(),
        other => panic!("{other:?}"),
    };
    assert_eq!(script("RUN echo hi"), RunScript::Shell("echo hi".into()));
    assert_eq!(
        script(r#"RUN ["a", "b"]"#),
        RunScript::Exec(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        script("RUN <<-EOF\n\techo $HOME\n\tEOF"),
        RunScript::Shell("echo $HOME\n".into())
    );
    assert_eq!(
        script("RUN <<run.py\n#!/usr/bin/env python3\nprint(1)\nrun.py"),
        RunScript::File {
            name: "run.py".into(),
            data: "#!/usr/bin/env python3\nprint(1)\n".into()
        }
    );
    assert_eq!(
        script("RUN cat <<A > /a && cat <<-B > /b\none\nA\n\ttwo\n\tB"),
        RunScript::Shell("cat <<A > /a && cat <<-B > /b\none\nA\n\ttwo\nB".into())
    );
}

#[test]
fn json_copy_heredoc_marker_is_an_empty_inline_file() {
    // A Docker quirk kept on purpose: no body is read for JSON form, the source is empty.
    let Instruction::Copy(c) = one(r#"COPY ["<<EOF", "/x"]"#) else {
        panic!()
    };
    assert!(c.sources.is_empty());
    assert_eq!(
        (
            c.inline[0].name.as_str(),
            c.inline[0].heredoc.content.as_str()
        ),
        ("EOF", "")
    );
    assert_eq!(
        err("FROM x\nCOPY [\"a\", \"<<EOF\"]\n").message,
        "COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn run_security_and_device_flags() {
    let Instruction::Run(r) =
        one("RUN --device=vendor.com/gpu=all --network=host --security=sandbox x")
    else {
        panic!()
    };
    assert_eq!(r.devices, ["vendor.com/gpu=all"]);
    assert_eq!(r.network, Some(NetworkMode::Host));
    assert_eq!(
        err("FROM x\nRUN --security=root x\n").message,
        "security \"root\" is not valid"
    );
}
