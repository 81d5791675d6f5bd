//! Scheduler and orchestrator speed (issue 8): 1,000 nodes / 100,000 tasks and 100,000
//! nodes / 100,000 tasks. Run with
//! `cargo test --release -p berth-orchestrator --test scheduler_bench -- --ignored --nocapture`.

use berth_orchestrator::swarm::reconcile::reconcile;
use berth_orchestrator::swarm::scheduler::schedule;
use berth_orchestrator::swarm::state::{ClusterState, Command, ServiceRecord};
use bollard_stubs::models::{
    Node, NodeDescription, NodeSpec, NodeSpecAvailabilityEnum, NodeState, NodeStatus,
    ObjectVersion, ResourceObject, Service, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, Task, TaskSpec, TaskSpecContainerSpec, TaskSpecResources, TaskState,
};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

const SERVICES: usize = 10;

fn node(i: usize) -> Node {
    Node {
        id: Some(format!("node{i:06}")),
        spec: Some(NodeSpec {
            availability: Some(NodeSpecAvailabilityEnum::ACTIVE),
            labels: Some(HashMap::from([("zone".to_string(), format!("z{}", i % 3))])),
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: Some(format!("host{i}")),
            resources: Some(ResourceObject {
                nano_cpus: Some(64_000_000_000),
                memory_bytes: Some(1 << 40),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: Some(NodeState::READY),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn template() -> TaskSpec {
    TaskSpec {
        container_spec: Some(TaskSpecContainerSpec {
            image: Some("busybox".into()),
            ..Default::default()
        }),
        resources: Some(TaskSpecResources {
            reservations: Some(ResourceObject {
                nano_cpus: Some(1_000_000),
                memory_bytes: Some(1 << 20),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `nodes` ready nodes and `tasks` replicas spread over SERVICES services, no task yet.
fn cluster(nodes: usize, tasks: usize) -> ClusterState {
    let mut s = ClusterState::default();
    for i in 0..nodes {
        let n = node(i);
        s.nodes.insert(n.id.clone().unwrap_or_default(), n);
    }
    for i in 0..SERVICES {
        let id = format!("svc{i:02}");
        s.services.insert(
            id.clone(),
            ServiceRecord {
                service: Service {
                    id: Some(id.clone()),
                    version: Some(ObjectVersion { index: Some(1) }),
                    spec: Some(ServiceSpec {
                        name: Some(id),
                        task_template: Some(template()),
                        mode: Some(ServiceSpecMode {
                            replicated: Some(ServiceSpecModeReplicated {
                                replicas: Some((tasks / SERVICES) as i64),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                previous_spec: None,
            },
        );
    }
    s
}

fn put_tasks(state: &mut ClusterState, commands: Vec<Command>) -> usize {
    let mut n = 0;
    for c in commands {
        if let Command::Tasks { put, .. } = c {
            for t in put {
                n += 1;
                state.tasks.insert(t.id.clone().unwrap_or_default(), t);
            }
        }
    }
    n
}

fn run(nodes: usize, tasks: usize) -> (Duration, Duration) {
    let mut state = cluster(nodes, tasks);
    let now = SystemTime::now();
    let mut counter = 0u64;
    let mut ids = || {
        counter += 1;
        format!("task{counter:020}")
    };
    let started = Instant::now();
    let out = reconcile(&state, now, &mut ids);
    let orchestrate = started.elapsed();
    assert_eq!(put_tasks(&mut state, out.commands), tasks);

    let started = Instant::now();
    let commands = schedule(&state, now);
    let scheduling = started.elapsed();
    let placed: Vec<Task> = commands
        .into_iter()
        .flat_map(|c| match c {
            Command::Tasks { put, .. } => put,
            _ => Vec::new(),
        })
        .collect();
    let assigned = placed
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::ASSIGNED))
        .count();
    assert_eq!(assigned, tasks);
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for t in &placed {
        *per_node
            .entry(t.node_id.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    let (min, max) = (
        per_node.values().min().copied().unwrap_or(0),
        per_node.values().max().copied().unwrap_or(0),
    );
    println!(
        "{nodes} nodes / {tasks} tasks: orchestrator {orchestrate:?}, scheduler {scheduling:?} (tasks per node {min}..{max})"
    );
    (orchestrate, scheduling)
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn scheduler_1k_nodes_100k_tasks() {
    let (_, scheduling) = run(1_000, 100_000);
    assert!(scheduling < Duration::from_secs(1), "{scheduling:?}");
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn scheduler_100k_nodes_100k_tasks() {
    let (_, scheduling) = run(100_000, 100_000);
    assert!(scheduling < Duration::from_secs(10), "{scheduling:?}");
}
