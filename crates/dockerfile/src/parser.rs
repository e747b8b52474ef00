//! From bytes to nodes: parser directives, comments, line continuations and heredoc bodies,
//! following BuildKit's `frontend/dockerfile/parser` line by line.

use crate::error::ParseError;
use crate::limits;
use crate::words::{
    JsonError, NOT_STRING_ARRAY, extract_flags, heredoc_words, parse_json_array, parse_words,
    split_ws,
};

/// The parser directives found at the top of the file (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=…`: the frontend image BuildKit would use; berth records it only.
    pub syntax: Option<String>,
    /// The escape character, `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=…`: build-check configuration, recorded only.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A heredoc attached to a RUN, COPY or ADD instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, unquoted (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The body as written: every line with its newline, tabs not stripped.
    pub content: String,
    /// False when the delimiter was quoted: the body is then taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the delimiter line.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

impl Heredoc {
    /// The body with `<<-` tab stripping applied: what a COPY writes or a RUN reads.
    pub fn data(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        let mut out = String::with_capacity(self.content.len());
        for line in self.content.split_inclusive('\n') {
            out.push_str(line.trim_start_matches('\t'));
        }
        out
    }
}

/// One instruction as the line parser sees it, before typing.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub keyword: String,
    pub flags: Vec<String>,
    pub args: Vec<String>,
    pub json: bool,
    pub original: String,
    pub sub: Option<Box<Node>>,
    pub heredocs: Vec<Heredoc>,
    pub start_line: usize,
    pub end_line: usize,
}

/// The parsed file: directives plus nodes in order.
pub(crate) struct Parsed {
    pub directives: Directives,
    pub nodes: Vec<Node>,
}

struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// Feeds one (newline- and left-trimmed) line; returns `Some((name, value))` for a directive.
    fn parse_line(&mut self, line: &str) -> Result<Option<(String, String)>, String> {
        if self.done {
            return Ok(None);
        }
        let Some((key, value)) = line.strip_prefix('#').and_then(directive_parts) else {
            self.done = true;
            return Ok(None);
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            // An unknown directive ends the directive block; the line is an ordinary comment.
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        Ok(Some((key, value.to_string())))
    }
}

/// Matches `\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on the text after `#`.
fn directive_parts(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let (key, rest) = s.split_at(end);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((key, value))
}

/// Strips a trailing escape character (plus blanks after it) that continues the line.
///
/// Docker's rule: the escape is a continuation unless it is itself escaped (`\\` at the end
/// of a line is a literal backslash).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line, true);
    };
    if before.is_empty() || !before.ends_with(escape) {
        (before, false)
    } else {
        (line, true)
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// Parses a whole Dockerfile into nodes.
pub(crate) fn parse(file: &str, src: &[u8]) -> Result<Parsed, ParseError> {
    if src.len() > limits::MAX_DOCKERFILE_BYTES {
        return Err(ParseError::new(
            file,
            0,
            0,
            format!(
                "Dockerfile is {} bytes, more than the {} bytes berth accepts",
                src.len(),
                limits::MAX_DOCKERFILE_BYTES
            ),
        ));
    }
    let text = String::from_utf8_lossy(src);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Docker's line scanner holds 64 KiB including the newline.
    if let Some(n) = lines
        .iter()
        .position(|l| l.len() > limits::MAX_LINE_BYTES + 1)
    {
        let msg = format!(
            "dockerfile line greater than max allowed size of {}",
            limits::MAX_LINE_BYTES
        );
        return Err(ParseError::new(file, n + 1, n + 1, msg));
    }
    LineParser {
        file,
        lines: &lines,
        pos: 0,
        directives: Directives::default(),
        dp: DirectiveParser {
            done: false,
            seen: Vec::new(),
        },
    }
    .run()
}

struct LineParser<'a> {
    file: &'a str,
    lines: &'a [&'a str],
    /// Index of the next physical line; also the 1-based number of the last line read.
    pos: usize,
    directives: Directives,
    dp: DirectiveParser,
}

impl<'a> LineParser<'a> {
    fn err(&self, start: usize, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.file, start, self.pos.max(start), msg)
    }

    fn next_line(&mut self) -> Option<&'a str> {
        let l = self.lines.get(self.pos)?;
        self.pos += 1;
        Some(l)
    }

    fn run(mut self) -> Result<Parsed, ParseError> {
        let mut nodes = Vec::new();
        while let Some(raw) = self.next_line() {
            let line = trim_newline(raw).trim_start();
            self.directive(line)?;
            let body = if is_comment(line) { "" } else { line };
            let start = self.pos;
            let (first, eol) = trim_continuation(body, self.directives.escape);
            if eol && first.is_empty() {
                continue;
            }
            let joined = self.join_continuations(first.to_string(), eol);
            let mut node =
                parse_node(&joined, self.directives.escape).map_err(|m| self.err(start, m))?;
            node.start_line = start;
            if can_contain_heredoc(&node) && joined.contains("<<") {
                self.read_heredocs(&mut node, &joined, start)?;
            }
            node.end_line = self.pos;
            nodes.push(node);
            if nodes.len() > limits::MAX_INSTRUCTIONS {
                return Err(self.err(start, "too many instructions in the Dockerfile"));
            }
        }
        if nodes.is_empty() {
            return Err(ParseError::new(
                self.file,
                self.pos,
                self.pos,
                "file with no instructions",
            ));
        }
        Ok(Parsed {
            directives: self.directives,
            nodes,
        })
    }

    fn directive(&mut self, line: &str) -> Result<(), ParseError> {
        let found = self
            .dp
            .parse_line(line)
            .map_err(|m| self.err(self.pos, m))?;
        let Some((key, value)) = found else {
            return Ok(());
        };
        match key.as_str() {
            "escape" => {
                if value != "\\" && value != "`" {
                    let msg = format!("invalid escape token '{value}' does not match ` or \\");
                    return Err(self.err(self.pos, msg));
                }
                self.directives.escape = value.chars().next().unwrap_or('\\');
            }
            "syntax" => self.directives.syntax = Some(value),
            _ => self.directives.check = Some(value),
        }
        Ok(())
    }

    /// Appends continuation lines; comment lines and blank lines inside are skipped, as Docker
    /// does (blank ones only earn a warning there).
    fn join_continuations(&mut self, mut buf: String, mut eol: bool) -> String {
        while !eol {
            let Some(raw) = self.next_line() else { break };
            let line = trim_newline(raw);
            if is_comment(line) || line.trim_start().is_empty() {
                continue;
            }
            let (part, e) = trim_continuation(line, self.directives.escape);
            buf.push_str(part);
            eol = e;
        }
        buf
    }

    fn read_heredocs(
        &mut self,
        node: &mut Node,
        line: &str,
        start: usize,
    ) -> Result<(), ParseError> {
        let specs = heredocs_from_line(line).map_err(|m| self.err(start, m))?;
        if specs.len() > limits::MAX_HEREDOCS_PER_INSTRUCTION {
            return Err(self.err(start, "too many heredocs in one instruction"));
        }
        for mut doc in specs {
            let mut terminated = false;
            while let Some(raw) = self.next_line() {
                let mut candidate = trim_newline(raw);
                if doc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(raw);
            }
            if !terminated {
                return Err(self.err(start, "unterminated heredoc"));
            }
            node.heredocs.push(doc);
        }
        // An ONBUILD trigger carries its heredocs along.
        if let Some(sub) = node.sub.as_deref_mut() {
            sub.heredocs.clone_from(&node.heredocs);
        }
        Ok(())
    }
}

/// RUN, COPY and ADD in shell form take heredocs; so does ONBUILD wrapping one of them.
fn can_contain_heredoc(node: &Node) -> bool {
    let n = match (&node.sub, node.keyword.eq_ignore_ascii_case("onbuild")) {
        (Some(sub), true) => sub,
        _ => node,
    };
    let kw = n.keyword.to_ascii_lowercase();
    matches!(kw.as_str(), "run" | "copy" | "add") && !n.json
}

/// The heredoc markers of a line, in order, with empty bodies.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let Some(words) = heredoc_words(line, true) else {
        return Ok(Vec::new());
    };
    Ok(words.iter().filter_map(|w| parse_heredoc_word(w)).collect())
}

/// Recognises one heredoc marker word: `[fd]<<[-][blanks]word` (Docker's `reHeredoc`).
pub(crate) fn parse_heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let plain = heredoc_words(rest, false)?;
    let raw = heredoc_words(rest, true)?;
    if plain.len() != 1 || raw.len() != 1 {
        return None;
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Some(Heredoc {
        name: plain[0].clone(),
        content: String::new(),
        // A quote anywhere in the delimiter turns expansion off, as in the shell.
        expand: quotes(&plain[0]) == quotes(&raw[0]),
        chomp,
        fd: word[..digits].parse().ok(),
    })
}

/// Splits a joined line into keyword, flags and arguments, then applies the keyword's
/// argument syntax (Docker's dispatch table of line parsers).
pub(crate) fn parse_node(line: &str, escape: char) -> Result<Node, String> {
    let trimmed = line.trim();
    let mut parts = split_ws(trimmed, 2);
    let keyword = parts.remove(0);
    let (args_str, flags) = match parts.pop() {
        Some(rest) => extract_flags(&rest),
        None => (String::new(), Vec::new()),
    };
    let rest = args_str.trim();
    let mut node = Node {
        keyword: keyword.clone(),
        flags,
        args: Vec::new(),
        json: false,
        original: line.to_string(),
        sub: None,
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
    };
    match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => maybe_json_to_list(&mut node, rest)?,
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(&mut node, rest)?,
        "arg" => node.args = parse_words(rest, escape),
        "env" => node.args = name_val(rest, "ENV", escape)?,
        "label" => node.args = name_val(rest, "LABEL", escape)?,
        "expose" | "from" => node.args = whitespace_list(rest),
        "healthcheck" => health(&mut node, rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args = vec![rest.to_string()];
        }
        "onbuild" if !rest.is_empty() => {
            let sub = parse_node(rest, escape)?;
            node.args = vec![sub.keyword.clone()];
            node.sub = Some(Box::new(sub));
        }
        _ => {}
    }
    Ok(node)
}

fn whitespace_list(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_ws(rest, 0)
}

fn maybe_json(node: &mut Node, rest: &str) -> Result<(), String> {
    if rest.is_empty() {
        return Ok(());
    }
    match parse_json_array(rest) {
        Ok(v) => {
            node.args = v;
            node.json = true;
        }
        Err(JsonError::NotStringArray) => return Err(NOT_STRING_ARRAY.to_string()),
        Err(JsonError::NotJson) => node.args = vec![rest.to_string()],
    }
    Ok(())
}

fn maybe_json_to_list(node: &mut Node, rest: &str) -> Result<(), String> {
    match parse_json_array(rest) {
        Ok(v) => {
            node.args = v;
            node.json = true;
        }
        Err(JsonError::NotStringArray) => return Err(NOT_STRING_ARRAY.to_string()),
        Err(JsonError::NotJson) => node.args = whitespace_list(rest),
    }
    Ok(())
}

/// ENV and LABEL: `k=v k2=v2`, or the legacy `k some value` form (decided by whether the first
/// word has an `=`). Arguments come in triples: key, value, delimiter (`=` or empty).
fn name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts = split_ws(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![parts[0].clone(), parts[1].clone(), String::new()]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

/// HEALTHCHECK: the first word is the type (`CMD`/`NONE`), the rest a maybe-JSON command.
fn health(node: &mut Node, rest: &str) -> Result<(), String> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(());
    }
    let typ = rest[..sep].to_string();
    let mut cmd = Node {
        args: Vec::new(),
        json: false,
        ..node.clone()
    };
    maybe_json(&mut cmd, rest[sep..].trim_start())?;
    node.args = std::iter::once(typ).chain(cmd.args).collect();
    node.json = cmd.json;
    Ok(())
}
