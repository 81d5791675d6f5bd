//! The Raft-replicated cluster store: every manager holds a replica of [`ClusterState`],
//! changed only through the Raft log (openraft), persisted in redb under the swarm directory.
//!
//! Timing: heartbeats every 150 ms, elections after 600-1000 ms of silence. openraft 0.9 makes
//! a follower refuse votes for a leader lease of `election_timeout_max` after the last
//! heartbeat, so the first candidate after a leader's death is usually refused and the second
//! round wins: failover takes about two election timeouts (measured 1.7-2.0 s on loopback).
//! Shorter timeouts (500-800, 700-900 ms) failed over in 1.5-1.8 s but caused needless
//! elections in the 1,000-agent benchmark on the loaded 2-core machine, so 4+ missed heartbeats
//! stay the threshold. openraft bounds each AppendEntries by the heartbeat interval, so 150 ms
//! also leaves room for a batch's fsync on a busy disk.

mod api;
mod batch;
mod log_store;
mod network;
mod state_machine;

pub use batch::MAX_WEIGHT;

use crate::swarm::state::{ClusterState, Outcome, Request};
use network::{Network, Reach};
use openraft::error::ClientWriteError;
use openraft::{ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use state_machine::{Shared, StateMachine};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

openraft::declare_raft_types!(
    /// The openraft type configuration of the cluster store.
    pub TypeConfig:
        D = Request,
        R = Outcome,
        NodeId = u64,
        Node = RaftPeer,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// How long a write waits for a leader (elections, forwarding) before giving up.
const WRITE_WAIT: Duration = Duration::from_secs(4);
/// How long adding a manager waits for it to catch up as a learner.
const CATCH_UP_WAIT: Duration = Duration::from_secs(60);
/// Pause between attempts while no leader is known.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A manager as the Raft membership records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct RaftPeer {
    /// Where its `/raft/*` routes listen, `host:port`.
    pub addr: String,
    /// Its swarm node ID.
    pub node_id: String,
}

/// Where and how to open the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Directory holding `raft.redb` (`<root>/swarm/`).
    pub dir: PathBuf,
    /// This manager's Raft ID.
    pub raft_id: u64,
    /// This manager's address and node ID.
    pub peer: RaftPeer,
    /// The client for peer RPCs (mutual TLS in a cluster).
    pub client: reqwest::Client,
    /// `https` or `http`.
    pub scheme: String,
}

/// Log compaction settings.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Take a snapshot after this many entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept behind a snapshot, so a briefly lagging follower needs no snapshot.
    pub keep_logs: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            snapshot_every: 5_000,
            keep_logs: 1_000,
        }
    }
}

/// The store's file under its directory: removed when a manager is demoted, so that a later
/// promotion starts from an empty log rather than an old membership.
pub const DB_FILE: &str = "raft.redb";

/// One manager of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its Raft ID.
    pub raft_id: u64,
    /// Its address and node ID.
    pub peer: RaftPeer,
    /// Whether it votes (false while it catches up as a learner).
    pub voter: bool,
    /// Whether it answers (the leader's view; best effort on followers).
    pub reachable: bool,
}

/// Cluster store failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RaftError {
    /// No leader could be reached within the wait: too few managers are online.
    #[error(
        "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."
    )]
    NoLeader,
    /// The store could not be opened.
    #[error("opening the cluster store in {}: {reason}", path.display())]
    Open {
        /// The store directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The Raft settings were refused.
    #[error("invalid raft settings: {0}")]
    Config(String),
    /// The Raft core stopped.
    #[error("the cluster store stopped: {0}")]
    Fatal(String),
    /// A membership change failed.
    #[error("changing the managers: {0}")]
    Membership(String),
    /// The leader refused or failed a forwarded request.
    #[error("the leader at {addr} failed the request: {reason}")]
    Forward {
        /// The leader's address.
        addr: String,
        /// What it said.
        reason: String,
    },
}

/// What a follower asks the leader to do (`POST /raft/forward`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) enum ForwardRequest {
    Write(Request),
    AddManager { raft_id: u64, peer: RaftPeer },
    RemoveManager { raft_id: u64 },
}

/// The leader's answer to a forwarded request.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) enum ForwardReply {
    Done(Outcome),
    /// The receiver is not the leader (any more): try again.
    NotLeader,
    NoLeader,
    Failed(String),
}

enum Local {
    NotLeader,
    Failed(RaftError),
}

struct Inner {
    raft: Raft<TypeConfig>,
    id: u64,
    own: RaftPeer,
    shared: Arc<Shared>,
    reach: Arc<Reach>,
    client: reqwest::Client,
    scheme: String,
    /// To wait at shutdown until openraft's tasks let go of the file (redb locks it).
    db: std::sync::Weak<redb::Database>,
    /// Writes waiting to be proposed together.
    batch: tokio::sync::mpsc::UnboundedSender<batch::Pending>,
}

/// A manager's handle on the replicated cluster store.
#[derive(Clone)]
pub struct ClusterStore {
    inner: Arc<Inner>,
}

impl ClusterStore {
    /// Opens (or creates) the store in `cfg.dir`, restoring the log, vote and snapshot.
    pub async fn open(cfg: StoreConfig) -> Result<Self, RaftError> {
        Self::open_with(cfg, Tuning::default()).await
    }

    /// [`ClusterStore::open`] with explicit compaction settings.
    pub async fn open_with(cfg: StoreConfig, tuning: Tuning) -> Result<Self, RaftError> {
        let open_err = |reason: String| RaftError::Open {
            path: cfg.dir.clone(),
            reason,
        };
        std::fs::create_dir_all(&cfg.dir).map_err(|e| open_err(e.to_string()))?;
        let db = open_db(&cfg.dir.join(DB_FILE))
            .await
            .map_err(|e| open_err(format!("raft.redb: {e}")))?;
        log_store::init_tables(&db).map_err(|e| open_err(e.to_string()))?;
        let db = Arc::new(db);
        let weak_db = Arc::downgrade(&db);
        let (sm, shared) = StateMachine::open(db.clone()).map_err(open_err)?;
        let config = Config {
            cluster_name: "berth-swarm".into(),
            heartbeat_interval: 150,
            election_timeout_min: 600,
            election_timeout_max: 1000,
            install_snapshot_timeout: 5000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(tuning.snapshot_every),
            max_in_snapshot_log_to_keep: tuning.keep_logs,
            snapshot_max_chunk_size: 1 << 20,
            ..Default::default()
        }
        .validate()
        .map_err(|e| RaftError::Config(e.to_string()))?;
        let reach = Arc::new(Reach::default());
        let network = Network {
            client: cfg.client.clone(),
            scheme: cfg.scheme.clone(),
            reach: reach.clone(),
        };
        let raft = Raft::new(
            cfg.raft_id,
            Arc::new(config),
            network,
            log_store::LogStore::new(db),
            sm,
        )
        .await
        .map_err(|e| RaftError::Fatal(e.to_string()))?;
        Ok(Self {
            inner: Arc::new_cyclic(|weak| Inner {
                raft,
                id: cfg.raft_id,
                own: cfg.peer,
                shared,
                reach,
                client: cfg.client,
                scheme: cfg.scheme,
                db: weak_db,
                batch: batch::spawn(weak.clone()),
            }),
        })
    }

    /// Makes this store a one-manager cluster (`swarm init`); a no-op once initialised.
    pub async fn bootstrap(&self) -> Result<(), RaftError> {
        let raft = &self.inner.raft;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| RaftError::Fatal(e.to_string()))?;
        if !initialized {
            let me = BTreeMap::from([(self.inner.id, self.inner.own.clone())]);
            raft.initialize(me)
                .await
                .map_err(|e| RaftError::Membership(e.to_string()))?;
        }
        let deadline = Instant::now() + WRITE_WAIT;
        while self.leader().is_none() && Instant::now() < deadline {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        Ok(())
    }

    /// Adds a manager: first as a learner until it caught up, then as a voter.
    pub async fn add_manager(&self, raft_id: u64, peer: RaftPeer) -> Result<(), RaftError> {
        self.route(ForwardRequest::AddManager { raft_id, peer })
            .await
            .map(|_| ())
    }

    /// Removes a manager from the voters and the membership (demote, leave, node rm).
    pub async fn remove_manager(&self, raft_id: u64) -> Result<(), RaftError> {
        self.route(ForwardRequest::RemoveManager { raft_id })
            .await
            .map(|_| ())
    }

    /// Commits a change through the leader (forwarded when this manager is not it); writes
    /// made at the same time share a log entry.
    pub async fn write(&self, req: Request) -> Result<Outcome, RaftError> {
        batch::write(&self.inner.batch, req).await
    }

    /// Commits `reqs` as one log entry, applied in order: all or (on an error) none of them;
    /// each may still be refused on its own. Their outcomes in the same order.
    pub async fn write_all(&self, mut reqs: Vec<Request>) -> Result<Vec<Outcome>, RaftError> {
        if reqs.len() > 1 {
            return batch::commit_all(self, reqs).await;
        }
        match reqs.pop() {
            Some(req) => Ok(vec![self.route(ForwardRequest::Write(req)).await?]),
            None => Ok(Vec::new()),
        }
    }

    /// Reads the local replica.
    pub fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        let applied = self
            .inner
            .shared
            .applied
            .read()
            .unwrap_or_else(|e| e.into_inner());
        f(&applied.state)
    }

    /// The index of the last applied entry, to wait for changes.
    pub fn applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.shared.applied_tx.subscribe()
    }

    /// Whether this manager is the leader.
    pub fn is_leader(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.inner.id)
    }

    /// The current leader, as far as this manager knows.
    pub fn leader(&self) -> Option<(u64, RaftPeer)> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let peer = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, peer))
    }

    /// The managers in the membership.
    pub fn members(&self) -> Vec<Member> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        let leading = m.state == ServerState::Leader;
        let has_leader = m.current_leader.is_some();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, peer)| Member {
                raft_id: *id,
                peer: peer.clone(),
                voter: voters.contains(id),
                reachable: *id == self.inner.id
                    || self
                        .inner
                        .reach
                        .reachable(*id)
                        .unwrap_or(!leading && has_leader),
            })
            .collect()
    }

    /// The `/raft/*` routes peers call; the caller adds authentication (mutual TLS).
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Stops the Raft core; the store must not be used afterwards.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "stopping the raft core");
        }
        // openraft's storage tasks end shortly after the core; reopening needs the lock free.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.inner.db.strong_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.inner.db.strong_count() > 0 {
            tracing::warn!("the raft store is still open after shutdown");
        }
    }

    /// Takes a snapshot now (compaction also happens on its own every `snapshot_every`).
    pub async fn snapshot_now(&self) -> Result<(), RaftError> {
        self.inner
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| RaftError::Fatal(e.to_string()))
    }

    /// The Raft metrics, for diagnostics and tests.
    pub fn metrics(&self) -> openraft::RaftMetrics<u64, RaftPeer> {
        self.inner.raft.metrics().borrow().clone()
    }

    /// Runs `op` on the leader: here, or forwarded, retrying while an election runs.
    async fn route(&self, op: ForwardRequest) -> Result<Outcome, RaftError> {
        let deadline = Instant::now() + WRITE_WAIT;
        loop {
            match self.leader() {
                Some((id, _)) if id == self.inner.id => {
                    match self.local(op.clone(), deadline).await {
                        Ok(o) => return Ok(o),
                        Err(Local::Failed(e)) => return Err(e),
                        Err(Local::NotLeader) => {}
                    }
                }
                Some((_, peer)) => match self.forward(&peer, &op, deadline).await {
                    Ok(ForwardReply::Done(o)) => return Ok(o),
                    Ok(ForwardReply::NoLeader) => return Err(RaftError::NoLeader),
                    Ok(ForwardReply::Failed(reason)) => {
                        return Err(RaftError::Forward {
                            addr: peer.addr,
                            reason,
                        });
                    }
                    Ok(ForwardReply::NotLeader) | Err(Retry) => {}
                },
                None => {}
            }
            if Instant::now() + RETRY_PAUSE >= deadline {
                return Err(RaftError::NoLeader);
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Sends `op` to the leader; `Err(Retry)` when it could not be delivered.
    async fn forward(
        &self,
        leader: &RaftPeer,
        op: &ForwardRequest,
        deadline: Instant,
    ) -> Result<ForwardReply, Retry> {
        let wait = match op {
            ForwardRequest::AddManager { .. } => CATCH_UP_WAIT + WRITE_WAIT,
            _ => WRITE_WAIT,
        };
        let _ = deadline;
        let res = self
            .inner
            .client
            .post(format!(
                "{}://{}/raft/forward",
                self.inner.scheme, leader.addr
            ))
            .timeout(wait + Duration::from_secs(1))
            .json(op)
            .send()
            .await;
        let res = match res {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::debug!(status = %r.status(), "forwarding to the leader");
                return Err(Retry);
            }
            Err(e) if e.is_connect() => return Err(Retry),
            Err(e) => {
                // Delivered or not, retrying could apply the change twice.
                return Ok(ForwardReply::Failed(e.to_string()));
            }
        };
        res.json::<ForwardReply>()
            .await
            .or_else(|e| Ok(ForwardReply::Failed(e.to_string())))
    }

    /// Runs `op` on this manager, which believes it leads.
    async fn local(&self, op: ForwardRequest, deadline: Instant) -> Result<Outcome, Local> {
        let raft = &self.inner.raft;
        match op {
            ForwardRequest::Write(req) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(wait, raft.client_write(req)).await {
                    Ok(Ok(resp)) => Ok(resp.data),
                    Ok(Err(e)) => Err(client_write_error(e)),
                    // A leader cut off from the majority never commits.
                    Err(_) => Err(Local::Failed(RaftError::NoLeader)),
                }
            }
            ForwardRequest::AddManager { raft_id, peer } => {
                let voters: BTreeSet<u64> = {
                    let m = raft.metrics();
                    let m = m.borrow();
                    m.membership_config.membership().voter_ids().collect()
                };
                if voters.contains(&raft_id) {
                    return Ok(Outcome::Done);
                }
                match tokio::time::timeout(CATCH_UP_WAIT, raft.add_learner(raft_id, peer, true))
                    .await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(client_write_error(e)),
                    Err(_) => {
                        return Err(Local::Failed(RaftError::Membership(format!(
                            "manager {raft_id} did not catch up within {}s",
                            CATCH_UP_WAIT.as_secs()
                        ))));
                    }
                }
                self.change(ChangeMembers::AddVoterIds(BTreeSet::from([raft_id])))
                    .await
            }
            ForwardRequest::RemoveManager { raft_id } => {
                let (voter, known) = {
                    let m = raft.metrics();
                    let m = m.borrow();
                    let mem = m.membership_config.membership();
                    (
                        mem.voter_ids().any(|v| v == raft_id),
                        mem.get_node(&raft_id).is_some(),
                    )
                };
                if voter {
                    self.change(ChangeMembers::RemoveVoters(BTreeSet::from([raft_id])))
                        .await
                } else if known {
                    self.change(ChangeMembers::RemoveNodes(BTreeSet::from([raft_id])))
                        .await
                } else {
                    Ok(Outcome::Done)
                }
            }
        }
    }

    async fn change(&self, change: ChangeMembers<u64, RaftPeer>) -> Result<Outcome, Local> {
        let fut = self.inner.raft.change_membership(change, false);
        match tokio::time::timeout(WRITE_WAIT, fut).await {
            Ok(Ok(_)) => Ok(Outcome::Done),
            Ok(Err(e)) => Err(client_write_error(e)),
            Err(_) => Err(Local::Failed(RaftError::NoLeader)),
        }
    }

    /// Answers a forwarded request (the `/raft/forward` route).
    pub(crate) async fn serve_forward(&self, op: ForwardRequest) -> ForwardReply {
        if !self.is_leader() {
            return ForwardReply::NotLeader;
        }
        match self.local(op, Instant::now() + WRITE_WAIT).await {
            Ok(o) => ForwardReply::Done(o),
            Err(Local::NotLeader) => ForwardReply::NotLeader,
            Err(Local::Failed(RaftError::NoLeader)) => ForwardReply::NoLeader,
            Err(Local::Failed(e)) => ForwardReply::Failed(e.to_string()),
        }
    }

    pub(crate) fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    pub(crate) fn saw(&self, raft_id: u64) {
        self.inner.reach.saw(raft_id);
    }
}

/// Opens redb, waiting a little while a previous handle in this process finishes closing (the
/// last `Arc` is gone before redb's close has released the file lock).
async fn open_db(path: &std::path::Path) -> Result<redb::Database, redb::DatabaseError> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match redb::Database::create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => return r,
        }
    }
}

/// A forward that never reached the leader; safe to retry.
struct Retry;

fn client_write_error(
    e: openraft::error::RaftError<u64, ClientWriteError<u64, RaftPeer>>,
) -> Local {
    match e {
        openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            Local::NotLeader
        }
        openraft::error::RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Local::Failed(RaftError::Membership(e.to_string()))
        }
        openraft::error::RaftError::Fatal(e) => Local::Failed(RaftError::Fatal(e.to_string())),
    }
}
