//! Containers with Docker semantics: records in the metadata store, OCI spec generation, and
//! the lifecycle driven through one `berth-shim` per container (and per exec process).
//!
//! Records live in the `containers` table; `<root>/containers/<id>/` holds the bundle
//! (config.json), rootfs mount point, overlay upper/work dirs, hostname, hosts, resolv.conf,
//! the log and exit.json; `<exec-root>/containers/<first 32 of id>/` holds the shim's socket.

mod archive;
mod error;
mod exec;
mod health;
mod lifecycle;
pub mod name;
mod network;
mod query;
pub mod record;
pub mod rootpath;
mod shim;
pub use shim::{DEFAULT_DETACH_KEYS, parse_detach_keys};
pub mod signal;
pub mod spec;
mod stats;
pub mod user;

pub use archive::PathStat;
pub use error::ContainerError;

use crate::image::ImageService;
use crate::state::StateStore;
use crate::{Error, Result};
use error::io_err;
use record::ContainerRecord;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::{broadcast, oneshot, watch};

pub use berth_shim::{LogEntry, Stream as LogStreamKind};

/// Where the container service keeps its files.
#[derive(Debug, Clone)]
pub struct ContainerOptions {
    /// The engine root (`/var/lib/berth`): `<root>/containers/<id>/`.
    pub root: PathBuf,
    /// The runtime root (`/run/berth`): shim sockets and the runtime's state.
    pub exec_root: PathBuf,
    /// The `berth-shim` binary; default: `BERTH_SHIM`, else next to the current executable
    /// (or its parent directory, for test binaries in `target/*/deps`).
    pub shim: Option<PathBuf>,
}

/// A container event, as `/events` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// `create`, `start`, `die`, `kill`, `stop`, `destroy`, `exec_start: sh`, `health_status: healthy`...
    pub action: String,
    /// The container ID.
    pub id: String,
    /// `name`, `image`, `exitCode`, `signal`, labels, ...
    pub attributes: HashMap<String, String>,
    /// Unix time in nanoseconds.
    pub time_nano: i64,
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Returns at once if the container is not running, else at its exit.
    #[default]
    NotRunning,
    /// Returns at the next exit.
    NextExit,
    /// Returns when the container is removed.
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = ContainerError;
    fn from_str(s: &str) -> Result<Self, ContainerError> {
        match s {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            _ => Err(ContainerError::Invalid(format!(
                "invalid condition: \"{s}\""
            ))),
        }
    }
}

/// `docker logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep streaming new lines until the container stops.
    pub follow: bool,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries before this time.
    pub until: Option<SystemTime>,
    /// The caller prefixes lines with [`format_log_time`] of the entry's time.
    pub timestamps: bool,
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
}

/// Log entries, oldest first; ends when everything asked for was sent.
pub type LogStream = tokio::sync::mpsc::Receiver<LogEntry>;

/// Formats a log entry time as Docker's `--timestamps` does (RFC 3339, nanoseconds).
pub fn format_log_time(t: SystemTime) -> String {
    berth_shim::time::format_nanos(t)
}

/// `attach` options.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Forward the client's bytes to the container's stdin.
    pub stdin: bool,
    /// Send stdout.
    pub stdout: bool,
    /// Send stderr.
    pub stderr: bool,
    /// Stream live output (Docker's `stream`; attach always streams).
    pub stream: bool,
    /// Replay logs first: the caller does it with [`ContainerService::logs`] (not done here).
    pub logs: bool,
    /// Decoded detach keys (see [`parse_detach_keys`]); they act only with a TTY, as in
    /// Docker. Empty: no detaching.
    pub detach_keys: Vec<u8>,
}

/// An attach connection to a shim.
#[derive(Debug)]
pub struct Attached {
    /// The stream: Docker 8-byte frames from the shim when `!tty`, raw bytes when `tty`;
    /// bytes written go to the process's stdin.
    pub stream: tokio::net::UnixStream,
    /// Whether the process has a TTY.
    pub tty: bool,
}

/// The engine's container service; cheap to clone.
#[derive(Clone)]
pub struct ContainerService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ContainerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerService")
            .field("root", &self.inner.opts.root)
            .finish()
    }
}

struct Inner {
    opts: ContainerOptions,
    state: StateStore,
    images: ImageService,
    volumes: crate::volume::VolumeService,
    networks: crate::network::NetworkService,
    events: broadcast::Sender<ContainerEvent>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    execs: Mutex<HashMap<String, exec::ExecState>>,
    /// Serialises read-modify-write of records.
    rec_lock: Mutex<()>,
    shutdown: watch::Sender<bool>,
}

/// What a waiter observes about a container.
#[derive(Debug, Clone, Default)]
struct Gen {
    started: u64,
    exits: u64,
    removed: bool,
    last_exit: i64,
}

/// In-memory state of one container.
struct Live {
    /// Serialises start, stop, kill-and-wait, pause, remove.
    op: tokio::sync::Mutex<()>,
    watch: watch::Sender<Gen>,
    pending_attach: Mutex<Vec<(AttachOptions, oneshot::Sender<Result<Attached>>)>>,
    /// Healthcheck loops.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The exit monitor.
    monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Bumped to cancel a scheduled restart.
    restart_gen: AtomicU64,
    /// Delay before the next policy restart, in ms.
    backoff_ms: AtomicU64,
    /// Users of the rootfs mount (the running container, temporary archive mounts).
    mount_refs: Mutex<u32>,
    /// The previous stats sample, for `precpu_stats`.
    prev_stats: Mutex<Option<serde_json::Value>>,
}

impl Live {
    fn new() -> Self {
        Self {
            op: Default::default(),
            watch: watch::Sender::new(Gen::default()),
            pending_attach: Default::default(),
            tasks: Default::default(),
            monitor: Default::default(),
            restart_gen: AtomicU64::new(0),
            backoff_ms: AtomicU64::new(0),
            mount_refs: Mutex::new(0),
            prev_stats: Mutex::new(None),
        }
    }
}

/// How much of the ID names a container's runtime directory.
const RUN_ID_LEN: usize = 32;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Now in Unix nanoseconds.
fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl ContainerService {
    /// Opens the service: repairs what a crash left (see `lifecycle::recover`), re-monitors
    /// containers whose shim is alive and applies restart policies.
    pub async fn open(
        opts: ContainerOptions,
        state: StateStore,
        images: ImageService,
    ) -> Result<Self> {
        for d in [
            opts.root.join("containers"),
            opts.exec_root.join("containers"),
            opts.exec_root.join("execs"),
        ] {
            std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        let (events, _) = broadcast::channel(1024);
        let volumes = crate::volume::VolumeService::open(&opts.root, state.clone())?;
        let networks = crate::network::NetworkService::open(
            crate::network::NetworkOptions {
                root: opts.root.clone(),
                exec_root: opts.exec_root.clone(),
            },
            state.clone(),
        )
        .await?;
        let svc = Self {
            inner: Arc::new(Inner {
                opts,
                state,
                images,
                volumes,
                networks,
                events,
                live: Default::default(),
                execs: Default::default(),
                rec_lock: Mutex::new(()),
                shutdown: watch::Sender::new(false),
            }),
        };
        svc.recover().await?;
        // Endpoints and ports of containers that stopped while the engine was down go now.
        let running: std::collections::HashSet<String> = record::all(&svc.inner.state)?
            .into_iter()
            .filter(|r| r.state.is_running())
            .map(|r| r.id)
            .collect();
        let nets = svc.inner.networks.clone();
        tokio::task::spawn_blocking(move || nets.reconcile(&running))
            .await
            .map_err(|e| ContainerError::Internal(e.to_string()))??;
        Ok(svc)
    }

    /// The volume service containers mount from.
    pub fn volumes(&self) -> &crate::volume::VolumeService {
        &self.inner.volumes
    }

    /// The network service containers attach to.
    pub fn networks(&self) -> &crate::network::NetworkService {
        &self.inner.networks
    }

    /// Subscribes to container events.
    pub fn events(&self) -> broadcast::Receiver<ContainerEvent> {
        self.inner.events.subscribe()
    }

    /// Stops monitors and healthchecks; containers keep running (live-restore).
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let lives: Vec<Arc<Live>> = lock(&self.inner.live).values().cloned().collect();
        for l in lives {
            for t in lock(&l.tasks).drain(..) {
                t.abort();
            }
            if let Some(m) = lock(&l.monitor).take() {
                m.abort();
            }
        }
        let execs: Vec<tokio::task::JoinHandle<()>> = lock(&self.inner.execs)
            .values_mut()
            .filter_map(|e| e.monitor.take())
            .collect();
        for t in execs {
            t.abort();
        }
    }

    fn shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    fn live(&self, id: &str) -> Arc<Live> {
        lock(&self.inner.live)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Live::new()))
            .clone()
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.inner.opts.root.join("containers").join(id)
    }

    /// Half the ID keeps socket paths (and the shim's console socket next to them) well
    /// under the 108-byte limit even below a long exec root.
    fn run_dir(&self, id: &str) -> PathBuf {
        self.inner
            .opts
            .exec_root
            .join("containers")
            .join(id.get(..RUN_ID_LEN).unwrap_or(id))
    }

    fn socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("shim.sock")
    }

    fn runtime_root(&self) -> PathBuf {
        self.inner.opts.exec_root.join("runtime")
    }

    fn rootfs(&self, id: &str) -> PathBuf {
        self.dir(id).join("rootfs")
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    fn shim_binary(&self) -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("BERTH_SHIM") {
            return Ok(PathBuf::from(p));
        }
        if let Some(p) = &self.inner.opts.shim {
            return Ok(p.clone());
        }
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(2) {
                let p = dir.join("berth-shim");
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(ContainerError::Shim("berth-shim binary not found (set BERTH_SHIM)".into()).into())
    }

    fn emit(&self, action: &str, rec: &ContainerRecord, extra: &[(&str, String)]) {
        let mut attributes: HashMap<String, String> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attributes.insert("name".into(), rec.name.clone());
        attributes.insert("image".into(), rec.image.clone());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        let _ = self.inner.events.send(ContainerEvent {
            action: action.to_string(),
            id: rec.id.clone(),
            attributes,
            time_nano: now_nanos(),
        });
    }

    /// A record by full ID.
    fn get(&self, id: &str) -> Result<ContainerRecord> {
        record::get(&self.inner.state, id)?
            .filter(|r| !r.creating)
            .ok_or_else(|| ContainerError::NotFound(id.to_string()).into())
    }

    /// Read-modify-write of a record under the record lock; no write when `f` changes
    /// nothing (each commit costs an fsync).
    fn modify<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord) -> T,
    ) -> Result<(T, ContainerRecord)> {
        self.modify_with(id, f, false)
    }

    /// [`Self::modify`]; with `lazy` the commit does not wait for the disk, for states
    /// recovery redoes when a crash loses them (an exit: the record still says running, and
    /// recovery finds the shim gone).
    fn modify_with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord) -> T,
        lazy: bool,
    ) -> Result<(T, ContainerRecord)> {
        let _g = lock(&self.inner.rec_lock);
        let mut rec = record::get(&self.inner.state, id)?
            .ok_or_else(|| Error::from(ContainerError::NotFound(id.to_string())))?;
        let before = serde_json::to_vec(&rec).ok();
        let out = f(&mut rec);
        if before.is_some() && before == serde_json::to_vec(&rec).ok() {
            return Ok((out, rec));
        }
        if lazy {
            record::put_lazy(&self.inner.state, &rec)?;
        } else {
            record::put(&self.inner.state, &rec)?;
        }
        Ok((out, rec))
    }

    /// Finds a container by full ID, name (`x` or `/x`) or unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<String> {
        let st = &self.inner.state;
        if name_or_id.len() == 64
            && let Some(r) = record::get(st, name_or_id)?
            && !r.creating
        {
            return Ok(r.id);
        }
        let n = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(id) = record::id_by_name(st, n)?
            && let Some(r) = record::get(st, &id)?
            && !r.creating
        {
            return Ok(id);
        }
        if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let m: Vec<String> = record::all(st)?
                .into_iter()
                .filter(|r| !r.creating && r.id.starts_with(name_or_id))
                .map(|r| r.id)
                .collect();
            match m.len() {
                1 => return Ok(m.into_iter().next().unwrap_or_default()),
                0 => {}
                _ => {
                    return Err(ContainerError::Invalid(format!(
                        "multiple IDs found with provided prefix: {name_or_id}"
                    ))
                    .into());
                }
            }
        }
        Err(ContainerError::NotFound(name_or_id.to_string()).into())
    }

    /// Renames a container.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        let id = self.resolve(id)?;
        let new = name::validate(new_name)?;
        let old = self.get(&id)?;
        if old.name == new {
            return Err(ContainerError::Invalid(
                "Renaming a container with the same name as its current name".into(),
            )
            .into());
        }
        record::rename(&self.inner.state, &id, &new)?;
        let rec = self.get(&id)?;
        self.emit("rename", &rec, &[("oldName", format!("/{}", old.name))]);
        Ok(())
    }
}

/// Whether `path` is a mount point (listed in /proc/self/mountinfo).
pub(crate) fn is_mounted(path: &Path) -> bool {
    let p = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| {
            s.lines()
                .any(|l| l.split(' ').nth(4).is_some_and(|m| m == p))
        })
        .unwrap_or(false)
}
