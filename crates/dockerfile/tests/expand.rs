//! Variable expansion: BuildKit's shell-lexer semantics, table-driven.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use berth_dockerfile::Lexer;

fn env() -> BTreeMap<String, String> {
    [
        ("a", "A"),
        ("empty", ""),
        ("sp", "x y"),
        ("v", "/usr/local/bin.tar.gz"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn ok(lexer: Lexer, input: &str) -> String {
    match lexer.expand_word(input, &env()) {
        Ok(s) => s,
        Err(e) => panic!("{input:?}: {e}"),
    }
}

#[test]
fn substitutions() {
    let cases = [
        ("$a", "A"),
        ("${a}", "A"),
        ("pre${a}post$a", "preApostA"),
        ("$a_x", ""),
        ("${unset:-def}", "def"),
        ("${empty:-def}", "def"),
        ("${empty-def}", ""),
        ("${unset-def}", "def"),
        ("${a:+alt}", "alt"),
        ("${empty:+alt}", ""),
        ("${empty+alt}", "alt"),
        ("${unset+alt}", ""),
        ("${unset:-$a}", "A"),
        ("${unset:-${a:+x}y}", "xy"),
        ("${unset:-a b}", "a b"),
        ("${a:?}", "A"),
        ("${empty?}", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$1x", "x"),
        ("$$", ""),
        ("${v#*/}", "usr/local/bin.tar.gz"),
        ("${v##*/}", "bin.tar.gz"),
        ("${v%.*}", "/usr/local/bin.tar"),
        ("${v%%.*}", "/usr/local/bin"),
        ("${v#nomatch}", "/usr/local/bin.tar.gz"),
        ("${v/local/opt}", "/usr/opt/bin.tar.gz"),
        ("${v//\\//_}", "_usr_local_bin.tar.gz"),
        ("${v/l*l/X}", "/usr/X/bin.tar.gz"),
    ];
    for (input, want) in cases {
        assert_eq!(ok(Lexer::new('\\'), input), want, "{input}");
    }
}

#[test]
fn quotes_and_escapes() {
    let cases = [
        ("'$a'", "$a"),
        ("\"$a\"", "A"),
        ("\\$a", "$a"),
        ("'\\$a'", "\\$a"),
        ("\"\\$a\"", "$a"),
        ("\"a\\b\"", "a\\b"),
        ("\"a\\\\b\"", "a\\b"),
        ("\"a\\\"b\"", "a\"b"),
        ("a\\ b", "a b"),
        ("a\\", "a"),
        ("'a'\"b\"c", "abc"),
        ("\"'$a'\"", "'A'"),
        ("'\"$a\"'", "\"$a\""),
    ];
    for (input, want) in cases {
        assert_eq!(ok(Lexer::new('\\'), input), want, "{input}");
    }
}

#[test]
fn backtick_escape() {
    let lx = Lexer::new('`');
    assert_eq!(ok(lx, "a`$a"), "a$a");
    assert_eq!(ok(lx, "C:\\dir\\$a"), "C:\\dir\\A");
    assert_eq!(ok(lx, "\"`\"\""), "\"");
}

#[test]
fn errors() {
    let cases = [
        ("${a", "syntax error: missing '}'"),
        ("${unset:-x", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:a}", "syntax error: bad substitution"),
        (
            "'abc",
            "unexpected end of statement while looking for matching single-quote",
        ),
        (
            "\"abc",
            "unexpected end of statement while looking for matching double-quote",
        ),
        ("${unset:?}", "unset: is not allowed to be unset"),
        ("${empty:?}", "empty: is not allowed to be empty"),
        ("${empty:?must be set}", "empty: must be set"),
        ("${unset?x}", "unset: x"),
        ("${a:x}", "unsupported modifier (:x) in substitution"),
        ("${a:#x}", "unsupported modifier (:#) in substitution"),
        ("${a!}", "unsupported modifier (!) in substitution"),
    ];
    for (input, want) in cases {
        let e = Lexer::new('\\').expand_word(input, &env()).unwrap_err();
        assert_eq!(e.0, format!("failed to process {input:?}: {want}"));
    }
}

#[test]
fn word_splitting_for_expose() {
    let lx = Lexer::new('\\');
    assert_eq!(lx.expand_words("80 $sp", &env()).unwrap(), ["80", "x", "y"]);
    assert_eq!(lx.expand_words("\"a b\" c", &env()).unwrap(), ["a b", "c"]);
    assert_eq!(lx.expand_words("\"$sp\"", &env()).unwrap(), ["x y"]);
}

#[test]
fn heredoc_bodies() {
    // Quotes are plain characters; `\` still escapes (BuildKit eats `\n` too).
    let got = ok(Lexer::heredoc(), "echo \"$a\" '$a' \\$a a\\nb\n");
    assert_eq!(got, "echo \"A\" 'A' $a anb\n");
}

#[test]
fn keep_unset_and_raw() {
    let lx = Lexer::new('\\').keep_unset();
    assert_eq!(
        ok(lx, "$nope ${nope} ${nope:-x} $a"),
        "$nope ${nope} ${nope:-x} A"
    );
    assert_eq!(
        ok(Lexer::new('\\').raw(), "'$a' \"$a\" \\x"),
        "'$a' \"A\" \\x"
    );
}

#[test]
fn nesting_and_size_are_bounded() {
    let deep = format!("{}x{}", "${u:-".repeat(200), "}".repeat(200));
    let e = Lexer::new('\\').expand_word(&deep, &env()).unwrap_err();
    assert!(e.0.ends_with(": variable substitutions are nested too deeply"));
    let ok_deep = format!("{}x{}", "${u:-".repeat(30), "}".repeat(30));
    assert_eq!(Lexer::new('\\').expand_word(&ok_deep, &env()).unwrap(), "x");

    let mut big = env();
    big.insert("big".into(), "b".repeat(600_000));
    let e = Lexer::new('\\').expand_word("$big$big", &big).unwrap_err();
    assert_eq!(
        e.0,
        "failed to process \"$big$big\": expanded value is too long"
    );
}
