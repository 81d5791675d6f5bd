//! Berth's own JSON API for dashboards, `/berth/v1/`: flat snake_case views of the cluster,
//! nodes, services, tasks and stacks, their changes as server-sent events, and the three
//! actions of the web dashboard (scale, node availability, rollback). Served by managers on
//! the same listeners as the Engine API; documented in `docs/api/berth-v1.yaml`.

mod actions;
pub mod events;
pub mod model;

use super::{ApiError, ApiResult, Params};
use crate::daemon::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use berth_orchestrator::swarm::manager::Manager;
use model::{ClusterView, NodeView, ServiceView, Snapshot, StackView, TaskView};
use std::collections::BTreeMap;

/// Every route with its methods and handler; [`routes`] serves them and [`paths`] lists them
/// for the OpenAPI check.
type Route = (
    &'static str,
    &'static [&'static str],
    MethodRouter<AppState>,
);

fn table() -> Vec<Route> {
    const GET: &[&str] = &["get"];
    const POST: &[&str] = &["post"];
    vec![
        ("/berth/v1/cluster", GET, get(cluster)),
        ("/berth/v1/nodes", GET, get(node_list)),
        ("/berth/v1/nodes/{id}", GET, get(node_get)),
        (
            "/berth/v1/nodes/{id}/availability",
            POST,
            post(actions::availability),
        ),
        ("/berth/v1/services", GET, get(service_list)),
        ("/berth/v1/services/{id}", GET, get(service_get)),
        ("/berth/v1/services/{id}/scale", POST, post(actions::scale)),
        (
            "/berth/v1/services/{id}/rollback",
            POST,
            post(actions::rollback),
        ),
        ("/berth/v1/tasks", GET, get(task_list)),
        ("/berth/v1/tasks/{id}", GET, get(task_get)),
        ("/berth/v1/stacks", GET, get(stack_list)),
        ("/berth/v1/stacks/{name}", GET, get(stack_get)),
        ("/berth/v1/events", GET, get(events_stream)),
    ]
}

/// The `/berth/v1/` routes.
pub fn routes() -> Router<AppState> {
    table()
        .into_iter()
        .fold(Router::new(), |r, (path, _, handler)| {
            r.route(path, handler)
        })
}

/// The paths served, in axum's `{param}` syntax (which OpenAPI shares), with their methods in
/// OpenAPI's lowercase.
pub fn paths() -> Vec<(&'static str, &'static [&'static str])> {
    table().into_iter().map(|(p, m, _)| (p, m)).collect()
}

/// The manager, or 503 on workers and nodes outside a swarm (where Docker's swarm routes
/// answer 503 too).
async fn manager(s: &AppState) -> ApiResult<Manager> {
    serving_manager(s, "/berth/v1/").await
}

/// The manager, or a 503 whose message says why this node cannot serve `what`.
pub(super) async fn serving_manager(s: &AppState, what: &str) -> ApiResult<Manager> {
    if let Some(m) = s.swarm.manager().await {
        return Ok(m);
    }
    let msg = if s.swarm.node_id().await.is_some() {
        format!("this node is a swarm worker; {what} is served by managers only")
    } else {
        "this node is not in a swarm; run \"docker swarm init\" or \"docker swarm join\" first"
            .to_string()
    };
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg))
}

/// Rejects query parameters other than `allowed`, so a typo is not silently ignored.
fn only(p: &Params, allowed: &[&str]) -> ApiResult<()> {
    match p.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::bad_request(format!(
            "unknown query parameter '{k}' (allowed: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Finds one object by full ID, then by name, then by unique ID prefix.
fn find<'a, T>(
    kind: &str,
    key: &str,
    items: &'a BTreeMap<String, T>,
    name: impl Fn(&T) -> Option<&str>,
) -> ApiResult<&'a T> {
    if let Some(v) = items.get(key) {
        return Ok(v);
    }
    if let Some(v) = items.values().find(|v| name(v) == Some(key)) {
        return Ok(v);
    }
    let mut by_prefix = items
        .range(key.to_string()..)
        .take_while(|(id, _)| id.starts_with(key));
    match (by_prefix.next(), by_prefix.next()) {
        (Some((_, v)), None) if !key.is_empty() => Ok(v),
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "{kind} '{key}' is ambiguous"
        ))),
        _ => Err(ApiError::not_found(format!("{kind} '{key}' not found"))),
    }
}

async fn cluster(State(s): State<AppState>, p: Params) -> ApiResult<Json<ClusterView>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    let snap = Snapshot::take(&m);
    ClusterView::build(&m, &snap)
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the swarm is starting"))
}

async fn node_list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Vec<NodeView>>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    Ok(Json(Snapshot::take(&m).nodes.into_values().collect()))
}

async fn node_get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<NodeView>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    let snap = Snapshot::take(&m);
    find("node", &id, &snap.nodes, |n| Some(n.hostname.as_str()))
        .cloned()
        .map(Json)
}

async fn service_list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Vec<ServiceView>>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    Ok(Json(Snapshot::take(&m).services.into_values().collect()))
}

async fn service_get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<ServiceView>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    let snap = Snapshot::take(&m);
    find("service", &id, &snap.services, |v| Some(v.name.as_str()))
        .cloned()
        .map(Json)
}

/// The task states Docker knows, for validating `?state=`.
const TASK_STATES: &[&str] = &[
    "new",
    "allocated",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
    "complete",
    "shutdown",
    "failed",
    "rejected",
    "remove",
    "orphaned",
];

/// Reads the `service`, `node` and `state` task filters.
fn task_filter(p: &Params) -> ApiResult<events::Filter> {
    let state = p.get("state").filter(|v| !v.is_empty()).map(str::to_string);
    if let Some(st) = &state
        && !TASK_STATES.contains(&st.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "invalid task state '{st}' (one of: {})",
            TASK_STATES.join(", ")
        )));
    }
    Ok(events::Filter {
        service: p
            .get("service")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        node: p.get("node").filter(|v| !v.is_empty()).map(str::to_string),
        state,
        ..Default::default()
    })
}

async fn task_list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Vec<TaskView>>> {
    only(&p, &["service", "node", "state"])?;
    let filter = task_filter(&p)?;
    let m = manager(&s).await?;
    let snap = Snapshot::take(&m);
    let mut tasks: Vec<TaskView> = snap
        .tasks
        .values()
        .filter(|t| filter.task(t, &snap))
        .cloned()
        .collect();
    tasks.sort_by(|a, b| (&a.name, &a.created_at).cmp(&(&b.name, &b.created_at)));
    Ok(Json(tasks))
}

async fn task_get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<TaskView>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    let snap = Snapshot::take(&m);
    find("task", &id, &snap.tasks, |_| None).cloned().map(Json)
}

async fn stack_list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Vec<StackView>>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    Ok(Json(Snapshot::take(&m).stacks().into_values().collect()))
}

async fn stack_get(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<StackView>> {
    only(&p, &[])?;
    let m = manager(&s).await?;
    Snapshot::take(&m)
        .stacks()
        .remove(&name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("stack '{name}' not found")))
}

async fn events_stream(
    State(s): State<AppState>,
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    only(&p, &["type", "service", "node"])?;
    let filter = events::Filter::parse(&p)?;
    let last = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a Raft index"))?,
        ),
    };
    let m = manager(&s).await?;
    Ok(events::sse(m, filter, last).into_response())
}
