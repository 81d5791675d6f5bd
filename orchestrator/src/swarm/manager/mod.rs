//! A manager: the Raft store, the cluster port, and on the leader the control loop that turns
//! services into tasks, places them and watches node heartbeats.

mod control;
mod dispatch;
pub mod join;
pub mod listener;
pub mod logs;
pub mod ops;
pub mod roles;
mod secrets;

pub use secrets::{DATA_KEY_PATH, NewData};

use crate::swarm::ca::{self, KeyedCert};
use crate::swarm::raft::{ClusterStore, MAX_WEIGHT, RaftError, RaftPeer, StoreConfig};
use crate::swarm::state::{Command, Outcome, Request};
use crate::swarm::tls;
use axum::Router;
use axum::extract::{Extension, Json};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use listener::Peer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// Errors of manager operations, mapped to Docker's HTTP statuses by the API layer.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// `swarm init` has not happened (or the store has not caught up yet).
    #[error(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    )]
    NotInitialised,
    /// A join token that does not match the cluster.
    #[error(
        "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"
    )]
    InvalidToken,
    /// The store could not commit (no leader, no quorum) or could not be opened.
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// The state machine refused the change.
    #[error("{}", outcome_message(.0))]
    Refused(Outcome),
    /// Certificates.
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    /// TLS setup.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The cluster port could not be bound.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A request that makes no sense.
    #[error("{0}")]
    Invalid(String),
    /// An object that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The cluster cannot serve this right now (no leader, the leader unreachable).
    #[error("{0}")]
    Unavailable(String),
}

fn outcome_message(o: &Outcome) -> String {
    match o {
        Outcome::Done => "done".into(),
        Outcome::Conflict(m) | Outcome::NotFound(m) | Outcome::Invalid(m) => m.clone(),
        Outcome::Batch(all) => all
            .iter()
            .filter(|o| **o != Outcome::Done)
            .map(outcome_message)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

impl ManagerError {
    /// The HTTP status Docker answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ManagerError::NotInitialised | ManagerError::Raft(_) | ManagerError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ManagerError::InvalidToken | ManagerError::Invalid(_) => StatusCode::BAD_REQUEST,
            ManagerError::Refused(Outcome::NotFound(_)) | ManagerError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ManagerError::Refused(Outcome::Conflict(_)) => StatusCode::CONFLICT,
            ManagerError::Refused(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ManagerError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}

/// Where and how a manager runs.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// `<root>/swarm`: the Raft database lives here.
    pub dir: PathBuf,
    /// This node's ID.
    pub node_id: String,
    /// Address other nodes reach this manager at (`ip:port`).
    pub advertise_addr: String,
    /// Address to bind the cluster port to.
    pub listen_addr: SocketAddr,
    /// The cluster CA certificate.
    pub ca_pem: String,
    /// This node's certificate and key.
    pub cert: KeyedCert,
}

/// A running manager; cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("node_id", &self.inner.cfg.node_id)
            .finish()
    }
}

struct Inner {
    cfg: ManagerConfig,
    store: ClusterStore,
    /// Last session request per node, known only to the manager that served it.
    heartbeats: Mutex<HashMap<String, Instant>>,
    /// Every node's assignments at one applied index, shared by all sessions.
    assignments: Mutex<(
        u64,
        Arc<HashMap<String, crate::swarm::dispatcher::proto::SessionResponse>>,
    )>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    local_addr: SocketAddr,
    /// Mutual-TLS client for requests to other managers.
    http: reqwest::Client,
    /// Open log subscriptions (on the leader).
    logs: logs::LogBroker,
    /// The cluster's data key, once this manager has it.
    data_key: Mutex<Option<Arc<crate::swarm::secrets::DataKey>>>,
}

/// RFC 3339 now, for the timestamps carried in commands.
pub fn now_rfc3339() -> String {
    crate::swarm::reconcile::clock::format(std::time::SystemTime::now())
}

impl Manager {
    /// Opens the store, binds the cluster port and starts the control loop.
    pub async fn start(cfg: ManagerConfig) -> Result<Self, ManagerError> {
        let http = tls::client(&cfg.ca_pem, Some(&cfg.cert))?;
        let store = ClusterStore::open(StoreConfig {
            dir: cfg.dir.clone(),
            raft_id: join::raft_id_of(&cfg.node_id),
            peer: RaftPeer {
                addr: cfg.advertise_addr.clone(),
                node_id: cfg.node_id.clone(),
            },
            client: http.clone(),
            scheme: "https".into(),
        })
        .await?;
        let listener = tokio::net::TcpListener::bind(cfg.listen_addr)
            .await
            .map_err(|source| ManagerError::Listen {
                addr: cfg.listen_addr,
                source,
            })?;
        let local_addr = listener.local_addr().unwrap_or(cfg.listen_addr);
        let server_tls = tls::server_config(&cfg.ca_pem, &cfg.cert)?;
        let data_key = crate::swarm::secrets::DataKey::load(&cfg.dir)
            .map_err(|e| ManagerError::Unavailable(e.to_string()))?
            .map(Arc::new);
        let (tx, rx) = watch::channel(false);
        let manager = Manager {
            inner: Arc::new(Inner {
                cfg,
                store,
                heartbeats: Mutex::default(),
                assignments: Mutex::new((u64::MAX, Arc::default())),
                shutdown: tx,
                tasks: Mutex::default(),
                local_addr,
                http,
                logs: logs::LogBroker::default(),
                data_key: Mutex::new(data_key),
            }),
        };
        let router = manager.cluster_router();
        manager.spawn(listener::serve(listener, server_tls, router, rx));
        let m = manager.clone();
        manager.spawn(async move { control::run(m).await });
        manager.spawn(manager.clone().fetch_data_key_loop());
        Ok(manager)
    }

    /// The replicated store.
    pub fn store(&self) -> &ClusterStore {
        &self.inner.store
    }

    /// This node's ID.
    pub fn node_id(&self) -> &str {
        &self.inner.cfg.node_id
    }

    /// The bound cluster address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The address other nodes use for this manager.
    pub fn advertise_addr(&self) -> &str {
        &self.inner.cfg.advertise_addr
    }

    /// Commits `command` with the current time.
    pub async fn write(&self, command: Command) -> Result<Outcome, ManagerError> {
        Ok(self
            .inner
            .store
            .write(Request {
                at: now_rfc3339(),
                command,
            })
            .await?)
    }

    /// Commits `commands` in order, in as few log entries as [`MAX_WEIGHT`] allows; stops at
    /// the first entry that fails and returns the outcomes of those committed.
    pub async fn write_all(&self, commands: Vec<Command>) -> Result<Vec<Outcome>, ManagerError> {
        let at = now_rfc3339();
        let mut out = Vec::with_capacity(commands.len());
        let mut chunk = Vec::new();
        let mut weight = 0;
        let mut commands = commands.into_iter().peekable();
        while let Some(command) = commands.next() {
            weight += command.weight();
            chunk.push(Request {
                at: at.clone(),
                command,
            });
            let full = commands
                .peek()
                .is_none_or(|next| weight + next.weight() > MAX_WEIGHT);
            if full {
                out.extend(
                    self.inner
                        .store
                        .write_all(std::mem::take(&mut chunk))
                        .await?,
                );
                weight = 0;
            }
        }
        Ok(out)
    }

    /// Commits `command` and turns a refusal into an error.
    pub async fn write_ok(&self, command: Command) -> Result<(), ManagerError> {
        match self.write(command).await? {
            Outcome::Done => Ok(()),
            other => Err(ManagerError::Refused(other)),
        }
    }

    /// Runs `fut` until the manager shuts down.
    pub(crate) fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Ok(mut t) = self.inner.tasks.lock() {
            t.spawn(fut);
        }
    }

    /// Manager addresses, the leader first.
    pub fn manager_addrs(&self) -> Vec<String> {
        let leader = self.inner.store.leader().map(|(_, p)| p.addr);
        let mut out: Vec<String> = leader.iter().cloned().collect();
        for m in self.inner.store.members() {
            if m.voter && Some(&m.peer.addr) != leader.as_ref() {
                out.push(m.peer.addr);
            }
        }
        out
    }

    /// A receiver that turns true when the manager shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Stops the control loop, the listener and the store.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        // `.ok()` at once: a poisoned lock's error holds the guard, which must not live across
        // the awaits below.
        let tasks = self
            .inner
            .tasks
            .lock()
            .ok()
            .map(|mut t| std::mem::take(&mut *t));
        if let Some(mut t) = tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while t.join_next().await.is_some() {}
            })
            .await;
            t.abort_all();
        }
        self.inner.store.shutdown().await;
    }

    fn cluster_router(&self) -> Router {
        let open = Router::new()
            .route(join::CA_PATH, get(ca_cert))
            .route(join::JOIN_PATH, post(join_node));
        let nodes = Router::new()
            .route(
                crate::swarm::dispatcher::proto::SESSION_PATH,
                post(dispatch::session),
            )
            .route(roles::RENEW_PATH, post(roles::renew))
            .route(roles::MEMBERS_PATH, post(roles::add_member))
            .route(
                &format!("{}/{{id}}", crate::swarm::dispatcher::logs::PUBLISH_PATH),
                post(logs::publish),
            );
        let raft = self
            .inner
            .store
            .router()
            .route(
                crate::swarm::dispatcher::logs::SUBSCRIBE_PATH,
                post(logs::subscribe),
            )
            .route(DATA_KEY_PATH, get(secrets::serve_data_key));
        let m = self.clone();
        let require_manager = axum::middleware::from_fn(move |req, next| {
            let m = m.clone();
            async move { authorize(m, true, req, next).await }
        });
        let m = self.clone();
        let require_node = axum::middleware::from_fn(move |req, next| {
            let m = m.clone();
            async move { authorize(m, false, req, next).await }
        });
        open.merge(nodes.layer(require_node))
            .merge(raft.layer(require_manager))
            .layer(Extension(self.clone()))
    }
}

/// Lets a request through only with a certificate of this cluster naming a current node
/// (and a manager, for Raft).
async fn authorize(
    m: Manager,
    managers_only: bool,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(id) = req
        .extensions()
        .get::<Peer>()
        .and_then(|p| p.identity.clone())
    else {
        return (StatusCode::UNAUTHORIZED, "a node certificate is required").into_response();
    };
    let (cluster, known, spec_role) = m.store().read(|s| {
        let node = s.nodes.get(&id.node_id);
        (
            s.cluster.as_ref().map(|c| c.id.clone()),
            node.is_some(),
            node.map(|n| roles::role_of(n.spec.as_ref().and_then(|sp| sp.role))),
        )
    });
    // Before the first entries replicate, a new manager knows no cluster: let Raft through.
    let cluster_ok = cluster.as_ref().is_none_or(|c| *c == id.cluster_id);
    if !cluster_ok || (cluster.is_some() && !known && !managers_only) {
        return (StatusCode::FORBIDDEN, "node is not a member of this swarm").into_response();
    }
    // A demoted manager keeps its old certificate until it renews it: its spec decides.
    if managers_only && (id.role != ca::Role::Manager || spec_role == Some(ca::Role::Worker)) {
        return (StatusCode::FORBIDDEN, "only managers take part in Raft").into_response();
    }
    next.run(req).await
}

async fn ca_cert(Extension(m): Extension<Manager>) -> Response {
    match m
        .store()
        .read(|s| s.cluster.as_ref().map(|c| c.ca_cert_pem.clone()))
    {
        Some(pem) => pem.into_response(),
        None => ManagerError::NotInitialised.into_response(),
    }
}

async fn join_node(
    Extension(m): Extension<Manager>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<join::JoinRequest>,
) -> Response {
    match m.join(req, peer.addr.ip()).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Resolves once `rx` turns true (or its sender is gone); holds no borrow across awaits.
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
