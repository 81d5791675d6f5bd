//! Image archives: `docker save` tarballs and OCI layouts (load and save), rootfs import.

use std::path::PathBuf;

/// Errors reading or writing image archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file operation failed.
    #[error("archive: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The archive is not a docker-archive nor an OCI layout, or is inconsistent.
    #[error("invalid image archive: {0}")]
    Invalid(String),
}
