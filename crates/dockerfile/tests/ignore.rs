//! `.dockerignore`: Docker's documented examples and moby's patternmatcher cases.
#![allow(clippy::unwrap_used)]

use berth_dockerfile::{IgnoreError, IgnoreMatcher};

fn m(patterns: &[&str]) -> IgnoreMatcher {
    IgnoreMatcher::new(patterns).unwrap()
}

#[test]
fn docker_docs_examples() {
    let file = b"# comment\n*/temp*\n*/*/temp*\ntemp?\n";
    let ig = IgnoreMatcher::parse(file).unwrap();
    for (path, ignored) in [
        ("somedir/temporary.txt", true),
        ("somedir/temp", true),
        ("somedir/subdir/temporary.txt", true),
        ("tempa", true),
        ("tempb", true),
        ("temp", false),
        ("temporary.txt", false),
        ("a/b/c/temp", false),
        ("# comment", false),
    ] {
        assert_eq!(ig.matches(path), ignored, "{path}");
    }
}

#[test]
fn exceptions_last_match_wins() {
    let ig = m(&["*.md", "!README.md"]);
    assert!(ig.matches("CHANGES.md"));
    assert!(!ig.matches("README.md"));

    let ig = m(&["*.md", "!README*.md", "README-secret.md"]);
    assert!(ig.matches("README-secret.md"));
    assert!(!ig.matches("README.md") && !ig.matches("README-public.md"));

    let ig = m(&["*.md", "README-secret.md", "!README*.md"]);
    assert!(!ig.matches("README-secret.md"));
}

#[test]
fn double_star_leading_and_trailing_slash() {
    let ig = m(&["**/*.go"]);
    for p in ["a.go", "x/a.go", "x/y/z/a.go"] {
        assert!(ig.matches(p), "{p}");
    }
    assert!(!ig.matches("a.goo"));

    let ig = IgnoreMatcher::parse(b"/build\ndist/\n./tmp//x\n").unwrap();
    let pats: Vec<String> = ig.patterns().collect();
    assert_eq!(pats, ["build", "dist", "tmp/x"]);
    for p in [
        "build",
        "build/out/a",
        "dist",
        "dist/a.whl",
        "tmp/x",
        "tmp/x/y",
    ] {
        assert!(ig.matches(p), "{p}");
    }
    assert!(!ig.matches("src/build") && !ig.matches("tmp/xy"));
    // Paths are cleaned too.
    assert!(ig.matches("./build/../build/a"));
}

#[test]
fn comments_only_in_first_column_and_bom() {
    let ig = IgnoreMatcher::parse("\u{feff}#x\n  #y\n  !  keep  \n\n".as_bytes()).unwrap();
    let pats: Vec<String> = ig.patterns().collect();
    assert_eq!(pats, ["#y", "!keep"]);
    assert!(ig.matches("#y"));
}

/// moby `TestMatches` (single pattern, including parent-directory matches).
#[test]
fn moby_single_pattern_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\*b", "a*b", true),
        ("a\\*b", "ab", false),
        // Go filepath.Match cases.
        ("*", "abc", true),
        ("a*/b", "abc/b", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("a*b?c*x", "abxbbxdbxebxczzy", false),
        ("ab[^e-g]", "abc", true),
        ("a?b", "a\u{263a}b", true),
        ("a???b", "a\u{263a}b", false),
        ("[a-\u{3b6}]*", "\u{3b1}", true),
        ("a?b", "a/b", false),
        ("[\\]a]", "]", true),
        ("[x\\-]", "-", true),
        ("[x\\-]", "z", false),
        ("*x", "xxx", true),
        // A pattern matching a parent directory ignores everything below it.
        ("dir", "dir/sub/file", true),
        ("*/temp*", "somedir/temporary/file", true),
    ];
    for &(pattern, path, want) in cases {
        assert_eq!(
            m(&[pattern]).matches(path),
            want,
            "pattern {pattern:?} path {path:?}"
        );
    }
}

#[test]
fn moby_multi_pattern_table() {
    assert!(!m(&["**", "!util/docker/web"]).matches("util/docker/web/foo"));
    assert!(m(&["**", "!util/docker/web", "util/docker/web/foo"]).matches("util/docker/web/foo"));
    assert!(
        !m(&["**", "!dist/*.whl"])
            .matches("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl")
    );
}

#[test]
fn bad_patterns() {
    assert_eq!(
        IgnoreMatcher::new(["!"]).unwrap_err(),
        IgnoreError::IllegalExclusion
    );
    assert_eq!(
        IgnoreMatcher::parse(b"!\n").unwrap_err(),
        IgnoreError::IllegalExclusion
    );
    for p in ["[", "a[", "[^bc", "\\"] {
        assert!(
            matches!(IgnoreMatcher::new([p]), Err(IgnoreError::BadPattern(_))),
            "{p}"
        );
    }
    let many = vec!["a"; 10_001];
    assert!(matches!(
        IgnoreMatcher::new(many),
        Err(IgnoreError::TooLarge(_))
    ));
}

#[test]
fn should_descend_prunes_only_when_no_exception_can_reach_inside() {
    let ig = m(&["node_modules", "*.log"]);
    assert!(!ig.should_descend("node_modules"));
    assert!(ig.should_descend("src"));

    let ig = m(&["node_modules", "!node_modules/keep.js"]);
    assert!(ig.should_descend("node_modules"));
    assert!(!ig.matches("node_modules/keep.js"));
    assert!(ig.matches("node_modules/other.js"));

    // An exception starting with a wildcard could match anywhere.
    let ig = m(&["vendor", "!**/LICENSE"]);
    assert!(ig.should_descend("vendor"));
    assert!(!ig.matches("vendor/x/LICENSE"));

    let ig = m(&["vendor", "!docs/x"]);
    assert!(!ig.should_descend("vendor"));
    let ig = m(&["ven*", "!vendor/a"]);
    assert!(ig.should_descend("vendor"));
    assert!(!ig.should_descend("venus"));
}

#[test]
fn keep_reincludes_the_dockerfile() {
    let mut ig = m(&["*", "!src"]);
    assert!(ig.matches("Dockerfile"));
    ig.keep("Dockerfile").unwrap();
    ig.keep(".dockerignore").unwrap();
    assert!(!ig.matches("Dockerfile") && !ig.matches(".dockerignore"));
    assert!(ig.matches("other"));
}
