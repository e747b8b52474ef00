//! `.dockerignore`: moby's `ignorefile` reading and `patternmatcher` matching.
//!
//! Patterns are relative to the context root (a leading `/` is dropped) and cleaned like Go's
//! `filepath.Clean`. `*` and `?` never cross `/`, `**` spans any number of directories, `[…]`
//! is a character class, `\` escapes. A pattern also excludes everything under a directory it
//! matches. `!pattern` re-includes; the last matching pattern wins.

use crate::glob::{Tok, matches, parse_class};
use crate::limits;

/// A `.dockerignore` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A lone `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// A malformed pattern (unclosed `[`, trailing `\`).
    #[error("syntax error in pattern: {0}")]
    BadPattern(String),
    /// Too many or too long patterns.
    #[error("{0}")]
    TooLarge(String),
}

impl berth_errdefs::HasCategory for IgnoreError {
    fn category(&self) -> berth_errdefs::Category {
        berth_errdefs::Category::InvalidParameter
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    /// `foo/**` (and `foo**`): everything starting with the text before `**`.
    Prefix(String),
    /// `**/foo`: moby matches it by suffix (so `**foo` also matches `barfoo`, a moby quirk).
    Suffix(String),
    Glob(Vec<Tok>),
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exclusion: bool,
    kind: Kind,
}

/// Compiled `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

impl IgnoreMatcher {
    /// Reads a `.dockerignore` file (moby's `ignorefile.ReadAll`, then compiles).
    pub fn parse(content: &[u8]) -> Result<IgnoreMatcher, IgnoreError> {
        let text = String::from_utf8_lossy(content);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        IgnoreMatcher::new(text.lines().filter_map(read_line))
    }

    /// Compiles already-read patterns (as the API's `excludes`/`dockerfile` paths give them).
    pub fn new<I, S>(patterns: I) -> Result<IgnoreMatcher, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = IgnoreMatcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            if out.patterns.len() >= limits::MAX_IGNORE_PATTERNS {
                return Err(IgnoreError::TooLarge(
                    "too many .dockerignore patterns".into(),
                ));
            }
            if p.len() > limits::MAX_IGNORE_PATTERN_BYTES {
                return Err(IgnoreError::TooLarge(format!(
                    ".dockerignore pattern longer than {} bytes",
                    limits::MAX_IGNORE_PATTERN_BYTES
                )));
            }
            out.patterns.push(compile(p)?);
        }
        Ok(out)
    }

    /// Appends `!path`: the Docker CLI does this for the Dockerfile and `.dockerignore`, which
    /// are always sent even when a pattern ignores them.
    pub fn keep(&mut self, path: &str) -> Result<(), IgnoreError> {
        self.patterns.push(compile(&format!("!{path}"))?);
        Ok(())
    }

    /// The cleaned patterns, `!` kept, in order.
    pub fn patterns(&self) -> impl Iterator<Item = String> + '_ {
        self.patterns.iter().map(|p| {
            if p.exclusion {
                format!("!{}", p.text)
            } else {
                p.text.clone()
            }
        })
    }

    /// Whether `rel_path` (relative to the context, `/`-separated) is ignored: the last
    /// pattern matching it or one of its parent directories decides.
    pub fn matches(&self, rel_path: &str) -> bool {
        let path = clean(rel_path.trim_start_matches('/'));
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            // Only a pattern that could flip the current answer needs evaluating.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(&path);
            for i in 0..parents.len() {
                if hit {
                    break;
                }
                hit = p.matches(&parents[..=i].join("/"));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether a walk must enter directory `dir`: false only when `dir` is ignored and no `!`
    /// exception could re-include anything below it.
    pub fn should_descend(&self, dir: &str) -> bool {
        if !self.matches(dir) {
            return true;
        }
        let dir_slash = format!("{}/", clean(dir.trim_start_matches('/')));
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let lit = literal_prefix(&p.text);
            lit.is_empty() || dir_slash.starts_with(&lit) || lit.starts_with(&dir_slash)
        })
    }
}

/// One line of a `.dockerignore` → a pattern (`None` for comments and blank lines).
fn read_line(line: &str) -> Option<String> {
    // Only a `#` in the first column starts a comment.
    if line.starts_with('#') {
        return None;
    }
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (invert, body) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut p = if body.is_empty() {
        String::new()
    } else {
        clean(body)
    };
    if p.len() > 1 && p.starts_with('/') {
        p.remove(0);
    }
    Some(if invert { format!("!{p}") } else { p })
}

/// The text of a pattern up to its first special character.
fn literal_prefix(p: &str) -> String {
    p.chars()
        .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\'))
        .collect()
}

fn compile(p: &str) -> Result<Pattern, IgnoreError> {
    let p = clean(p);
    let (exclusion, text) = match p.strip_prefix('!') {
        Some("") => return Err(IgnoreError::IllegalExclusion),
        Some(rest) => (true, rest.to_string()),
        None => (false, p),
    };
    let kind = pattern_kind(&text)?;
    Ok(Pattern {
        text,
        exclusion,
        kind,
    })
}

/// Compiles like moby's `Pattern.compile`, including its exact/prefix/suffix shortcuts.
fn pattern_kind(text: &str) -> Result<Kind, IgnoreError> {
    let chars: Vec<char> = text.chars().collect();
    let bad = || IgnoreError::BadPattern(text.to_string());
    let mut toks = Vec::new();
    let (mut exact, mut regex, mut suffix, mut prefix) = (true, false, false, false);
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if exact {
                        prefix = true
                    } else {
                        regex = true
                    }
                    toks.push(Tok::Any);
                } else {
                    regex = true;
                    toks.push(Tok::AnyDirs);
                }
                exact = false;
                if start == 0 {
                    suffix = true;
                }
            }
            '*' => {
                (regex, exact) = (true, false);
                toks.push(Tok::AnyNoSep);
            }
            '?' => {
                (regex, exact) = (true, false);
                toks.push(Tok::OneNoSep);
            }
            '\\' => {
                let n = *chars.get(i).ok_or_else(bad)?;
                i += 1;
                (regex, exact) = (true, false);
                toks.push(Tok::Lit(n));
            }
            '[' => {
                let (tok, next) = parse_class(&chars, i, false).ok_or_else(bad)?;
                (regex, exact) = (true, false);
                toks.push(tok);
                i = next;
            }
            _ => toks.push(Tok::Lit(c)),
        }
    }
    Ok(if regex {
        Kind::Glob(toks)
    } else if suffix {
        Kind::Suffix(text[2..].to_string())
    } else if prefix {
        Kind::Prefix(text[..text.len() - 2].to_string())
    } else {
        let _ = exact;
        Kind::Exact
    })
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Glob(toks) => {
                let text: Vec<char> = path.chars().collect();
                matches(toks, &text)
            }
        }
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_clean() {
        for (i, o) in [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a//b/./c", "a/b/c"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("a/b/../c", "a/c"),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }
}
