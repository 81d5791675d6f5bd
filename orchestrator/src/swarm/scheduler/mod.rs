//! The scheduler: gives every runnable, unplaced task a node (swarmkit's manager/scheduler).
//!
//! Pure over [`ClusterState`]: nodes are indexed once into compact [`NodeInfo`] rows, pending
//! tasks are grouped by service and spec, and each group is placed from a heap of candidate
//! nodes ordered by (tasks of this service, tasks in total), so the cost is linear in tasks
//! (times log nodes) and no Docker struct is cloned per candidate.

pub mod constraint;
mod placement;

use crate::swarm::state::{ClusterState, Command, observed_state, task_state_rank};
use bollard_stubs::models::{
    EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, Node,
    NodeSpecAvailabilityEnum, NodeState, Platform, Task, TaskSpec, TaskState, TaskStatus,
};
use constraint::Constraint;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use placement::place_group;

/// The status message of a task the scheduler placed, as `docker service ps` shows it.
pub const ASSIGNED_MESSAGE: &str = "scheduler assigned task to node";
/// The status message of a task waiting for a node.
pub const PENDING_MESSAGE: &str = "pending task scheduling";

/// Unplaced tasks of one service, split by spec.
type SpecGroups<'a> = Vec<(Option<&'a TaskSpec>, Vec<&'a Task>)>;

/// A published host-mode port: (protocol, port).
type HostPort = (u8, i64);

/// What the scheduler knows about one node, indexed by position.
pub(crate) struct NodeInfo<'a> {
    pub(crate) id: &'a str,
    pub(crate) node: &'a Node,
    /// Ready and availability active.
    pub(crate) available: bool,
    pub(crate) free_cpu: i64,
    pub(crate) free_mem: i64,
    /// Active tasks of every service.
    pub(crate) total: u32,
    pub(crate) host_ports: HashSet<HostPort>,
}

/// Filters in swarmkit's pipeline order; a node counts against the first one it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Filter {
    Ready,
    Resources,
    Constraints,
    Platform,
    HostPort,
    MaxReplicas,
}

impl Filter {
    fn explain(self, nodes: u32) -> String {
        let (one, many) = match self {
            Filter::Ready => (
                "node not available for new tasks",
                "nodes not available for new tasks",
            ),
            Filter::Resources => (
                "insufficient resources on 1 node",
                "insufficient resources on",
            ),
            Filter::Constraints => (
                "scheduling constraints not satisfied on 1 node",
                "scheduling constraints not satisfied on",
            ),
            Filter::Platform => ("unsupported platform on 1 node", "unsupported platform on"),
            Filter::HostPort => (
                "host-mode port already in use on 1 node",
                "host-mode port already in use on",
            ),
            Filter::MaxReplicas => return "max replicas per node limit exceed".to_string(),
        };
        match (self, nodes) {
            (Filter::Ready, 1) => format!("1 {one}"),
            (Filter::Ready, n) => format!("{n} {many}"),
            (_, 1) => one.to_string(),
            (_, n) => format!("{many} {n} nodes"),
        }
    }
}

/// Failure counts per filter, turned into swarmkit's explanation text.
#[derive(Default)]
pub(crate) struct Failures(BTreeMap<Filter, u32>);

impl Failures {
    pub(crate) fn add(&mut self, f: Filter) {
        *self.0.entry(f).or_default() += 1;
    }

    /// "scheduling constraints not satisfied on 3 nodes; insufficient resources on 1 node",
    /// most failures first, pipeline order among equals.
    pub(crate) fn explain(&self) -> String {
        let mut entries: Vec<(Filter, u32)> = self.0.iter().map(|(f, n)| (*f, *n)).collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        entries
            .iter()
            .map(|(f, n)| f.explain(*n))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a group of identical pending tasks asks of a node.
pub(crate) struct Demand<'a> {
    pub(crate) service_id: &'a str,
    pub(crate) cpu: i64,
    pub(crate) mem: i64,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) platforms: &'a [Platform],
    pub(crate) host_ports: Vec<HostPort>,
    pub(crate) max_replicas: u32,
    pub(crate) preferences: Vec<String>,
}

impl Demand<'_> {
    /// The first static filter (one that placing tasks cannot change) `n` fails.
    pub(crate) fn static_failure(&self, n: &NodeInfo) -> Option<Filter> {
        if !n.available {
            return Some(Filter::Ready);
        }
        if n.free_cpu < self.cpu || n.free_mem < self.mem {
            return Some(Filter::Resources);
        }
        if !constraint::all_match(&self.constraints, n.node) {
            return Some(Filter::Constraints);
        }
        if !platform_matches(self.platforms, n.node) {
            return Some(Filter::Platform);
        }
        None
    }

    /// The first filter `n` fails given what is already placed on it (`same`: tasks of this
    /// service there).
    pub(crate) fn dynamic_failure(&self, n: &NodeInfo, same: u32) -> Option<Filter> {
        if n.free_cpu < self.cpu || n.free_mem < self.mem {
            return Some(Filter::Resources);
        }
        if self.host_ports.iter().any(|p| n.host_ports.contains(p)) {
            return Some(Filter::HostPort);
        }
        if self.max_replicas > 0 && same >= self.max_replicas {
            return Some(Filter::MaxReplicas);
        }
        None
    }

    /// Records a placement on `n`.
    pub(crate) fn take(&self, n: &mut NodeInfo) {
        n.free_cpu -= self.cpu;
        n.free_mem -= self.mem;
        n.total += 1;
        n.host_ports.extend(self.host_ports.iter().copied());
    }
}

fn normalise_arch(a: &str) -> String {
    match a.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_string(),
    }
}

fn platform_matches(platforms: &[Platform], node: &Node) -> bool {
    if platforms.is_empty() {
        return true;
    }
    let p = node.description.as_ref().and_then(|d| d.platform.as_ref());
    let os = p.and_then(|p| p.os.as_deref()).unwrap_or("");
    let arch = normalise_arch(p.and_then(|p| p.architecture.as_deref()).unwrap_or(""));
    platforms.iter().any(|want| {
        let os_ok = want
            .os
            .as_deref()
            .is_none_or(|w| w.is_empty() || w.eq_ignore_ascii_case(os));
        let arch_ok = want
            .architecture
            .as_deref()
            .is_none_or(|w| w.is_empty() || normalise_arch(w) == arch);
        os_ok && arch_ok
    })
}

/// True when a task holds resources on its node: placed, meant to run, not yet finished.
pub(crate) fn is_active(t: &Task) -> bool {
    t.node_id.is_some()
        && task_state_rank(t.desired_state.unwrap_or(TaskState::NEW))
            <= task_state_rank(TaskState::COMPLETE)
        && task_state_rank(observed_state(t)) <= task_state_rank(TaskState::RUNNING)
}

/// True when the node takes new tasks: ready and availability active.
pub fn node_available(n: &Node) -> bool {
    let ready = n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY);
    let active = matches!(
        n.spec.as_ref().and_then(|s| s.availability),
        None | Some(NodeSpecAvailabilityEnum::ACTIVE) | Some(NodeSpecAvailabilityEnum::EMPTY)
    );
    ready && active
}

fn reservations(spec: Option<&TaskSpec>) -> (i64, i64) {
    let r = spec
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    (
        r.and_then(|r| r.nano_cpus).unwrap_or(0),
        r.and_then(|r| r.memory_bytes).unwrap_or(0),
    )
}

fn host_ports_of(state: &ClusterState, service_id: &str) -> Vec<HostPort> {
    let Some(record) = state.services.get(service_id) else {
        return Vec::new();
    };
    let ports = record
        .service
        .spec
        .as_ref()
        .and_then(|s| s.endpoint_spec.as_ref())
        .and_then(|e| e.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter(|p| p.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST))
        .filter_map(|p| {
            let port = p.published_port.filter(|&p| p > 0)?;
            let proto = match p.protocol {
                Some(EndpointPortConfigProtocolEnum::UDP) => 1,
                Some(EndpointPortConfigProtocolEnum::SCTP) => 2,
                _ => 0,
            };
            Some((proto, port))
        })
        .collect()
}

/// The node index: compact rows plus, per service, how many active tasks each node runs.
pub(crate) struct Index<'a> {
    pub(crate) nodes: Vec<NodeInfo<'a>>,
    pub(crate) by_id: HashMap<&'a str, usize>,
    pub(crate) per_service: HashMap<&'a str, HashMap<usize, u32>>,
}

impl<'a> Index<'a> {
    pub(crate) fn build(state: &'a ClusterState) -> Self {
        let mut nodes = Vec::with_capacity(state.nodes.len());
        let mut by_id = HashMap::with_capacity(state.nodes.len());
        for (id, node) in &state.nodes {
            let res = node.description.as_ref().and_then(|d| d.resources.as_ref());
            by_id.insert(id.as_str(), nodes.len());
            nodes.push(NodeInfo {
                id: id.as_str(),
                node,
                available: node_available(node),
                free_cpu: res.and_then(|r| r.nano_cpus).unwrap_or(0),
                free_mem: res.and_then(|r| r.memory_bytes).unwrap_or(0),
                total: 0,
                host_ports: HashSet::new(),
            });
        }
        let mut per_service: HashMap<&str, HashMap<usize, u32>> = HashMap::new();
        let mut ports_cache: HashMap<&str, Vec<HostPort>> = HashMap::new();
        for t in state.tasks.values() {
            if !is_active(t) {
                continue;
            }
            let Some(&i) = t.node_id.as_deref().and_then(|n| by_id.get(n)) else {
                continue;
            };
            let (cpu, mem) = reservations(t.spec.as_ref());
            let n = &mut nodes[i];
            n.free_cpu -= cpu;
            n.free_mem -= mem;
            n.total += 1;
            if let Some(sid) = t.service_id.as_deref() {
                *per_service.entry(sid).or_default().entry(i).or_default() += 1;
                let ports = ports_cache
                    .entry(sid)
                    .or_insert_with(|| host_ports_of(state, sid));
                n.host_ports.extend(ports.iter().copied());
            }
        }
        Index {
            nodes,
            by_id,
            per_service,
        }
    }
}

fn wants_node(t: &Task) -> bool {
    // Jobs' tasks are desired COMPLETE: they are placed the same way.
    matches!(
        t.desired_state,
        Some(TaskState::RUNNING | TaskState::COMPLETE)
    ) && matches!(observed_state(t), TaskState::NEW | TaskState::PENDING)
}

fn demand_for<'a>(
    state: &ClusterState,
    service_id: &'a str,
    spec: Option<&'a TaskSpec>,
) -> Demand<'a> {
    let (cpu, mem) = reservations(spec);
    let placement = spec.and_then(|s| s.placement.as_ref());
    Demand {
        service_id,
        cpu,
        mem,
        constraints: placement
            .and_then(|p| p.constraints.as_deref())
            .map(Constraint::parse_all)
            .unwrap_or_default(),
        platforms: placement
            .and_then(|p| p.platforms.as_deref())
            .unwrap_or(&[]),
        host_ports: host_ports_of(state, service_id),
        max_replicas: placement
            .and_then(|p| p.max_replicas)
            .map(|m| m.clamp(0, u32::MAX as i64) as u32)
            .unwrap_or(0),
        preferences: placement
            .and_then(|p| p.preferences.as_ref())
            .map(|prefs| {
                prefs
                    .iter()
                    .filter_map(|p| p.spread.as_ref()?.spread_descriptor.clone())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn assigned(task: &Task, node: &str, now: &str) -> Task {
    let mut t = task.clone();
    t.node_id = Some(node.to_string());
    t.status = Some(TaskStatus {
        timestamp: Some(now.to_string()),
        state: Some(TaskState::ASSIGNED),
        message: Some(ASSIGNED_MESSAGE.into()),
        ..Default::default()
    });
    t
}

/// The task with a PENDING status explaining why it has no node; `None` when it already
/// shows exactly that (so an unchanged cluster yields no commands).
fn pending(task: &Task, explanation: &str, now: &str) -> Option<Task> {
    let err = if explanation.is_empty() {
        "no suitable node".to_string()
    } else {
        format!("no suitable node ({explanation})")
    };
    let status = task.status.as_ref();
    if observed_state(task) == TaskState::PENDING
        && status.and_then(|s| s.err.as_deref()) == Some(err.as_str())
    {
        return None;
    }
    let mut t = task.clone();
    t.status = Some(TaskStatus {
        timestamp: Some(now.to_string()),
        state: Some(TaskState::PENDING),
        message: Some(PENDING_MESSAGE.into()),
        err: Some(err),
        ..Default::default()
    });
    Some(t)
}

/// Places every task that is desired RUNNING, observed NEW or PENDING: ASSIGNED to a node, or
/// PENDING with the reason none fits. Global tasks (node already chosen) are checked against
/// their node. Returns at most one `Tasks` command.
pub fn schedule(state: &ClusterState, now: SystemTime) -> Vec<Command> {
    let now = crate::swarm::reconcile::clock::format(now);
    let mut index = Index::build(state);
    let mut put = Vec::new();

    // Group unplaced tasks by service, then by spec, in ID order for determinism.
    let mut groups: BTreeMap<&str, SpecGroups> = BTreeMap::new();
    let mut preassigned: Vec<&Task> = Vec::new();
    for t in state.tasks.values() {
        // Tasks of a removed service are the orchestrator's to stop, not to place.
        if !wants_node(t)
            || !t
                .service_id
                .as_ref()
                .is_some_and(|s| state.services.contains_key(s))
        {
            continue;
        }
        if t.node_id.is_some() {
            preassigned.push(t);
            continue;
        }
        let sid = t.service_id.as_deref().unwrap_or("");
        let list = groups.entry(sid).or_default();
        match list.iter_mut().find(|(s, _)| *s == t.spec.as_ref()) {
            Some((_, tasks)) => tasks.push(t),
            None => list.push((t.spec.as_ref(), vec![t])),
        }
    }

    for t in preassigned {
        let sid = t.service_id.as_deref().unwrap_or("");
        let demand = demand_for(state, sid, t.spec.as_ref());
        let node = t.node_id.as_deref().unwrap_or("");
        let Some(&i) = index.by_id.get(node) else {
            let mut f = Failures::default();
            f.add(Filter::Ready);
            put.extend(pending(t, &f.explain(), &now));
            continue;
        };
        let same = index
            .per_service
            .get(sid)
            .and_then(|m| m.get(&i))
            .copied()
            .unwrap_or(0);
        let n = &index.nodes[i];
        match demand
            .static_failure(n)
            .or_else(|| demand.dynamic_failure(n, same))
        {
            None => {
                demand.take(&mut index.nodes[i]);
                *index
                    .per_service
                    .entry(demand.service_id)
                    .or_default()
                    .entry(i)
                    .or_default() += 1;
                put.push(assigned(t, node, &now));
            }
            Some(f) => {
                let mut failures = Failures::default();
                failures.add(f);
                put.extend(pending(t, &failures.explain(), &now));
            }
        }
    }

    for (sid, list) in groups {
        for (spec, tasks) in list {
            let demand = demand_for(state, sid, spec);
            let outcome = place_group(&mut index, &demand, tasks.len());
            for (t, node) in tasks.iter().zip(outcome.nodes.iter()) {
                put.push(assigned(t, index.nodes[*node].id, &now));
            }
            let explanation = outcome.failures.explain();
            for t in tasks.iter().skip(outcome.nodes.len()) {
                put.extend(pending(t, &explanation, &now));
            }
        }
    }

    if put.is_empty() {
        Vec::new()
    } else {
        vec![Command::Tasks {
            put,
            remove: Vec::new(),
        }]
    }
}

#[cfg(test)]
mod tests;
