//! The swarm worker inside berthd: runs the tasks a manager assigns to this node as containers
//! on its own engine (through its Engine API socket, as Docker's swarm executor does) and keeps
//! the session with the managers.

pub mod executor;
pub mod files;
pub mod logs;
pub mod session;
pub mod spec;

pub use executor::Executor;
pub use session::{RoleSignal, SessionConfig, run};
