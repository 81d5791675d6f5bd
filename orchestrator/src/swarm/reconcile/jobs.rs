//! Jobs (`replicated-job`, `global-job`): tasks run to completion instead of forever. Each slot
//! (a completion number, or a node for global jobs) needs one task of the current spec that
//! completed; a failed one is replaced as its restart policy allows (a job never restarts a
//! completed task). Replicated jobs run at most `MaxConcurrent` tasks at once. A new spec
//! (`service update`, `--force`) is a new iteration: every slot runs again.

use super::policy::{Condition, Restart};
use super::{Health, Pass, SlotKey, health, targets, terminal};
use crate::swarm::state::{ServiceRecord, observed_state};
use bollard_stubs::models::{Task, TaskSpec, TaskState};
use std::collections::BTreeMap;
use std::time::Duration;

/// Whether a service is a job.
pub(super) fn is_job(record: &ServiceRecord) -> bool {
    record
        .service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .is_some_and(|m| m.replicated_job.is_some() || m.global_job.is_some())
}

/// Orchestrates one job service.
pub(super) fn job_pass(
    pass: &mut Pass,
    sid: &str,
    record: &ServiceRecord,
    mut slots: BTreeMap<SlotKey, Vec<&Task>>,
) {
    let Some(spec) = record.service.spec.as_ref() else {
        return;
    };
    let Some(mode) = spec.mode.as_ref() else {
        return;
    };
    let template = spec.task_template.clone().unwrap_or_default();
    // Slot -> may a task start there (global jobs: eligible nodes, paused ones keep theirs).
    let (keys, max_concurrent): (BTreeMap<SlotKey, bool>, usize) =
        if let Some(r) = &mode.replicated_job {
            let max = r.max_concurrent.unwrap_or(1).max(1) as usize;
            let total = r.total_completions.unwrap_or(max as i64).max(0);
            ((1..=total).map(|s| (SlotKey::Slot(s), true)).collect(), max)
        } else {
            (targets(pass.state, spec, &template, true), usize::MAX)
        };
    for tasks in slots.values_mut() {
        tasks.sort_by(|a, b| {
            super::created_at(a)
                .cmp(&super::created_at(b))
                .then(a.id.cmp(&b.id))
        });
    }
    let restart = Restart::of(Some(&template));
    let history = pass.history.max(restart.max_attempts as usize + 1);

    // Tasks of slots no longer wanted, and of an earlier iteration, stop.
    for (key, tasks) in &slots {
        for t in tasks {
            let old = t.spec.as_ref() != Some(&template) || !keys.contains_key(key);
            if old && live(t) {
                pass.shutdown(t);
            }
        }
    }

    let empty = Vec::new();
    let mut active = 0usize;
    let mut waiting: Vec<SlotKey> = Vec::new();
    for (key, &may_start) in &keys {
        let tasks = slots.get(key).unwrap_or(&empty);
        let current: Vec<&Task> = tasks
            .iter()
            .copied()
            .filter(|t| t.spec.as_ref() == Some(&template))
            .collect();
        let done = current
            .iter()
            .any(|t| observed_state(t) == TaskState::COMPLETE);
        let mut running = false;
        for t in current.iter().filter(|t| live(t)) {
            let lost = t.node_id.is_some()
                && matches!(
                    health(pass.state, t.node_id.as_deref()),
                    Health::Down | Health::Gone
                );
            if lost {
                pass.shutdown(t);
            } else {
                running = true;
            }
        }
        // Failed tasks are shut down, so `ps` shows them as history.
        for t in current.iter().filter(|t| {
            t.desired_state == Some(TaskState::COMPLETE)
                && terminal(t)
                && observed_state(t) != TaskState::COMPLETE
        }) {
            pass.shutdown(t);
        }
        if running {
            active += 1;
        } else if !done && may_start && may_retry(pass, &restart, &current) {
            waiting.push(key.clone());
        }
        prune(pass, tasks, history);
    }
    for key in waiting {
        if active >= max_concurrent {
            break;
        }
        create(pass, sid, &template, &key);
        active += 1;
    }
}

/// Not finished and meant to run to completion.
fn live(t: &Task) -> bool {
    t.desired_state == Some(TaskState::COMPLETE) && !terminal(t)
}

/// Whether a slot whose tasks all ended without completing gets another task now; sets a
/// wake-up when the restart delay has not passed yet.
fn may_retry(pass: &mut Pass, restart: &Restart, current: &[&Task]) -> bool {
    let Some(last) = current.last() else {
        return true;
    };
    // Stopped on purpose (node lost, drained): run again without counting a failure.
    if observed_state(last) == TaskState::SHUTDOWN || !terminal(last) {
        return true;
    }
    if restart.condition == Condition::None {
        return false;
    }
    if restart.max_attempts > 0 {
        let since = (restart.window > Duration::ZERO)
            .then(|| pass.now.checked_sub(restart.window))
            .flatten();
        let failures = current
            .iter()
            .filter(|t| terminal(t) && observed_state(t) != TaskState::SHUTDOWN)
            .filter(|t| since.is_none_or(|s| super::changed_at(t) >= s))
            .count() as u64;
        if failures > restart.max_attempts {
            return false;
        }
    }
    let due = super::changed_at(last) + restart.delay;
    if due <= pass.now {
        true
    } else {
        pass.wake(due);
        false
    }
}

/// A task of the job, desired to complete.
fn create(pass: &mut Pass, sid: &str, template: &TaskSpec, key: &SlotKey) {
    let id = pass.create(sid, template, key);
    if let Some(t) = pass.put.get_mut(&id) {
        t.desired_state = Some(TaskState::COMPLETE);
    }
}

/// Keeps the completed task of a slot and the newest `keep` other finished ones.
fn prune(pass: &mut Pass, tasks: &[&Task], keep: usize) {
    let finished: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| terminal(t) && observed_state(t) != TaskState::COMPLETE)
        .collect();
    let excess = finished.len().saturating_sub(keep);
    for t in finished.into_iter().take(excess) {
        if let Some(id) = &t.id {
            pass.put.remove(id);
            pass.remove.push(id.clone());
        }
    }
}
