//! Container errors, each mapping to one Docker API status (see the variant docs).

use std::path::PathBuf;

/// Errors of the container service.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// 404: no container with this name or ID.
    #[error("No such container: {0}")]
    NotFound(String),
    /// 409: the name is taken.
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameConflict {
        /// The name, without `/`.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// 400: the request is invalid (bad name, bad option, ...).
    #[error("{0}")]
    Invalid(String),
    /// 409: the container's state does not allow this (not running, paused, ...).
    #[error("{0}")]
    Conflict(String),
    /// 304: nothing to do (already started, already stopped).
    #[error("container already in the requested state")]
    NotModified,
    /// 501: the container's configuration does not support this (logs with driver `none`).
    #[error("{0}")]
    NotImplemented(String),
    /// 404: a path inside the container does not exist.
    #[error("{0}")]
    NoSuchPath(String),
    /// 404: no exec instance with this ID.
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// 500: the shim failed or answered an error.
    #[error("shim: {0}")]
    Shim(String),
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
    /// 500: something the engine could not do (a record it cannot decode, a failed task).
    #[error("{0}")]
    Internal(String),
}

/// `map_err` helper for file operations.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.into();
    move |source| ContainerError::Io { op, path, source }
}
