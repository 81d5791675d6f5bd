//! The Compose reconciler against Debian's dockerd: the core of the workflow (up with a
//! network, a volume and a healthy dependency; recreate rules; stop/start; down) proves that it
//! speaks only the Engine API. Skipped, saying so, when dockerd is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A private dockerd (with its managed containerd) in this test's network namespace. On drop
/// its containers are removed, dockerd stopped, every process started for it (containerd and
/// its shims name its directory) killed, and the mounts below its directory lazily unmounted.
struct Dockerd {
    host: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
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
                std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
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

    fn compose(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("-H")
            .arg(&self.host)
            .arg("compose")
            .arg("--project-directory")
            .arg(dir)
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("COMPOSE_PROJECT_NAME")
            .stdin(Stdio::null())
            .output()
            .expect("berth compose runs")
    }

    fn compose_ok(&self, dir: &Path, args: &[&str]) -> String {
        let o = self.compose(dir, args);
        assert!(
            o.status.success(),
            "berth compose {args:?}: {}{}",
            common::out(&o),
            common::err(&o)
        );
        common::err(&o)
    }

    fn project(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.dir.path().join("projects").join(name);
        std::fs::create_dir_all(&p).expect("project dir");
        std::fs::write(p.join("compose.yaml"), yaml).expect("compose.yaml");
        p
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = common::out(&self.docker(&["ps", "-aq"]));
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut rm = vec!["rm", "-f", "-v"];
            rm.extend(ids);
            let _ = self.docker(&rm);
        }
        common::stop_daemon(&mut self.child, Duration::from_secs(15));
        // containerd and its shims outlive dockerd: those started for this daemon (their
        // command lines name its directory) go too.
        let dir = self.dir.path().to_string_lossy().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let pid = p.file_name().to_string_lossy().to_string();
                if !pid.chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(&dir) && pid != std::process::id().to_string() {
                    let _ = Command::new("kill").args(["-9", &pid]).status();
                }
            }
        }
        common::unmount_below(self.dir.path());
    }
}

const PROJECT: &str = r#"
name: onddocker
services:
  db:
    image: berth-examples/busybox:latest
    command: ["sh", "-c", "touch /tmp/ready; exec sleep 3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 1s
      retries: 30
    volumes: [data:/data]
    networks: [back]
  app:
    image: berth-examples/busybox:latest
    command: ["sh", "-c", "echo app started; exec sleep 3600"]
    stop_grace_period: 1s
    networks: [back]
    depends_on:
      db:
        condition: service_healthy
networks:
  back: {}
volumes:
  data: {}
"#;

#[test]
fn compose_core_against_dockerd() {
    let Some(d) = Dockerd::start() else {
        return;
    };
    let p = d.project("ondocker", PROJECT);
    let e = d.compose_ok(&p, &["up", "-d"]);
    assert!(e.contains("onddocker-db-1  Healthy"), "{e}");
    let ps = d.docker_ok(&[
        "ps",
        "--filter",
        "label=com.docker.compose.project=onddocker",
        "--format",
        "{{.Names}} {{.Label \"com.docker.compose.service\"}}",
    ]);
    let mut lines: Vec<&str> = ps.lines().collect();
    lines.sort();
    assert_eq!(lines, ["onddocker-app-1 app", "onddocker-db-1 db"]);
    // dockerd sees the same network and volume compose v2 would make, with its labels.
    let net = d.docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{index .Labels \"com.docker.compose.network\"}}",
        "onddocker_back",
    ]);
    assert_eq!(net.trim(), "back");
    assert!(
        d.docker_ok(&["volume", "ls", "-q"])
            .contains("onddocker_data")
    );
    // The app reaches db by name on dockerd's DNS.
    let ping = d.docker(&["exec", "onddocker-app-1", "nslookup", "db"]);
    assert!(ping.status.success(), "{}", common::out(&ping));
    assert!(
        d.docker_ok(&["logs", "onddocker-app-1"])
            .contains("app started")
    );

    // Unchanged: nothing is recreated.
    let id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "onddocker-app-1"]);
    let e = d.compose_ok(&p, &["up", "-d"]);
    assert!(!e.contains("Recreate"), "{e}");
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.Id}}", "onddocker-app-1"]),
        id
    );

    d.compose_ok(&p, &["stop"]);
    let st = d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "onddocker-app-1"]);
    assert_eq!(st.trim(), "exited");
    d.compose_ok(&p, &["start"]);
    let st = d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "onddocker-app-1"]);
    assert_eq!(st.trim(), "running");

    d.compose_ok(&p, &["down", "-v"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    assert!(!d.docker_ok(&["network", "ls"]).contains("onddocker_back"));
    assert!(
        !d.docker_ok(&["volume", "ls", "-q"])
            .contains("onddocker_data")
    );
}
