//! The swarm manager: the replicated cluster store, the orchestrator and scheduler that turn
//! services into tasks, and the dispatcher that hands tasks to node agents.

pub mod ca;
pub mod dispatcher;
pub mod ids;
pub mod manager;
pub mod overlay;
pub mod raft;
pub mod reconcile;
pub mod scheduler;
pub mod secrets;
pub mod sim;
pub mod state;
pub mod tls;
