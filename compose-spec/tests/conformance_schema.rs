//! The printed, normalized model must validate against the Compose specification's JSON
//! schema (`compose-spec.json`): the full example and every loader-tests input.

use std::path::{Path, PathBuf};

use compose_spec::loader::{LoadOptions, load};
use compose_spec::model::Project;
use compose_spec::output;
use indexmap::IndexMap;

fn data_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/compose");
    if p.is_dir() {
        Some(p)
    } else {
        println!("conformance data not found at {}; skipping", p.display());
        None
    }
}

fn normalized(file: &Path, os_env: IndexMap<String, String>) -> Result<Project, String> {
    let opts = LoadOptions {
        config_files: vec![file.to_path_buf()],
        cwd: file.parent().map(Path::to_path_buf),
        os_env,
        consistency: false,
        ..LoadOptions::default()
    };
    load(&opts).map_err(|e| e.to_string())
}

#[test]
fn normalized_output_validates_against_the_schema() {
    let Some(dir) = data_dir() else { return };
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("compose-spec.json")).expect("schema"),
    )
    .expect("schema parses");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");

    let mut files = vec![dir.join("compose-go-full-example/full-example.yml")];
    let tests = dir.join("compose-go-extracted/loader-tests");
    for attr in std::fs::read_dir(&tests).expect("loader-tests").flatten() {
        for f in std::fs::read_dir(attr.path()).expect("attr dir").flatten() {
            files.push(f.path());
        }
    }
    files.sort();
    let mut env = IndexMap::new();
    env.insert("HOME".to_string(), "/home/berth-test".to_string());
    let (mut valid, mut failures) = (0, Vec::new());
    for f in &files {
        let p = match normalized(f, env.clone()) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: does not load: {e}", f.display()));
                continue;
            }
        };
        let value = output::to_plain_value(&p).expect("serialize");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            valid += 1;
        } else {
            failures.push(format!("{}: {}", f.display(), errors.join("; ")));
        }
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    println!(
        "schema: {valid}/{} normalized outputs validate against compose-spec.json",
        files.len()
    );
    assert!(failures.is_empty());
}
