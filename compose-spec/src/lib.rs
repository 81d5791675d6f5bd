//! The Compose specification as a library: load, interpolate, merge, validate and normalize
//! Compose files the way compose-go does, with errors that name the file, line and field.

pub mod de;
pub mod dotenv;
pub mod model;
pub mod error;
pub mod interpolation;
pub mod merge;
pub mod output;
pub mod transform;
pub mod yaml;

pub use error::{Error, Result};
