//! Docker's JSON progress stream (`jsonmessage`): one JSON object per line with `status`,
//! `id`, `progressDetail`, `progress`, `aux`, or `error`/`errorDetail` at the end.

use super::human_size;
use berth_engine::image::Progress;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Writes JSON messages into a streaming response body.
#[derive(Debug, Clone)]
pub struct JsonStream {
    tx: mpsc::Sender<Bytes>,
    hidden: Option<String>,
}

impl JsonStream {
    /// Wraps the sending side of [`super::channel_body`].
    pub fn new(tx: mpsc::Sender<Bytes>) -> Self {
        Self { tx, hidden: None }
    }

    /// Drops progress about `id` (the image config, which Docker does not show as a layer).
    pub fn hiding(mut self, id: String) -> Self {
        self.hidden = Some(id);
        self
    }

    /// Sends one message; a client that went away is not an error of the operation.
    pub async fn send(&self, v: Value) {
        if let Some(h) = &self.hidden
            && v.get("id").and_then(Value::as_str) == Some(h.as_str())
        {
            return;
        }
        let mut line = v.to_string();
        line.push_str("\r\n");
        let _ = self.tx.send(Bytes::from(line)).await;
    }

    /// `{"status": ...}` with an optional `id`.
    pub async fn status(&self, id: Option<&str>, status: &str) {
        self.send(status_msg(id, status)).await
    }

    /// The error that ends a stream.
    pub async fn error(&self, message: &str) {
        self.send(json!({"errorDetail": {"message": message}, "error": message}))
            .await
    }
}

/// A `{"status": ..., "id": ...}` message.
pub fn status_msg(id: Option<&str>, status: &str) -> Value {
    match id {
        Some(id) => json!({"status": status, "progressDetail": {}, "id": id}),
        None => json!({"status": status}),
    }
}

/// A progress message with Docker's bar (`[===>   ]  1.2MB/2.3MB`).
pub fn progress_msg(id: &str, status: &str, current: u64, total: u64) -> Value {
    json!({
        "status": status,
        "progressDetail": {"current": current, "total": total},
        "progress": bar(current, total),
        "id": id,
    })
}

/// Docker's textual progress bar, 50 columns wide.
pub fn bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let sizes = format!(
        "{}/{}",
        human_size(current as f64),
        human_size(total as f64)
    );
    if total == 0 {
        return sizes;
    }
    let filled = (current.min(total) * WIDTH / total) as usize;
    let mut b = String::with_capacity(WIDTH as usize + 2);
    b.push('[');
    b.push_str(&"=".repeat(filled));
    if (filled as u64) < WIDTH {
        b.push('>');
        b.push_str(&" ".repeat(WIDTH as usize - filled - 1));
    }
    b.push(']');
    format!("{b} {sizes:>18}")
}

/// Short layer ID as Docker prints it: 12 hex digits of the blob digest.
pub fn short_id(d: &berth_engine::image::digest::Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// Translates engine pull progress to Docker's messages.
pub fn pull_message(p: &Progress) -> Option<Value> {
    Some(match p {
        Progress::Resolved { .. } => return None,
        Progress::LayerExists { digest } => status_msg(Some(&short_id(digest)), "Already exists"),
        Progress::LayerStart {
            digest,
            total,
            resumed_from,
        } => progress_msg(&short_id(digest), "Downloading", *resumed_from, *total),
        Progress::LayerProgress {
            digest,
            current,
            total,
        } => progress_msg(&short_id(digest), "Downloading", *current, *total),
        Progress::LayerDone { digest } => status_msg(Some(&short_id(digest)), "Pull complete"),
        Progress::LayerMounted { digest, .. } => {
            status_msg(Some(&short_id(digest)), "Already exists")
        }
        Progress::Done { .. } => return None,
    })
}

/// Translates engine push progress to Docker's messages.
pub fn push_message(p: &Progress) -> Option<Value> {
    Some(match p {
        Progress::Resolved { .. } | Progress::Done { .. } => return None,
        Progress::LayerExists { digest } => {
            status_msg(Some(&short_id(digest)), "Layer already exists")
        }
        Progress::LayerStart {
            digest,
            total,
            resumed_from,
        } => progress_msg(&short_id(digest), "Pushing", *resumed_from, *total),
        Progress::LayerProgress {
            digest,
            current,
            total,
        } => progress_msg(&short_id(digest), "Pushing", *current, *total),
        Progress::LayerDone { digest } => status_msg(Some(&short_id(digest)), "Pushed"),
        Progress::LayerMounted { digest, from } => {
            status_msg(Some(&short_id(digest)), &format!("Mounted from {from}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        let b = bar(1_000_000, 2_000_000);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("1MB/2MB"), "{b}");
    }
}
