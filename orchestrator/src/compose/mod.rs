//! The Compose project reconciler: converges the engine towards a project's model through the
//! Engine API, as docker compose v2 does (pkg/compose).

pub mod containers;
pub mod convert;
pub mod down;
pub mod error;
pub mod images;
pub mod labels;
pub mod logs;
pub mod ops;
pub mod progress;
pub mod resources;
pub mod run;
pub mod up;
pub mod watch;

pub use error::{ComposeError, Result};
