//! Typed instructions, built from parser nodes with the argument rules and error messages of
//! BuildKit's `instructions` package.

use std::time::Duration;

use crate::duration::parse_go_duration;
use crate::flags::{Flags, Kind};
use crate::mount::{Mount, check_from, parse_mount};
use crate::parser::{Heredoc, Node, parse_heredoc_word};

/// A command given in exec form (`["a","b"]`) or shell form (`a b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// JSON array: run as is, no shell.
    Exec(Vec<String>),
    /// Shell form: the text after the keyword and flags, run with the stage's SHELL.
    Shell(String),
}

impl CommandLine {
    fn from_node(node: &Node) -> CommandLine {
        if node.json {
            CommandLine::Exec(node.args.clone())
        } else {
            CommandLine::Shell(node.args.join(" "))
        }
    }

    /// True for an empty exec form or empty shell text.
    pub fn is_empty(&self) -> bool {
        match self {
            CommandLine::Exec(v) => v.is_empty(),
            CommandLine::Shell(s) => s.is_empty(),
        }
    }
}

/// A `key=value` pair of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, unexpanded (quotes are removed by expansion).
    pub key: String,
    /// The value, unexpanded.
    pub value: String,
    /// Written in the legacy `ENV key value` form.
    pub legacy: bool,
}

/// One name of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The argument's name.
    pub name: String,
    /// Its default (`ARG a=1`), unexpanded; `None` for `ARG a`.
    pub default: Option<String>,
}

/// FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base: an image reference, a stage name, or `scratch` (unexpanded).
    pub image: String,
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    /// `--platform=`.
    pub platform: Option<String>,
}

/// The `--network=` of RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// `default`: the build's network.
    Default,
    /// `none`.
    None,
    /// `host` (needs an entitlement in BuildKit).
    Host,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command; for `RUN <<EOF` alone, the shell text is `<<EOF`.
    pub command: CommandLine,
    /// Heredoc bodies, in the order their markers appear.
    pub heredocs: Vec<Heredoc>,
    /// The `--mount=` values as written.
    pub mount_specs: Vec<String>,
    /// The mounts, parsed. Before [`crate::Scope::step`] this holds only the specs without
    /// `$` (taken literally); after it, every spec with its values expanded.
    pub mounts: Vec<Mount>,
    /// `--network=`.
    pub network: Option<NetworkMode>,
    /// `--security=insecure|sandbox`.
    pub security: Option<String>,
    /// `--device=` values (CDI device requests), as written.
    pub devices: Vec<String>,
}

/// What a RUN executes once its heredocs are resolved (BuildKit's rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Exec form: this argv, no shell.
    Exec(Vec<String>),
    /// Run this text with the stage's SHELL (`/bin/sh -c <text>`).
    Shell(String),
    /// `RUN <<EOF` whose body starts with `#!`: write `data` to an executable file called
    /// `name` and run that file directly.
    File {
        /// The file name (the heredoc delimiter).
        name: String,
        /// The script, `<<-` tabs already stripped.
        data: String,
    },
}

impl Run {
    /// The command to execute. A RUN that is just one heredoc runs the body itself (as a file
    /// when it has a shebang); otherwise the line and the bodies are handed to the shell, which
    /// does its own heredoc (and variable) processing.
    pub fn script(&self) -> RunScript {
        let text = match &self.command {
            CommandLine::Exec(argv) => return RunScript::Exec(argv.clone()),
            CommandLine::Shell(text) => text,
        };
        let Some(first) = self.heredocs.first() else {
            return RunScript::Shell(text.clone());
        };
        if parse_heredoc_word(text).is_some() {
            let data = first.data();
            if data.starts_with("#!") {
                return RunScript::File {
                    name: first.name.clone(),
                    data,
                };
            }
            return RunScript::Shell(data);
        }
        let mut script = text.clone();
        for h in &self.heredocs {
            script.push('\n');
            script.push_str(&h.content);
            script.push_str(&h.name);
        }
        RunScript::Shell(script)
    }
}

/// A source of COPY/ADD given inline by a heredoc (`COPY <<EOF /dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    /// The file name: the heredoc delimiter.
    pub name: String,
    /// The heredoc, as parsed; use [`Heredoc::data`] for the bytes to write.
    pub heredoc: Heredoc,
}

/// COPY and ADD (the fields only one of them accepts stay at their defaults on the other).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    /// Source paths, URLs (ADD) or globs, unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub inline: Vec<InlineSource>,
    /// Destination, unexpanded.
    pub dest: String,
    /// Written in JSON form.
    pub json: bool,
    /// COPY `--from=` (stage name, stage index or image).
    pub from: Option<String>,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// COPY `--parents`.
    pub parents: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// ADD `--checksum=`.
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD `--unpack` (`None`: Docker's default, unpack local archives only).
    pub unpack: Option<bool>,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check (config `Test: ["NONE"]`).
    None,
    /// `HEALTHCHECK [flags] CMD …`.
    Cmd {
        /// The config's `Test`: `["CMD", …]` for exec form, `["CMD-SHELL", text]` for shell.
        test: Vec<String>,
        /// `--interval` (zero: inherit/default).
        interval: Duration,
        /// `--timeout`.
        timeout: Duration,
        /// `--start-period`.
        start_period: Duration,
        /// `--start-interval`.
        start_interval: Duration,
        /// `--retries` (0: default).
        retries: u32,
    },
}

/// ONBUILD: the trigger text stored in the image, and its parsed form (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as Docker stores it in the image config (`RUN echo hi`), heredocs appended.
    pub expression: String,
    /// The trigger, parsed.
    pub trigger: Box<Instruction>,
}

/// One Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM`.
    From(From),
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(CommandLine),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `SHELL` (JSON form only).
    Shell(Vec<String>),
    /// `LABEL`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER`.
    Maintainer(String),
    /// `EXPOSE`, ports unexpanded.
    Expose(Vec<String>),
    /// `ENV`.
    Env(Vec<KeyValue>),
    /// `ADD`.
    Add(Copy),
    /// `COPY`.
    Copy(Copy),
    /// `VOLUME`.
    Volume(Vec<String>),
    /// `USER`.
    User(String),
    /// `WORKDIR`.
    Workdir(String),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `ONBUILD`.
    Onbuild(Onbuild),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
}

impl Instruction {
    /// The keyword in upper case (`COPY`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

/// Types one node (Docker's `ParseInstruction`).
pub(crate) fn from_node(node: &Node) -> Result<Instruction, String> {
    let kw = node.keyword.to_ascii_uppercase();
    let inst = match kw.as_str() {
        "FROM" => Instruction::From(parse_from(node)?),
        "RUN" => Instruction::Run(parse_run(node)?),
        "CMD" => Instruction::Cmd(simple_cmd(node)?),
        "ENTRYPOINT" => Instruction::Entrypoint(simple_cmd(node)?),
        "SHELL" => Instruction::Shell(parse_shell(node)?),
        "LABEL" => Instruction::Label(parse_kvps(node, "LABEL")?),
        "ENV" => Instruction::Env(parse_kvps(node, "ENV")?),
        "MAINTAINER" => Instruction::Maintainer(single(node, "MAINTAINER")?),
        "USER" => Instruction::User(single(node, "USER")?),
        "WORKDIR" => Instruction::Workdir(single(node, "WORKDIR")?),
        "STOPSIGNAL" => Instruction::StopSignal(stopsignal(node)?),
        "EXPOSE" => Instruction::Expose(non_empty_list(node, "EXPOSE")?),
        "VOLUME" => Instruction::Volume(parse_volume(node)?),
        "ADD" => Instruction::Add(parse_copy(node, true)?),
        "COPY" => Instruction::Copy(parse_copy(node, false)?),
        "ARG" => Instruction::Arg(parse_arg(node)?),
        "ONBUILD" => Instruction::Onbuild(parse_onbuild(node)?),
        "HEALTHCHECK" => Instruction::Healthcheck(parse_healthcheck(node)?),
        _ => return Err(format!("unknown instruction: {}", node.keyword)),
    };
    Ok(inst)
}

fn no_flags(node: &Node) -> Result<(), String> {
    Flags::parse(&node.flags, &[]).map(|_| ())
}

fn parse_from(node: &Node) -> Result<From, String> {
    let flags = Flags::parse(&node.flags, &[("platform", Kind::Str)])?;
    let args = &node.args;
    let name = match args.len() {
        3 if args[1].eq_ignore_ascii_case("as") => Some(stage_name(&args[2])?),
        1 => None,
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    Ok(From {
        image: args[0].clone(),
        name,
        platform: flags.string("platform"),
    })
}

/// Stage names are lowercased and must match `^[a-z][a-z0-9-_.]*$`.
fn stage_name(raw: &str) -> Result<String, String> {
    let name = raw.to_ascii_lowercase();
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !ok {
        return Err(format!(
            "invalid name for build stage: {raw:?}, name can't start with a number or contain symbols"
        ));
    }
    Ok(name)
}

fn parse_run(node: &Node) -> Result<Run, String> {
    let spec = [
        ("mount", Kind::Strings),
        ("network", Kind::Str),
        ("security", Kind::Str),
        ("device", Kind::Strings),
    ];
    let flags = Flags::parse(&node.flags, &spec)?;
    let mount_specs = flags.strings("mount");
    let mut mounts = Vec::new();
    for spec in &mount_specs {
        check_from(spec)?;
        if !spec.contains('$') {
            mounts.push(parse_mount(spec, &|v| Ok(v.to_string()))?);
        }
    }
    let network = match flags.string("network").as_deref() {
        None => None,
        Some("default") => Some(NetworkMode::Default),
        Some("none") => Some(NetworkMode::None),
        Some("host") => Some(NetworkMode::Host),
        Some(other) => return Err(format!("invalid network mode {other:?}")),
    };
    let security = flags.string("security");
    if let Some(s) = &security
        && s != "insecure"
        && s != "sandbox"
    {
        return Err(format!("security {s:?} is not valid"));
    }
    Ok(Run {
        command: CommandLine::from_node(node),
        heredocs: node.heredocs.clone(),
        mount_specs,
        mounts,
        network,
        security,
        devices: flags.strings("device"),
    })
}

fn simple_cmd(node: &Node) -> Result<CommandLine, String> {
    no_flags(node)?;
    Ok(CommandLine::from_node(node))
}

fn parse_shell(node: &Node) -> Result<Vec<String>, String> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(at_least_one("SHELL"));
    }
    if !node.json {
        return Err("SHELL requires the arguments to be in JSON form".into());
    }
    Ok(node.args.clone())
}

fn parse_kvps(node: &Node, cmd: &str) -> Result<Vec<KeyValue>, String> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(at_least_one(cmd));
    }
    node.args
        .chunks(3)
        .map(|c| match c {
            [k, _, _] if k.is_empty() => Err(format!("{cmd} names can not be blank")),
            [k, v, d] => Ok(KeyValue {
                key: k.clone(),
                value: v.clone(),
                legacy: d.is_empty(),
            }),
            _ => Err(format!("Bad input to {cmd}, too many arguments")),
        })
        .collect()
}

fn single(node: &Node, cmd: &str) -> Result<String, String> {
    if node.args.len() != 1 {
        return Err(exactly_one(cmd));
    }
    no_flags(node)?;
    Ok(node.args[0].clone())
}

/// STOPSIGNAL: Docker does not look at its flags at all.
fn stopsignal(node: &Node) -> Result<String, String> {
    match node.args.as_slice() {
        [sig] => Ok(sig.clone()),
        _ => Err(exactly_one("STOPSIGNAL")),
    }
}

fn non_empty_list(node: &Node, cmd: &str) -> Result<Vec<String>, String> {
    if node.args.is_empty() {
        return Err(at_least_one(cmd));
    }
    no_flags(node)?;
    Ok(node.args.clone())
}

fn parse_volume(node: &Node) -> Result<Vec<String>, String> {
    let list = non_empty_list(node, "VOLUME")?;
    list.into_iter()
        .map(|v| {
            let v = v.trim().to_string();
            if v.is_empty() {
                Err("VOLUME specified can not be an empty string".to_string())
            } else {
                Ok(v)
            }
        })
        .collect()
}

fn parse_copy(node: &Node, add: bool) -> Result<Copy, String> {
    let cmd = if add { "ADD" } else { "COPY" };
    if node.args.len() < 2 {
        return Err(format!(
            "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let flags = if add {
        let spec = [
            ("chown", Kind::Str),
            ("chmod", Kind::Str),
            ("link", Kind::Bool),
            ("keep-git-dir", Kind::Bool),
            ("checksum", Kind::Str),
            ("unpack", Kind::Bool),
            ("exclude", Kind::Strings),
        ];
        Flags::parse(&node.flags, &spec)?
    } else {
        let spec = [
            ("chown", Kind::Str),
            ("from", Kind::Str),
            ("chmod", Kind::Str),
            ("link", Kind::Bool),
            ("exclude", Kind::Strings),
            ("parents", Kind::Bool),
        ];
        Flags::parse(&node.flags, &spec)?
    };
    let (srcs, dest) = node.args.split_at(node.args.len() - 1);
    let dest = dest[0].clone();
    // Docker looks for markers in JSON form too, where no body was read: `["<<EOF", "/x"]`
    // copies an empty file named EOF. Kept for fidelity.
    if parse_heredoc_word(&dest).is_some() {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut out = Copy {
        dest,
        json: node.json,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.strings("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.opt_bool("unpack"),
        ..Copy::default()
    };
    for src in srcs {
        match parse_heredoc_word(src) {
            Some(marker) => out.inline.push(inline_source(node, marker)),
            None => out.sources.push(src.clone()),
        }
    }
    Ok(out)
}

fn inline_source(node: &Node, marker: Heredoc) -> InlineSource {
    let mut heredoc = node
        .heredocs
        .iter()
        .find(|h| h.name == marker.name)
        .cloned()
        .unwrap_or_else(|| marker.clone());
    // The marker at this position decides chomping and expansion (Docker looks the body up by
    // name, so two markers with the same name share one body).
    heredoc.chomp = marker.chomp;
    heredoc.expand = marker.expand;
    InlineSource {
        name: marker.name,
        heredoc,
    }
}

fn parse_arg(node: &Node) -> Result<Vec<ArgDecl>, String> {
    if node.args.is_empty() {
        return Err(at_least_one("ARG"));
    }
    no_flags(node)?;
    node.args
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("", _)) => Err("ARG names can not be blank".to_string()),
            Some((k, v)) => Ok(ArgDecl {
                name: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                name: a.clone(),
                default: None,
            }),
        })
        .collect()
}

fn parse_onbuild(node: &Node) -> Result<Onbuild, String> {
    let Some(sub) = node.sub.as_deref() else {
        return Err(at_least_one("ONBUILD"));
    };
    no_flags(node)?;
    let trigger = sub.keyword.to_ascii_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
        }
        _ => {}
    }
    let mut expression = strip_onbuild(&node.original).to_string();
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Onbuild {
        expression,
        trigger: Box::new(from_node(sub)?),
    })
}

/// Removes `^\s*ONBUILD\s*` (case-insensitive) from the original line.
fn strip_onbuild(original: &str) -> &str {
    let s = original.trim_start();
    match s.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => s[7..].trim_start(),
        _ => s,
    }
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, String> {
    let Some(typ) = node.args.first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let typ = typ.to_ascii_uppercase();
    let args = &node.args[1..];
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let spec = [
        ("interval", Kind::Str),
        ("timeout", Kind::Str),
        ("start-period", Kind::Str),
        ("start-interval", Kind::Str),
        ("retries", Kind::Str),
    ];
    let flags = Flags::parse(&node.flags, &spec)?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    if args.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let test = if node.json {
        std::iter::once("CMD".to_string())
            .chain(args.iter().cloned())
            .collect()
    } else {
        vec!["CMD-SHELL".to_string(), args.join(" ")]
    };
    Ok(Healthcheck::Cmd {
        test,
        interval: interval(&flags, "interval")?,
        timeout: interval(&flags, "timeout")?,
        start_period: interval(&flags, "start-period")?,
        start_interval: interval(&flags, "start-interval")?,
        retries: retries(&flags)?,
    })
}

/// A health duration: empty or zero is zero (inherit); otherwise at least 1ms, Docker's
/// minimum (negative values fail the same check).
fn interval(flags: &Flags, name: &str) -> Result<Duration, String> {
    let Some(value) = flags.string(name) else {
        return Ok(Duration::ZERO);
    };
    let nanos = parse_go_duration(&value)?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    match u64::try_from(nanos) {
        Ok(n) if n >= 1_000_000 => Ok(Duration::from_nanos(n)),
        _ => Err(format!("Interval {name:?} cannot be less than 1ms")),
    }
}

fn retries(flags: &Flags) -> Result<u32, String> {
    let Some(value) = flags.string("retries") else {
        return Ok(0);
    };
    let n: i32 = value
        .parse()
        .map_err(|_| format!("strconv.ParseInt: parsing {value:?}: invalid syntax"))?;
    u32::try_from(n).map_err(|_| format!("--retries cannot be negative ({n})"))
}
