//! Berth's orchestration: the Compose project reconciler for one host. It speaks only the
//! Docker Engine API (through `berth-client`), so it drives berthd and dockerd alike.

pub mod compose;
pub mod stack;
pub mod swarm;
