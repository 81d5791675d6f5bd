//! Simulated node agents for control-plane benchmarks: a node joins like a real one (CA pinned
//! by the token, its own key and CSR, a certificate, mutual TLS) and keeps the session of
//! [`crate::swarm::dispatcher::proto`], but reports every assigned task RUNNING (or SHUTDOWN)
//! at once instead of starting containers. Thousands fit in one process.

use crate::swarm::ca::{self, KeyedCert};
use crate::swarm::dispatcher::client::{Failure, round_trip};
use crate::swarm::dispatcher::proto::{SESSION_PATH, SessionRequest, SessionResponse};
use crate::swarm::manager::join::{CA_PATH, JOIN_PATH, JoinRequest, JoinResponse};
use crate::swarm::state::{TaskStatusUpdate, observed_state, task_state_rank};
use crate::swarm::tls;
use bollard_stubs::models::{
    EngineDescription, NodeDescription, Platform, ResourceObject, TaskState, TaskStatus,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Pause after a failed round trip before the next manager is tried.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Pause after a redirect to the leader, as the real agent makes.
const REDIRECT_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Failures of a simulated join.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The manager could not be reached or answered badly.
    #[error("{what} at {addr}: {reason}")]
    Remote {
        /// The step.
        what: &'static str,
        /// The manager.
        addr: String,
        /// The cause.
        reason: String,
    },
    /// The CA does not match the token's pin.
    #[error("the CA served at {0} does not match the join token")]
    Pin(String),
    /// A bad token.
    #[error("invalid join token")]
    Token,
    /// Keys and CSRs.
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    /// TLS client setup.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A node that joined: its identity and what the manager answered.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The manager's answer (node ID, role, CA, managers).
    pub response: JoinResponse,
    /// The node's certificate and key.
    pub cert: KeyedCert,
}

/// A plausible description of a simulated node.
pub fn description(hostname: &str) -> NodeDescription {
    NodeDescription {
        hostname: Some(hostname.to_string()),
        platform: Some(Platform {
            architecture: Some(std::env::consts::ARCH.into()),
            os: Some("linux".into()),
        }),
        resources: Some(ResourceObject {
            nano_cpus: Some(4_000_000_000),
            memory_bytes: Some(8 << 30),
            generic_resources: None,
        }),
        engine: Some(EngineDescription {
            engine_version: Some("sim".into()),
            labels: None,
            plugins: None,
        }),
        tls_info: None,
    }
}

/// Joins through the manager at `addr` (`host:port`) with `token`, as `swarm join` does: the
/// CA is fetched without trust and checked against the token's digest before anything else.
pub async fn join(
    addr: &str,
    token: &str,
    advertise_addr: &str,
    description: NodeDescription,
) -> Result<Joined, SimError> {
    let parsed = ca::parse_token(token).map_err(|_| SimError::Token)?;
    let remote = |what: &'static str| {
        let addr = addr.to_string();
        move |e: reqwest::Error| SimError::Remote {
            what,
            addr,
            reason: e.to_string(),
        }
    };
    let ca_pem = tls::bootstrap_client()?
        .get(format!("https://{addr}{CA_PATH}"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(remote("fetching the CA"))?
        .text()
        .await
        .map_err(remote("reading the CA"))?;
    if !parsed.pins(&ca_pem) {
        return Err(SimError::Pin(addr.to_string()));
    }
    let (csr_pem, key_pem) = ca::new_csr()?;
    let req = JoinRequest {
        token: token.to_string(),
        csr_pem,
        advertise_addr: advertise_addr.to_string(),
        description,
        availability: None,
    };
    let resp = tls::client(&ca_pem, None)?
        .post(format!("https://{addr}{JOIN_PATH}"))
        .json(&req)
        .send()
        .await
        .map_err(remote("joining"))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(SimError::Remote {
            what: "joining",
            addr: addr.to_string(),
            reason: format!("{status}: {text}"),
        });
    }
    let response: JoinResponse = resp.json().await.map_err(remote("reading the join"))?;
    Ok(Joined {
        cert: KeyedCert {
            cert_pem: response.cert_pem.clone(),
            key_pem,
        },
        response,
    })
}

/// Counters shared by many simulated agents.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Session round trips answered.
    pub rounds: AtomicU64,
    /// Round trips that failed (timeouts, refused, errors other than "not the leader").
    pub failures: AtomicU64,
    /// Round trips sent to a manager that is not the leader.
    pub redirects: AtomicU64,
    /// Task status reports sent and acknowledged.
    pub reports: AtomicU64,
}

/// One simulated agent's session settings.
pub struct SimAgent {
    /// The node ID (the one in its certificate).
    pub node_id: String,
    /// Manager addresses, the leader first.
    pub managers: Vec<String>,
    /// A client presenting this node's certificate.
    pub http: reqwest::Client,
    /// Sent on the first request of every session.
    pub description: NodeDescription,
}

impl SimAgent {
    /// An agent for a node that joined.
    pub fn new(joined: &Joined, description: NodeDescription) -> Result<Self, SimError> {
        Ok(Self {
            node_id: joined.response.node_id.clone(),
            managers: joined.response.managers.clone(),
            http: tls::client(&joined.response.ca_pem, Some(&joined.cert))?,
            description,
        })
    }

    /// Keeps the session until `stop` turns true or the node is removed.
    pub async fn run(self, mut stop: watch::Receiver<bool>, stats: Arc<SimStats>) {
        let mut managers = self.managers.clone();
        let mut current = 0usize;
        let mut known_version = 0u64;
        let mut first = true;
        let mut pending: Vec<TaskStatusUpdate> = Vec::new();
        // Grows on consecutive redirects and failures (an election), as the real agent's does.
        let mut backoff = REDIRECT_PAUSE;
        while !*stop.borrow() {
            let Some(addr) = managers.get(current % managers.len().max(1)).cloned() else {
                return;
            };
            let req = SessionRequest {
                node_id: self.node_id.clone(),
                known_version,
                statuses: std::mem::take(&mut pending),
                description: first.then(|| self.description.clone()),
                ..Default::default()
            };
            let url = format!("https://{addr}{SESSION_PATH}");
            let outcome = tokio::select! {
                r = round_trip(&self.http, &url, &req) => r,
                _ = stop.changed() => return,
            };
            match outcome {
                Ok(resp) => {
                    stats.rounds.fetch_add(1, Ordering::Relaxed);
                    stats
                        .reports
                        .fetch_add(req.statuses.len() as u64, Ordering::Relaxed);
                    first = false;
                    backoff = REDIRECT_PAUSE;
                    if resp.removed {
                        return;
                    }
                    if !resp.managers.is_empty() && resp.managers != managers {
                        managers = resp.managers.clone();
                        current = managers.iter().position(|m| *m == addr).unwrap_or(0);
                    }
                    known_version = resp.version;
                    pending = self.reports(&resp);
                }
                Err(Failure::NotLeader(list)) => {
                    stats.redirects.fetch_add(1, Ordering::Relaxed);
                    if !list.is_empty() {
                        managers = list;
                        current = 0;
                    } else {
                        current += 1;
                    }
                    pending = req.statuses;
                    first = true;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_PAUSE);
                }
                Err(Failure::Other(e)) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(node = %self.node_id, manager = %addr, error = %e, "simulated session failed");
                    pending = req.statuses;
                    first = true;
                    current += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.max(RETRY_PAUSE)) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_PAUSE);
                }
            }
        }
    }

    /// What a real agent would report at once if starting and stopping took no time.
    fn reports(&self, resp: &SessionResponse) -> Vec<TaskStatusUpdate> {
        let now = crate::swarm::manager::now_rfc3339();
        resp.tasks
            .iter()
            .filter_map(|t| {
                let (target, message) = match t.desired_state? {
                    TaskState::RUNNING => (TaskState::RUNNING, "started"),
                    TaskState::SHUTDOWN | TaskState::REMOVE => (TaskState::SHUTDOWN, "shutdown"),
                    _ => return None,
                };
                if task_state_rank(observed_state(t)) >= task_state_rank(target) {
                    return None;
                }
                Some(TaskStatusUpdate {
                    id: t.id.clone()?,
                    node_id: self.node_id.clone(),
                    status: TaskStatus {
                        timestamp: Some(now.clone()),
                        state: Some(target),
                        message: Some(message.into()),
                        ..Default::default()
                    },
                })
            })
            .collect()
    }
}
