//! Client errors: transport failures, and daemon errors with their status and message.

/// Any error of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The host string could not be understood.
    #[error("invalid host {0:?}: expected unix:///path or tcp://HOST:PORT")]
    BadHost(String),
    /// Connecting to the daemon failed.
    #[error("Cannot connect to the Berth daemon at {host}. Is the daemon running? ({source})")]
    Connect {
        /// The daemon address.
        host: String,
        /// The cause.
        source: std::io::Error,
    },
    /// TLS settings or the handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// The daemon answered with an error status.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// The HTTP status.
        status: u16,
        /// Docker's `message`.
        message: String,
    },
    /// A response could not be decoded.
    #[error("decoding the daemon's response: {0}")]
    Decode(String),
    /// A progress stream ended with an error message.
    #[error("{0}")]
    Stream(String),
    /// A local file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ClientError {
    /// The HTTP status of a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the daemon said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
