//! Joining: a node fetches the CA (checking it against the token's pin), then sends the token
//! and a CSR; the manager answers with the node's ID and certificate and records the node.

use super::{Manager, ManagerError};
use crate::swarm::ca::{self, Role};
use crate::swarm::ids;
use crate::swarm::state::{Command, Outcome};
use bollard_stubs::models::{
    Node, NodeDescription, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState,
    NodeStatus,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Path of the CA download.
pub const CA_PATH: &str = "/swarm/v1/ca";
/// Path of the join request.
pub const JOIN_PATH: &str = "/swarm/v1/join";

/// What a joining node sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The join token.
    pub token: String,
    /// A CSR for the node's own key.
    pub csr_pem: String,
    /// The address other nodes reach it at (`ip:port`), for managers the Raft address.
    pub advertise_addr: String,
    /// Hostname, platform, resources, engine.
    pub description: NodeDescription,
    /// `--availability` of `swarm join`.
    pub availability: Option<NodeSpecAvailabilityEnum>,
}

/// What the manager answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The new node's ID.
    pub node_id: String,
    /// The cluster's ID.
    pub cluster_id: String,
    /// The role the token granted.
    pub role: Role,
    /// The node's certificate.
    pub cert_pem: String,
    /// The cluster CA.
    pub ca_pem: String,
    /// Manager addresses, leader first.
    pub managers: Vec<String>,
}

/// Derives a Raft member ID from a node ID, so no table maps one to the other.
pub fn raft_id_of(node_id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(node_id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b) & 0x7fff_ffff_ffff_ffff
}

impl Manager {
    /// Handles a join on this manager; the store forwards the writes to the leader.
    pub async fn join(
        &self,
        req: JoinRequest,
        peer_ip: IpAddr,
    ) -> Result<JoinResponse, ManagerError> {
        let parsed = ca::parse_token(&req.token).map_err(|_| ManagerError::InvalidToken)?;
        let (cluster_id, ca_pem, ca_key_pem, worker, manager) = self
            .store()
            .read(|s| {
                s.cluster.as_ref().map(|c| {
                    (
                        c.id.clone(),
                        c.ca_cert_pem.clone(),
                        c.ca_key_pem.clone(),
                        c.worker_secret.clone(),
                        c.manager_secret.clone(),
                    )
                })
            })
            .ok_or(ManagerError::NotInitialised)?;
        if !parsed.pins(&ca_pem) {
            return Err(ManagerError::InvalidToken);
        }
        let role = if parsed.secret == manager {
            Role::Manager
        } else if parsed.secret == worker {
            Role::Worker
        } else {
            return Err(ManagerError::InvalidToken);
        };
        let advertise = if req.advertise_addr.is_empty() {
            format!("{peer_ip}:2377")
        } else {
            req.advertise_addr.clone()
        };
        let ip: IpAddr = advertise
            .rsplit_once(':')
            .and_then(|(h, _)| h.trim_matches(['[', ']']).parse().ok())
            .unwrap_or(peer_ip);
        let node_id = ids::new_id();
        let root = ca::RootCa {
            cert_pem: ca_pem.clone(),
            key_pem: ca_key_pem,
        };
        let cert_pem = root.sign(&req.csr_pem, &node_id, role, &cluster_id, &[ip])?;
        let node = Node {
            id: Some(node_id.clone()),
            spec: Some(NodeSpec {
                role: Some(match role {
                    Role::Manager => NodeSpecRoleEnum::MANAGER,
                    Role::Worker => NodeSpecRoleEnum::WORKER,
                }),
                availability: Some(req.availability.unwrap_or(NodeSpecAvailabilityEnum::ACTIVE)),
                ..Default::default()
            }),
            description: Some(req.description.clone()),
            status: Some(NodeStatus {
                state: Some(NodeState::UNKNOWN),
                message: None,
                addr: Some(ip.to_string()),
            }),
            ..Default::default()
        };
        match self.write(Command::AddNode(Box::new(node))).await? {
            Outcome::Done => {}
            other => return Err(ManagerError::Refused(other)),
        }
        if role == Role::Manager {
            // The new manager starts its Raft listener only after this answer arrives, so
            // adding it as a member runs in the background and retries until it answers.
            let store = self.store().clone();
            let peer = crate::swarm::raft::RaftPeer {
                addr: advertise.clone(),
                node_id: node_id.clone(),
            };
            let raft_id = raft_id_of(&node_id);
            self.spawn(async move {
                for attempt in 0..60u32 {
                    match store.add_manager(raft_id, peer.clone()).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::info!(attempt, error = %e, "adding manager to Raft");
                            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        }
                    }
                }
            });
        }
        Ok(JoinResponse {
            node_id,
            cluster_id,
            role,
            cert_pem,
            ca_pem,
            managers: self.manager_addrs(),
        })
    }
}
