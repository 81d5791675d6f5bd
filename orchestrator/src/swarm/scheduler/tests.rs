use super::*;
use crate::swarm::reconcile::testkit::*;
use bollard_stubs::models::{
    EndpointPortConfig, EndpointSpec, NodeSpecAvailabilityEnum, ResourceObject, TaskSpecPlacement,
    TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources,
};
use std::collections::HashMap;

fn pending_task(id: &str, svc: &crate::swarm::state::ServiceRecord, slot: i64) -> Task {
    task(id, svc, slot, None, TaskState::NEW, 0)
}

fn placed(cmds: &[Command]) -> HashMap<String, Task> {
    let (put, remove) = task_changes(cmds);
    assert!(remove.is_empty());
    put.into_iter()
        .map(|t| (t.id.clone().unwrap(), t))
        .collect()
}

fn per_node(put: &HashMap<String, Task>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for t in put.values() {
        if observed_state(t) == TaskState::ASSIGNED {
            *m.entry(t.node_id.clone().unwrap()).or_default() += 1;
        }
    }
    m
}

fn with_placement(mut spec: TaskSpec, p: TaskSpecPlacement) -> TaskSpec {
    spec.placement = Some(p);
    spec
}

#[test]
fn spreads_evenly_and_prefers_emptier_nodes() {
    let svc = replicated("s", 7, image_spec("busybox"));
    let other = replicated("o", 2, image_spec("busybox"));
    let tasks = (1..=7)
        .map(|i| pending_task(&format!("t{i}"), &svc, i))
        .chain([
            task("o1", &other, 1, Some("n1"), TaskState::RUNNING, 0),
            task("o2", &other, 2, Some("n1"), TaskState::RUNNING, 0),
        ]);
    let tasks: Vec<Task> = tasks.collect();
    let state = cluster(
        vec![node("n1"), node("n2"), node("n3")],
        vec![svc, other],
        tasks,
    );
    let put = placed(&schedule(&state, at(1)));
    let counts = per_node(&put);
    assert_eq!(counts.values().sum::<usize>(), 7);
    // 7 over 3 nodes: 3/2/2, and the extra one is not on n1, which is busier.
    assert_eq!(counts["n1"], 2);
    assert!(counts.values().all(|&c| (2..=3).contains(&c)));
    let t = &put["t1"];
    assert_eq!(
        t.status.as_ref().unwrap().message.as_deref(),
        Some(ASSIGNED_MESSAGE)
    );
    // Nothing changes on a second run once applied.
    let mut state = state;
    let cmds = schedule(&state, at(1));
    apply(&mut state, cmds, 1);
    assert!(schedule(&state, at(2)).is_empty());
}

#[test]
fn constraints_explain_why_a_task_is_pending() {
    let spec = with_placement(
        image_spec("busybox"),
        TaskSpecPlacement {
            constraints: Some(vec!["node.labels.disk==ssd".into()]),
            ..Default::default()
        },
    );
    let mut spec = spec;
    spec.resources = Some(TaskSpecResources {
        reservations: Some(ResourceObject {
            memory_bytes: Some(6 << 30),
            ..Default::default()
        }),
        ..Default::default()
    });
    let svc = replicated("s", 1, spec);
    let mut down = node("n5");
    down.status.as_mut().unwrap().state = Some(NodeState::DOWN);
    let mut small_ssd = label(node("n4"), "disk", "ssd");
    if let Some(r) = small_ssd
        .description
        .as_mut()
        .and_then(|d| d.resources.as_mut())
    {
        r.memory_bytes = Some(2 << 30);
    }
    let state = cluster(
        vec![node("n1"), node("n2"), node("n3"), small_ssd, down],
        vec![svc.clone()],
        vec![pending_task("t1", &svc, 1)],
    );
    let put = placed(&schedule(&state, at(1)));
    let st = put["t1"].status.clone().unwrap();
    assert_eq!(st.state, Some(TaskState::PENDING));
    assert_eq!(
        st.err.as_deref(),
        Some(
            "no suitable node (scheduling constraints not satisfied on 3 nodes; 1 node not available for new tasks; insufficient resources on 1 node)"
        )
    );
    assert!(put["t1"].node_id.is_none());
    // Same answer again: no new command.
    let mut state = state;
    let cmds = schedule(&state, at(1));
    apply(&mut state, cmds, 1);
    assert!(schedule(&state, at(2)).is_empty());
}

#[test]
fn constraint_operators_and_keys() {
    use constraint::Constraint;
    let n = label(node("abc"), "zone", "East");
    let m = |e: &str| Constraint::parse(e).unwrap().matches(&n);
    assert!(m("node.labels.zone==east"));
    assert!(m("node.labels.zone != west"));
    assert!(m("node.role==worker"));
    assert!(!m("node.role==manager"));
    assert!(m("node.id==abc"));
    assert!(m("node.hostname==host-abc"));
    assert!(m("node.platform.os==linux"));
    assert!(m("node.platform.arch==x86_64"));
    assert!(m("node.labels.missing!=x"));
    assert!(!m("engine.labels.x==y"));
    assert!(!m("bogus.key==1"));
    assert!(Constraint::parse("no operator").is_err());
}

#[test]
fn reservations_fill_nodes_then_stay_pending() {
    let mut spec = image_spec("busybox");
    spec.resources = Some(TaskSpecResources {
        reservations: Some(ResourceObject {
            nano_cpus: Some(3_000_000_000),
            ..Default::default()
        }),
        ..Default::default()
    });
    let svc = replicated("s", 3, spec);
    let state = cluster(
        vec![node("n1"), node("n2")],
        vec![svc.clone()],
        (1..=3)
            .map(|i| pending_task(&format!("t{i}"), &svc, i))
            .collect(),
    );
    let put = placed(&schedule(&state, at(1)));
    let counts = per_node(&put);
    assert_eq!(counts.get("n1"), Some(&1));
    assert_eq!(counts.get("n2"), Some(&1));
    let pending: Vec<_> = put
        .values()
        .filter(|t| observed_state(t) == TaskState::PENDING)
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].status.as_ref().unwrap().err.as_deref(),
        Some("no suitable node (insufficient resources on 2 nodes)")
    );
}

#[test]
fn drained_and_paused_nodes_get_nothing() {
    let svc = replicated("s", 4, image_spec("busybox"));
    let mut drained = node("n2");
    drained.spec.as_mut().unwrap().availability = Some(NodeSpecAvailabilityEnum::DRAIN);
    let mut paused = node("n3");
    paused.spec.as_mut().unwrap().availability = Some(NodeSpecAvailabilityEnum::PAUSE);
    let state = cluster(
        vec![node("n1"), drained, paused],
        vec![svc.clone()],
        (1..=4)
            .map(|i| pending_task(&format!("t{i}"), &svc, i))
            .collect(),
    );
    let put = placed(&schedule(&state, at(1)));
    assert_eq!(per_node(&put), HashMap::from([("n1".to_string(), 4)]));
}

#[test]
fn host_ports_and_max_replicas_limit_each_node() {
    let mut svc = replicated(
        "s",
        3,
        with_placement(
            image_spec("busybox"),
            TaskSpecPlacement {
                max_replicas: Some(1),
                ..Default::default()
            },
        ),
    );
    let state = cluster(
        vec![node("n1"), node("n2")],
        vec![svc.clone()],
        (1..=3)
            .map(|i| pending_task(&format!("t{i}"), &svc, i))
            .collect(),
    );
    let put = placed(&schedule(&state, at(1)));
    assert_eq!(per_node(&put).values().sum::<usize>(), 2);
    let p = put
        .values()
        .find(|t| observed_state(t) == TaskState::PENDING)
        .unwrap();
    assert_eq!(
        p.status.as_ref().unwrap().err.as_deref(),
        Some("no suitable node (max replicas per node limit exceed)")
    );

    svc.service.spec.as_mut().unwrap().task_template = Some(image_spec("busybox"));
    svc.service.spec.as_mut().unwrap().endpoint_spec = Some(EndpointSpec {
        ports: Some(vec![EndpointPortConfig {
            target_port: Some(80),
            published_port: Some(8080),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let state = cluster(
        vec![node("n1"), node("n2")],
        vec![svc.clone()],
        (1..=3)
            .map(|i| pending_task(&format!("t{i}"), &svc, i))
            .collect(),
    );
    let put = placed(&schedule(&state, at(1)));
    assert_eq!(
        per_node(&put),
        HashMap::from([("n1".into(), 1), ("n2".into(), 1)])
    );
    let p = put
        .values()
        .find(|t| observed_state(t) == TaskState::PENDING)
        .unwrap();
    assert_eq!(
        p.status.as_ref().unwrap().err.as_deref(),
        Some("no suitable node (host-mode port already in use on 2 nodes)")
    );
}

#[test]
fn placement_preference_spreads_over_label_values_first() {
    let spec = with_placement(
        image_spec("busybox"),
        TaskSpecPlacement {
            preferences: Some(vec![TaskSpecPlacementPreferences {
                spread: Some(TaskSpecPlacementSpread {
                    spread_descriptor: Some("node.labels.zone".into()),
                }),
            }]),
            ..Default::default()
        },
    );
    let svc = replicated("s", 4, spec);
    // Zone a has three nodes, zone b one: plain spread would put 3 in a; the preference
    // puts 2 in each zone.
    let state = cluster(
        vec![
            label(node("n1"), "zone", "a"),
            label(node("n2"), "zone", "a"),
            label(node("n3"), "zone", "a"),
            label(node("n4"), "zone", "b"),
        ],
        vec![svc.clone()],
        (1..=4)
            .map(|i| pending_task(&format!("t{i}"), &svc, i))
            .collect(),
    );
    let put = placed(&schedule(&state, at(1)));
    let counts = per_node(&put);
    assert_eq!(counts.get("n4"), Some(&2));
    assert_eq!(
        counts.get("n1").copied().unwrap_or(0)
            + counts.get("n2").copied().unwrap_or(0)
            + counts.get("n3").copied().unwrap_or(0),
        2
    );
}

#[test]
fn global_tasks_are_checked_against_their_node() {
    let svc = global("g", image_spec("busybox"));
    let mut down = node("n2");
    down.status.as_mut().unwrap().state = Some(NodeState::DOWN);
    let state = cluster(
        vec![node("n1"), down],
        vec![svc.clone()],
        vec![
            task("g1", &svc, 0, Some("n1"), TaskState::NEW, 0),
            task("g2", &svc, 0, Some("n2"), TaskState::NEW, 0),
        ],
    );
    let put = placed(&schedule(&state, at(1)));
    assert_eq!(observed_state(&put["g1"]), TaskState::ASSIGNED);
    assert_eq!(put["g1"].node_id.as_deref(), Some("n1"));
    assert_eq!(
        put["g2"].status.as_ref().unwrap().err.as_deref(),
        Some("no suitable node (1 node not available for new tasks)")
    );
}
