//! The dashboard's writes on `/berth/v1/`: scale a service, set a node's availability, roll
//! back a service update. Each reads the object's current version and makes the same manager
//! call Docker's `/services/{id}/update` and `/nodes/{id}/update` make, so the Raft store,
//! the validation and the errors are those of the Docker API.

use super::model::{NodeView, ServiceView, Snapshot};
use super::{find, manager};
use crate::api::{ApiError, ApiResult, Params};
use crate::daemon::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use berth_orchestrator::swarm::manager::{Manager, ManagerError};
use berth_orchestrator::swarm::state::Outcome;
use bollard_stubs::models::{NodeSpecAvailabilityEnum, ObjectVersion};
use serde::Deserialize;
use std::future::Future;

/// How many times a write that lost a version race is read and tried again. The orchestrator
/// bumps a service's version while it rolls an update out, so a click during a rollout would
/// otherwise fail with "update out of sequence" although nothing the user saw was stale.
const ATTEMPTS: usize = 3;

/// `POST /berth/v1/services/{id}/scale`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleRequest {
    replicas: u64,
}

/// `POST /berth/v1/nodes/{id}/availability`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilityRequest {
    availability: String,
}

/// `POST /berth/v1/services/{id}/rollback` takes no fields; `{}` is the body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {}

/// The JSON body of an action. JSON is required (not only accepted), so that a page of another
/// origin cannot send one without a CORS preflight, which berthd never grants.
fn json_request<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> ApiResult<T> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::bad_request(format!(
            "{what}: Content-Type must be application/json"
        )));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// What every action starts with: no query parameters, a JSON body, and the manager.
async fn begin<T: serde::de::DeserializeOwned>(
    s: &AppState,
    p: &Params,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> ApiResult<(Manager, T)> {
    super::only(p, &[])?;
    let req = json_request(headers, body, what)?;
    Ok((manager(s).await?, req))
}

/// Runs a read-modify-write `op` again when the store refused it as out of sequence.
async fn with_retry<F, Fut>(mut op: F) -> ApiResult<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ManagerError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(ManagerError::Refused(Outcome::Conflict(m)))
                if attempt < ATTEMPTS && m.contains("out of sequence") =>
            {
                tracing::debug!(attempt, "{m}; reading the object again");
                attempt += 1;
            }
            other => return other.map_err(ApiError::from),
        }
    }
}

/// The Raft index an object was last written at, which an update must name.
fn index(v: Option<&ObjectVersion>) -> u64 {
    v.and_then(|v| v.index).unwrap_or(0)
}

fn service_now(m: &Manager, key: &str) -> ApiResult<Json<ServiceView>> {
    let snap = Snapshot::take(m);
    find("service", key, &snap.services, |v| Some(v.name.as_str()))
        .cloned()
        .map(Json)
}

fn node_now(m: &Manager, key: &str) -> ApiResult<Json<NodeView>> {
    let snap = Snapshot::take(m);
    find("node", key, &snap.nodes, |n| Some(n.hostname.as_str()))
        .cloned()
        .map(Json)
}

/// Sets the replica count of a replicated service (the completions of a replicated job), as
/// `docker service scale` does: its current spec with that count changed, through the
/// service update.
pub(super) async fn scale(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ServiceView>> {
    let (m, req): (_, ScaleRequest) = begin(&s, &p, &headers, &body, "scale").await?;
    with_retry(|| async {
        let record = m.service(&id)?;
        let version = index(record.service.version.as_ref());
        let mut spec = record.service.spec.clone().unwrap_or_default();
        let mode = spec.mode.get_or_insert_with(Default::default);
        let replicas = i64::try_from(req.replicas)
            .map_err(|_| ManagerError::Invalid(format!("invalid replicas {}", req.replicas)))?;
        if let Some(r) = mode.replicated.as_mut() {
            r.replicas = Some(replicas);
        } else if let Some(j) = mode.replicated_job.as_mut() {
            j.total_completions = Some(replicas);
        } else if mode.global.is_some() || mode.global_job.is_some() {
            return Err(ManagerError::Invalid(format!(
                "scale can only be used with replicated or replicated-job mode; service {id} is global"
            )));
        } else {
            mode.replicated = Some(bollard_stubs::models::ServiceSpecModeReplicated {
                replicas: Some(replicas),
            });
        }
        m.update_service(&id, version, Some(spec), false)
            .await
    })
    .await?;
    service_now(&m, &id)
}

/// Rolls a service back to its previous spec, as `docker service rollback` does.
pub(super) async fn rollback(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ServiceView>> {
    let (m, RollbackRequest {}) = begin(&s, &p, &headers, &body, "rollback").await?;
    with_retry(|| async {
        let record = m.service(&id)?;
        let version = index(record.service.version.as_ref());
        m.update_service(&id, version, None, true).await
    })
    .await?;
    service_now(&m, &id)
}

/// Sets a node's availability (`active`, `pause` or `drain`), as `docker node update
/// --availability` does.
pub(super) async fn availability(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<NodeView>> {
    let (m, req): (_, AvailabilityRequest) = begin(&s, &p, &headers, &body, "availability").await?;
    let want = match req.availability.as_str() {
        "active" => NodeSpecAvailabilityEnum::ACTIVE,
        "pause" => NodeSpecAvailabilityEnum::PAUSE,
        "drain" => NodeSpecAvailabilityEnum::DRAIN,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid availability '{other}' (one of: active, pause, drain)"),
            ));
        }
    };
    with_retry(|| async {
        let node = m.node(&id)?;
        let mut spec = node.spec.clone().unwrap_or_default();
        spec.availability = Some(want);
        m.update_node(&id, index(node.version.as_ref()), spec).await
    })
    .await?;
    node_now(&m, &id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn bodies_must_be_json() {
        let r: ScaleRequest = json_request(
            &headers("application/json; charset=utf-8"),
            br#"{"replicas":3}"#,
            "s",
        )
        .unwrap();
        assert_eq!(r.replicas, 3);
        let e = json_request::<ScaleRequest>(&headers("text/plain"), br#"{"replicas":3}"#, "s");
        assert!(e.unwrap_err().message.contains("Content-Type"));
        let e = json_request::<ScaleRequest>(&HeaderMap::new(), b"{}", "s");
        assert_eq!(e.unwrap_err().status, StatusCode::BAD_REQUEST);
        for bad in [
            &br#"{"replicas":-1}"#[..],
            br#"{"replicas":"2"}"#,
            br#"{"n":2}"#,
            b"",
        ] {
            let e = json_request::<ScaleRequest>(&headers("application/json"), bad, "s");
            assert_eq!(e.unwrap_err().status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
        assert!(json_request::<RollbackRequest>(&headers("application/json"), b"{}", "r").is_ok());
    }
}
