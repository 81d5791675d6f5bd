//! The wire format between a node agent and the managers (HTTPS with mutual TLS on the
//! managers' port 2377). One long-poll request carries the heartbeat, the agent's task status
//! reports and its node description; the answer carries the node's assignments. The agent
//! repeats the request at once after every answer, so a manager learns within
//! [`HEARTBEAT_PERIOD`] that a node is gone.

use crate::swarm::state::TaskStatusUpdate;
use bollard_stubs::models::{Network, NodeDescription, Task};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The path of the session request on every manager.
pub const SESSION_PATH: &str = "/dispatcher/v1/session";

/// How long a manager holds a session request when nothing changes.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(1);

/// A node missing heartbeats this long is marked down and its tasks rescheduled.
pub const NODE_DOWN_AFTER: Duration = Duration::from_secs(3);

/// A task label carrying the service's published ports as JSON (`[EndpointPortConfig]`).
/// Docker's `Task` type has no endpoint field (swarmkit's internal one has), so the manager
/// passes the ports this way; the agent does not copy it onto the container.
pub const ENDPOINT_PORTS_LABEL: &str = "berth.swarm.endpoint.ports";

/// One session round trip from an agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionRequest {
    /// The node's ID (also in its certificate; the manager checks both agree).
    pub node_id: String,
    /// The assignment version the agent already has; the manager answers at once when its own
    /// is different, otherwise after a change or [`HEARTBEAT_PERIOD`].
    pub known_version: u64,
    /// Observed task states changed since the last request.
    pub statuses: Vec<TaskStatusUpdate>,
    /// Hostname, platform, resources, engine; sent on the first request of a session.
    pub description: Option<NodeDescription>,
    /// IDs of the log subscriptions this node serves or has served (see [`super::logs`]); the
    /// manager answers at once when its list for the node differs.
    #[serde(default)]
    pub log_subscriptions: Vec<String>,
}

/// The manager's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionResponse {
    /// Version of this assignment set (changes whenever the node's tasks change).
    pub version: u64,
    /// Every task assigned to this node whose desired state is not yet reached or that still
    /// exists on the node: the agent converges its containers to exactly this list.
    /// `Name` is filled in as Docker shows it (`<service>.<slot>` or `<service>.<node id>`),
    /// so the agent names containers `<task name>.<task id>`.
    pub tasks: Vec<Task>,
    /// The swarm networks those tasks attach to (`TaskSpec.Networks[].Target` is a network
    /// ID): the agent creates the node's part of each (a bridge and its VXLAN device).
    pub networks: Vec<Network>,
    /// Addresses (`host:port`) of all managers, to reconnect elsewhere when this one fails.
    pub managers: Vec<String>,
    /// True when the node was removed from the swarm: the agent must stop its tasks and leave.
    pub removed: bool,
    /// The role the node's spec asks for; the agent renews its certificate and starts or
    /// stops its manager when it differs from the role it has.
    #[serde(default)]
    pub role: Option<crate::swarm::ca::Role>,
    /// Whether the node is a voting Raft member (the leader's view): a promoted node asks to
    /// be added until it is; a demoted one stops its manager once it is not.
    #[serde(default)]
    pub raft_member: bool,
    /// The open log subscriptions that select a task of this node: the node streams their
    /// lines to the manager, and stops when a subscription is no longer listed.
    #[serde(default)]
    pub log_subscriptions: Vec<super::logs::LogSubscription>,
    /// The opened data of the secrets and configs that this node's running tasks use, and
    /// only those; the node keeps it in memory.
    #[serde(default)]
    pub data: Vec<crate::swarm::secrets::DataPayload>,
    /// The overlay networks this node's tasks use: where every task on them is and what the
    /// services resolve to.
    #[serde(default)]
    pub overlay: Vec<crate::swarm::overlay::OverlayView>,
    /// This node's own address on the ingress network (the routing mesh's source address).
    #[serde(default)]
    pub ingress_addr: Option<std::net::Ipv4Addr>,
    /// Task ID -> network ID -> the address the task has there.
    #[serde(default)]
    pub addresses:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, std::net::Ipv4Addr>>,
}
