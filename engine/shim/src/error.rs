//! The crate error: I/O and JSON failures carry what was being done.

use std::io;

/// Every error of the shim library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file, socket or pipe operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The cause.
        source: io::Error,
    },
    /// A JSON document (config, exit status, protocol line, log line) is invalid.
    #[error("{context}: {source}")]
    Json {
        /// What was being parsed or written.
        context: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The log driver keeps nothing to read (Docker's wording).
    #[error("configured logging driver does not support reading")]
    NotReadable,
    /// A log file holds a record that cannot be decoded.
    #[error("corrupt log record in {path}: {message}")]
    Corrupt {
        /// The log file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The shim answered `{"ok":false,"error":...}`.
    #[error("{0}")]
    Remote(String),
    /// The peer broke the protocol (no answer, unexpected data).
    #[error("shim protocol: {0}")]
    Protocol(String),
    /// The config is inconsistent.
    #[error("shim config: {0}")]
    Config(String),
}

/// Result with the crate error.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an io::Error with context, for `map_err`.
pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Wraps a serde_json::Error with context, for `map_err`.
pub(crate) fn json_err(context: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
    let context = context.into();
    move |source| Error::Json { context, source }
}
