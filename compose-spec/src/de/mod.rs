//! A serde [`Deserializer`](serde::Deserializer) over [`yaml::Node`](crate::yaml::Node) trees, so
//! model types can derive `Deserialize` and still report errors with the file, line, column and
//! YAML path of the offending value, worded the way compose-go words them.

mod error;
mod node;

pub use error::DecodeError;
pub use node::{EXTENSIONS_FIELD, NodeDeserializer, Path, from_node};
