//! The harness of the `berth compose` tests: a private berthd (from the same target directory)
//! in this test's own network namespace, with `berth-examples/busybox:latest` (Debian's
//! busybox-static with every applet) imported; containers removed, berthd stopped and its
//! mounts lazily unmounted on drop, even when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../tests/support/netns.rs"]
pub mod netns;

/// The base image the examples and the compose tests build on.
pub const BASE_IMAGE: &str = "berth-examples/busybox:latest";

/// A private berthd.
pub struct Daemon {
    /// `unix://...` of its socket.
    pub host: String,
    /// Its root, exec root, logs and any scratch files of the test.
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Daemon {
    /// Starts berthd and imports the base image.
    pub fn start() -> Self {
        netns::isolate();
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("run/berth.sock");
        let berthd = Path::new(env!("CARGO_BIN_EXE_berth")).with_file_name("berthd");
        assert!(
            berthd.exists(),
            "build berthd first: cargo build --release -p berth-agent"
        );
        let log = std::fs::File::create(dir.path().join("berthd.log")).expect("log");
        let child = Command::new(berthd)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--exec-root")
            .arg(dir.path().join("run"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        let d = Self {
            host: format!("unix://{}", sock.display()),
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "berthd did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let tar = base_rootfs_tar(d.dir.path());
        d.ok(&[
            "import",
            "-c",
            "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin",
            &tar.to_string_lossy(),
            BASE_IMAGE,
        ]);
        d
    }

    /// A `berth` command against this daemon.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("-H")
            .arg(&self.host)
            .env("HOME", self.dir.path())
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_FILE")
            .stdin(Stdio::null());
        c
    }

    /// Runs `berth ARGS`.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("berth runs")
    }

    /// Runs `berth ARGS` and returns its standard output; fails the test on a non-zero exit.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `berth compose --project-directory DIR ARGS`.
    pub fn compose(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd()
            .arg("compose")
            .arg("--project-directory")
            .arg(dir)
            .args(args)
            .output()
            .expect("berth compose runs")
    }

    /// As [`Daemon::compose`], failing the test on a non-zero exit; returns stdout.
    pub fn compose_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.compose(dir, args);
        assert!(
            out.status.success(),
            "berth compose {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `compose.yaml` (and nothing else) into a fresh project directory `name`.
    pub fn project(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.dir.path().join("projects").join(name);
        std::fs::create_dir_all(&p).expect("project dir");
        std::fs::write(p.join("compose.yaml"), yaml).expect("compose.yaml");
        p
    }

    /// berthd's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let ids = self.berth(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut rm = vec!["rm", "-f", "-v"];
            rm.extend(ids);
            let _ = self.berth(&rm);
        }
        stop_daemon(&mut self.child, Duration::from_secs(5));
        unmount_below(self.dir.path());
    }
}

/// Stops a daemon: SIGTERM, up to `grace` to exit, then SIGKILL.
pub fn stop_daemon(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Lazily unmounts whatever is still mounted below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    let d = dir.to_string_lossy().to_string();
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
}

/// A rootfs tarball of Debian's busybox-static with every applet linked in /bin.
pub fn base_rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("base-rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for d in ["tmp", "etc", "srv", "var/www"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("dir");
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for a in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if a != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(a));
        }
    }
    let tar = dir.join("base-rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    tar
}

/// stdout of an output.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of an output.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
