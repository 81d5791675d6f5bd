//! The JSON shapes of `/berth/v1/`: flat, snake_case views of the cluster store's objects.
//! The GET routes and the event stream both build them from one [`Snapshot`], so an object
//! looks the same whichever way a dashboard reads it.

use berth_orchestrator::swarm::manager::Manager;
use berth_orchestrator::swarm::state::{ClusterState, ServiceRecord};
use bollard_stubs::models::{Node, Task, TaskState};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

/// The label `docker stack deploy` puts on every object of a stack.
pub const STACK_LABEL: &str = "com.docker.stack.namespace";

/// `GET /berth/v1/cluster`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    /// The cluster ID.
    pub id: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last change to the cluster spec.
    pub updated_at: String,
    /// Raft index of the last change to the cluster object.
    pub version: u64,
    /// The leader's node ID, when a leader is known.
    pub leader: Option<String>,
    /// The managers (Raft members).
    pub managers: Vec<ManagerView>,
    /// Raft progress as this manager sees it.
    pub raft: RaftView,
    /// Nodes by state.
    pub nodes: Counts,
    /// Services by mode.
    pub services: ServiceCounts,
    /// Tasks by observed state.
    pub tasks: Counts,
}

/// One manager of the Raft membership.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManagerView {
    /// The node ID.
    pub node_id: String,
    /// The Raft member ID.
    pub raft_id: u64,
    /// The manager's advertised address.
    pub addr: String,
    /// Whether it is the leader.
    pub leader: bool,
    /// Whether it votes (learners catching up do not).
    pub voter: bool,
    /// `reachable` or `unreachable`.
    pub reachability: String,
}

/// Raft metrics of the manager that answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RaftView {
    /// The current term.
    pub term: u64,
    /// The index of the last applied entry (event IDs count in this index).
    pub last_applied_index: u64,
    /// The index of the last entry in this manager's log.
    pub last_log_index: u64,
    /// This manager's Raft role: `leader`, `follower`, `candidate` or `learner`.
    pub state: String,
}

/// A total and the same objects counted by state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// All objects.
    pub total: u64,
    /// Objects by state.
    pub by_state: BTreeMap<String, u64>,
}

/// Services counted by mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceCounts {
    /// All services.
    pub total: u64,
    /// Services by mode (`replicated`, `global`, `replicated-job`, `global-job`).
    pub by_mode: BTreeMap<String, u64>,
}

/// A node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    /// The node ID.
    pub id: String,
    /// The hostname it reported.
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: Option<String>,
    /// `active`, `pause` or `drain`.
    pub availability: Option<String>,
    /// `unknown`, `down`, `ready` or `disconnected`.
    pub state: Option<String>,
    /// Why the state is what it is, when the manager said.
    pub message: Option<String>,
    /// The address the manager sees the node at.
    pub addr: Option<String>,
    /// Whether the node is the Raft leader.
    pub leader: bool,
    /// For managers: `reachable` or `unreachable`.
    pub manager_reachability: Option<String>,
    /// Node labels (`node update --label-add`).
    pub labels: BTreeMap<String, String>,
    /// The node's CPUs and memory.
    pub resources: Resources,
    /// Operating system and architecture.
    pub platform: Platform,
    /// The engine version it reported.
    pub engine_version: Option<String>,
    /// Tasks whose observed state is `running` on this node.
    pub running_tasks: u64,
    /// Raft index of the node's last change.
    pub version: u64,
    /// RFC 3339 creation time.
    pub created_at: Option<String>,
    /// RFC 3339 time of the last change.
    pub updated_at: Option<String>,
}

/// CPU and memory of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    /// CPUs in units of 10^-9.
    pub nano_cpus: i64,
    /// Memory in bytes.
    pub memory_bytes: i64,
}

/// Operating system and architecture of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Platform {
    /// `linux`.
    pub os: Option<String>,
    /// `x86_64`, `aarch64`, ...
    pub architecture: Option<String>,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceView {
    /// The service ID.
    pub id: String,
    /// The service name.
    pub name: String,
    /// The stack it belongs to (label `com.docker.stack.namespace`).
    pub stack: Option<String>,
    /// `replicated`, `global`, `replicated-job` or `global-job`.
    pub mode: String,
    /// Desired, running and completed tasks.
    pub replicas: Replicas,
    /// The image of its tasks.
    pub image: Option<String>,
    /// Service labels.
    pub labels: BTreeMap<String, String>,
    /// The state of the last rolling update, if any.
    pub update_status: Option<UpdateStatus>,
    /// Published ports.
    pub ports: Vec<Port>,
    /// Raft index of the service's last change.
    pub version: u64,
    /// RFC 3339 creation time.
    pub created_at: Option<String>,
    /// RFC 3339 time of the last change.
    pub updated_at: Option<String>,
}

/// Task counts of a service, as `service ls` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Replicas {
    /// Tasks that should run (for jobs: that may still run).
    pub desired: u64,
    /// Tasks running now.
    pub running: u64,
    /// Tasks that completed (jobs).
    pub completed: u64,
}

/// A service's rolling update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateStatus {
    /// `updating`, `paused`, `completed`, `rollback_started`, ...
    pub state: Option<String>,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// RFC 3339 end time.
    pub completed_at: Option<String>,
    /// What happened.
    pub message: Option<String>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Port {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: Option<String>,
    /// The port inside the task.
    pub target_port: Option<i64>,
    /// The port published on the nodes.
    pub published_port: Option<i64>,
    /// `ingress` or `host`.
    pub publish_mode: Option<String>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    /// The task ID.
    pub id: String,
    /// `service.slot` (or `service.node` for global services), as `service ps` shows it.
    pub name: String,
    /// The service ID.
    pub service_id: Option<String>,
    /// The service name.
    pub service_name: Option<String>,
    /// The replica slot (replicated services).
    pub slot: Option<i64>,
    /// The node it is assigned to.
    pub node_id: Option<String>,
    /// What the orchestrator wants (`running`, `shutdown`, ...).
    pub desired_state: Option<String>,
    /// What the node reported (`new` ... `running`, `complete`, `failed`, ...).
    pub state: Option<String>,
    /// The status message.
    pub message: Option<String>,
    /// The error, for failed or rejected tasks.
    pub error: Option<String>,
    /// The container running the task.
    pub container_id: Option<String>,
    /// The container's exit code, once it exited.
    pub exit_code: Option<i64>,
    /// RFC 3339 time of the last status change.
    pub status_timestamp: Option<String>,
    /// Raft index of the task's last change.
    pub version: u64,
    /// RFC 3339 creation time.
    pub created_at: Option<String>,
    /// RFC 3339 time of the last change.
    pub updated_at: Option<String>,
}

/// A stack: the services sharing one `com.docker.stack.namespace`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackView {
    /// The namespace.
    pub name: String,
    /// Its services, by name.
    pub services: Vec<ServiceView>,
}

/// The cluster's nodes, services and tasks at one applied Raft index.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The applied index the snapshot was taken at (or after).
    pub index: u64,
    /// Nodes by ID.
    pub nodes: BTreeMap<String, NodeView>,
    /// Services by ID.
    pub services: BTreeMap<String, ServiceView>,
    /// Tasks by ID.
    pub tasks: BTreeMap<String, TaskView>,
}

impl Snapshot {
    /// Reads the manager's replica once and converts every object.
    pub fn take(m: &Manager) -> Self {
        let index = *m.store().applied().borrow();
        let leader = m.store().leader().map(|(_, p)| p.node_id);
        let reach: HashMap<String, bool> = m
            .store()
            .members()
            .into_iter()
            .filter(|mm| mm.voter)
            .map(|mm| (mm.peer.node_id, mm.reachable))
            .collect();
        let mut snap = m.store().read(|s| convert(s, leader.as_deref(), &reach));
        snap.index = index;
        // Job-aware replica counting lives with the manager; it reads the store itself, so it
        // runs after the read above instead of inside it.
        for v in snap.services.values_mut() {
            let st = m.service_status(&v.id);
            v.replicas = Replicas {
                desired: st.desired_tasks.unwrap_or(0),
                running: st.running_tasks.unwrap_or(0),
                completed: st.completed_tasks.unwrap_or(0),
            };
        }
        snap
    }

    /// The services grouped by stack namespace, by name.
    pub fn stacks(&self) -> BTreeMap<String, StackView> {
        let mut stacks: BTreeMap<String, StackView> = BTreeMap::new();
        for s in self.services.values() {
            let Some(ns) = &s.stack else { continue };
            stacks
                .entry(ns.clone())
                .or_insert_with(|| StackView {
                    name: ns.clone(),
                    services: Vec::new(),
                })
                .services
                .push(s.clone());
        }
        for st in stacks.values_mut() {
            st.services.sort_by(|a, b| a.name.cmp(&b.name));
        }
        stacks
    }
}

/// Converts the replicated state; `reach` maps voting managers to their reachability.
fn convert(s: &ClusterState, leader: Option<&str>, reach: &HashMap<String, bool>) -> Snapshot {
    let service_names: HashMap<&str, &str> = s
        .services
        .iter()
        .filter_map(|(id, r)| Some((id.as_str(), r.service.spec.as_ref()?.name.as_deref()?)))
        .collect();
    let mut running: HashMap<&str, u64> = HashMap::new();
    for t in s.tasks.values() {
        if observed(t) == Some(TaskState::RUNNING)
            && let Some(n) = t.node_id.as_deref()
        {
            *running.entry(n).or_default() += 1;
        }
    }
    let nodes = s
        .nodes
        .iter()
        .map(|(id, n)| {
            let v = node_view(id, n, leader, reach.get(id).copied(), &running);
            (id.clone(), v)
        })
        .collect();
    let services = s
        .services
        .iter()
        .map(|(id, r)| (id.clone(), service_view(id, r)))
        .collect();
    let tasks = s
        .tasks
        .iter()
        .map(|(id, t)| {
            let svc = t
                .service_id
                .as_deref()
                .and_then(|sid| service_names.get(sid))
                .copied();
            (id.clone(), task_view(id, t, svc))
        })
        .collect();
    Snapshot {
        index: 0,
        nodes,
        services,
        tasks,
    }
}

/// A Docker enum as its API string; the generated `EMPTY` variants become `None`.
fn word<T: Display>(v: Option<&T>) -> Option<String> {
    v.map(|x| x.to_string()).filter(|s| !s.is_empty())
}

fn sorted(labels: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    labels
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn version_of(v: Option<&bollard_stubs::models::ObjectVersion>) -> u64 {
    v.and_then(|v| v.index).unwrap_or(0)
}

fn observed(t: &Task) -> Option<TaskState> {
    t.status.as_ref().and_then(|s| s.state)
}

fn node_view(
    id: &str,
    n: &Node,
    leader: Option<&str>,
    reachable: Option<bool>,
    running: &HashMap<&str, u64>,
) -> NodeView {
    let spec = n.spec.as_ref();
    let desc = n.description.as_ref();
    let status = n.status.as_ref();
    let res = desc.and_then(|d| d.resources.as_ref());
    let platform = desc.and_then(|d| d.platform.as_ref());
    let is_leader = leader == Some(id);
    NodeView {
        id: id.to_string(),
        hostname: desc.and_then(|d| d.hostname.clone()).unwrap_or_default(),
        role: word(spec.and_then(|s| s.role.as_ref())),
        availability: word(spec.and_then(|s| s.availability.as_ref())),
        state: word(status.and_then(|s| s.state.as_ref())),
        message: status
            .and_then(|s| s.message.clone())
            .filter(|m| !m.is_empty()),
        addr: status.and_then(|s| s.addr.clone()),
        leader: is_leader,
        manager_reachability: reachable.map(|r| {
            if r || is_leader {
                "reachable".to_string()
            } else {
                "unreachable".to_string()
            }
        }),
        labels: sorted(spec.and_then(|s| s.labels.as_ref())),
        resources: Resources {
            nano_cpus: res.and_then(|r| r.nano_cpus).unwrap_or(0),
            memory_bytes: res.and_then(|r| r.memory_bytes).unwrap_or(0),
        },
        platform: Platform {
            os: platform.and_then(|p| p.os.clone()),
            architecture: platform.and_then(|p| p.architecture.clone()),
        },
        engine_version: desc
            .and_then(|d| d.engine.as_ref())
            .and_then(|e| e.engine_version.clone()),
        running_tasks: running.get(id).copied().unwrap_or(0),
        version: version_of(n.version.as_ref()),
        created_at: n.created_at.clone(),
        updated_at: n.updated_at.clone(),
    }
}

fn service_view(id: &str, r: &ServiceRecord) -> ServiceView {
    let svc = &r.service;
    let spec = svc.spec.as_ref();
    let mode = spec.and_then(|s| s.mode.as_ref());
    let mode = match mode {
        Some(m) if m.global.is_some() => "global",
        Some(m) if m.replicated_job.is_some() => "replicated-job",
        Some(m) if m.global_job.is_some() => "global-job",
        _ => "replicated",
    };
    let labels = sorted(spec.and_then(|s| s.labels.as_ref()));
    let endpoint = svc.endpoint.as_ref();
    let ports = endpoint
        .and_then(|e| e.ports.as_ref())
        .or_else(|| {
            endpoint
                .and_then(|e| e.spec.as_ref())
                .and_then(|s| s.ports.as_ref())
        })
        .map(|ps| {
            ps.iter()
                .map(|p| Port {
                    protocol: word(p.protocol.as_ref()),
                    target_port: p.target_port,
                    published_port: p.published_port,
                    publish_mode: word(p.publish_mode.as_ref()),
                })
                .collect()
        })
        .unwrap_or_default();
    ServiceView {
        id: id.to_string(),
        name: spec.and_then(|s| s.name.clone()).unwrap_or_default(),
        stack: labels.get(STACK_LABEL).cloned(),
        mode: mode.to_string(),
        replicas: Replicas::default(),
        image: spec
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.image.clone()),
        labels,
        update_status: svc.update_status.as_ref().map(|u| UpdateStatus {
            state: word(u.state.as_ref()),
            started_at: u.started_at.clone(),
            completed_at: u.completed_at.clone(),
            message: u.message.clone(),
        }),
        ports,
        version: version_of(svc.version.as_ref()),
        created_at: svc.created_at.clone(),
        updated_at: svc.updated_at.clone(),
    }
}

fn task_view(id: &str, t: &Task, service: Option<&str>) -> TaskView {
    let status = t.status.as_ref();
    let container = status.and_then(|s| s.container_status.as_ref());
    let svc = service.unwrap_or_default();
    TaskView {
        id: id.to_string(),
        name: match (t.slot, &t.node_id) {
            (Some(slot), _) if slot > 0 => format!("{svc}.{slot}"),
            (_, Some(node)) => format!("{svc}.{node}"),
            _ => svc.to_string(),
        },
        service_id: t.service_id.clone(),
        service_name: service.map(str::to_string),
        slot: t.slot.filter(|s| *s > 0),
        node_id: t.node_id.clone().filter(|n| !n.is_empty()),
        desired_state: word(t.desired_state.as_ref()),
        state: word(observed(t).as_ref()),
        message: status
            .and_then(|s| s.message.clone())
            .filter(|m| !m.is_empty()),
        error: status.and_then(|s| s.err.clone()).filter(|e| !e.is_empty()),
        container_id: container
            .and_then(|c| c.container_id.clone())
            .filter(|c| !c.is_empty()),
        exit_code: container.and_then(|c| c.exit_code),
        status_timestamp: status.and_then(|s| s.timestamp.clone()),
        version: version_of(t.version.as_ref()),
        created_at: t.created_at.clone(),
        updated_at: t.updated_at.clone(),
    }
}

/// Counts objects by a key.
pub fn count<'a>(keys: impl Iterator<Item = Option<&'a str>>) -> Counts {
    let mut c = Counts::default();
    for k in keys {
        c.total += 1;
        *c.by_state
            .entry(k.unwrap_or("unknown").to_string())
            .or_default() += 1;
    }
    c
}

impl ClusterView {
    /// The cluster summary: identity from the store, Raft state from the metrics, counts
    /// from `snap`. `None` before `swarm init` is applied.
    pub fn build(m: &Manager, snap: &Snapshot) -> Option<Self> {
        let (id, created_at, updated_at, version) = m.store().read(|s| {
            s.cluster.as_ref().map(|c| {
                (
                    c.id.clone(),
                    c.created_at.clone(),
                    c.updated_at.clone(),
                    c.version,
                )
            })
        })?;
        let metrics = m.store().metrics();
        let leader = m.store().leader().map(|(_, p)| p.node_id);
        let managers = m
            .store()
            .members()
            .into_iter()
            .map(|mm| {
                let is_leader = leader.as_deref() == Some(mm.peer.node_id.as_str());
                ManagerView {
                    reachability: if mm.reachable || is_leader {
                        "reachable".into()
                    } else {
                        "unreachable".into()
                    },
                    node_id: mm.peer.node_id,
                    raft_id: mm.raft_id,
                    addr: mm.peer.addr,
                    leader: is_leader,
                    voter: mm.voter,
                }
            })
            .collect();
        let mut by_mode = BTreeMap::new();
        for s in snap.services.values() {
            *by_mode.entry(s.mode.clone()).or_default() += 1;
        }
        Some(ClusterView {
            id,
            created_at,
            updated_at,
            version,
            leader,
            managers,
            raft: RaftView {
                term: metrics.current_term,
                last_applied_index: metrics.last_applied.map(|l| l.index).unwrap_or(0),
                last_log_index: metrics.last_log_index.unwrap_or(0),
                state: format!("{:?}", metrics.state).to_lowercase(),
            },
            nodes: count(snap.nodes.values().map(|n| n.state.as_deref())),
            services: ServiceCounts {
                total: snap.services.len() as u64,
                by_mode,
            },
            tasks: count(snap.tasks.values().map(|t| t.state.as_deref())),
        })
    }
}
