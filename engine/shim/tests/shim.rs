//! The shim binary against real containers: a busybox bundle, real namespaces and cgroups.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_shim::protocol::{self, FrameDecoder, Request};
use berth_shim::{ExitStatus, LogDriver, LogReader, Mode, ProcessStatus, ShimConfig, Stream};
use serde_json::{Value, json};

fn runnable() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let ok = root && Path::new("/bin/busybox").exists();
    if !ok {
        eprintln!("skipped: needs root and busybox-static");
    }
    ok
}

/// One container's bundle, runtime root and shim paths; kills and removes everything on drop.
struct Box {
    dir: tempfile::TempDir,
    id: String,
    spec: Value,
    shims: Vec<Child>,
    orphan_pids: Vec<i32>,
}

impl Box {
    fn new(name: &str) -> Box {
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("bundle/rootfs");
        for sub in ["bin", "proc", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let applets = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .unwrap()
            .stdout;
        for a in String::from_utf8_lossy(&applets)
            .lines()
            .filter(|a| *a != "busybox")
        {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        let id = format!("shimt{}-{name}", std::process::id());
        let spec = json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "hostname": "shimtest",
            "process": {
                "terminal": false, "cwd": "/", "user": {"uid": 0, "gid": 0},
                "args": ["true"], "env": ["PATH=/bin", "TERM=xterm"]
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                               {"type": "uts"}, {"type": "mount"}],
                "cgroupsPath": format!("/berth/{id}")
            }
        });
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Box {
            dir,
            id,
            spec,
            shims: Vec::new(),
            orphan_pids: Vec::new(),
        }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes config.json with these args (and tty).
    fn bundle(&mut self, args: &[&str], tty: bool) {
        self.spec["process"]["args"] = json!(args);
        self.spec["process"]["terminal"] = json!(tty);
        std::fs::write(self.p("bundle/config.json"), self.spec.to_string()).unwrap();
    }

    fn config(&self) -> ShimConfig {
        serde_json::from_value(json!({
            "mode": "container",
            "id": self.id,
            "bundle": self.p("bundle"),
            "runtime_root": self.p("runtime"),
            "socket": self.p("run/shim.sock"),
            "exit_file": self.p("run/exit.json"),
            "log": {"driver": "json-file", "path": self.p("run/c.log"), "max_size": 0, "max_file": 1}
        }))
        .unwrap()
    }

    /// Spawns the shim and reads its handshake line.
    fn spawn(&mut self, cfg: &ShimConfig, name: &str) -> protocol::Response {
        let cfg_path = self.p(&format!("{name}.json"));
        cfg.save(&cfg_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth-shim"))
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.shims.push(child);
        protocol::parse_line(line.as_bytes()).unwrap()
    }

    fn shim_pid(&self) -> i32 {
        self.shims.last().map(|c| c.id() as i32).unwrap()
    }

    fn call(&self, sock: &Path, r: Request) -> protocol::Response {
        protocol::call(sock, &r).unwrap()
    }

    fn sock(&self) -> PathBuf {
        self.p("run/shim.sock")
    }

    /// Waits for the last spawned shim to exit and returns its exit code.
    fn shim_exit(&mut self) -> i32 {
        let child = self.shims.last_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "shim did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit status: from `wait`, or from the exit file when the shim is already gone.
    fn wait_exit(&self, cfg: &ShimConfig) -> ExitStatus {
        if let Ok(r) = protocol::call(&cfg.socket, &Request::Wait) {
            return r.exit.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = ExitStatus::read(&cfg.exit_file).unwrap() {
                return e;
            }
            assert!(Instant::now() < deadline, "no exit file");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_lines(&self) -> Vec<(Stream, String)> {
        LogReader::open(LogDriver::JsonFile, self.p("run/c.log"), 1)
            .unwrap()
            .read()
            .unwrap()
            .into_iter()
            .map(|e| (e.stream, String::from_utf8_lossy(&e.line).into_owned()))
            .collect()
    }
}

impl Drop for Box {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.p("run/shim.log")).unwrap_or_default();
            eprintln!("--- shim.log of {}:\n{log}", self.id);
        }
        for c in &mut self.shims {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in &self.orphan_pids {
            // SAFETY-free: kill through the runtime's wrapper.
            let _ = berth_runtime::sys::kill(*pid, libc::SIGKILL);
        }
        if let Ok(c) = berth_runtime::Container::load(&self.p("runtime"), &self.id) {
            let _ = c.delete(true);
        }
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join("berth").join(&self.id));
            }
        }
    }
}

fn read_until(s: &mut UnixStream, want: &str, raw: bool) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut dec = FrameDecoder::new();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(want) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed before {want:?}; got {text:?}");
        if raw {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        } else {
            dec.push(&buf[..n]);
            while let Some((_, data)) = dec.next_frame().unwrap() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
    text
}

#[test]
fn start_exit_code_log_and_cleanup() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("basic");
    b.bundle(
        &["sh", "-c", "echo hello; echo '<oops>' >&2; exit 3"],
        false,
    );
    let cfg = b.config();
    let hs = b.spawn(&cfg, "shim");
    assert!(hs.ok, "{hs:?}");
    let pid = hs.pid.unwrap();
    assert!(pid > 0);
    let st = b.call(&b.sock(), Request::State);
    assert_eq!(
        (st.status, st.pid),
        (Some(ProcessStatus::Created), Some(pid))
    );
    assert_eq!(b.call(&b.sock(), Request::Start).pid, Some(pid));
    let exit = b.wait_exit(&cfg);
    assert_eq!(
        (exit.exit_code, exit.signal, exit.oom_killed),
        (3, None, false)
    );
    assert_eq!(ExitStatus::read(&cfg.exit_file).unwrap().unwrap(), exit);
    assert!(exit.finished_at >= exit.started_at && exit.finished_at.ends_with('Z'));
    assert_eq!(b.shim_exit(), 0);
    assert_eq!(
        b.log_lines(),
        vec![
            (Stream::Stdout, "hello\n".into()),
            (Stream::Stderr, "<oops>\n".into())
        ]
    );
    let raw = std::fs::read_to_string(b.p("run/c.log")).unwrap();
    assert!(
        raw.starts_with("{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"20"),
        "{raw}"
    );
    assert!(raw.contains("\\u003coops\\u003e"), "{raw}");
    assert!(!b.sock().exists(), "socket left behind");
    assert!(
        !b.p(&format!("runtime/{}", b.id)).exists(),
        "runtime state left behind"
    );
}

#[test]
fn bad_bundle_fails_the_handshake_and_leaves_nothing() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("bad");
    b.bundle(&["/nonexistent"], false);
    let mut cfg = b.config();
    cfg.bundle = Some(b.p("missing"));
    let hs = b.spawn(&cfg, "shim");
    assert!(!hs.ok && hs.error.is_some(), "{hs:?}");
    assert_ne!(b.shim_exit(), 0);
    assert!(!b.sock().exists());
    assert!(!b.p(&format!("runtime/{}", b.id)).exists());
}

#[test]
fn json_file_rotation_tail_since_and_follow() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("rotate");
    b.bundle(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; sleep 0.5; echo last",
        ],
        false,
    );
    let mut cfg = b.config();
    cfg.log.max_size = 4000;
    cfg.log.max_file = 3;
    assert!(b.spawn(&cfg, "shim").ok);
    // Follow from before the start: every line kept in the files arrives, through rotations.
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = LogReader::open(LogDriver::JsonFile, &cfg.log.path, 3).unwrap();
    let st = stop.clone();
    let follower = std::thread::spawn(move || {
        reader
            .follow(&st, |e| {
                tx.send(String::from_utf8_lossy(&e.line).into_owned())
                    .is_ok()
            })
            .unwrap();
    });
    b.call(&b.sock(), Request::Start);
    assert_eq!(b.wait_exit(&cfg).exit_code, 0);
    let mut followed = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(3)) {
        let done = l == "last\n";
        followed.push(l);
        if done {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    follower.join().unwrap();
    assert_eq!(followed.last().map(String::as_str), Some("last\n"));
    assert!(cfg.log.path.exists() && berth_shim::logfile::rotated_path(&cfg.log.path, 2).exists());
    assert!(!berth_shim::logfile::rotated_path(&cfg.log.path, 3).exists());
    let all = LogReader::open(LogDriver::JsonFile, &cfg.log.path, 3)
        .unwrap()
        .read()
        .unwrap();
    assert!(all.len() < 301 && all.len() > 50, "{}", all.len());
    let n = all.len();
    for (k, e) in all[..n - 1].iter().enumerate() {
        assert_eq!(e.line, format!("line {}\n", 300 - (n - 1) + k).into_bytes());
    }
    let tail = LogReader::open(LogDriver::JsonFile, &cfg.log.path, 3)
        .unwrap()
        .tail(3)
        .read()
        .unwrap();
    let tail: Vec<_> = tail
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect();
    assert_eq!(tail, ["line 298\n", "line 299\n", "last\n"]);
    let since = LogReader::open(LogDriver::JsonFile, &cfg.log.path, 3)
        .unwrap()
        .since(all[n - 1].time)
        .read()
        .unwrap();
    assert_eq!(since.len(), 1);
    // Followed lines end with exactly what the files keep (older ones may have rotated away).
    let kept: Vec<String> = all
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect();
    assert!(
        followed.ends_with(&kept),
        "followed {} kept {}",
        followed.len(),
        kept.len()
    );
}

#[test]
fn attach_stdin_without_tty() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("cat");
    b.bundle(&["cat"], false);
    let mut cfg = b.config();
    cfg.stdin = true;
    cfg.stdin_once = true;
    assert!(b.spawn(&cfg, "shim").ok);
    // Attach before start, as `docker run -i` does.
    let mut s = protocol::attach(&b.sock(), true, true, true).unwrap();
    b.call(&b.sock(), Request::Start);
    s.write_all(b"ping\n").unwrap();
    assert_eq!(read_until(&mut s, "ping\n", false), "ping\n");
    s.shutdown(std::net::Shutdown::Write).unwrap();
    // cat sees EOF, exits; the attach stream then ends.
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_to_end(&mut rest).unwrap();
    let exit = ExitStatus::read(&cfg.exit_file).unwrap().unwrap();
    assert_eq!(exit.exit_code, 0);
    assert_eq!(b.shim_exit(), 0);
    assert_eq!(b.log_lines(), vec![(Stream::Stdout, "ping\n".into())]);
}

#[test]
fn attach_with_tty_and_resize() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("tty");
    b.bundle(&["sh"], true);
    let mut cfg = b.config();
    cfg.tty = true;
    cfg.stdin = true;
    let hs = b.spawn(&cfg, "shim");
    assert!(hs.ok, "{hs:?}");
    let mut s = protocol::attach(&b.sock(), true, true, true).unwrap();
    b.call(&b.sock(), Request::Start);
    assert!(
        b.call(
            &b.sock(),
            Request::Resize {
                height: 33,
                width: 101
            }
        )
        .ok
    );
    s.write_all(b"stty size; exit 7\n").unwrap();
    let out = read_until(&mut s, "33 101", true);
    assert!(out.contains("33 101"), "{out}");
    assert_eq!(b.wait_exit(&cfg).exit_code, 7);
    assert_eq!(b.shim_exit(), 0);
    let logged: String = b.log_lines().into_iter().map(|(_, l)| l).collect();
    assert!(logged.contains("33 101"), "{logged}");
}

#[test]
fn kill_pause_resume_and_signal_exit() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("kill");
    b.bundle(&["sleep", "1000"], false);
    let cfg = b.config();
    assert!(b.spawn(&cfg, "shim").ok);
    b.call(&b.sock(), Request::Start);
    assert_eq!(
        b.call(&b.sock(), Request::State).status,
        Some(ProcessStatus::Running)
    );
    assert!(b.call(&b.sock(), Request::Pause).ok);
    assert_eq!(
        b.call(&b.sock(), Request::State).status,
        Some(ProcessStatus::Paused)
    );
    assert!(b.call(&b.sock(), Request::Resume).ok);
    assert_eq!(
        b.call(&b.sock(), Request::State).status,
        Some(ProcessStatus::Running)
    );
    assert!(
        b.call(
            &b.sock(),
            Request::Kill {
                signal: libc::SIGKILL,
                all: false
            }
        )
        .ok
    );
    let exit = b.wait_exit(&cfg);
    assert_eq!((exit.exit_code, exit.signal), (137, Some(libc::SIGKILL)));
    assert_eq!(b.shim_exit(), 0);
}

#[test]
fn signals_to_the_shim_reach_the_process() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("term");
    b.bundle(
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while true; do sleep 0.05; done",
        ],
        false,
    );
    let cfg = b.config();
    assert!(b.spawn(&cfg, "shim").ok);
    b.call(&b.sock(), Request::Start);
    std::thread::sleep(Duration::from_millis(200));
    berth_runtime::sys::kill(b.shim_pid(), libc::SIGTERM).unwrap();
    assert_eq!(b.shim_exit(), 0);
    assert_eq!(
        ExitStatus::read(&cfg.exit_file).unwrap().unwrap().exit_code,
        42
    );
}

#[test]
fn oom_kill_is_reported() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("oom");
    b.spec["linux"]["resources"] = json!({"memory": {"limit": 16 << 20, "swap": 16 << 20}});
    b.bundle(&["sh", "-c", "tail /dev/zero"], false);
    let cfg = b.config();
    let hs = b.spawn(&cfg, "shim");
    assert!(hs.ok, "{hs:?}");
    b.call(&b.sock(), Request::Start);
    let exit = b.wait_exit(&cfg);
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.exit_code, 137, "{exit:?}");
}

#[test]
fn survives_its_parent_being_killed() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("orphan");
    b.bundle(&["sh", "-c", "sleep 0.3; echo bye; exit 5"], false);
    let cfg = b.config();
    cfg.save(&b.p("shim.json")).unwrap();
    // An intermediate shell plays berthd: it starts the shim, reports its pid, then dies.
    let mut parent = Command::new("/bin/sh")
        .arg("-c")
        .arg("\"$0\" \"$1\" & echo \"shimpid $!\"; wait")
        .arg(env!("CARGO_BIN_EXE_berth-shim"))
        .arg(b.p("shim.json"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(parent.stdout.take().unwrap());
    let (mut hs, mut shim_pid) = (None, 0);
    while hs.is_none() || shim_pid == 0 {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0);
        if let Some(p) = line.strip_prefix("shimpid ") {
            shim_pid = p.trim().parse().unwrap();
            b.orphan_pids.push(shim_pid);
        } else {
            hs = Some(protocol::parse_line::<protocol::Response>(line.as_bytes()).unwrap());
        }
    }
    assert!(hs.unwrap().ok);
    parent.kill().unwrap();
    parent.wait().unwrap();
    drop(out);
    b.call(&b.sock(), Request::Start);
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(e) = ExitStatus::read(&cfg.exit_file).unwrap() {
            break e;
        }
        assert!(Instant::now() < deadline, "no exit file");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.exit_code, 5);
    assert_eq!(b.log_lines(), vec![(Stream::Stdout, "bye\n".into())]);
}

#[test]
fn exec_mode_runs_a_second_process() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("exec");
    b.bundle(&["sleep", "1000"], false);
    let cfg = b.config();
    assert!(b.spawn(&cfg, "shim").ok);
    b.call(&b.sock(), Request::Start);
    std::fs::create_dir_all(b.p("exec1")).unwrap();
    let mut process = berth_runtime::Container::load(&cfg.runtime_root, &b.id)
        .unwrap()
        .spec()
        .process()
        .clone()
        .unwrap();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from-exec; echo e >&2; exit 4".into(),
    ]));
    let mut ecfg = cfg.clone();
    ecfg.mode = Mode::Exec;
    ecfg.exec_id = Some("e1".into());
    ecfg.bundle = None;
    ecfg.process = Some(process);
    ecfg.socket = b.p("exec1/shim.sock");
    ecfg.exit_file = b.p("exec1/exit.json");
    ecfg.log.path = b.p("exec1/exec.log");
    let hs = b.spawn(&ecfg, "exec1");
    assert_eq!((hs.ok, hs.pid), (true, Some(0)), "{hs:?}");
    let mut s = protocol::attach(&ecfg.socket, false, true, true).unwrap();
    let started = b.call(&ecfg.socket, Request::Start);
    assert!(started.pid.unwrap() > 0);
    let mut wire = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_to_end(&mut wire).unwrap();
    let mut dec = FrameDecoder::new();
    dec.push(&wire);
    let mut frames = Vec::new();
    while let Some(f) = dec.next_frame().unwrap() {
        frames.push(f);
    }
    assert!(
        frames.contains(&(Stream::Stdout, b"from-exec\n".to_vec())),
        "{frames:?}"
    );
    assert!(
        frames.contains(&(Stream::Stderr, b"e\n".to_vec())),
        "{frames:?}"
    );
    assert_eq!(b.shim_exit(), 0);
    assert_eq!(
        ExitStatus::read(&ecfg.exit_file)
            .unwrap()
            .unwrap()
            .exit_code,
        4
    );
    // The container itself is untouched.
    assert_eq!(
        b.call(&b.sock(), Request::State).status,
        Some(ProcessStatus::Running)
    );
    b.call(
        &b.sock(),
        Request::Kill {
            signal: libc::SIGKILL,
            all: true,
        },
    );
    b.wait_exit(&cfg);
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn idle_shim_is_small() {
    if !runnable() {
        return;
    }
    let mut b = Box::new("rss");
    b.bundle(&["sh", "-c", "echo up; sleep 1000"], false);
    let cfg = b.config();
    assert!(b.spawn(&cfg, "shim").ok);
    b.call(&b.sock(), Request::Start);
    b.call(&b.sock(), Request::State);
    std::thread::sleep(Duration::from_millis(300));
    let rss = rss_kib(b.shim_pid());
    eprintln!("idle shim VmRSS: {rss} KiB");
    let limit: u64 = std::env::var("BERTH_SHIM_RSS_LIMIT_KIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    assert!(rss < limit, "idle shim uses {rss} KiB");
    b.call(
        &b.sock(),
        Request::Kill {
            signal: libc::SIGKILL,
            all: false,
        },
    );
    b.wait_exit(&cfg);
}
