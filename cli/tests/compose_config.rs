//! `berth compose config` end to end: output, flags, stdin, exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

fn berth(args: &[&str], stdin: Option<&str>, dir: &std::path::Path) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(dir)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("berth exits");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PROJECT: &str = "name: demo
services:
  web:
    image: nginx
    ports: [\"8080:80\"]
    depends_on: [db]
    environment:
      GREETING: \"cost: $$5\"
  db:
    image: postgres
    profiles: [storage]
volumes:
  data:
";

#[test]
fn prints_the_canonical_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("compose.yaml"), PROJECT).expect("write");
    let (code, out, err) = berth(
        &["compose", "--profile", "storage", "config"],
        None,
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("name: demo\nservices:\n  db:\n"), "{out}");
    assert!(out.contains("      - mode: ingress\n        target: 80\n        published: \"8080\"\n        protocol: tcp\n"), "{out}");
    // A literal `$` is escaped again so the output reads back as itself.
    assert!(out.contains("GREETING: 'cost: $$5'"), "{out}");
    assert!(
        out.contains("networks:\n  default:\n    name: demo_default\n"),
        "{out}"
    );

    let (code, out, _) = berth(
        &["compose", "--profile", "storage", "config", "--services"],
        None,
        dir.path(),
    );
    assert_eq!((code, out.as_str()), (0, "db\nweb\n"));
    let (_, out, _) = berth(
        &["compose", "--profile", "storage", "config", "--profiles"],
        None,
        dir.path(),
    );
    assert_eq!(out, "storage\n");
    let (_, out, _) = berth(
        &["compose", "--profile", "storage", "config", "--volumes"],
        None,
        dir.path(),
    );
    assert_eq!(out, "data\n");
    let (_, out, _) = berth(
        &["compose", "--profile", "storage", "config", "--hash", "web"],
        None,
        dir.path(),
    );
    assert!(
        out.starts_with("web ") && out.trim_end().len() == 4 + 64,
        "{out}"
    );
    let (code, out, _) = berth(
        &["compose", "--profile", "storage", "config", "-q"],
        None,
        dir.path(),
    );
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, out, _) = berth(
        &[
            "compose",
            "--profile",
            "storage",
            "config",
            "--format",
            "json",
        ],
        None,
        dir.path(),
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(v["services"]["web"]["image"], "nginx");
}

#[test]
fn reads_stdin_and_fails_with_a_located_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = berth(
        &["compose", "-f", "-", "config"],
        Some("services:\n  web:\n    image: nginx\n    enviroment: {A: b}\n"),
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains(":4:5: services.web additional properties 'enviroment' not allowed (did you mean 'environment'?)"),
        "{err}"
    );
    let (code, out, err) = berth(
        &["compose", "-f", "-", "-p", "piped", "config", "--images"],
        Some("services:\n  app:\n    build: .\n"),
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "piped-app\n");
}
