//! compose-go's full example: the normalized model must equal its golden `expected.yaml` /
//! `expected.json` semantically, except for the deviations listed in
//! docs/compose-conformance.md (checked here one by one).

use std::path::{Path, PathBuf};

use compose_spec::loader::{LoadOptions, load};
use compose_spec::model::Project;
use compose_spec::output;
use compose_spec::yaml::{ParseLimits, parse_documents};
use indexmap::IndexMap;
use serde_json::Value;

fn data_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/compose");
    if p.is_dir() {
        p.canonicalize().ok()
    } else {
        println!("conformance data not found at {}; skipping", p.display());
        None
    }
}

const HOME: &str = "/home/berth-test";

fn load_full_example(dir: &Path) -> Project {
    let mut os_env = IndexMap::new();
    os_env.insert("HOME".to_string(), HOME.to_string());
    os_env.insert("BAR".to_string(), "this is a secret".to_string());
    os_env.insert("QUX".to_string(), "qux_from_environment".to_string());
    let opts = LoadOptions {
        config_files: vec![dir.join("full-example.yml")],
        os_env,
        cwd: Some(dir.to_path_buf()),
        consistency: false,
        ..LoadOptions::default()
    };
    load(&opts).expect("full example loads")
}

fn expected(dir: &Path, file: &str) -> Value {
    let text = std::fs::read_to_string(dir.join("compose-go-full-example").join(file))
        .expect("expected file")
        .replace(
            "${WORKDIR}",
            &dir.join("compose-go-full-example").to_string_lossy(),
        )
        .replace("${HOME}", HOME);
    if file.ends_with(".json") {
        serde_json::from_str(&text).expect("expected json")
    } else {
        let docs = parse_documents(&text, &std::sync::Arc::from(file), ParseLimits::default())
            .expect("expected yaml");
        docs[0].to_json()
    }
}

/// Differences between two JSON trees, as `path: ours != theirs` lines.
fn diff(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(w) => diff(&p, v, w, out),
                    None => out.push(format!("{p}: extra {v}")),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: missing {w}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), v, w, out);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        _ if ours == theirs => {}
        _ => out.push(format!("{path}: {ours} != {theirs}")),
    }
}

/// Deviations documented in docs/compose-conformance.md: the golden is compose-go's
/// hand-built struct, while `docker compose config` also names resources and adds the default
/// network (compose-go's `Normalize`), so these differences are expected.
fn documented(line: &str) -> bool {
    let named = ["networks.", "volumes.", "secrets.", "configs."]
        .iter()
        .any(|r| line.starts_with(&format!(".{r}")) && line.contains(".name: extra "));
    named
        || line.starts_with(".networks.default: extra")
        || line.starts_with(".services.bar.networks: extra")
}

fn check(dir: &Path, ours: Value, file: &str) -> (usize, Vec<String>) {
    let theirs = expected(dir, file);
    let mut out = Vec::new();
    diff("", &ours, &theirs, &mut out);
    let total = out.len();
    let undocumented: Vec<String> = out.into_iter().filter(|l| !documented(l)).collect();
    (total, undocumented)
}

#[test]
fn full_example_matches_golden() {
    let Some(dir) = data_dir() else { return };
    let project = load_full_example(&dir.join("compose-go-full-example"));
    let yaml = output::to_plain_value(&project).expect("serialize");
    let (total, bad) = check(&dir, yaml, "expected.yaml");
    for l in &bad {
        println!("yaml deviation: {l}");
    }
    println!(
        "full example (yaml): {} differences, {} documented, {} undocumented",
        total,
        total - bad.len(),
        bad.len()
    );
    let json: Value =
        serde_json::from_str(&output::to_json(&project).expect("json")).expect("json parses");
    let (jtotal, jbad) = check(&dir, json, "expected.json");
    for l in &jbad {
        println!("json deviation: {l}");
    }
    println!(
        "full example (json): {} differences, {} documented, {} undocumented",
        jtotal,
        jtotal - jbad.len(),
        jbad.len()
    );
    assert!(bad.is_empty() && jbad.is_empty());
}
