//! The `/networks` endpoints: create, list, inspect, remove, connect, disconnect and prune,
//! over the engine's network service.

use super::{ApiError, ApiResult, Filters, Params, json_body, parse_rfc3339};
use crate::daemon::{AppState, Daemon};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bollard_stubs::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, NetworkPruneResponse,
};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Networks every daemon has; they are never removed or pruned.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// The network routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

async fn create(State(d): State<AppState>, body: axum::body::Bytes) -> ApiResult<Response> {
    let req: NetworkCreateRequest = json_body(&body, "invalid JSON")?;
    if req.name.trim().is_empty() {
        return Err(ApiError::bad_request("network name must not be empty"));
    }
    if req.driver.as_deref() == Some("overlay") {
        return create_swarm_network(&d, req).await;
    }
    let name = req.name.clone();
    let r = d.containers.networks().create(req).await?;
    d.events.publish(
        "network",
        "create",
        &r.id,
        &[("name", name.as_str()), ("type", "bridge")],
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": r.id, "Warning": r.warning})),
    )
        .into_response())
}

/// `network create -d overlay`: a swarm network, recorded by the managers; each node that runs
/// a task on it creates its local part.
async fn create_swarm_network(d: &Daemon, req: NetworkCreateRequest) -> ApiResult<Response> {
    let Some(m) = d.swarm.manager().await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        ));
    };
    let network = bollard_stubs::models::Network {
        name: Some(req.name.clone()),
        driver: Some("overlay".into()),
        internal: req.internal,
        attachable: req.attachable,
        ingress: req.ingress,
        enable_ipv4: Some(true),
        enable_ipv6: req.enable_ipv6,
        ipam: req.ipam.clone(),
        options: req.options.clone(),
        labels: req.labels.clone(),
        ..Default::default()
    };
    let id = m.create_network(network).await?;
    d.events.publish(
        "network",
        "create",
        &id,
        &[("name", req.name.as_str()), ("type", "overlay")],
    );
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warning": ""}))).into_response())
}

/// The swarm network `key` names (ID, ID prefix or name), on managers.
async fn swarm_network(d: &Daemon, key: &str) -> Option<bollard_stubs::models::Network> {
    let m = d.swarm.manager().await?;
    let nets = m.networks();
    let exact = nets
        .iter()
        .find(|n| n.id.as_deref() == Some(key) || n.name.as_deref() == Some(key));
    if let Some(n) = exact {
        return Some(n.clone());
    }
    let mut prefixed = nets
        .iter()
        .filter(|n| n.id.as_deref().is_some_and(|id| id.starts_with(key)));
    match (prefixed.next(), prefixed.next()) {
        (Some(n), None) => Some(n.clone()),
        _ => None,
    }
}

/// Label on a node-local bridge that implements a swarm network.
const SWARM_NETWORK_LABEL: &str = "com.docker.swarm.network.id";

async fn list(State(d): State<AppState>, p: Params) -> ApiResult<Json<Vec<Value>>> {
    let f = p.filters()?;
    f.allow(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
    let mut out = Vec::new();
    if let Some(m) = d.swarm.manager().await {
        for n in m.networks() {
            let v = serde_json::to_value(&n).map_err(|e| ApiError::internal(e.to_string()))?;
            if matches(&d, &v, &f)? {
                out.push(v);
            }
        }
    }
    for n in d.containers.networks().list()? {
        // The local part of a swarm network is shown as the swarm network itself.
        if n.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(SWARM_NETWORK_LABEL))
        {
            continue;
        }
        let v = serde_json::to_value(&n).map_err(|e| ApiError::internal(e.to_string()))?;
        if matches(&d, &v, &f)? {
            out.push(v);
        }
    }
    Ok(Json(out))
}

/// Docker's network filters: `name` and `id` match substrings, `driver` and `scope` exactly,
/// `label` as everywhere, `type` is `builtin` or `custom`, `dangling` means no containers.
fn matches(d: &Daemon, v: &Value, f: &Filters) -> ApiResult<bool> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (name, id) = (s("Name"), s("Id"));
    let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
        let vals = f.get(key);
        vals.is_empty() || vals.iter().any(|x| pred(x))
    };
    if !any("name", &|x| name.contains(x))
        || !any("id", &|x| id.starts_with(x) || id.contains(x))
        || !any("driver", &|x| s("Driver") == x)
        || !any("scope", &|x| s("Scope") == x)
    {
        return Ok(false);
    }
    let labels: HashMap<String, String> = v
        .get("Labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    if !f.match_labels(&labels) {
        return Ok(false);
    }
    let builtin = PREDEFINED.contains(&name.as_str());
    for t in f.get("type") {
        match t.as_str() {
            "builtin" if !builtin => return Ok(false),
            "custom" if builtin => return Ok(false),
            "builtin" | "custom" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter: 'type'='{other}'"
                )));
            }
        }
    }
    if let Some(dangling) = f.bool("dangling")? {
        let used = builtin || has_endpoints(d, &id)?;
        if dangling == used {
            return Ok(false);
        }
    }
    Ok(true)
}

fn has_endpoints(d: &Daemon, id: &str) -> ApiResult<bool> {
    let Ok(n) = d.containers.networks().inspect(id) else {
        // A swarm network has no local endpoints to count here.
        return Ok(false);
    };
    Ok(n.containers.as_ref().is_some_and(|c| !c.is_empty()))
}

async fn inspect(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    if let Some(n) = swarm_network(&d, &id).await {
        return Ok(Json(n).into_response());
    }
    Ok(Json(d.containers.networks().inspect(&id)?).into_response())
}

async fn remove(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if let (Some(n), Some(m)) = (swarm_network(&d, &id).await, d.swarm.manager().await) {
        let full = n.id.clone().unwrap_or_default();
        m.remove_network(&full).await?;
        let name = n.name.clone().unwrap_or_default();
        d.events.publish(
            "network",
            "destroy",
            &full,
            &[("name", name.as_str()), ("type", "overlay")],
        );
        return Ok(StatusCode::NO_CONTENT);
    }
    let n = d.containers.networks().inspect(&id)?;
    let full = n.id.clone().unwrap_or_default();
    let name = n.name.clone().unwrap_or_default();
    d.containers.networks().remove(&full).await?;
    d.events.publish(
        "network",
        "destroy",
        &full,
        &[("name", name.as_str()), ("type", "bridge")],
    );
    Ok(StatusCode::NO_CONTENT)
}

async fn connect(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let req: NetworkConnectRequest = json_body(&body, "invalid JSON")?;
    if req.container.is_empty() {
        return Err(ApiError::bad_request("no container specified"));
    }
    let net = d.containers.networks().inspect(&id)?;
    let (nid, name) = (net.id.unwrap_or_default(), net.name.unwrap_or_default());
    let container = d.containers.resolve(&req.container)?;
    d.containers
        .network_connect(&container, &nid, req.endpoint_config.unwrap_or_default())
        .await?;
    d.events.publish(
        "network",
        "connect",
        &nid,
        &[
            ("container", container.as_str()),
            ("name", name.as_str()),
            ("type", "bridge"),
        ],
    );
    Ok(StatusCode::OK)
}

async fn disconnect(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let req: NetworkDisconnectRequest = json_body(&body, "invalid JSON")?;
    if req.container.is_empty() {
        return Err(ApiError::bad_request("no container specified"));
    }
    let net = d.containers.networks().inspect(&id)?;
    let (nid, name) = (net.id.unwrap_or_default(), net.name.unwrap_or_default());
    let force = req.force.unwrap_or(false);
    // A forced disconnect of a container that is already gone only cleans the network.
    let container = match d.containers.resolve(&req.container) {
        Ok(c) => c,
        Err(e) if !force => return Err(e.into()),
        Err(_) => req.container.clone(),
    };
    d.containers
        .network_disconnect(&container, &nid, force)
        .await?;
    d.events.publish(
        "network",
        "disconnect",
        &nid,
        &[
            ("container", container.as_str()),
            ("name", name.as_str()),
            ("type", "bridge"),
        ],
    );
    Ok(StatusCode::OK)
}

/// Removes user-defined networks without endpoints, as `filters` (`until`, `label`,
/// `label!`) allow.
async fn prune(State(d): State<AppState>, p: Params) -> ApiResult<Json<NetworkPruneResponse>> {
    let f = p.filters()?;
    f.allow(&["until", "label", "label!"])?;
    let until = f.until()?;
    let mut deleted = Vec::new();
    for n in d.containers.networks().list()? {
        let v = serde_json::to_value(&n).map_err(|e| ApiError::internal(e.to_string()))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (id, name) = (s("Id"), s("Name"));
        if PREDEFINED.contains(&name.as_str()) {
            continue;
        }
        let labels: HashMap<String, String> = v
            .get("Labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        if !f.match_labels(&labels) || !f.match_not_labels(&labels) {
            continue;
        }
        if let Some(until) = until {
            let created = parse_rfc3339(&s("Created")).map(|c| c.0).unwrap_or(0);
            if created >= until {
                continue;
            }
        }
        if has_endpoints(&d, &id)? {
            continue;
        }
        match d.containers.networks().remove(&id).await {
            Ok(()) => {
                d.events.publish(
                    "network",
                    "destroy",
                    &id,
                    &[("name", name.as_str()), ("type", "bridge")],
                );
                deleted.push(name);
            }
            // A container joined it meanwhile: leave it, as Docker does.
            Err(e) => tracing::debug!(network = %name, error = %e, "not pruned"),
        }
    }
    d.events.publish("network", "prune", "", &[]);
    Ok(Json(NetworkPruneResponse {
        networks_deleted: Some(deleted),
    }))
}
