//! Progress events of pulls, pushes and loads, for the CLI's bars and the daemon's JSON stream.

use super::digest::Digest;
use std::sync::Arc;

/// One step of a long image operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The reference resolved to a manifest.
    Resolved {
        /// The reference.
        reference: String,
        /// The manifest (or index) digest.
        digest: Digest,
    },
    /// A layer is already present locally (pull) or remotely (push).
    LayerExists {
        /// The layer blob.
        digest: Digest,
    },
    /// A layer transfer started.
    LayerStart {
        /// The layer blob.
        digest: Digest,
        /// Its size.
        total: u64,
        /// Bytes kept from an interrupted transfer.
        resumed_from: u64,
    },
    /// Bytes of a layer transferred so far.
    LayerProgress {
        /// The layer blob.
        digest: Digest,
        /// Bytes done.
        current: u64,
        /// Its size.
        total: u64,
    },
    /// A layer was transferred (and unpacked, on pull).
    LayerDone {
        /// The layer blob.
        digest: Digest,
    },
    /// A layer was mounted from another repository of the same registry (push).
    LayerMounted {
        /// The layer blob.
        digest: Digest,
        /// The repository it came from.
        from: String,
    },
    /// The operation finished.
    Done {
        /// The image ID (pull, load) or manifest digest (push).
        digest: Digest,
    },
}

/// Where progress goes; cheap to clone, called from several tasks at once.
#[derive(Clone)]
pub struct ProgressSink(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl ProgressSink {
    /// Discards everything.
    pub fn none() -> Self {
        Self(None)
    }

    /// Calls `f` for each event.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// Sends each event into a tokio channel.
    pub fn channel(tx: tokio::sync::mpsc::UnboundedSender<Progress>) -> Self {
        Self::new(move |p| {
            let _ = tx.send(p);
        })
    }

    /// Reports one event.
    pub fn emit(&self, p: Progress) {
        if let Some(f) = &self.0 {
            f(p)
        }
    }
}

impl Default for ProgressSink {
    fn default() -> Self {
        Self::none()
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}
