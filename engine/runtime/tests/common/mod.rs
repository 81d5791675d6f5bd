//! Shared fixtures: a busybox bundle in a temp dir, the runtime binary, cleanup guards.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

/// The runtime binary built by cargo for this test run.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth-runtime")
}

/// Root tests need root and Debian's busybox-static; elsewhere they skip with a note.
pub fn can_run() -> bool {
    // SAFETY-free check: geteuid through /proc to keep tests free of unsafe.
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    let ok = uid && Path::new("/bin/busybox").exists();
    if !ok {
        eprintln!("skipping: needs root and /bin/busybox (apt-get install busybox-static)");
    }
    ok
}

/// A bundle plus its own state root; deletes its containers on drop, even after a failure.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub ids: std::cell::RefCell<Vec<String>>,
    pub config: Value,
}

impl Env {
    /// A fresh busybox bundle; `name` makes the container IDs unique per test.
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .expect("tempdir");
        use std::os::unix::fs::PermissionsExt;
        // A container root mapped to another uid must be able to reach its rootfs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let root = dir.path().join("state");
        Env {
            root,
            bundle,
            dir,
            ids: Default::default(),
            config: base_config(),
        }
    }

    /// A container ID unique to this process, remembered for cleanup.
    pub fn id(&self, name: &str) -> String {
        let id = format!("t{}-{name}", std::process::id());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Writes config.json with the process args.
    pub fn write_config(&self, args: &[&str]) {
        let mut c = self.config.clone();
        c["process"]["args"] = json!(args);
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&c).unwrap(),
        )
        .unwrap();
    }

    /// berth-runtime --root <root> ARGS, stdio captured.
    pub fn rt(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run berth-runtime")
    }

    /// The command without running it.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(&self.root).args(args);
        c.current_dir(&self.bundle);
        c
    }

    /// create with the container's stdio in a file (so our pipes are not held open).
    pub fn create(&self, id: &str, extra_env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(&["create", id, "--bundle"]);
        c.arg(&self.bundle);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        self.detached(c, id)
    }

    /// Runs a command whose children outlive it: stdio goes to files, read back after exit.
    pub fn detached(&self, mut c: Command, tag: &str) -> Output {
        let out = self.dir.path().join(format!("{tag}.out"));
        let err = self.dir.path().join(format!("{tag}.err"));
        let fo = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out)
            .unwrap();
        let fe = std::fs::File::create(&err).unwrap();
        c.stdin(Stdio::null()).stdout(fo).stderr(fe);
        let status = c.status().expect("spawn berth-runtime");
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        }
    }

    /// The container's stdout written since create.
    pub fn output_of(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{id}.out"))).unwrap_or_default()
    }

    /// run in the foreground: (exit code, stdout, stderr).
    pub fn run(&self, id: &str) -> (i32, String, String) {
        let o = self.rt(&["run", id, "--bundle", self.bundle.to_str().unwrap()]);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// `state ID` parsed.
    pub fn state(&self, id: &str) -> Value {
        let o = self.rt(&["state", id]);
        assert!(
            o.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cmd(&["delete", "--force", id]).output();
            for h in cgroup_dirs(id) {
                let _ = std::fs::remove_dir(&h);
            }
        }
    }
}

/// Where the container's cgroup lives in each v1 hierarchy (or in the unified one).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            out.push(e.path().join("berth").join(id));
        }
    }
    out.push(PathBuf::from("/sys/fs/cgroup/berth").join(id));
    out
}

/// A config with the usual namespaces and mounts, like `runc spec` minus the terminal.
pub fn base_config() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berthbox",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
                "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
                "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Asserts a path is gone, with a readable message.
pub fn assert_gone(p: &Path) {
    assert!(!p.exists(), "{} was left behind", p.display());
}
