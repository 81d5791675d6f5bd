//! The cluster store's state machine: nodes, services and tasks as Docker's API shows them,
//! changed only by applying [`Command`]s in Raft log order. Every replica applies the same
//! commands to the same state, so nothing here may read the clock or randomness: timestamps and
//! IDs travel inside the command.

use crate::swarm::secrets::{DataKind, DataObject};
use bollard_stubs::models::{
    ManagerStatus, Network, Node, NodeDescription, NodeSpec, NodeStatus, ObjectVersion, Service,
    ServiceSpec, SwarmSpec, Task, TaskState, TaskStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole replicated state; serialised as the Raft snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The cluster itself; `None` until `swarm init` is applied.
    pub cluster: Option<ClusterRecord>,
    /// Nodes by ID.
    pub nodes: BTreeMap<String, Node>,
    /// Services by ID.
    pub services: BTreeMap<String, ServiceRecord>,
    /// Tasks by ID, including finished ones kept as history.
    pub tasks: BTreeMap<String, Task>,
    /// Swarm-scoped networks (driver `overlay`) by ID; each node that runs a task on one
    /// creates its local part.
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
    /// Secrets by ID, their data sealed.
    #[serde(default)]
    pub secrets: BTreeMap<String, DataObject>,
    /// Configs by ID, their data sealed.
    #[serde(default)]
    pub configs: BTreeMap<String, DataObject>,
    /// Addresses of tasks and services on the overlay networks.
    #[serde(default)]
    pub overlay: crate::swarm::overlay::Allocations,
}

/// The cluster's identity, settings and credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The cluster ID.
    pub id: String,
    /// Object version (Raft index of the last change).
    pub version: u64,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    /// The cluster spec as `docker swarm update` edits it.
    pub spec: SwarmSpec,
    /// The root CA certificate, PEM.
    pub ca_cert_pem: String,
    /// The root CA private key, PEM; only managers hold the store, so only managers see it.
    pub ca_key_pem: String,
    /// Secret part of the worker join token.
    pub worker_secret: String,
    /// Secret part of the manager join token.
    pub manager_secret: String,
}

/// A service with what Docker's `Service` type has no field for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service as the API returns it.
    pub service: Service,
    /// The spec before the last update, for `service rollback`.
    pub previous_spec: Option<ServiceSpec>,
}

/// A change to the state, as written to the Raft log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// RFC 3339 time chosen by the proposer, so every replica records the same time.
    pub at: String,
    /// The change.
    pub command: Command,
}

/// The changes the state machine knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// `swarm init`: the cluster and its first node (a manager and the leader).
    Init {
        /// The new cluster.
        cluster: Box<ClusterRecord>,
        /// The first node.
        node: Box<Node>,
    },
    /// `swarm update`, optionally with token rotation (new secrets already chosen).
    UpdateCluster {
        /// The version the client read.
        version: u64,
        /// The new spec.
        spec: Box<SwarmSpec>,
        /// A new worker token secret.
        worker_secret: Option<String>,
        /// A new manager token secret.
        manager_secret: Option<String>,
    },
    /// A node joined (its ID chosen by the manager that accepted the join).
    AddNode(Box<Node>),
    /// `node update`: spec changes (role, availability, labels) guarded by version.
    UpdateNodeSpec {
        /// The node.
        id: String,
        /// The version the client read.
        version: u64,
        /// The new spec.
        spec: NodeSpec,
    },
    /// Status seen by the manager: ready/down, address, description reported by the agent.
    SetNodeStatus {
        /// The node.
        id: String,
        /// The new status.
        status: NodeStatus,
        /// What the agent reported about itself, when it did.
        description: Option<Box<NodeDescription>>,
    },
    /// Raft membership as seen by the leader (reachability, leader flag, address).
    SetManagerStatus {
        /// The node.
        id: String,
        /// `None` when the node is no longer a manager.
        status: Option<ManagerStatus>,
    },
    /// `node rm` or `swarm leave` of a worker.
    RemoveNode {
        /// The node.
        id: String,
    },
    /// `service create` (ID chosen by the proposer).
    CreateService(Box<Service>),
    /// `service update` guarded by version; the old spec is kept for rollback.
    UpdateService {
        /// The service.
        id: String,
        /// The version the client read.
        version: u64,
        /// The new spec.
        spec: Box<ServiceSpec>,
        /// True for `service rollback`: the previous spec is not replaced by the current one.
        rollback: bool,
    },
    /// Progress of a rolling update, written by the orchestrator.
    SetServiceUpdateStatus {
        /// The service.
        id: String,
        /// The status.
        status: Option<bollard_stubs::models::ServiceUpdateStatus>,
    },
    /// `service rm`.
    RemoveService {
        /// The service.
        id: String,
    },
    /// Orchestrator and scheduler output: new or changed tasks (desired state, node), removals.
    Tasks {
        /// Tasks written whole; `Version` and `UpdatedAt` are set on apply.
        put: Vec<Task>,
        /// Task IDs to delete (history pruned, services removed).
        remove: Vec<String>,
    },
    /// Observed task states reported by agents; a state never moves backwards.
    TaskStatuses(Vec<TaskStatusUpdate>),
    /// `network create -d overlay` on a manager (ID and `Created` chosen by the proposer).
    CreateNetwork(Box<Network>),
    /// `network rm` of a swarm network; refused while a service uses it.
    RemoveNetwork {
        /// The network.
        id: String,
    },
    /// `secret create` / `config create` (ID chosen and data sealed by the proposer).
    CreateData {
        /// Secret or config.
        kind: DataKind,
        /// The new object.
        object: Box<DataObject>,
    },
    /// `secret update` / `config update`: only labels may change, guarded by version.
    UpdateDataLabels {
        /// Secret or config.
        kind: DataKind,
        /// The object.
        id: String,
        /// The version the client read.
        version: u64,
        /// The new labels.
        labels: BTreeMap<String, String>,
    },
    /// `secret rm` / `config rm`; refused while a service uses the object.
    RemoveData {
        /// Secret or config.
        kind: DataKind,
        /// The object.
        id: String,
    },
    /// Several requests committed as one log entry, applied in order at the same index.
    ///
    /// openraft 0.9 flushes each entry before it takes the next client write, so one entry per
    /// request would cap the store at one write per fsync; proposers group concurrent writes.
    Batch(Vec<Request>),
}

impl Command {
    /// Roughly how many objects the command writes, to keep log entries a sensible size.
    pub fn weight(&self) -> usize {
        let n = match self {
            Command::Tasks { put, remove } => put.len() + remove.len(),
            Command::TaskStatuses(updates) => updates.len(),
            Command::Batch(requests) => requests.iter().map(|r| r.command.weight()).sum(),
            _ => 1,
        };
        n.max(1)
    }
}

/// One observed state report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusUpdate {
    /// The task.
    pub id: String,
    /// The node that reports it; reports from another node are ignored.
    pub node_id: String,
    /// The status.
    pub status: TaskStatus,
}

/// What applying a command did; returned to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied.
    Done,
    /// Refused because the state changed (stale version, name in use): HTTP 409 or 400.
    Conflict(String),
    /// The object does not exist: HTTP 404.
    NotFound(String),
    /// The command makes no sense in this state: HTTP 400/503.
    Invalid(String),
    /// The outcomes of a [`Command::Batch`], in its order.
    Batch(Vec<Outcome>),
}

/// swarmkit's numeric task states (with gaps), which only ever increase.
pub fn task_state_rank(state: TaskState) -> u16 {
    match state {
        TaskState::NEW => 0,
        TaskState::PENDING => 64,
        TaskState::ALLOCATED => 128,
        TaskState::ASSIGNED => 192,
        TaskState::ACCEPTED => 256,
        TaskState::PREPARING => 320,
        TaskState::READY => 384,
        TaskState::STARTING => 448,
        TaskState::RUNNING => 512,
        TaskState::COMPLETE => 576,
        TaskState::SHUTDOWN => 640,
        TaskState::FAILED => 704,
        TaskState::REJECTED => 768,
        TaskState::REMOVE => 800,
        TaskState::ORPHANED => 832,
    }
}

/// The observed state of a task (`NEW` when none is recorded).
pub fn observed_state(task: &Task) -> TaskState {
    task.status
        .as_ref()
        .and_then(|s| s.state)
        .unwrap_or(TaskState::NEW)
}

fn version(index: u64) -> Option<ObjectVersion> {
    Some(ObjectVersion { index: Some(index) })
}

fn current_version(v: &Option<ObjectVersion>) -> u64 {
    v.as_ref().and_then(|v| v.index).unwrap_or(0)
}

fn stale(kind: &str, expected: u64, found: u64) -> Outcome {
    Outcome::Conflict(format!(
        "update out of sequence: {kind} version {expected} is not the current version {found}"
    ))
}

impl ClusterState {
    /// Applies one command at Raft log `index`; deterministic on every replica.
    pub fn apply(&mut self, index: u64, request: Request) -> Outcome {
        let allocates = matches!(
            request.command,
            Command::Tasks { .. }
                | Command::Batch(_)
                | Command::TaskStatuses(_)
                | Command::CreateService(_)
                | Command::UpdateService { .. }
                | Command::RemoveService { .. }
                | Command::RemoveNode { .. }
                | Command::AddNode(_)
                | Command::Init { .. }
                | Command::RemoveNetwork { .. }
        );
        let outcome = self.apply_command(index, request);
        if allocates {
            self.allocate_addresses();
        }
        outcome
    }

    fn apply_command(&mut self, index: u64, request: Request) -> Outcome {
        let at = request.at;
        match request.command {
            Command::Batch(requests) => Outcome::Batch(
                requests
                    .into_iter()
                    .map(|r| match r.command {
                        Command::Batch(_) => Outcome::Invalid("a batch inside a batch".into()),
                        _ => self.apply_command(index, r),
                    })
                    .collect(),
            ),
            Command::Init { cluster, node } => {
                if self.cluster.is_some() {
                    return Outcome::Invalid(
                        "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.".into(),
                    );
                }
                let mut cluster = *cluster;
                cluster.version = index;
                self.cluster = Some(cluster);
                self.put_node(index, &at, *node);
                Outcome::Done
            }
            Command::UpdateCluster {
                version: expected,
                spec,
                worker_secret,
                manager_secret,
            } => {
                let Some(cluster) = self.cluster.as_mut() else {
                    return Outcome::Invalid("the cluster is not initialised".into());
                };
                if cluster.version != expected {
                    return stale("swarm", expected, cluster.version);
                }
                cluster.spec = *spec;
                if let Some(s) = worker_secret {
                    cluster.worker_secret = s;
                }
                if let Some(s) = manager_secret {
                    cluster.manager_secret = s;
                }
                cluster.version = index;
                cluster.updated_at = at;
                Outcome::Done
            }
            Command::AddNode(node) => {
                let id = node.id.clone().unwrap_or_default();
                if self.nodes.contains_key(&id) {
                    return Outcome::Conflict(format!("node {id} is already part of the swarm"));
                }
                self.put_node(index, &at, *node);
                Outcome::Done
            }
            Command::UpdateNodeSpec {
                id,
                version: expected,
                spec,
            } => {
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Outcome::NotFound(format!("node {id} not found"));
                };
                let found = current_version(&node.version);
                if found != expected {
                    return stale("node", expected, found);
                }
                node.spec = Some(spec);
                node.version = version(index);
                node.updated_at = Some(at);
                Outcome::Done
            }
            Command::SetNodeStatus {
                id,
                status,
                description,
            } => {
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Outcome::NotFound(format!("node {id} not found"));
                };
                node.status = Some(status);
                if let Some(d) = description {
                    node.description = Some(*d);
                }
                node.version = version(index);
                node.updated_at = Some(at);
                Outcome::Done
            }
            Command::SetManagerStatus { id, status } => {
                let Some(node) = self.nodes.get_mut(&id) else {
                    return Outcome::NotFound(format!("node {id} not found"));
                };
                node.manager_status = status;
                node.version = version(index);
                node.updated_at = Some(at);
                Outcome::Done
            }
            Command::RemoveNode { id } => {
                if self.nodes.remove(&id).is_none() {
                    return Outcome::NotFound(format!("node {id} not found"));
                }
                Outcome::Done
            }
            Command::CreateService(service) => {
                let id = service.id.clone().unwrap_or_default();
                let name = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.name.clone())
                    .unwrap_or_default();
                if self.service_by_name(&name).is_some() {
                    return Outcome::Conflict(format!(
                        "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service {name} already exists"
                    ));
                }
                let mut service = *service;
                service.version = version(index);
                service.created_at = Some(at.clone());
                service.updated_at = Some(at);
                self.services.insert(
                    id,
                    ServiceRecord {
                        service,
                        previous_spec: None,
                    },
                );
                Outcome::Done
            }
            Command::UpdateService {
                id,
                version: expected,
                spec,
                rollback,
            } => {
                let Some(record) = self.services.get_mut(&id) else {
                    return Outcome::NotFound(format!("service {id} not found"));
                };
                let found = current_version(&record.service.version);
                if found != expected {
                    return stale("service", expected, found);
                }
                let old = record.service.spec.replace(*spec);
                record.previous_spec = if rollback { None } else { old };
                record.service.version = version(index);
                record.service.updated_at = Some(at);
                Outcome::Done
            }
            Command::SetServiceUpdateStatus { id, status } => {
                let Some(record) = self.services.get_mut(&id) else {
                    return Outcome::NotFound(format!("service {id} not found"));
                };
                record.service.update_status = status;
                Outcome::Done
            }
            Command::RemoveService { id } => {
                if self.services.remove(&id).is_none() {
                    return Outcome::NotFound(format!("service {id} not found"));
                }
                Outcome::Done
            }
            Command::Tasks { put, remove } => {
                for id in remove {
                    self.tasks.remove(&id);
                }
                for mut task in put {
                    let Some(id) = task.id.clone() else { continue };
                    if let Some(old) = self.tasks.get(&id) {
                        // The orchestrator never moves the observed state: keep the agent's.
                        if task_state_rank(observed_state(old))
                            > task_state_rank(observed_state(&task))
                        {
                            task.status = old.status.clone();
                        }
                        task.created_at = old.created_at.clone();
                    } else if task.created_at.is_none() {
                        task.created_at = Some(at.clone());
                    }
                    task.version = version(index);
                    task.updated_at = Some(at.clone());
                    self.tasks.insert(id, task);
                }
                Outcome::Done
            }
            Command::TaskStatuses(updates) => {
                for update in updates {
                    let Some(task) = self.tasks.get_mut(&update.id) else {
                        continue;
                    };
                    if task.node_id.as_deref() != Some(update.node_id.as_str()) {
                        continue;
                    }
                    let new = update.status.state.unwrap_or(TaskState::NEW);
                    if task_state_rank(new) < task_state_rank(observed_state(task)) {
                        continue;
                    }
                    task.status = Some(update.status);
                    task.version = version(index);
                    task.updated_at = Some(at.clone());
                }
                Outcome::Done
            }
            Command::CreateNetwork(network) => {
                let id = network.id.clone().unwrap_or_default();
                let name = network.name.clone().unwrap_or_default();
                if self
                    .networks
                    .values()
                    .any(|n| n.name.as_deref() == Some(&name))
                {
                    return Outcome::Conflict(format!("network with name {name} already exists"));
                }
                let mut network = *network;
                if let Err(e) = self.prepare_network(&mut network) {
                    return Outcome::Invalid(e);
                }
                self.networks.insert(id, network);
                Outcome::Done
            }
            Command::RemoveNetwork { id } => {
                let Some(network) = self.networks.get(&id) else {
                    return Outcome::NotFound(format!("network {id} not found"));
                };
                let name = network.name.clone().unwrap_or_default();
                let user = self.services.values().find(|r| {
                    r.service
                        .spec
                        .as_ref()
                        .and_then(|s| s.task_template.as_ref())
                        .and_then(|t| t.networks.as_ref())
                        .is_some_and(|nets| {
                            nets.iter().any(|n| {
                                n.target.as_deref() == Some(&id)
                                    || n.target.as_deref() == Some(&name)
                            })
                        })
                });
                if let Some(user) = user {
                    let service = user.service.spec.as_ref().and_then(|s| s.name.clone());
                    return Outcome::Conflict(format!(
                        "rpc error: code = FailedPrecondition desc = network {id} is in use by service {}",
                        service.unwrap_or_default()
                    ));
                }
                self.networks.remove(&id);
                Outcome::Done
            }
            Command::CreateData { kind, object } => {
                self.apply_create_data(kind, *object, index, &at)
            }
            Command::UpdateDataLabels {
                kind,
                id,
                version: expected,
                labels,
            } => self.apply_update_data(kind, &id, expected, labels, index, &at),
            Command::RemoveData { kind, id } => self.apply_remove_data(kind, &id),
        }
    }

    fn put_node(&mut self, index: u64, at: &str, mut node: Node) {
        let id = node.id.clone().unwrap_or_default();
        node.version = version(index);
        node.created_at = Some(at.to_string());
        node.updated_at = Some(at.to_string());
        self.nodes.insert(id, node);
    }

    /// The service with this name.
    pub fn service_by_name(&self, name: &str) -> Option<&ServiceRecord> {
        self.services
            .values()
            .find(|r| r.service.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name))
    }

    /// Tasks of one service.
    pub fn tasks_of<'a>(&'a self, service_id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks
            .values()
            .filter(move |t| t.service_id.as_deref() == Some(service_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(command: Command) -> Request {
        Request {
            at: "2026-11-28T00:00:00Z".into(),
            command,
        }
    }

    fn service(id: &str, name: &str) -> Service {
        Service {
            id: Some(id.into()),
            spec: Some(ServiceSpec {
                name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn stale_version_is_a_conflict_and_changes_nothing() {
        let mut s = ClusterState::default();
        assert_eq!(
            s.apply(
                5,
                req(Command::CreateService(Box::new(service("a", "web"))))
            ),
            Outcome::Done
        );
        let before = s.clone();
        let out = s.apply(
            6,
            req(Command::UpdateService {
                id: "a".into(),
                version: 4,
                spec: Box::default(),
                rollback: false,
            }),
        );
        assert!(matches!(out, Outcome::Conflict(_)));
        assert_eq!(s, before);
        let out = s.apply(
            7,
            req(Command::UpdateService {
                id: "a".into(),
                version: 5,
                spec: Box::default(),
                rollback: false,
            }),
        );
        assert_eq!(out, Outcome::Done);
        assert_eq!(s.services["a"].service.version, version(7));
        assert!(s.services["a"].previous_spec.is_some());
    }

    #[test]
    fn duplicate_service_name_is_refused() {
        let mut s = ClusterState::default();
        s.apply(
            1,
            req(Command::CreateService(Box::new(service("a", "web")))),
        );
        let out = s.apply(
            2,
            req(Command::CreateService(Box::new(service("b", "web")))),
        );
        assert!(matches!(out, Outcome::Conflict(_)));
    }

    #[test]
    fn task_state_only_moves_forward_and_only_from_its_node() {
        let mut s = ClusterState::default();
        let task = Task {
            id: Some("t".into()),
            node_id: Some("n1".into()),
            ..Default::default()
        };
        s.apply(
            1,
            req(Command::Tasks {
                put: vec![task],
                remove: vec![],
            }),
        );
        let report = |node: &str, state| {
            req(Command::TaskStatuses(vec![TaskStatusUpdate {
                id: "t".into(),
                node_id: node.into(),
                status: TaskStatus {
                    state: Some(state),
                    ..Default::default()
                },
            }]))
        };
        s.apply(2, report("n1", TaskState::RUNNING));
        s.apply(3, report("n1", TaskState::STARTING));
        s.apply(4, report("n2", TaskState::FAILED));
        assert_eq!(observed_state(&s.tasks["t"]), TaskState::RUNNING);
    }
}
