//! The Compose specification as a library: load, interpolate, merge, validate and normalize
//! Compose files the way compose-go does, with errors that name the file, line and field.

pub mod consistency;
pub mod de;
pub mod dotenv;
pub mod error;
pub mod graph;
pub mod hash;
pub mod interpolation;
pub mod loader;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod output;
mod par;
pub mod profiles;
pub mod transform;
pub mod validate;
pub mod yaml;

pub use error::{Error, Result};
pub use graph::{Condition, Dependency, ServiceEdges, ServiceGraph};
pub use loader::{LoadOptions, LoadedNode, LoadedProject, load, load_node, load_project};
