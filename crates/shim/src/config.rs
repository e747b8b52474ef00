//! The `berth shim` command line, parsed by hand: a dozen flags do not justify clap's start-up
//! cost and resident pages in a process that lives as long as its container.

use std::path::PathBuf;

use crate::error::ShimError;
use crate::logfile::LogConfig;

/// The runtime used when `--runtime` is not given: berth's own, linked into the shim.
pub const DEFAULT_RUNTIME: &str = BUILTIN_RUNTIME;
/// The `--runtime` value naming the built-in runtime.
pub const BUILTIN_RUNTIME: &str = "builtin";
/// The runtime state directory used when `--runtime-root` is not given.
pub const DEFAULT_RUNTIME_ROOT: &str = "/run/berth/runtime";

/// What `berth shim` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The container id (passed to the runtime).
    pub id: String,
    /// The OCI bundle directory.
    pub bundle: PathBuf,
    /// Where the shim keeps `shim.pid`, `shim.sock`, `exit.json` and exec exits.
    pub state_dir: PathBuf,
    /// The runc-compatible binary.
    pub runtime: PathBuf,
    /// The runtime's `--root`.
    pub runtime_root: PathBuf,
    /// The json-file log, if any.
    pub log: Option<LogConfig>,
    /// Give the container a pty.
    pub tty: bool,
    /// Keep the container's stdin open for attached clients.
    pub stdin: bool,
    /// Close the container's stdin when the first attached client closes its input.
    pub stdin_once: bool,
}

/// The usage line printed with argument errors.
pub const USAGE: &str = "usage: berth shim --id ID --bundle DIR --state-dir DIR [--runtime PATH] \
[--runtime-root DIR] [--log-path FILE [--log-max-size N] [--log-max-file N]] [--tty] [--stdin] \
[--stdin-once]";

impl Config {
    /// Parses the arguments after `shim` (flags as `--flag value` or `--flag=value`).
    pub fn parse(args: &[String]) -> Result<Config, ShimError> {
        let mut p = Partial::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            if p.switch(flag)? {
                if inline.is_some() {
                    return Err(usage(format!("{flag} takes no value")));
                }
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| usage(format!("{flag} needs a value")))?,
            };
            p.value(flag, value)?;
        }
        p.finish()
    }
}

#[derive(Default)]
struct Partial {
    id: Option<String>,
    bundle: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    runtime: Option<PathBuf>,
    runtime_root: Option<PathBuf>,
    log_path: Option<PathBuf>,
    log_max_size: Option<u64>,
    log_max_file: Option<u32>,
    tty: bool,
    stdin: bool,
    stdin_once: bool,
}

impl Partial {
    /// Handles a flag without a value; false when `flag` is not one.
    fn switch(&mut self, flag: &str) -> Result<bool, ShimError> {
        let slot = match flag {
            "--tty" | "-t" => &mut self.tty,
            "--stdin" | "-i" => &mut self.stdin,
            "--stdin-once" => &mut self.stdin_once,
            _ => return Ok(false),
        };
        *slot = true;
        Ok(true)
    }

    fn value(&mut self, flag: &str, v: String) -> Result<(), ShimError> {
        match flag {
            "--id" => self.id = Some(v),
            "--bundle" => self.bundle = Some(v.into()),
            "--state-dir" => self.state_dir = Some(v.into()),
            "--runtime" => self.runtime = Some(v.into()),
            "--runtime-root" => self.runtime_root = Some(v.into()),
            "--log-path" => self.log_path = Some(v.into()),
            "--log-max-size" => self.log_max_size = Some(parse_size(&v)?),
            "--log-max-file" => {
                self.log_max_file = Some(
                    v.parse::<u32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| usage(format!("bad --log-max-file {v:?}")))?,
                )
            }
            _ => return Err(usage(format!("unknown flag {flag:?}"))),
        }
        Ok(())
    }

    fn finish(self) -> Result<Config, ShimError> {
        let id = self.id.ok_or_else(|| usage("--id is required".into()))?;
        if id.is_empty() || id.contains('/') || id.len() > 1024 {
            return Err(usage(format!("bad container id {id:?}")));
        }
        let bundle = absolute(
            self.bundle
                .ok_or_else(|| usage("--bundle is required".into()))?,
        )?;
        let state_dir = absolute(
            self.state_dir
                .ok_or_else(|| usage("--state-dir is required".into()))?,
        )?;
        if self.log_path.is_none() && (self.log_max_size.is_some() || self.log_max_file.is_some()) {
            return Err(usage(
                "--log-max-size/--log-max-file need --log-path".into(),
            ));
        }
        let log = match self.log_path {
            Some(path) => Some(LogConfig {
                path: absolute(path)?,
                max_size: self.log_max_size,
                max_files: self.log_max_file.unwrap_or(1),
            }),
            None => None,
        };
        Ok(Config {
            id,
            bundle,
            state_dir,
            runtime: self
                .runtime
                .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIME)),
            runtime_root: absolute(
                self.runtime_root
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIME_ROOT)),
            )?,
            log,
            tty: self.tty,
            stdin: self.stdin,
            stdin_once: self.stdin_once,
        })
    }
}

fn usage(msg: String) -> ShimError {
    ShimError::Usage(msg)
}

/// The shim changes directory to `/`, and the runtime to the bundle: relative paths would break.
fn absolute(p: PathBuf) -> Result<PathBuf, ShimError> {
    std::path::absolute(&p).map_err(|e| ShimError::io("resolve", p, e))
}

/// `1048576`, `100k`, `10m`, `1g` (powers of 1024, as Docker's `max-size`).
fn parse_size(s: &str) -> Result<u64, ShimError> {
    let lower = s.trim().to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (num, mult) = match trimmed.char_indices().last() {
        Some((i, 'k')) => (&trimmed[..i], 1u64 << 10),
        Some((i, 'm')) => (&trimmed[..i], 1 << 20),
        Some((i, 'g')) => (&trimmed[..i], 1 << 30),
        _ => (trimmed, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| usage(format!("bad --log-max-size {s:?}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_all_flags() {
        let c = Config::parse(&args(
            "--id c1 --bundle /b --state-dir=/s --runtime /usr/sbin/runc --runtime-root /r \
             --log-path /l/c.log --log-max-size 10m --log-max-file 3 --tty --stdin --stdin-once",
        ))
        .unwrap();
        assert_eq!(c.id, "c1");
        assert_eq!(c.state_dir, PathBuf::from("/s"));
        assert_eq!(
            c.log,
            Some(LogConfig {
                path: "/l/c.log".into(),
                max_size: Some(10 << 20),
                max_files: 3
            })
        );
        assert!(c.tty && c.stdin && c.stdin_once);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Config::parse(&args("--bundle /b --state-dir /s")).is_err());
        assert!(Config::parse(&args("--id x --bundle /b --state-dir /s --bogus 1")).is_err());
        assert!(
            Config::parse(&args("--id x --bundle /b --state-dir /s --log-max-size 1")).is_err()
        );
        assert!(Config::parse(&args("--id x --bundle")).is_err());
        assert!(parse_size("12x").is_err());
        assert_eq!(parse_size("100k").unwrap(), 102_400);
        assert_eq!(parse_size("7").unwrap(), 7);
    }
}
