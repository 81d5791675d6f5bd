//! The leader's control loop: node liveness, then services -> tasks (reconcile), then tasks ->
//! nodes (schedule), each time the store changes or a timer set by reconcile expires.

use super::Manager;
use super::stopped;
use crate::swarm::dispatcher::proto::NODE_DOWN_AFTER;
use crate::swarm::state::{Command, Outcome};
use bollard_stubs::models::{NodeState, NodeStatus};
use std::time::{Duration, Instant, SystemTime};

/// Longest sleep between two rounds when nothing wakes the loop.
const IDLE: Duration = Duration::from_millis(500);
/// Changes arriving this close together are handled in one round.
const DEBOUNCE: Duration = Duration::from_millis(5);

pub(super) async fn run(m: Manager) {
    let mut applied = m.store().applied();
    let mut shutdown = m.shutdown_signal();
    let mut leader_since: Option<Instant> = None;
    let mut wake = IDLE;
    let mut last_batch = String::new();
    loop {
        tokio::select! {
            r = applied.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(wake) => {}
            _ = stopped(&mut shutdown) => return,
        }
        tokio::time::sleep(DEBOUNCE).await;
        if !m.store().is_leader() {
            leader_since = None;
            wake = IDLE;
            continue;
        }
        let since = *leader_since.get_or_insert_with(Instant::now);
        m.check_heartbeats(since).await;
        m.reconcile_members().await;
        let now = SystemTime::now();
        let mut new_id = crate::swarm::ids::new_id;
        let out = m
            .store()
            .read(|s| crate::swarm::reconcile::reconcile(s, now, &mut new_id));
        wake = out
            .wake_at
            .and_then(|w| w.duration_since(now).ok())
            .unwrap_or(IDLE)
            .clamp(Duration::from_millis(20), IDLE);
        let mut commands = out.commands;
        if commands.is_empty() {
            commands = m
                .store()
                .read(|s| crate::swarm::scheduler::schedule(s, now));
        }
        if commands.is_empty() {
            last_batch.clear();
            continue;
        }
        // A round that would write exactly what the previous one wrote means the state did not
        // take it; writing it again would spin, so wait for the timer instead.
        let batch = serde_json::to_string(&commands).unwrap_or_default();
        if batch == last_batch {
            tracing::warn!("control loop produced the same commands twice; waiting");
            continue;
        }
        last_batch = batch;
        // One log entry for the round (or a few, when large) instead of one per command.
        match m.write_all(commands).await {
            Ok(outcomes) => {
                for o in outcomes.iter().filter(|o| **o != Outcome::Done) {
                    tracing::debug!(outcome = ?o, "control loop command refused");
                }
            }
            Err(e) => tracing::warn!(error = %e, "control loop write failed"),
        }
    }
}

impl Manager {
    pub(super) fn record_heartbeat(&self, node_id: &str) {
        if let Ok(mut h) = self.inner.heartbeats.lock() {
            h.insert(node_id.to_string(), Instant::now());
        }
    }

    /// Marks nodes down whose agents stopped calling; a new leader first gives every node
    /// [`NODE_DOWN_AFTER`] to find it.
    async fn check_heartbeats(&self, leader_since: Instant) {
        let now = Instant::now();
        let beats = self
            .inner
            .heartbeats
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        let stale: Vec<String> = self.store().read(|s| {
            s.nodes
                .iter()
                .filter(|(_, n)| {
                    matches!(
                        n.status.as_ref().and_then(|s| s.state),
                        Some(NodeState::READY) | Some(NodeState::UNKNOWN) | None
                    )
                })
                .filter(|(id, _)| {
                    let last = beats
                        .get(*id)
                        .copied()
                        .unwrap_or(leader_since)
                        .max(leader_since);
                    now.duration_since(last) > NODE_DOWN_AFTER
                })
                .map(|(id, _)| id.clone())
                .collect()
        });
        // All at once: Raft commits concurrent writes in one batch, where one write after
        // another made detecting 100 lost nodes take 100 commit round trips.
        let writes = stale.into_iter().map(|id| {
            let addr = self.store().read(|s| {
                s.nodes
                    .get(&id)
                    .and_then(|n| n.status.as_ref()?.addr.clone())
            });
            self.write(Command::SetNodeStatus {
                id,
                status: NodeStatus {
                    state: Some(NodeState::DOWN),
                    message: Some("heartbeat failure".into()),
                    addr,
                },
                description: None,
            })
        });
        for r in futures_util::future::join_all(writes).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "marking a node down failed");
            }
        }
    }
}
