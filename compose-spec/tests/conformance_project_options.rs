//! compose-go's `cli/testdata` with the assertions of `cli/options_test.go`: project name
//! precedence and validation, file discovery, `.env` and `--env-file`, `COMPOSE_*` variables.

use std::path::{Path, PathBuf};

use compose_spec::{LoadOptions, LoadedProject, load_project};
use indexmap::IndexMap;
use serde_json::Value as J;

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/compose/compose-go/cli");
    if dir.is_dir() {
        Some(std::fs::canonicalize(dir).unwrap())
    } else {
        println!("conformance data not found at {}; skipping", dir.display());
        None
    }
}

fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

type Check = Box<dyn Fn(Result<LoadedProject, String>) -> Result<(), String>>;

fn name_is(want: &'static str) -> Check {
    Box::new(move |r| {
        let p = r?;
        if p.project.name == want {
            Ok(())
        } else {
            Err(format!("name {:?}, want {want:?}", p.project.name))
        }
    })
}

fn err_contains(want: String) -> Check {
    Box::new(move |r| match r {
        Ok(_) => Err(format!("loaded, expected error containing {want:?}")),
        Err(e) if e.contains(&want) => Ok(()),
        Err(e) => Err(format!("error {e:?}, expected {want:?}")),
    })
}

/// A JSON pointer into the serialized typed project.
fn json_is(pointer: &'static str, want: &'static str) -> Check {
    Box::new(move |r| {
        let p = r?;
        let j = serde_json::to_value(&p.project).map_err(|e| e.to_string())?;
        let got = j.pointer(pointer).cloned().unwrap_or(J::Null);
        let got = got.as_str().map_or_else(|| got.to_string(), str::to_string);
        if got == want {
            Ok(())
        } else {
            Err(format!("{pointer}: {got:?}, want {want:?}"))
        }
    })
}

#[test]
#[allow(clippy::vec_init_then_push)]
fn project_options() {
    let Some(cli) = data_dir() else { return };
    let td = cli.join("testdata");
    let simple = td.join("simple/compose.yaml");
    let base = |files: Vec<PathBuf>| LoadOptions {
        config_files: files,
        cwd: Some(cli.clone()),
        ..LoadOptions::default()
    };
    let mut cases: Vec<(String, LoadOptions, Check)> = Vec::new();

    cases.push((
        "by name".into(),
        LoadOptions {
            project_name: Some("my_project".into()),
            ..base(vec![simple.clone()])
        },
        name_is("my_project"),
    ));
    cases.push((
        "by name start with number".into(),
        LoadOptions {
            project_name: Some("42my_project_num".into()),
            ..base(vec![simple.clone()])
        },
        name_is("42my_project_num"),
    ));
    cases.push((
        "by COMPOSE_PROJECT_NAME start with number".into(),
        LoadOptions {
            os_env: env(&[("COMPOSE_PROJECT_NAME", "42my_project_env")]),
            ..base(vec![simple.clone()])
        },
        name_is("42my_project_env"),
    ));
    cases.push((
        "by name empty".into(),
        LoadOptions {
            project_name: Some(String::new()),
            ..base(vec![simple.clone()])
        },
        name_is("simple"),
    ));
    cases.push((
        "by name empty working dir".into(),
        LoadOptions {
            project_directory: Some("/path/to/proj".into()),
            ..base(vec![simple.clone()])
        },
        name_is("proj"),
    ));
    cases.push((
        "by name must not come from root directory".into(),
        LoadOptions {
            project_directory: Some("/".into()),
            ..base(vec![simple.clone()])
        },
        err_contains("project name must not be empty".into()),
    ));
    for bad in ["-my_project", "_my_project", "www.my.project", "MY_PROJECT"] {
        cases.push((
            format!("by name {bad}"),
            LoadOptions {
                project_name: Some(bad.into()),
                ..base(vec![simple.clone()])
            },
            err_contains(format!("invalid project name {bad:?}")),
        ));
        cases.push((
            format!("by COMPOSE_PROJECT_NAME {bad}"),
            LoadOptions {
                os_env: env(&[("COMPOSE_PROJECT_NAME", bad)]),
                ..base(vec![simple.clone()])
            },
            err_contains(format!("invalid project name {bad:?}")),
        ));
    }
    cases.push((
        "by working dir".into(),
        LoadOptions {
            project_directory: Some(".".into()),
            ..base(vec![simple.clone()])
        },
        name_is("cli"),
    ));
    cases.push((
        "by compose file parent dir".into(),
        base(vec![simple.clone()]),
        name_is("simple"),
    ));
    cases.push((
        "by compose file parent dir special".into(),
        base(vec![td.join("UNNORMALIZED PATH/compose.yaml")]),
        name_is("unnormalizedpath"),
    ));
    cases.push((
        "by COMPOSE_PROJECT_NAME".into(),
        LoadOptions {
            os_env: env(&[("COMPOSE_PROJECT_NAME", "my_project_from_env")]),
            ..base(vec![simple.clone()])
        },
        name_is("my_project_from_env"),
    ));
    cases.push((
        "by .env (COMPOSE_FILE and COMPOSE_PROJECT_NAME from .env)".into(),
        LoadOptions {
            cwd: Some(td.join("env-file")),
            ..base(vec![])
        },
        name_is("my_project_from_dot_env"),
    ));
    cases.push((
        "by name in compose.yaml with variable".into(),
        LoadOptions {
            os_env: env(&[("TEST", "expected")]),
            ..base(vec![td.join("simple/compose-name.yaml")])
        },
        name_is("test-expected-test"),
    ));
    cases.push((
        "set of files".into(),
        LoadOptions {
            project_name: Some("my_project".into()),
            ..base(vec![
                simple.clone(),
                td.join("simple/compose-with-overrides.yaml"),
            ])
        },
        json_is("/services/simple/image", "haproxy"),
    ));
    let want_files = vec![simple.clone()];
    cases.push((
        "compose files from working dir (discovery)".into(),
        LoadOptions {
            project_directory: Some(td.join("simple")),
            project_name: Some("my_project".into()),
            ..base(vec![])
        },
        Box::new(move |r| {
            let p = r?;
            if p.project.compose_files == want_files {
                Ok(())
            } else {
                Err(format!("files {:?}", p.project.compose_files))
            }
        }),
    ));
    let want_two = vec![
        simple.clone(),
        td.join("simple/compose-with-overrides.yaml"),
    ];
    cases.push((
        "compose files from set of files".into(),
        LoadOptions {
            project_name: Some("my_project".into()),
            ..base(vec![
                PathBuf::from("testdata/simple/compose.yaml"),
                PathBuf::from("testdata/simple/compose-with-overrides.yaml"),
            ])
        },
        Box::new(move |r| {
            let p = r?;
            if p.project.compose_files == want_two {
                Ok(())
            } else {
                Err(format!("files {:?}", p.project.compose_files))
            }
        }),
    ));
    cases.push((
        "compose file from stdin".into(),
        LoadOptions {
            project_name: Some("my_project".into()),
            stdin: Some("services:\n  simple:\n    image: nginx\n".into()),
            ..base(vec![PathBuf::from("-")])
        },
        json_is("/services/simple/image", "nginx"),
    ));
    cases.push((
        "with .env".into(),
        LoadOptions {
            project_name: Some("my_project".into()),
            cwd: Some(td.join("simple")),
            ..base(vec![PathBuf::from("compose-with-variables.yaml")])
        },
        json_is("/services/simple/ports/0/published", "8000"),
    ));
    cases.push((
        "env_file resolved into environment".into(),
        base(vec![td.join("env-file/compose-with-env-file.yaml")]),
        Box::new(|r| {
            let r = r?;
            json_is("/services/simple/environment/DEFAULT_PORT", "8080")(Ok(r.clone()))?;
            json_is("/services/simple/ports/0/published", "8000")(Ok(r))
        }),
    ));
    cases.push((
        "multiple --env-file".into(),
        LoadOptions {
            env_files: vec![
                PathBuf::from("testdata/env-file/.env"),
                PathBuf::from("testdata/env-file/override.env"),
            ],
            ..base(vec![td.join("env-file/compose-with-env-files.yaml")])
        },
        Box::new(|r| {
            let r = r?;
            json_is("/services/simple/environment/DEFAULT_PORT", "9090")(Ok(r.clone()))?;
            json_is("/services/simple/ports/0/published", "9000")(Ok(r))
        }),
    ));
    cases.push((
        "project name from working dir".into(),
        LoadOptions {
            // The .env there sets COMPOSE_PROJECT_NAME; compose-go's test does not read it.
            os_env: env(&[("COMPOSE_DISABLE_ENV_FILE", "1")]),
            ..base(vec![td.join("env-file/compose-with-env-file.yaml")])
        },
        name_is("env-file"),
    ));
    cases.push((
        "paths: windows absolute kept, relative resolved".into(),
        base(vec![td.join("simple/compose-with-paths.yaml")]),
        Box::new({
            let dir = td.join("simple");
            move |r| {
                let p = r?;
                let j = serde_json::to_value(&p.project).map_err(|e| e.to_string())?;
                let src = |i: usize| {
                    j.pointer(&format!("/services/test/volumes/{i}/source"))
                        .and_then(J::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let want = [
                    "C:\\docker\\project".to_string(),
                    dir.join("relative").display().to_string(),
                    dir.join("relative2").display().to_string(),
                ];
                for (i, w) in want.iter().enumerate() {
                    if &src(i) != w {
                        return Err(format!("volume {i}: {:?}, want {w:?}", src(i)));
                    }
                }
                Ok(())
            }
        }),
    ));

    let (mut pass, mut failed) = (0, Vec::new());
    for (name, o, check) in cases {
        match check(load_project(&o).map_err(|e| e.to_string())) {
            Ok(()) => pass += 1,
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    println!("project options: {pass} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// compose-go's `TestEnvVariablePrecedence`: the OS environment wins over `.env`, and `.env`
/// expressions see the OS value.
#[test]
fn env_variable_precedence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "FOO=foo\nBAR=${FOO}").unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: x\n",
    )
    .unwrap();
    for (os, foo, bar) in [(vec![], "foo", "foo"), (vec![("FOO", "zot")], "zot", "zot")] {
        let o = LoadOptions {
            os_env: env(&os),
            project_directory: Some(dir.path().to_path_buf()),
            cwd: Some(dir.path().to_path_buf()),
            ..LoadOptions::default()
        };
        let p = load_project(&o).unwrap().project;
        assert_eq!(p.environment.get("FOO").map(String::as_str), Some(foo));
        assert_eq!(p.environment.get("BAR").map(String::as_str), Some(bar));
    }
}
