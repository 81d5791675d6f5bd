//! The dispatcher: the managers' side of the agent sessions.

pub mod client;
pub mod logs;
pub mod proto;
