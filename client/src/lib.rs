//! The Docker Engine API client shared by the CLI, the Compose reconciler and the swarm
//! agent: UNIX sockets and TCP with mutual TLS, version negotiation, typed calls with
//! bollard-stubs types, Docker's JSON progress stream and 8-byte stream framing.

pub mod build;
#[cfg(feature = "certs")]
pub mod certs;
pub mod containers;
pub mod error;
pub mod exec;
pub mod host;
pub mod images;
pub mod networks;
pub mod stream;
pub mod swarm;
pub mod transport;
pub mod volumes;

pub use containers::{ByteStream, JsonLines};
pub use error::{ClientError, Result};
pub use host::{Host, TlsFiles};
pub use stream::{Demuxer, JsonMessage, JsonStream, StdStream};
pub use transport::{Client, Hijacked};
