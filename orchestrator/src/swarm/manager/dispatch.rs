//! The managers' side of agent sessions: heartbeats, status reports and assignments.

use super::Manager;
use super::listener::Peer;
use super::stopped;
use crate::swarm::dispatcher::proto::{
    ENDPOINT_PORTS_LABEL, HEARTBEAT_PERIOD, SessionRequest, SessionResponse,
};
use crate::swarm::overlay::OverlayView;
use crate::swarm::state::{ClusterState, Command};
use axum::extract::{Extension, Json};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, NodeState, NodeStatus, Task,
};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

pub(super) async fn session(
    Extension(m): Extension<Manager>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<SessionRequest>,
) -> Response {
    let identity = match peer.node() {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    if identity.node_id != req.node_id {
        return (StatusCode::FORBIDDEN, "the certificate names another node").into_response();
    }
    if !m.store().is_leader() {
        // Heartbeats are only tracked by the leader: send the agent there.
        let body = serde_json::json!({
            "message": "this manager is not the leader",
            "managers": m.manager_addrs(),
        });
        return (StatusCode::MISDIRECTED_REQUEST, Json(body)).into_response();
    }
    m.record_heartbeat(&req.node_id);
    let (initialised, node) = m
        .store()
        .read(|s| (s.cluster.is_some(), s.nodes.get(&req.node_id).cloned()));
    if !initialised {
        // `swarm init` starts this node's worker before the cluster record is committed; it
        // must retry, not conclude it was removed.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the swarm is being initialised",
        )
            .into_response();
    }
    let Some(node) = node else {
        return Json(SessionResponse {
            removed: true,
            managers: m.manager_addrs(),
            ..Default::default()
        })
        .into_response();
    };
    if !req.statuses.is_empty()
        && let Err(e) = m.write(Command::TaskStatuses(req.statuses)).await
    {
        return e.into_response();
    }
    let ready = node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY);
    if !ready || req.description.is_some() {
        let status = NodeStatus {
            state: Some(NodeState::READY),
            message: None,
            addr: Some(peer.addr.ip().to_string()),
        };
        let cmd = Command::SetNodeStatus {
            id: req.node_id.clone(),
            status,
            description: req.description.map(Box::new),
        };
        if let Err(e) = m.write(cmd).await {
            return e.into_response();
        }
    }
    let mut applied = m.store().applied();
    let mut log_generation = m.log_generation();
    let mut shutdown = m.shutdown_signal();
    let deadline = Instant::now() + HEARTBEAT_PERIOD;
    let mut known_logs = req.log_subscriptions.clone();
    known_logs.sort();
    loop {
        let mut resp = m.assignments_of(&req.node_id);
        resp.log_subscriptions = m.log_subscriptions_for(&req.node_id);
        let logs_changed = !resp
            .log_subscriptions
            .iter()
            .map(|s| &s.id)
            .eq(known_logs.iter());
        if resp.version != req.known_version || logs_changed || Instant::now() >= deadline {
            resp.managers = m.manager_addrs();
            resp.role = m.store().read(|s| {
                let n = s.nodes.get(&req.node_id)?;
                Some(super::roles::role_of(
                    n.spec.as_ref().and_then(|sp| sp.role),
                ))
            });
            resp.raft_member = m.is_voter(&req.node_id);
            resp.data = match m.payloads_for(&resp.tasks).await {
                Ok(d) => d,
                // Without the data the node cannot start these tasks: let it ask again.
                Err(e) => return e.into_response(),
            };
            return Json(resp).into_response();
        }
        tokio::select! {
            r = applied.changed() => if r.is_err() { tokio::time::sleep_until(deadline.into()).await },
            _ = log_generation.changed() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = stopped(&mut shutdown) => {
                return (StatusCode::SERVICE_UNAVAILABLE, "manager shutting down").into_response();
            }
        }
    }
}

/// Every node's assignments, built in one pass over the tasks: sessions wake on every commit,
/// and a scan of all tasks per session per commit does not scale to many nodes.
pub(crate) fn all_assignments(state: &ClusterState) -> HashMap<String, SessionResponse> {
    let mut per_node: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in state.tasks.values() {
        if let Some(n) = t.node_id.as_deref() {
            per_node.entry(n).or_default().push(t);
        }
    }
    let views = state.overlay_views();
    per_node
        .into_iter()
        .map(|(node, mut tasks)| {
            tasks.sort_by(|a, b| a.id.cmp(&b.id));
            (
                node.to_string(),
                node_assignments(state, &views, node, &tasks),
            )
        })
        .collect()
}

/// What a node with nothing assigned gets.
pub(crate) fn no_assignments(state: &ClusterState, node_id: &str) -> SessionResponse {
    node_assignments(state, &state.overlay_views(), node_id, &[])
}

/// The assignments of `node_id` (its `tasks`, sorted by ID), with task names filled in, and
/// their version.
fn node_assignments(
    state: &ClusterState,
    views: &BTreeMap<String, OverlayView>,
    node_id: &str,
    node_tasks: &[&Task],
) -> SessionResponse {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut tasks = Vec::new();
    let mut network_ids = std::collections::BTreeSet::new();
    for t in node_tasks {
        t.id.hash(&mut hasher);
        t.version.as_ref().and_then(|v| v.index).hash(&mut hasher);
        let mut t = (*t).clone();
        let service = t
            .service_id
            .as_ref()
            .and_then(|id| state.services.get(id))
            .and_then(|r| r.service.spec.as_ref())
            .and_then(|s| s.name.clone())
            .unwrap_or_default();
        t.name = Some(match t.slot {
            Some(slot) if slot > 0 => format!("{service}.{slot}"),
            _ => format!("{service}.{node_id}"),
        });
        let mut labels = t.labels.take().unwrap_or_default();
        labels.insert("com.docker.swarm.service.name".into(), service);
        let ports = published_ports(state, &t);
        if !ports.is_empty() {
            labels.insert(
                ENDPOINT_PORTS_LABEL.into(),
                serde_json::to_string(&ports).unwrap_or_default(),
            );
        }
        t.labels = Some(labels);
        for n in t
            .spec
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(target) = &n.target {
                network_ids.insert(target.clone());
            }
        }
        tasks.push(t);
    }
    let networks: Vec<_> = network_ids
        .iter()
        .filter_map(|id| {
            state.networks.get(id).cloned().or_else(|| {
                state
                    .networks
                    .values()
                    .find(|n| n.name.as_deref() == Some(id.as_str()))
                    .cloned()
            })
        })
        .collect();
    for n in &networks {
        n.id.hash(&mut hasher);
    }
    // The routing mesh's network reaches every node while some service publishes a port.
    if let Some(ingress) = state.ingress_id()
        && views
            .get(ingress)
            .is_some_and(|v| v.services.iter().any(|s| !s.ports.is_empty()))
    {
        network_ids.insert(ingress.to_string());
    }
    let overlay: Vec<OverlayView> = network_ids
        .iter()
        .filter_map(|id| views.get(id).cloned())
        .collect();
    let ingress_addr = state.overlay.nodes.get(node_id).copied();
    ingress_addr.hash(&mut hasher);
    overlay.hash(&mut hasher);
    let addresses: BTreeMap<String, BTreeMap<String, std::net::Ipv4Addr>> = tasks
        .iter()
        .filter_map(|t| {
            let id = t.id.as_ref()?;
            Some((id.clone(), state.overlay.tasks.get(id)?.clone()))
        })
        .collect();
    addresses.hash(&mut hasher);
    SessionResponse {
        version: hasher.finish(),
        tasks,
        networks,
        managers: Vec::new(),
        removed: false,
        role: None,
        raft_member: false,
        log_subscriptions: Vec::new(),
        data: Vec::new(),
        overlay,
        addresses,
        ingress_addr,
    }
}

/// The host-mode ports task `t` publishes on its node (ingress-mode ones go through the
/// routing mesh on every node).
fn published_ports(state: &ClusterState, t: &Task) -> Vec<EndpointPortConfig> {
    let ports = t
        .service_id
        .as_ref()
        .and_then(|id| state.services.get(id))
        .and_then(|r| {
            r.service
                .spec
                .as_ref()?
                .endpoint_spec
                .as_ref()?
                .ports
                .clone()
        })
        .unwrap_or_default();
    ports
        .into_iter()
        .filter(|p| p.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST))
        .collect()
}

impl Manager {
    /// `node_id`'s assignments from the table built once per applied index.
    fn assignments_of(&self, node_id: &str) -> SessionResponse {
        let index = *self.store().applied().borrow();
        let table = {
            let cached = self.inner.assignments.lock().ok().and_then(|c| {
                let (at, table) = &*c;
                (*at == index).then(|| table.clone())
            });
            match cached {
                Some(t) => t,
                None => {
                    let table = Arc::new(self.store().read(all_assignments));
                    if let Ok(mut c) = self.inner.assignments.lock() {
                        *c = (index, table.clone());
                    }
                    table
                }
            }
        };
        match table.get(node_id) {
            Some(r) => r.clone(),
            None => self.store().read(|s| no_assignments(s, node_id)),
        }
    }
}
