//! Raft RPCs as HTTP POSTs of JSON to the peers' `/raft/*` routes.

// openraft's storage and network traits fix these error types; helpers return them as is.
#![allow(clippy::result_large_err)]

use super::{RaftPeer, TypeConfig};
use openraft::LogId;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A peer counts as reachable while it answered within this long.
const REACHABLE_FOR: Duration = Duration::from_secs(2);

/// When each peer last answered (or, on a follower, when the leader last reached us).
#[derive(Default)]
pub(crate) struct Reach(Mutex<HashMap<u64, Instant>>);

impl Reach {
    pub(crate) fn saw(&self, id: u64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(id, Instant::now());
        }
    }

    /// `None` when the peer was never heard from.
    pub(crate) fn reachable(&self, id: u64) -> Option<bool> {
        let m = self.0.lock().ok()?;
        m.get(&id).map(|t| t.elapsed() < REACHABLE_FOR)
    }
}

/// Most bytes of entries in one AppendEntries RPC (at least one entry always goes). openraft
/// gives the RPC one heartbeat interval; a bigger body risks a timeout, which openraft takes
/// for an unreachable peer and backs off from, stalling every commit behind it.
const APPEND_BYTES: usize = 1 << 20;

/// An HTTP answer that is not a 200.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpStatus(String);

/// Makes one client per target peer.
#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) client: reqwest::Client,
    pub(crate) scheme: String,
    pub(crate) reach: Arc<Reach>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &RaftPeer) -> PeerClient {
        PeerClient {
            client: self.client.clone(),
            base: format!("{}://{}", self.scheme, node.addr),
            target,
            node: node.clone(),
            reach: self.reach.clone(),
        }
    }
}

/// The connection to one peer.
pub(crate) struct PeerClient {
    client: reqwest::Client,
    base: String,
    target: u64,
    node: RaftPeer,
    reach: Arc<Reach>,
}

enum Transport {
    Unreachable(Unreachable),
    Network(NetworkError),
}

impl PeerClient {
    async fn post<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        body: &Q,
        ttl: Duration,
    ) -> Result<A, Transport> {
        let body =
            serde_json::to_vec(body).map_err(|e| Transport::Network(NetworkError::new(&e)))?;
        self.post_json(path, body, ttl).await
    }

    async fn post_json<A: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
        ttl: Duration,
    ) -> Result<A, Transport> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .timeout(ttl.max(Duration::from_millis(50)))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        if !res.status().is_success() {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            return Err(Transport::Network(NetworkError::new(&HttpStatus(format!(
                "{path}: HTTP {status}: {text}"
            )))));
        }
        let answer = res.json::<A>().await.map_err(transport)?;
        self.reach.saw(self.target);
        Ok(answer)
    }

    fn lift<T, E: std::error::Error>(
        &self,
        r: Result<Result<T, E>, Transport>,
    ) -> Result<T, RPCError<u64, RaftPeer, E>> {
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))),
            Err(Transport::Unreachable(e)) => Err(RPCError::Unreachable(e)),
            Err(Transport::Network(e)) => Err(RPCError::Network(e)),
        }
    }
}

/// Connection failures and timeouts make openraft back off from the peer; anything else is
/// retried at once.
fn transport(e: reqwest::Error) -> Transport {
    if e.is_connect() || e.is_timeout() {
        Transport::Unreachable(Unreachable::new(&e))
    } else {
        Transport::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, RaftPeer, RaftError<u64>>> {
        let (body, sent_upto) =
            append_body(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let r = self
            .post_json("/raft/append", body, option.hard_ttl())
            .await;
        let r = match (r, sent_upto) {
            // Only a prefix went: tell openraft how far, it sends the rest next.
            (Ok(Ok(AppendEntriesResponse::Success)), Some(last)) => {
                Ok(Ok(AppendEntriesResponse::PartialSuccess(Some(last))))
            }
            (r, _) => r,
        };
        self.lift(r)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, RaftPeer, RaftError<u64, InstallSnapshotError>>,
    > {
        let r = self.post("/raft/snapshot", &rpc, option.hard_ttl()).await;
        self.lift(r)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, RaftPeer, RaftError<u64>>> {
        let r = self.post("/raft/vote", &rpc, option.hard_ttl()).await;
        self.lift(r)
    }
}

/// The JSON body of `rpc` with as many entries as fit in [`APPEND_BYTES`], and the last log ID
/// sent when some were left out. Each entry is encoded once and spliced into the request.
fn append_body(
    mut rpc: AppendEntriesRequest<TypeConfig>,
) -> Result<(Vec<u8>, Option<LogId<u64>>), serde_json::Error> {
    let entries = std::mem::take(&mut rpc.entries);
    let total = entries.len();
    let mut list = Vec::with_capacity(APPEND_BYTES.min(1 << 16));
    list.push(b'[');
    let mut last = None;
    let mut sent = 0;
    for e in &entries {
        let bytes = serde_json::to_vec(e)?;
        if sent > 0 && list.len() + bytes.len() > APPEND_BYTES {
            break;
        }
        if sent > 0 {
            list.push(b',');
        }
        list.extend_from_slice(&bytes);
        last = Some(e.log_id);
        sent += 1;
    }
    list.push(b']');
    let head = serde_json::to_vec(&rpc)?;
    const EMPTY: &[u8] = b"\"entries\":[]";
    let at = head
        .windows(EMPTY.len())
        .position(|w| w == EMPTY)
        .map(|i| i + EMPTY.len() - 2)
        .ok_or_else(|| serde::ser::Error::custom("no entries field in an AppendEntries request"))?;
    let mut body = Vec::with_capacity(head.len() + list.len());
    body.extend_from_slice(&head[..at]);
    body.extend_from_slice(&list);
    body.extend_from_slice(&head[at + 2..]);
    Ok((body, if sent < total { last } else { None }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::state::{Command, Request};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, Vote};

    fn entry(index: u64, pad: usize) -> Entry<TypeConfig> {
        let node = bollard_stubs::models::Node {
            id: Some(format!("n{index}-{}", "x".repeat(pad))),
            ..Default::default()
        };
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), index),
            payload: EntryPayload::Normal(Request {
                at: "2026-01-01T00:00:00Z".into(),
                command: Command::AddNode(Box::new(node)),
            }),
        }
    }

    fn request(entries: Vec<Entry<TypeConfig>>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 9)),
            entries,
            leader_commit: Some(LogId::new(CommittedLeaderId::new(3, 1), 8)),
        }
    }

    #[test]
    fn small_batches_go_whole_and_decode_as_sent() {
        let rpc = request((10..20).map(|i| entry(i, 10)).collect());
        let (body, upto) = append_body(rpc.clone()).unwrap();
        assert_eq!(upto, None);
        let back: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&rpc).unwrap()
        );
        let (body, upto) = append_body(request(Vec::new())).unwrap();
        assert_eq!(upto, None);
        let back: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(&body).unwrap();
        assert!(back.entries.is_empty());
    }

    #[test]
    fn large_batches_send_a_prefix_and_say_how_far() {
        let rpc = request((10..13).map(|i| entry(i, 600 << 10)).collect());
        let (body, upto) = append_body(rpc).unwrap();
        assert_eq!(upto.map(|l| l.index), Some(10));
        let back: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.entries.len(), 1);
        assert_eq!(back.leader_commit.map(|l| l.index), Some(8));
        // One entry above the limit still goes, alone.
        let (_, upto) = append_body(request(vec![entry(10, 2 << 20)])).unwrap();
        assert_eq!(upto, None);
    }
}
