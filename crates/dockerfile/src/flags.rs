//! Instruction flags (`--from=x`, `--link`), with the checks and messages of Docker's `BFlags`.

use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Str,
    /// May be repeated (`--mount`, `--exclude`).
    Strings,
}

/// The flags given to one instruction, checked against what it accepts.
#[derive(Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    /// Parses `--name[=value]` words against `spec`.
    pub(crate) fn parse(raw: &[String], spec: &[(&'static str, Kind)]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        for arg in raw {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {arg}"));
            };
            if body.is_empty() {
                break;
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(format!("unknown flag: --{name}"));
            };
            if kind != Kind::Strings && flags.values.contains_key(key) {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            let value = flag_value(name, kind, value)?;
            flags.values.entry(key).or_default().push(value);
        }
        Ok(flags)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.string(name).is_some_and(|v| v == "true")
    }

    /// `Some(bool)` when the flag was given at all (for flags whose absence means "default").
    pub(crate) fn opt_bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

fn flag_value(name: &str, kind: Kind, value: Option<&str>) -> Result<String, String> {
    match (kind, value) {
        (Kind::Bool, Some("")) | (Kind::Str | Kind::Strings, None) => {
            Err(format!("missing a value on flag: --{name}"))
        }
        (Kind::Bool, None) => Ok("true".into()),
        (Kind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
            "true" => Ok("true".into()),
            "false" => Ok("false".into()),
            _ => Err(format!(
                "expecting boolean value for flag --{name}, not: {v}"
            )),
        },
        (_, Some(v)) => Ok(v.to_string()),
    }
}
