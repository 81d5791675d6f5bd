use super::testkit::*;
use super::*;
use bollard_stubs::models::{
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, SwarmSpec, SwarmSpecOrchestration, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

fn run(state: &ClusterState, secs: u64) -> ReconcileOutput {
    let mut ids = ids();
    reconcile(state, at(secs), &mut ids)
}

fn created(put: &[Task]) -> Vec<&Task> {
    put.iter()
        .filter(|t| t.id.as_deref().unwrap_or("").starts_with("new"))
        .collect()
}

fn desired(put: &[Task], id: &str) -> Option<TaskState> {
    put.iter()
        .find(|t| t.id.as_deref() == Some(id))
        .and_then(|t| t.desired_state)
}

fn restart_spec(condition: TaskSpecRestartPolicyConditionEnum, delay_s: i64, max: i64) -> TaskSpec {
    let mut spec = image_spec("busybox");
    spec.restart_policy = Some(TaskSpecRestartPolicy {
        condition: Some(condition),
        delay: Some(delay_s * 1_000_000_000),
        max_attempts: Some(max),
        window: None,
    });
    spec
}

fn set_state(state: &mut ClusterState, id: &str, s: TaskState, secs: u64) {
    let t = state.tasks.get_mut(id).unwrap();
    t.status = Some(TaskStatus {
        state: Some(s),
        timestamp: Some(ts(secs)),
        ..Default::default()
    });
}

#[test]
fn scale_up_creates_missing_slots_with_the_template() {
    let svc = replicated("s", 3, image_spec("busybox"));
    let state = cluster(
        vec![node("n1")],
        vec![svc.clone()],
        vec![task("a", &svc, 1, Some("n1"), TaskState::RUNNING, 0)],
    );
    let out = run(&state, 10);
    let (put, remove) = task_changes(&out.commands);
    assert!(remove.is_empty());
    let new = created(&put);
    assert_eq!(new.len(), 2);
    let mut slots: Vec<i64> = new.iter().map(|t| t.slot.unwrap()).collect();
    slots.sort();
    assert_eq!(slots, vec![2, 3]);
    let t = new[0];
    assert_eq!(t.desired_state, Some(TaskState::RUNNING));
    assert_eq!(observed_state(t), TaskState::NEW);
    assert_eq!(t.service_id.as_deref(), Some("s"));
    assert_eq!(t.spec, Some(image_spec("busybox")));
    assert!(t.node_id.is_none() && t.name.is_none());
    // Applied, the next pass has nothing to do.
    let mut state = state;
    apply(&mut state, out.commands, 10);
    assert!(run(&state, 11).commands.is_empty());
}

#[test]
fn scale_down_stops_the_highest_slots_then_forgets_them() {
    let svc = replicated("s", 1, image_spec("busybox"));
    let mut state = cluster(
        vec![node("n1")],
        vec![svc.clone()],
        (1..=3)
            .map(|i| task(&format!("t{i}"), &svc, i, Some("n1"), TaskState::RUNNING, 0))
            .collect(),
    );
    let out = run(&state, 10);
    let (put, _) = task_changes(&out.commands);
    assert_eq!(put.len(), 2);
    assert_eq!(desired(&put, "t2"), Some(TaskState::SHUTDOWN));
    assert_eq!(desired(&put, "t3"), Some(TaskState::SHUTDOWN));
    apply(&mut state, out.commands, 10);
    set_state(&mut state, "t2", TaskState::SHUTDOWN, 11);
    set_state(&mut state, "t3", TaskState::SHUTDOWN, 11);
    let (put, mut remove) = task_changes(&run(&state, 12).commands);
    remove.sort();
    assert!(put.is_empty());
    assert_eq!(remove, vec!["t2", "t3"]);
}

#[test]
fn global_service_follows_eligible_nodes() {
    let svc = global("g", image_spec("busybox"));
    let mut state = cluster(
        vec![node("n1"), node("n2")],
        vec![svc.clone()],
        vec![task("a", &svc, 0, Some("n1"), TaskState::RUNNING, 0)],
    );
    let (put, _) = task_changes(&run(&state, 5).commands);
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].node_id.as_deref(), Some("n2"));
    assert_eq!(put[0].slot, None);
    // A drained node loses its task, a paused one keeps it but gets no new one.
    state
        .nodes
        .get_mut("n1")
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .availability = Some(NodeSpecAvailabilityEnum::DRAIN);
    state
        .nodes
        .get_mut("n2")
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .availability = Some(NodeSpecAvailabilityEnum::PAUSE);
    let (put, _) = task_changes(&run(&state, 6).commands);
    assert_eq!(put.len(), 1);
    assert_eq!(desired(&put, "a"), Some(TaskState::SHUTDOWN));
}

#[test]
fn restart_any_waits_for_the_delay() {
    let svc = replicated(
        "s",
        1,
        restart_spec(TaskSpecRestartPolicyConditionEnum::ANY, 5, 0),
    );
    let mut state = cluster(
        vec![node("n1")],
        vec![svc.clone()],
        vec![task("a", &svc, 1, Some("n1"), TaskState::RUNNING, 0)],
    );
    set_state(&mut state, "a", TaskState::FAILED, 100);
    let out = run(&state, 101);
    let (put, _) = task_changes(&out.commands);
    assert_eq!(put.len(), 1);
    assert_eq!(desired(&put, "a"), Some(TaskState::SHUTDOWN));
    assert_eq!(out.wake_at, Some(at(105)));
    apply(&mut state, out.commands, 101);
    let out = run(&state, 103);
    assert!(out.commands.is_empty());
    assert_eq!(out.wake_at, Some(at(105)));
    let (put, _) = task_changes(&run(&state, 105).commands);
    let new = created(&put);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].slot, Some(1));
}

#[test]
fn restart_conditions_none_and_on_failure() {
    for (condition, end, restarts) in [
        (
            TaskSpecRestartPolicyConditionEnum::NONE,
            TaskState::FAILED,
            false,
        ),
        (
            TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            TaskState::COMPLETE,
            false,
        ),
        (
            TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            TaskState::FAILED,
            true,
        ),
        (
            TaskSpecRestartPolicyConditionEnum::ANY,
            TaskState::COMPLETE,
            true,
        ),
    ] {
        let svc = replicated("s", 1, restart_spec(condition, 0, 0));
        let mut state = cluster(
            vec![node("n1")],
            vec![svc.clone()],
            vec![task("a", &svc, 1, Some("n1"), TaskState::RUNNING, 0)],
        );
        set_state(&mut state, "a", end, 10);
        let (put, _) = task_changes(&run(&state, 20).commands);
        assert_eq!(
            desired(&put, "a"),
            Some(TaskState::SHUTDOWN),
            "{condition:?} {end:?}"
        );
        assert_eq!(
            created(&put).len(),
            usize::from(restarts),
            "{condition:?} {end:?}"
        );
    }
}

#[test]
fn restart_stops_after_max_attempts() {
    let svc = replicated(
        "s",
        1,
        restart_spec(TaskSpecRestartPolicyConditionEnum::ANY, 0, 2),
    );
    let mut tasks = Vec::new();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let mut t = task(id, &svc, 1, Some("n1"), TaskState::FAILED, i as u64 * 10);
        t.desired_state = Some(TaskState::SHUTDOWN);
        tasks.push(t);
    }
    // Two failures: the second restart is still allowed.
    let state = cluster(vec![node("n1")], vec![svc.clone()], tasks[..2].to_vec());
    assert_eq!(created(&task_changes(&run(&state, 50).commands).0).len(), 1);
    // Three failures = two restarts used up.
    let state = cluster(vec![node("n1")], vec![svc], tasks);
    assert!(run(&state, 50).commands.is_empty());
}

#[test]
fn node_down_replaces_its_tasks_at_once() {
    let svc = replicated(
        "s",
        2,
        restart_spec(TaskSpecRestartPolicyConditionEnum::NONE, 30, 0),
    );
    let mut state = cluster(
        vec![node("n1"), node("n2")],
        vec![svc.clone()],
        vec![
            task("a", &svc, 1, Some("n1"), TaskState::RUNNING, 0),
            task("b", &svc, 2, Some("n2"), TaskState::RUNNING, 0),
        ],
    );
    state
        .nodes
        .get_mut("n1")
        .unwrap()
        .status
        .as_mut()
        .unwrap()
        .state = Some(NodeState::DOWN);
    let (put, _) = task_changes(&run(&state, 10).commands);
    assert_eq!(desired(&put, "a"), Some(TaskState::SHUTDOWN));
    let new = created(&put);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].slot, Some(1));
    assert!(new[0].node_id.is_none());
}

#[test]
fn drain_moves_tasks_away() {
    let svc = replicated("s", 1, image_spec("busybox"));
    let mut state = cluster(
        vec![node("n1"), node("n2")],
        vec![svc.clone()],
        vec![task("a", &svc, 1, Some("n1"), TaskState::RUNNING, 0)],
    );
    state
        .nodes
        .get_mut("n1")
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .availability = Some(NodeSpecAvailabilityEnum::DRAIN);
    let out = run(&state, 10);
    apply(&mut state, out.commands, 10);
    let sched = crate::swarm::scheduler::schedule(&state, at(10));
    let (put, _) = task_changes(&sched);
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].node_id.as_deref(), Some("n2"));
}

fn updated(
    mut svc: crate::swarm::state::ServiceRecord,
    image: &str,
    cfg: ServiceSpecUpdateConfig,
) -> crate::swarm::state::ServiceRecord {
    let spec = svc.service.spec.as_mut().unwrap();
    svc.previous_spec = Some(spec.clone());
    spec.task_template = Some(image_spec(image));
    spec.update_config = Some(cfg);
    svc.service.updated_at = Some(ts(50));
    svc
}

#[test]
fn rolling_update_stop_first_in_batches() {
    let old = replicated("s", 4, image_spec("v1"));
    let tasks: Vec<Task> = (1..=4)
        .map(|i| task(&format!("t{i}"), &old, i, Some("n1"), TaskState::RUNNING, 0))
        .collect();
    let svc = updated(
        old,
        "v2",
        ServiceSpecUpdateConfig {
            parallelism: Some(2),
            delay: Some(10_000_000_000),
            ..Default::default()
        },
    );
    let mut state = cluster(vec![node("n1")], vec![svc], tasks);
    let out = run(&state, 100);
    assert!(out.commands.iter().any(|c| matches!(c, Command::SetServiceUpdateStatus { status: Some(s), .. } if s.state == Some(UpdateState::UPDATING))));
    let (put, _) = task_changes(&out.commands);
    assert_eq!(desired(&put, "t1"), Some(TaskState::SHUTDOWN));
    assert_eq!(desired(&put, "t2"), Some(TaskState::SHUTDOWN));
    assert_eq!(desired(&put, "t3"), None);
    let new: Vec<Task> = created(&put).into_iter().cloned().collect();
    assert_eq!(new.len(), 2);
    assert!(new.iter().all(|t| t.spec == Some(image_spec("v2"))));
    apply(&mut state, out.commands, 100);
    // The batch is not running yet: nothing more.
    assert!(task_changes(&run(&state, 101).commands).0.is_empty());
    for t in &new {
        let id = t.id.clone().unwrap();
        state.tasks.get_mut(&id).unwrap().node_id = Some("n1".into());
        set_state(&mut state, &id, TaskState::RUNNING, 105);
        set_state(
            &mut state,
            if t.slot == Some(1) { "t1" } else { "t2" },
            TaskState::SHUTDOWN,
            104,
        );
    }
    // Running, but the delay (10 s) has not passed.
    let out = run(&state, 110);
    assert!(task_changes(&out.commands).0.is_empty());
    assert_eq!(out.wake_at, Some(at(115)));
    let (put, _) = task_changes(&run(&state, 115).commands);
    assert_eq!(desired(&put, "t3"), Some(TaskState::SHUTDOWN));
    assert_eq!(desired(&put, "t4"), Some(TaskState::SHUTDOWN));
    assert_eq!(created(&put).len(), 2);
}

#[test]
fn rolling_update_start_first_keeps_the_old_task_until_the_new_runs() {
    let old = replicated("s", 1, image_spec("v1"));
    let tasks = vec![task("t1", &old, 1, Some("n1"), TaskState::RUNNING, 0)];
    let svc = updated(
        old,
        "v2",
        ServiceSpecUpdateConfig {
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
            ..Default::default()
        },
    );
    let mut state = cluster(vec![node("n1")], vec![svc], tasks);
    let out = run(&state, 100);
    let (put, _) = task_changes(&out.commands);
    assert_eq!(desired(&put, "t1"), None);
    let new_id = created(&put)[0].id.clone().unwrap();
    apply(&mut state, out.commands, 100);
    state.tasks.get_mut(&new_id).unwrap().node_id = Some("n1".into());
    set_state(&mut state, &new_id, TaskState::RUNNING, 101);
    let out = run(&state, 102);
    let (put, _) = task_changes(&out.commands);
    assert_eq!(desired(&put, "t1"), Some(TaskState::SHUTDOWN));
    assert!(created(&put).is_empty());
    // Completed once the new task has run for the monitor period (5 s by default).
    assert_eq!(out.wake_at, Some(at(106)));
    apply(&mut state, out.commands, 102);
    set_state(&mut state, "t1", TaskState::SHUTDOWN, 103);
    let out = run(&state, 106);
    assert!(out.commands.iter().any(|c| matches!(c, Command::SetServiceUpdateStatus { status: Some(s), .. } if s.state == Some(UpdateState::COMPLETED))));
}

fn failing_update(action: ServiceSpecUpdateConfigFailureActionEnum) -> Vec<Command> {
    let old = replicated("s", 2, image_spec("v1"));
    let tasks = vec![
        task("t1", &old, 1, Some("n1"), TaskState::RUNNING, 0),
        task("t2", &old, 2, Some("n1"), TaskState::RUNNING, 0),
    ];
    let svc = updated(
        old,
        "v2",
        ServiceSpecUpdateConfig {
            failure_action: Some(action),
            ..Default::default()
        },
    );
    let mut state = cluster(vec![node("n1")], vec![svc], tasks);
    let out = run(&state, 100);
    let new_id = created(&task_changes(&out.commands).0)[0]
        .id
        .clone()
        .unwrap();
    apply(&mut state, out.commands, 100);
    state.tasks.get_mut(&new_id).unwrap().node_id = Some("n1".into());
    set_state(&mut state, &new_id, TaskState::FAILED, 103);
    run(&state, 104).commands
}

#[test]
fn update_failure_pauses() {
    let cmds = failing_update(ServiceSpecUpdateConfigFailureActionEnum::PAUSE);
    let status = cmds.iter().find_map(|c| match c {
        Command::SetServiceUpdateStatus {
            status: Some(s), ..
        } => Some(s.clone()),
        _ => None,
    });
    let status = status.unwrap();
    assert_eq!(status.state, Some(UpdateState::PAUSED));
    assert!(
        status
            .message
            .unwrap()
            .starts_with("update paused due to failure or early termination of task new")
    );
    // No further slot is updated.
    let (put, _) = task_changes(&cmds);
    assert_eq!(desired(&put, "t2"), None);
}

#[test]
fn update_failure_rolls_back() {
    let cmds = failing_update(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK);
    let rollback = cmds.iter().find_map(|c| match c {
        Command::UpdateService {
            spec,
            rollback: true,
            version: 10,
            ..
        } => Some(spec.clone()),
        _ => None,
    });
    assert_eq!(rollback.unwrap().task_template, Some(image_spec("v1")));
    assert!(cmds.iter().any(|c| matches!(c, Command::SetServiceUpdateStatus { status: Some(s), .. } if s.state == Some(UpdateState::ROLLBACK_STARTED))));
}

#[test]
fn history_keeps_the_retention_limit_per_slot() {
    let svc = replicated("s", 1, image_spec("busybox"));
    let mut tasks = vec![task("live", &svc, 1, Some("n1"), TaskState::RUNNING, 100)];
    for i in 0..5 {
        let mut t = task(
            &format!("old{i}"),
            &svc,
            1,
            Some("n1"),
            TaskState::FAILED,
            i * 10,
        );
        t.desired_state = Some(TaskState::SHUTDOWN);
        tasks.push(t);
    }
    let mut state = cluster(vec![node("n1")], vec![svc], tasks);
    state.cluster = Some(crate::swarm::state::ClusterRecord {
        spec: SwarmSpec {
            orchestration: Some(SwarmSpecOrchestration {
                task_history_retention_limit: Some(3),
            }),
            ..Default::default()
        },
        ..Default::default()
    });
    let (put, mut remove) = task_changes(&run(&state, 200).commands);
    remove.sort();
    assert!(put.is_empty());
    assert_eq!(remove, vec!["old0", "old1"]);
}

#[test]
fn removed_service_tasks_stop_then_disappear() {
    let svc = replicated("s", 1, image_spec("busybox"));
    let mut state = cluster(
        vec![node("n1")],
        vec![],
        vec![task("a", &svc, 1, Some("n1"), TaskState::RUNNING, 0)],
    );
    let out = run(&state, 10);
    assert_eq!(
        desired(&task_changes(&out.commands).0, "a"),
        Some(TaskState::SHUTDOWN)
    );
    apply(&mut state, out.commands, 10);
    set_state(&mut state, "a", TaskState::SHUTDOWN, 11);
    assert_eq!(task_changes(&run(&state, 12).commands).1, vec!["a"]);
}

#[test]
fn paused_update_holds_until_the_service_is_updated_again() {
    let old = replicated("s", 2, image_spec("v1"));
    let tasks = vec![
        task("t1", &old, 1, Some("n1"), TaskState::RUNNING, 0),
        task("t2", &old, 2, Some("n1"), TaskState::RUNNING, 0),
    ];
    let mut svc = updated(old, "v2", ServiceSpecUpdateConfig::default());
    svc.service.update_status = Some(ServiceUpdateStatus {
        state: Some(UpdateState::PAUSED),
        started_at: Some(ts(60)),
        completed_at: None,
        message: Some("update paused".into()),
    });
    let mut state = cluster(vec![node("n1")], vec![svc], tasks);
    assert!(run(&state, 100).commands.is_empty());
    // `service update` again (after the pause began) starts a new update.
    let s = state.services.get_mut("s").unwrap();
    s.service.updated_at = Some(ts(90));
    s.service.spec.as_mut().unwrap().task_template = Some(image_spec("v3"));
    let out = run(&state, 100);
    assert!(out.commands.iter().any(|c| matches!(c, Command::SetServiceUpdateStatus { status: Some(s), .. } if s.state == Some(UpdateState::UPDATING))));
    assert_eq!(created(&task_changes(&out.commands).0).len(), 1);
}

#[test]
fn global_service_respects_constraints() {
    let mut spec = image_spec("busybox");
    spec.placement = Some(bollard_stubs::models::TaskSpecPlacement {
        constraints: Some(vec!["node.labels.role==edge".into()]),
        ..Default::default()
    });
    let svc = global("g", spec);
    let state = cluster(
        vec![label(node("n1"), "role", "edge"), node("n2")],
        vec![svc],
        vec![],
    );
    let (put, _) = task_changes(&run(&state, 1).commands);
    assert_eq!(put.len(), 1);
    assert_eq!(put[0].node_id.as_deref(), Some("n1"));
}

#[test]
fn same_input_same_output() {
    let svc = replicated("s", 5, image_spec("busybox"));
    let state = cluster(vec![node("n1"), node("n2")], vec![svc], vec![]);
    assert_eq!(run(&state, 1), run(&state, 1));
}

#[test]
fn a_failure_in_the_last_batch_still_rolls_back() {
    let old = replicated("s", 1, image_spec("v1"));
    let tasks = vec![task("t1", &old, 1, Some("n1"), TaskState::RUNNING, 0)];
    let svc = updated(
        old,
        "v2",
        ServiceSpecUpdateConfig {
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            ..Default::default()
        },
    );
    let mut state = cluster(vec![node("n1")], vec![svc], tasks);
    let out = run(&state, 100);
    let new_id = created(&task_changes(&out.commands).0)[0]
        .id
        .clone()
        .unwrap();
    apply(&mut state, out.commands, 100);
    set_state(&mut state, "t1", TaskState::SHUTDOWN, 101);
    state.tasks.get_mut(&new_id).unwrap().node_id = Some("n1".into());
    set_state(&mut state, &new_id, TaskState::FAILED, 103);
    // Nothing is left to update, yet the failure counts: the service goes back to v1.
    let cmds = run(&state, 104).commands;
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::UpdateService { rollback: true, .. })),
        "{cmds:?}"
    );
}

#[test]
fn a_replicated_job_runs_its_completions_max_concurrent_at_a_time() {
    let mut svc = replicated("s", 1, image_spec("v1"));
    if let Some(spec) = svc.service.spec.as_mut() {
        spec.mode = Some(bollard_stubs::models::ServiceSpecMode {
            replicated_job: Some(bollard_stubs::models::ServiceSpecModeReplicatedJob {
                max_concurrent: Some(2),
                total_completions: Some(3),
            }),
            ..Default::default()
        });
    }
    let mut state = cluster(vec![node("n1")], vec![svc], vec![]);
    let out = run(&state, 100);
    let (put, _) = task_changes(&out.commands);
    let first: Vec<String> = created(&put)
        .iter()
        .map(|t| t.id.clone().unwrap())
        .collect();
    assert_eq!(first.len(), 2, "at most two at once");
    assert!(
        created(&put)
            .iter()
            .all(|t| t.desired_state == Some(TaskState::COMPLETE))
    );
    apply(&mut state, out.commands, 100);
    // Both complete: the third and last completion starts, nothing restarts.
    for id in &first {
        set_state(&mut state, id, TaskState::COMPLETE, 101);
    }
    let mut out = run(&state, 102);
    let (put, _) = task_changes(&out.commands);
    assert_eq!(created(&put).len(), 1);
    assert_eq!(created(&put)[0].slot, Some(3));
    // Each run numbers its new IDs from 1 again: give this one its own.
    for c in &mut out.commands {
        if let Command::Tasks { put, .. } = c {
            for t in put.iter_mut().filter(|t| t.slot == Some(3)) {
                t.id = Some("third".into());
            }
        }
    }
    apply(&mut state, out.commands, 102);
    set_state(&mut state, "third", TaskState::COMPLETE, 103);
    let out = run(&state, 104);
    assert!(created(&task_changes(&out.commands).0).is_empty());
}
