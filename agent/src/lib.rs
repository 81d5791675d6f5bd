//! berthd: the node daemon. It embeds the engine and serves the Docker Engine API on a UNIX
//! socket and on TCP with mutual TLS.

#![recursion_limit = "256"]

pub mod api;
pub mod daemon;
pub mod events;
pub mod server;
pub mod swarm;
pub mod tls;

pub use daemon::{Config, Daemon, DaemonError};
