//! Groups concurrent writes into one Raft entry.
//!
//! openraft 0.9's core waits until an appended entry is flushed before it takes the next client
//! write, so with one entry per write the store commits at most one write per fsync, however
//! many are waiting. Writes that arrive while earlier ones are on their way are proposed
//! together as one [`Command::Batch`] (one append, one fsync, one forward from a follower); a
//! write that finds nothing else waiting goes alone, as before.

use super::{ClusterStore, ForwardRequest, Inner, RaftError};
use crate::swarm::state::{Command, Outcome, Request};
use std::sync::{Arc, Weak};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most requests in one entry.
const MAX_BATCH: usize = 256;
/// Most objects written by one entry ([`Command::weight`]), so that an AppendEntries RPC of
/// several entries still travels well within openraft's timeout (the heartbeat interval).
pub const MAX_WEIGHT: usize = 500;
/// Batches on their way at once: while the leader flushes one, the followers acknowledge
/// others, and new writes gather into the next.
const IN_FLIGHT: usize = 8;

/// One write waiting for its batch.
pub(super) struct Pending {
    req: Request,
    reply: oneshot::Sender<Result<Outcome, RaftError>>,
}

/// Starts the batcher of the store behind `store`; it ends when the store is dropped.
pub(super) fn spawn(store: Weak<Inner>) -> mpsc::UnboundedSender<Pending> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(store, rx));
    tx
}

/// Queues `req` and waits for its own outcome.
pub(super) async fn write(
    queue: &mpsc::UnboundedSender<Pending>,
    req: Request,
) -> Result<Outcome, RaftError> {
    let stopped = || RaftError::Fatal("the cluster store is shutting down".into());
    let (reply, rx) = oneshot::channel();
    queue.send(Pending { req, reply }).map_err(|_| stopped())?;
    rx.await.unwrap_or_else(|_| Err(stopped()))
}

async fn run(store: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a permit first lets the writes that arrive meanwhile join this batch.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let mut weight = first.req.command.weight();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && weight < MAX_WEIGHT {
            match rx.try_recv() {
                Ok(p) => {
                    weight += p.req.command.weight();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let Some(inner) = store.upgrade() else {
            break;
        };
        let store = ClusterStore { inner };
        tokio::spawn(async move {
            commit(&store, batch).await;
            drop(permit);
        });
    }
}

async fn commit(store: &ClusterStore, mut batch: Vec<Pending>) {
    if batch.len() == 1
        && let Some(p) = batch.pop()
    {
        let _ = p
            .reply
            .send(store.route(ForwardRequest::Write(p.req)).await);
        return;
    }
    let (reqs, replies): (Vec<Request>, Vec<_>) =
        batch.into_iter().map(|p| (p.req, p.reply)).unzip();
    match commit_all(store, reqs).await {
        Ok(outcomes) => {
            for (reply, o) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(o));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// One log entry holding `reqs` in order; its outcomes in the same order.
pub(super) async fn commit_all(
    store: &ClusterStore,
    reqs: Vec<Request>,
) -> Result<Vec<Outcome>, RaftError> {
    let n = reqs.len();
    let at = reqs.first().map(|r| r.at.clone()).unwrap_or_default();
    let batch = Request {
        at,
        command: Command::Batch(reqs),
    };
    match store.route(ForwardRequest::Write(batch)).await? {
        Outcome::Batch(all) if all.len() == n => Ok(all),
        other => Err(RaftError::Fatal(format!(
            "the leader answered a batch of {n} with {other:?}"
        ))),
    }
}
