//! `berth` container commands end to end against a real daemon: berthd on a private root
//! (from the same target directory), or any Docker-compatible daemon named by
//! `BERTH_TEST_HOST` (then it must already hold `busybox:latest`), which is how these tests
//! were checked against the real dockerd.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/support/netns.rs"]
mod netns;

/// A daemon for one test: its own berthd (stopped and swept on drop), or an external one.
struct Daemon {
    host: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    prefix: String,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `docker load` tarball of busybox with every applet linked.
fn busybox_tar(dir: &Path) -> PathBuf {
    let oci = dir.join("oci");
    let bundle = dir.join("bundle");
    let layout = format!("{}:latest", oci.display());
    run(Command::new("umoci").args(["init", "--layout"]).arg(&oci));
    run(Command::new("umoci").args(["new", "--image", &layout]));
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &layout])
        .arg(&bundle));
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("bin");
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
    run(Command::new("umoci")
        .args(["repack", "--image", &layout])
        .arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &layout,
        "--config.cmd",
        "/bin/sh",
        "--config.env",
        "PATH=/bin",
    ]));
    let tar = dir.join("busybox.tar");
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &format!("oci:{layout}"),
        &format!("docker-archive:{}:busybox:latest", tar.display()),
    ]));
    tar
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // Tests run in parallel on one daemon: each cleans up only its own names.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("bt{}x{n}", std::process::id());
        if let Ok(host) = std::env::var("BERTH_TEST_HOST") {
            return Self {
                host,
                dir,
                child: None,
                prefix,
            };
        }
        netns::isolate();
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
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        let d = Self {
            host: format!("unix://{}", sock.display()),
            dir,
            child: Some(child),
            prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "berthd did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let tar = busybox_tar(d.dir.path());
        let out = d.berth(&["load", "-i", &tar.to_string_lossy()]);
        assert!(out.status.success(), "load: {}", err(&out));
        d
    }

    /// A container name private to this test run.
    fn name(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    fn berth_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth runs");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(b) = stdin {
            input.write_all(b).expect("write stdin");
        }
        drop(input);
        child.wait_with_output().expect("berth exits")
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.berth_in(args, None)
    }

    /// `berth` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}{}",
            out_s(&out),
            err(&out)
        );
        out_s(&out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Remove this test's containers (all of them on a private daemon).
        let filter = format!("name={}", self.prefix);
        let mut args = vec!["ps", "-aq", "--no-trunc"];
        if self.child.is_none() {
            args.extend(["--filter", &filter]);
        }
        let ids = out_s(&self.berth(&args));
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut rm = vec!["rm", "-f"];
            rm.extend(ids.iter().copied());
            let _ = self.berth(&rm);
        }
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            // Whatever a failed test left mounted below the private root.
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
}

fn out_s(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_foreground_streams_and_exit_codes() {
    let d = Daemon::start();
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert_eq!(out_s(&o), "out\n");
    assert_eq!(err(&o), "err\n");

    let o = d.berth_in(&["run", "--rm", "-i", "busybox", "cat"], Some(b"piped\n"));
    assert_eq!(out_s(&o), "piped\n");
    assert_eq!(o.status.code(), Some(0));

    let n = d.name("nf");
    let o = d.berth(&["run", "--name", &n, "busybox", "nonexistent-cmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    assert!(err(&o).starts_with("berth: Error response from daemon: "));
    assert!(err(&o).contains("Run 'berth run --help' for more information"));

    let o = d.berth(&["run", "--rm", "--pull", "never", "no-such-image"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(err(&o).contains("No such image"), "{}", err(&o));

    // Flags after the image belong to the command.
    let o = d.berth(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/bin",
        "--entrypoint",
        "sh",
        "busybox",
        "-c",
        "echo $A; pwd",
    ]);
    assert_eq!(out_s(&o), "1\n/bin\n", "{}", err(&o));
}

#[test]
fn detached_lifecycle() {
    let d = Daemon::start();
    let n = d.name("web");
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        &n,
        "-l",
        "team=a",
        "busybox",
        "sh",
        "-c",
        "echo hello; echo oops >&2; sleep 100",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let ps = d.ok(&["ps", "--filter", &format!("name={n}")]);
    let mut lines = ps.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("CONTAINER ID   IMAGE     COMMAND"),
        "{ps}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(row.starts_with(&id[..12]), "{ps}");
    assert!(row.contains("\"sh -c 'echo hello; …\""), "{ps}");
    assert!(row.contains(" Up "), "{ps}");
    assert!(row.ends_with(&n), "{ps}");

    let f = d.ok(&[
        "ps",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Names}} {{.State}} {{.Labels}}",
    ]);
    assert!(f.contains(&format!("{n} running team=a")), "{f}");

    std::thread::sleep(Duration::from_millis(500));
    let o = d.berth(&["logs", &n]);
    assert_eq!(out_s(&o), "hello\n");
    assert_eq!(err(&o), "oops\n");
    let o = d.berth(&["logs", "--tail", "1", &n]);
    // One line in all; which stream it is on depends on which write the daemon saw last.
    assert_eq!(format!("{}{}", out_s(&o), err(&o)).lines().count(), 1);

    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", &n]),
        "running\n"
    );
    let j = d.ok(&["container", "inspect", &n]);
    assert!(j.starts_with("[\n    {\n        \"Id\": "), "{j}");

    assert_eq!(d.ok(&["pause", &n]), format!("{n}\n"));
    let st = d.ok(&[
        "ps",
        "--filter",
        &format!("name={n}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(st.contains("(Paused)"), "{st}");
    assert_eq!(d.ok(&["unpause", &n]), format!("{n}\n"));

    let top = d.ok(&["top", &n]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 100"), "{top}");

    let stats = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        &n,
    ]);
    assert!(stats.starts_with(&format!("{n} ")), "{stats}");

    assert_eq!(d.ok(&["stop", "-t", "1", &n]), format!("{n}\n"));
    let st = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={n}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(st.starts_with("Exited ("), "{st}");
    assert!(d.ok(&["wait", &n]).trim().parse::<i32>().is_ok());

    let n2 = d.name("web2");
    d.ok(&["rename", &n, &n2]);
    assert_eq!(d.ok(&["rm", &n2]), format!("{n2}\n"));
    let o = d.berth(&["rm", &n2]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        err(&o),
        format!("Error response from daemon: No such container: {n2}\n")
    );
}

#[test]
fn exec_create_start_attach() {
    let d = Daemon::start();
    let n = d.name("ex");
    d.ok(&["run", "-d", "--name", &n, "busybox", "sleep", "100"]);
    let o = d.berth(&["exec", &n, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = d.berth_in(&["exec", "-i", &n, "cat"], Some(b"data\n"));
    assert_eq!(out_s(&o), "data\n");
    let o = d.berth(&[
        "exec",
        "-e",
        "X=1",
        "-u",
        "1000",
        &n,
        "sh",
        "-c",
        "echo $X; id -u",
    ]);
    assert_eq!(out_s(&o), "1\n1000\n", "{}", err(&o));
    d.ok(&["exec", "-d", &n, "sleep", "1"]);

    let c = d.name("cr");
    let id = d.ok(&[
        "create",
        "-i",
        "--name",
        &c,
        "busybox",
        "sh",
        "-c",
        "cat; exit 5",
    ]);
    assert_eq!(id.trim().len(), 64);
    let o = d.berth_in(&["start", "-ai", &c], Some(b"in\n"));
    assert_eq!(out_s(&o), "in\n", "{}", err(&o));
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(d.ok(&["start", &c]), format!("{c}\n"));
    d.ok(&["kill", &n]);
    d.ok(&["container", "rm", "-f", &n, &c]);
}

#[test]
fn cp_both_ways() {
    let d = Daemon::start();
    let n = d.name("cp");
    d.ok(&["run", "-d", "--name", &n, "busybox", "sleep", "100"]);
    let local = tempfile::tempdir().expect("tmp");
    let src = local.path().join("f.txt");
    std::fs::write(&src, "hello\n").expect("write");
    d.ok(&["cp", &src.to_string_lossy(), &format!("{n}:/bin/g.txt")]);
    assert_eq!(d.ok(&["exec", &n, "cat", "/bin/g.txt"]), "hello\n");
    let back = local.path().join("back.txt");
    d.ok(&["cp", &format!("{n}:/bin/g.txt"), &back.to_string_lossy()]);
    assert_eq!(std::fs::read_to_string(&back).expect("read"), "hello\n");
    let o = d.berth(&["cp", &format!("{n}:/bin/g.txt"), "-"]);
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .expect("tar")
        .filter_map(|e| e.ok()?.path().ok().map(|p| p.to_string_lossy().to_string()))
        .collect();
    assert_eq!(names, ["g.txt"], "{} bytes, {}", o.stdout.len(), err(&o));
    let o = d.berth(&["cp", &format!("{n}:/nope"), &back.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn prune_and_disk_usage() {
    let d = Daemon::start();
    let n = d.name("gone");
    d.berth(&["run", "--name", &n, "busybox", "true"]);
    let df = d.ok(&["system", "df"]);
    assert!(
        df.starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages "),
        "{df}"
    );
    let p = d.ok(&["container", "prune", "-f"]);
    assert!(p.contains("Total reclaimed space: "), "{p}");
    let left = d.ok(&["ps", "-aq", "--filter", &format!("name={n}")]);
    assert_eq!(left, "");
}
