//! compose-go's expected-error cases (`compose-go-extracted/errors`): every input must fail
//! with an error containing compose-go's text. Documented notation differences
//! (docs/compose-conformance.md): paths use `[N]` for sequence items where compose-go's schema
//! errors print `.N`, and errors start with `file:line:col:` instead of `validating <file>:`.

use std::path::{Path, PathBuf};

use compose_spec::loader::{LoadOptions, load};

fn data_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/compose/compose-go-extracted/errors");
    if p.is_dir() {
        Some(p)
    } else {
        println!("conformance data not found at {}; skipping", p.display());
        None
    }
}

/// Load a file the way `berth compose config --no-consistency` does; the error as text.
fn load_file(path: &Path) -> Result<(), String> {
    let opts = LoadOptions {
        config_files: vec![path.to_path_buf()],
        cwd: path.parent().map(Path::to_path_buf),
        consistency: false,
        ..LoadOptions::default()
    };
    load(&opts).map(|_| ()).map_err(|e| e.to_string())
}

/// compose-go's `a.0.b` path items written as Berth writes them, `a[0].b`.
fn bracket_indexes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let ends = j == b.len() || b[j] == b'.' || b[j] == b' ' || b[j] == b':';
            let word_before =
                i > 0 && (b[i - 1].is_ascii_alphabetic() || b[i - 1] == b'_' || b[i - 1] == b'-');
            if ends && word_before {
                out.push('[');
                out.push_str(&s[i + 1..j]);
                out.push(']');
                i = j;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn matches(actual: &str, expected: &str) -> bool {
    if actual.contains(expected) || actual.contains(&bracket_indexes(expected)) {
        return true;
    }
    // `validating <file>: <message>`: Berth says `<file>:<line>:<col>: <message>`.
    if let Some(rest) = expected.strip_prefix("validating ") {
        if let Some((_, msg)) = rest.split_once(": ") {
            return actual.contains(msg);
        }
    }
    false
}

/// Cases that may still load, with the reason (reported, not failed).
const PENDING: &[(&str, &str)] = &[];

#[test]
fn expected_errors() {
    let Some(dir) = data_dir() else { return };
    let cases: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("errors.json")).expect("errors.json"),
    )
    .expect("errors.json parses");
    let (mut passed, mut pending_passed) = (0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let file = case["file"].as_str().unwrap_or_default();
        let expected = case["expect_error_contains"].as_str().unwrap_or_default();
        let path = dir.join(file.trim_start_matches("errors/"));
        let pending = PENDING.iter().find(|(f, _)| *f == file);
        match load_file(&path) {
            Ok(()) if pending.is_some() => {
                println!(
                    "PENDING {file}: {}",
                    pending.map(|p| p.1).unwrap_or_default()
                );
            }
            Ok(()) => failures.push(format!("{file}: loaded, expected error {expected:?}")),
            Err(e) if pending.is_some() && matches(&e, expected) => {
                println!("NOTE {file} passes now; its PENDING entry can go");
                passed += 1;
                pending_passed += 1;
            }
            Err(e) if matches(&e, expected) => passed += 1,
            Err(e) => failures.push(format!("{file}: got {e:?}, expected {expected:?}")),
        }
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    println!(
        "compose-go error cases: {passed}/{} pass ({} pending, {pending_passed} of which pass)",
        cases.len(),
        PENDING.len()
    );
    assert!(failures.is_empty());
}

#[test]
fn index_notation_is_translated() {
    assert_eq!(
        bracket_indexes("services.tmpfs.volumes.0.tmpfs.size must be"),
        "services.tmpfs.volumes[0].tmpfs.size must be"
    );
    assert_eq!(bracket_indexes("cpus 0.5"), "cpus 0.5");
}
