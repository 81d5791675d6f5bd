//! The Compose project reconciler: converges the engine towards a project's model through the
//! Engine API, as docker compose v2 does (pkg/compose).

pub mod containers;
pub mod convert;
pub mod error;
pub mod labels;

pub use error::{ComposeError, Result};
