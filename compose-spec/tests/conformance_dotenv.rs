//! Runs compose-go's dotenv cases (`compose-go/dotenv/` of the shared conformance data):
//! single-line parses, the fixture files with their expected maps, and the two fixtures whose
//! expectations live only in `godotenv_test.go` (an error line and an unset bare key).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use compose_spec::dotenv;
use indexmap::IndexMap;
use serde_json::Value;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("conformance")
}

fn string_map(v: &Value) -> HashMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// What `godotenv_test.go` does for the cases the extractor marked "see test": the variables
/// the test puts in the OS environment, extra expected keys, and whether the map must have
/// exactly the expected size (tests that check `len(envMap)`).
struct SeeTest {
    env: &'static [(&'static str, &'static str)],
    extra: &'static [(&'static str, &'static str)],
    /// `Read` drops keys starting with a digit (compose-go's `startsWithDigitRegex`).
    read_filters_digits: bool,
}

fn see_test(name: &str) -> Option<SeeTest> {
    const OS: &[(&str, &str)] = &[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")];
    let t = |env, extra, read_filters_digits| SeeTest {
        env,
        extra,
        read_filters_digits,
    };
    Some(match name {
        "TestReadPlainEnv" => t(&[], &[], true),
        "TestInheritedEnvVariableSameSize" | "TestInheritedEnvVariableSingleVar" => t(OS, OS, true),
        "TestSubstitutionsWithEnvFilePrecedence"
        | "TestSubstitutionsWithEnvFileDefaultValuePrecedence" => {
            t(&[("OPTION_A", "5")], &[], true)
        }
        "TestSubstitutionsWithUnsetVarEnvFileDefaultValuePrecedence" => t(&[], &[], true),
        // a custom `key:value` format registered by the test; the default parser reads
        // `KEY: value` the same way
        "TestLoadWithFormat" => t(&[], &[], false),
        _ => return None,
    })
}

fn read(path: &Path, env: &HashMap<String, String>) -> Result<IndexMap<String, String>, String> {
    let lookup = |k: &str| env.get(k).cloned();
    dotenv::read_file(path, &lookup).map_err(|e| e.to_string())
}

fn check_expected_maps(base: &Path, failures: &mut Vec<String>) -> usize {
    let Ok(text) = std::fs::read_to_string(base.join("expected.json")) else {
        failures.push("expected.json unreadable".into());
        return 0;
    };
    let cases: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut total = 0;
    for case in cases.as_array().into_iter().flatten() {
        total += 1;
        let test = case["test"].as_str().unwrap_or_default();
        let fixture = base.join(case["fixture"].as_str().unwrap_or_default());
        let mut expected = string_map(&case["expected"]);
        let presets = string_map(&case["presets"]);
        let mut env = string_map(&case["setenv"]);
        let loader = case["loader"].as_str().unwrap_or_default();

        let exact = if loader == "see test" {
            let Some(st) = see_test(test) else {
                failures.push(format!("{test}: no port of this 'see test' case"));
                continue;
            };
            env.extend(st.env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            expected.extend(st.extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            Some(st.read_filters_digits)
        } else {
            None
        };

        // `Load` parses without a lookup, then leaves variables already in the environment alone.
        let parsed = match read(&fixture, &env) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{test}: {e}"));
                continue;
            }
        };
        let mut actual: IndexMap<String, String> = parsed;
        if exact == Some(true) {
            actual.retain(|k, _| !k.trim_start().starts_with(|c: char| c.is_ascii_digit()));
        }
        for (k, v) in &presets {
            actual.insert(k.clone(), v.clone());
        }

        let mut problems = Vec::new();
        for (k, want) in &expected {
            let got = actual
                .get(k)
                .map(|v| v.replace("\r\n", "\n"))
                .unwrap_or_default();
            if &got != want {
                problems.push(format!("{k}: want {want:?}, got {got:?}"));
            }
        }
        if exact.is_some() && actual.len() != expected.len() {
            problems.push(format!(
                "want {} keys, got {}: {actual:?}",
                expected.len(),
                actual.len()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{test}: {}", problems.join("; ")));
        }
    }
    total
}

fn check_lines(base: &Path, failures: &mut Vec<String>) -> usize {
    let Ok(text) = std::fs::read_to_string(base.join("parse-lines.json")) else {
        failures.push("parse-lines.json unreadable".into());
        return 0;
    };
    let cases: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut total = 0;
    for case in cases.as_array().into_iter().flatten() {
        total += 1;
        let line = case["line"].as_str().unwrap_or_default();
        let key = case["key"].as_str().unwrap_or_default();
        let want = case["value"].as_str().unwrap_or_default();
        match dotenv::parse(line, &|_| None) {
            Ok(m) => match m.get(key) {
                Some(got) if got == want => {}
                got => failures.push(format!("{line:?}: {key} want {want:?}, got {got:?}")),
            },
            Err(e) => failures.push(format!("{line:?}: {e}")),
        }
    }
    total
}

/// Fixtures whose expectations are only in the Go source (TestErrorParsing,
/// TestInheritedEnvVariableNotFound).
fn check_go_only_fixtures(base: &Path, failures: &mut Vec<String>) -> usize {
    let none = HashMap::new();
    match read(&base.join("fixtures/invalid1.env"), &none) {
        Err(e) if e.contains("line 7: key cannot contain a space") => {}
        other => failures.push(format!(
            "invalid1.env: want error with 'line 7: key cannot contain a space', got {other:?}"
        )),
    }
    match read(&base.join("fixtures/inherited-not-found.env"), &none) {
        Ok(m) if !m.contains_key("VARIABLE_NOT_FOUND") => {}
        other => failures.push(format!(
            "inherited-not-found.env: want no VARIABLE_NOT_FOUND and no error, got {other:?}"
        )),
    }
    2
}

#[test]
fn dotenv_cases() {
    let base = conformance_dir().join("compose/compose-go/dotenv");
    if !base.is_dir() {
        println!("conformance data not found at {}; skipping", base.display());
        return;
    }
    let mut all = Vec::new();
    let mut total = 0;
    for (name, run) in [
        (
            "dotenv lines",
            check_lines as fn(&Path, &mut Vec<String>) -> usize,
        ),
        ("dotenv fixtures", check_expected_maps),
        ("dotenv go-only fixtures", check_go_only_fixtures),
    ] {
        let mut failures = Vec::new();
        let n = run(&base, &mut failures);
        for f in &failures {
            println!("FAIL {name}: {f}");
        }
        println!(
            "{name}: {}/{n} cases pass",
            n.saturating_sub(failures.len())
        );
        total += n;
        all.extend(failures);
    }
    println!(
        "dotenv: {}/{total} cases pass",
        total.saturating_sub(all.len())
    );
    assert!(total > 0, "no dotenv cases found in {}", base.display());
    assert!(all.is_empty(), "{} dotenv cases fail", all.len());
}
