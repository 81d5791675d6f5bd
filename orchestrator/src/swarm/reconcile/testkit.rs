//! Builders for orchestrator and scheduler tests.

use crate::swarm::reconcile::clock;
use crate::swarm::state::{ClusterState, Command, ServiceRecord};
use bollard_stubs::models::*;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

pub fn ts(secs: u64) -> String {
    clock::format(at(secs))
}

pub fn node(id: &str) -> Node {
    Node {
        id: Some(id.into()),
        spec: Some(NodeSpec {
            role: Some(NodeSpecRoleEnum::WORKER),
            availability: Some(NodeSpecAvailabilityEnum::ACTIVE),
            labels: Some(HashMap::new()),
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: Some(format!("host-{id}")),
            platform: Some(Platform {
                architecture: Some("x86_64".into()),
                os: Some("linux".into()),
            }),
            resources: Some(ResourceObject {
                nano_cpus: Some(4_000_000_000),
                memory_bytes: Some(8 << 30),
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

pub fn label(mut n: Node, k: &str, v: &str) -> Node {
    if let Some(s) = n.spec.as_mut() {
        s.labels
            .get_or_insert_with(HashMap::new)
            .insert(k.into(), v.into());
    }
    n
}

pub fn image_spec(image: &str) -> TaskSpec {
    TaskSpec {
        container_spec: Some(TaskSpecContainerSpec {
            image: Some(image.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn replicated(id: &str, replicas: i64, template: TaskSpec) -> ServiceRecord {
    ServiceRecord {
        service: Service {
            id: Some(id.into()),
            version: Some(ObjectVersion { index: Some(10) }),
            updated_at: Some(ts(0)),
            spec: Some(ServiceSpec {
                name: Some(format!("svc-{id}")),
                task_template: Some(template),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated {
                        replicas: Some(replicas),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        previous_spec: None,
    }
}

pub fn global(id: &str, template: TaskSpec) -> ServiceRecord {
    let mut r = replicated(id, 0, template);
    if let Some(s) = r.service.spec.as_mut() {
        s.mode = Some(ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        });
    }
    r
}

/// A task of `service` in `slot` on `node`, observed `state` at `secs`.
pub fn task(
    id: &str,
    service: &ServiceRecord,
    slot: i64,
    node: Option<&str>,
    state: TaskState,
    secs: u64,
) -> Task {
    Task {
        id: Some(id.into()),
        created_at: Some(ts(secs)),
        updated_at: Some(ts(secs)),
        spec: service
            .service
            .spec
            .as_ref()
            .and_then(|s| s.task_template.clone()),
        service_id: service.service.id.clone(),
        slot: (slot > 0).then_some(slot),
        node_id: node.map(String::from),
        status: Some(TaskStatus {
            timestamp: Some(ts(secs)),
            state: Some(state),
            ..Default::default()
        }),
        desired_state: Some(TaskState::RUNNING),
        ..Default::default()
    }
}

pub fn cluster(nodes: Vec<Node>, services: Vec<ServiceRecord>, tasks: Vec<Task>) -> ClusterState {
    let mut s = ClusterState::default();
    for n in nodes {
        s.nodes.insert(n.id.clone().unwrap_or_default(), n);
    }
    for r in services {
        s.services
            .insert(r.service.id.clone().unwrap_or_default(), r);
    }
    for t in tasks {
        s.tasks.insert(t.id.clone().unwrap_or_default(), t);
    }
    s
}

pub fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("new{n:03}")
    }
}

/// Applies commands the way the store does (version index increasing).
pub fn apply(state: &mut ClusterState, commands: Vec<Command>, secs: u64) {
    for c in commands {
        let index = state.tasks.len() as u64 + 1000;
        state.apply(
            index,
            crate::swarm::state::Request {
                at: ts(secs),
                command: c,
            },
        );
    }
}

/// The single Tasks command's put and remove lists (empty when none).
pub fn task_changes(commands: &[Command]) -> (Vec<Task>, Vec<String>) {
    for c in commands {
        if let Command::Tasks { put, remove } = c {
            return (put.clone(), remove.clone());
        }
    }
    (Vec::new(), Vec::new())
}
