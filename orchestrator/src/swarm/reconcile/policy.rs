//! Restart and update policies read from a spec with Docker's defaults filled in.

use bollard_stubs::models::{
    ServiceSpec, ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecRestartPolicyConditionEnum,
};
use std::time::Duration;

fn nanos(v: Option<i64>, default: Duration) -> Duration {
    match v {
        Some(n) if n >= 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

/// When a terminated task is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Never.
    None,
    /// Unless it completed (exit 0).
    OnFailure,
    /// Always.
    Any,
}

/// `TaskSpec.RestartPolicy` with defaults.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    /// When to restart.
    pub condition: Condition,
    /// Wait between the end of a task and its replacement.
    pub delay: Duration,
    /// Restarts allowed (0: unlimited).
    pub max_attempts: u64,
    /// Window in which attempts count (zero: forever).
    pub window: Duration,
}

impl Restart {
    /// Reads the policy of a task spec.
    pub fn of(spec: Option<&TaskSpec>) -> Self {
        let p = spec.and_then(|s| s.restart_policy.as_ref());
        Restart {
            condition: match p.and_then(|p| p.condition) {
                Some(TaskSpecRestartPolicyConditionEnum::NONE) => Condition::None,
                Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE) => Condition::OnFailure,
                _ => Condition::Any,
            },
            delay: nanos(p.and_then(|p| p.delay), Duration::from_secs(5)),
            max_attempts: p
                .and_then(|p| p.max_attempts)
                .map(|m| m.max(0) as u64)
                .unwrap_or(0),
            window: nanos(p.and_then(|p| p.window), Duration::ZERO),
        }
    }
}

/// What to do when updated tasks fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// Stop updating (`paused` / `rollback_paused`).
    Pause,
    /// Keep going.
    Continue,
    /// Roll back to the previous spec.
    Rollback,
}

/// `UpdateConfig` or `RollbackConfig` with defaults.
#[derive(Debug, Clone, Copy)]
pub struct Update {
    /// Tasks updated at once (0: all).
    pub parallelism: usize,
    /// Wait after a batch is running before the next.
    pub delay: Duration,
    /// On failure.
    pub failure_action: FailureAction,
    /// How long after an update a failure counts.
    pub monitor: Duration,
    /// Tolerated fraction of failed tasks.
    pub max_failure_ratio: f64,
    /// Start the new task before stopping the old.
    pub start_first: bool,
}

impl Update {
    /// The update policy of a service spec.
    pub fn for_update(spec: &ServiceSpec) -> Self {
        let c = spec.update_config.as_ref();
        Update {
            parallelism: c
                .and_then(|c| c.parallelism)
                .map(|p| p.max(0) as usize)
                .unwrap_or(1),
            delay: nanos(c.and_then(|c| c.delay), Duration::ZERO),
            failure_action: match c.and_then(|c| c.failure_action) {
                Some(ServiceSpecUpdateConfigFailureActionEnum::CONTINUE) => FailureAction::Continue,
                Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK) => FailureAction::Rollback,
                _ => FailureAction::Pause,
            },
            monitor: nanos(c.and_then(|c| c.monitor), Duration::from_secs(5)),
            max_failure_ratio: c.and_then(|c| c.max_failure_ratio).unwrap_or(0.0),
            start_first: c.and_then(|c| c.order)
                == Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }
    }

    /// The rollback policy of a service spec.
    pub fn for_rollback(spec: &ServiceSpec) -> Self {
        let c = spec.rollback_config.as_ref();
        Update {
            parallelism: c
                .and_then(|c| c.parallelism)
                .map(|p| p.max(0) as usize)
                .unwrap_or(1),
            delay: nanos(c.and_then(|c| c.delay), Duration::ZERO),
            failure_action: match c.and_then(|c| c.failure_action) {
                Some(ServiceSpecRollbackConfigFailureActionEnum::CONTINUE) => {
                    FailureAction::Continue
                }
                _ => FailureAction::Pause,
            },
            monitor: nanos(c.and_then(|c| c.monitor), Duration::from_secs(5)),
            max_failure_ratio: c.and_then(|c| c.max_failure_ratio).unwrap_or(0.0),
            start_first: c.and_then(|c| c.order)
                == Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }
    }
}
