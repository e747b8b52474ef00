//! Dockerfiles and `.dockerignore` files, read exactly as Docker's builder reads them.
//!
//! This crate is pure (layer 1): it turns given bytes into typed values and never touches the
//! file system, the network or a clock. It imports only `berth-errdefs` (every error here is
//! `InvalidParameter`). The builder drives it:
//!
//! - [`Dockerfile::parse`]: directives (`# syntax`, `# escape`, `# check`), comments, line
//!   continuations, heredocs, every instruction with its flags, JSON vs shell form, grouped into
//!   [`Stage`]s; errors carry file, line and Docker's message ([`ParseError`]).
//! - [`Scope`]: build-arg and ENV scoping with Docker's rules, stepped instruction by
//!   instruction; [`Scope::step`] returns each instruction with variables expanded exactly
//!   where Docker expands them. [`Lexer`] is the expander underneath.
//! - [`StageGraph`]: which stages a `--target` needs, in which order, and which can run in
//!   parallel; unknown stages and cycles are errors.
//! - [`IgnoreMatcher`]: `.dockerignore` patterns with `**` and `!` exceptions.
//!
//! Limits against hostile input are in [`limits`].

mod duration;
mod error;
mod flags;
mod glob;
mod graph;
mod ignore;
mod instruction;
mod mount;
mod parser;
mod scope;
mod shell;
mod stage;
mod words;

pub use error::ParseError;
pub use graph::{StageGraph, StageRef};
pub use ignore::{IgnoreError, IgnoreMatcher};
pub use instruction::{
    ArgDecl, CommandLine, Copy, From, Healthcheck, InlineSource, Instruction, KeyValue,
    NetworkMode, Onbuild, Run, RunScript,
};
pub use mount::{Mount, MountType, Sharing};
pub use parser::{Directives, Heredoc};
pub use scope::{BuildArgs, PROXY_ARGS, Platform, Scope, is_predefined_arg};
pub use shell::{Env, ExpandError, Lexer};
pub use stage::{Dockerfile, Stage, Step};

/// Bounds on input size and work, so a hostile Dockerfile costs bounded memory and time.
pub mod limits {
    /// Largest Dockerfile accepted: 4 MiB (real ones are kilobytes; heredocs can be larger).
    pub const MAX_DOCKERFILE_BYTES: usize = 4 << 20;
    /// Longest physical line: Docker's own limit (`bufio.MaxScanTokenSize - 1`).
    pub const MAX_LINE_BYTES: usize = 65_535;
    /// Most instructions in one file.
    pub const MAX_INSTRUCTIONS: usize = 10_000;
    /// Most heredocs on one instruction.
    pub const MAX_HEREDOCS_PER_INSTRUCTION: usize = 64;
    /// Deepest `${a:-${b:-…}}` nesting.
    pub const MAX_EXPANSION_DEPTH: usize = 64;
    /// Longest result of expanding one word: 1 MiB.
    pub const MAX_EXPANDED_BYTES: usize = 1 << 20;
    /// Work bound for `${v#p}`, `${v%p}`, `${v/p/r}` (text length × pattern length steps).
    pub const MAX_PATTERN_STEPS: usize = 50_000_000;
    /// Most patterns in a `.dockerignore`.
    pub const MAX_IGNORE_PATTERNS: usize = 10_000;
    /// Longest `.dockerignore` pattern.
    pub const MAX_IGNORE_PATTERN_BYTES: usize = 4096;
}
