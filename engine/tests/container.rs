//! Container lifecycle against real shims, namespaces, cgroups and overlay mounts.
//! Needs root and the `berth-shim` binary (built on demand).

use berth_engine::container::{
    AttachOptions, ContainerEvent, ContainerOptions, ContainerService, LogOptions, LogStreamKind,
    WaitCondition,
};
use berth_engine::image::ImageService;
use berth_engine::image::registry::RegistryOptions;
use berth_engine::state::StateStore;
use bollard_stubs::models::{
    ContainerCreateBody, ExecConfig, HealthConfig, HealthStatusEnum, HostConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn shim_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("berth-shim");
    if !p.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "berth-shim",
                "--bin",
                "berth-shim",
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }
    p
}

fn hdr() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A busybox image as a `docker save` archive: every applet linked, Cmd sh.
fn busybox_archive() -> Vec<u8> {
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let mut layer = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str| {
        let mut h = hdr();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, p, &[][..]).unwrap();
    };
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        dir(&mut layer, d);
    }
    let bb = std::fs::read("/bin/busybox").unwrap();
    let mut h = hdr();
    h.set_mode(0o755);
    h.set_size(bb.len() as u64);
    layer.append_data(&mut h, "bin/busybox", &bb[..]).unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let mut h = hdr();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        layer
            .append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for (p, c) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ] {
        let mut h = hdr();
        h.set_mode(0o644);
        h.set_size(c.len() as u64);
        layer.append_data(&mut h, p, c.as_bytes()).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&layer)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let diff = format!("sha256:{hex}");
    let cfg = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    });
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": ["busybox:test"], "Layers": ["layer.tar"]}
    ]))
    .unwrap();
    let mut out = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("layer.tar", &layer),
        ("config.json", &cfg),
        ("manifest.json", &manifest),
    ] {
        let mut h = hdr();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, &data[..]).unwrap();
    }
    out.into_inner().unwrap()
}

/// One engine under temp dirs; on drop kills what it started and removes mounts and cgroups.
struct Env {
    svc: ContainerService,
    images: ImageService,
    state: StateStore,
    root: tempfile::TempDir,
    exec_root: tempfile::TempDir,
    shim: PathBuf,
}

impl Env {
    async fn new() -> Env {
        let shim = shim_binary();
        let root = tempfile::Builder::new().prefix("bct").tempdir().unwrap();
        let exec_root = tempfile::Builder::new()
            .prefix("bcx")
            .tempdir_in("/tmp")
            .unwrap();
        let state = StateStore::open(&root.path().join("state.redb")).unwrap();
        let images =
            ImageService::open(root.path(), state.clone(), RegistryOptions::default()).unwrap();
        let im = images.clone();
        tokio::task::spawn_blocking(move || im.load(&busybox_archive()[..]).unwrap())
            .await
            .unwrap();
        let svc = Self::open_svc(root.path(), exec_root.path(), &shim, &state, &images).await;
        Env {
            svc,
            images,
            state,
            root,
            exec_root,
            shim,
        }
    }

    async fn open_svc(
        root: &Path,
        exec_root: &Path,
        shim: &Path,
        state: &StateStore,
        images: &ImageService,
    ) -> ContainerService {
        let opts = ContainerOptions {
            root: root.to_path_buf(),
            exec_root: exec_root.to_path_buf(),
            shim: Some(shim.to_path_buf()),
        };
        ContainerService::open(opts, state.clone(), images.clone())
            .await
            .unwrap()
    }

    async fn reopen(&mut self) {
        self.svc.shutdown().await;
        self.svc = Self::open_svc(
            self.root.path(),
            self.exec_root.path(),
            &self.shim,
            &self.state,
            &self.images,
        )
        .await;
    }

    async fn create(&self, name: Option<&str>, body: ContainerCreateBody) -> String {
        self.svc.create(name, body).await.unwrap().0
    }

    async fn run(&self, cmd: &[&str]) -> String {
        let id = self.create(None, body(cmd)).await;
        self.svc.start(&id).await.unwrap();
        id
    }

    async fn cleanup(&self) {
        for c in self.svc.list().unwrap() {
            let _ = self.svc.remove(c.id.as_deref().unwrap(), true, false).await;
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let roots = [
            self.root.path().to_path_buf(),
            self.exec_root.path().to_path_buf(),
        ];
        // Shims run with their config under exec_root; containers are in berth/<id> cgroups.
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if roots.iter().any(|r| cmd.contains(&*r.to_string_lossy()))
                    && let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>()
                {
                    // SAFETY: signalling a process we started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let ids: Vec<String> = std::fs::read_dir(self.root.path().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            for ctrl in ["pids", "memory", "freezer", "cpu,cpuacct"] {
                let p = format!("/sys/fs/cgroup/{ctrl}/berth/{id}/cgroup.procs");
                if ctrl == "freezer" {
                    let _ = std::fs::write(
                        format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"),
                        "THAWED",
                    );
                }
                for pid in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        // SAFETY: the container's own processes.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for id in &ids {
            let rootfs = self.root.path().join("containers").join(id).join("rootfs");
            let _ = rustix::mount::unmount(&rootfs, rustix::mount::UnmountFlags::DETACH);
            if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
                for c in rd.flatten() {
                    let _ = std::fs::remove_dir(c.path().join("berth").join(id));
                }
            }
        }
    }
}

fn body(cmd: &[&str]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some("busybox:test".into()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

async fn wait_code(env: &Env, id: &str) -> i64 {
    tokio::time::timeout(
        Duration::from_secs(30),
        env.svc.wait(id, WaitCondition::NotRunning),
    )
    .await
    .expect("wait timed out")
    .unwrap()
    .status_code
}

/// Reads an attach stream to EOF and splits Docker frames into (stdout, stderr).
async fn read_frames(s: &mut tokio::net::UnixStream) -> (String, String) {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut all)).await;
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i + 8 <= all.len() {
        let len = u32::from_be_bytes([all[i + 4], all[i + 5], all[i + 6], all[i + 7]]) as usize;
        let data = &all[i + 8..(i + 8 + len).min(all.len())];
        if all[i] == 2 {
            e.extend_from_slice(data)
        } else {
            o.extend_from_slice(data)
        }
        i += 8 + len;
    }
    (
        String::from_utf8_lossy(&o).into(),
        String::from_utf8_lossy(&e).into(),
    )
}

async fn collect_logs(env: &Env, id: &str, opts: LogOptions) -> Vec<(LogStreamKind, String)> {
    let mut rx = env.svc.logs(id, opts).unwrap();
    let mut out = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
    {
        out.push((e.stream, String::from_utf8_lossy(&e.line).to_string()));
    }
    out
}

/// SIGKILLs the shim of a container (found by its config path on the command line).
fn kill_shim(env: &Env, id: &str) {
    let cfg = env
        .exec_root
        .path()
        .join("containers")
        .join(&id[..32])
        .join("shim.json");
    let mut found = false;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(&*cfg.to_string_lossy())
            && let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>()
        {
            // SAFETY: the shim we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            found = true;
        }
    }
    assert!(found, "no shim for {id}");
}

/// Attaches before the start (as `docker run -i` does), then starts; returns the attach task.
async fn attach_then_start(
    env: &Env,
    id: &str,
    stdin: bool,
) -> tokio::task::JoinHandle<berth_engine::Result<berth_engine::container::Attached>> {
    let svc = env.svc.clone();
    let idc = id.to_string();
    let opts = AttachOptions {
        stdin,
        stdout: true,
        stderr: true,
        stream: true,
        logs: false,
        detach_keys: Vec::new(),
    };
    let att = tokio::spawn(async move { svc.attach(&idc, opts).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.svc.start(id).await.unwrap();
    att
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<ContainerEvent>) -> Vec<String> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e.action);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_start_wait_exit_code() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut ev = env.svc.events();
    let id = env
        .create(Some("exit3"), body(&["sh", "-c", "echo hi; exit 3"]))
        .await;
    let i = env.svc.inspect("exit3").unwrap();
    assert_eq!(
        i.state.as_ref().unwrap().status.unwrap().to_string(),
        "created"
    );
    assert_eq!(i.name.as_deref(), Some("/exit3"));
    assert_eq!(
        i.config.as_ref().unwrap().hostname.as_deref(),
        Some(&id[..12])
    );
    env.svc.start(&id).await.unwrap();
    assert_eq!(wait_code(&env, &id).await, 3);
    let i = env.svc.inspect(&id[..8]).unwrap();
    let st = i.state.unwrap();
    assert_eq!(st.exit_code, Some(3));
    assert_eq!(st.status.unwrap().to_string(), "exited");
    assert_ne!(st.finished_at.as_deref(), Some("0001-01-01T00:00:00Z"));
    assert!(
        !env.root
            .path()
            .join("containers")
            .join(&id)
            .join("rootfs/bin")
            .exists(),
        "rootfs unmounted after exit"
    );
    let actions = drain(&mut ev);
    assert_eq!(actions, ["create", "start", "die"]);
    let list = env.svc.list().unwrap();
    assert!(list[0].status.as_deref().unwrap().starts_with("Exited (3)"));
    assert!(matches!(
        env.svc.stop(&id, None, None).await,
        Err(berth_engine::Error::Container(
            berth_engine::container::ContainerError::NotModified
        ))
    ));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_rules_conflicts_and_rename() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let id = env.create(Some("web"), body(&["true"])).await;
    let e = env
        .svc
        .create(Some("/web"), body(&["true"]))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )
    );
    let e = env
        .svc
        .create(Some("a b"), body(&["true"]))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    );
    let (other, _) = env.svc.create(None, body(&["true"])).await.unwrap();
    let gen_name = env.svc.inspect(&other).unwrap().name.unwrap();
    assert!(gen_name.contains('_'), "{gen_name}");
    env.svc.rename("web", "api").unwrap();
    assert_eq!(env.svc.resolve("/api").unwrap(), id);
    assert!(env.svc.resolve("web").is_err());
    assert_eq!(
        env.svc
            .rename(&other, "api")
            .unwrap_err()
            .to_string()
            .split('.')
            .next(),
        Some("Conflict")
    );
    assert_eq!(
        env.svc.inspect("nope").unwrap_err().to_string(),
        "No such container: nope"
    );
    let e = env
        .svc
        .create(
            None,
            ContainerCreateBody {
                image: Some("missing:1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("No such image"), "{e}");
    env.svc.remove("api", false, false).await.unwrap();
    env.create(Some("web"), body(&["true"])).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_timeout_then_sigkill_and_kill() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let id = env
        .run(&["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"])
        .await;
    let mut ev = env.svc.events();
    let t = Instant::now();
    env.svc.stop(&id, None, Some(1)).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(wait_code(&env, &id).await, 137);
    let actions = drain(&mut ev);
    assert_eq!(actions, ["kill", "kill", "die", "stop"], "{actions:?}");
    // kill
    let id = env.run(&["sleep", "100"]).await;
    // PID 1 ignores signals it has no handler for, so the default kill is SIGKILL.
    env.svc.kill(&id, "SIGKILL").await.unwrap();
    assert_eq!(wait_code(&env, &id).await, 137);
    let e = env.svc.kill(&id, "KILL").await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!("Cannot kill container: {id}: Container {id} is not running")
    );
    assert_eq!(
        env.svc.kill(&id, "BOGUS").await.unwrap_err().to_string(),
        "Invalid signal: BOGUS"
    );
    // restart
    env.svc.restart(&id, None, Some(1)).await.unwrap();
    assert!(
        env.svc
            .inspect(&id)
            .unwrap()
            .state
            .unwrap()
            .running
            .unwrap()
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policy_on_failure_counts() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut b = body(&["sh", "-c", "exit 2"]);
    b.host_config = Some(HostConfig {
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(2),
        }),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let i = env.svc.inspect(&id).unwrap();
        let st = i.state.unwrap();
        if i.restart_count == Some(2) && st.status.unwrap().to_string() == "exited" {
            assert_eq!(st.exit_code, Some(2));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restart count {:?}",
            i.restart_count
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_timestamps_follow() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let id = env
        .run(&[
            "sh",
            "-c",
            "echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c",
        ])
        .await;
    assert_eq!(wait_code(&env, &id).await, 0);
    let all = LogOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let l = collect_logs(&env, &id, all.clone()).await;
    assert_eq!(
        l.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["a\n", "b\n", "c\n"]
    );
    assert_eq!(l[1].0, LogStreamKind::Stderr);
    let l = collect_logs(
        &env,
        &id,
        LogOptions {
            tail: Some(1),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].1, "c\n");
    let l = collect_logs(
        &env,
        &id,
        LogOptions {
            stderr: false,
            ..all.clone()
        },
    )
    .await;
    assert_eq!(l.len(), 2);
    let mut rx = env
        .svc
        .logs(
            &id,
            LogOptions {
                timestamps: true,
                ..all.clone()
            },
        )
        .unwrap();
    let e = rx.recv().await.unwrap();
    let ts = berth_engine::container::format_log_time(e.time);
    assert!(ts.ends_with('Z') && ts.len() == 30, "{ts}");
    // follow ends when the container stops
    let id = env
        .run(&["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"])
        .await;
    let l = collect_logs(
        &env,
        &id,
        LogOptions {
            follow: true,
            ..all
        },
    )
    .await;
    assert_eq!(
        l.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["1\n", "2\n", "3\n"]
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_before_start_with_stdin_and_tty() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut b = body(&["cat"]);
    b.open_stdin = Some(true);
    b.stdin_once = Some(true);
    b.attach_stdin = Some(true);
    let id = env.create(None, b).await;
    let att = attach_then_start(&env, &id, true).await;
    let mut a = att.await.unwrap().unwrap();
    assert!(!a.tty);
    a.stream.write_all(b"hello\n").await.unwrap();
    a.stream.shutdown().await.unwrap();
    let (out, _) = read_frames(&mut a.stream).await;
    assert_eq!(out, "hello\n");
    assert_eq!(wait_code(&env, &id).await, 0);
    // TTY: raw bytes, and the size set by resize is visible
    let mut b = body(&["sh", "-c", "sleep 0.5; stty size"]);
    b.tty = Some(true);
    b.open_stdin = Some(true);
    let id = env.create(None, b).await;
    let att = attach_then_start(&env, &id, false).await;
    env.svc.resize(&id, 33, 101).await.unwrap();
    let mut a = att.await.unwrap().unwrap();
    assert!(a.tty);
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), a.stream.read_to_end(&mut raw)).await;
    assert!(
        String::from_utf8_lossy(&raw).contains("33 101"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_output_and_exit_code() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let id = env.run(&["sleep", "100"]).await;
    let eid = env
        .svc
        .exec_create(
            &id,
            ExecConfig {
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo out; echo err >&2; echo $HOSTNAME; exit 5".into(),
                ]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(eid.len(), 64);
    let mut a = env
        .svc
        .exec_start(&eid, false, None)
        .await
        .unwrap()
        .unwrap();
    let (out, err) = read_frames(&mut a.stream).await;
    assert_eq!(out, format!("out\n{}\n", &id[..12]));
    assert_eq!(err, "err\n");
    let mut code = None;
    for _ in 0..50 {
        let i = env.svc.exec_inspect(&eid).unwrap();
        if i.running == Some(false) && i.exit_code.is_some() {
            code = i.exit_code;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, Some(5));
    assert!(
        env.svc
            .exec_inspect("nope")
            .unwrap_err()
            .to_string()
            .starts_with("No such exec instance")
    );
    assert_eq!(
        env.svc.inspect(&id).unwrap().exec_ids.unwrap(),
        std::slice::from_ref(&eid)
    );
    // with a TTY: raw output, user and working dir of the exec
    let cfg = ExecConfig {
        cmd: Some(vec!["sh".into(), "-c".into(), "tty; id -u; pwd".into()]),
        tty: Some(true),
        user: Some("nobody".into()),
        working_dir: Some("/tmp".into()),
        attach_stdout: Some(true),
        ..Default::default()
    };
    let tid = env.svc.exec_create(&id, cfg).await.unwrap();
    let mut a = env
        .svc
        .exec_start(&tid, false, None)
        .await
        .unwrap()
        .unwrap();
    assert!(a.tty);
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), a.stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).replace('\r', "");
    assert_eq!(text, "/dev/pts/0\n65534\n/tmp\n");
    assert!(
        env.svc
            .exec_start(&tid, true, None)
            .await
            .unwrap_err()
            .to_string()
            .contains("already running")
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_unhealthy_then_healthy() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut ev = env.svc.events();
    let mut b = body(&["sleep", "100"]);
    b.healthcheck = Some(HealthConfig {
        test: Some(vec![
            "CMD-SHELL".into(),
            "test -f /tmp/ok && echo fine".into(),
        ]),
        interval: Some(200_000_000),
        timeout: Some(5_000_000_000),
        retries: Some(1),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    let status = |env: &Env| {
        env.svc
            .inspect(&id)
            .unwrap()
            .state
            .unwrap()
            .health
            .and_then(|h| h.status)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&env) != Some(HealthStatusEnum::UNHEALTHY) {
        assert!(Instant::now() < deadline, "{:?}", status(&env));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let eid = env
        .svc
        .exec_create(
            &id,
            ExecConfig {
                cmd: Some(vec!["touch".into(), "/tmp/ok".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.svc.exec_start(&eid, true, None).await.unwrap();
    while status(&env) != Some(HealthStatusEnum::HEALTHY) {
        assert!(Instant::now() < deadline, "{:?}", status(&env));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h = env.svc.inspect(&id).unwrap().state.unwrap().health.unwrap();
    let log = h.log.unwrap();
    assert!(log.len() <= 5);
    assert_eq!(log.last().unwrap().output.as_deref(), Some("fine\n"));
    let actions = drain(&mut ev);
    assert!(
        actions.contains(&"health_status: unhealthy".to_string())
            && actions.contains(&"health_status: healthy".to_string()),
        "{actions:?}"
    );
    assert!(
        env.svc.list().unwrap()[0]
            .status
            .as_deref()
            .unwrap()
            .ends_with("(healthy)")
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_stats_pause_unpause() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut b = body(&["sleep", "100"]);
    b.host_config = Some(HostConfig {
        memory: Some(64 << 20),
        pids_limit: Some(50),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    let top = env.svc.top(&id, None).unwrap();
    assert_eq!(top.titles.as_ref().unwrap()[1], "PID");
    let procs = top.processes.unwrap();
    assert_eq!(procs.len(), 1, "{procs:?}");
    assert!(procs[0].last().unwrap().contains("sleep 100"));
    let s = env.svc.stats(&id).unwrap();
    assert!(s["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(s["memory_stats"]["limit"].as_u64().unwrap(), 64 << 20);
    assert_eq!(s["pids_stats"]["current"].as_u64(), Some(1));
    assert_eq!(s["pids_stats"]["limit"].as_u64(), Some(50));
    assert!(s["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    let s2 = env.svc.stats(&id).unwrap();
    assert_eq!(s2["precpu_stats"], s["cpu_stats"]);
    env.svc.pause(&id).await.unwrap();
    assert_eq!(
        env.svc
            .inspect(&id)
            .unwrap()
            .state
            .unwrap()
            .status
            .unwrap()
            .to_string(),
        "paused"
    );
    assert!(
        env.svc
            .pause(&id)
            .await
            .unwrap_err()
            .to_string()
            .ends_with("is already paused")
    );
    assert!(
        env.svc
            .exec_create(
                &id,
                ExecConfig {
                    cmd: Some(vec!["true".into()]),
                    ..Default::default()
                }
            )
            .await
            .unwrap_err()
            .to_string()
            .contains("is paused")
    );
    env.svc.unpause(&id).await.unwrap();
    assert!(
        env.svc
            .unpause(&id)
            .await
            .unwrap_err()
            .to_string()
            .ends_with("is not paused")
    );
    assert_eq!(
        env.svc
            .inspect(&id)
            .unwrap()
            .state
            .unwrap()
            .status
            .unwrap()
            .to_string(),
        "running"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_get_put_escape_and_export() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let id = env.create(None, body(&["true"])).await;
    // put into a stopped container
    let mut t = tar::Builder::new(Vec::new());
    let mut h = hdr();
    h.set_mode(0o640);
    h.set_size(5);
    t.append_data(&mut h, "dir/hello.txt", &b"hello"[..])
        .unwrap();
    let tarball = t.into_inner().unwrap();
    env.svc
        .archive_put(&id, "/tmp", &tarball[..], false, false)
        .unwrap();
    let st = env.svc.archive_stat(&id, "/tmp/dir/hello.txt").unwrap();
    assert_eq!(
        (st.name.as_str(), st.size, st.mode & 0o777),
        ("hello.txt", 5, 0o640)
    );
    assert!(!st.header_value().is_empty());
    let st = env.svc.archive_stat(&id, "/tmp/dir").unwrap();
    assert_ne!(st.mode & (1 << 31), 0);
    assert!(
        env.svc
            .archive_stat(&id, "/nope")
            .unwrap_err()
            .to_string()
            .starts_with("Could not find the file /nope")
    );
    let mut out = Vec::new();
    env.svc.archive_get(&id, "/tmp/dir", &mut out).unwrap();
    let mut ar = tar::Archive::new(&out[..]);
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().to_string_lossy().to_string();
        if n.ends_with("hello.txt") {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(s, "hello");
        }
        names.push(n);
    }
    assert!(names.iter().any(|n| n == "dir/hello.txt"), "{names:?}");
    // `..` in the archive is refused; a symlink to / resolves inside the rootfs
    let mut t = tar::Builder::new(Vec::new());
    let mut h = hdr();
    h.set_mode(0o644);
    h.set_size(1);
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../../evil.tx");
    h.set_cksum();
    t.append(&h, &b"x"[..]).unwrap();
    let evil = t.into_inner().unwrap();
    assert!(
        env.svc
            .archive_put(&id, "/tmp", &evil[..], false, false)
            .is_err()
    );
    assert!(
        !env.root
            .path()
            .join("containers")
            .join(&id)
            .join("evil.tx")
            .exists()
    );
    let mut t = tar::Builder::new(Vec::new());
    let mut h = hdr();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    t.append_link(&mut h, "up", "../../../../../../").unwrap();
    let mut h = hdr();
    h.set_mode(0o644);
    h.set_size(1);
    t.append_data(&mut h, "up/escaped", &b"x"[..]).unwrap();
    let link = t.into_inner().unwrap();
    env.svc
        .archive_put(&id, "/tmp", &link[..], false, false)
        .unwrap();
    let st = env.svc.archive_stat(&id, "/escaped").unwrap();
    assert_eq!(st.size, 1, "landed at the container's /, not the host's");
    assert!(!Path::new("/escaped").exists());
    let st = env.svc.archive_stat(&id, "/tmp/up").unwrap();
    assert_eq!(st.link_target, "/");
    let mut out = Vec::new();
    env.svc.export(&id, &mut out).unwrap();
    let mut ar = tar::Archive::new(&out[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "bin/busybox"));
    assert!(names.iter().any(|n| n == "tmp/dir/hello.txt"));
    assert!(
        !env.root
            .path()
            .join("containers")
            .join(&id)
            .join("rootfs/bin")
            .exists(),
        "temporary mount removed"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_force_running_and_wait_removed() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let id = env.run(&["sleep", "100"]).await;
    let name = env.svc.inspect(&id).unwrap().name.unwrap();
    let e = env
        .svc
        .remove(&id, false, false)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "cannot remove container \"{name}\": container is running: stop the container before removing or force remove"
        )
    );
    let svc = env.svc.clone();
    let idc = id.clone();
    let w = tokio::spawn(async move { svc.wait(&idc, WaitCondition::Removed).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.svc.remove(&id, true, false).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), w)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.status_code, 137);
    assert!(env.svc.inspect(&id).is_err());
    assert!(!env.root.path().join("containers").join(&id).exists());
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists());
    // AutoRemove
    let mut b = body(&["true"]);
    b.host_config = Some(HostConfig {
        auto_remove: Some(true),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        env.svc.wait(&id, WaitCondition::Removed),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status_code, 0);
    assert!(env.svc.inspect(&id).is_err());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_live_restore_and_lost_shim() {
    if !can_run() {
        return;
    }
    let mut env = Env::new().await;
    let id = env.run(&["sleep", "100"]).await;
    let pid = env.svc.inspect(&id).unwrap().state.unwrap().pid.unwrap();
    env.reopen().await;
    let st = env.svc.inspect(&id).unwrap().state.unwrap();
    assert_eq!(st.running, Some(true));
    assert_eq!(st.pid, Some(pid));
    // re-monitored: a kill is seen
    env.svc.kill(&id, "9").await.unwrap();
    assert_eq!(wait_code(&env, &id).await, 137);
    // a shim that dies takes its container with it; the record shows an exit
    let id = env.run(&["sleep", "100"]).await;
    kill_shim(&env, &id);
    let code = wait_code(&env, &id).await;
    assert_eq!(code, 255);
    let st = env.svc.inspect(&id).unwrap().state.unwrap();
    assert_eq!(st.running, Some(false));
    assert_eq!(
        st.error.as_deref(),
        Some("the container's shim exited unexpectedly")
    );
    // a record marked running whose shim vanished while the service was down
    let id = env.run(&["sleep", "100"]).await;
    let pid = env.svc.inspect(&id).unwrap().state.unwrap().pid.unwrap();
    env.svc.shutdown().await;
    kill_shim(&env, &id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.reopen().await;
    let st = env.svc.inspect(&id).unwrap().state.unwrap();
    assert_eq!(st.running, Some(false));
    assert_eq!(st.exit_code, Some(255));
    assert_eq!(
        st.error.as_deref(),
        Some("container exited while the daemon was down")
    );
    let gone = |p: i64| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    for _ in 0..50 {
        if gone(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone(pid), "the orphaned container process was cleaned up");
    assert!(!Path::new(&format!("/sys/fs/cgroup/pids/berth/{id}")).exists());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_workdir_env_hostname_and_network_modes() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let script = "id -u; pwd; echo $FOO; hostname; ls /sys/class/net | tr '\\n' ' '; echo";
    let mut b = body(&["sh", "-c", script]);
    b.user = Some("nobody".into());
    b.working_dir = Some("/work/x".into());
    b.env = Some(vec!["FOO=bar".into()]);
    b.hostname = Some("box".into());
    b.host_config = Some(HostConfig {
        network_mode: Some("none".into()),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    assert_eq!(wait_code(&env, &id).await, 0);
    let all = LogOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let out: Vec<String> = collect_logs(&env, &id, all.clone())
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        out,
        ["65534\n", "/work/x\n", "bar\n", "box\n", "lo \n"],
        "{out:?}"
    );
    // host network: the host's interfaces and hostname
    let mut b = body(&["sh", "-c", "ls /sys/class/net | wc -l; hostname"]);
    b.host_config = Some(HostConfig {
        network_mode: Some("host".into()),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    assert_eq!(wait_code(&env, &id).await, 0);
    let out: Vec<String> = collect_logs(&env, &id, all)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    // This thread's network namespace (tests may run in one of their own): /proc/.../net/dev
    // follows it, where /sys/class/net shows the namespace sysfs was mounted in.
    let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
    let host_ifaces = dev.lines().count() - 2;
    assert_eq!(out[0].trim(), host_ifaces.to_string());
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(out[1].trim(), host_name.trim());
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_resources_live_and_restart_policies_at_reopen() {
    if !can_run() {
        return;
    }
    let mut env = Env::new().await;
    let mut b = body(&["sleep", "100"]);
    b.host_config = Some(HostConfig {
        memory: Some(64 << 20),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        }),
        ..Default::default()
    });
    let always = env.create(Some("always"), b).await;
    env.svc.start(&always).await.unwrap();
    let upd = bollard_stubs::models::ContainerUpdateBody {
        memory: Some(128 << 20),
        ..Default::default()
    };
    assert!(env.svc.update(&always, upd).await.unwrap().is_empty());
    assert_eq!(
        env.svc.stats(&always).unwrap()["memory_stats"]["limit"].as_u64(),
        Some(128 << 20)
    );
    assert_eq!(
        env.svc
            .inspect(&always)
            .unwrap()
            .host_config
            .unwrap()
            .memory,
        Some(128 << 20)
    );
    let mut b = body(&["sleep", "100"]);
    b.host_config = Some(HostConfig {
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        ..Default::default()
    });
    let unless = env.create(Some("unless"), b).await;
    env.svc.start(&unless).await.unwrap();
    // Stopped by the user: neither restarts now; at daemon start only `always` comes back.
    env.svc.stop(&always, Some("KILL"), Some(1)).await.unwrap();
    env.svc.stop(&unless, Some("KILL"), Some(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let running =
        |env: &Env, id: &str| env.svc.inspect(id).unwrap().state.unwrap().running.unwrap();
    assert!(!running(&env, &always) && !running(&env, &unless));
    env.reopen().await;
    assert!(running(&env, &always));
    assert!(!running(&env, &unless));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_readonly_rootfs_init_and_caps() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("in.txt"), "from host\n").unwrap();
    let script = "cat /data/in.txt; touch /data/x 2>/dev/null || echo ro-bind; \
        touch /scratch/y && echo tmpfs-rw; touch /z 2>/dev/null || echo ro-root; \
        tr '\\0' ' ' </proc/1/cmdline; echo; grep CapBnd /proc/self/status";
    let mut b = body(&["sh", "-c", script]);
    b.host_config = Some(HostConfig {
        binds: Some(vec![format!("{}:/data:ro", host_dir.path().display())]),
        tmpfs: Some([("/scratch".to_string(), "size=1m".to_string())].into()),
        readonly_rootfs: Some(true),
        init: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(vec!["KILL".into()]),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    assert_eq!(wait_code(&env, &id).await, 0);
    let all = LogOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let out: String = collect_logs(&env, &id, all)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        ["from host", "ro-bind", "tmpfs-rw", "ro-root"],
        "{out}"
    );
    assert!(lines[4].starts_with("/sbin/docker-init -- sh -c"), "{out}");
    // CAP_KILL only: bit 5.
    assert_eq!(
        lines[5].split_whitespace().last(),
        Some("0000000000000020"),
        "{out}"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_gets_host_devices_and_all_caps() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut b = body(&[
        "sh",
        "-c",
        "test -c /dev/kmsg && echo kmsg; grep CapBnd /proc/self/status",
    ]);
    b.host_config = Some(HostConfig {
        privileged: Some(true),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    env.svc.start(&id).await.unwrap();
    let code = wait_code(&env, &id).await;
    let all = LogOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let out: String = collect_logs(&env, &id, all.clone())
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("kmsg\n"), "{out}");
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = ours.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    assert!(out.contains(bnd), "{out} vs {bnd}");
    // Unprivileged: no such device.
    let id = env
        .run(&["sh", "-c", "test -e /dev/kmsg || echo none"])
        .await;
    assert_eq!(wait_code(&env, &id).await, 0);
    let out: String = collect_logs(&env, &id, all)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(out, "none\n");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_releases_attachers_and_auto_removes() {
    if !can_run() {
        return;
    }
    let env = Env::new().await;
    let mut b = body(&["/no/such/program"]);
    b.host_config = Some(HostConfig {
        auto_remove: Some(true),
        ..Default::default()
    });
    let id = env.create(None, b).await;
    let svc = env.svc.clone();
    let idc = id.clone();
    let opts = AttachOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        stream: true,
        logs: false,
        detach_keys: Vec::new(),
    };
    let att = tokio::spawn(async move { svc.attach(&idc, opts).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = env.svc.start(&id).await.unwrap_err();
    assert!(
        matches!(
            e,
            berth_engine::Error::Container(berth_engine::container::ContainerError::Invalid(_))
        ),
        "{e}"
    );
    let a = tokio::time::timeout(Duration::from_secs(10), att)
        .await
        .expect("attacher released")
        .unwrap();
    assert!(a.is_err());
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        env.svc.wait(&id, WaitCondition::Removed),
    )
    .await;
    assert!(r.is_ok(), "AutoRemove after a failed start");
    assert!(env.svc.inspect(&id).is_err());
    env.cleanup().await;
}
