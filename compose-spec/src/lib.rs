//! The Compose specification as a library: load, interpolate, merge, validate and normalize
//! Compose files the way compose-go does, with errors that name the file, line and field.

pub mod consistency;
pub mod de;
pub mod dotenv;
pub mod error;
pub mod hash;
pub mod interpolation;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod output;
pub mod transform;
pub mod validate;
pub mod yaml;

pub use error::{Error, Result};
