//! berthd's swarm side: the node's membership (certificates, role), the worker that runs the
//! tasks a manager assigns, and, on managers, the embedded manager.
//!
//! On disk, under `<root>/swarm/`: `node.json` (who this node is and where the managers are),
//! `ca.pem`, `node.pem`, `node-key.pem` (0600), and on managers the Raft database. A node
//! restarts into the role it had: berthd start resumes the manager and the worker session.

mod role;
pub mod worker;

use berth_orchestrator::swarm::ca::{self, KeyedCert, Role, RootCa};
use berth_orchestrator::swarm::ids;
use berth_orchestrator::swarm::manager::join::{CA_PATH, JOIN_PATH, JoinRequest, JoinResponse};
use berth_orchestrator::swarm::manager::ops::InitSpec;
use berth_orchestrator::swarm::manager::{Manager, ManagerConfig, ManagerError};
use berth_orchestrator::swarm::tls;
use bollard_stubs::models::{
    EngineDescription, LocalNodeState, NodeDescription, NodeSpecAvailabilityEnum, PeerNode,
    Platform, ResourceObject, SwarmInfo, SwarmSpec,
};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, watch};

/// Errors of swarm membership changes, with Docker's messages.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// `init`/`join` on a node that is already in a swarm.
    #[error(
        "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."
    )]
    AlreadyInSwarm,
    /// `leave` on a node that is not in a swarm.
    #[error("This node is not part of a swarm")]
    NotInSwarm,
    /// Leaving as the last manager without `--force`.
    #[error(
        "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message."
    )]
    LastManager,
    /// A bad address or request.
    #[error("{0}")]
    Invalid(String),
    /// The manager refused or failed.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// Certificates could not be made.
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    /// Talking to a remote manager failed.
    #[error("{0}")]
    Remote(String),
    /// Files under `<root>/swarm`.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl SwarmError {
    /// The HTTP status Docker answers with.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            SwarmError::AlreadyInSwarm | SwarmError::NotInSwarm => StatusCode::SERVICE_UNAVAILABLE,
            SwarmError::LastManager | SwarmError::Invalid(_) => StatusCode::BAD_REQUEST,
            SwarmError::Manager(e) => e.status(),
            SwarmError::Remote(_) => StatusCode::INTERNAL_SERVER_ERROR,
            SwarmError::Io { .. } | SwarmError::Ca(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Who this node is in its swarm; `node.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    node_id: String,
    cluster_id: String,
    role: Role,
    advertise_addr: String,
    listen_addr: SocketAddr,
    managers: Vec<String>,
}

struct Member {
    saved: Saved,
    ca: String,
    cert: KeyedCert,
    manager: Option<Manager>,
    worker_stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
    /// What the managers say this node's role should be (fed by the worker's session).
    role_tx: watch::Sender<Option<worker::RoleSignal>>,
    /// Converges the role on [`Member::role_tx`]'s signal.
    role_watcher: tokio::task::JoinHandle<()>,
}

/// The node's swarm membership; one per daemon, cheap to clone (the role watcher holds one).
#[derive(Clone)]
pub struct SwarmNode(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    /// The engine's networks, where overlay networks get their kernel side.
    networks: berth_engine::network::NetworkService,
    socket: OnceLock<PathBuf>,
    member: Mutex<Option<Member>>,
    /// The `Swarm` header of `/_ping`, readable without waiting for `member`.
    header: std::sync::Mutex<&'static str>,
}

impl std::fmt::Debug for SwarmNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmNode")
            .field("dir", &self.0.dir)
            .finish()
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SwarmError + 'a {
    move |source| SwarmError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes atomically (temp + fsync + rename) with `mode`.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), SwarmError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    std::io::Write::write_all(&mut f, data).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("sync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename", path))
}

/// The address used to reach the rest of the world: the source address of the default route.
/// UDP connect sends nothing; it only asks the kernel for a route.
fn default_route_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// `--listen-addr` forms: `ip`, `ip:port`, `:port`, with 0.0.0.0:2377 as the default.
fn parse_listen(s: &str) -> Result<SocketAddr, SwarmError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], 2377)));
    }
    let full = if let Some(port) = s.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else if s.parse::<IpAddr>().is_ok() {
        format!("{s}:2377")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| SwarmError::Invalid(format!("invalid listen address {s:?}")))
}

/// The advertised `ip:port`: given, or the listen IP, or the default route's source address.
fn advertise(given: Option<&str>, listen: SocketAddr) -> Result<String, SwarmError> {
    let port = listen.port();
    if let Some(a) = given.map(str::trim).filter(|a| !a.is_empty()) {
        if let Ok(ip) = a.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port).to_string());
        }
        if let Ok(sa) = a.parse::<SocketAddr>() {
            return Ok(sa.to_string());
        }
        return Err(SwarmError::Invalid(format!(
            "advertise address must be a non-zero IP address or network interface (with optional port number): {a}"
        )));
    }
    if !listen.ip().is_unspecified() {
        return Ok(listen.to_string());
    }
    match default_route_ip() {
        Some(ip) => Ok(SocketAddr::new(ip, port).to_string()),
        None => Err(SwarmError::Invalid(
            "could not find the system's IP address - specify one with --advertise-addr".into(),
        )),
    }
}

fn addr_ip(addr: &str) -> Option<IpAddr> {
    addr.parse::<SocketAddr>().ok().map(|a| a.ip())
}

impl SwarmNode {
    /// The membership kept under `root/swarm`; nothing runs until [`SwarmNode::resume`].
    pub fn open(root: &Path, networks: berth_engine::network::NetworkService) -> Self {
        Self(Arc::new(Inner {
            dir: root.join("swarm"),
            networks,
            socket: OnceLock::new(),
            member: Mutex::new(None),
            header: std::sync::Mutex::new("inactive"),
        }))
    }

    /// The tmpfs of the tasks' secret and config files.
    fn files_dir(&self) -> PathBuf {
        self.0.dir.join("task-files")
    }

    fn description(&self) -> NodeDescription {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        NodeDescription {
            hostname: Some(hostname),
            platform: Some(Platform {
                architecture: Some(std::env::consts::ARCH.into()),
                os: Some("linux".into()),
            }),
            resources: Some(ResourceObject {
                nano_cpus: Some(cpus * 1_000_000_000),
                memory_bytes: Some(mem),
                generic_resources: None,
            }),
            engine: Some(EngineDescription {
                engine_version: Some(crate::api::VERSION.into()),
                labels: None,
                plugins: None,
            }),
            tls_info: None,
        }
    }

    fn load(&self) -> Option<(Saved, String, KeyedCert)> {
        let saved: Saved =
            serde_json::from_slice(&std::fs::read(self.0.dir.join("node.json")).ok()?).ok()?;
        let ca = std::fs::read_to_string(self.0.dir.join("ca.pem")).ok()?;
        let cert = KeyedCert {
            cert_pem: std::fs::read_to_string(self.0.dir.join("node.pem")).ok()?,
            key_pem: std::fs::read_to_string(self.0.dir.join("node-key.pem")).ok()?,
        };
        Some((saved, ca, cert))
    }

    fn save(&self, saved: &Saved, ca: &str, cert: &KeyedCert) -> Result<(), SwarmError> {
        std::fs::create_dir_all(&self.0.dir).map_err(io_err("create", &self.0.dir))?;
        write_file(&self.0.dir.join("ca.pem"), ca.as_bytes(), 0o644)?;
        write_file(
            &self.0.dir.join("node.pem"),
            cert.cert_pem.as_bytes(),
            0o644,
        )?;
        write_file(
            &self.0.dir.join("node-key.pem"),
            cert.key_pem.as_bytes(),
            0o600,
        )?;
        // node.json last: its presence means the rest is complete.
        let json = serde_json::to_vec_pretty(saved).unwrap_or_default();
        write_file(&self.0.dir.join("node.json"), &json, 0o600)
    }

    /// Restarts the role this node had before berthd stopped; `socket` is berthd's own API
    /// socket, which the worker drives.
    pub async fn resume(&self, socket: PathBuf) {
        let _ = self.0.socket.set(socket);
        let Some((saved, ca, cert)) = self.load() else {
            return;
        };
        match self.start(saved, ca, cert).await {
            Ok(member) => *self.0.member.lock().await = Some(member),
            Err(e) => tracing::error!(error = %e, "resuming swarm membership failed"),
        }
    }

    fn set_header(&self, role: Option<Role>) {
        if let Ok(mut h) = self.0.header.lock() {
            *h = match role {
                Some(Role::Manager) => "active/manager",
                Some(Role::Worker) => "active/worker",
                None => "inactive",
            };
        }
    }

    /// The `Swarm` header of `/_ping`: `inactive`, `active/worker` or `active/manager`.
    pub fn ping_header(&self) -> &'static str {
        self.0.header.lock().map(|h| *h).unwrap_or("inactive")
    }

    async fn start(&self, saved: Saved, ca: String, cert: KeyedCert) -> Result<Member, SwarmError> {
        let manager = if saved.role == Role::Manager {
            Some(
                Manager::start(ManagerConfig {
                    dir: self.0.dir.clone(),
                    node_id: saved.node_id.clone(),
                    advertise_addr: saved.advertise_addr.clone(),
                    listen_addr: saved.listen_addr,
                    ca_pem: ca.clone(),
                    cert: cert.clone(),
                })
                .await?,
            )
        } else {
            None
        };
        let (worker_stop, stop_rx) = watch::channel(false);
        let (role_tx, role_rx) = watch::channel(None);
        let worker = self.start_worker(&saved, &ca, &cert, stop_rx, role_tx.clone())?;
        let role_watcher = tokio::spawn(self.clone().watch_role(role_rx));
        self.set_header(Some(saved.role));
        Ok(Member {
            saved,
            ca,
            cert,
            manager,
            worker_stop,
            worker,
            role_tx,
            role_watcher,
        })
    }

    fn start_worker(
        &self,
        saved: &Saved,
        ca: &str,
        cert: &KeyedCert,
        stop: watch::Receiver<bool>,
        role: watch::Sender<Option<worker::RoleSignal>>,
    ) -> Result<tokio::task::JoinHandle<()>, SwarmError> {
        let socket = self
            .0
            .socket
            .get()
            .cloned()
            .ok_or_else(|| SwarmError::Invalid("the daemon has no local API socket".into()))?;
        let client = berth_client::Client::new(berth_client::Host::Unix(socket), None)
            .map_err(|e| SwarmError::Invalid(e.to_string()))?;
        let http = tls::client(ca, Some(cert)).map_err(ManagerError::from)?;
        let executor = worker::Executor::new(client, saved.node_id.clone(), self.files_dir())
            .with_networks(self.0.networks.clone());
        let cfg = worker::SessionConfig {
            node_id: saved.node_id.clone(),
            managers: saved.managers.clone(),
            http,
            scheme: "https".into(),
            description: self.description(),
            role: Some(role),
        };
        Ok(tokio::spawn(worker::run(cfg, executor, stop)))
    }

    /// The embedded manager, when this node is one.
    pub async fn manager(&self) -> Option<Manager> {
        self.0.member.lock().await.as_ref()?.manager.clone()
    }

    /// This node's ID, when it is in a swarm.
    pub async fn node_id(&self) -> Option<String> {
        Some(self.0.member.lock().await.as_ref()?.saved.node_id.clone())
    }

    /// `swarm init`.
    pub async fn init(
        &self,
        listen_addr: Option<&str>,
        advertise_addr: Option<&str>,
        availability: Option<NodeSpecAvailabilityEnum>,
        spec: SwarmSpec,
    ) -> Result<String, SwarmError> {
        let mut member = self.0.member.lock().await;
        if member.is_some() {
            return Err(SwarmError::AlreadyInSwarm);
        }
        let listen = parse_listen(listen_addr.unwrap_or_default())?;
        let advertise = advertise(advertise_addr, listen)?;
        let node_id = ids::new_id();
        let cluster_id = ids::new_id();
        let root = RootCa::generate(&cluster_id)?;
        let ip = addr_ip(&advertise).into_iter().collect::<Vec<_>>();
        let cert = root.issue(&node_id, Role::Manager, &cluster_id, &ip)?;
        let saved = Saved {
            node_id: node_id.clone(),
            cluster_id: cluster_id.clone(),
            role: Role::Manager,
            advertise_addr: advertise.clone(),
            listen_addr: listen,
            managers: vec![advertise.clone()],
        };
        // The Raft database of an earlier swarm this node left must not leak into this one.
        let _ = std::fs::remove_dir_all(&self.0.dir);
        self.save(&saved, &root.cert_pem, &cert)?;
        let started = self.start(saved, root.cert_pem.clone(), cert).await;
        let started = match started {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&self.0.dir);
                return Err(e);
            }
        };
        let manager = started.manager.clone();
        *member = Some(started);
        if let Some(m) = manager {
            let init = InitSpec {
                cluster_id,
                ca: root,
                spec,
                description: self.description(),
                availability,
                addr: addr_ip(&advertise)
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
            };
            if let Err(e) = m.init_cluster(init).await {
                if let Some(mem) = member.take() {
                    stop_member(mem).await;
                }
                self.set_header(None);
                let _ = std::fs::remove_dir_all(&self.0.dir);
                return Err(e.into());
            }
        }
        Ok(node_id)
    }

    /// `swarm join`: pins the CA from the token, gets a certificate, starts the role.
    pub async fn join(
        &self,
        remotes: &[String],
        token: &str,
        listen_addr: Option<&str>,
        advertise_addr: Option<&str>,
        availability: Option<NodeSpecAvailabilityEnum>,
    ) -> Result<(), SwarmError> {
        let mut member = self.0.member.lock().await;
        if member.is_some() {
            return Err(SwarmError::AlreadyInSwarm);
        }
        let parsed =
            ca::parse_token(token).map_err(|_| SwarmError::Invalid("invalid join token".into()))?;
        let remote = remotes.first().ok_or_else(|| {
            SwarmError::Invalid("at least 1 RemoteAddr is required to join".into())
        })?;
        let remote = if remote.contains(':') {
            remote.clone()
        } else {
            format!("{remote}:2377")
        };
        let listen = parse_listen(listen_addr.unwrap_or_default())?;
        // Pin the CA before trusting anything the manager says.
        let boot = tls::bootstrap_client().map_err(ManagerError::from)?;
        let ca_pem = boot
            .get(format!("https://{remote}{CA_PATH}"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                SwarmError::Remote(format!("could not reach the manager at {remote}: {e}"))
            })?
            .text()
            .await
            .map_err(|e| SwarmError::Remote(e.to_string()))?;
        if !parsed.pins(&ca_pem) {
            return Err(SwarmError::Invalid(
                "remote CA does not match fingerprint. Expected: the join token's CA digest".into(),
            ));
        }
        let (csr_pem, key_pem) = ca::new_csr()?;
        // Which local address reaches the manager: the kernel's route answers without traffic.
        let local_ip = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| {
                s.connect(&remote)?;
                s.local_addr()
            })
            .map(|a| a.ip())
            .ok();
        let advertise = match advertise_addr.filter(|a| !a.trim().is_empty()) {
            Some(a) => advertise(Some(a), listen)?,
            None if !listen.ip().is_unspecified() => listen.to_string(),
            None => local_ip
                .map(|ip| SocketAddr::new(ip, listen.port()).to_string())
                .ok_or_else(|| {
                    SwarmError::Invalid("could not choose an address to advertise".into())
                })?,
        };
        let req = JoinRequest {
            token: token.to_string(),
            csr_pem,
            advertise_addr: advertise.clone(),
            description: self.description(),
            availability,
        };
        let client = tls::client(&ca_pem, None).map_err(ManagerError::from)?;
        let resp = client
            .post(format!("https://{remote}{JOIN_PATH}"))
            .json(&req)
            .send()
            .await
            .map_err(|e| SwarmError::Remote(format!("join {remote}: {e}")))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let msg = body["message"]
                .as_str()
                .unwrap_or("join refused")
                .to_string();
            return Err(if status.is_client_error() {
                SwarmError::Invalid(msg)
            } else {
                SwarmError::Remote(msg)
            });
        }
        let joined: JoinResponse = resp
            .json()
            .await
            .map_err(|e| SwarmError::Remote(format!("join answer: {e}")))?;
        let cert = KeyedCert {
            cert_pem: joined.cert_pem,
            key_pem,
        };
        let saved = Saved {
            node_id: joined.node_id,
            cluster_id: joined.cluster_id,
            role: joined.role,
            advertise_addr: advertise,
            listen_addr: listen,
            managers: if joined.managers.is_empty() {
                vec![remote]
            } else {
                joined.managers
            },
        };
        let _ = std::fs::remove_dir_all(&self.0.dir);
        self.save(&saved, &joined.ca_pem, &cert)?;
        match self.start(saved, joined.ca_pem, cert).await {
            Ok(m) => {
                *member = Some(m);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&self.0.dir);
                Err(e)
            }
        }
    }

    /// `swarm leave`: stops the worker and manager; task containers are removed by the worker
    /// when the manager drops the node, or here when forced.
    pub async fn leave(&self, force: bool) -> Result<(), SwarmError> {
        let mut member = self.0.member.lock().await;
        let Some(m) = member.as_ref() else {
            return Err(SwarmError::NotInSwarm);
        };
        if let Some(manager) = &m.manager {
            let voters = manager.store().members().iter().filter(|x| x.voter).count();
            if !force {
                return Err(if voters <= 1 {
                    SwarmError::LastManager
                } else {
                    SwarmError::Invalid(
                        "You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves the remaining managers able to tolerate fewer failures. Demote it first, or use `--force` to ignore this message.".into(),
                    )
                });
            }
            if voters > 1 {
                let raft_id =
                    berth_orchestrator::swarm::manager::join::raft_id_of(&m.saved.node_id);
                if let Err(e) = manager.store().remove_manager(raft_id).await {
                    tracing::warn!(error = %e, "removing this manager from Raft failed");
                }
            }
        } else if let Some(addr) = m.saved.managers.first() {
            // A worker cannot remove itself from the store; the managers mark it down and an
            // operator removes it with `node rm`, as with Docker.
            tracing::info!(manager = %addr, "leaving the swarm");
        }
        let node_id = m.saved.node_id.clone();
        if let Some(m) = member.take() {
            stop_member(m).await;
        }
        // The engine API below may ask about the swarm state: not under this lock.
        drop(member);
        // As Docker does: a node that left runs no task containers and keeps no swarm
        // networks (a manager would never tell it to stop them).
        if let Some(socket) = self.0.socket.get().cloned() {
            match berth_client::Client::new(berth_client::Host::Unix(socket), None) {
                Ok(client) => {
                    worker::Executor::new(client, node_id, self.files_dir())
                        .with_networks(self.0.networks.clone())
                        .remove_all()
                        .await
                }
                Err(e) => tracing::warn!(error = %e, "leaving: no engine client to remove tasks"),
            }
        }
        self.set_header(None);
        let _ = std::fs::remove_dir_all(&self.0.dir);
        Ok(())
    }

    /// The `Swarm` part of `/info`.
    pub async fn info(&self) -> SwarmInfo {
        let member = self.0.member.lock().await;
        let Some(m) = member.as_ref() else {
            return SwarmInfo {
                node_id: Some(String::new()),
                node_addr: Some(String::new()),
                local_node_state: Some(LocalNodeState::INACTIVE),
                control_available: Some(false),
                error: Some(String::new()),
                remote_managers: None,
                ..Default::default()
            };
        };
        let mut info = SwarmInfo {
            node_id: Some(m.saved.node_id.clone()),
            node_addr: addr_ip(&m.saved.advertise_addr).map(|i| i.to_string()),
            local_node_state: Some(LocalNodeState::ACTIVE),
            control_available: Some(m.manager.is_some()),
            error: Some(String::new()),
            remote_managers: Some(
                m.saved
                    .managers
                    .iter()
                    .map(|a| PeerNode {
                        node_id: None,
                        addr: Some(a.clone()),
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        if let Some(manager) = &m.manager {
            let voters: Vec<_> = manager
                .store()
                .members()
                .into_iter()
                .filter(|x| x.voter)
                .collect();
            info.managers = Some(voters.len() as i64);
            info.nodes = Some(manager.store().read(|s| s.nodes.len() as i64));
            info.remote_managers = Some(
                voters
                    .into_iter()
                    .map(|v| PeerNode {
                        node_id: Some(v.peer.node_id),
                        addr: Some(v.peer.addr),
                    })
                    .collect(),
            );
            info.cluster = manager.cluster_info();
        }
        info
    }

    /// Stops the manager and worker loops (containers keep running), for daemon shutdown.
    pub async fn shutdown(&self) {
        if let Some(m) = self.0.member.lock().await.take() {
            stop_member(m).await;
        }
    }
}

async fn stop_member(m: Member) {
    m.role_watcher.abort();
    let _ = m.worker_stop.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), m.worker).await;
    if let Some(manager) = m.manager {
        manager.shutdown().await;
    }
}
