//! Runs compose-go's interpolation cases (`interpolation/cases.json` of the shared conformance
//! data) against `compose_spec::interpolation::substitute`.

use std::collections::HashMap;
use std::path::PathBuf;

use compose_spec::interpolation::{InterpolationError, substitute};
use serde_json::Value;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("conformance")
}

/// Resolves a case's `env`: the name of a shared map, or a literal map.
fn environment(case: &Value, envs: &Value) -> HashMap<String, String> {
    let map = match &case["env"] {
        Value::String(name) => &envs[name.as_str()],
        other => other,
    };
    map.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The message a case expects to find: interpolation_test.go cases carry the YAML path
/// compose-go's `interpolation` package prefixes, which `at_path` reproduces.
fn message(err: &InterpolationError, expected: &str) -> String {
    if let Some(rest) = expected.strip_prefix("error while interpolating ") {
        if let Some((path, _)) = rest.split_once(": ") {
            return err.at_path(path);
        }
    }
    if let Some(rest) = expected.strip_prefix("invalid interpolation format for ") {
        if let Some((path, _)) = rest.split_once(".\n") {
            return err.at_path(path);
        }
    }
    err.to_string()
}

#[test]
fn interpolation_cases() {
    let path = conformance_dir().join("compose/interpolation/cases.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!("conformance data not found at {}; skipping", path.display());
        return;
    };
    let data: Value = serde_json::from_str(&text).expect("cases.json is valid JSON");
    let envs = &data["envs"];
    let mut total = 0;
    let mut failures = Vec::new();

    for case in data["ok"].as_array().into_iter().flatten() {
        total += 1;
        let template = case["template"].as_str().unwrap_or_default();
        let expected = case["expected"].as_str().unwrap_or_default();
        let env = environment(case, envs);
        let lookup = |k: &str| env.get(k).cloned();
        match substitute(template, &lookup) {
            Ok(s) if s.value == expected => {}
            Ok(s) => failures.push(format!(
                "{template:?}: expected {expected:?}, got {:?}",
                s.value
            )),
            Err(e) => failures.push(format!("{template:?}: expected {expected:?}, error {e}")),
        }
    }

    for case in data["errors"].as_array().into_iter().flatten() {
        total += 1;
        let template = case["template"].as_str().unwrap_or_default();
        let expected = case["error_contains"].as_str().unwrap_or_default();
        let env = environment(case, envs);
        let lookup = |k: &str| env.get(k).cloned();
        match substitute(template, &lookup) {
            Err(e) if message(&e, expected).contains(expected) => {}
            Err(e) => failures.push(format!(
                "{template:?}: expected error containing {expected:?}, got {:?}",
                message(&e, expected)
            )),
            Ok(s) => failures.push(format!(
                "{template:?}: expected error containing {expected:?}, got value {:?}",
                s.value
            )),
        }
    }

    for f in &failures {
        println!("FAIL {f}");
    }
    println!(
        "interpolation: {}/{} cases pass",
        total - failures.len(),
        total
    );
    assert!(total > 0, "no cases found in {}", path.display());
    assert!(
        failures.is_empty(),
        "{} interpolation cases fail",
        failures.len()
    );
}
