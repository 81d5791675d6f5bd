//! RUN: a build step executed in a real container. The rootfs is an overlay of the current
//! build state plus a small init layer (mount points and the generated `/etc` files, so they
//! never end up in the step's layer); the container runs through the runtime library inside
//! the `berth-runtime run` foreground helper, a single-threaded process that may fork safely
//! (the daemon is multi-threaded) and whose stdio is the build's output stream. The upper
//! directory is the step's diff. Every container, mount and cgroup of a step is removed on
//! success, failure and cancel alike.
//!
//! Networking: the container shares the host's network namespace until Berth has networks.

use super::builder::{BuildOptions, BuildOutput};
use super::users::{ResolvedUser, UserDb};
use crate::image::ImageService;
use crate::image::snapshot::{mount_overlay, unmount_rootfs};
use crate::state::ImageRecord;
use berth_runtime::cgroups::{CgroupManager, Manager};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Docker's default capabilities of a container.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What one RUN executes.
#[derive(Debug, Clone)]
pub(super) struct RunRequest {
    /// The full argv (shell form already wrapped in SHELL).
    pub args: Vec<String>,
    /// `KEY=VALUE` environment: ENV plus the stage's ARG values.
    pub env: Vec<String>,
    /// WORKDIR.
    pub workdir: String,
    /// USER (empty: root).
    pub user: String,
}

/// The result of a successful RUN: the directory holding the upper dir to commit.
#[derive(Debug)]
pub(super) struct RunDiff {
    dir: tempfile::TempDir,
    id: String,
}

impl RunDiff {
    /// The step container's short ID.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The overlay upper directory (the step's changes).
    pub fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }
}

/// Why a RUN failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    /// The command exited non-zero (Docker's legacy builder text).
    #[error("The command '{command}' returned a non-zero code: {code}")]
    NonZero {
        /// The argv joined by spaces.
        command: String,
        /// The exit code.
        code: i32,
    },
    /// The container could not be set up or run.
    #[error("{0}")]
    Setup(String),
    /// The build was cancelled.
    #[error("build cancelled")]
    Cancelled,
}

fn setup(what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::Setup(format!("{what}: {e}"))
}

/// 64 random hex digits (a container ID).
pub(super) fn random_id() -> String {
    let mut b = [0u8; 32];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // Never reached on Linux; keep IDs unique anyway.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..16].copy_from_slice(&t.to_le_bytes());
        b[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The `berth-runtime` binary: the build option, `$BERTH_RUNTIME`, next to this executable
/// (or its parent directory, for test binaries under `deps/`), else `$PATH`.
pub fn runtime_binary(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("BERTH_RUNTIME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let p = dir.join("berth-runtime");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("berth-runtime")
}

/// Reads a file of an image without mounting it: the top-most layer that has it wins, a
/// whiteout hides it. Symlinks are not followed (they could point outside the image).
pub(super) fn read_image_file(svc: &ImageService, img: &ImageRecord, rel: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    for dir in svc.layer_paths(img).iter().rev() {
        let p = dir.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => return fs::read_to_string(&p).ok(),
            Ok(m) if m.file_type().is_char_device() => return None,
            Ok(_) => return None,
            Err(_) => {}
        }
    }
    None
}

/// The user database of an image (empty for scratch).
pub(super) fn user_db(svc: &ImageService, img: Option<&ImageRecord>) -> UserDb {
    match img {
        Some(i) => UserDb::parse(
            &read_image_file(svc, i, "etc/passwd").unwrap_or_default(),
            &read_image_file(svc, i, "etc/group").unwrap_or_default(),
        ),
        None => UserDb::default(),
    }
}

/// Undoes everything a step made, whatever happened: the helper, the container, its
/// cgroup, the overlay mount.
struct StepGuard {
    child: Option<Child>,
    state_root: PathBuf,
    id: String,
    rootfs: Option<PathBuf>,
}

impl StepGuard {
    fn cgroup_path(&self) -> PathBuf {
        PathBuf::from(format!("/berth/build-{}", &self.id[..12]))
    }
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take()
            && matches!(c.try_wait(), Ok(None))
        {
            // Kill the container first: its init (pid 1 in its namespace) ignores SIGTERM,
            // and the helper then deletes it the ordinary way and exits.
            if let Ok(ct) = berth_runtime::Container::load(&self.state_root, &self.id) {
                let _ = ct.kill(libc::SIGKILL, true);
            }
            for _ in 0..300 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(c) = berth_runtime::Container::load(&self.state_root, &self.id)
            && let Err(e) = c.delete(true)
        {
            tracing::warn!(error = %e, id = %self.id, "build step: removing container");
        }
        // A helper killed halfway may leave the cgroup behind.
        if let Ok(cg) = CgroupManager::for_path(&self.cgroup_path()) {
            for pid in cg.pids().unwrap_or_default() {
                // SAFETY: kill(2) with a pid read from the step's own cgroup.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            for _ in 0..200 {
                if cg.pids().map(|p| p.is_empty()).unwrap_or(true) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            // Dying processes keep the cgroup busy for a moment.
            let mut res = cg.remove();
            for _ in 0..100 {
                if res.is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                res = cg.remove();
            }
            if let Err(e) = res {
                tracing::warn!(error = %e, "build step: removing cgroup");
            }
        }
        if let Some(r) = self.rootfs.take()
            && let Err(e) = unmount_rootfs(&r)
        {
            tracing::warn!(error = %e, "build step: unmounting rootfs");
        }
    }
}

impl ImageService {
    /// Runs `req` in a container on top of `base`; returns the step's diff.
    pub(super) fn run_step_container(
        &self,
        base: Option<&ImageRecord>,
        req: &RunRequest,
        opts: &BuildOptions,
        out: &BuildOutput,
    ) -> Result<RunDiff, RunError> {
        let id = random_id();
        out.emit(&format!(" ---> Running in {}\n", &id[..12]));
        let tmp = self
            .build_tmp()
            .map_err(|e| setup("create step directory", e))?;
        let d = tmp.path();
        let (init, upper, work, rootfs, bundle, state_root) = (
            d.join("init"),
            d.join("upper"),
            d.join("work"),
            d.join("rootfs"),
            d.join("bundle"),
            d.join("state"),
        );
        for p in [&upper, &work, &rootfs, &bundle, &state_root] {
            fs::create_dir_all(p).map_err(|e| setup("create step directory", e))?;
        }
        let hostname = id[..12].to_string();
        let etc_files =
            make_init_layer(&init, d, &hostname).map_err(|e| setup("prepare the init layer", e))?;

        let mut lowers = vec![init.to_path_buf()];
        if let Some(b) = base {
            lowers.extend(self.layer_paths(b).into_iter().rev());
        }
        mount_overlay(&lowers, &upper, &work, &rootfs).map_err(|e| setup("mount rootfs", e))?;
        let mut guard = StepGuard {
            child: None,
            state_root: state_root.to_path_buf(),
            id: id.clone(),
            rootfs: Some(rootfs.to_path_buf()),
        };

        let user = if req.user.is_empty() {
            ResolvedUser::default()
        } else {
            user_db(self, base)
                .resolve(&req.user)
                .map_err(|e| RunError::Setup(e.to_string()))?
        };
        let spec = oci_config(
            req,
            &user,
            &rootfs,
            &hostname,
            &guard.cgroup_path(),
            &etc_files,
        );
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).map_err(|e| setup("write config.json", e))?,
        )
        .map_err(|e| setup("write config.json", e))?;

        let pid_file = d.join("pid");
        let bin = runtime_binary(opts.runtime.as_deref());
        let child = Command::new(&bin)
            .arg("--root")
            .arg(&state_root)
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| setup(&format!("start {}", bin.display()), e))?;
        let mut child = child;
        // Output is forwarded from threads so that cancel is noticed while the step runs.
        let pumps: Vec<_> = [
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|r| {
            let out2 = out.clone();
            std::thread::spawn(move || pump_output(r, &out2))
        })
        .collect();
        guard.child = Some(child);
        let status = loop {
            let c = guard
                .child
                .as_mut()
                .ok_or_else(|| RunError::Setup("helper vanished".into()))?;
            match c.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) => {}
                Err(e) => return Err(setup("wait for the step", e)),
            }
            if opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                drop(guard);
                for p in pumps {
                    let _ = p.join();
                }
                return Err(RunError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let tail: String = pumps
            .into_iter()
            .map(|p| p.join().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("");
        // The helper deletes the container on its own; the guard only makes sure.
        drop(guard);
        let code = status.code().unwrap_or(128 + 9);
        if code != 0 {
            if !pid_file.exists() {
                return Err(RunError::Setup(format!(
                    "the container of the step did not start: {}",
                    tail.trim()
                )));
            }
            return Err(RunError::NonZero {
                command: req.args.join(" "),
                code,
            });
        }
        drop_init_leftovers(&upper, &etc_files);
        Ok(RunDiff { dir: tmp, id })
    }
}

/// Forwards the helper's output; returns the last bytes (for setup errors).
fn pump_output(mut r: Box<dyn Read + Send>, out: &BuildOutput) -> String {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut tail = String::new();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        // Hold back an incomplete UTF-8 sequence until its remaining bytes arrive.
        let cut = match std::str::from_utf8(&pending) {
            Ok(_) => pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => pending.len(),
        };
        let s = String::from_utf8_lossy(&pending[..cut]).into_owned();
        pending.drain(..cut);
        if !s.is_empty() {
            out.emit(&s);
            tail.push_str(&s);
            if tail.len() > 4096 {
                let mut k = tail.len() - 2048;
                while !tail.is_char_boundary(k) {
                    k += 1;
                }
                tail.drain(..k);
            }
        }
    }
    if !pending.is_empty() {
        let s = String::from_utf8_lossy(&pending).into_owned();
        out.emit(&s);
        tail.push_str(&s);
    }
    tail
}

/// The generated `/etc` files bind-mounted into the step: (path in container, host file).
type EtcFiles = Vec<(&'static str, PathBuf)>;

/// The init layer: mount points and placeholders, so that the runtime never creates them in
/// the upper directory (they would become part of the layer).
fn make_init_layer(init: &Path, dir: &Path, hostname: &str) -> std::io::Result<EtcFiles> {
    for sub in ["proc", "sys", "dev", "etc"] {
        fs::create_dir_all(init.join(sub))?;
    }
    let mut files = Vec::new();
    let hn = dir.join("hostname");
    fs::write(&hn, format!("{hostname}\n"))?;
    files.push(("/etc/hostname", hn));
    for (name, host) in [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf")] {
        let p = dir.join(name);
        // A copy, so the step can neither see later host edits nor write to the host.
        let content = fs::read(host).unwrap_or_else(|_| {
            if name == "hosts" {
                b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_vec()
            } else {
                Vec::new()
            }
        });
        fs::write(&p, content)?;
        files.push((
            match name {
                "hosts" => "/etc/hosts",
                _ => "/etc/resolv.conf",
            },
            p,
        ));
    }
    for (c, _) in &files {
        fs::write(init.join(c.trim_start_matches('/')), b"")?;
    }
    Ok(files)
}

/// Removes what the runtime touched only because it mounted there (a copied-up empty mount
/// point directory or placeholder), keeping real changes.
fn drop_init_leftovers(upper: &Path, etc: &EtcFiles) {
    for (c, _) in etc {
        let p = upper.join(c.trim_start_matches('/'));
        if fs::metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = fs::remove_file(&p);
        }
    }
    for sub in ["proc", "sys", "dev", "etc"] {
        // remove_dir only succeeds on an empty directory, which is what a mount leaves.
        let _ = fs::remove_dir(upper.join(sub));
    }
}

/// The OCI config of a step: Docker's defaults for a container without networking of its own.
fn oci_config(
    req: &RunRequest,
    user: &ResolvedUser,
    rootfs: &Path,
    hostname: &str,
    cgroup: &Path,
    etc: &EtcFiles,
) -> serde_json::Value {
    use serde_json::json;
    let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let seccomp = serde_json::to_value(berth_runtime::default_profile(&caps))
        .unwrap_or(serde_json::Value::Null);
    let mut env = req.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={hostname}"));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    for (dst, src) in etc {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                           "options": ["rbind", "rprivate"]}));
    }
    let mut user_json = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        user_json["additionalGids"] = json!(user.additional_gids);
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": user_json,
            "args": req.args,
            "env": env,
            "cwd": if req.workdir.is_empty() { "/" } else { req.workdir.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false,
        },
        "root": {"path": rootfs, "readonly": false},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "cgroupsPath": cgroup,
            "seccomp": seccomp,
            "maskedPaths": [
                "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ],
        },
    })
}
