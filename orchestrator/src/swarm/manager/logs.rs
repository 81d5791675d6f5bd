//! Service and task logs: subscriptions held by the leader, lines streamed in by the nodes that
//! run the selected tasks, and relayed to the manager whose API client asked (see
//! [`crate::swarm::dispatcher::logs`]).

use super::listener::Peer;
use super::{Manager, ManagerError};
use crate::swarm::dispatcher::logs::{
    LogMessage, LogOptions, LogSelector, LogSubscription, SUBSCRIBE_PATH,
};
use crate::swarm::state::ClusterState;
use axum::body::Body;
use axum::extract::{Extension, Json, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::NodeState;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a node that should send a finite (non-follow) stream may take to start it before
/// the answer goes without its lines (a node that died but is not yet marked down).
const START_WAIT: Duration = Duration::from_secs(10);

/// Lines buffered per subscription before the nodes' streams wait for the reader.
const BUFFER: usize = 256;

/// The leader's open subscriptions.
#[derive(Default)]
pub(super) struct LogBroker {
    subs: Mutex<HashMap<String, Arc<Sub>>>,
    /// Bumped on every change of `subs`, to wake the sessions that should learn of it.
    generation: watch::Sender<u64>,
}

struct Sub {
    info: LogSubscription,
    tx: mpsc::Sender<LogMessage>,
    /// For a finite stream: the nodes still to send everything they have, and whether each
    /// has started.
    pending: Mutex<HashMap<String, bool>>,
}

/// The body of a follower's subscription request to the leader.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SubscribeRequest {
    selector: LogSelector,
    options: LogOptions,
}

/// The lines of one subscription; dropping it ends the subscription everywhere.
pub struct LogReceiver {
    rx: mpsc::Receiver<LogMessage>,
    _guard: Guard,
}

impl LogReceiver {
    /// The next line; `None` when every node has sent all it had (and never while following).
    pub async fn recv(&mut self) -> Option<LogMessage> {
        self.rx.recv().await
    }
}

enum Guard {
    Local { broker: Manager, id: String },
    Relay(tokio::task::AbortHandle),
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::Local { broker, id } => broker.close_subscription(id),
            Guard::Relay(h) => h.abort(),
        }
    }
}

impl LogBroker {
    fn bump(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }
}

impl Manager {
    /// Subscribes to the logs of the selected tasks: on the leader directly, elsewhere
    /// relayed from the leader.
    pub async fn subscribe_logs(
        &self,
        selector: LogSelector,
        options: LogOptions,
    ) -> Result<LogReceiver, ManagerError> {
        if self.store().is_leader() {
            return Ok(self.open_subscription(selector, options));
        }
        let Some((_, leader)) = self.store().leader() else {
            return Err(ManagerError::Unavailable(
                "the swarm has no leader at the moment; logs cannot be collected".into(),
            ));
        };
        let resp = self
            .inner
            .http
            .post(format!("https://{}{SUBSCRIBE_PATH}", leader.addr))
            .json(&SubscribeRequest { selector, options })
            .send()
            .await
            .map_err(|e| ManagerError::Unavailable(format!("asking the leader for logs: {e}")))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(ManagerError::Unavailable(format!(
                "the leader refused the log request: {status} {text}"
            )));
        }
        let (tx, rx) = mpsc::channel(BUFFER);
        let relay = tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut lines = LineSplitter::default();
            while let Some(Ok(chunk)) = body.next().await {
                for line in lines.push(&chunk) {
                    let Ok(msg) = serde_json::from_slice::<LogMessage>(&line) else {
                        continue;
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(LogReceiver {
            rx,
            _guard: Guard::Relay(relay.abort_handle()),
        })
    }

    fn open_subscription(&self, selector: LogSelector, options: LogOptions) -> LogReceiver {
        let id = crate::swarm::ids::new_id();
        let (tx, rx) = mpsc::channel(BUFFER);
        let pending: HashMap<String, bool> = if options.follow {
            HashMap::new()
        } else {
            self.store()
                .read(|s| ready_nodes_with_tasks(s, &selector))
                .into_iter()
                .map(|n| (n, false))
                .collect()
        };
        let finite_and_done = !options.follow && pending.is_empty();
        let sub = Arc::new(Sub {
            info: LogSubscription {
                id: id.clone(),
                selector,
                options,
            },
            tx,
            pending: Mutex::new(pending),
        });
        let guard = Guard::Local {
            broker: self.clone(),
            id: id.clone(),
        };
        if finite_and_done {
            // Nothing to wait for: dropping `sub` (its sender) ends the stream at once.
            return LogReceiver { rx, _guard: guard };
        }
        if let Ok(mut subs) = self.inner.logs.subs.lock() {
            subs.insert(id.clone(), sub.clone());
        }
        self.inner.logs.bump();
        if !sub.info.options.follow {
            // Weak: a finished subscription must not be kept open (its sender alive) by this timer.
            let weak = Arc::downgrade(&sub);
            let m = self.clone();
            self.spawn(async move {
                tokio::time::sleep(START_WAIT).await;
                let Some(sub) = weak.upgrade() else { return };
                let silent: Vec<String> = sub
                    .pending
                    .lock()
                    .map(|p| {
                        p.iter()
                            .filter(|(_, s)| !**s)
                            .map(|(n, _)| n.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                for node in silent {
                    tracing::warn!(node = %node, "a node did not send its task logs in time");
                    m.node_finished(&sub, &node);
                }
            });
        }
        LogReceiver { rx, _guard: guard }
    }

    fn close_subscription(&self, id: &str) {
        let removed = self
            .inner
            .logs
            .subs
            .lock()
            .map(|mut s| s.remove(id).is_some())
            .unwrap_or(false);
        if removed {
            self.inner.logs.bump();
        }
    }

    /// A node sent all it had for a finite subscription; the last one closes it.
    fn node_finished(&self, sub: &Sub, node: &str) {
        if sub.info.options.follow {
            return;
        }
        let done = sub
            .pending
            .lock()
            .map(|mut p| {
                p.remove(node);
                p.is_empty()
            })
            .unwrap_or(true);
        if done {
            self.close_subscription(&sub.info.id);
        }
    }

    /// The subscriptions `node_id` should serve, sorted by ID.
    pub(super) fn log_subscriptions_for(&self, node_id: &str) -> Vec<LogSubscription> {
        let subs: Vec<Arc<Sub>> = match self.inner.logs.subs.lock() {
            Ok(s) if !s.is_empty() => s.values().cloned().collect(),
            _ => return Vec::new(),
        };
        let mut out: Vec<LogSubscription> = subs
            .iter()
            .filter(|sub| {
                if sub.info.options.follow {
                    // Sessions run this on every commit: stop at the first selected task.
                    self.store().read(|s| {
                        s.tasks.values().any(|t| {
                            t.node_id.as_deref() == Some(node_id)
                                && sub
                                    .info
                                    .selector
                                    .matches(t.service_id.as_deref(), t.id.as_deref())
                        })
                    })
                } else {
                    sub.pending
                        .lock()
                        .map(|p| p.contains_key(node_id))
                        .unwrap_or(false)
                }
            })
            .map(|sub| sub.info.clone())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Wakes when the set of subscriptions changes.
    pub(super) fn log_generation(&self) -> watch::Receiver<u64> {
        self.inner.logs.generation.subscribe()
    }
}

/// The Ready nodes holding a selected task.
fn ready_nodes_with_tasks(s: &ClusterState, sel: &LogSelector) -> BTreeSet<String> {
    s.tasks
        .values()
        .filter(|t| sel.matches(t.service_id.as_deref(), t.id.as_deref()))
        .filter_map(|t| t.node_id.clone())
        .filter(|n| {
            s.nodes
                .get(n)
                .and_then(|n| n.status.as_ref()?.state)
                .is_some_and(|st| st == NodeState::READY)
        })
        .collect()
}

/// `POST /dispatcher/v1/logs/{id}`: a node streams the lines of one subscription.
pub(super) async fn publish(
    Extension(m): Extension<Manager>,
    Extension(peer): Extension<Peer>,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let node = match peer.node() {
        Ok(p) => p.node_id.clone(),
        Err(e) => return e.into_response(),
    };
    let sub = m
        .inner
        .logs
        .subs
        .lock()
        .ok()
        .and_then(|s| s.get(&id).cloned());
    let Some(sub) = sub else {
        return (StatusCode::GONE, "no such log subscription").into_response();
    };
    if let Ok(mut p) = sub.pending.lock()
        && let Some(started) = p.get_mut(&node)
    {
        *started = true;
    }
    let mut stream = body.into_data_stream();
    let mut lines = LineSplitter::default();
    let mut complete = false;
    loop {
        let chunk = tokio::select! {
            c = stream.next() => c,
            // The reader left: stop reading at once rather than at the node's next line.
            _ = sub.tx.closed() => return (StatusCode::GONE, "the reader left").into_response(),
        };
        let chunk = match chunk {
            Some(Ok(c)) => c,
            Some(Err(_)) => break,
            None => {
                complete = true;
                break;
            }
        };
        for line in lines.push(&chunk) {
            let Ok(mut msg) = serde_json::from_slice::<LogMessage>(&line) else {
                continue;
            };
            // The certificate says who sent it, whatever the line claims.
            msg.node_id = node.clone();
            if sub.tx.send(msg).await.is_err() {
                return (StatusCode::GONE, "the reader left").into_response();
            }
        }
    }
    if complete {
        m.node_finished(&sub, &node);
    }
    StatusCode::OK.into_response()
}

/// `POST /swarm/v1/logs`: another manager relays a subscription made by its API client.
pub(super) async fn subscribe(
    Extension(m): Extension<Manager>,
    Json(req): Json<SubscribeRequest>,
) -> Response {
    if !m.store().is_leader() {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this manager is not the leader",
        )
            .into_response();
    }
    let rx = m.open_subscription(req.selector, req.options);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let msg = rx.recv().await?;
        let mut line = serde_json::to_vec(&msg).unwrap_or_default();
        line.push(b'\n');
        Some((
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line)),
            rx,
        ))
    });
    Body::from_stream(stream).into_response()
}

/// Splits a byte stream into newline-terminated lines (without the newline).
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Adds `data`; returns the lines it completed.
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let rest = self.buf.split_off(pos + 1);
            let mut line = std::mem::replace(&mut self.buf, rest);
            line.pop();
            out.push(line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::LineSplitter;

    #[test]
    fn lines_split_across_chunks() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"ab").is_empty());
        assert_eq!(
            s.push(b"c\nd\n\ne"),
            vec![b"abc".to_vec(), b"d".to_vec(), vec![]]
        );
        assert_eq!(s.push(b"\n"), vec![b"e".to_vec()]);
    }
}
