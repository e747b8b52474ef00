//! Property tests: no input makes the parser, the expander or the ignore matcher panic.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use berth_dockerfile::{BuildArgs, Dockerfile, IgnoreMatcher, Lexer, Scope, StageGraph};
use proptest::prelude::*;

/// Dockerfile-flavoured fragments, so random input often reaches deep parser states.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM x AS a\n".to_string()),
        Just("FROM $B\n".to_string()),
        Just("RUN <<EOF\n".to_string()),
        Just("RUN <<-'E' cat 3<<X\n".to_string()),
        Just("EOF\n".to_string()),
        Just("COPY <<A --from=a /d\n".to_string()),
        Just("COPY --from=0 a b\n".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("# c\n".to_string()),
        Just("ENV a=\"${b:-$c}\" d='e'\n".to_string()),
        Just("ARG x=${y:?z}\n".to_string()),
        Just("ONBUILD RUN <<EOF\n".to_string()),
        Just("HEALTHCHECK --interval=1.5s CMD [\"a\"]\n".to_string()),
        Just("RUN --mount=type=cache,target=/x,from=a y\n".to_string()),
        Just("SHELL [\"a\", 1]\n".to_string()),
        Just("LABEL a b\n".to_string()),
        "[ -~\t\n\\\\`$'\"{}<>#=\\-]{0,40}",
        any::<String>(),
    ]
}

fn drive(src: &str) {
    let Ok(df) = Dockerfile::parse("Dockerfile", src.as_bytes()) else {
        return;
    };
    let args = BuildArgs::default();
    let _ = StageGraph::build(&df, &args);
    let Ok(global) = Scope::global(&df, &args) else {
        return;
    };
    for stage in &df.stages {
        let _ = global.expand_from(&stage.from);
        let mut scope = global.for_stage(&[]);
        for step in &stage.steps {
            let _ = scope.step(&df.file, step);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(parts in prop::collection::vec(fragment(), 0..12)) {
        drive(&parts.concat());
    }

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Dockerfile::parse("Dockerfile", &bytes);
    }

    #[test]
    fn expander_never_panics(word in "[a-z$\\\\{}:+?#%/*'\"\\- `\\[\\]!]{0,40}") {
        let env: BTreeMap<String, String> =
            [("a".to_string(), "x/y.z".to_string())].into_iter().collect();
        for lx in [Lexer::new('\\'), Lexer::new('`'), Lexer::heredoc(), Lexer::new('\\').raw().keep_unset()] {
            let _ = lx.expand_word(&word, &env);
            let _ = lx.expand_words(&word, &env);
        }
    }

    #[test]
    fn ignore_never_panics(
        patterns in prop::collection::vec("[a-c*?!\\[\\]^/.\\\\-]{0,12}", 0..6),
        path in "[a-c*?/.\\\\-]{0,16}",
    ) {
        if let Ok(ig) = IgnoreMatcher::new(&patterns) {
            let _ = ig.matches(&path);
            let _ = ig.should_descend(&path);
        }
        let _ = IgnoreMatcher::parse(patterns.join("\n").as_bytes());
    }

    /// An exception pattern equal to the path always re-includes it.
    #[test]
    fn exact_exception_reincludes(path in "[a-z]{1,5}(/[a-z]{1,5}){0,3}") {
        let ig = IgnoreMatcher::new(["**", &format!("!{path}")]).unwrap();
        prop_assert!(!ig.matches(&path));
        prop_assert!(ig.should_descend(&path));
    }
}
