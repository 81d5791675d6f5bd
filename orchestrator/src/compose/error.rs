//! What can go wrong while reconciling a project.

use thiserror::Error;

/// A Compose operation's error; messages name the service and the cause, as compose does.
#[derive(Debug, Error)]
pub enum ComposeError {
    /// The engine refused or failed a call.
    #[error("{context}: {source}")]
    Engine {
        /// What was being done (`creating container web-1`).
        context: String,
        /// The client's error.
        #[source]
        source: berth_client::ClientError,
    },
    /// The project asks for something the engine cannot give.
    #[error("{0}")]
    Invalid(String),
    /// A dependency failed its condition.
    #[error("{0}")]
    Dependency(String),
    /// The operation was interrupted (Ctrl-C).
    #[error("canceled")]
    Canceled,
}

/// Results of Compose operations.
pub type Result<T, E = ComposeError> = std::result::Result<T, E>;

/// Adds what was being done to a client error.
pub trait Context<T> {
    /// Wraps the error with `context`.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for berth_client::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| ComposeError::Engine {
            context: context(),
            source,
        })
    }
}
