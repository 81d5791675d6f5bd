//! Spawning the container's processes: namespaces, the init's setup sequence, exec'ing the
//! user process with its credentials, capabilities, rlimits and seccomp filter.

use std::convert::Infallible;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxNamespaceType, PosixRlimitType, Process, Spec};
use serde::{Deserialize, Serialize};

use crate::rootfs::{self, LinuxSyscall};
use crate::seccomp::{self, Insn};
use crate::sys::{self, Fork};

/// Failures while spawning or setting up a container process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A system call in the runtime process failed.
    #[error("{context}: {source}")]
    Sys {
        /// What was being done.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// The container's init or exec process reported a setup failure.
    #[error("container process setup failed: {0}")]
    Setup(String),
    /// The container process went away before reporting back.
    #[error("container process exited during setup")]
    Vanished,
    /// An injected failure (tests).
    #[error("injected failure at {0}")]
    Injected(String),
}

/// The text an init or exec process relays to the runtime, which wraps it in
/// [`ProcessError::Setup`] itself (so the prefix is not said twice).
pub(crate) fn relay(e: &impl std::fmt::Display) -> String {
    let s = e.to_string();
    match s.strip_prefix("container process setup failed: ") {
        Some(rest) => rest.to_string(),
        None => s,
    }
}

pub(crate) fn sys_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ProcessError {
    let context = context.into();
    move |source| ProcessError::Sys { context, source }
}

/// Fails when BERTH_RUNTIME_FAILPOINT names this point; lets tests break create midway.
pub(crate) fn failpoint(name: &str) -> Result<(), ProcessError> {
    match std::env::var("BERTH_RUNTIME_FAILPOINT") {
        Ok(v) if v == name => Err(ProcessError::Injected(name.to_string())),
        _ => Ok(()),
    }
}

/// Messages between the runtime and the processes it spawns.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Msg {
    /// Maps and cgroups are in place: continue. Carries the host pid and the state JSON for hooks.
    Go { pid: i32, state: String },
    /// The pid of a grandchild (in the runtime's pid namespace).
    ChildPid(i32),
    /// Init asks the runtime to run prestart/createRuntime hooks.
    RunHooks,
    /// Those hooks succeeded.
    HooksDone,
    /// Init finished setup and waits on the exec fifo.
    Ready,
    /// Setup failed.
    Error(String),
}

/// One end of a SOCK_SEQPACKET pair carrying JSON messages.
pub(crate) struct Channel(UnixDatagram);

impl Channel {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Channel(UnixDatagram::from(fd))
    }

    pub(crate) fn send(&self, m: &Msg) -> Result<(), ProcessError> {
        let data = serde_json::to_vec(m).map_err(|e| ProcessError::Setup(e.to_string()))?;
        self.0.send(&data).map_err(sys_err("sync socket send"))?;
        Ok(())
    }

    /// Next message, or None when the other side closed (exited or exec'd).
    pub(crate) fn recv(&self) -> Result<Option<Msg>, ProcessError> {
        let mut buf = vec![0u8; 1 << 16];
        let n = loop {
            match self.0.recv(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(sys_err("sync socket recv")(e)),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| ProcessError::Setup(format!("bad sync message: {e}")))
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// CLONE_NEWTIME (linux/sched.h); it shares its bit with CSIGNAL, so only unshare(2), setns(2)
/// and clone3(2) take it.
const CLONE_NEWTIME: libc::c_int = 0x80;

/// The text of /proc/self/timens_offsets for linux.timeOffsets (`monotonic` and `boottime`).
pub(crate) fn timens_offsets(linux: &oci_spec::runtime::Linux) -> Result<String, ProcessError> {
    let mut text = String::new();
    for (clock, off) in linux.time_offsets().iter().flatten() {
        if clock != "monotonic" && clock != "boottime" {
            return Err(ProcessError::Setup(format!(
                "linux.timeOffsets.{clock}: only monotonic and boottime have offsets"
            )));
        }
        let ns = off.nanosecs().unwrap_or(0);
        if ns >= 1_000_000_000 {
            return Err(ProcessError::Setup(format!(
                "linux.timeOffsets.{clock}.nanosecs: {ns} is not below one second"
            )));
        }
        text.push_str(&format!("{clock} {} {ns}\n", off.secs().unwrap_or(0)));
    }
    Ok(text)
}

/// Which namespaces to create and which to join, from linux.namespaces.
#[derive(Debug, Default, Clone)]
pub(crate) struct NsPlan {
    pub clone_flags: libc::c_int,
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_cgroup: bool,
    pub new_uts: bool,
    pub new_time: bool,
}

pub(crate) fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => CLONE_NEWTIME,
    }
}

impl NsPlan {
    pub(crate) fn from_spec(spec: &Spec) -> Self {
        let mut plan = NsPlan::default();
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for ns in nss {
            match ns.path() {
                Some(p) => plan.join.push((ns.typ(), p.clone())),
                None => {
                    match ns.typ() {
                        LinuxNamespaceType::User => plan.new_user = true,
                        LinuxNamespaceType::Mount => plan.new_mount = true,
                        LinuxNamespaceType::Uts => plan.new_uts = true,
                        _ => {}
                    }
                    match ns.typ() {
                        // Entered after the runtime placed the process in its cgroup.
                        LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                        // clone(2) has no flag for it: init unshares it (see init_setup).
                        LinuxNamespaceType::Time => plan.new_time = true,
                        t => plan.clone_flags |= ns_flag(t),
                    }
                }
            }
        }
        // A joined user namespace comes first so the others are entered with its privileges.
        plan.join
            .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
        plan
    }
}

/// Joins namespaces by path, user namespace first.
fn join_namespaces(join: &[(LinuxNamespaceType, PathBuf)]) -> Result<(), ProcessError> {
    let mut fds = Vec::new();
    for (t, p) in join {
        let f = std::fs::File::open(p).map_err(sys_err(format!(
            "linux.namespaces: open {} namespace {}",
            t,
            p.display()
        )))?;
        fds.push((*t, p, f));
    }
    for (t, p, f) in &fds {
        sys::setns(f.as_raw_fd(), ns_flag(*t)).map_err(sys_err(format!(
            "linux.namespaces: join {} namespace {}",
            t,
            p.display()
        )))?;
    }
    Ok(())
}

/// Everything init needs, prepared by the runtime before cloning.
pub(crate) struct InitConfig<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub state_dir: &'a OwnedFd,
    pub console: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub seccomp: Option<&'a (Vec<Insn>, libc::c_ulong)>,
    pub cgroup_dirs: &'a [(String, PathBuf)],
    pub plan: &'a NsPlan,
    /// Descriptors 3..3+keep_fds the caller handed over (LISTEN_FDS, --preserve-fds).
    pub keep_fds: u32,
}

/// Spawns the init process (through an intermediate when namespaces must be joined first).
/// Returns its host pid and the runtime's end of the sync channel.
pub(crate) fn spawn_init(cfg: &InitConfig) -> Result<(i32, Channel), ProcessError> {
    let (ours, theirs) = sys::seqpacket_pair().map_err(sys_err("socketpair"))?;
    if cfg.plan.join.is_empty() {
        match sys::clone_with_flags(cfg.plan.clone_flags).map_err(sys_err("clone"))? {
            Fork::Child => {
                drop(ours);
                init_main(cfg, Channel::new(theirs))
            }
            Fork::Parent(pid) => {
                drop(theirs);
                Ok((pid, Channel::new(ours)))
            }
        }
    } else {
        match sys::fork().map_err(sys_err("fork"))? {
            Fork::Child => {
                drop(ours);
                let ch = Channel::new(theirs);
                if let Err(e) = join_namespaces(&cfg.plan.join) {
                    let _ = ch.send(&Msg::Error(relay(&e)));
                    sys::exit_now(1);
                }
                match sys::clone_with_flags(cfg.plan.clone_flags) {
                    Ok(Fork::Child) => init_main(cfg, ch),
                    Ok(Fork::Parent(pid)) => {
                        let _ = ch.send(&Msg::ChildPid(pid));
                        sys::exit_now(0)
                    }
                    Err(e) => {
                        let _ = ch.send(&Msg::Error(format!("clone: {e}")));
                        sys::exit_now(1)
                    }
                }
            }
            Fork::Parent(mid) => {
                drop(theirs);
                let ch = Channel::new(ours);
                let r = ch.recv();
                let _ = sys::waitpid(mid, 0);
                match r? {
                    Some(Msg::ChildPid(pid)) => Ok((pid, ch)),
                    Some(Msg::Error(e)) => Err(ProcessError::Setup(e)),
                    _ => Err(ProcessError::Vanished),
                }
            }
        }
    }
}

/// Writes uid_map and gid_map for a process in a new user namespace.
pub(crate) fn write_id_maps(pid: i32, spec: &Spec) -> Result<(), ProcessError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    std::fs::write(format!("/proc/{pid}/uid_map"), uid)
        .map_err(sys_err("linux.uidMappings: write uid_map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), gid)
        .map_err(sys_err("linux.gidMappings: write gid_map"))?;
    Ok(())
}

fn init_main(cfg: &InitConfig, ch: Channel) -> ! {
    match init_setup(cfg, &ch) {
        Ok(never) => match never {},
        Err(e) => {
            // After `Ready` the runtime is gone; the container's stderr is the only witness.
            if ch.send(&Msg::Error(relay(&e))).is_err() {
                eprintln!("berth-runtime: container init: {e}");
            }
            sys::exit_now(1)
        }
    }
}

fn expect_go(ch: &Channel) -> Result<(i32, String), ProcessError> {
    match ch.recv()? {
        Some(Msg::Go { pid, state }) => Ok((pid, state)),
        Some(other) => Err(ProcessError::Setup(format!("unexpected message {other:?}"))),
        None => Err(ProcessError::Vanished),
    }
}

fn init_setup(cfg: &InitConfig, ch: &Channel) -> Result<Infallible, ProcessError> {
    let (_host_pid, state_json) = expect_go(ch)?;
    let spec = cfg.spec;
    let linux = spec.linux().clone().unwrap_or_default();
    // Without a process the container can be created; `start` then refuses it.
    let process = spec.process().clone().unwrap_or_default();
    if cfg.plan.new_user {
        sys::setresgid(0).map_err(sys_err("setresgid(0) in user namespace"))?;
        sys::setresuid(0).map_err(sys_err("setresuid(0) in user namespace"))?;
    }
    if cfg.plan.new_cgroup {
        sys::unshare(libc::CLONE_NEWCGROUP).map_err(sys_err("unshare cgroup namespace"))?;
    }
    if cfg.plan.new_time {
        // unshare makes the namespace init's children's, and init's own at execve; until then
        // it has no member, which is when the kernel still accepts offsets.
        sys::unshare(CLONE_NEWTIME).map_err(sys_err("linux.namespaces: unshare time"))?;
        let offsets = timens_offsets(&linux)?;
        if !offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", offsets).map_err(sys_err(
                "linux.timeOffsets: write /proc/self/timens_offsets",
            ))?;
        }
    } else if linux.time_offsets().is_some() {
        tracing::warn!("linux.timeOffsets without a new time namespace; ignored");
    }
    sys::setsid().map_err(sys_err("setsid"))?;
    let sc = LinuxSyscall;
    if cfg.plan.new_mount {
        let prop = linux
            .rootfs_propagation()
            .as_deref()
            .and_then(rootfs::propagation_flag)
            .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
        // Private or slave first, so nothing below propagates back to the host; shared and
        // unbindable (which would refuse the rootfs bind) are applied after pivot_root.
        let late = prop & (libc::MS_SHARED | libc::MS_UNBINDABLE) != 0;
        let first = if late {
            libc::MS_PRIVATE | libc::MS_REC
        } else {
            prop
        };
        sys::mount(None, Path::new("/"), None, first, None)
            .map_err(sys_err("linux.rootfsPropagation: make / private"))?;
        sys::mount(
            Some(cfg.rootfs),
            cfg.rootfs,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(sys_err("root.path: bind rootfs"))?;
        let ctx = rootfs::MountContext {
            rootfs: cfg.rootfs,
            bundle: cfg.bundle,
            cgroup_dirs: cfg.cgroup_dirs,
            cgroupns: cfg.plan.new_cgroup,
            userns: cfg.plan.new_user,
        };
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            rootfs::mount_entry(&sc, &ctx, m).map_err(sys_err(format!("mounts[{i}]")))?;
        }
        rootfs::setup_dev(
            cfg.rootfs,
            linux.devices().as_deref().unwrap_or(&[]),
            cfg.plan.new_user,
        )
        .map_err(sys_err("linux.devices"))?;
        failpoint("init-after-mounts")?;
        run_create_hooks(ch, spec, &state_json)?;
        if cfg.no_pivot {
            rootfs::move_root(cfg.rootfs).map_err(sys_err("move root"))?;
        } else {
            rootfs::pivot_root(cfg.rootfs).map_err(sys_err("pivot_root"))?;
        }
        if late {
            sys::mount(None, Path::new("/"), None, prop, None)
                .map_err(sys_err("linux.rootfsPropagation"))?;
        }
    } else {
        run_create_hooks(ch, spec, &state_json)?;
        sys::chroot(cfg.rootfs).map_err(sys_err("chroot"))?;
        std::env::set_current_dir("/").map_err(sys_err("chdir /"))?;
    }
    if let Some(sysctl) = linux.sysctl() {
        rootfs::apply_sysctls(sysctl).map_err(sys_err("linux.sysctl"))?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sys::sethostname(h).map_err(sys_err("hostname"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        sys::setdomainname(d).map_err(sys_err("domainname"))?;
    }
    if cfg.plan.new_mount {
        rootfs::readonly_paths(&sc, linux.readonly_paths().as_deref().unwrap_or(&[]))
            .map_err(sys_err("linux.readonlyPaths"))?;
        rootfs::mask_paths(&sc, linux.masked_paths().as_deref().unwrap_or(&[]))
            .map_err(sys_err("linux.maskedPaths"))?;
        if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
            let locked = sys::mount_flags(Path::new("/")).unwrap_or(0)
                & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
            sys::mount(
                None,
                Path::new("/"),
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
                None,
            )
            .map_err(sys_err("root.readonly"))?;
        }
    }
    if process.terminal() == Some(true) {
        let sock = cfg
            .console
            .ok_or_else(|| ProcessError::Setup("process.terminal needs --console-socket".into()))?;
        setup_terminal(sock.as_raw_fd(), &process, true)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(sys_err("process.oomScoreAdj"))?;
    }
    apply_rlimits(&process)?;
    check_executable(&process)?;
    ch.send(&Msg::Ready)?;
    // Blocks until `start` opens the fifo for reading.
    let fifo = sys::openat(
        cfg.state_dir.as_raw_fd(),
        std::ffi::OsStr::new(crate::state::EXEC_FIFO),
        libc::O_WRONLY,
    )
    .map_err(sys_err("open exec fifo"))?;
    let f = std::fs::File::from(fifo);
    if let Some(hooks) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        crate::hooks::run("startContainer", &hooks, state_json.as_bytes())
            .map_err(|e| ProcessError::Setup(e.to_string()))?;
    }
    io::Write::write_all(&mut &f, b"0").map_err(sys_err("write exec fifo"))?;
    // The fifo stays open until execve closes it (O_CLOEXEC): `start` reads that EOF as
    // "the user program runs" before it runs poststart hooks.
    let _fifo = f;
    exec_user_process(&process, cfg.seccomp, cfg.keep_fds)
}

fn run_create_hooks(ch: &Channel, spec: &Spec, state_json: &str) -> Result<(), ProcessError> {
    ch.send(&Msg::RunHooks)?;
    match ch.recv()? {
        Some(Msg::HooksDone) => {}
        Some(Msg::Error(e)) => return Err(ProcessError::Setup(e)),
        _ => return Err(ProcessError::Vanished),
    }
    if let Some(hooks) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        crate::hooks::run("createContainer", &hooks, state_json.as_bytes())
            .map_err(|e| ProcessError::Setup(e.to_string()))?;
    }
    Ok(())
}

/// Opens a pty in the container's devpts, sends the master over the console socket and makes
/// the slave this process's stdio and controlling terminal.
fn setup_terminal(sock: RawFd, process: &Process, is_init: bool) -> Result<(), ProcessError> {
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/ptmx")
        .map_err(sys_err("open /dev/ptmx"))?;
    let slave_path = sys::pty_slave_path(master.as_raw_fd()).map_err(sys_err("unlockpt"))?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&slave_path)
        .map_err(sys_err(format!("open {slave_path}")))?;
    if let Some(size) = process.console_size() {
        sys::set_winsize(slave.as_raw_fd(), size.height() as u16, size.width() as u16)
            .map_err(sys_err("process.consoleSize"))?;
    }
    sys::send_fd(sock, master.as_raw_fd(), b"/dev/ptmx").map_err(sys_err("send pty master"))?;
    drop(master);
    if is_init {
        let console = Path::new("/dev/console");
        if LinuxSyscall_touch(console).is_ok() {
            let _ = sys::mount(
                Some(Path::new(&slave_path)),
                console,
                None,
                libc::MS_BIND,
                None,
            );
        }
    }
    sys::set_controlling_tty(slave.as_raw_fd()).map_err(sys_err("TIOCSCTTY"))?;
    for fd in 0..3 {
        sys::dup2(slave.as_raw_fd(), fd).map_err(sys_err("dup2 pty"))?;
    }
    Ok(())
}

#[allow(non_snake_case)]
fn LinuxSyscall_touch(p: &Path) -> io::Result<()> {
    rootfs::Syscall::touch(&LinuxSyscall, p)
}

use std::os::unix::fs::OpenOptionsExt;

// The constants' type differs between libc targets (u32 on glibc, i32 on musl).
#[allow(clippy::unnecessary_cast)]
fn rlimit_resource(t: PosixRlimitType) -> u32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as u32
}

fn apply_rlimits(process: &Process) -> Result<(), ProcessError> {
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        sys::setrlimit(rlimit_resource(r.typ()), r.soft(), r.hard())
            .map_err(sys_err(format!("process.rlimits[{i}]")))?;
    }
    Ok(())
}

/// Capability names from an OCI set, as the caps crate knows them; unknown ones are skipped.
pub(crate) fn cap_set(set: &Option<Capabilities>) -> caps::CapsHashSet {
    let mut out = caps::CapsHashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        match caps::Capability::from_str(&name) {
            Ok(cap) => {
                out.insert(cap);
            }
            Err(_) => tracing::warn!(capability = %name, "unknown capability ignored"),
        }
    }
    out
}

/// The CAP_ names of a process's bounding set, for the default seccomp profile.
pub fn bounding_names(process: &Process) -> Vec<String> {
    let set = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone());
    cap_set(&set).iter().map(|c| c.to_string()).collect()
}

/// Fails create, as runc does, when the program or the working directory is missing: a start
/// error names the problem, where a container dying at once with exit 1 would hide it. The
/// wording is Go's, since clients map it to exit codes (127 for "executable file not found" and
/// "no such file or directory", 126 for "permission denied").
fn check_executable(process: &Process) -> Result<(), ProcessError> {
    let go_err = |e: &io::Error| match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".to_string(),
        Some(libc::EACCES) => "permission denied".to_string(),
        Some(libc::ENOTDIR) => "not a directory".to_string(),
        _ => e.to_string(),
    };
    let cwd = process.cwd();
    if let Err(e) = std::fs::metadata(cwd) {
        return Err(ProcessError::Setup(format!(
            "chdir to cwd (\"{}\") set in config.json failed: {}",
            cwd.display(),
            go_err(&e)
        )));
    }
    let Some(arg0) = process.args().as_ref().and_then(|a| a.first()) else {
        return Ok(());
    };
    if arg0.contains('/') {
        let p = cwd.join(arg0);
        return match std::fs::metadata(&p) {
            Err(e) => Err(ProcessError::Setup(format!(
                "exec: \"{arg0}\": stat {arg0}: {}",
                go_err(&e)
            ))),
            Ok(m) if m.is_dir() => Err(ProcessError::Setup(format!(
                "exec: \"{arg0}\": is a directory"
            ))),
            Ok(_) => Ok(()),
        };
    }
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    if find_executable(arg0, &env).is_absolute() {
        Ok(())
    } else {
        Err(ProcessError::Setup(format!(
            "exec: \"{arg0}\": executable file not found in $PATH"
        )))
    }
}

/// Searches PATH (from the process env) for a command, like execvp would inside the container.
fn find_executable(arg0: &str, env: &[String]) -> PathBuf {
    if arg0.contains('/') {
        return PathBuf::from(arg0);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let cand = Path::new(dir).join(arg0);
        if let Ok(m) = cand.metadata() {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return cand;
            }
        }
    }
    PathBuf::from(arg0)
}

/// Switches to the process's credentials, drops privileges and execs; returns only on error.
pub(crate) fn exec_user_process(
    process: &Process,
    seccomp_prog: Option<&(Vec<Insn>, libc::c_ulong)>,
    keep_fds: u32,
) -> Result<Infallible, ProcessError> {
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    std::env::set_current_dir(process.cwd())
        .map_err(sys_err(format!("process.cwd {}", process.cwd().display())))?;
    if process
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        tracing::warn!("process.apparmorProfile is not supported; ignored");
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        tracing::warn!("process.selinuxLabel is not supported; ignored");
    }
    let args = process.args().clone().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| ProcessError::Setup("process.args: empty".into()))?;
    let exe = find_executable(arg0, &env);
    let to_c = |s: &[u8], field: &str| {
        CString::new(s).map_err(|_| ProcessError::Setup(format!("{field}: contains a NUL byte")))
    };
    let c_exe = to_c(exe.as_os_str().as_bytes(), "process.args[0]")?;
    let c_args = args
        .iter()
        .map(|a| to_c(a.as_bytes(), "process.args"))
        .collect::<Result<Vec<_>, _>>()?;
    let c_env = env
        .iter()
        .map(|a| to_c(a.as_bytes(), "process.env"))
        .collect::<Result<Vec<_>, _>>()?;

    // Before any seccomp filter: older profiles do not allow close_range.
    sys::cloexec_from(3u32.saturating_add(keep_fds)).map_err(sys_err("close_range"))?;
    let nnp = process.no_new_privileges() == Some(true);
    if let (false, Some((prog, flags))) = (nnp, seccomp_prog) {
        // Without no_new_privs the filter must go in while CAP_SYS_ADMIN is still held.
        seccomp::install(prog, *flags).map_err(|e| ProcessError::Setup(e.to_string()))?;
    }
    let capabilities = process.capabilities().clone().unwrap_or_default();
    let bounding = cap_set(capabilities.bounding());
    let all = caps::runtime::thread_all_supported();
    for cap in &all {
        if !bounding.contains(cap) {
            caps::drop(None, caps::CapSet::Bounding, *cap).map_err(|e| {
                ProcessError::Setup(format!("process.capabilities.bounding: drop {cap}: {e}"))
            })?;
        }
    }
    let user = process.user();
    sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0).map_err(sys_err("PR_SET_KEEPCAPS"))?;
    let groups = user.additional_gids().clone().unwrap_or_default();
    if let Err(e) = sys::setgroups(&groups) {
        // A user namespace with setgroups denied refuses even an empty list.
        if !groups.is_empty() || e.raw_os_error() != Some(libc::EPERM) {
            return Err(sys_err("process.user.additionalGids")(e));
        }
    }
    sys::setresgid(user.gid()).map_err(sys_err("process.user.gid"))?;
    sys::setresuid(user.uid()).map_err(sys_err("process.user.uid"))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0, 0).map_err(sys_err("PR_SET_KEEPCAPS"))?;
    let set = |which: caps::CapSet, value: &Option<Capabilities>, field: &str| {
        caps::set(None, which, &cap_set(value))
            .map_err(|e| ProcessError::Setup(format!("process.capabilities.{field}: {e}")))
    };
    set(
        caps::CapSet::Effective,
        capabilities.effective(),
        "effective",
    )?;
    set(
        caps::CapSet::Inheritable,
        capabilities.inheritable(),
        "inheritable",
    )?;
    set(
        caps::CapSet::Permitted,
        capabilities.permitted(),
        "permitted",
    )?;
    let _ = caps::clear(None, caps::CapSet::Ambient);
    for cap in cap_set(capabilities.ambient()) {
        // The kernel refuses ambient caps missing from permitted or inheritable; runc ignores that too.
        if let Err(e) = caps::raise(None, caps::CapSet::Ambient, cap) {
            tracing::debug!(%cap, error = %e, "ambient capability not raised");
        }
    }
    if let Some(mask) = user.umask() {
        sys::umask(mask);
    }
    if nnp {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(sys_err("process.noNewPrivileges"))?;
        if let Some((prog, flags)) = seccomp_prog {
            seccomp::install(prog, *flags).map_err(|e| ProcessError::Setup(e.to_string()))?;
        }
    }
    sys::reset_signals();
    let err = sys::execve(&c_exe, &c_args, &c_env);
    Err(ProcessError::Setup(format!(
        "exec {:?} (process.args[0]): {err}",
        arg0
    )))
}

/// Options for running an extra process in a container.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The process to run (args, env, cwd, user, capabilities, ...).
    pub process: Process,
    /// Console socket to receive the pty master when process.terminal is set.
    pub console_socket: Option<PathBuf>,
    /// Return right after the process started instead of waiting for it.
    pub detach: bool,
    /// Where to write the process's pid.
    pub pid_file: Option<PathBuf>,
}

/// Forks a process that joins init's namespaces and execs `process`; returns its host pid.
/// `add_to_cgroup` puts the helper into the container's cgroup before it enters the namespaces.
pub(crate) fn spawn_exec(
    init_pid: i32,
    process: &Process,
    seccomp_prog: Option<&(Vec<Insn>, libc::c_ulong)>,
    console: Option<&OwnedFd>,
    keep_fds: u32,
    add_to_cgroup: &dyn Fn(i32) -> Result<(), crate::Error>,
) -> Result<i32, crate::Error> {
    // Open the namespace files up front: after joining the mount namespace they are out of reach.
    let order = ["user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt"];
    let mut ns_files = Vec::new();
    for name in order {
        let theirs = PathBuf::from(format!("/proc/{init_pid}/ns/{name}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue;
        };
        use std::os::unix::fs::MetadataExt;
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        let f =
            std::fs::File::open(&theirs).map_err(sys_err(format!("open {}", theirs.display())))?;
        ns_files.push((name, f));
    }
    let (ours, theirs) = sys::seqpacket_pair().map_err(sys_err("socketpair"))?;
    match sys::fork().map_err(sys_err("fork"))? {
        Fork::Child => {
            drop(ours);
            let ch = Channel::new(theirs);
            let r = exec_helper(&ch, &ns_files, process, seccomp_prog, console, keep_fds);
            if let Err(e) = r {
                let _ = ch.send(&Msg::Error(relay(&e)));
                sys::exit_now(1);
            }
            sys::exit_now(0)
        }
        Fork::Parent(mid) => {
            drop(theirs);
            let ch = Channel::new(ours);
            let setup = (|| -> Result<i32, crate::Error> {
                add_to_cgroup(mid)?;
                ch.send(&Msg::Go {
                    pid: mid,
                    state: String::new(),
                })?;
                match ch.recv()? {
                    Some(Msg::ChildPid(pid)) => {
                        // EOF means the process exec'd; an Error means it did not get that far.
                        match ch.recv()? {
                            None => Ok(pid),
                            Some(Msg::Error(e)) => Err(ProcessError::Setup(e).into()),
                            Some(m) => Err(ProcessError::Setup(format!("unexpected {m:?}")).into()),
                        }
                    }
                    Some(Msg::Error(e)) => Err(ProcessError::Setup(e).into()),
                    _ => Err(ProcessError::Vanished.into()),
                }
            })();
            if setup.is_err() {
                let _ = sys::kill(mid, libc::SIGKILL);
            }
            let _ = sys::waitpid(mid, 0);
            setup
        }
    }
}

fn exec_helper(
    ch: &Channel,
    ns_files: &[(&str, std::fs::File)],
    process: &Process,
    seccomp_prog: Option<&(Vec<Insn>, libc::c_ulong)>,
    console: Option<&OwnedFd>,
    keep_fds: u32,
) -> Result<(), ProcessError> {
    expect_go(ch)?;
    for (name, f) in ns_files {
        let flag = match *name {
            "user" => libc::CLONE_NEWUSER,
            "ipc" => libc::CLONE_NEWIPC,
            "uts" => libc::CLONE_NEWUTS,
            "net" => libc::CLONE_NEWNET,
            "pid" => libc::CLONE_NEWPID,
            "cgroup" => libc::CLONE_NEWCGROUP,
            "time" => CLONE_NEWTIME,
            _ => libc::CLONE_NEWNS,
        };
        sys::setns(f.as_raw_fd(), flag).map_err(sys_err(format!("join {name} namespace")))?;
    }
    match sys::fork().map_err(sys_err("fork"))? {
        Fork::Child => {
            let r = (|| -> Result<Infallible, ProcessError> {
                sys::setsid().map_err(sys_err("setsid"))?;
                if process.terminal() == Some(true) {
                    let sock = console.ok_or_else(|| {
                        ProcessError::Setup("process.terminal needs --console-socket".into())
                    })?;
                    setup_terminal(sock.as_raw_fd(), process, false)?;
                }
                apply_rlimits(process)?;
                if let Some(adj) = process.oom_score_adj() {
                    let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
                }
                exec_user_process(process, seccomp_prog, keep_fds)
            })();
            let Err(e) = r;
            let _ = ch.send(&Msg::Error(relay(&e)));
            sys::exit_now(127)
        }
        Fork::Parent(pid) => {
            ch.send(&Msg::ChildPid(pid))?;
            let _ = ch.fd();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(offsets: serde_json::Value) -> oci_spec::runtime::Linux {
        serde_json::from_value(serde_json::json!({ "timeOffsets": offsets })).unwrap()
    }

    #[test]
    fn time_offsets_text_and_refusals() {
        let text = timens_offsets(&linux(serde_json::json!({
            "boottime": {"secs": 5},
            "monotonic": {"secs": -2, "nanosecs": 7}
        })))
        .unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        assert_eq!(lines, ["boottime 5 0", "monotonic -2 7"]);
        let e = timens_offsets(&linux(serde_json::json!({"realtime": {"secs": 1}}))).unwrap_err();
        assert!(e.to_string().contains("linux.timeOffsets.realtime"), "{e}");
        let e = timens_offsets(&linux(
            serde_json::json!({"boottime": {"nanosecs": 1_000_000_000u32}}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("nanosecs"), "{e}");
        assert_eq!(timens_offsets(&linux(serde_json::Value::Null)).unwrap(), "");
    }
}
