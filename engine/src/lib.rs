//! Berth's container engine as a library: images (content store, snapshots, registry client,
//! archives), containers (lifecycle over `berth-shim`) and the engine's transactional metadata
//! store.

pub mod container;
pub mod error;
pub mod image;
pub mod network;
pub mod state;
pub mod volume;

pub use error::{Error, Result};
/// Re-exported so callers build against the same OCI types as the engine.
pub use oci_spec;
