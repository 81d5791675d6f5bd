//! The projects of examples/ brought up with `berth compose up` and checked to do what they
//! say: webapp answers on its published port with the worker's page (images built from their
//! Dockerfiles), healthchain's conditions gate each step, scaled's three replicas answer one
//! name in round-robin.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Daemon, err};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// Retries `f` for up to `secs` seconds until it returns Some.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn webapp_builds_and_answers() {
    let d = Daemon::start();
    let p = example("webapp");
    // A port of its own: tests run in parallel, each in its own network namespace, but the
    // default is fine too; set it to show the variable is honoured.
    let o = d
        .cmd()
        .args(["compose", "--project-directory"])
        .arg(&p)
        .args(["up", "-d", "--wait", "--wait-timeout", "60"])
        .env("WEB_PORT", "18081")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let page = eventually(20, || {
        let o = std::process::Command::new("curl")
            .args(["-fsS", "--max-time", "2", "http://127.0.0.1:18081/"])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.contains("hello from berth").then_some(s)
    });
    assert!(page.is_some(), "webapp never answered: {}", d.log());
    assert!(page.unwrap_or_default().contains("Berth example"));
    let o = d
        .cmd()
        .args(["compose", "--project-directory"])
        .arg(&p)
        .args(["down", "-v", "--rmi", "all", "-t", "1"])
        .env("WEB_PORT", "18081")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let images = d.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("webapp"), "{images}");
}

#[test]
fn healthchain_gates_each_step() {
    let d = Daemon::start();
    let p = example("healthchain");
    let e = err(&d.compose(&p, &["up", "-d"]));
    let pos = |s: &str| e.find(s).unwrap_or_else(|| panic!("{s} not in {e}"));
    assert!(pos("healthchain-db-1  Healthy") < pos("healthchain-migrate-1  Starting"));
    assert!(pos("healthchain-migrate-1  Exited") < pos("healthchain-api-1  Starting"));
    assert!(pos("healthchain-api-1  Healthy") < pos("healthchain-web-1  Starting"));
    let up = eventually(20, || {
        let logs = d.ok(&["logs", "healthchain-web-1"]);
        logs.contains("api is up").then_some(())
    });
    assert!(up.is_some(), "web never reached api");
    d.compose_ok(&p, &["down", "-t", "1"]);
}

#[test]
fn scaled_answers_in_round_robin() {
    let d = Daemon::start();
    let p = example("scaled");
    d.compose_ok(&p, &["up", "-d"]);
    let ps = d.ok(&["ps", "--format", "{{.Names}}"]);
    for n in [
        "scaled-echo-1",
        "scaled-echo-2",
        "scaled-echo-3",
        "scaled-client-1",
    ] {
        assert!(ps.contains(n), "{n} missing: {ps}");
    }
    // Three addresses for one name, and all three replicas answer it over time.
    let looked = d.ok(&["exec", "scaled-client-1", "nslookup", "echo"]);
    assert_eq!(looked.matches("Address").count() - 1, 3, "{looked}");
    let mut seen = std::collections::HashSet::new();
    let ok = eventually(30, || {
        let o = d.berth(&[
            "exec",
            "scaled-client-1",
            "sh",
            "-c",
            "ip=$(nslookup echo | awk '/^Address/ { n++; if (n == 2) print $2 }'); \
             timeout 3 wget -q -O - http://$ip/",
        ]);
        if o.status.success() {
            seen.insert(String::from_utf8_lossy(&o.stdout).trim().to_string());
        }
        (seen.len() == 3).then_some(())
    });
    assert!(ok.is_some(), "replicas seen: {seen:?}");
    let logs = eventually(20, || {
        let l = d.ok(&["logs", "scaled-client-1"]);
        l.contains("echo -> ").then_some(l)
    });
    assert!(logs.is_some(), "the client printed nothing");
    d.compose_ok(&p, &["down", "-t", "1"]);
}
