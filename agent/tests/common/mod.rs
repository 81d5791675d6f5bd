//! Test harness: a real `berthd` on its own temp root, exec root and socket, stopped
//! (SIGTERM, then SIGKILL) and cleaned up on drop, even when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod browser;
pub mod cluster;
#[path = "../../../tests/support/netns.rs"]
pub mod netns;
pub mod registry;

/// A running daemon.
pub struct Berthd {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub tcp: Option<String>,
    child: Option<Child>,
    extra: Vec<String>,
    unix: bool,
}

impl Berthd {
    /// Starts berthd with a UNIX socket plus `extra` arguments.
    pub fn start(extra: &[String]) -> Self {
        Self::start_with(extra, true)
    }

    /// Starts berthd; `unix` adds the default test socket.
    pub fn start_with(extra: &[String], unix: bool) -> Self {
        netns::isolate();
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("run/berth.sock");
        let tcp = extra
            .iter()
            .find_map(|a| a.strip_prefix("tcp://").map(str::to_string));
        let mut d = Self {
            dir,
            sock,
            tcp,
            child: None,
            extra: extra.to_vec(),
            unix,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berthd"));
        cmd.arg("--root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("run"))
            .args(["--log-level", "debug"]);
        if self.unix {
            cmd.arg("-H").arg(format!("unix://{}", self.sock.display()));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("berthd.log"))
            .expect("log");
        cmd.args(&self.extra)
            .env("HOME", dir)
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn berthd"));
        self.wait_ready(self.unix);
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same root, exec root and socket.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    fn wait_ready(&mut self, unix: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("berthd exited early ({st}): {}", self.log());
            }
            let up = if unix {
                std::os::unix::net::UnixStream::connect(&self.sock).is_ok()
            } else {
                self.tcp
                    .as_ref()
                    .is_some_and(|a| std::net::TcpStream::connect(a).is_ok())
            };
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not come up: {}", self.log());
    }

    /// `unix://...` of the socket.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit; returns its status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// The real docker CLI against this daemon, with its own config dir.
    pub fn docker(&self, args: &[&str]) -> Output {
        docker_at(&self.host(), self.dir.path(), args, &[])
    }

    /// `docker` that must succeed; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}\n--- berthd log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `berth` CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Output {
        let bin = Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth");
        Command::new(bin)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .output()
            .expect("run berth")
    }

    /// A raw API request with `curl` on the UNIX socket: (status, body).
    #[allow(dead_code)]
    pub fn curl(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
        let n = CURLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (inp, out) = (
            self.dir.path().join(format!("curl-in-{n}")),
            self.dir.path().join(format!("curl-out-{n}")),
        );
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o"])
            .arg(&out)
            .args(["-w", "%{http_code}", "--unix-socket"])
            .arg(&self.sock)
            .args(["-X", method]);
        if let Some(b) = body {
            std::fs::write(&inp, b).expect("body");
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", inp.display()));
        }
        let res = cmd
            .arg(format!("http://localhost{path}"))
            .output()
            .expect("curl");
        let code = String::from_utf8_lossy(&res.stdout).parse().unwrap_or(0);
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = (std::fs::remove_file(&inp), std::fs::remove_file(&out));
        (code, text)
    }
}

/// A registry seeded with busybox and a daemon that pulled it as `busybox:latest`.
pub fn daemon_with_busybox() -> (registry::Registry, Berthd) {
    let reg = registry::Registry::start(registry::Auth::None);
    reg.seed_busybox();
    let d = Berthd::start(&[]);
    let src = format!("{}/busybox:latest", reg.host());
    d.docker_ok(&["pull", "-q", &src]);
    d.docker_ok(&["tag", &src, "busybox:latest"]);
    (reg, d)
}

static CURLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Berthd {
    fn drop(&mut self) {
        // Containers outlive berthd (live-restore), so remove them through it first, then sweep
        // whatever a failed test may still have left: shims, mounts and cgroups.
        let ids = if self.child.is_some() {
            remove_containers(|args| self.docker(args))
        } else {
            Vec::new()
        };
        if let Some(c) = self.child.take() {
            stop_child(c);
        }
        sweep(self.dir.path(), &ids);
    }
}

/// Removes every container of a running daemon through `docker`; returns their IDs.
pub fn remove_containers(docker: impl Fn(&[&str]) -> Output) -> Vec<String> {
    let out = docker(&["ps", "-aq", "--no-trunc"]);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        let _ = docker(&args);
    }
    ids
}

/// Stops a daemon: SIGTERM, a moment to exit, then SIGKILL.
pub fn stop_child(mut c: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(200));
    let _ = c.kill();
    let _ = c.wait();
}

/// Kills (SIGKILL) every other process whose command line contains `needle`; how many.
pub fn kill_mentioning(needle: &str) -> usize {
    let me = std::process::id().to_string();
    let mut killed = 0;
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if pid.to_string() != me && String::from_utf8_lossy(&cmd).contains(needle) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                killed += 1;
            }
        }
    }
    killed
}

/// Kills processes started from `dir` (shims), unmounts what is mounted below it and removes
/// the cgroups of `ids`.
pub fn sweep(dir: &Path, ids: &[String]) {
    let d = dir.to_string_lossy().to_string();
    kill_mentioning(&d);
    std::thread::sleep(Duration::from_millis(100));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&d))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = Command::new("umount").args(["-l", t]).status();
    }
    let mut ids = ids.to_vec();
    if let Ok(rd) = std::fs::read_dir(dir.join("root/containers")) {
        ids.extend(
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string()),
        );
    }
    for id in &ids {
        // Container processes outlive a killed shim; their cgroup still lists them.
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in rd.flatten() {
                let procs = c.path().join("berth").join(id).join("cgroup.procs");
                for pid in std::fs::read_to_string(procs).unwrap_or_default().lines() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    for id in &ids {
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in rd.flatten() {
                let _ = std::fs::remove_dir(c.path().join("berth").join(id));
            }
        }
    }
}

/// Runs `docker` with `-H host`, a private config dir and no inherited DOCKER_* settings.
pub fn docker_at(host: &str, home: &Path, args: &[&str], pre: &[&str]) -> Output {
    Command::new("docker")
        .args(pre)
        .arg("-H")
        .arg(host)
        .args(args)
        .env("DOCKER_CONFIG", home.join("docker-config"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("run docker")
}
