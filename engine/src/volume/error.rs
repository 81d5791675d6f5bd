//! Volume errors, each mapping to one Docker API status (see the variant docs).

use std::path::PathBuf;

/// Errors of the volume service.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// 404: no volume with this name.
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// 404: the driver is not `local` (Docker looks it up as a plugin and fails).
    #[error("{op} {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found")]
    NoPlugin {
        /// `create` or `get`.
        op: &'static str,
        /// The volume.
        name: String,
        /// The driver asked for.
        driver: String,
    },
    /// 409: containers use the volume.
    #[error("remove {name}: volume is in use - [{}]", ids.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The containers using it.
        ids: Vec<String>,
    },
    /// 409: a volume of this name exists with other settings.
    #[error("{0}")]
    Conflict(String),
    /// 400: bad name, bad option, bad mount specification.
    #[error("{0}")]
    Invalid(String),
    /// 500: mounting or unmounting the volume's file system failed.
    #[error("error while mounting volume '{path}': {message}")]
    Mount {
        /// The `_data` directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// 500: a file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// `map_err` helper for file operations.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = path.into();
    move |source| VolumeError::Io { op, path, source }
}
