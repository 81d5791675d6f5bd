//! YAML documents as a tree of [`Node`]s that remember where they came from, so that every later
//! stage (interpolation, merge, validation) can name the file, line and column of a bad value.

mod node;
mod parse;

pub use node::{
    Key, KeyHashState, KeyHasher, Location, Mapping, Node, Resolved, Scalar, ScalarStyle, Tag,
    Value,
};
pub use parse::{ParseError, ParseLimits, parse_documents};
