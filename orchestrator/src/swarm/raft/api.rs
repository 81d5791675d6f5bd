//! The `/raft/*` routes: openraft's RPCs and requests forwarded to the leader.

use super::{ClusterStore, ForwardReply, ForwardRequest, TypeConfig};
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

/// Append batches and snapshot chunks are far above axum's 2 MB default.
const BODY_LIMIT: usize = 64 << 20;

pub(super) fn router(store: ClusterStore) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/forward", post(forward))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(store)
}

async fn append(
    State(store): State<ClusterStore>,
    Json(rpc): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<u64>, RaftError<u64>>> {
    if let Some(leader) = rpc.vote.leader_id().voted_for() {
        store.saw(leader);
    }
    Json(store.raft().append_entries(rpc).await)
}

async fn vote(
    State(store): State<ClusterStore>,
    Json(rpc): Json<VoteRequest<u64>>,
) -> Json<Result<VoteResponse<u64>, RaftError<u64>>> {
    Json(store.raft().vote(rpc).await)
}

async fn snapshot(
    State(store): State<ClusterStore>,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>> {
    Json(store.raft().install_snapshot(rpc).await)
}

async fn forward(
    State(store): State<ClusterStore>,
    Json(op): Json<ForwardRequest>,
) -> Json<ForwardReply> {
    Json(store.serve_forward(op).await)
}
