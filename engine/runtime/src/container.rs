//! The container lifecycle: create, start, state, kill, delete, exec, pause, resume.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::Serialize;

use crate::cgroups::{self, CgroupManager, Manager, Stats};
use crate::process::{
    self, Channel, ExecOptions, InitConfig, Msg, NsPlan, ProcessError, relay, sys_err,
};
use crate::state::{self, Persisted, StateError, Status};
use crate::{Error, Result, config, hooks, seccomp, sys};

/// The state JSON of the OCI runtime spec (what `state` prints and hooks read on stdin).
#[derive(Debug, Clone, Serialize)]
pub struct OciState {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// Container ID.
    pub id: String,
    /// Lifecycle status.
    pub status: Status,
    /// Host pid of init (0 once stopped).
    pub pid: i32,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Annotations from config.json.
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

/// Builds a container from a bundle: `ContainerBuilder::new(id, bundle).root(dir).create()`.
#[derive(Debug, Clone)]
pub struct ContainerBuilder {
    id: String,
    bundle: PathBuf,
    root: PathBuf,
    console_socket: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    no_pivot: bool,
    preserve_fds: u32,
    listen_fds: u32,
}

impl ContainerBuilder {
    /// A builder for container `id` from the bundle directory.
    pub fn new(id: impl Into<String>, bundle: impl Into<PathBuf>) -> Self {
        ContainerBuilder {
            id: id.into(),
            bundle: bundle.into(),
            root: PathBuf::from(state::DEFAULT_ROOT),
            console_socket: None,
            pid_file: None,
            no_pivot: false,
            preserve_fds: 0,
            listen_fds: 0,
        }
    }

    /// The state directory root (runc's --root).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// UNIX socket that receives the pty master when process.terminal is set.
    pub fn console_socket(mut self, path: Option<PathBuf>) -> Self {
        self.console_socket = path;
        self
    }

    /// Passes descriptors 3..3+n of the caller to the container process (`--preserve-fds`).
    pub fn preserve_fds(mut self, n: u32) -> Self {
        self.preserve_fds = n;
        self
    }

    /// Passes `n` socket-activation descriptors (from 3, before the preserved ones) and tells
    /// the process with LISTEN_FDS=n and LISTEN_PID=1, as runc does for systemd's LISTEN_FDS.
    pub fn listen_fds(mut self, n: u32) -> Self {
        self.listen_fds = n;
        self
    }

    /// File to write init's pid into.
    pub fn pid_file(mut self, path: Option<PathBuf>) -> Self {
        self.pid_file = path;
        self
    }

    /// Use MS_MOVE and chroot instead of pivot_root (for ramfs roots).
    pub fn no_pivot(mut self, yes: bool) -> Self {
        self.no_pivot = yes;
        self
    }

    /// Runs create: on success the init process waits for `start`; on failure nothing is left.
    pub fn create(self) -> Result<Container> {
        state::validate_id(&self.id)?;
        let bundle = self.bundle.canonicalize().map_err(|e| {
            Error::Config(config::ConfigError::Read {
                path: self.bundle.clone(),
                source: e,
            })
        })?;
        let mut spec = config::load(&bundle)?;
        if self.listen_fds > 0 {
            if let Some(p) = spec.process_mut().as_mut() {
                let mut env = p.env().clone().unwrap_or_default();
                env.push(format!("LISTEN_FDS={}", self.listen_fds));
                env.push("LISTEN_PID=1".into());
                p.set_env(Some(env));
            }
        }
        config::validate(&spec, &bundle)?;
        let rootfs = config::rootfs_path(&spec, &bundle)?;
        if state::container_dir(&self.root, &self.id).exists() {
            return Err(StateError::Exists(self.id.clone()).into());
        }
        let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
        let seccomp_prog = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(p) => Some((seccomp::compile(p)?, seccomp::flags(p))),
            None => None,
        };
        let console = match (&self.console_socket, terminal) {
            (Some(p), true) => Some(OwnedFd::from(
                UnixStream::connect(p)
                    .map_err(sys_err(format!("connect console socket {}", p.display())))?,
            )),
            (None, true) => {
                return Err(config::ConfigError::Invalid {
                    field: "process.terminal".into(),
                    message: "a terminal needs --console-socket".into(),
                }
                .into());
            }
            _ => None,
        };
        let linux = spec.linux().clone().unwrap_or_default();
        let cgroup_path = cgroups::resolve_path(linux.cgroups_path().as_deref(), &self.id);
        let plan = NsPlan::from_spec(&spec);

        let dir = state::create_dir(&self.root, &self.id)?;
        let mut guard = CreateGuard {
            root: self.root.clone(),
            id: self.id.clone(),
            cgroup: None,
            pid: None,
            armed: true,
        };
        sys::mkfifo(&dir.join(state::EXEC_FIFO), 0o622).map_err(sys_err("create exec fifo"))?;
        let root_uid = host_id(linux.uid_mappings());
        let root_gid = host_id(linux.gid_mappings());
        if root_uid != 0 || root_gid != 0 {
            sys::lchown(&dir.join(state::EXEC_FIFO), root_uid, root_gid)
                .map_err(sys_err("chown exec fifo"))?;
        }
        let dir_fd: OwnedFd = std::fs::File::open(&dir)
            .map_err(sys_err(format!("open {}", dir.display())))?
            .into();

        let cg = CgroupManager::for_path(&cgroup_path)?;
        guard.cgroup = Some(cg.clone());
        cg.create()?;
        if let Some(res) = linux.resources() {
            cg.apply(res)?;
        }
        process::failpoint("after-cgroup")?;
        let cgroup_dirs = cg.v1_dirs();

        let cfg = InitConfig {
            spec: &spec,
            rootfs: &rootfs,
            bundle: &bundle,
            state_dir: &dir_fd,
            console: console.as_ref(),
            no_pivot: self.no_pivot,
            seccomp: seccomp_prog.as_ref(),
            cgroup_dirs: &cgroup_dirs,
            plan: &plan,
            keep_fds: self.listen_fds.saturating_add(self.preserve_fds),
        };
        let (pid, ch) = process::spawn_init(&cfg)?;
        guard.pid = Some(pid);
        drop(console);
        let start_time = state::proc_stat(pid).map(|s| s.0).unwrap_or(0);
        let persisted = Persisted {
            id: self.id.clone(),
            pid,
            start_time,
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            created: state::now_rfc3339(),
            cgroup_path: cgroup_path.clone(),
            spec: spec.clone(),
        };
        let container = Container {
            root: self.root.clone(),
            state: persisted,
        };
        cg.add_task(pid)?;
        if plan.new_user {
            process::write_id_maps(pid, &spec)?;
        }
        process::failpoint("after-spawn")?;
        // runtime-tools (and runc) hand hooks "created" although setup is still running.
        let state_json = container.state_json(Status::Created);
        ch.send(&Msg::Go {
            pid,
            state: state_json.clone(),
        })?;
        wait_for_init(&ch, &spec, &state_json)?;
        process::failpoint("before-state-save")?;
        state::save(&self.root, &container.state)?;
        if let Some(pf) = &self.pid_file {
            write_pid_file(pf, pid)?;
        }
        guard.armed = false;
        tracing::debug!(id = %self.id, pid, "created");
        Ok(container)
    }
}

fn host_id(maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>) -> u32 {
    maps.iter()
        .flatten()
        .find(|m| m.container_id() == 0)
        .map_or(0, |m| m.host_id())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("tmp-berth");
    std::fs::write(&tmp, pid.to_string())
        .map_err(sys_err(format!("pid file {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(sys_err(format!("pid file {}", path.display())))?;
    Ok(())
}

/// Serves init's hook requests until it reports ready or fails.
fn wait_for_init(ch: &Channel, spec: &Spec, state_json: &str) -> Result<()> {
    loop {
        match ch.recv()? {
            Some(Msg::RunHooks) => {
                #[allow(deprecated)]
                let r = spec.hooks().as_ref().map_or(Ok(()), |h| {
                    hooks::run(
                        "prestart",
                        h.prestart().as_deref().unwrap_or(&[]),
                        state_json.as_bytes(),
                    )?;
                    hooks::run(
                        "createRuntime",
                        h.create_runtime().as_deref().unwrap_or(&[]),
                        state_json.as_bytes(),
                    )
                });
                match r {
                    Ok(()) => ch.send(&Msg::HooksDone)?,
                    Err(e) => {
                        let _ = ch.send(&Msg::Error(relay(&e)));
                        return Err(e.into());
                    }
                }
            }
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::Error(e)) => return Err(ProcessError::Setup(e).into()),
            Some(other) => {
                return Err(ProcessError::Setup(format!("unexpected message {other:?}")).into());
            }
            None => return Err(ProcessError::Vanished.into()),
        }
    }
}

/// Undoes a half-done create: kills init, removes the cgroup and the state directory.
struct CreateGuard {
    root: PathBuf,
    id: String,
    cgroup: Option<CgroupManager>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = sys::kill(pid, libc::SIGKILL);
            // Init is our child unless an intermediate process spawned it.
            if sys::waitpid(pid, 0).is_err() {
                wait_gone(pid, None, Duration::from_secs(2));
            }
        }
        if let Some(cg) = &self.cgroup {
            kill_cgroup(cg);
            if let Err(e) = cg.remove() {
                tracing::warn!(error = %e, "cleanup: removing cgroup");
            }
        }
        if let Err(e) = state::remove_dir(&self.root, &self.id) {
            tracing::warn!(error = %e, "cleanup: removing state dir");
        }
    }
}

fn kill_cgroup(cg: &CgroupManager) {
    let frozen = cg.is_frozen();
    for pid in cg.pids().unwrap_or_default() {
        let _ = sys::kill(pid, libc::SIGKILL);
    }
    if frozen {
        let _ = cg.freeze(false);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let left = cg.pids().unwrap_or_default();
        if left.is_empty() {
            return;
        }
        for pid in left {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_gone(pid: i32, start_time: Option<u64>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let alive = match start_time {
            Some(st) => state::process_alive(pid, st),
            None => state::proc_stat(pid).is_some_and(|(_, s)| s != 'Z' && s != 'X'),
        };
        if !alive {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        // Reap it if it happens to be our child (the foreground `run` case).
        let _ = sys::waitpid(pid, libc::WNOHANG);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A container known to the state directory.
#[derive(Debug, Clone)]
pub struct Container {
    root: PathBuf,
    state: Persisted,
}

impl Container {
    /// Loads container `id` from the state root.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        Ok(Container {
            root: root.to_path_buf(),
            state: state::load(root, id)?,
        })
    }

    /// Every container under the state root.
    pub fn list(root: &Path) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for id in state::list_ids(root)? {
            match Container::load(root, &id) {
                Ok(c) => out.push(c),
                Err(e) => tracing::warn!(id, error = %e, "skipping unreadable container"),
            }
        }
        Ok(out)
    }

    /// Container ID.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// Host pid of init.
    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    /// Absolute bundle path.
    pub fn bundle(&self) -> &Path {
        &self.state.bundle
    }

    /// Creation time (RFC 3339).
    pub fn created(&self) -> &str {
        &self.state.created
    }

    /// The config the container was created from.
    pub fn spec(&self) -> &Spec {
        &self.state.spec
    }

    fn cgroup(&self) -> Result<CgroupManager> {
        Ok(CgroupManager::for_path(&self.state.cgroup_path)?)
    }

    /// Current status, derived from the process, the exec fifo and the freezer.
    pub fn status(&self) -> Status {
        if !state::process_alive(self.state.pid, self.state.start_time) {
            return Status::Stopped;
        }
        let fifo = state::container_dir(&self.root, &self.state.id).join(state::EXEC_FIFO);
        if fifo.exists() {
            return Status::Created;
        }
        if self.cgroup().map(|c| c.is_frozen()).unwrap_or(false) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state.
    pub fn oci_state(&self) -> OciState {
        let status = self.status();
        self.oci_state_with(status)
    }

    fn oci_state_with(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.state.spec.version().clone(),
            id: self.state.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.state.pid
            },
            bundle: self.state.bundle.clone(),
            rootfs: self.state.rootfs.clone(),
            created: self.state.created.clone(),
            annotations: self.state.spec.annotations().clone().unwrap_or_default(),
        }
    }

    fn state_json(&self, status: Status) -> String {
        let mut st = self.oci_state_with(status);
        st.pid = self.state.pid;
        serde_json::to_string(&st).unwrap_or_default()
    }

    fn refuse(&self, status: Status, op: &'static str) -> Error {
        StateError::WrongState {
            id: self.state.id.clone(),
            status,
            op,
        }
        .into()
    }

    /// Lets the init process exec the user program, then runs poststart hooks.
    pub fn start(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Created {
            return Err(self.refuse(status, "start"));
        }
        if self.state.spec.process().is_none() {
            let _ = sys::kill(self.state.pid, libc::SIGKILL);
            wait_gone(
                self.state.pid,
                Some(self.state.start_time),
                Duration::from_secs(5),
            );
            return Err(config::ConfigError::Invalid {
                field: "process".into(),
                message: "not set: there is nothing to start".into(),
            }
            .into());
        }
        let fifo_path = state::container_dir(&self.root, &self.state.id).join(state::EXEC_FIFO);
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo_path)
            .map_err(sys_err("open exec fifo"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1];
        loop {
            match std::io::Read::read(&mut &fifo, &mut buf) {
                Ok(1) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(sys_err("read exec fifo")(e).into()),
            }
            if !state::process_alive(self.state.pid, self.state.start_time) {
                return Err(ProcessError::Vanished.into());
            }
            if Instant::now() > deadline {
                return Err(
                    ProcessError::Setup("init did not answer on the exec fifo".into()).into(),
                );
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let _ = std::fs::remove_file(&fifo_path);
        // EOF means init exec'd the user program (or died trying).
        loop {
            match std::io::Read::read(&mut &fifo, &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(sys_err("read exec fifo")(e).into()),
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        if let Some(h) = self
            .state
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().clone())
        {
            let st = self.state_json(Status::Running);
            if let Err(e) = hooks::run("poststart", &h, st.as_bytes()) {
                tracing::warn!(error = %e, "poststart hook failed");
            }
        }
        Ok(())
    }

    /// Sends a signal to init, or with `all` to every process in the container's cgroup.
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.refuse(status, "kill"));
        }
        if all {
            for pid in self.cgroup()?.pids()? {
                let _ = sys::kill(pid, signal);
            }
            Ok(())
        } else {
            sys::kill(self.state.pid, signal)
                .map_err(sys_err(format!("kill {}", self.state.pid)))?;
            Ok(())
        }
    }

    /// Removes the container: refuses a running one unless `force`, which kills it first.
    pub fn delete(self, force: bool) -> Result<()> {
        let status = self.status();
        match status {
            Status::Stopped => {}
            Status::Created | Status::Running | Status::Paused | Status::Creating if !force => {
                return Err(self.refuse(status, "delete"));
            }
            _ => {}
        }
        let cg = self.cgroup()?;
        if status != Status::Stopped {
            let _ = sys::kill(self.state.pid, libc::SIGKILL);
            if status == Status::Paused {
                let _ = cg.freeze(false);
            }
            wait_gone(
                self.state.pid,
                Some(self.state.start_time),
                Duration::from_secs(5),
            );
        }
        kill_cgroup(&cg);
        cg.remove()?;
        if let Some(h) = self
            .state
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
        {
            let st = self.state_json(Status::Stopped);
            if let Err(e) = hooks::run("poststop", &h, st.as_bytes()) {
                tracing::warn!(error = %e, "poststop hook failed");
            }
        }
        state::remove_dir(&self.root, &self.state.id)?;
        Ok(())
    }

    /// Changes the resource limits of a container that has not stopped, and records the new
    /// values in its state (`runc update`).
    pub fn update(&mut self, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.refuse(status, "update"));
        }
        let mut linux = self.state.spec.linux().clone().unwrap_or_default();
        let current = linux.resources().clone().unwrap_or_default();
        let (merged, apply) = cgroups::merge_update(&current, res)?;
        self.cgroup()?.apply(&apply)?;
        linux.set_resources(Some(merged));
        self.state.spec.set_linux(Some(linux));
        state::save(&self.root, &self.state)?;
        Ok(())
    }

    /// Freezes every process of the container.
    pub fn pause(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Running && status != Status::Created {
            return Err(self.refuse(status, "pause"));
        }
        self.cgroup()?.freeze(true)?;
        Ok(())
    }

    /// Thaws a paused container.
    pub fn resume(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Paused {
            return Err(self.refuse(status, "resume"));
        }
        self.cgroup()?.freeze(false)?;
        Ok(())
    }

    /// Host pids of the container's processes.
    pub fn processes(&self) -> Result<Vec<i32>> {
        Ok(self.cgroup()?.pids()?)
    }

    /// Resource usage from the cgroup.
    pub fn stats(&self) -> Result<Stats> {
        Ok(self.cgroup()?.stats()?)
    }

    /// Runs another process inside the container's namespaces and cgroup; returns its host pid.
    /// The caller reaps it (set PR_SET_CHILD_SUBREAPER to wait for it).
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32> {
        self.exec_with_fds(opts, 0)
    }

    /// [`Container::exec`], passing the caller's descriptors 3..3+preserve_fds to the process.
    pub fn exec_with_fds(&self, opts: &ExecOptions, preserve_fds: u32) -> Result<i32> {
        let status = self.status();
        if status != Status::Running && status != Status::Created {
            return Err(self.refuse(status, "exec in"));
        }
        config::validate_process(&opts.process, "process")?;
        let seccomp_prog = match self
            .state
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
        {
            Some(p) => Some((seccomp::compile(p)?, seccomp::flags(p))),
            None => None,
        };
        let console = match (&opts.console_socket, opts.process.terminal() == Some(true)) {
            (Some(p), true) => Some(OwnedFd::from(
                UnixStream::connect(p)
                    .map_err(sys_err(format!("connect console socket {}", p.display())))?,
            )),
            (None, true) => {
                return Err(config::ConfigError::Invalid {
                    field: "process.terminal".into(),
                    message: "a terminal needs --console-socket".into(),
                }
                .into());
            }
            _ => None,
        };
        let cg = self.cgroup()?;
        let add = |pid: i32| -> Result<()> { Ok(cg.add_task(pid)?) };
        let pid = process::spawn_exec(
            self.state.pid,
            &opts.process,
            seccomp_prog.as_ref(),
            console.as_ref(),
            preserve_fds,
            &add,
        )?;
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, pid)?;
        }
        Ok(pid)
    }

    /// Whether the spec asks for a namespace of this type (new or joined).
    pub fn has_namespace(&self, t: LinuxNamespaceType) -> bool {
        self.state
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n| n.iter().any(|ns| ns.typ() == t))
    }
}
