//! `berth volume ...` and `berth run -v` end to end against a private berthd (from the same
//! target directory): Docker's tables, outputs and errors.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/support/netns.rs"]
mod netns;

/// A private berthd with a `bb` image (busybox imported from a rootfs tarball); stopped,
/// and whatever is still mounted below its directory unmounted, on drop.
struct Daemon {
    host: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Daemon {
    fn start() -> Self {
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
        let rootfs = d.dir.path().join("rootfs");
        let bin = rootfs.join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        std::fs::create_dir_all(rootfs.join("etc/seed")).expect("etc");
        std::fs::write(rootfs.join("etc/seed/file"), "seeded\n").expect("seed");
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static");
        for a in ["sh", "cat", "ls", "echo", "touch", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(a)).expect("applet");
        }
        let tar = d.dir.path().join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        d.ok(&[
            "import",
            "-c",
            "ENV PATH=/bin",
            &tar.to_string_lossy(),
            "bb:1",
        ]);
        d
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let d = self.dir.path().to_string_lossy().to_string();
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
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn volume_commands_tables_and_errors() {
    let d = Daemon::start();
    assert_eq!(d.ok(&["volume", "create", "--label", "a=1", "v1"]), "v1\n");
    assert_eq!(
        d.ok(&[
            "volume",
            "create",
            "--name",
            "v2",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs"
        ]),
        "v2\n"
    );
    let ls = d.ok(&["volume", "ls"]);
    assert_eq!(ls, "DRIVER    VOLUME NAME\nlocal     v1\nlocal     v2\n");
    assert_eq!(d.ok(&["volume", "ls", "-q", "-f", "label=a=1"]), "v1\n");
    assert_eq!(
        d.ok(&["volume", "ls", "--format", "table {{.Name}}\t{{.Labels}}"])
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect::<String>(),
        "VOLUME NAME   LABELS\nv1            a=1\nv2\n"
    );
    let insp = d.ok(&["volume", "inspect", "v1"]);
    assert!(
        insp.starts_with("[\n    {\n        \"CreatedAt\": "),
        "{insp}"
    );
    assert!(insp.contains("\"Scope\": \"local\""), "{insp}");
    assert_eq!(
        d.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Driver}} {{.Options.type}}",
            "v2"
        ]),
        "local tmpfs\n"
    );
    let o = d.berth(&["volume", "inspect", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("No such volume: nope"), "{}", err(&o));
    let o = d.berth(&["volume", "create", "-d", "other", "v3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("error looking up volume plugin other: plugin \"other\" not found"),
        "{}",
        err(&o)
    );

    // In use by a created container.
    d.ok(&["create", "--name", "holder", "-v", "v1:/x", "bb:1", "true"]);
    let o = d.berth(&["volume", "rm", "v1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("remove v1: volume is in use - ["),
        "{}",
        err(&o)
    );
    d.ok(&["rm", "holder"]);
    assert_eq!(d.ok(&["volume", "rm", "v1", "v2"]), "v1\nv2\n");
    assert!(d.berth(&["volume", "rm", "-f", "v1"]).status.success());

    // Prune keeps named volumes unless -a.
    d.ok(&["volume", "create", "named"]);
    d.ok(&["create", "--name", "anon", "-v", "/scratch", "bb:1", "true"]);
    d.ok(&["rm", "anon"]);
    let p = d.ok(&["volume", "prune", "-f"]);
    assert!(p.starts_with("Deleted Volumes:\n"), "{p}");
    assert!(
        !p.contains("named") && p.ends_with("\nTotal reclaimed space: 0B\n"),
        "{p}"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "named\n");
    let p = d.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(p, "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n");
}

#[test]
fn run_with_volumes_copy_up_and_rm() {
    let d = Daemon::start();
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "cfg:/etc/seed",
        "bb:1",
        "cat",
        "/etc/seed/file",
    ]);
    assert_eq!(out, "seeded\n", "copy-up from the image");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "cfg:/etc/seed",
        "bb:1",
        "sh",
        "-c",
        "echo mine > /etc/seed/file",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "source=cfg,target=/etc/seed,readonly",
        "bb:1",
        "cat",
        "/etc/seed/file",
    ]);
    assert_eq!(out, "mine\n", "not copied again over content");
    let o = d.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/dir,target=/x",
        "bb:1",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        err(&o).contains("bind source path does not exist: /no/such/dir"),
        "{}",
        err(&o)
    );
    d.ok(&["run", "--rm", "-v", "/anon", "bb:1", "true"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]),
        "cfg\n",
        "--rm removed the anonymous volume"
    );
}
