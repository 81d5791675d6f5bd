//! The agent's session with the managers: one long-poll request after another carrying
//! heartbeats and task statuses, answered with the node's assignments; failover to the next
//! manager when one fails. Converging runs beside it, so a slow pull never delays a heartbeat.

use super::executor::Executor;
use berth_orchestrator::swarm::ca::Role;
use berth_orchestrator::swarm::dispatcher::client::{Failure, round_trip};
use berth_orchestrator::swarm::dispatcher::proto::{SESSION_PATH, SessionRequest};
use berth_orchestrator::swarm::state::TaskStatusUpdate;
use bollard_stubs::models::{Network, NodeDescription, Task};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How often containers are looked at when assignments do not change (to notice exits).
const CONVERGE_PERIOD: Duration = Duration::from_secs(1);
/// The longest pause between attempts after a failure, so failover stays quick.
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// The first pause after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// What the session needs to reach the managers.
pub struct SessionConfig {
    /// This node's ID (the one in its certificate).
    pub node_id: String,
    /// Manager addresses (`host:port`), tried in turn.
    pub managers: Vec<String>,
    /// The HTTP client (mutual TLS with the node certificate).
    pub http: reqwest::Client,
    /// `https` (or `http` in tests).
    pub scheme: String,
    /// Sent on the first request of each session.
    pub description: NodeDescription,
    /// Receives the role the managers want this node to have, when it is told.
    pub role: Option<watch::Sender<Option<RoleSignal>>>,
}

/// What the managers say about this node's role, for the node to converge on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSignal {
    /// The role the node spec asks for.
    pub role: Role,
    /// Whether the node is a Raft voter.
    pub raft_member: bool,
    /// The managers' addresses.
    pub managers: Vec<String>,
}

/// The tasks and networks of the newest answer.
type Assignment = Arc<(
    Vec<Task>,
    Vec<Network>,
    super::files::DataSet,
    super::executor::OverlayAssignment,
)>;

/// Statuses not yet acknowledged by a manager, newest per task.
#[derive(Default)]
struct Pending {
    statuses: Mutex<BTreeMap<String, TaskStatusUpdate>>,
    /// Woken when a converge round produced statuses.
    fresh: Notify,
}

impl Pending {
    fn add(&self, updates: Vec<TaskStatusUpdate>) {
        if updates.is_empty() {
            return;
        }
        if let Ok(mut m) = self.statuses.lock() {
            for u in updates {
                m.insert(u.id.clone(), u);
            }
        }
        self.fresh.notify_one();
    }

    fn snapshot(&self) -> Vec<TaskStatusUpdate> {
        self.statuses
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets what a manager accepted, unless a newer status replaced it meanwhile.
    fn ack(&self, sent: &[TaskStatusUpdate]) {
        if let Ok(mut m) = self.statuses.lock() {
            for s in sent {
                if m.get(&s.id) == Some(s) {
                    m.remove(&s.id);
                }
            }
        }
    }
}

/// Keeps the session until `shutdown` turns true or the node is removed from the swarm (then
/// every task container is stopped and removed first). Task containers keep running while no
/// manager answers.
pub async fn run(cfg: SessionConfig, executor: Executor, mut shutdown: watch::Receiver<bool>) {
    let executor = Arc::new(executor);
    let pending = Arc::new(Pending::default());
    let (assign_tx, assign_rx) = watch::channel::<Option<Assignment>>(None);
    let converger = tokio::spawn(converge_loop(
        executor.clone(),
        assign_rx,
        pending.clone(),
        shutdown.clone(),
    ));

    let publisher = super::logs::Publisher {
        engine: executor.client().clone(),
        node_id: cfg.node_id.clone(),
        http: cfg.http.clone(),
        scheme: cfg.scheme.clone(),
    };
    let mut log_subs = super::logs::Subscriptions::default();
    let mut managers = cfg.managers.clone();
    let mut current = 0usize;
    let mut known_version = 0u64;
    let mut send_description = true;
    let mut backoff = MIN_BACKOFF;
    let mut removed = false;
    while !*shutdown.borrow() {
        if managers.is_empty() {
            tracing::warn!("swarm worker: no manager address known");
            if wait_or_shutdown(&mut shutdown, MAX_BACKOFF).await {
                break;
            }
            managers = cfg.managers.clone();
            continue;
        }
        let addr = managers[current % managers.len()].clone();
        let statuses = pending.snapshot();
        let req = SessionRequest {
            node_id: cfg.node_id.clone(),
            known_version,
            statuses: statuses.clone(),
            description: send_description.then(|| cfg.description.clone()),
            log_subscriptions: log_subs.ids(),
        };
        let url = format!("{}://{addr}{SESSION_PATH}", cfg.scheme);
        let outcome = tokio::select! {
            r = round_trip(&cfg.http, &url, &req) => Some(r),
            // New statuses while the manager holds the request: send them now rather than
            // after the heartbeat period. Reports are idempotent, so an abandoned request
            // that was already applied does no harm.
            _ = pending.fresh.notified(), if req.statuses.is_empty() => None,
            _ = shutdown.changed() => break,
        };
        let Some(outcome) = outcome else { continue };
        match outcome {
            Ok(resp) => {
                pending.ack(&statuses);
                send_description = false;
                backoff = MIN_BACKOFF;
                if !resp.managers.is_empty() && resp.managers != managers {
                    let addr_now = addr.clone();
                    managers = resp.managers.clone();
                    current = managers.iter().position(|m| *m == addr_now).unwrap_or(0);
                }
                if resp.removed {
                    tracing::info!("swarm worker: this node was removed from the swarm");
                    removed = true;
                    break;
                }
                if let (Some(tx), Some(role)) = (&cfg.role, resp.role) {
                    let signal = RoleSignal {
                        role,
                        raft_member: resp.raft_member,
                        managers: resp.managers.clone(),
                    };
                    tx.send_if_modified(|cur| {
                        let changed = cur.as_ref() != Some(&signal);
                        *cur = Some(signal);
                        changed
                    });
                }
                log_subs.update(&resp.log_subscriptions, &publisher, &addr);
                if resp.version != known_version || assign_tx.borrow().is_none() {
                    known_version = resp.version;
                    let data = super::files::decode(&resp.data);
                    let overlay = super::executor::OverlayAssignment {
                        views: resp.overlay,
                        addresses: resp.addresses,
                        ingress_addr: resp.ingress_addr,
                    };
                    let _ =
                        assign_tx.send(Some(Arc::new((resp.tasks, resp.networks, data, overlay))));
                }
            }
            Err(Failure::NotLeader(list)) => {
                tracing::debug!(manager = %addr, "swarm worker: not the leader");
                if !list.is_empty() {
                    managers = list;
                }
                current = next_index(current, &managers, &addr);
                send_description = true;
                // Repeated redirects mean an election is running: back off as on failures,
                // so a thousand agents do not hammer the managers meanwhile.
                if wait_or_shutdown(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(Failure::Other(e)) => {
                tracing::warn!(manager = %addr, error = %e, "swarm worker: session failed");
                current = next_index(current, &managers, &addr);
                send_description = true;
                if wait_or_shutdown(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    log_subs.clear();
    converger.abort();
    let _ = converger.await;
    if removed {
        executor.remove_all().await;
    }
}

/// The index after `addr` in `managers` (the list may have changed under it).
fn next_index(current: usize, managers: &[String], addr: &str) -> usize {
    match managers.iter().position(|m| m == addr) {
        Some(i) => (i + 1) % managers.len().max(1),
        None => current % managers.len().max(1),
    }
}

/// Sleeps `d`; true when shutdown was asked for meanwhile.
async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

/// Converges whenever the assignments change and every [`CONVERGE_PERIOD`]; nothing happens
/// before the first answer, so a restart without a reachable manager leaves tasks running.
async fn converge_loop(
    executor: Arc<Executor>,
    mut assignments: watch::Receiver<Option<Assignment>>,
    pending: Arc<Pending>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let current = assignments.borrow_and_update().clone();
        if let Some(a) = current {
            let updates = executor.converge_with(&a.0, &a.1, &a.2, &a.3).await;
            pending.add(updates);
        }
        tokio::select! {
            r = assignments.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(CONVERGE_PERIOD) => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
    }
}
