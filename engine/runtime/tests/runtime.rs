//! Root integration tests: each feature checked by its effect inside a busybox container.

mod common;

use std::time::Duration;

use common::{Env, assert_gone, can_run, cgroup_dirs};
use serde_json::json;

fn ok(o: &std::process::Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_returns_exit_code_and_cleans_up() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let id = env.id("run");
    env.write_config(&["sh", "-c", "echo hello; echo $$; hostname; exit 3"]);
    let (code, out, err) = env.run(&id);
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(out, "hello\n1\nberthbox\n");
    assert_gone(&env.root.join(&id));
    for d in cgroup_dirs(&id) {
        assert_gone(&d);
    }
}

#[test]
fn create_start_state_kill_delete() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let id = env.id("life");
    env.write_config(&["sh", "-c", "echo started; exec sleep 100"]);
    let pid_file = env.dir.path().join("pid");
    let o = env.detached(
        env.cmd(&["create", "--pid-file", pid_file.to_str().unwrap(), &id]),
        &id,
    );
    ok(&o, "create");
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert_eq!(st["id"], json!(id));

    // A duplicate ID is refused and the first container is untouched.
    let dup = env.create(&id, &[]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
    assert_eq!(env.state(&id)["status"], "created");

    ok(&env.rt(&["start", &id]), "start");
    assert_eq!(env.state(&id)["status"], "running");
    let again = env.rt(&["start", &id]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("cannot start"),
        "{}",
        stderr(&again)
    );

    let del = env.rt(&["delete", &id]);
    assert!(
        !del.status.success(),
        "delete of a running container must fail"
    );
    let list = env.rt(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);

    ok(&env.rt(&["kill", &id, "KILL"]), "kill");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while env.state(&id)["status"] != "stopped" {
        assert!(
            std::time::Instant::now() < deadline,
            "container did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(&env.rt(&["delete", &id]), "delete");
    assert_gone(&env.root.join(&id));
    for d in cgroup_dirs(&id) {
        assert_gone(&d);
    }
    let unknown = env.rt(&["state", &id]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("does not exist"));
}

#[test]
fn user_namespace_maps_are_visible() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("userns");
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    env.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.write_config(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
    ]);
    let (code, out, err) = env.run(&id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], vec!["0", "100000", "65536"]);
    assert_eq!(lines[1], vec!["0", "100000", "65536"]);
    assert_eq!(lines[2], vec!["0"]);
}

#[test]
fn capabilities_match_the_spec() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("caps");
    let caps = json!(["CAP_CHOWN", "CAP_KILL"]);
    env.config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps
    });
    env.write_config(&["sh", "-c", "grep ^Cap /proc/self/status"]);
    let (code, out, err) = env.run(&id);
    assert_eq!(code, 0, "{err}");
    // CAP_CHOWN is bit 0, CAP_KILL bit 5.
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{set}:\t0000000000000021")),
            "{set} in\n{out}"
        );
    }
}

#[test]
fn user_rlimits_and_no_new_privileges() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("user");
    env.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [2000], "umask": 63});
    env.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100}]);
    env.config["process"]["cwd"] = json!("/tmp");
    env.config["process"]["env"] = json!(["PATH=/bin", "GREETING=hi there"]);
    env.write_config(&[
        "sh",
        "-c",
        "id -u; id -g; id -G; ulimit -n; grep NoNewPrivs /proc/self/status; pwd; umask; echo $GREETING",
    ]);
    let (code, out, err) = env.run(&id);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    assert!(l[2].split_whitespace().any(|g| g == "2000"), "{}", l[2]);
    assert_eq!(l[3], "100");
    assert!(l[4].ends_with('1'), "{}", l[4]);
    assert_eq!(l[5], "/tmp");
    assert_eq!(l[6], "0077");
    assert_eq!(l[7], "hi there");
}

#[test]
fn seccomp_rule_returns_configured_errno() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("seccomp");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    });
    env.write_config(&[
        "sh",
        "-c",
        "mkdir /tmp/x; echo rc=$?; touch /tmp/y && echo touched",
    ]);
    let (code, out, err) = env.run(&id);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("touched"), "{out}");
    assert!(err.contains("Function not implemented"), "{err}");
}

#[test]
fn default_seccomp_profile_blocks_mount_and_unshare() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("dflt");
    let caps = vec!["CAP_CHOWN".to_string()];
    env.config["linux"]["seccomp"] =
        serde_json::to_value(berth_runtime::default_profile(&caps)).unwrap();
    env.write_config(&["sh", "-c", "unshare -U true; echo rc=$?; echo ok"]);
    let (code, out, err) = env.run(&id);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rc=1") && out.contains("ok"), "{out} {err}");
}

#[test]
fn readonly_root_masked_and_readonly_paths() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("ro");
    env.config["root"]["readonly"] = json!(true);
    env.write_config(&[
        "sh",
        "-c",
        "touch /newfile; echo root=$?; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
         echo 1 > /proc/sys/kernel/panic_on_oops; echo sys=$?; echo x > /dev/shm/ok && echo shm",
    ]);
    let (code, out, err) = env.run(&id);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(l, vec!["root=1", "0", "0", "sys=1", "shm"], "stderr: {err}");
    assert!(err.contains("Read-only file system"), "{err}");
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("hooks");
    let out_dir = env.dir.path().join("hookout");
    std::fs::create_dir(&out_dir).unwrap();
    let host_hook = |kind: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("cat > {d}/{kind}.json; echo {kind} >> {d}/order", d = out_dir.display())]})
    };
    // startContainer runs inside the container, where the output dir is mounted at /hookout.
    let in_container = json!({"path": "/bin/sh", "args": ["sh", "-c",
        "cat > /hookout/startContainer.json; echo startContainer >> /hookout/order"]});
    env.config["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        "startContainer": [in_container],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")]
    });
    env.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/hookout", "type": "bind", "source": out_dir, "options": ["rbind"]}),
    );
    env.write_config(&["true"]);
    let (code, _, err) = env.run(&id);
    assert_eq!(code, 0, "{err}");
    let order = std::fs::read_to_string(out_dir.join("order")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("createRuntime.json")).unwrap())
            .unwrap();
    assert_eq!(st["id"], json!(id));
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["status"], "created");
    let stop: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("poststop.json")).unwrap()).unwrap();
    assert_eq!(stop["status"], "stopped");
}

#[test]
fn memory_limit_leads_to_oom_kill() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("oom");
    env.config["linux"]["resources"] =
        json!({"memory": {"limit": 33554432i64, "swap": 33554432i64}});
    env.write_config(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; tail /dev/zero",
    ]);
    let (code, out, err) = env.run(&id);
    assert_eq!(out.trim(), "33554432", "{err}");
    assert_eq!(
        code, 137,
        "expected SIGKILL from the OOM killer; stderr: {err}"
    );
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("pids");
    env.config["linux"]["resources"] = json!({"pids": {"limit": 8}});
    env.write_config(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 1 20); do sleep 2 & done; wait; echo done",
    ]);
    // The shell itself may die on a failed fork; the limit and the refusals are what count.
    let (_code, out, err) = env.run(&id);
    assert!(out.starts_with("8\n"), "{out}");
    assert!(err.contains("fork"), "expected fork failures, got: {err}");
}

#[test]
fn update_changes_limits_of_a_running_container() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("update");
    env.config["linux"]["resources"] = json!({"pids": {"limit": 100}});
    env.write_config(&["sleep", "100"]);
    ok(&env.create(&id, &[]), "create");
    ok(&env.rt(&["start", &id]), "start");
    // Two forks work under the first limit.
    let forks = "sleep 1 & sleep 1 & wait && echo forked";
    let o = env.rt(&["exec", &id, "sh", "-c", forks]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "forked\n",
        "{}",
        stderr(&o)
    );

    ok(
        &env.rt(&["update", &id, "--pids-limit", "3", "--memory", "48m"]),
        "update",
    );
    let file = |ctl: &str, name: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/berth/{id}/{name}")).unwrap()
    };
    assert_eq!(file("pids", "pids.max"), "3\n");
    assert_eq!(file("memory", "memory.limit_in_bytes"), "50331648\n");
    // init and the exec'd shell leave room for one fork: the others are refused.
    let o = env.rt(&["exec", &id, "sh", "-c", forks]);
    assert!(stderr(&o).contains("fork"), "{}", stderr(&o));
    // The state keeps the new values.
    let st = std::fs::read_to_string(env.root.join(&id).join("state.json")).unwrap();
    let st: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["spec"]["linux"]["resources"]["pids"]["limit"], 3);
    assert_eq!(
        st["spec"]["linux"]["resources"]["memory"]["limit"],
        50331648
    );

    // --resources from stdin raises the limit again.
    let mut c = env.cmd(&["update", "--resources", "-", &id]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), br#"{"pids": {"limit": 10}}"#)
        .unwrap();
    ok(&child.wait_with_output().unwrap(), "update --resources -");
    let o = env.rt(&["exec", &id, "sh", "-c", forks]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "forked\n",
        "{}",
        stderr(&o)
    );

    let bad = env.rt(&["update", &id, "--memory", "lots"]);
    assert_eq!(bad.status.code(), Some(2));
    ok(&env.rt(&["delete", "--force", &id]), "delete --force");
    let gone = env.rt(&["update", &id, "--pids-limit", "5"]);
    assert!(!gone.status.success());
}

#[test]
fn time_namespace_shifts_uptime_for_init_and_exec() {
    if !can_run() || !std::path::Path::new("/proc/self/ns/time").exists() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("timens");
    let day = 86_400i64;
    env.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    env.config["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": 10 * day, "nanosecs": 0},
        "monotonic": {"secs": 3 * day, "nanosecs": 500},
    });
    env.write_config(&["sh", "-c", "cat /proc/uptime; exec sleep 100"]);
    let uptime = |text: &str| -> f64 {
        text.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no uptime in {text:?}"))
    };
    let host_before = uptime(&std::fs::read_to_string("/proc/uptime").unwrap());
    ok(&env.create(&id, &[]), "create");
    ok(&env.rt(&["start", &id]), "start");
    let mut inside = String::new();
    for _ in 0..100 {
        inside = env.output_of(&id);
        if !inside.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let host_after = uptime(&std::fs::read_to_string("/proc/uptime").unwrap());
    let shift = |v: f64, host: f64| v - host;
    let init = uptime(&inside);
    // /proc/uptime follows CLOCK_BOOTTIME: ten days ahead, within the time the test took.
    assert!(
        shift(init, host_after) <= 10.0 * day as f64 + 0.1
            && shift(init, host_before) >= 10.0 * day as f64 - 0.1,
        "init uptime {init}, host {host_before}..{host_after}"
    );
    let o = env.rt(&["exec", &id, "cat", "/proc/uptime"]);
    let host_now = uptime(&std::fs::read_to_string("/proc/uptime").unwrap());
    let exec = uptime(&String::from_utf8_lossy(&o.stdout));
    assert!(
        (shift(exec, host_now) - 10.0 * day as f64).abs() < 1.0,
        "exec uptime {exec}, host {host_now}: {}",
        stderr(&o)
    );
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let offsets = std::fs::read_to_string(format!("/proc/{pid}/timens_offsets")).unwrap();
    let offsets: Vec<&str> = offsets.split_whitespace().collect();
    let want = (3 * day).to_string();
    assert_eq!(
        offsets[..3],
        ["monotonic", want.as_str(), "500"],
        "{offsets:?}"
    );
    ok(&env.rt(&["delete", "--force", &id]), "delete --force");
}

#[test]
fn preserve_fds_and_listen_fds_reach_the_process() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let id = env.id("fds");
    let data = env.dir.path().join("data");
    std::fs::write(&data, "through fd 3\n").unwrap();
    // The host shell opens the descriptors the runtime is asked to pass on (fd 4 is a second one).
    let through_shell = |runtime_args: &str, env_vars: &str| {
        let line = format!(
            "exec 3<{} 4<{}; {env_vars} exec {} --root {} {runtime_args}",
            data.display(),
            data.display(),
            common::bin(),
            env.root.display()
        );
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .current_dir(&env.bundle)
            .output()
            .unwrap()
    };
    let script = "cat <&3; cat <&4 2>/dev/null || echo no-fd-4; echo LISTEN_FDS=$LISTEN_FDS";
    env.write_config(&["sh", "-c", script]);
    let o = through_shell(&format!("run --preserve-fds 1 {id}"), "");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "through fd 3\nno-fd-4\nLISTEN_FDS=\n",
        "{}",
        stderr(&o)
    );
    // Without the option the container sees none of the caller's descriptors.
    let o = through_shell(&format!("run {id}"), "");
    assert!(stderr(&o).contains("3"), "fd 3 leaked: {}", stderr(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("through fd 3"));
    // LISTEN_FDS for this pid: both descriptors, and the process is told.
    let o = through_shell(&format!("run {id}"), "LISTEN_FDS=2 LISTEN_PID=$$");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "through fd 3\nthrough fd 3\nLISTEN_FDS=2\n",
        "{}",
        stderr(&o)
    );
    // exec passes them as well.
    env.write_config(&["sleep", "100"]);
    ok(&env.create(&id, &[]), "create");
    ok(&env.rt(&["start", &id]), "start");
    let o = through_shell(&format!("exec --preserve-fds 2 {id} sh -c 'cat <&4'"), "");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "through fd 3\n",
        "{}",
        stderr(&o)
    );
    ok(&env.rt(&["delete", "--force", &id]), "delete --force");
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("pause");
    let out_dir = env.dir.path().join("ticks");
    std::fs::create_dir(&out_dir).unwrap();
    env.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/ticks", "type": "bind", "source": out_dir, "options": ["rbind"]}),
    );
    env.write_config(&[
        "sh",
        "-c",
        "while true; do echo x >> /ticks/t; sleep 0.02; done",
    ]);
    ok(&env.create(&id, &[]), "create");
    ok(&env.rt(&["start", &id]), "start");
    let size = || {
        std::fs::metadata(out_dir.join("t"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(150));
    ok(&env.rt(&["pause", &id]), "pause");
    assert_eq!(env.state(&id)["status"], "paused");
    let frozen = size();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(size(), frozen, "a paused container kept writing");
    ok(&env.rt(&["resume", &id]), "resume");
    assert_eq!(env.state(&id)["status"], "running");
    std::thread::sleep(Duration::from_millis(200));
    assert!(size() > frozen, "resume did not thaw");
    ok(&env.rt(&["delete", "--force", &id]), "delete --force");
    assert_gone(&env.root.join(&id));
}

#[test]
fn exec_joins_namespaces_and_cgroup() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let id = env.id("exec");
    env.write_config(&["sleep", "100"]);
    ok(&env.create(&id, &[]), "create");
    ok(&env.rt(&["start", &id]), "start");
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let o = env.rt(&[
        "exec",
        &id,
        "--env",
        "X=42",
        "sh",
        "-c",
        "hostname; echo $X; cat /proc/self/cgroup | grep memory; \
         for n in ipc mnt net pid uts; do readlink /proc/self/ns/$n; done; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "berthbox");
    assert_eq!(l[1], "42");
    assert!(l[2].ends_with(&format!("/berth/{id}")), "{}", l[2]);
    for (i, n) in ["ipc", "mnt", "net", "pid", "uts"].iter().enumerate() {
        let host = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(l[3 + i], host.to_str().unwrap(), "{n} namespace differs");
    }
    // A detached exec shows up in ps next to init.
    ok(
        &env.detached(env.cmd(&["exec", "-d", &id, "sleep", "50"]), "execd"),
        "exec -d",
    );
    let ps = env.rt(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let bad = env.rt(&["exec", &id, "--cwd", "/nonexistent", "true"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("process.cwd"), "{}", stderr(&bad));
}

#[test]
fn terminal_is_sent_over_the_console_socket() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("tty");
    env.config["process"]["terminal"] = json!(true);
    env.write_config(&["sh", "-c", "tty; sleep 0.2"]);
    let sock = env.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let o = env.detached(
        env.cmd(&["create", "--console-socket", sock.to_str().unwrap(), &id]),
        &id,
    );
    ok(&o, "create");
    let (conn, _) = listener.accept().unwrap();
    use std::os::fd::AsRawFd;
    let master = berth_runtime::sys::recv_fd(conn.as_raw_fd()).unwrap();
    ok(&env.rt(&["start", &id]), "start");
    let mut f = std::fs::File::from(master);
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut f, &mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
}

#[test]
fn failed_create_leaves_nothing_behind() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    env.write_config(&["sleep", "100"]);
    for point in [
        "after-cgroup",
        "after-spawn",
        "init-after-mounts",
        "before-state-save",
    ] {
        let id = env.id(point);
        let o = env.create(&id, &[("BERTH_RUNTIME_FAILPOINT", point)]);
        assert!(!o.status.success(), "{point}: create succeeded");
        assert!(stderr(&o).contains(point), "{point}: {}", stderr(&o));
        assert_gone(&env.root.join(&id));
        for d in cgroup_dirs(&id) {
            assert_gone(&d);
        }
        let ps = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("grep -l {} /proc/[0-9]*/cgroup 2>/dev/null", id))
            .output()
            .unwrap();
        assert!(
            ps.stdout.is_empty(),
            "{point}: processes left in the cgroup"
        );
    }
    let list = env.rt(&["list", "-q"]);
    assert!(list.stdout.is_empty());
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let id = env.id("bad");
    env.config["root"]["path"] = json!("missing-rootfs");
    env.write_config(&["true"]);
    let o = env.create(&id, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("root.path"), "{}", stderr(&o));
    assert_gone(&env.root.join(&id));

    env.config = common::base_config();
    env.config["process"]["user"]["uid"] = json!("root");
    env.write_config(&["true"]);
    let o = env.create(&id, &[]);
    assert!(stderr(&o).contains("process.user.uid"), "{}", stderr(&o));

    env.config = common::base_config();
    env.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]});
    env.write_config(&["true"]);
    let o = env.create(&id, &[]);
    assert!(
        stderr(&o).contains("linux.seccomp.syscalls[0].args[0].index"),
        "{}",
        stderr(&o)
    );
    assert_gone(&env.root.join(&id));
    for cmd in ["start", "kill", "delete", "pause", "resume", "ps"] {
        let o = env.rt(&[cmd, "no-such-container"]);
        assert!(!o.status.success(), "{cmd}");
        assert!(
            stderr(&o).contains("does not exist"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn spec_and_features_print_valid_json() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let dir = env.dir.path().join("specdir");
    std::fs::create_dir(&dir).unwrap();
    ok(
        &env.rt(&["spec", "--bundle", dir.to_str().unwrap()]),
        "spec",
    );
    let spec = berth_runtime::config::load(&dir).unwrap();
    assert_eq!(spec.version(), "1.0.2");
    assert!(
        !env.rt(&["spec", "--bundle", dir.to_str().unwrap()])
            .status
            .success()
    );
    let f = env.rt(&["features"]);
    let v: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    assert!(v["linux"]["seccomp"]["enabled"].as_bool().unwrap());
}
