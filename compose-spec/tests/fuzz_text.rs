//! Property tests for the text layers: `interpolation::substitute` and the dotenv parsers
//! never panic, never hang and never overflow the stack, whatever the input.

use std::time::{Duration, Instant};

use compose_spec::dotenv;
use compose_spec::interpolation::{InterpolationError, MAX_NESTING, substitute};
use proptest::prelude::*;

fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("a".into()),
        "E" => Some(String::new()),
        "N" => Some("${A}".into()),
        _ => None,
    }
}

/// Strings built from the pieces that matter to the scanners, so that random input reaches
/// the interesting states far more often than arbitrary Unicode would.
fn pieces(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), 0..max).prop_map(|v| v.concat())
}

const TEMPLATE_PIECES: &[&str] = &[
    "$", "$", "{", "}", "}", "${", "$$", ":", "-", "+", "?", ":-", ":?", ":+", "A", "B", "E", "N",
    "_", "x", "1", " ", "\n", "é", "\u{17f}", "!", "\"", "\\", "#",
];

const DOTENV_PIECES: &[&str] = &[
    "A", "B", "KEY", "=", "=", ":", "'", "\"", "\\", "\\n", "\\0123", "\\$", "#", " #", " ", "\t",
    "\n", "\n", "\r\n", "export ", "export", "$", "${", "}", ":-", "é", "\u{feff}", "0", ".", "-",
    "[", "]", "!",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn substitute_handles_structured_input(template in pieces(TEMPLATE_PIECES, 64)) {
        match substitute(&template, &lookup) {
            Ok(s) => {
                if !template.contains('$') {
                    prop_assert_eq!(&s.value, &template);
                }
                for name in &s.unset {
                    prop_assert!(template.contains(name.as_str()));
                }
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn substitute_handles_arbitrary_strings(template in any::<String>()) {
        let result = substitute(&template, &lookup);
        if !template.contains('$') {
            prop_assert_eq!(result.map(|s| s.value).ok(), Some(template));
        }
    }

    #[test]
    fn dotenv_handles_structured_input(content in pieces(DOTENV_PIECES, 64)) {
        let lines = content.matches('\n').count() + 1;
        match dotenv::parse(&content, &lookup) {
            Ok(map) => prop_assert!(map.len() <= lines + content.len()),
            Err(e) => {
                // compose-go counts a bare key's newline twice in one quirk, hence the slack
                if let Some(line) = e.line() {
                    prop_assert!(line >= 1 && line <= lines + 1, "line {} of {}", line, lines);
                }
            }
        }
        let _ = dotenv::parse_raw(&content);
        let _ = dotenv::parse_raw_with_lookup(&content, Some(&lookup));
    }

    #[test]
    fn dotenv_handles_arbitrary_strings(content in any::<String>()) {
        let _ = dotenv::parse(&content, &lookup);
        let _ = dotenv::parse_raw(&content);
    }
}

proptest! {
    // Each case costs up to MAX_NESTING passes over its input, so fewer and smaller cases here.
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn nesting_is_bounded(depth in 1usize..1000, op in prop::sample::select(&[":-", "-", ":+", "+", ":?", "?"][..])) {
        let template = format!("{}x{}", format!("${{U{op}").repeat(depth), "}".repeat(depth));
        match substitute(&template, &lookup) {
            Ok(_) => {}
            Err(InterpolationError::TooDeep { .. }) => prop_assert!(depth > MAX_NESTING),
            Err(InterpolationError::MissingRequired { .. }) => prop_assert!(op.contains('?')),
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}

/// Large inputs of the shapes that could go quadratic (every expression scanning to the end of
/// its line, unbalanced braces, long comment runs) finish quickly.
#[test]
fn large_inputs_stay_fast() {
    let budget = Duration::from_secs(5);
    let cases = [
        "${A:-x}".repeat(100_000),
        "${U:-{".repeat(50_000) + "}",
        "$$ $A ${E} ".repeat(100_000),
        format!("{}{}", "${U:-".repeat(60), "}".repeat(60)).repeat(2_000),
    ];
    for template in &cases {
        let start = Instant::now();
        let _ = substitute(template, &lookup);
        assert!(
            start.elapsed() < budget,
            "substitute took {:?}",
            start.elapsed()
        );
    }
    let files = [
        "# comment\n".repeat(200_000),
        "A=${A:-x} # c\nB=\"q\\n$A\"\n".repeat(50_000),
        "KEY".repeat(300_000),
        "\"".to_string() + &"x\\\"".repeat(200_000),
    ];
    for content in &files {
        let start = Instant::now();
        let _ = dotenv::parse(content, &lookup);
        let _ = dotenv::parse_raw(content);
        assert!(
            start.elapsed() < budget,
            "dotenv took {:?}",
            start.elapsed()
        );
    }
}

/// Nesting far beyond any limit is an error, not a stack overflow.
#[test]
fn very_deep_nesting_is_an_error() {
    let depth = 100_000;
    let template = "${U:-".repeat(depth) + &"}".repeat(depth);
    assert!(matches!(
        substitute(&template, &lookup),
        Err(InterpolationError::TooDeep { .. })
    ));
    let content = format!("A=\"{template}\"\n");
    assert!(matches!(
        dotenv::parse(&content, &lookup),
        Err(dotenv::DotenvError::Interpolation {
            source: InterpolationError::TooDeep { .. },
            ..
        })
    ));
}
