//! The in-process event bus behind `/events`: a broadcast channel plus a short history so
//! `since` can replay recent events.

use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Events kept for `since` replays.
const HISTORY: usize = 256;

/// One event, as Docker describes it.
#[derive(Debug, Clone)]
pub struct Event {
    /// `image`, `container`, `network`, `volume`, `daemon`, ...
    pub typ: String,
    /// `pull`, `tag`, `untag`, `delete`, `push`, `load`, `save`, `import`, `prune`, ...
    pub action: String,
    /// The object's ID or name.
    pub id: String,
    /// Attributes (`name`, labels, ...).
    pub attributes: Map<String, Value>,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    /// The JSON Docker sends, with the legacy `status`/`id`/`from` fields old clients read.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.typ,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        if matches!(self.typ.as_str(), "image" | "container")
            && let Some(o) = v.as_object_mut()
        {
            o.insert("status".into(), Value::String(self.action.clone()));
            o.insert("id".into(), Value::String(self.id.clone()));
            if let Some(from) = self.attributes.get("image") {
                o.insert("from".into(), from.clone());
            }
        }
        v
    }
}

/// Publishes events to every `/events` subscriber.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            recent: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// Publishes an event with the given attributes.
    pub fn publish(&self, typ: &str, action: &str, id: &str, attributes: &[(&str, &str)]) {
        let time_nano = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or_default();
        let ev = Event {
            typ: typ.into(),
            action: action.into(),
            id: id.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
                .collect(),
            time_nano,
        };
        // Send under the lock so a subscriber never gets an event both replayed and received.
        let mut guard = self.recent.lock();
        if let Ok(r) = guard.as_mut() {
            if r.len() == HISTORY {
                r.pop_front();
            }
            r.push_back(ev.clone());
        }
        // No subscribers is not an error.
        let _ = self.tx.send(ev);
        drop(guard);
    }

    /// Recent events (oldest first) and a receiver for the following ones.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let guard = self.recent.lock();
        let rx = self.tx.subscribe();
        let past = guard
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        (past, rx)
    }
}
