//! The real docker CLI (28.x) running containers on a real berthd: run, ps, logs, exec, stop,
//! start, restart, kill, rm, inspect, wait, cp, stats, top, events, with Docker's output and
//! exit codes.

mod common;

use common::Berthd;
use common::registry::Registry;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// A daemon with `busybox` pulled from a local registry and tagged `busybox:latest`.
fn daemon() -> (Registry, Berthd) {
    common::daemon_with_busybox()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn run_rm_and_exit_codes() {
    let (_reg, d) = daemon();
    let out = d.docker_ok(&["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert_eq!(out, "hello from berth\n");
    let code = d.docker(&["run", "--rm", "busybox", "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(code.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&code.stderr), "err\n");
    // --rm leaves nothing behind.
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    // Docker's codes for a missing command and a daemon-side error.
    let missing = d.docker(&["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127), "{missing:?}");
    let bad = d.docker(&["run", "--rm", "--name", "bad/name", "busybox", "true"]);
    assert_eq!(bad.status.code(), Some(125), "{bad:?}");
    // stdin through a pipe.
    let mut child = Command::new("docker")
        .args(["-H", &d.host(), "run", "--rm", "-i", "busybox", "wc", "-c"])
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker run -i");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"twelve bytes").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "12");
}

#[test]
fn detached_lifecycle() {
    let (_reg, d) = daemon();
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");

    let ps = d.docker_ok(&["ps"]);
    let l = lines(&ps);
    assert!(l[0].starts_with("CONTAINER ID"), "{ps}");
    assert!(
        l[1].starts_with(&id[..12]) && l[1].contains("Up") && l[1].ends_with("web"),
        "{ps}"
    );
    let name = d.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(name.trim(), "web running");

    wait_until("first log line", || {
        d.docker_ok(&["logs", "web"]).contains("started")
    });

    let insp = d.docker_ok(&["inspect", "web"]);
    let v: serde_json::Value = serde_json::from_str(&insp).expect("inspect JSON");
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Name"], "/web");
    assert_eq!(v[0]["State"]["Running"], true);
    assert!(v[0]["State"]["Pid"].as_i64().unwrap_or(0) > 0);
    let fmt = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Config.Image}}",
        "web",
    ]);
    assert_eq!(fmt.trim(), "running busybox");

    // exec with output and exit code.
    assert_eq!(d.docker_ok(&["exec", "web", "echo", "in"]).trim(), "in");
    let e = d.docker(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(e.status.code(), Some(7));
    assert_eq!(
        d.docker_ok(&["exec", "-w", "/tmp", "web", "pwd"]).trim(),
        "/tmp"
    );
    assert_eq!(
        d.docker_ok(&["exec", "-e", "X=1", "web", "sh", "-c", "echo $X"])
            .trim(),
        "1"
    );

    let top = d.docker_ok(&["top", "web"]);
    assert!(top.contains("PID") && top.contains("sleep"), "{top}");

    let stats = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "web",
    ]);
    assert!(stats.starts_with("web "), "{stats}");

    // stop: the TERM trap runs, the exit code is 0.
    d.docker_ok(&["stop", "web"]);
    assert!(d.docker_ok(&["logs", "web"]).contains("bye"));
    let st = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(st.trim(), "exited 0");
    let ps_a = d.docker_ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps_a.starts_with("Exited (0)"), "{ps_a}");
    assert_eq!(d.docker_ok(&["ps", "-q"]).trim(), "");

    d.docker_ok(&["start", "web"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Running}}", "web"])
            .trim(),
        "true"
    );
    d.docker_ok(&["restart", "-t", "1", "web"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Running}}", "web"])
            .trim(),
        "true"
    );

    d.docker_ok(&["kill", "web"]);
    let st = d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "web"]);
    assert_eq!(st.trim(), "137");
    let w = d.docker_ok(&["wait", "web"]);
    assert_eq!(w.trim(), "137");

    // Name conflicts are Docker's 409.
    let dup = d.docker(&["create", "--name", "web", "busybox"]);
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("is already in use by container"),
        "{dup:?}"
    );

    d.docker_ok(&["start", "web"]);
    let rm = d.docker(&["rm", "web"]);
    assert!(
        !rm.status.success(),
        "removing a running container must fail"
    );
    d.docker_ok(&["rm", "-f", "web"]);
    let gone = d.docker(&["inspect", "web"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("No such object: web"),
        "{gone:?}"
    );
}

#[test]
fn logs_follow_and_wait() {
    let (_reg, d) = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done",
    ]);
    let out = Command::new("docker")
        .args(["-H", &d.host(), "logs", "-f", "counter"])
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .output()
        .expect("docker logs -f");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line1\nline2\nline3\nline4\nline5\n"
    );
    let tail = d.docker_ok(&["logs", "--tail", "2", "counter"]);
    assert_eq!(tail, "line4\nline5\n");
    let ts = d.docker_ok(&["logs", "-t", "--tail", "1", "counter"]);
    assert!(ts.contains("Z line5"), "{ts}");
    assert_eq!(d.docker_ok(&["wait", "counter"]).trim(), "0");
}

#[test]
fn copy_both_ways() {
    let (_reg, d) = daemon();
    d.docker_ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("greeting.txt");
    std::fs::write(&src, "hi there\n").expect("write");
    d.docker_ok(&["cp", &src.to_string_lossy(), "box:/tmp/"]);
    assert_eq!(
        d.docker_ok(&["exec", "box", "cat", "/tmp/greeting.txt"]),
        "hi there\n"
    );
    d.docker_ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /data && echo x > /data/f",
    ]);
    let dst = tmp.path().join("out");
    d.docker_ok(&["cp", "box:/data", &dst.to_string_lossy()]);
    assert_eq!(
        std::fs::read_to_string(dst.join("f")).expect("copied"),
        "x\n"
    );
    // A path that tries to climb out of the container stays inside it.
    let esc = d.docker(&[
        "cp",
        "box:/../../../../etc/hostname",
        &tmp.path().join("h").to_string_lossy(),
    ]);
    if esc.status.success() {
        let h = std::fs::read_to_string(tmp.path().join("h")).unwrap_or_default();
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        assert_ne!(h, host, "cp escaped the container's root");
    }
}

#[test]
fn exec_with_tty_under_a_pty() {
    let (_reg, d) = daemon();
    d.docker_ok(&["run", "-d", "--name", "tty", "busybox", "sleep", "1000"]);
    // `script` gives docker a real terminal, so -it takes the raw-TTY path.
    let cmd = format!(
        "DOCKER_CONFIG={} docker -H {} exec -it tty sh -c 'tty; stty size; exit 4'",
        d.dir.path().join("docker-config").display(),
        d.host()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(4), "{text}");
}

#[test]
fn detach_keys_leave_the_container_running() {
    let (_reg, d) = daemon();
    d.docker_ok(&["run", "-dit", "--name", "dk", "busybox", "sh"]);
    // ctrl-p ctrl-q from a real terminal: the client detaches, the shell keeps running.
    let cmd = format!(
        "(printf 'echo hi-$((6*7))\\n'; sleep 1; printf '\\020\\021'; sleep 3) | \
         script -qec 'DOCKER_CONFIG={} docker -H {} attach dk' /dev/null",
        d.dir.path().join("docker-config").display(),
        d.host()
    );
    let out = Command::new("sh")
        .args(["-c", &cmd])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hi-42"), "{text}");
    // The CLI sees the sequence too and exits 1 after "read escape sequence", as with dockerd.
    assert!(text.contains("read escape sequence"), "{text}");
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Running}}", "dk"])
            .trim(),
        "true"
    );
    // Still attachable, and its stdin still open.
    d.docker_ok(&["exec", "dk", "true"]);
}

#[test]
fn events_stream_container_actions() {
    let (_reg, d) = daemon();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        .to_string();
    d.docker_ok(&["run", "--rm", "--name", "ev", "busybox", "true"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        + 1)
    .to_string();
    let ev = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Action}}",
    ]);
    let actions = lines(&ev);
    for a in ["create", "start", "die", "destroy"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

/// PIDs of berth-shim processes started under this daemon's directory.
fn shims(d: &Berthd) -> Vec<i32> {
    let dir = d.dir.path().to_string_lossy().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("berth-shim") && cmd.contains(&dir) {
            out.push(pid);
        }
    }
    out
}

/// Overlay mounts below the daemon's directory.
fn mounts(d: &Berthd) -> Vec<String> {
    let dir = d.dir.path().to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

#[test]
fn live_restore_after_sigkill() {
    let (_reg, mut d) = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo tick$i; sleep 0.05; done",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 42",
    ]);
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "ticker"]);
    wait_until("ticks", || {
        d.docker_ok(&["logs", "ticker"]).contains("tick3")
    });

    d.kill9();
    // While berthd is down the containers go on; `short` exits meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    d.restart();

    let pid2 = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Pid}} {{.State.Running}}",
        "ticker",
    ]);
    assert_eq!(pid2.trim(), format!("{} true", pid.trim()));
    let st = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "short",
    ]);
    assert_eq!(st.trim(), "exited 42");
    // The log has every line: no gap while the daemon was away.
    wait_until("more ticks", || {
        let logs = d.docker_ok(&["logs", "ticker"]);
        logs.lines().count() > 40
    });
    let logs = d.docker_ok(&["logs", "ticker"]);
    for (i, l) in logs.lines().enumerate() {
        assert_eq!(l, format!("tick{}", i + 1), "gap in the log");
    }
    d.docker_ok(&["stop", "-t", "1", "ticker"]);
    // A shim exits just after it has recorded its container's exit, which `stop` waits for:
    // under load that can be a moment after `stop` answers.
    wait_until("no shim after the containers stopped", || {
        shims(&d).is_empty()
    });
}

#[test]
fn crash_during_lifecycle_leaves_nothing_half_done() {
    let (_reg, mut d) = daemon();
    // Kill berthd at different moments of create/start/stop/rm; each restart must repair.
    for (i, delay_ms) in [0u64, 5, 15, 30, 60, 120].iter().enumerate() {
        let name = format!("c{i}");
        let mut child = Command::new("docker")
            .args([
                "-H",
                &d.host(),
                "run",
                "-d",
                "--name",
                &name,
                "busybox",
                "sleep",
                "1000",
            ])
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker run");
        std::thread::sleep(Duration::from_millis(*delay_ms));
        d.kill9();
        let _ = child.wait();
        d.restart();
        // Either the container exists and is consistent, or it does not exist at all.
        let st = d.docker(&["inspect", "-f", "{{.State.Status}}", &name]);
        if st.status.success() {
            let s = String::from_utf8_lossy(&st.stdout).trim().to_string();
            assert!(
                matches!(s.as_str(), "created" | "running" | "exited"),
                "{s}"
            );
            d.docker_ok(&["rm", "-f", &name]);
        }
        // Stop and remove with a crash in the middle.
        d.docker_ok(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"]);
        let mut rm = Command::new("docker")
            .args(["-H", &d.host(), "rm", "-f", &name])
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker rm");
        std::thread::sleep(Duration::from_millis(*delay_ms));
        d.kill9();
        let _ = rm.wait();
        d.restart();
        let _ = d.docker(&["rm", "-f", &name]);
        assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "", "round {i}");
        wait_until("shims gone", || shims(&d).is_empty());
        let m = mounts(&d);
        assert!(m.is_empty(), "round {i}: mounts left: {m:?}");
    }
}

#[test]
fn docker_compose_1_29_up_ps_logs_down() {
    let (_reg, d) = daemon();
    let proj = tempfile::tempdir().expect("project dir");
    // Host networking: Berth's networks arrive with the networks issue, and compose 1.29 then
    // creates no project network.
    std::fs::write(
        proj.path().join("docker-compose.yml"),
        "version: \"3.7\"\nservices:\n  web:\n    image: busybox\n    network_mode: host\n    \
         command: sh -c 'echo web up; sleep 1000'\n  worker:\n    image: busybox\n    \
         network_mode: host\n    command: sh -c 'echo worker up; sleep 1000'\n    \
         depends_on: [web]\n",
    )
    .expect("compose file");
    let compose = |args: &[&str]| {
        let out = Command::new("docker-compose")
            .args(["-p", "pair"])
            .args(args)
            .current_dir(proj.path())
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .expect("docker-compose");
        assert!(
            out.status.success(),
            "docker-compose {args:?}: {}\n{}\n--- berthd log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    compose(&["up", "-d"]);
    let ps = compose(&["ps"]);
    assert!(
        ps.contains("pair_web_1") && ps.contains("pair_worker_1"),
        "{ps}"
    );
    assert_eq!(
        ps.matches(" Up ").count() + ps.matches(" Up\n").count(),
        2,
        "{ps}"
    );
    wait_until("both services logged", || {
        let logs = compose(&["logs"]);
        logs.contains("web up") && logs.contains("worker up")
    });
    let labels = d.docker_ok(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.docker.compose.service\"}}",
        "pair_web_1",
    ]);
    assert_eq!(labels.trim(), "web");
    compose(&["down", "-t", "1"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
}
