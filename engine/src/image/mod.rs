//! Images: references, the content store, snapshots, the registry client, archives.

pub mod digest;
pub mod reference;
pub mod store;
pub mod unpack;
