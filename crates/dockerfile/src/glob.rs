//! A small glob engine shared by `.dockerignore` patterns and `${v#pattern}` substitutions.
//!
//! Matching is a forward pass over the text per token (no backtracking), so hostile patterns
//! cost at most `tokens × text` steps.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    /// Any run of characters (shell `*`).
    Any,
    /// Any run without `/` (`.dockerignore` `*`).
    AnyNoSep,
    /// Any one character (shell `?`).
    One,
    /// Any one character except `/` (`.dockerignore` `?`).
    OneNoSep,
    /// Nothing, or anything ending in `/` (`.dockerignore` `**/`).
    AnyDirs,
    /// `[...]`: ranges, possibly negated.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Tok {
    fn accepts(&self, c: char) -> bool {
        match self {
            Tok::Lit(l) => *l == c,
            Tok::One => true,
            Tok::OneNoSep => c != '/',
            Tok::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            Tok::Any | Tok::AnyNoSep | Tok::AnyDirs => false,
        }
    }
}

/// Parses a `[...]` class starting after `[`; returns the token and the index after `]`, or
/// `None` when the class is not closed.
pub(crate) fn parse_class(p: &[char], mut i: usize, bang_negates: bool) -> Option<(Tok, usize)> {
    let mut negated = false;
    if p.get(i) == Some(&'^') || (bang_negates && p.get(i) == Some(&'!')) {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut c = *p.get(i)?;
        if c == ']' && !first {
            return Some((Tok::Class { negated, ranges }, i + 1));
        }
        first = false;
        if c == '\\' {
            i += 1;
            c = *p.get(i)?;
        }
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&n| n != ']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            ranges.push((c, hi));
        } else {
            ranges.push((c, c));
        }
    }
}

/// For every `j`, whether `toks` matches `text[start..j]`.
pub(crate) fn match_ends(toks: &[Tok], text: &[char], start: usize) -> Vec<bool> {
    let n = text.len();
    let mut cur = vec![false; n + 1];
    cur[start] = true;
    for tok in toks {
        let mut next = vec![false; n + 1];
        match tok {
            Tok::Any => {
                let mut seen = false;
                for j in start..=n {
                    seen |= cur[j];
                    next[j] = seen;
                }
            }
            Tok::AnyNoSep => {
                for j in start..=n {
                    next[j] = cur[j] || (j > start && next[j - 1] && text[j - 1] != '/');
                }
            }
            Tok::AnyDirs => {
                let mut seen = false;
                for j in start..=n {
                    next[j] = cur[j] || (seen && j > 0 && text[j - 1] == '/');
                    seen |= cur[j];
                }
            }
            _ => {
                for j in start..n {
                    next[j + 1] = cur[j] && tok.accepts(text[j]);
                }
            }
        }
        if !next.iter().any(|&b| b) {
            return next;
        }
        cur = next;
    }
    cur
}

/// Whether `toks` matches the whole of `text`.
pub(crate) fn matches(toks: &[Tok], text: &[char]) -> bool {
    match_ends(toks, text, 0)[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(s: &str) -> Vec<Tok> {
        s.chars().map(Tok::Lit).collect()
    }

    #[test]
    fn forward_matching() {
        let text: Vec<char> = "a/b/c.go".chars().collect();
        let mut toks = vec![Tok::AnyDirs, Tok::AnyNoSep];
        toks.extend(lits(".go"));
        assert!(matches(&toks, &text));
        let toks = vec![Tok::AnyNoSep];
        assert!(!matches(&toks, &text));
        let (class, _) = parse_class(&['a', '-', 'c', ']'], 0, false).unwrap_or((Tok::Any, 0));
        assert!(class.accepts('b') && !class.accepts('d'));
    }
}
