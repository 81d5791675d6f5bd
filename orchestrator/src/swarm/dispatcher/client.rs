//! The agents' side of one session round trip, shared by berthd's worker and the simulated
//! agents of the scale benchmark.

use super::proto::{HEARTBEAT_PERIOD, SessionRequest, SessionResponse};
use std::time::Duration;

/// How long a round trip may take: the manager holds the request for a heartbeat period; past
/// a few more seconds it is gone, and another manager should be tried.
pub const ROUND_TRIP_TIMEOUT: Duration =
    HEARTBEAT_PERIOD.saturating_add(Duration::from_millis(1500));

/// Why one round trip failed.
#[derive(Debug)]
pub enum Failure {
    /// The manager is not the leader; these are the managers it knows.
    NotLeader(Vec<String>),
    /// Anything else: the next manager is tried after a pause.
    Other(String),
}

/// Sends one session request to `url`.
pub async fn round_trip(
    http: &reqwest::Client,
    url: &str,
    req: &SessionRequest,
) -> Result<SessionResponse, Failure> {
    let resp = http
        .post(url)
        .json(req)
        .timeout(ROUND_TRIP_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::Other(e.to_string()))?;
    let status = resp.status();
    if status == reqwest::StatusCode::MISDIRECTED_REQUEST {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let list = body
            .get("managers")
            .and_then(|m| serde_json::from_value::<Vec<String>>(m.clone()).ok())
            .unwrap_or_default();
        return Err(Failure::NotLeader(list));
    }
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(Failure::Other(format!("{status}: {text}")));
    }
    resp.json::<SessionResponse>()
        .await
        .map_err(|e| Failure::Other(format!("decoding the session answer: {e}")))
}
