//! `berth swarm|node|service|stack` against Debian's dockerd in swarm mode, in this test's
//! network namespace (only `lo`, so the swarm advertises 127.0.0.1). Skipped, saying so, when
//! dockerd is not installed. On drop the node leaves the swarm and dockerd is stopped.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A private dockerd in swarm mode; everything it started goes on drop.
struct Swarm {
    host: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Swarm {
    fn start() -> Option<Self> {
        if Command::new("dockerd").arg("--version").output().is_err() {
            eprintln!("SKIPPED: dockerd is not installed (scripts/setup installs docker.io)");
            return None;
        }
        common::netns::isolate();
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path().join("root"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let d = Self {
            host: format!("unix://{}", sock.display()),
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let tar = common::base_rootfs_tar(d.dir.path());
        let o = d.docker(&[
            "import",
            "-c",
            "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin",
            &tar.to_string_lossy(),
            common::BASE_IMAGE,
        ]);
        assert!(o.status.success(), "{}", common::err(&o));
        Some(d)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("docker runs")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(o.status.success(), "docker {args:?}: {}", common::err(&o));
        common::out(&o)
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?}: {}{}\n{}",
            common::out(&o),
            common::err(&o),
            self.log()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        common::out(&o)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    }

    /// Polls `docker args` until its output satisfies `pred`.
    fn until(&self, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = common::out(&self.docker(args));
            if pred(&out) {
                return out;
            }
            assert!(Instant::now() < deadline, "docker {args:?}: {out}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let _ = self.docker(&["swarm", "leave", "--force"]);
        let ids = common::out(&self.docker(&["ps", "-aq"]));
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut rm = vec!["rm", "-f", "-v"];
            rm.extend(ids);
            let _ = self.docker(&rm);
        }
        common::stop_daemon(&mut self.child, Duration::from_secs(15));
        let dir = self.dir.path().to_string_lossy().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let pid = p.file_name().to_string_lossy().to_string();
                if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string()
                {
                    continue;
                }
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(&dir)
                {
                    let _ = Command::new("kill").args(["-9", &pid]).status();
                }
            }
        }
        common::unmount_below(self.dir.path());
    }
}

const STACK: &str = r#"
services:
  db:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      labels: {tier: back}
  app:
    image: berth-examples/busybox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment: {ROLE: app}
    depends_on: [db]
    deploy:
      replicas: 2
"#;

const BAD_STACK: &str = "services:\n  web:\n    image: berth-examples/busybox:latest\n    deploy:\n      replicas: lots\n";

#[test]
fn swarm_services_and_stacks_against_dockerd() {
    let Some(d) = Swarm::start() else {
        return;
    };
    let init = d.ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    assert!(
        init.starts_with("Swarm initialized: current node ("),
        "{init}"
    );
    assert!(init.contains("docker swarm join --token SWMTKN-"), "{init}");
    assert!(init.contains("127.0.0.1:2377"), "{init}");
    let token = d.ok(&["swarm", "join-token", "-q", "worker"]);
    assert!(token.trim().starts_with("SWMTKN-"), "{token}");

    let nodes = d.ok(&["node", "ls"]);
    let lines: Vec<&str> = nodes.lines().collect();
    assert!(lines[0].starts_with("ID "), "{nodes}");
    assert!(lines[0].contains("MANAGER STATUS"), "{nodes}");
    assert!(
        lines[1].contains(" * ") && lines[1].contains("Ready") && lines[1].contains("Active"),
        "{nodes}"
    );
    assert!(lines[1].contains("Leader"), "{nodes}");

    // service create waits for convergence.
    let created = d.ok(&[
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "2",
        "--env",
        "A=1",
        "--stop-grace-period",
        "1s",
        common::BASE_IMAGE,
        "sleep",
        "3600",
    ]);
    assert!(created.contains("verify: Service converged"), "{created}");
    let id = created.lines().next().unwrap().trim().to_string();
    assert_eq!(id.len(), 25, "{created}");
    let ls = d.ok(&["service", "ls"]);
    assert!(ls.starts_with("ID "), "{ls}");
    let row = ls.lines().find(|l| l.contains(" web ")).expect(&ls);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [&id[..12], "web", "replicated", "2/2", common::BASE_IMAGE],
        "{ls}"
    );
    let ps = d.ok(&["service", "ps", "web"]);
    assert!(ps.contains("DESIRED STATE"), "{ps}");
    for slot in ["web.1", "web.2"] {
        let l = ps.lines().find(|l| l.contains(slot)).expect(&ps);
        assert!(l.contains("Running") && l.contains("ago"), "{ps}");
    }

    let scaled = d.ok(&["service", "scale", "web=3"]);
    assert!(scaled.starts_with("web scaled to 3"), "{scaled}");
    assert!(scaled.contains("verify: Service converged"), "{scaled}");
    assert_eq!(
        d.docker_ok(&["service", "ls", "--format", "{{.Replicas}}"])
            .trim(),
        "3/3"
    );

    let updated = d.ok(&[
        "service",
        "update",
        "-d",
        "--env-add",
        "B=2",
        "--env-rm",
        "A",
        "web",
    ]);
    assert_eq!(updated.trim(), "web");
    let env = d.docker_ok(&[
        "service",
        "inspect",
        "-f",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
        "web",
    ]);
    assert_eq!(env.trim(), r#"["B=2"]"#);
    assert_eq!(d.ok(&["service", "rm", "web"]).trim(), "web");
    d.until(&["service", "ls", "-q"], |o| o.trim().is_empty());

    // A bad stack file: the error names the file and line, and nothing is deployed.
    let bad = d.write("bad.yml", BAD_STACK);
    let o = d.berth(&["stack", "deploy", "-c", &bad, "badst"]);
    assert!(!o.status.success());
    let e = common::err(&o);
    assert!(e.contains("bad.yml:5"), "{e}");
    assert!(d.docker_ok(&["service", "ls", "-q"]).trim().is_empty());
    assert!(!d.docker_ok(&["network", "ls"]).contains("badst"));

    // A stack with depends_on: db first, app once db runs.
    let file = d.write("stack.yml", STACK);
    let out = d.ok(&["stack", "deploy", "-c", &file, "st"]);
    let pos = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s} missing: {out}"));
    assert!(pos("Creating network st_default") < pos("Creating service st_db"));
    assert!(
        pos("Creating service st_db") < pos("Creating service st_app"),
        "{out}"
    );
    let net = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{.Scope}}",
        "st_default",
    ]);
    assert_eq!(net.trim(), "overlay swarm");
    let labels = d.docker_ok(&["service", "inspect", "-f", "{{json .Spec.Labels}}", "st_db"]);
    assert!(
        labels.contains(r#""com.docker.stack.namespace":"st""#),
        "{labels}"
    );
    assert!(labels.contains(r#""tier":"back""#), "{labels}");
    d.until(
        &["service", "ls", "--format", "{{.Name}} {{.Replicas}}"],
        |o| o.contains("st_app 2/2") && o.contains("st_db 1/1"),
    );
    let stacks = d.ok(&["stack", "ls"]);
    assert_eq!(
        stacks
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        [vec!["NAME", "SERVICES"], vec!["st", "2"]]
    );
    let services = d.ok(&["stack", "services", "st"]);
    assert!(
        services.contains("st_app") && services.contains("2/2"),
        "{services}"
    );
    let ps = d.ok(&["stack", "ps", "st"]);
    assert!(ps.contains("st_app.1") && ps.contains("st_db.1"), "{ps}");
    // Redeploying updates in place.
    let again = d.ok(&["stack", "deploy", "-c", &file, "st"]);
    assert!(again.contains("Updating service st_db (id: "), "{again}");

    let rm = d.ok(&["stack", "rm", "st"]);
    assert!(rm.contains("Removing service st_app"), "{rm}");
    assert!(rm.contains("Removing network st_default"), "{rm}");
    d.until(&["service", "ls", "-q"], |o| o.trim().is_empty());
    d.until(&["network", "ls"], |o| !o.contains("st_default"));
}
