//! `berth compose up`/`down` and the lifecycle commands end to end against a private berthd:
//! convergence by config hash, scaling, dependency conditions (including a failing one),
//! orphans, attached mode with `--abort-on-container-exit`/`--exit-code-from`, and Ctrl-C.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Daemon, err, out};

/// Names of the project's containers (all states), sorted.
fn names(d: &Daemon, project: &str) -> Vec<String> {
    let o = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--format",
        "{{.Names}}",
    ]);
    let mut v: Vec<String> = o.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn inspect(d: &Daemon, name: &str, fmt: &str) -> String {
    d.ok(&["inspect", "-f", fmt, name]).trim().to_string()
}

const WEB: &str = r#"
name: conv
services:
  web:
    image: berth-examples/busybox:latest
    command: ["sh", "-c", "echo hi > /srv/index.html; exec httpd -f -p 80 -h /srv"]
    networks: [front, back]
    volumes: [data:/data]
    stop_grace_period: 1s
  worker:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    # sleep as PID 1 ignores SIGTERM: the grace period bounds every stop.
    stop_grace_period: 1s
    networks: [back]
    depends_on: [web]
networks:
  front: {}
  back: {}
volumes:
  data: {}
"#;

#[test]
fn up_converges_and_down_cleans() {
    let d = Daemon::start();
    let p = d.project("conv", WEB);
    let o = d.compose(&p, &["up", "-d"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(names(&d, "conv"), ["conv-web-1", "conv-worker-1"]);
    // The labels compose v2 writes.
    let labels = inspect(&d, "conv-web-1", "{{json .Config.Labels}}");
    for l in [
        "\"com.docker.compose.project\":\"conv\"",
        "\"com.docker.compose.service\":\"web\"",
        "\"com.docker.compose.container-number\":\"1\"",
        "\"com.docker.compose.oneoff\":\"False\"",
        "com.docker.compose.config-hash",
        "com.docker.compose.image",
        "com.docker.compose.project.working_dir",
    ] {
        assert!(labels.contains(l), "{l} missing in {labels}");
    }
    assert_eq!(inspect(&d, "conv-web-1", "{{.State.Status}}"), "running");
    // Both networks, and the worker reaches web by service name through the embedded DNS.
    let nets = inspect(&d, "conv-web-1", "{{json .NetworkSettings.Networks}}");
    assert!(
        nets.contains("conv_front") && nets.contains("conv_back"),
        "{nets}"
    );
    let got = d.ok(&[
        "exec",
        "conv-worker-1",
        "sh",
        "-c",
        "timeout 5 wget -q -O - http://web/index.html",
    ]);
    assert_eq!(got.trim(), "hi");
    assert!(d.ok(&["volume", "ls", "-q"]).contains("conv_data"));

    // Nothing changed: nothing is recreated.
    let id = inspect(&d, "conv-web-1", "{{.Id}}");
    let o = d.compose(&p, &["up", "-d"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!err(&o).contains("Recreate"), "{}", err(&o));
    assert_eq!(inspect(&d, "conv-web-1", "{{.Id}}"), id);

    // A changed service is recreated; the other one is left alone.
    let wid = inspect(&d, "conv-worker-1", "{{.Id}}");
    std::fs::write(
        p.join("compose.yaml"),
        WEB.replace("[\"sleep\", \"3600\"]", "[\"sleep\", \"3601\"]"),
    )
    .unwrap();
    let o = d.compose(&p, &["up", "-d"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("conv-worker-1  Recreate"), "{}", err(&o));
    assert_eq!(inspect(&d, "conv-web-1", "{{.Id}}"), id);
    assert_ne!(inspect(&d, "conv-worker-1", "{{.Id}}"), wid);
    // --force-recreate replaces everything.
    let o = d.compose(&p, &["up", "-d", "--force-recreate"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_ne!(inspect(&d, "conv-web-1", "{{.Id}}"), id);

    // Scale up and down by container number.
    let o = d.compose(&p, &["--parallel", "1", "up", "-d", "--scale", "worker=3"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        names(&d, "conv"),
        [
            "conv-web-1",
            "conv-worker-1",
            "conv-worker-2",
            "conv-worker-3"
        ]
    );
    let o = d.compose(&p, &["up", "-d", "--scale", "worker=1"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(names(&d, "conv"), ["conv-web-1", "conv-worker-1"]);

    // stop / start / restart / pause / unpause / kill / rm.
    d.compose_ok(&p, &["stop", "worker"]);
    assert_eq!(inspect(&d, "conv-worker-1", "{{.State.Status}}"), "exited");
    d.compose_ok(&p, &["start"]);
    assert_eq!(inspect(&d, "conv-worker-1", "{{.State.Status}}"), "running");
    d.compose_ok(&p, &["pause", "web"]);
    assert_eq!(inspect(&d, "conv-web-1", "{{.State.Status}}"), "paused");
    d.compose_ok(&p, &["unpause", "web"]);
    assert_eq!(inspect(&d, "conv-web-1", "{{.State.Status}}"), "running");
    d.compose_ok(&p, &["restart", "-t", "1", "worker"]);
    assert_eq!(inspect(&d, "conv-worker-1", "{{.State.Status}}"), "running");
    d.compose_ok(&p, &["kill", "worker"]);
    assert_eq!(inspect(&d, "conv-worker-1", "{{.State.ExitCode}}"), "137");
    d.compose_ok(&p, &["rm", "-f", "worker"]);
    assert_eq!(names(&d, "conv"), ["conv-web-1"]);
    let bad = d.compose(&p, &["stop", "nosuch"]);
    assert!(!bad.status.success());
    assert!(
        err(&bad).contains("no such service: nosuch"),
        "{}",
        err(&bad)
    );

    // Orphans: a service removed from the file is reported, then removed on request.
    d.compose_ok(&p, &["up", "-d"]);
    std::fs::write(
        p.join("compose.yaml"),
        WEB.replace("  worker:\n", "  helper:\n"),
    )
    .unwrap();
    let o = d.compose(&p, &["up", "-d"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        err(&o).contains("Found orphan containers ([conv-worker-1])"),
        "{}",
        err(&o)
    );
    d.compose_ok(&p, &["up", "-d", "--remove-orphans"]);
    assert_eq!(names(&d, "conv"), ["conv-helper-1", "conv-web-1"]);

    // down: containers and networks go, volumes stay unless -v.
    d.compose_ok(&p, &["down", "-t", "1"]);
    assert!(names(&d, "conv").is_empty());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("conv_"), "{nets}");
    assert!(d.ok(&["volume", "ls", "-q"]).contains("conv_data"));
    d.compose_ok(&p, &["down", "-v"]);
    assert!(!d.ok(&["volume", "ls", "-q"]).contains("conv_data"));
}

const CHAIN: &str = r#"
name: chain
services:
  db:
    image: berth-examples/busybox:latest
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 3600"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 1s
      retries: 20
  migrate:
    image: berth-examples/busybox:latest
    command: ["sh", "-c", "echo migrating; exit ${MIGRATE_EXIT:-0}"]
    depends_on:
      db:
        condition: service_healthy
  api:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    depends_on:
      migrate:
        condition: service_completed_successfully
"#;

#[test]
fn dependency_conditions_and_a_failing_dependency() {
    let d = Daemon::start();
    let p = d.project("chain", CHAIN);
    let o = d.compose(&p, &["up", "-d"]);
    assert!(o.status.success(), "{}", err(&o));
    let e = err(&o);
    // db became healthy before migrate was created; migrate finished before api started.
    let pos = |s: &str| e.find(s).unwrap_or_else(|| panic!("{s} not in {e}"));
    assert!(
        pos("chain-db-1  Healthy") < pos("chain-migrate-1  Started"),
        "{e}"
    );
    assert!(
        pos("chain-migrate-1  Exited") < pos("chain-api-1  Started"),
        "{e}"
    );
    assert_eq!(inspect(&d, "chain-api-1", "{{.State.Status}}"), "running");
    assert_eq!(inspect(&d, "chain-migrate-1", "{{.State.ExitCode}}"), "0");
    d.compose_ok(&p, &["down", "-t", "1"]);

    // migrate fails: up fails naming it, api is never started, and what exists stays
    // inspectable until down.
    let o = d
        .cmd()
        .arg("compose")
        .arg("--project-directory")
        .arg(&p)
        .args(["up", "-d"])
        .env("MIGRATE_EXIT", "3")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        err(&o).contains("service \"migrate\" didn't complete successfully: exit 3"),
        "{}",
        err(&o)
    );
    assert!(!names(&d, "chain").contains(&"chain-api-1".to_string()));
    assert_eq!(inspect(&d, "chain-migrate-1", "{{.State.ExitCode}}"), "3");
    d.compose_ok(&p, &["down", "-t", "1"]);
    assert!(names(&d, "chain").is_empty());
}

#[test]
fn invalid_file_creates_nothing() {
    let d = Daemon::start();
    let p = d.project(
        "bad",
        "name: bad\nservices:\n  web:\n    image: berth-examples/busybox:latest\n    ports: [\"notaport\"]\n",
    );
    let o = d.compose(&p, &["up", "-d"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("compose.yaml"), "{}", err(&o));
    assert!(names(&d, "bad").is_empty());
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("bad_"), "{nets}");
}

#[test]
fn attached_up_exit_code_from_and_ctrl_c() {
    let d = Daemon::start();
    let p = d.project(
        "att",
        r#"
name: att
services:
  job:
    image: berth-examples/busybox:latest
    command: ["sh", "-c", "echo working; sleep 1; echo finished; exit 7"]
  side:
    image: berth-examples/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; echo side up; while true; do sleep 0.1; done"]
"#,
    );
    let o = d.compose(&p, &["up", "--exit-code-from", "job"]);
    assert_eq!(o.status.code(), Some(7), "{}{}", out(&o), err(&o));
    let so = out(&o);
    assert!(so.contains("job-1   | working"), "{so}");
    assert!(so.contains("side-1  | side up"), "{so}");
    assert!(so.contains("job-1 exited with code 7"), "{so}");
    assert_eq!(inspect(&d, "att-side-1", "{{.State.Status}}"), "exited");

    // Ctrl-C: the project is stopped gracefully and up exits with 130.
    let child = d
        .cmd()
        .arg("compose")
        .arg("--project-directory")
        .arg(&p)
        .args(["up", "side"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut child = child;
    loop {
        let state = inspect(&d, "att-side-1", "{{.State.Status}}");
        if state == "running" {
            break;
        }
        // Say why: what `up` printed, or that it is still waiting (seen once under full-suite load).
        let exited = child.try_wait().ok().flatten().is_some();
        if exited || Instant::now() >= deadline {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "side never started (state {state}, up exited: {exited}):\n{}{}",
                out(&o),
                err(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("Gracefully stopping..."), "{}", err(&o));
    assert_eq!(inspect(&d, "att-side-1", "{{.State.Status}}"), "exited");
    d.compose_ok(&p, &["down"]);
}

#[test]
fn run_one_off() {
    let d = Daemon::start();
    let p = d.project(
        "oneoff",
        r#"
name: oneoff
services:
  dep:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
  tool:
    image: berth-examples/busybox:latest
    environment:
      FROM_FILE: yes
    ports: ["18080:80"]
    depends_on: [dep]
"#,
    );
    // Dependencies start; the command, -e and the exit code pass through; --rm removes it.
    let o = d.compose(
        &p,
        &[
            "run",
            "--rm",
            "-T",
            "-e",
            "EXTRA=1",
            "tool",
            "sh",
            "-c",
            "echo $FROM_FILE $EXTRA; exit 4",
        ],
    );
    assert_eq!(o.status.code(), Some(4), "{}", err(&o));
    assert_eq!(out(&o).trim(), "yes 1");
    assert_eq!(names(&d, "oneoff"), ["oneoff-dep-1"]);
    // Detached, kept: labelled one-off, named <project>-<service>-run-<slug>, no ports.
    let o = d.compose(&p, &["run", "-d", "tool", "sleep", "30"]);
    assert!(o.status.success(), "{}", err(&o));
    let name = out(&o).trim().to_string();
    assert!(name.starts_with("oneoff-tool-run-"), "{name}");
    let labels = inspect(&d, &name, "{{json .Config.Labels}}");
    assert!(
        labels.contains("\"com.docker.compose.oneoff\":\"True\""),
        "{labels}"
    );
    let ports = inspect(&d, &name, "{{json .HostConfig.PortBindings}}");
    assert!(!ports.contains("18080"), "{ports}");
    d.compose_ok(&p, &["down", "-t", "1"]);
    assert!(names(&d, "oneoff").is_empty());
}

#[test]
fn watch_syncs_and_rebuilds() {
    let d = Daemon::start();
    let p = d.project(
        "watched",
        r#"
name: watched
services:
  app:
    build: .
    image: watched-app:dev
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./src
          action: sync
          target: /app
        - path: ./version
          action: rebuild
"#,
    );
    std::fs::create_dir_all(p.join("src")).unwrap();
    std::fs::write(p.join("src/keep.txt"), "keep\n").unwrap();
    std::fs::write(p.join("version"), "v1\n").unwrap();
    std::fs::write(
        p.join("Dockerfile"),
        "FROM berth-examples/busybox:latest\nCOPY version /version\n",
    )
    .unwrap();
    let child = d
        .cmd()
        .arg("compose")
        .arg("--project-directory")
        .arg(&p)
        .arg("watch")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the watcher whatever happens below.
    struct Guard(Option<std::process::Child>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(c) = &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut guard = Guard(Some(child));
    let until = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let cat = |path: &str| {
        let o = d.berth(&["exec", "watched-app-1", "cat", path]);
        o.status.success().then(|| out(&o))
    };
    until("the app to run", &|| {
        cat("/version").as_deref() == Some("v1\n")
    });
    // The watcher has its first snapshot once the container runs; give it a poll.
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(p.join("src/new.txt"), "synced\n").unwrap();
    until("the sync", &|| {
        cat("/app/new.txt").as_deref() == Some("synced\n")
    });
    std::fs::remove_file(p.join("src/new.txt")).unwrap();
    until("the removal", &|| cat("/app/new.txt").is_none());
    std::fs::write(p.join("version"), "v2\n").unwrap();
    until("the rebuild", &|| {
        cat("/version").as_deref() == Some("v2\n")
    });
    // Ctrl-C ends watch cleanly.
    if let Some(c) = guard.0.take() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", err(&o));
        assert!(err(&o).contains("Syncing service \"app\""), "{}", err(&o));
    }
    d.compose_ok(&p, &["down", "-t", "1", "--rmi", "all"]);
}

#[test]
fn dependents_with_restart_true_follow_a_recreated_dependency() {
    let d = Daemon::start();
    let yaml = r#"
name: rst
services:
  db:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
  app:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_started
        restart: true
  other:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on: [db]
"#;
    let p = d.project("rst", yaml);
    d.compose_ok(&p, &["up", "-d"]);
    let started = |n: &str| inspect(&d, n, "{{.State.StartedAt}}");
    let (app0, other0) = (started("rst-app-1"), started("rst-other-1"));
    std::fs::write(p.join("compose.yaml"), yaml.replacen("3600", "3601", 1)).unwrap();
    let o = d.compose(&p, &["up", "-d"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("rst-app-1  Restarted"), "{}", err(&o));
    assert_ne!(started("rst-app-1"), app0);
    assert_eq!(started("rst-other-1"), other0);
    d.compose_ok(&p, &["down", "-t", "1"]);
}

// The agent tests' registry fixture; it isolates through `super::netns`.
use common::netns;
#[path = "../../agent/tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

#[test]
fn build_and_push_to_a_local_registry() {
    let d = Daemon::start();
    let reg = registry::Registry::start(registry::Auth::None);
    let image = format!("{}/pushme:1", reg.host());
    let p = d.project(
        "pusher",
        &format!(
            "name: pusher\nservices:\n  app:\n    build: .\n    image: {image}\n    command: [\"cat\", \"/built\"]\n"
        ),
    );
    std::fs::write(
        p.join("Dockerfile"),
        "FROM berth-examples/busybox:latest\nRUN echo built > /built\n",
    )
    .unwrap();
    let e = err(&d.compose(&p, &["build", "app"]));
    assert!(e.contains("Built"), "{e}");
    d.compose_ok(&p, &["push", "app"]);
    let tags = std::process::Command::new("curl")
        .args([
            "-fsS",
            &format!("http://{}/v2/pushme/tags/list", reg.host()),
        ])
        .output()
        .unwrap();
    assert!(out(&tags).contains("\"1\""), "{}", out(&tags));
    // Pulled back by a fresh `up` after the local copy is gone.
    d.ok(&["rmi", &image]);
    let o = d.compose(&p, &["up", "-d", "--no-build", "app"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("Pulled"), "{}", err(&o));
    d.compose_ok(&p, &["down"]);
}

#[test]
fn a_port_conflict_names_the_container_and_stops_dependents() {
    let d = Daemon::start();
    let p = d.project(
        "clash",
        r#"
name: clash
services:
  a:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ports: ["18090:80"]
  b:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ports: ["18090:80"]
    depends_on: [a]
  c:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    depends_on: [b]
"#,
    );
    let o = d.compose(&p, &["up", "-d"]);
    assert!(!o.status.success());
    let e = err(&o);
    assert!(e.contains("clash-b-1"), "{e}");
    assert!(e.contains("port is already allocated"), "{e}");
    // a runs, b is left created for inspection, c was never created.
    assert_eq!(inspect(&d, "clash-a-1", "{{.State.Status}}"), "running");
    assert_eq!(inspect(&d, "clash-b-1", "{{.State.Status}}"), "created");
    assert!(!names(&d, "clash").contains(&"clash-c-1".to_string()));
    d.compose_ok(&p, &["down", "-t", "1"]);
    assert!(names(&d, "clash").is_empty());
}
