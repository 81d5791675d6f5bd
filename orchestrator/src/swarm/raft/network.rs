//! Raft RPCs as HTTP POSTs of JSON to the peers' `/raft/*` routes.

// openraft's storage and network traits fix these error types; helpers return them as is.
#![allow(clippy::result_large_err)]

use super::{RaftPeer, TypeConfig};
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
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .timeout(ttl.max(Duration::from_millis(50)))
            .json(body)
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
        let r = self.post("/raft/append", &rpc, option.hard_ttl()).await;
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
