//! Build arguments and environment, scoped as Docker scopes them, and the expansion of each
//! instruction's arguments with that scope.
//!
//! - ARGs before the first FROM form the global scope; only FROM lines see it (plus the
//!   automatic platform args).
//! - Each stage starts empty (plus its base image's ENV). `ARG name` without a default
//!   re-declares a global ARG and takes its value; a `--build-arg` overrides any default.
//! - ENV always wins over an ARG of the same name (Docker's documented rule, and the classic
//!   builder's; BuildKit lets an ARG declared *after* the ENV shadow it in RUN and expansion).
//! - All pairs of one ENV or LABEL are expanded with the scope from *before* the instruction
//!   (`ENV a=1 b=$a` gives `b` the old `a`); ARG names are declared one by one, as BuildKit
//!   does (`ARG a=1 b=$a` gives `b` the new `a`).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ParseError;
use crate::instruction::{ArgDecl, Copy, From, Instruction, KeyValue, Run};
use crate::mount::parse_mount;
use crate::shell::{Env, ExpandError, Lexer};
use crate::stage::{Dockerfile, Step};

/// Proxy variables Docker passes to RUN without an ARG declaration (and keeps out of history).
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `--build-arg name` is one Docker never reports as unused: the proxy variables, the
/// platform args, `SOURCE_DATE_EPOCH` and BuildKit's own `BUILDKIT_*` settings.
pub fn is_predefined_arg(name: &str) -> bool {
    const PLATFORM: [&str; 8] = [
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
    ];
    PROXY_ARGS.contains(&name)
        || PLATFORM.contains(&name)
        || name == "SOURCE_DATE_EPOCH"
        || name.starts_with("BUILDKIT_")
}

/// An OS/architecture pair, as in `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, …
    pub arch: String,
    /// `v7`, `v8`, … (empty when none).
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let (os, arch) = (it.next()?, it.next()?);
        let variant = it.next().unwrap_or_default();
        if os.is_empty() || arch.is_empty() || it.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.into(),
            arch: arch.into(),
            variant: variant.into(),
        })
    }

    /// The platform berth was compiled for, in Go's names (`x86_64` → `amd64`).
    pub fn native() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: String::new(),
        }
    }

    fn to_platform_string(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.arch)
        } else {
            format!("{}/{}/{}", self.os, self.arch, self.variant)
        }
    }

    fn args(&self, prefix: &str) -> [(String, String); 4] {
        [
            (format!("{prefix}PLATFORM"), self.to_platform_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.arch.clone()),
            (format!("{prefix}VARIANT"), self.variant.clone()),
        ]
    }
}

/// What the user passed with `--build-arg`, and the build and target platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArgs {
    /// `--build-arg k=v` values.
    pub values: BTreeMap<String, String>,
    /// Where the build runs (`BUILDPLATFORM`).
    pub build_platform: Platform,
    /// What it builds for (`TARGETPLATFORM`, `--platform`).
    pub target_platform: Platform,
}

impl Default for BuildArgs {
    fn default() -> Self {
        BuildArgs {
            values: BTreeMap::new(),
            build_platform: Platform::native(),
            target_platform: Platform::native(),
        }
    }
}

/// The variables visible at one point of a build; drive it with [`Scope::step`].
#[derive(Debug, Clone)]
pub struct Scope {
    lexer: Lexer,
    build_args: BuildArgs,
    /// Global (pre-FROM) ARG values, platform args included.
    global: BTreeMap<String, String>,
    /// True for the global scope itself.
    is_global: bool,
    /// ARGs declared in this stage that have a value, in declaration order.
    args: Vec<(String, String)>,
    /// Every ARG name declared so far (with or without value).
    declared: BTreeSet<String>,
    /// ENV, in image-config order.
    env: Vec<(String, String)>,
}

impl Env for Scope {
    fn lookup(&self, name: &str) -> Option<String> {
        if self.is_global {
            return self.global.get(name).cloned();
        }
        self.env
            .as_slice()
            .lookup(name)
            .or_else(|| self.args.as_slice().lookup(name))
    }
}

fn set(list: &mut Vec<(String, String)>, key: String, value: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => list.push((key, value)),
    }
}

impl Scope {
    /// The global scope of `df`: its pre-FROM ARGs evaluated against `build_args`.
    pub fn global(df: &Dockerfile, build_args: &BuildArgs) -> Result<Scope, ParseError> {
        let mut global = BTreeMap::new();
        for (k, v) in build_args
            .build_platform
            .args("BUILD")
            .into_iter()
            .chain(build_args.target_platform.args("TARGET"))
        {
            global.insert(k, v);
        }
        let mut scope = Scope {
            lexer: df.lexer(),
            build_args: build_args.clone(),
            global,
            is_global: true,
            args: Vec::new(),
            declared: BTreeSet::new(),
            env: Vec::new(),
        };
        for step in &df.meta_args {
            scope.step(&df.file, step)?;
        }
        Ok(scope)
    }

    /// A fresh scope for a stage whose base image (or base stage) has `image_env`.
    pub fn for_stage(&self, image_env: &[(String, String)]) -> Scope {
        Scope {
            is_global: false,
            args: Vec::new(),
            declared: BTreeSet::new(),
            env: image_env.to_vec(),
            ..self.clone()
        }
    }

    /// Expands one word (quotes removed, blanks kept).
    pub fn expand(&self, word: &str) -> Result<String, ExpandError> {
        self.lexer.expand_word(word, self)
    }

    /// Expands and splits into words (EXPOSE semantics).
    pub fn expand_words(&self, word: &str) -> Result<Vec<String>, ExpandError> {
        self.lexer.expand_words(word, self)
    }

    /// The ENV list as the image config will hold it.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// ARGs of this stage that have a value, in declaration order (Docker prefixes RUN history
    /// and cache keys with them).
    pub fn args(&self) -> &[(String, String)] {
        &self.args
    }

    /// Names declared by ARG so far in this scope (build args never declared are "unused").
    pub fn declared_args(&self) -> &BTreeSet<String> {
        &self.declared
    }

    /// The environment of a RUN: ENV, then ARG values ENV does not override, then proxy build
    /// args nobody declared.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        for (k, v) in &self.args {
            if !out.iter().any(|(ek, _)| ek == k) {
                out.push((k.clone(), v.clone()));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.build_args.values.get(p)
                && !out.iter().any(|(k, _)| k == p)
            {
                out.push((p.to_string(), v.clone()));
            }
        }
        out
    }

    /// FROM with image and platform expanded; only the global scope is visible to FROM, so call
    /// this on the scope from [`Scope::global`].
    pub fn expand_from(&self, from: &From) -> Result<From, ExpandError> {
        Ok(From {
            image: self.expand(&from.image)?,
            name: from.name.clone(),
            platform: from
                .platform
                .as_deref()
                .map(|p| self.expand(p))
                .transpose()?,
        })
    }

    /// Expands `step` where Docker expands, applies its effect on the scope (ARG, ENV), and
    /// returns the expanded instruction. Inline heredoc sources of COPY/ADD come back as final
    /// data (tabs stripped for `<<-`, variables expanded unless the delimiter was quoted).
    pub fn step(&mut self, file: &str, step: &Step) -> Result<Instruction, ParseError> {
        let located = |e: ExpandError| ParseError::new(file, step.line, step.end_line, e.0);
        let out = self
            .expand_instruction(&step.instruction)
            .map_err(located)?;
        match &out {
            Instruction::Env(pairs) => {
                for kv in pairs {
                    set(&mut self.env, kv.key.clone(), kv.value.clone());
                }
            }
            Instruction::Arg(decls) => return self.apply_args(decls).map_err(located),
            _ => {}
        }
        Ok(out)
    }

    fn word(&self, w: &str) -> Result<String, ExpandError> {
        self.expand(w)
    }

    fn opt(&self, w: &Option<String>) -> Result<Option<String>, ExpandError> {
        w.as_deref().map(|w| self.word(w)).transpose()
    }

    fn list(&self, v: &[String]) -> Result<Vec<String>, ExpandError> {
        v.iter().map(|w| self.word(w)).collect()
    }

    fn kvs(&self, v: &[KeyValue]) -> Result<Vec<KeyValue>, ExpandError> {
        v.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.word(&kv.key)?,
                    value: self.word(&kv.value)?,
                    legacy: kv.legacy,
                })
            })
            .collect()
    }

    /// The instruction with its arguments expanded where Docker expands them; RUN, CMD,
    /// ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left as written (the shell
    /// expands RUN at run time). ARG comes back unexpanded: use [`Scope::step`].
    pub fn expand_instruction(&self, inst: &Instruction) -> Result<Instruction, ExpandError> {
        Ok(match inst {
            Instruction::Env(kv) => Instruction::Env(self.kvs(kv)?),
            Instruction::Label(kv) => Instruction::Label(self.kvs(kv)?),
            Instruction::Add(c) => Instruction::Add(self.copy(c)?),
            Instruction::Copy(c) => Instruction::Copy(self.copy(c)?),
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(self.expand_words(p)?);
                }
                Instruction::Expose(out)
            }
            Instruction::Volume(v) => Instruction::Volume(self.list(v)?),
            Instruction::User(u) => Instruction::User(self.word(u)?),
            Instruction::Workdir(w) => Instruction::Workdir(self.word(w)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(self.word(s)?),
            Instruction::From(f) => Instruction::From(self.expand_from(f)?),
            Instruction::Run(r) => Instruction::Run(self.run(r)?),
            other => other.clone(),
        })
    }

    /// COPY/ADD: sources, destination, `--chown`, `--chmod`, `--checksum` and heredoc bodies
    /// are expanded; `--exclude` is not, and `--from` never is (Docker rejects variables there).
    fn copy(&self, c: &Copy) -> Result<Copy, ExpandError> {
        let mut out = Copy {
            sources: self.list(&c.sources)?,
            dest: self.word(&c.dest)?,
            chown: self.opt(&c.chown)?,
            chmod: self.opt(&c.chmod)?,
            checksum: self.opt(&c.checksum)?,
            ..c.clone()
        };
        for src in &mut out.inline {
            let data = src.heredoc.data();
            src.heredoc.content = if src.heredoc.expand {
                Lexer::heredoc().expand_word(&data, self)?
            } else {
                data
            };
            src.heredoc.chomp = false;
        }
        Ok(out)
    }

    /// RUN: only `--mount` values are expanded (the shell expands the command itself).
    fn run(&self, r: &Run) -> Result<Run, ExpandError> {
        let expand = |v: &str| self.word(v).map_err(|e| e.0);
        let mounts = r
            .mount_specs
            .iter()
            .map(|spec| parse_mount(spec, &expand).map_err(ExpandError))
            .collect::<Result<_, _>>()?;
        Ok(Run {
            mounts,
            ..r.clone()
        })
    }

    /// Declares ARGs one by one (each default sees the ARGs before it). A `--build-arg` wins
    /// and then the default is not even expanded (BuildKit ignores its errors); names are never
    /// expanded. The returned ARG carries the resolved values (`None`: declared, unset).
    fn apply_args(&mut self, decls: &[ArgDecl]) -> Result<Instruction, ExpandError> {
        let mut out = Vec::with_capacity(decls.len());
        for d in decls {
            let name = d.name.clone();
            let value = match (self.build_args.values.get(&name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(self.word(default)?),
                (None, None) => self.inherited(&name),
            };
            self.declared.insert(name.clone());
            if let Some(v) = &value {
                if self.is_global {
                    self.global.insert(name.clone(), v.clone());
                } else {
                    set(&mut self.args, name.clone(), v.clone());
                }
            }
            out.push(ArgDecl {
                name,
                default: value,
            });
        }
        Ok(Instruction::Arg(out))
    }

    /// The value a value-less `ARG name` picks up: the global ARG's, or a platform arg's.
    fn inherited(&self, name: &str) -> Option<String> {
        if self.is_global {
            return None;
        }
        self.global.get(name).cloned()
    }
}
