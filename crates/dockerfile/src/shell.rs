//! Variable expansion with the rules of BuildKit's shell lexer (`shell/lex.go`): `$a`, `${a}`,
//! `${a:-b}`, `${a-b}`, `${a:+b}`, `${a+b}`, `${a:?msg}`, `${a?msg}`, `${a#p}`, `${a##p}`,
//! `${a%p}`, `${a%%p}`, `${a/p/r}`, `${a//p/r}`; single quotes are literal, double quotes allow
//! `$`, and the escape character (`\` or `` ` ``) escapes the next character.

use std::collections::{BTreeMap, HashMap};

use crate::glob::{Tok, match_ends, parse_class};
use crate::limits;

/// Variables visible to an expansion.
pub trait Env {
    /// The value of `name`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// An environment list (`KEY=value` pairs in order); a later duplicate wins.
impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

/// An expansion failed (`${a:?}` on an unset variable, unterminated quote, bad substitution).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// A configured expander. [`Lexer::new`] gives Docker's rules for instruction arguments;
/// [`Lexer::heredoc`] the ones for heredoc bodies (quotes and escapes kept, only `$` expanded).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset: bool,
    skip_quotes: bool,
}

impl Lexer {
    /// Docker's lexer for instruction arguments with the given escape character.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// The lexer BuildKit uses for expandable COPY/ADD heredoc bodies: quotes are ordinary
    /// characters, `\` still escapes (so `\$x` stays literal, and, a Docker quirk, `\n`
    /// becomes `n`), whatever the file's escape directive.
    pub fn heredoc() -> Lexer {
        Lexer {
            skip_quotes: true,
            ..Lexer::new('\\')
        }
    }

    /// Keeps quotes and escape characters in the result (BuildKit's `RawQuotes`/`RawEscapes`).
    pub fn raw(mut self) -> Lexer {
        self.raw_quotes = true;
        self.raw_escapes = true;
        self
    }

    /// Leaves references to unset variables as written (`$x` stays `$x`).
    pub fn keep_unset(mut self) -> Lexer {
        self.skip_unset = true;
        self
    }

    /// Expands `word` as one word: blanks are kept, quotes removed.
    pub fn expand_word(&self, word: &str, env: &dyn Env) -> Result<String, ExpandError> {
        self.run(word, env).map(|(s, _)| s)
    }

    /// Expands `word` and splits it into words at unquoted blanks, including blanks that come
    /// from variable values (Docker's `ProcessWords`, used for EXPOSE).
    pub fn expand_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        self.run(word, env).map(|(_, w)| w.finish())
    }

    /// Every error names the word, as BuildKit's `failed to process "…": …`.
    fn run(&self, word: &str, env: &dyn Env) -> Result<(String, Words), ExpandError> {
        self.state(word, env)
            .process(None, self.raw_escapes)
            .map_err(|e| ExpandError(format!("failed to process {word:?}: {}", e.0)))
    }

    fn state<'a>(&'a self, word: &str, env: &'a dyn Env) -> State<'a> {
        State {
            lx: self,
            env,
            chars: word.chars().collect(),
            pos: 0,
            raw_escapes: self.raw_escapes,
            depth: 0,
        }
    }
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    buf: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_raw_char(c));
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct State<'a> {
    lx: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    depth: usize,
}

fn err<T>(msg: impl Into<String>) -> Result<T, ExpandError> {
    Err(ExpandError(msg.into()))
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Docker's `processStopOn`: reads until `stop` (consumed) or the end.
    fn process(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Words), ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.process_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_inner(&mut self, stop: Option<char>) -> Result<(String, Words), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words));
            }
            match ch {
                '$' => {
                    let v = self.dollar()?;
                    words.add_string(&v);
                    result.push_str(&v);
                }
                '\'' | '"' if self.lx.skip_quotes => {
                    self.pos += 1;
                    words.add_char(ch);
                    result.push(ch);
                }
                '\'' | '"' | '<' => {
                    let v = match ch {
                        '\'' => self.single_quote()?,
                        '"' => self.double_quote()?,
                        _ => self.possible_heredoc(),
                    };
                    words.add_raw_string(&v);
                    result.push_str(&v);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.lx.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(c) = self.next() else { break };
                        words.add_raw_char(c);
                        result.push(c);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
            if result.len() > limits::MAX_EXPANDED_BYTES {
                return err("expanded value is too long");
            }
        }
        match stop {
            Some(s) => err(format!(
                "unexpected end of statement while looking for matching {s}"
            )),
            None => Ok((result, words)),
        }
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        let q = self.next().unwrap_or('\'');
        if self.lx.raw_quotes {
            out.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote",
                    );
                }
                Some('\'') => {
                    if self.lx.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        let q = self.next().unwrap_or('"');
        if self.lx.raw_quotes {
            out.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote",
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    if self.lx.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(mut c) => {
                    self.pos += 1;
                    if c == self.lx.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            // Only these can be escaped inside double quotes; any other
                            // escape character stays.
                            Some(n) if n == '"' || n == '$' || n == self.lx.escape => {
                                self.pos += 1;
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
            if out.len() > limits::MAX_EXPANDED_BYTES {
                return err("expanded value is too long");
            }
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.pos += 1;
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!0".contains(c) {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.depth += 1;
        if self.depth > limits::MAX_EXPANSION_DEPTH {
            return err("variable substitutions are nested too deeply");
        }
        let r = self.dollar_inner();
        self.depth -= 1;
        r
    }

    fn dollar_inner(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.env.lookup(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.name();
        let Some(ch) = self.next() else {
            return err("syntax error: missing '}'");
        };
        match ch {
            '}' => Ok(match self.env.lookup(&name) {
                Some(v) => v,
                None if self.lx.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' => {
                let Some(m) = self.next() else {
                    return err("syntax error: missing '}'");
                };
                self.modifier(&name, m, true)
            }
            '+' | '-' | '?' | '#' | '%' => self.modifier(&name, ch, false),
            '/' => self.replace(&name),
            _ => err(format!("unsupported modifier ({ch}) in substitution")),
        }
    }

    fn modifier(&mut self, name: &str, m: char, colon: bool) -> Result<String, ExpandError> {
        let chs = if colon {
            format!(":{m}")
        } else {
            m.to_string()
        };
        let pattern_op = m == '#' || m == '%';
        if colon && pattern_op {
            return err(format!("unsupported modifier ({chs}) in substitution"));
        }
        let word = self.braced_word('}', pattern_op)?;
        let value = self.env.lookup(name);
        if self.lx.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        // With a colon, an empty value counts as unset.
        let unset = value.is_none() || (colon && value.as_deref() == Some(""));
        match m {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => match value {
                None => err(format!(
                    "{name}: {}",
                    or(word, "is not allowed to be unset")
                )),
                Some(v) if colon && v.is_empty() => err(format!(
                    "{name}: {}",
                    or(word, "is not allowed to be empty")
                )),
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                let (greedy, pat) = match word.strip_prefix(m) {
                    Some(p) => (true, p.to_string()),
                    None => (false, word),
                };
                trim_pattern(&value.unwrap_or_default(), &pat, m == '#', greedy)
            }
            _ => err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn braced_word(&mut self, stop: char, raw_escapes: bool) -> Result<String, ExpandError> {
        match self.process(Some(stop), raw_escapes) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => err(format!("syntax error: missing '{stop}'")),
            Err(e) => Err(e),
        }
    }

    fn replace(&mut self, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.pos += 1;
        }
        let pattern = match self.process(Some('/'), true) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return err("syntax error: missing '/' in ${}"),
            Err(e) => return Err(e),
        };
        let replacement = self.braced_word('}', true)?;
        let Some(value) = self.env.lookup(name) else {
            if self.lx.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return replace_pattern("", &pattern, &replacement, all);
        };
        replace_pattern(&value, &pattern, &replacement, all)
    }
}

fn or(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word
    }
}

/// Compiles a shell pattern (`*`, `?`, `[...]`, `\x`).
fn shell_pattern(p: &str) -> Vec<Tok> {
    let p: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => toks.push(Tok::Any),
            '?' => toks.push(Tok::One),
            '\\' if i < p.len() => {
                toks.push(Tok::Lit(p[i]));
                i += 1;
            }
            '[' => match parse_class(&p, i, true) {
                Some((tok, next)) => {
                    toks.push(tok);
                    i = next;
                }
                None => toks.push(Tok::Lit('[')),
            },
            _ => toks.push(Tok::Lit(c)),
        }
    }
    toks
}

fn check_budget(cost: usize) -> Result<(), ExpandError> {
    if cost > limits::MAX_PATTERN_STEPS {
        return err("pattern substitution is too large");
    }
    Ok(())
}

/// `${v#p}` (prefix) and `${v%p}` (suffix), shortest or (`##`, `%%`) longest match.
fn trim_pattern(
    value: &str,
    pattern: &str,
    prefix: bool,
    greedy: bool,
) -> Result<String, ExpandError> {
    let mut toks = shell_pattern(pattern);
    let mut text: Vec<char> = value.chars().collect();
    check_budget(text.len().saturating_mul(toks.len() + 1))?;
    if !prefix {
        // A suffix match is a prefix match of the reversed pattern on the reversed text.
        toks.reverse();
        text.reverse();
    }
    let ends = match_ends(&toks, &text, 0);
    let mut hits = (0..=text.len()).filter(|&j| ends[j]);
    let cut = if greedy {
        hits.next_back()
    } else {
        hits.next()
    };
    let Some(cut) = cut else {
        return Ok(value.to_string());
    };
    let kept: String = if prefix {
        text[cut..].iter().collect()
    } else {
        text[cut..].iter().rev().collect()
    };
    Ok(kept)
}

/// `${v/p/r}` replaces the first (leftmost, longest) match; `${v//p/r}` every match.
fn replace_pattern(
    value: &str,
    pattern: &str,
    repl: &str,
    all: bool,
) -> Result<String, ExpandError> {
    let toks = shell_pattern(pattern);
    let text: Vec<char> = value.chars().collect();
    let n = text.len();
    check_budget(n.saturating_mul(n).saturating_mul(toks.len() + 1))?;
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i <= n {
        let found = if replaced && !all {
            None
        } else {
            let ends = match_ends(&toks, &text, i);
            (i..=n).rev().find(|&j| ends[j])
        };
        match found {
            Some(j) => {
                out.push_str(repl);
                replaced = true;
                if j == i {
                    if i < n {
                        out.push(text[i]);
                    }
                    i += 1;
                } else {
                    i = j;
                }
            }
            None => {
                if i < n {
                    out.push(text[i]);
                }
                i += 1;
            }
        }
    }
    Ok(out)
}
