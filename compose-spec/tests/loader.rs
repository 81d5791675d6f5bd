//! Loader behaviour beyond compose-go's fixtures: multi-file merge with `!reset`/`!override`,
//! multi-document files, discovery, `COMPOSE_*` variables, warnings and error locations.

use std::path::{Path, PathBuf};

use compose_spec::{LoadOptions, ServiceGraph, load_node, load_project};
use indexmap::IndexMap;
use serde_json::json;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        cwd: Some(dir.to_path_buf()),
        ..LoadOptions::default()
    }
}

#[test]
fn reset_and_override_across_files() {
    let d = tempfile::tempdir().unwrap();
    let a = write(
        d.path(),
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n    command: [a, b]\n",
    );
    let b = write(
        d.path(),
        "override.yaml",
        "services:\n  web:\n    ports: !reset []\n    environment: !override {C: '3'}\n    command: [c]\n",
    );
    let l = load_node(&LoadOptions {
        config_files: vec![a, b],
        ..opts(d.path())
    })
    .unwrap();
    let web = &l.node.to_json()["services"]["web"];
    assert_eq!(web.get("ports"), None);
    assert_eq!(web["environment"], json!({"C": "3"}));
    assert_eq!(web["command"], json!(["c"]));
    let base = d.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(l.name, compose_spec::loader::normalize_project_name(base));
}

#[test]
fn multi_document_files_merge_in_order() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "compose.yaml",
        "services:\n  a:\n    image: x\n    labels: [k=1]\n---\nservices:\n  a:\n    labels: [k=2, j=3]\n",
    );
    let l = load_node(&opts(d.path())).unwrap();
    assert_eq!(
        l.node.to_json()["services"]["a"]["labels"],
        json!(["k=2", "j=3"])
    );
}

#[test]
fn discovery_walks_up_and_adds_the_override() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "compose.yaml", "services:\n  a:\n    image: x\n");
    write(
        d.path(),
        "compose.override.yaml",
        "services:\n  a:\n    image: y\n",
    );
    std::fs::create_dir_all(d.path().join("sub/deeper")).unwrap();
    let l = load_node(&opts(&d.path().join("sub/deeper"))).unwrap();
    assert_eq!(l.files.len(), 2);
    assert_eq!(l.node.to_json()["services"]["a"]["image"], "y");
    assert_eq!(l.working_dir, d.path());
}

/// compose-go's `TestLoadWithIncludeEnv`: an include's `env_file` feeds only its services.
#[test]
fn include_env_is_scoped_to_the_included_project() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "custom.env", "VAR_NAME=value");
    write(
        d.path(),
        "compose.yml",
        "include:\n  - path:\n    - ./module/compose.yml\n    env_file:\n      - ./custom.env\nservices:\n  a:\n    image: alpine\n    environment:\n      - VAR_NAME\n",
    );
    write(
        d.path(),
        "module/compose.yml",
        "services:\n  b:\n    image: alpine\n    environment:\n      - VAR_NAME\n  c:\n    image: alpine\n    environment:\n      - VAR_NAME\n",
    );
    let l = load_node(&opts(d.path())).unwrap();
    let j = l.node.to_json();
    assert_eq!(j["services"]["a"]["environment"], json!(["VAR_NAME"]));
    assert_eq!(j["services"]["b"]["environment"], json!(["VAR_NAME=value"]));
    assert_eq!(j["services"]["c"]["environment"], json!(["VAR_NAME=value"]));
}

#[test]
fn several_candidate_files_warn() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "compose.yaml", "services:\n  a:\n    image: x\n");
    write(
        d.path(),
        "docker-compose.yml",
        "services:\n  a:\n    image: y\n",
    );
    let l = load_node(&opts(d.path())).unwrap();
    assert_eq!(l.files, vec![d.path().join("compose.yaml")]);
    assert!(
        l.warnings[0].starts_with("Found multiple config files"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn compose_file_with_separator_and_profiles_from_env() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "one.yaml",
        "services:\n  a:\n    image: x\n  dbg:\n    image: d\n    profiles: [debug]\n",
    );
    write(d.path(), "two.yaml", "services:\n  b:\n    image: y\n");
    let o = LoadOptions {
        os_env: IndexMap::from([
            ("COMPOSE_FILE".to_string(), "one.yaml;two.yaml".to_string()),
            ("COMPOSE_PATH_SEPARATOR".to_string(), ";".to_string()),
            ("COMPOSE_PROFILES".to_string(), "debug".to_string()),
        ]),
        ..opts(d.path())
    };
    let l = load_node(&o).unwrap();
    let services = l.node.to_json()["services"].clone();
    assert_eq!(services.as_object().unwrap().len(), 3);
    assert_eq!(l.all_profiles, vec!["debug"]);
}

#[test]
fn unset_variables_warn_once_and_become_empty() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "compose.yaml",
        "services:\n  a:\n    image: x${TAG}\n    labels:\n      - v=${TAG}\n",
    );
    let l = load_node(&opts(d.path())).unwrap();
    assert_eq!(l.node.to_json()["services"]["a"]["image"], "x");
    assert_eq!(
        l.warnings,
        vec!["The \"TAG\" variable is not set. Defaulting to a blank string."]
    );
}

#[test]
fn errors_name_file_line_and_path() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "compose.yaml",
        "services:\n  a:\n    image: ${X:?X is required}\n",
    );
    let e = load_node(&opts(d.path())).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "compose.yaml:3:12: error while interpolating services.a.image: required variable X is missing a value: X is required"
        ),
        "{e}"
    );
    write(
        d.path(),
        "compose.yaml",
        "services:\n  a:\n    image: x\n    ports: ['80:80:80:80/tcpx']\n",
    );
    let e = load_node(&opts(d.path())).unwrap_err().to_string();
    assert!(e.contains("compose.yaml:4:13: services.a.ports[0]"), "{e}");
    write(d.path(), "compose.yaml", "- a\n");
    let e = load_node(&opts(d.path())).unwrap_err().to_string();
    assert!(e.contains("top-level object must be a mapping"), "{e}");
}

#[test]
fn missing_files_and_directories_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let e = load_node(&opts(d.path())).unwrap_err().to_string();
    assert!(
        e.starts_with("no configuration file provided: not found"),
        "{e}"
    );
    let e = load_node(&LoadOptions {
        config_files: vec![PathBuf::from("nope.yaml")],
        ..opts(d.path())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope.yaml"), "{e}");
    write(d.path(), "compose.yaml", "services:\n  a:\n    image: x\n");
    let e = load_node(&LoadOptions {
        env_files: vec![PathBuf::from("missing.env")],
        ..opts(d.path())
    })
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("couldn't find env file:"), "{e}");
}

#[test]
fn extends_cycles_are_detected() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "compose.yaml",
        "services:\n  a:\n    image: x\n    extends: b\n  b:\n    extends: a\n",
    );
    let e = load_node(&opts(d.path())).unwrap_err().to_string();
    assert!(e.starts_with("Circular reference:"), "{e}");
}

#[test]
fn named_services_enable_their_profiles_dependencies() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "compose.yaml",
        "services:\n  web:\n    image: x\n    profiles: [web]\n    depends_on: [db]\n  db:\n    image: y\n    profiles: [db]\n",
    );
    let l = load_project(&LoadOptions {
        services: vec!["web".into()],
        ..opts(d.path())
    })
    .unwrap();
    assert_eq!(l.project.services.len(), 2);
    let g = ServiceGraph::from_project(&l.project).unwrap();
    assert_eq!(g.start_order(), vec![vec!["db"], vec!["web"]]);
    let e = load_project(&LoadOptions {
        profiles: vec!["web".into()],
        ..opts(d.path())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"db\""), "{e}");
}

/// Not a timed test: prints how long a 5,000-service project takes, to spot quadratic work.
#[test]
#[ignore]
fn five_thousand_services() {
    let d = tempfile::tempdir().unwrap();
    for n in [500usize, 5000] {
        let mut text = String::from("services:\n");
        for i in 0..n {
            text.push_str(&format!(
                "  s{i}:\n    image: busybox:${{TAG:-1}}\n    ports: ['{p}:80']\n    environment: {{A: '1'}}\n    volumes: ['./d{i}:/d']\n    depends_on: [s{d}]\n",
                p = 10000 + i,
                d = i.saturating_sub(1)
            ));
        }
        let f = write(d.path(), &format!("c{n}.yaml"), &text);
        let o = LoadOptions {
            config_files: vec![f],
            consistency: false,
            ..opts(d.path())
        };
        let t = std::time::Instant::now();
        let docs = compose_spec::yaml::parse_documents(
            &text,
            &std::sync::Arc::from("c.yaml"),
            compose_spec::yaml::ParseLimits::default(),
        )
        .unwrap();
        let t_parse = t.elapsed();
        drop(docs);
        let t = std::time::Instant::now();
        let l = load_node(&o).unwrap();
        let t_node = t.elapsed();
        let t = std::time::Instant::now();
        load_project(&o).unwrap();
        println!(
            "{n} services: parse {t_parse:?}, load_node {:?}, load_project {:?} ({} top keys)",
            t_node,
            t.elapsed(),
            l.node.as_map().unwrap().len()
        );
    }
}

#[test]
fn env_files_interpolate_from_service_env_earlier_files_and_project_env() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.env", "BASE=from-a\n");
    write(
        d.path(),
        "b.env",
        "FROM_EARLIER=${BASE}-b\nFROM_SERVICE=${SVC}\nFROM_PROJECT=${PROJ}\n",
    );
    write(d.path(), "raw.env", "RAW=${BASE}\nPROJ\n");
    write(
        d.path(),
        "compose.yaml",
        "services:\n  web:\n    image: x\n    env_file: [a.env, b.env, {path: raw.env, format: raw}]\n    environment: {SVC: svc}\n",
    );
    let mut o = opts(d.path());
    o.os_env = IndexMap::from([("PROJ".to_string(), "proj".to_string())]);
    let l = load_project(&o).unwrap();
    let env = &l.project.services["web"].environment;
    let get = |k: &str| env.get(k).cloned().flatten();
    assert_eq!(get("FROM_EARLIER").as_deref(), Some("from-a-b"));
    assert_eq!(get("FROM_SERVICE").as_deref(), Some("svc"));
    assert_eq!(get("FROM_PROJECT").as_deref(), Some("proj"));
    // Raw files keep `${...}` literally but still resolve bare names.
    assert_eq!(get("RAW").as_deref(), Some("${BASE}"));
    assert_eq!(get("PROJ").as_deref(), Some("proj"));
}
