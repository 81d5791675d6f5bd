//! The wire format of service and task logs. Nodes keep their containers' logs; a manager
//! asked for them opens a subscription on the leader, the leader names it in the session
//! answers of the nodes that run a matching task, and each such node streams the lines to the
//! leader (`POST` [`PUBLISH_PATH`] with an NDJSON body of [`LogMessage`]s). A follower asked
//! for logs relays them from the leader ([`SUBSCRIBE_PATH`]).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Where a node streams the lines of one subscription: `{PUBLISH_PATH}/{subscription id}`.
pub const PUBLISH_PATH: &str = "/dispatcher/v1/logs";

/// Where a manager that is not the leader opens a subscription on the leader (managers only);
/// the answer is an NDJSON stream of [`LogMessage`]s.
pub const SUBSCRIBE_PATH: &str = "/swarm/v1/logs";

/// Which tasks' logs: those of any listed service or any listed task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSelector {
    /// Service IDs.
    #[serde(default)]
    pub services: Vec<String>,
    /// Task IDs.
    #[serde(default)]
    pub tasks: Vec<String>,
}

impl LogSelector {
    /// Whether a task of `service` with ID `task` is selected.
    pub fn matches(&self, service: Option<&str>, task: Option<&str>) -> bool {
        service.is_some_and(|s| self.services.iter().any(|x| x == s))
            || task.is_some_and(|t| self.tasks.iter().any(|x| x == t))
    }
}

/// How much of the logs, as Docker's `GET /services/{id}/logs` parameters say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Keep streaming new lines (and the lines of tasks that start later).
    #[serde(default)]
    pub follow: bool,
    /// The last N lines of each task; `None` for all.
    #[serde(default)]
    pub tail: Option<u64>,
    /// Only lines at or after this time (Docker's `since`: Unix seconds or RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Include standard output.
    #[serde(default)]
    pub stdout: bool,
    /// Include standard error.
    #[serde(default)]
    pub stderr: bool,
}

/// A subscription as a node sees it in its session answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSubscription {
    /// Unique per subscription; part of the publish URL.
    pub id: String,
    /// Which tasks.
    pub selector: LogSelector,
    /// Which lines.
    pub options: LogOptions,
}

/// Standard output or standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One log line of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMessage {
    /// The node that ran the task.
    pub node_id: String,
    /// The task's service.
    pub service_id: String,
    /// The task.
    pub task_id: String,
    /// Which stream the line was written to.
    pub stream: LogStream,
    /// When the container wrote it (RFC 3339 with nanoseconds, as Docker's timestamps).
    pub time: String,
    /// The line as UTF-8 text, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The line's bytes in base64, when it is not valid UTF-8 (logs are passed on unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

impl LogMessage {
    /// Stores `line` as text when it is UTF-8, else as base64.
    pub fn set_line(&mut self, line: Vec<u8>) {
        match String::from_utf8(line) {
            Ok(s) => {
                self.text = Some(s);
                self.bytes = None;
            }
            Err(e) => {
                self.text = None;
                self.bytes = Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()));
            }
        }
    }

    /// The line's bytes.
    pub fn line(&self) -> Vec<u8> {
        if let Some(t) = &self.text {
            return t.clone().into_bytes();
        }
        self.bytes
            .as_deref()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_survive_the_wire_whether_utf8_or_not() {
        for line in [b"hello\n".to_vec(), vec![0xff, 0xfe, b'\n']] {
            let mut m = LogMessage {
                node_id: "n".into(),
                service_id: "s".into(),
                task_id: "t".into(),
                stream: LogStream::Stdout,
                time: "2026-01-01T00:00:00.000000000Z".into(),
                text: None,
                bytes: None,
            };
            m.set_line(line.clone());
            let wire = serde_json::to_string(&m).unwrap();
            let back: LogMessage = serde_json::from_str(&wire).unwrap();
            assert_eq!(back.line(), line);
        }
    }

    #[test]
    fn selector_matches_services_or_tasks() {
        let s = LogSelector {
            services: vec!["svc".into()],
            tasks: vec!["t1".into()],
        };
        assert!(s.matches(Some("svc"), Some("x")));
        assert!(s.matches(Some("other"), Some("t1")));
        assert!(!s.matches(Some("other"), Some("t2")));
        assert!(!s.matches(None, None));
    }
}
