//! Role changes (`node promote`/`demote`, `node update --role`): the node spec says which role a
//! node should have, and three parties converge on it. The leader's control loop removes
//! demoted managers from Raft; the node itself renews its certificate for the new role
//! ([`RENEW_PATH`]), starts or stops its manager, and once promoted asks to be added to Raft
//! ([`MEMBERS_PATH`]). Every step is idempotent, so a crash between two of them is repaired by
//! the next session round.

use super::listener::Peer;
use super::{Manager, ManagerError};
use crate::swarm::ca::{self, Role};
use crate::swarm::raft::RaftPeer;
use axum::extract::{Extension, Json};
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::NodeSpecRoleEnum;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Where a node renews its certificate for the role its spec names.
pub const RENEW_PATH: &str = "/swarm/v1/renew";
/// Where a promoted node whose manager is listening asks to become a Raft voter.
pub const MEMBERS_PATH: &str = "/swarm/v1/members";

/// A certificate renewal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewRequest {
    /// A CSR made with the node's new key.
    pub csr_pem: String,
    /// The node's advertised `ip:port`, named in the certificate.
    pub advertise_addr: String,
}

/// The renewed certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewResponse {
    /// The role the certificate grants (the node spec's).
    pub role: Role,
    /// The certificate.
    pub cert_pem: String,
}

/// A promoted node's request to join Raft.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberRequest {
    /// The address its manager listens on for the others.
    pub addr: String,
}

/// The role a node spec asks for.
pub fn role_of(spec_role: Option<NodeSpecRoleEnum>) -> Role {
    match spec_role {
        Some(NodeSpecRoleEnum::MANAGER) => Role::Manager,
        _ => Role::Worker,
    }
}

impl Manager {
    /// Whether `node_id` is a voting Raft member, as this manager sees it.
    pub fn is_voter(&self, node_id: &str) -> bool {
        self.store()
            .members()
            .iter()
            .any(|m| m.voter && m.peer.node_id == node_id)
    }

    /// Refuses a demotion that would leave no manager or lose quorum, with Docker's messages.
    pub(super) fn check_demote(&self, node_id: &str) -> Result<(), ManagerError> {
        let members = self.store().members();
        let voters: Vec<_> = members.iter().filter(|m| m.voter).collect();
        if !voters.iter().any(|m| m.peer.node_id == node_id) {
            return Ok(());
        }
        if voters.len() <= 1 {
            return Err(ManagerError::Invalid(
                "rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm".into(),
            ));
        }
        let remaining = voters.len() - 1;
        let reachable = voters
            .iter()
            .filter(|m| m.peer.node_id != node_id && m.reachable)
            .count();
        if reachable < remaining / 2 + 1 {
            return Err(ManagerError::Invalid(format!(
                "rpc error: code = FailedPrecondition desc = can't remove {node_id} from the raft cluster: the remaining managers would not have a quorum"
            )));
        }
        Ok(())
    }

    /// On the leader: takes managers out of Raft whose node was demoted or removed. One per
    /// round, never the last voter.
    pub(super) async fn reconcile_members(&self) {
        let members = self.store().members();
        let voters = members.iter().filter(|m| m.voter).count();
        let stale = self.store().read(|s| {
            members
                .iter()
                .find(|m| {
                    s.nodes.get(&m.peer.node_id).is_none_or(|n| {
                        role_of(n.spec.as_ref().and_then(|sp| sp.role)) == Role::Worker
                    })
                })
                .map(|m| m.raft_id)
        });
        let Some(raft_id) = stale else { return };
        if voters <= 1 {
            return;
        }
        if let Err(e) = self.store().remove_manager(raft_id).await {
            tracing::warn!(raft_id, error = %e, "removing a demoted manager from Raft");
        }
    }

    fn renew(
        &self,
        node_id: &str,
        req: RenewRequest,
        peer_ip: IpAddr,
    ) -> Result<RenewResponse, ManagerError> {
        let found = self.store().read(|s| {
            let c = s.cluster.as_ref()?;
            let n = s.nodes.get(node_id)?;
            Some((
                c.id.clone(),
                ca::RootCa {
                    cert_pem: c.ca_cert_pem.clone(),
                    key_pem: c.ca_key_pem.clone(),
                },
                role_of(n.spec.as_ref().and_then(|sp| sp.role)),
            ))
        });
        let (cluster_id, root, role) =
            found.ok_or_else(|| ManagerError::NotFound(format!("node {node_id} not found")))?;
        let ip = req
            .advertise_addr
            .rsplit_once(':')
            .and_then(|(h, _)| h.trim_matches(['[', ']']).parse().ok())
            .unwrap_or(peer_ip);
        let cert_pem = root.sign(&req.csr_pem, node_id, role, &cluster_id, &[ip])?;
        Ok(RenewResponse { role, cert_pem })
    }

    async fn add_member(
        &self,
        node_id: &str,
        identity_role: Role,
        addr: String,
    ) -> Result<(), ManagerError> {
        let wanted = self.store().read(|s| {
            s.nodes
                .get(node_id)
                .map(|n| role_of(n.spec.as_ref().and_then(|sp| sp.role)))
        });
        if wanted != Some(Role::Manager) || identity_role != Role::Manager {
            return Err(ManagerError::Invalid(format!(
                "node {node_id} is not a manager"
            )));
        }
        if self.is_voter(node_id) {
            return Ok(());
        }
        let peer = RaftPeer {
            addr,
            node_id: node_id.to_string(),
        };
        self.store()
            .add_manager(super::join::raft_id_of(node_id), peer)
            .await?;
        Ok(())
    }
}

pub(super) async fn renew(
    Extension(m): Extension<Manager>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<RenewRequest>,
) -> Response {
    let id = match peer.node() {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match m.renew(&id.node_id, req, peer.addr.ip()) {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn add_member(
    Extension(m): Extension<Manager>,
    Extension(peer): Extension<Peer>,
    Json(req): Json<MemberRequest>,
) -> Response {
    let id = match peer.node() {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    match m.add_member(&id.node_id, id.role, req.addr).await {
        Ok(()) => Json(serde_json::json!({})).into_response(),
        Err(e) => e.into_response(),
    }
}
