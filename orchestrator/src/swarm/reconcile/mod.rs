//! The orchestrator: turns services into tasks (swarmkit's replicated, global, restart,
//! update and task reaper loops in one pure pass).
//!
//! Every decision is derived from the state and `now`: restart delays and update pacing come
//! from task timestamps, so the pass can run on any manager at any time and returns the next
//! instant at which waiting would change its answer.

pub mod clock;
mod jobs;
pub mod policy;
#[cfg(test)]
pub(crate) mod testkit;

use crate::swarm::scheduler::constraint::{self, Constraint};
use crate::swarm::state::{ClusterState, Command, ServiceRecord, observed_state, task_state_rank};
use bollard_stubs::models::{
    Node, NodeSpecAvailabilityEnum, NodeState, ServiceSpec, ServiceUpdateStatus,
    ServiceUpdateStatusStateEnum as UpdateState, Task, TaskSpec, TaskState, TaskStatus,
};
use policy::{Condition, FailureAction, Restart, Update};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Finished tasks kept per slot when the cluster spec does not say.
pub const DEFAULT_HISTORY: usize = 5;

/// What one pass decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconcileOutput {
    /// Commands to propose, in order.
    pub commands: Vec<Command>,
    /// When to run again if nothing changes (a restart delay or update pacing ends).
    pub wake_at: Option<SystemTime>,
}

/// Where a task lives within its service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SlotKey {
    Slot(i64),
    Node(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Ok,
    Pause,
    Drain,
    Down,
    Gone,
}

fn health(state: &ClusterState, node: Option<&str>) -> Health {
    let Some(n) = node.and_then(|id| state.nodes.get(id)) else {
        return Health::Gone;
    };
    if n.status.as_ref().and_then(|s| s.state) == Some(NodeState::DOWN) {
        return Health::Down;
    }
    match n.spec.as_ref().and_then(|s| s.availability) {
        Some(NodeSpecAvailabilityEnum::DRAIN) => Health::Drain,
        Some(NodeSpecAvailabilityEnum::PAUSE) => Health::Pause,
        _ => Health::Ok,
    }
}

fn rank(s: TaskState) -> u16 {
    task_state_rank(s)
}

/// Desired to run (not shut down or removed); a job's task until it finished.
fn runnable(t: &Task) -> bool {
    let desired = t.desired_state.unwrap_or(TaskState::NEW);
    rank(desired) <= rank(TaskState::RUNNING) || (desired == TaskState::COMPLETE && !terminal(t))
}

/// Observed finished: completed, failed, rejected, shut down, orphaned.
fn terminal(t: &Task) -> bool {
    rank(observed_state(t)) >= rank(TaskState::COMPLETE)
}

fn failed(t: &Task) -> bool {
    matches!(observed_state(t), TaskState::FAILED | TaskState::REJECTED)
}

/// When the task last changed state (its status timestamp, else its record times).
fn changed_at(t: &Task) -> SystemTime {
    t.status
        .as_ref()
        .and_then(|s| s.timestamp.as_deref())
        .or(t.updated_at.as_deref())
        .or(t.created_at.as_deref())
        .and_then(clock::parse)
        .unwrap_or(UNIX_EPOCH)
}

fn created_at(t: &Task) -> SystemTime {
    t.created_at
        .as_deref()
        .and_then(clock::parse)
        .unwrap_or_else(|| changed_at(t))
}

struct Pass<'a> {
    state: &'a ClusterState,
    now: SystemTime,
    now_s: String,
    new_id: &'a mut dyn FnMut() -> String,
    put: BTreeMap<String, Task>,
    remove: Vec<String>,
    commands: Vec<Command>,
    wake_at: Option<SystemTime>,
    history: usize,
}

impl Pass<'_> {
    fn wake(&mut self, at: SystemTime) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    fn shutdown(&mut self, t: &Task) {
        let mut t = t.clone();
        t.desired_state = Some(TaskState::SHUTDOWN);
        // A task no agent ever got cannot report that it stopped: record it here.
        if t.node_id.is_none() && !terminal(&t) {
            t.status = Some(TaskStatus {
                timestamp: Some(self.now_s.clone()),
                state: Some(TaskState::SHUTDOWN),
                message: Some("shutdown".into()),
                ..Default::default()
            });
        }
        if let Some(id) = t.id.clone() {
            self.put.insert(id, t);
        }
    }

    /// A new task for `key`, desired to run; returns its ID.
    fn create(&mut self, service_id: &str, spec: &TaskSpec, key: &SlotKey) -> String {
        let id = (self.new_id)();
        let (slot, node_id) = match key {
            SlotKey::Slot(s) => (Some(*s), None),
            SlotKey::Node(n) => (None, Some(n.clone())),
        };
        let task = Task {
            id: Some(id.clone()),
            labels: Some(HashMap::new()),
            spec: Some(spec.clone()),
            service_id: Some(service_id.to_string()),
            slot,
            node_id,
            status: Some(TaskStatus {
                timestamp: Some(self.now_s.clone()),
                state: Some(TaskState::NEW),
                message: Some("created".into()),
                ..Default::default()
            }),
            desired_state: Some(TaskState::RUNNING),
            ..Default::default()
        };
        self.put.insert(id.clone(), task);
        id
    }

    /// Finished tasks of a slot beyond the history limit (all of them when the slot is gone).
    fn prune(&mut self, tasks: &[&Task], keep: usize) {
        let finished: Vec<&&Task> = tasks
            .iter()
            .filter(|t| {
                !runnable(t)
                    && (terminal(t)
                        || t.node_id.is_none()
                        || matches!(
                            health(self.state, t.node_id.as_deref()),
                            Health::Down | Health::Gone
                        ))
            })
            .collect();
        // `tasks` is oldest first.
        let excess = finished.len().saturating_sub(keep);
        for t in finished.into_iter().take(excess) {
            if let Some(id) = &t.id {
                self.put.remove(id);
                self.remove.push(id.clone());
            }
        }
    }
}

fn update_status(
    id: &str,
    state: UpdateState,
    message: String,
    started: Option<String>,
    completed: Option<String>,
) -> Command {
    Command::SetServiceUpdateStatus {
        id: id.to_string(),
        status: Some(ServiceUpdateStatus {
            state: Some(state),
            started_at: started,
            completed_at: completed,
            message: Some(message),
        }),
    }
}

/// Eligible for a global service's task: ready, not drained, constraints met; `create` says
/// whether a new task may start there (not paused).
fn global_target(node: &Node, constraints: &[Constraint]) -> Option<bool> {
    let ready = node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY);
    let availability = node.spec.as_ref().and_then(|s| s.availability);
    if !ready || availability == Some(NodeSpecAvailabilityEnum::DRAIN) {
        return None;
    }
    if !constraint::all_match(constraints, node) {
        return None;
    }
    Some(availability != Some(NodeSpecAvailabilityEnum::PAUSE))
}

/// Runs one orchestration pass over the whole state.
pub fn reconcile(
    state: &ClusterState,
    now: SystemTime,
    new_id: &mut dyn FnMut() -> String,
) -> ReconcileOutput {
    let history = state
        .cluster
        .as_ref()
        .and_then(|c| c.spec.orchestration.as_ref())
        .and_then(|o| o.task_history_retention_limit)
        .map(|l| l.max(0) as usize)
        .unwrap_or(DEFAULT_HISTORY);
    let mut pass = Pass {
        state,
        now,
        now_s: clock::format(now),
        new_id,
        put: BTreeMap::new(),
        remove: Vec::new(),
        commands: Vec::new(),
        wake_at: None,
        history,
    };

    let mut by_service: BTreeMap<&str, BTreeMap<SlotKey, Vec<&Task>>> = BTreeMap::new();
    let mut orphans: Vec<&Task> = Vec::new();
    for t in state.tasks.values() {
        let sid = t.service_id.as_deref().unwrap_or("");
        let Some(record) = state.services.get(sid) else {
            orphans.push(t);
            continue;
        };
        let key = if is_global(record) {
            SlotKey::Node(t.node_id.clone().unwrap_or_default())
        } else {
            SlotKey::Slot(t.slot.unwrap_or(0))
        };
        by_service
            .entry(sid)
            .or_default()
            .entry(key)
            .or_default()
            .push(t);
    }

    for (sid, record) in &state.services {
        let slots = by_service.remove(sid.as_str()).unwrap_or_default();
        if jobs::is_job(record) {
            jobs::job_pass(&mut pass, sid, record, slots);
        } else {
            service_pass(&mut pass, sid, record, slots);
        }
    }

    // Tasks of removed services: stop them, then forget them once they are done.
    for t in orphans {
        if runnable(t) {
            pass.shutdown(t);
        } else if (terminal(t)
            || t.node_id.is_none()
            || matches!(
                health(state, t.node_id.as_deref()),
                Health::Down | Health::Gone
            ))
            && let Some(id) = &t.id
        {
            pass.remove.push(id.clone());
        }
    }

    let Pass {
        put,
        remove,
        mut commands,
        wake_at,
        ..
    } = pass;
    if !put.is_empty() || !remove.is_empty() {
        commands.insert(
            0,
            Command::Tasks {
                put: put.into_values().collect(),
                remove,
            },
        );
    }
    ReconcileOutput { commands, wake_at }
}

fn is_global(record: &ServiceRecord) -> bool {
    record
        .service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .is_some_and(|m| m.global.is_some() || m.global_job.is_some())
}

/// The slots a service should have: key -> may a new task start there.
fn targets(
    state: &ClusterState,
    spec: &ServiceSpec,
    template: &TaskSpec,
    global: bool,
) -> BTreeMap<SlotKey, bool> {
    if global {
        let constraints = template
            .placement
            .as_ref()
            .and_then(|p| p.constraints.as_deref())
            .map(Constraint::parse_all)
            .unwrap_or_default();
        state
            .nodes
            .iter()
            .filter_map(|(id, n)| {
                Some((SlotKey::Node(id.clone()), global_target(n, &constraints)?))
            })
            .collect()
    } else {
        let replicas = spec
            .mode
            .as_ref()
            .and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas)
            .unwrap_or(1)
            .max(0);
        (1..=replicas).map(|s| (SlotKey::Slot(s), true)).collect()
    }
}

fn service_pass(
    pass: &mut Pass,
    sid: &str,
    record: &ServiceRecord,
    mut slots: BTreeMap<SlotKey, Vec<&Task>>,
) {
    let Some(spec) = record.service.spec.as_ref() else {
        return;
    };
    let template = spec.task_template.clone().unwrap_or_default();
    let global = is_global(record);
    let targets = targets(pass.state, spec, &template, global);
    let history = pass.history;

    // Oldest first everywhere below.
    for tasks in slots.values_mut() {
        tasks.sort_by(|a, b| created_at(a).cmp(&created_at(b)).then(a.id.cmp(&b.id)));
    }

    // Slots that run an old spec, and slots whose new-spec task has not settled yet.
    let mut dirty: Vec<(SlotKey, Vec<&Task>)> = Vec::new();
    let mut settling = 0usize;
    // Until when updated tasks are still watched for failure (`UpdateConfig.Monitor`).
    let mut monitor_until: Option<SystemTime> = None;
    // Restart attempts are counted from history, so keep enough of it.
    let restart = Restart::of(Some(&template));
    let keep = if restart.max_attempts > 0 {
        history.max(restart.max_attempts as usize + 1)
    } else {
        history.max(1)
    };
    let rolling_back = record.previous_spec.is_none();
    let current = record.service.update_status.as_ref().and_then(|s| s.state);
    let policy = if rolling_back
        || matches!(
            current,
            Some(UpdateState::ROLLBACK_STARTED | UpdateState::ROLLBACK_PAUSED)
        ) {
        Update::for_rollback(spec)
    } else {
        Update::for_update(spec)
    };

    let mut keys: Vec<SlotKey> = slots.keys().cloned().collect();
    for k in targets.keys() {
        if !slots.contains_key(k) {
            keys.push(k.clone());
        }
    }
    keys.sort();
    let empty = Vec::new();
    for key in keys {
        let tasks = slots.get(&key).unwrap_or(&empty);
        let Some(&may_start) = targets.get(&key) else {
            // Slot no longer wanted (scaled down, node ineligible): stop, then forget.
            for t in tasks.iter().filter(|t| runnable(t)) {
                pass.shutdown(t);
            }
            let keep = match &key {
                SlotKey::Node(n) if pass.state.nodes.contains_key(n) => history,
                _ => 0,
            };
            pass.prune(tasks, keep);
            continue;
        };

        let mut alive: Vec<&Task> = Vec::new();
        let mut replace_now = false;
        for t in tasks.iter().filter(|t| runnable(t)) {
            if terminal(t) {
                pass.shutdown(t);
                continue;
            }
            let node_health = if t.node_id.is_some() {
                health(pass.state, t.node_id.as_deref())
            } else {
                Health::Ok
            };
            if matches!(node_health, Health::Down | Health::Gone | Health::Drain) {
                pass.shutdown(t);
                replace_now = true;
                continue;
            }
            alive.push(t);
        }

        // Start-first: once the new task runs, the old ones go.
        let fresh_running = alive
            .iter()
            .any(|t| t.spec.as_ref() == Some(&template) && observed_state(t) == TaskState::RUNNING);
        if fresh_running {
            for t in alive.iter().filter(|t| t.spec.as_ref() != Some(&template)) {
                pass.shutdown(t);
            }
            alive.retain(|t| t.spec.as_ref() == Some(&template));
        }
        // More than one task for a slot (a lost race): keep the newest.
        if alive.len() > 1 && alive.iter().all(|t| t.spec.as_ref() == Some(&template)) {
            let newest = alive.len() - 1;
            for t in &alive[..newest] {
                pass.shutdown(t);
            }
            alive.drain(..newest);
        }

        if alive.is_empty() {
            if may_start {
                decide_restart(pass, sid, &template, &key, tasks, replace_now);
            }
        } else if alive.iter().any(|t| t.spec.as_ref() == Some(&template)) {
            let newest = alive[alive.len() - 1];
            if alive.len() > 1 || observed_state(newest) != TaskState::RUNNING {
                settling += 1;
            } else if changed_at(newest) + policy.delay > pass.now {
                settling += 1;
                pass.wake(changed_at(newest) + policy.delay);
            }
            let watched = changed_at(newest) + policy.monitor;
            if observed_state(newest) == TaskState::RUNNING && watched > pass.now {
                monitor_until = Some(monitor_until.map_or(watched, |m| m.max(watched)));
            }
        } else {
            dirty.push((key.clone(), alive.clone()));
        }
        pass.prune(tasks, keep);
    }

    rolling_update(
        pass,
        sid,
        record,
        &template,
        policy,
        dirty,
        (settling, monitor_until),
        targets.len(),
    );
}

/// A slot with no live task: replace its last task now, after the restart delay, or never.
fn decide_restart(
    pass: &mut Pass,
    sid: &str,
    template: &TaskSpec,
    key: &SlotKey,
    tasks: &[&Task],
    replace_now: bool,
) {
    let last = tasks.last();
    let Some(last) = last.filter(|l| !replace_now && terminal(l)) else {
        let _ = pass.create(sid, template, key);
        return;
    };
    // Stopped on purpose (scale, update, drain): no failure, no delay.
    if observed_state(last) == TaskState::SHUTDOWN && last.desired_state != Some(TaskState::RUNNING)
    {
        let _ = pass.create(sid, template, key);
        return;
    }
    let restart = Restart::of(last.spec.as_ref());
    let allowed = match restart.condition {
        Condition::None => false,
        Condition::OnFailure => observed_state(last) != TaskState::COMPLETE,
        Condition::Any => true,
    };
    if !allowed {
        return;
    }
    if restart.max_attempts > 0 {
        let since = (restart.window > Duration::ZERO)
            .then(|| pass.now.checked_sub(restart.window))
            .flatten();
        let attempts = tasks
            .iter()
            .filter(|t| {
                terminal(t) && observed_state(t) != TaskState::SHUTDOWN && t.spec == last.spec
            })
            .filter(|t| since.is_none_or(|s| changed_at(t) >= s))
            .count() as u64;
        if attempts > restart.max_attempts {
            return;
        }
    }
    let due = changed_at(last) + restart.delay;
    if due <= pass.now {
        let _ = pass.create(sid, template, key);
    } else {
        pass.wake(due);
    }
}

/// Moves a rolling update (or rollback) forward by one batch and records its progress.
#[allow(clippy::too_many_arguments)]
fn rolling_update(
    pass: &mut Pass,
    sid: &str,
    record: &ServiceRecord,
    template: &TaskSpec,
    policy: Update,
    dirty: Vec<(SlotKey, Vec<&Task>)>,
    (settling, monitor_until): (usize, Option<SystemTime>),
    total: usize,
) {
    let status = record.service.update_status.as_ref();
    let current = status.and_then(|s| s.state);
    let started = status.and_then(|s| s.started_at.clone());
    // A new `service update` after a pause starts over; otherwise a pause holds.
    let respec = record
        .service
        .updated_at
        .as_deref()
        .and_then(clock::parse)
        .zip(started.as_deref().and_then(clock::parse))
        .is_some_and(|(updated, started)| updated > started);
    let rollback = record.previous_spec.is_none()
        || (!respec
            && matches!(
                current,
                Some(UpdateState::ROLLBACK_STARTED | UpdateState::ROLLBACK_PAUSED)
            ));

    let in_progress = matches!(
        current,
        Some(UpdateState::UPDATING | UpdateState::ROLLBACK_STARTED)
    );
    // Failures of new-spec tasks since the update began, checked in every round, the last
    // batch's monitor period included.
    if in_progress && policy.failure_action != FailureAction::Continue {
        let started_at = started
            .clone()
            .and_then(|s| clock::parse(&s))
            .unwrap_or(UNIX_EPOCH);
        let failures: Vec<&Task> = pass
            .state
            .tasks_of(sid)
            .filter(|t| {
                t.spec.as_ref() == Some(template) && failed(t) && changed_at(t) >= started_at
            })
            .collect();
        if !failures.is_empty() && failures.len() as f64 > policy.max_failure_ratio * total as f64 {
            let culprit = failures
                .iter()
                .max_by_key(|t| changed_at(t))
                .and_then(|t| t.id.clone())
                .unwrap_or_default();
            match (
                policy.failure_action,
                rollback,
                record.previous_spec.as_ref(),
            ) {
                (FailureAction::Rollback, false, Some(previous)) => {
                    pass.commands.push(Command::UpdateService {
                        id: sid.to_string(),
                        version: record
                            .service
                            .version
                            .as_ref()
                            .and_then(|v| v.index)
                            .unwrap_or(0),
                        spec: Box::new(previous.clone()),
                        rollback: true,
                    });
                    pass.commands.push(update_status(
                        sid,
                        UpdateState::ROLLBACK_STARTED,
                        format!("update rolled back due to failure or early termination of task {culprit}"),
                        Some(pass.now_s.clone()),
                        None,
                    ));
                }
                _ => {
                    let (state, what) = if rollback {
                        (UpdateState::ROLLBACK_PAUSED, "rollback")
                    } else {
                        (UpdateState::PAUSED, "update")
                    };
                    pass.commands.push(update_status(
                        sid,
                        state,
                        format!(
                            "{what} paused due to failure or early termination of task {culprit}"
                        ),
                        started,
                        None,
                    ));
                }
            }
            return;
        }
    }
    if dirty.is_empty() {
        if let (true, Some(until)) = (in_progress, monitor_until) {
            pass.wake(until);
        }
        if settling == 0 && monitor_until.is_none() {
            let done = match current {
                Some(UpdateState::UPDATING) => Some((UpdateState::COMPLETED, "update completed")),
                Some(UpdateState::ROLLBACK_STARTED) => {
                    Some((UpdateState::ROLLBACK_COMPLETED, "rollback completed"))
                }
                _ => None,
            };
            if let Some((state, message)) = done {
                pass.commands.push(update_status(
                    sid,
                    state,
                    message.into(),
                    started,
                    Some(pass.now_s.clone()),
                ));
            }
        }
        return;
    }
    if matches!(
        current,
        Some(UpdateState::PAUSED | UpdateState::ROLLBACK_PAUSED)
    ) && !respec
    {
        return;
    }
    if !in_progress {
        let (state, message) = if rollback {
            (UpdateState::ROLLBACK_STARTED, "manually requested rollback")
        } else {
            (UpdateState::UPDATING, "update in progress")
        };
        pass.commands.push(update_status(
            sid,
            state,
            message.into(),
            Some(pass.now_s.clone()),
            None,
        ));
    }

    let budget = if policy.parallelism == 0 {
        dirty.len()
    } else {
        policy.parallelism.saturating_sub(settling)
    };
    for (key, old) in dirty.into_iter().take(budget) {
        if !policy.start_first {
            for t in &old {
                pass.shutdown(t);
            }
        }
        let _ = pass.create(sid, template, &key);
    }
}

#[cfg(test)]
mod tests;
