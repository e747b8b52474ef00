//! Word-level helpers of the parser: builder flags, Docker's `parseWords`, JSON arrays and the
//! word splitter used to find heredoc markers. None of these expand variables.

/// Docker's whitespace for splitting arguments: `[\t\v\f\r ]+` (no newline: lines are joined).
pub(crate) fn is_split_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits on runs of Docker's argument whitespace, at most `limit` pieces (0 = no limit).
pub(crate) fn split_ws(s: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if limit != 0 && out.len() + 1 == limit {
            out.push(rest.to_string());
            return out;
        }
        match rest.find(is_split_ws) {
            None => {
                out.push(rest.to_string());
                return out;
            }
            Some(i) => {
                out.push(rest[..i].to_string());
                rest = rest[i..].trim_start_matches(is_split_ws);
            }
        }
    }
}

/// Separates leading `--flag` words from the arguments of an instruction.
///
/// Quotes and `\` inside a flag word are processed (always `\`, whatever the escape directive
/// says: Docker's flag scanner hard-codes it). A bare `--` ends the flags.
pub(crate) fn extract_flags(line: &str) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            return (String::new(), flags);
        }
        let starts_flag = chars[i].1 == '-' && chars.get(i + 1).is_some_and(|c| c.1 == '-');
        if !starts_flag {
            return (line[chars[i].0..].to_string(), flags);
        }
        let (word, blank_ok, next) = flag_word(&chars, i);
        i = next;
        if word == "--" {
            let rest = chars.get(i).map_or("", |c| &line[c.0..]);
            return (rest.to_string(), flags);
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// Reads one flag word starting at `i`; returns it, whether it had quotes, and the next index.
fn flag_word(chars: &[(usize, char)], mut i: usize) -> (String, bool, usize) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    while i < chars.len() {
        let ch = chars[i].1;
        match quote {
            None if ch.is_whitespace() => return (word, blank_ok, i),
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                blank_ok = true;
            }
            Some(q) if ch == q => quote = None,
            _ if ch == '\\' => {
                if i + 1 < chars.len() {
                    i += 1;
                    word.push(chars[i].1);
                } else if quote.is_some() {
                    quote = None;
                }
            }
            _ => word.push(ch),
        }
        i += 1;
    }
    (word, blank_ok, i)
}

/// Docker's `parseWords`: splits on whitespace, keeping quotes and escapes in the words (they are
/// removed later, by expansion). Used by ENV, LABEL and ARG.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if !in_word && quote.is_none() {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            // Nothing escapes inside single quotes.
            if ch == escape && q != '\'' {
                if i + 1 == chars.len() {
                    quote = None;
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                word.push(chars[i]);
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            continue;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            in_word = false;
            i += 1;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            if i + 1 == chars.len() {
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            word.push(chars[i]);
            i += 1;
            continue;
        }
        word.push(ch);
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Why a `[...]` argument did not become an exec-form list.
pub(crate) enum JsonError {
    /// Not JSON at all: Docker silently falls back to the shell form.
    NotJson,
    /// A JSON array with a non-string element: an error in Docker.
    NotStringArray,
}

pub(crate) const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Parses an exec-form argument (`["a", "b"]`).
pub(crate) fn parse_json_array(rest: &str) -> Result<Vec<String>, JsonError> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Err(JsonError::NotJson);
    }
    let value: serde_json::Value = serde_json::from_str(rest).map_err(|_| JsonError::NotJson)?;
    let serde_json::Value::Array(items) = value else {
        return Err(JsonError::NotJson);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonError::NotStringArray),
        })
        .collect()
}

/// Splits a line into shell words the way Docker does when it looks for heredoc markers:
/// `raw` keeps quotes and escapes; `<<` plus following blanks stays glued to the next word.
/// `None` when a quote is unterminated (Docker then finds no heredocs).
pub(crate) fn heredoc_words(line: &str, raw: bool) -> Option<Vec<String>> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut buf = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '\'' | '"' => {
                let end = (i..chars.len()).find(|&j| chars[j] == ch && !escaped(&chars, j, ch))?;
                if raw {
                    buf.push(ch);
                }
                push_quoted(&mut buf, &chars[i..end], ch, raw);
                if raw {
                    buf.push(ch);
                }
                in_word = true;
                i = end + 1;
            }
            '\\' => {
                if raw {
                    buf.push('\\');
                }
                if let Some(&n) = chars.get(i) {
                    buf.push(n);
                    i += 1;
                }
                in_word = true;
            }
            '<' if chars.get(i) == Some(&'<') => {
                buf.push_str("<<");
                i += 1;
                while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    buf.push(chars[i]);
                    i += 1;
                }
                in_word = true;
            }
            c if c.is_whitespace() => {
                if in_word && !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                in_word = false;
            }
            c => {
                buf.push(c);
                in_word = true;
            }
        }
    }
    if !buf.is_empty() {
        words.push(buf);
    }
    Some(words)
}

/// Whether the quote at `j` is escaped (only inside double quotes, by a backslash).
fn escaped(chars: &[char], j: usize, quote: char) -> bool {
    if quote != '"' {
        return false;
    }
    let backslashes = chars[..j].iter().rev().take_while(|&&c| c == '\\').count();
    backslashes % 2 == 1
}

fn push_quoted(buf: &mut String, inner: &[char], quote: char, raw: bool) {
    let mut k = 0;
    while k < inner.len() {
        let c = inner[k];
        if quote == '"'
            && c == '\\'
            && !raw
            && let Some(&n) = inner.get(k + 1)
            && matches!(n, '"' | '$' | '\\')
        {
            buf.push(n);
            k += 2;
            continue;
        }
        if quote == '"' && c == '\\' && raw && k + 1 < inner.len() {
            buf.push(c);
            buf.push(inner[k + 1]);
            k += 2;
            continue;
        }
        buf.push(c);
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_plain_word() {
        let (rest, flags) = extract_flags("--from=build --chown=1:1 a b");
        assert_eq!(flags, ["--from=build", "--chown=1:1"]);
        assert_eq!(rest, "a b");
        let (rest, flags) = extract_flags("--link -- --notaflag x");
        assert_eq!(flags, ["--link"]);
        assert_eq!(rest, " --notaflag x");
        let (_, flags) = extract_flags(r#"--mount="type=cache,target=/a b" x"#);
        assert_eq!(flags, ["--mount=type=cache,target=/a b"]);
    }

    #[test]
    fn parse_words_keeps_quotes() {
        assert_eq!(
            parse_words(r#"a="x y" b=c\ d 'e f'"#, '\\'),
            [r#"a="x y""#, r"b=c\ d", "'e f'"]
        );
        assert_eq!(parse_words("a=''", '\\'), ["a=''"]);
    }

    #[test]
    fn heredoc_words_glue_markers() {
        let w = heredoc_words(r#"cat << "EOF" > x"#, true).unwrap_or_default();
        assert_eq!(w, ["cat", r#"<< "EOF""#, ">", "x"]);
        assert!(heredoc_words("echo 'open", true).is_none());
    }
}
