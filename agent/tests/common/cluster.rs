//! Many hosts on one machine: each host is a network namespace with one veth into a bridge of
//! the test's own namespace (10.99.0.0/24, never routed anywhere) and its own berthd with its
//! own root, exec root and socket. Everything is torn down on drop, even when the test fails:
//! containers, daemons, shims, mounts, cgroups and the namespaces.

use super::{netns, remove_containers, stop_child, sweep};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The image every host has, imported from busybox-static.
pub const IMAGE: &str = "berth-examples/busybox:latest";

/// One host.
pub struct Host {
    /// Network namespace name (under /run/netns).
    pub netns: String,
    /// Its address on the test bridge.
    pub ip: String,
    /// Root, exec root, socket and log.
    pub dir: PathBuf,
    /// The API socket.
    pub sock: PathBuf,
    veth: String,
    child: Option<Child>,
}

/// A set of hosts on one bridge.
pub struct Cluster {
    /// The hosts, `h0`, `h1`, ...
    pub hosts: Vec<Host>,
    dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

fn ok(cmd: &mut Command) {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn ip(args: &[&str]) {
    ok(Command::new("ip").args(args));
}

/// The berth CLI built next to berthd.
pub fn berth_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name("berth")
}

fn rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("base-rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for d in ["tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("dir");
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static");
    let list = run(Command::new("/bin/busybox").arg("--list"));
    for a in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if a != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(a));
        }
    }
    let tar = dir.join("base-rootfs.tar");
    ok(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

impl Cluster {
    /// `n` hosts, each running berthd with the base image imported.
    pub fn new(n: usize) -> Self {
        netns::isolate();
        let dir = tempfile::tempdir().expect("tempdir");
        let tag = std::process::id();
        ip(&["link", "add", "btbr0", "type", "bridge"]);
        ip(&["addr", "add", "10.99.0.254/24", "dev", "btbr0"]);
        ip(&["link", "set", "btbr0", "up"]);
        let tar = rootfs_tar(dir.path());
        let mut c = Cluster {
            hosts: Vec::new(),
            dir,
        };
        for i in 0..n {
            let name = format!("bt{tag}h{i}");
            let veth = format!("btv{i}");
            let hdir = c.dir.path().join(format!("h{i}"));
            std::fs::create_dir_all(&hdir).expect("host dir");
            // Pushed before it is complete so that drop removes whatever was made.
            c.hosts.push(Host {
                netns: name.clone(),
                ip: format!("10.99.0.{}", i + 1),
                sock: hdir.join("run/berth.sock"),
                dir: hdir,
                veth: veth.clone(),
                child: None,
            });
            ip(&["netns", "add", &name]);
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
            ]);
            ip(&["link", "set", &veth, "master", "btbr0", "up"]);
            let addr = format!("10.99.0.{}/24", i + 1);
            for args in [
                vec!["link", "set", "lo", "up"],
                vec!["link", "set", "eth0", "up"],
                vec!["addr", "add", addr.as_str(), "dev", "eth0"],
                vec!["route", "add", "default", "via", "10.99.0.254"],
            ] {
                let mut full = vec!["-n", name.as_str()];
                full.extend(args);
                ip(&full);
            }
            c.start(i);
            let h = &c.hosts[i];
            let o = h.berth(&[
                "import",
                "-c",
                "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin",
                &tar.to_string_lossy(),
                IMAGE,
            ]);
            assert!(
                o.status.success(),
                "import: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        c
    }

    /// `swarm init` on h0, managers h1..managers, workers after; returns the cluster.
    pub fn swarm(hosts: usize, managers: usize) -> Self {
        let c = Cluster::new(hosts);
        let h0 = &c.hosts[0];
        h0.docker_ok(&["swarm", "init", "--advertise-addr", &h0.ip]);
        let manager_token = h0.docker_ok(&["swarm", "join-token", "-q", "manager"]);
        let worker_token = h0.docker_ok(&["swarm", "join-token", "-q", "worker"]);
        let remote = format!("{}:2377", h0.ip);
        for (i, h) in c.hosts.iter().enumerate().skip(1) {
            let token = if i < managers {
                &manager_token
            } else {
                &worker_token
            };
            h.docker_ok(&[
                "swarm",
                "join",
                "--advertise-addr",
                &h.ip,
                "--token",
                token.trim(),
                &remote,
            ]);
        }
        // Reachability is what the leader heard in the last 2 s, so under CI load a manager
        // that just joined can show Unreachable for a moment; wait for the settled cluster,
        // not the first view.
        Cluster::wait_for(20, "all nodes ready and managers reachable", || {
            let out =
                c.hosts[0].docker(&["node", "ls", "--format", "{{.Status}} {{.ManagerStatus}}"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let ready = text.lines().filter(|l| l.starts_with("Ready")).count();
            let managing = text
                .lines()
                .filter(|l| l.ends_with(" Leader") || l.ends_with(" Reachable"))
                .count();
            (ready == hosts && managing == managers).then_some(())
        });
        c
    }

    /// Starts (or restarts) host `i`'s berthd inside its namespace.
    pub fn start(&mut self, i: usize) {
        let h = &mut self.hosts[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(h.dir.join("berthd.log"))
            .expect("log");
        // nsenter keeps the mount namespace (and so the cgroup mounts) of the test; a UTS
        // namespace of its own gives each host its own hostname (h0, h1, ...), as node ls shows.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", h.netns))
            .args([
                "unshare",
                "--uts",
                "sh",
                "-c",
                "hostname \"$0\" && exec \"$@\"",
            ])
            .arg(format!("h{i}"))
            .arg(env!("CARGO_BIN_EXE_berthd"))
            .arg("--root")
            .arg(h.dir.join("root"))
            .arg("--exec-root")
            .arg(h.dir.join("run"))
            .arg("-H")
            .arg(format!("unix://{}", h.sock.display()))
            .args(["--log-level", "debug"])
            .env("HOME", &h.dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        h.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&h.sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "berthd h{i} did not come up: {}",
                h.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills host `i`'s berthd with SIGKILL (its containers keep running).
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops host `i`'s berthd with SIGTERM, as a service manager would (containers keep
    /// running: live restore).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Cuts host `i` off the network (or reconnects it).
    pub fn link(&self, i: usize, up: bool) {
        ip(&[
            "link",
            "set",
            &self.hosts[i].veth,
            if up { "up" } else { "down" },
        ]);
    }

    /// Polls `f` until it returns `Some` or `secs` pass.
    pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Host {
    /// `unix://...` of the socket.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("berthd.log")).unwrap_or_default()
    }

    /// A command inside this host's network namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        run(Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .args(args))
    }

    /// The real docker CLI against this host.
    pub fn docker(&self, args: &[&str]) -> Output {
        run(Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("docker-config")))
    }

    /// docker, asserting success; stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The berth CLI against this host.
    pub fn berth(&self, args: &[&str]) -> Output {
        run(Command::new(berth_bin())
            .arg("-H")
            .arg(self.host())
            .args(args))
    }

    /// berth, asserting success; stdout.
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            let ids = if h.child.is_some() {
                remove_containers(|args| h.docker(args))
            } else {
                Vec::new()
            };
            if let Some(c) = h.child.take() {
                stop_child(c);
            }
            // Containers of a daemon killed earlier are found by their cgroups below the root.
            sweep(&h.dir, &ids);
            let _ = run(Command::new("ip").args(["netns", "del", &h.netns]));
        }
        let _ = run(Command::new("ip").args(["link", "del", "btbr0"]));
    }
}
