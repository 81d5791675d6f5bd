//! The crate error: one variant per module error, folded with `#[from]`.

use crate::container::ContainerError;
use crate::image::ImageError;
use crate::image::archive::ArchiveError;
use crate::image::reference::ReferenceError;
use crate::image::registry::RegistryError;
use crate::image::snapshot::SnapshotError;
use crate::image::store::StoreError;
use crate::image::unpack::UnpackError;
use crate::network::NetworkError;
use crate::state::StateError;
use crate::volume::VolumeError;

/// Any error the engine returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An invalid image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The metadata store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A snapshot operation failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Talking to a registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An image archive could not be read or written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An image-level operation failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Unpacking a layer failed.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// A container operation failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A network operation failed.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// A volume operation failed.
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
