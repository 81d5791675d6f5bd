//! Streams this node's task logs to the leader for the log subscriptions its session answers
//! name (`docker service logs` on any manager): the lines come from the engine's own log
//! reader, one reader per selected task container, sent as NDJSON in one request body.

use super::spec::{SERVICE_ID_LABEL, TASK_ID_LABEL, TASK_LABEL};
use berth_client::containers::LogsOptions;
use berth_client::{Client, Demuxer, StdStream};
use berth_orchestrator::swarm::dispatcher::logs::{
    LogMessage, LogStream, LogSubscription, PUBLISH_PATH,
};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// How often a following subscription looks for task containers that started since.
const RESCAN: Duration = Duration::from_secs(1);

/// Where and as whom to publish.
#[derive(Clone)]
pub struct Publisher {
    /// This node's engine.
    pub engine: Client,
    /// This node's ID.
    pub node_id: String,
    /// Mutual-TLS client to the managers.
    pub http: reqwest::Client,
    /// `https` (or `http` in tests).
    pub scheme: String,
}

/// The subscriptions being served, by ID.
#[derive(Default)]
pub struct Subscriptions {
    running: HashMap<String, tokio::task::AbortHandle>,
}

impl Subscriptions {
    /// The IDs served (running or finished), for the next session request.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.running.keys().cloned().collect();
        v.sort();
        v
    }

    /// Starts the subscriptions that are new, toward `manager`, and stops those no longer
    /// listed.
    pub fn update(&mut self, listed: &[LogSubscription], publisher: &Publisher, manager: &str) {
        let keep: BTreeSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
        self.running.retain(|id, h| {
            let k = keep.contains(id.as_str());
            if !k {
                h.abort();
            }
            k
        });
        for sub in listed {
            if self.running.contains_key(&sub.id) {
                continue;
            }
            let url = format!("{}://{manager}{PUBLISH_PATH}/{}", publisher.scheme, sub.id);
            let h = tokio::spawn(publish(publisher.clone(), sub.clone(), url));
            self.running.insert(sub.id.clone(), h.abort_handle());
        }
    }

    /// Stops everything (the session ends).
    pub fn clear(&mut self) {
        for (_, h) in self.running.drain() {
            h.abort();
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Sends the subscription's lines to `url` until they are all sent (or, when following, until
/// the manager or the session ends it).
async fn publish(p: Publisher, sub: LogSubscription, url: String) {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    }));
    let request = p.http.post(&url).body(body).send();
    let produce = produce(&p, &sub, tx);
    tokio::pin!(request);
    tokio::select! {
        r = &mut request => {
            // The manager answered before the body ended: the reader left or the
            // subscription is gone.
            log_outcome(&sub.id, r);
        }
        () = produce => {
            // Everything sent and the body closed: wait for the manager's answer.
            log_outcome(&sub.id, request.await);
        }
    }
}

fn log_outcome(id: &str, r: Result<reqwest::Response, reqwest::Error>) {
    match r {
        Ok(resp) if resp.status().is_success() => {}
        Ok(resp) => tracing::debug!(subscription = id, status = %resp.status(), "log stream ended"),
        Err(e) => tracing::debug!(subscription = id, error = %e, "log stream failed"),
    }
}

/// Reads every selected task container's log into `tx`; returns once all are read (never
/// while following).
async fn produce(p: &Publisher, sub: &LogSubscription, tx: mpsc::Sender<Bytes>) {
    let mut readers = JoinSet::new();
    let mut started: BTreeSet<String> = BTreeSet::new();
    loop {
        match selected_containers(&p.engine, sub).await {
            Ok(found) => {
                for (container, (service, task)) in found {
                    if started.insert(container.clone()) {
                        readers.spawn(read_container(
                            p.engine.clone(),
                            container,
                            LogMessage {
                                node_id: p.node_id.clone(),
                                service_id: service,
                                task_id: task,
                                stream: LogStream::Stdout,
                                time: String::new(),
                                text: None,
                                bytes: None,
                            },
                            sub.clone(),
                            tx.clone(),
                        ));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "swarm logs: listing task containers"),
        }
        if !sub.options.follow {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(RESCAN) => {}
            _ = tx.closed() => break,
        }
        while readers.try_join_next().is_some() {}
    }
    while readers.join_next().await.is_some() {}
}

/// Task containers on this node selected by `sub`: container ID -> (service ID, task ID).
async fn selected_containers(
    engine: &Client,
    sub: &LogSubscription,
) -> Result<BTreeMap<String, (String, String)>, berth_client::ClientError> {
    let filters = json!({ "label": [TASK_LABEL] }).to_string();
    let list = engine.containers(true, None, false, Some(&filters)).await?;
    Ok(list
        .iter()
        .filter_map(|c| {
            let label = |k: &str| c.get("Labels")?.get(k)?.as_str().map(str::to_string);
            let (service, task) = (label(SERVICE_ID_LABEL)?, label(TASK_ID_LABEL)?);
            let id = c.get("Id").and_then(Value::as_str)?.to_string();
            sub.selector
                .matches(Some(&service), Some(&task))
                .then_some((id, (service, task)))
        })
        .collect())
}

/// Streams one container's log lines, as `template` with stream, time and line filled in.
async fn read_container(
    engine: Client,
    container: String,
    template: LogMessage,
    sub: LogSubscription,
    tx: mpsc::Sender<Bytes>,
) {
    let o = &sub.options;
    let opts = LogsOptions {
        follow: o.follow,
        timestamps: true,
        tail: o.tail.map(|n| n.to_string()),
        since: o.since.clone(),
        until: None,
    };
    let mut stream = match engine.container_logs(&container, &opts).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(container = %container, error = %e, "swarm logs: no log to read");
            return;
        }
    };
    // A container with a TTY has one raw stream; the others are multiplexed.
    let raw = engine
        .container_inspect(&container, false)
        .await
        .ok()
        .and_then(|c| c.pointer("/Config/Tty").and_then(Value::as_bool))
        .unwrap_or(false);
    let mut demux = Demuxer::new();
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let chunk = match stream.next().await {
            Ok(Some(c)) => c,
            _ => break,
        };
        let frames = if raw {
            vec![(StdStream::Stdout, chunk)]
        } else {
            match demux.push(&chunk) {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(container = %container, error = %e, "swarm logs: bad stream");
                    return;
                }
            }
        };
        for (kind, data) in frames {
            partial.extend_from_slice(&data);
            while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
                let rest = partial.split_off(pos + 1);
                let line = std::mem::replace(&mut partial, rest);
                let wanted = match kind {
                    StdStream::Stderr => o.stderr,
                    _ => o.stdout,
                };
                if !wanted {
                    continue;
                }
                let msg = message(&template, kind, line);
                let Ok(mut wire) = serde_json::to_vec(&msg) else {
                    continue;
                };
                wire.push(b'\n');
                if tx.send(Bytes::from(wire)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// `TIMESTAMP line` as the engine writes it with timestamps on, split into a message.
fn message(template: &LogMessage, kind: StdStream, line: Vec<u8>) -> LogMessage {
    let mut msg = template.clone();
    msg.stream = match kind {
        StdStream::Stderr => LogStream::Stderr,
        _ => LogStream::Stdout,
    };
    let (time, rest) = match line.iter().position(|b| *b == b' ') {
        Some(i) if i > 0 && line[..i].iter().all(|b| b.is_ascii_graphic()) => (
            String::from_utf8_lossy(&line[..i]).into_owned(),
            line[i + 1..].to_vec(),
        ),
        _ => (String::new(), line),
    };
    msg.time = time;
    msg.set_line(rest);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamped_line_splits_into_time_and_text() {
        let t = LogMessage {
            node_id: "n".into(),
            service_id: "s".into(),
            task_id: "t".into(),
            stream: LogStream::Stdout,
            time: String::new(),
            text: None,
            bytes: None,
        };
        let m = message(
            &t,
            StdStream::Stderr,
            b"2026-11-28T10:00:00.123456789Z hello world\n".to_vec(),
        );
        assert_eq!(m.time, "2026-11-28T10:00:00.123456789Z");
        assert_eq!(m.text.as_deref(), Some("hello world\n"));
        assert_eq!(m.stream, LogStream::Stderr);
    }
}
