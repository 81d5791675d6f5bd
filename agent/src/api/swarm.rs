//! Docker's swarm API: `/swarm`, `/nodes`, `/services`, `/tasks`, served by managers; workers
//! and nodes outside a swarm answer 503 with Docker's messages.

use super::{
    ApiError, ApiResult, ApiVersion, Filters, Params, StdStream, channel_body, json_body,
    log_chunk, log_response, log_streams, log_tail, parse_timestamp,
};
use crate::daemon::AppState;
use crate::swarm::SwarmError;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use berth_orchestrator::swarm::dispatcher::logs::{LogOptions, LogSelector, LogStream};
use berth_orchestrator::swarm::manager::{Manager, ManagerError};
use bollard_stubs::models::{
    Node, NodeSpec, NodeSpecAvailabilityEnum, ServiceSpec, SwarmInitRequest, SwarmJoinRequest,
    SwarmSpec, Task,
};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The swarm routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/swarm", get(inspect))
        .route("/swarm/init", post(init))
        .route("/swarm/join", post(join))
        .route("/swarm/leave", post(leave))
        .route("/swarm/update", post(update))
        .route("/swarm/unlockkey", get(unlock_key))
        .route("/nodes", get(node_list))
        .route("/nodes/{id}", get(node_inspect).delete(node_remove))
        .route("/nodes/{id}/update", post(node_update))
        .route("/services", get(service_list))
        .route("/services/create", post(service_create))
        .route(
            "/services/{id}",
            get(service_inspect).delete(service_remove),
        )
        .route("/services/{id}/update", post(service_update))
        .route("/services/{id}/logs", get(service_logs))
        .route("/tasks", get(task_list))
        .route("/tasks/{id}", get(task_inspect))
        .route("/tasks/{id}/logs", get(task_logs))
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

impl From<SwarmError> for ApiError {
    fn from(e: SwarmError) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
const WORKER: &str = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";

/// The manager, or Docker's 503 for workers and nodes outside a swarm.
pub(super) async fn manager(s: &AppState) -> ApiResult<Manager> {
    if let Some(m) = s.swarm.manager().await {
        return Ok(m);
    }
    let msg = if s.swarm.node_id().await.is_some() {
        WORKER
    } else {
        NOT_MANAGER
    };
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg))
}

pub(super) fn version_param(p: &Params) -> ApiResult<u64> {
    let v = p.get("version").unwrap_or_default();
    v.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid version '{v}'")))
}

async fn inspect(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let m = manager(&s).await?;
    let swarm = m.swarm_inspect()?;
    Ok(Json(serde_json::to_value(swarm).unwrap_or_default()))
}

/// `Availability` of init and join requests, which the generated request types lack.
fn availability(body: &[u8]) -> Option<NodeSpecAvailabilityEnum> {
    let v: Value = serde_json::from_slice(body).ok()?;
    serde_json::from_value(v.get("Availability")?.clone())
        .ok()
        .filter(|a| *a != NodeSpecAvailabilityEnum::EMPTY)
}

async fn init(State(s): State<AppState>, body: Bytes) -> ApiResult<Json<String>> {
    let req: SwarmInitRequest = json_body(&body, "swarm init")?;
    if req.force_new_cluster == Some(true) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "--force-new-cluster is not supported",
        ));
    }
    let id = s
        .swarm
        .init(
            req.listen_addr.as_deref(),
            req.advertise_addr.as_deref(),
            availability(&body),
            req.spec.unwrap_or_default(),
        )
        .await?;
    Ok(Json(id))
}

async fn join(State(s): State<AppState>, body: Bytes) -> ApiResult<StatusCode> {
    let req: SwarmJoinRequest = json_body(&body, "swarm join")?;
    s.swarm
        .join(
            &req.remote_addrs.unwrap_or_default(),
            req.join_token.as_deref().unwrap_or_default(),
            req.listen_addr.as_deref(),
            req.advertise_addr.as_deref(),
            availability(&body),
        )
        .await?;
    Ok(StatusCode::OK)
}

async fn leave(State(s): State<AppState>, p: Params) -> ApiResult<StatusCode> {
    s.swarm.leave(p.bool("force")).await?;
    Ok(StatusCode::OK)
}

async fn update(State(s): State<AppState>, p: Params, body: Bytes) -> ApiResult<StatusCode> {
    let m = manager(&s).await?;
    let spec: SwarmSpec = json_body(&body, "swarm spec")?;
    m.update_swarm(
        version_param(&p)?,
        spec,
        p.bool("rotateWorkerToken"),
        p.bool("rotateManagerToken"),
    )
    .await?;
    Ok(StatusCode::OK)
}

async fn unlock_key(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    manager(&s).await?;
    Ok(Json(json!({ "UnlockKey": "" })))
}

pub(super) fn label_match(
    f: &Filters,
    key: &str,
    labels: Option<&HashMap<String, String>>,
) -> bool {
    let empty = HashMap::new();
    let labels = labels.unwrap_or(&empty);
    f.get(key).iter().all(|want| match want.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(want.as_str()),
    })
}

pub(super) fn any_prefix(values: &[String], id: &str) -> bool {
    values.is_empty() || values.iter().any(|v| id.starts_with(v.as_str()))
}

fn any_eq(values: &[String], s: &str) -> bool {
    values.is_empty() || values.iter().any(|v| v == s)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn enum_str<T: serde::Serialize>(v: &Option<T>) -> String {
    v.as_ref()
        .and_then(|x| serde_json::to_value(x).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn node_list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Vec<Node>>> {
    let m = manager(&s).await?;
    let f = p.filters()?;
    f.allow(&["id", "label", "membership", "name", "node.label", "role"])?;
    let nodes = m
        .nodes()
        .into_iter()
        .filter(|n| {
            let spec = n.spec.as_ref();
            let id = n.id.as_deref().unwrap_or_default();
            let hostname = n
                .description
                .as_ref()
                .and_then(|d| d.hostname.as_deref())
                .unwrap_or_default();
            any_prefix(f.get("id"), id)
                && (f.get("name").is_empty()
                    || f.get("name")
                        .iter()
                        .any(|v| hostname.starts_with(v.as_str())))
                && any_eq(f.get("role"), &enum_str(&spec.and_then(|s| s.role)))
                && any_eq(f.get("membership"), "accepted")
                && label_match(&f, "node.label", spec.and_then(|s| s.labels.as_ref()))
                && label_match(
                    &f,
                    "label",
                    n.description
                        .as_ref()
                        .and_then(|d| d.engine.as_ref())
                        .and_then(|e| e.labels.as_ref()),
                )
        })
        .collect();
    Ok(Json(nodes))
}

async fn node_inspect(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Node>> {
    let m = manager(&s).await?;
    Ok(Json(m.node(&id)?))
}

async fn node_remove(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let m = manager(&s).await?;
    m.remove_node(&id, p.bool("force")).await?;
    Ok(StatusCode::OK)
}

async fn node_update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let m = manager(&s).await?;
    let spec: NodeSpec = json_body(&body, "node spec")?;
    m.update_node(&id, version_param(&p)?, spec).await?;
    Ok(StatusCode::OK)
}

fn service_json(
    m: &Manager,
    r: &berth_orchestrator::swarm::state::ServiceRecord,
    status: bool,
) -> Value {
    let mut v = to_value(&r.service);
    if let Some(prev) = &r.previous_spec {
        v["PreviousSpec"] = to_value(prev);
    }
    if status {
        let id = r.service.id.as_deref().unwrap_or_default();
        v["ServiceStatus"] = to_value(&m.service_status(id));
    }
    v
}

async fn service_list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Vec<Value>>> {
    let m = manager(&s).await?;
    let f = p.filters()?;
    f.allow(&["id", "label", "mode", "name"])?;
    let status = p.bool("status");
    let out = m
        .services()
        .iter()
        .filter(|r| {
            let spec = r.service.spec.as_ref();
            let id = r.service.id.as_deref().unwrap_or_default();
            let name = spec.and_then(|s| s.name.as_deref()).unwrap_or_default();
            let mode = if spec
                .and_then(|s| s.mode.as_ref())
                .is_some_and(|m| m.global.is_some())
            {
                "global"
            } else {
                "replicated"
            };
            any_prefix(f.get("id"), id)
                && (f.get("name").is_empty()
                    || f.get("name").iter().any(|v| name.starts_with(v.as_str())))
                && any_eq(f.get("mode"), mode)
                && label_match(&f, "label", spec.and_then(|s| s.labels.as_ref()))
        })
        .map(|r| service_json(&m, r, status))
        .collect();
    Ok(Json(out))
}

async fn service_create(
    State(s): State<AppState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let m = manager(&s).await?;
    let spec: ServiceSpec = json_body(&body, "service spec")?;
    let id = m.create_service(spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ID": id, "Warnings": null })),
    ))
}

async fn service_inspect(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let m = manager(&s).await?;
    let r = m.service(&id)?;
    Ok(Json(service_json(&m, &r, false)))
}

async fn service_remove(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let m = manager(&s).await?;
    m.remove_service(&id).await?;
    Ok(StatusCode::OK)
}

async fn service_update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let m = manager(&s).await?;
    let rollback = p.get("rollback") == Some("previous");
    let spec: Option<ServiceSpec> = if rollback {
        None
    } else {
        Some(json_body(&body, "service spec")?)
    };
    m.update_service(&id, version_param(&p)?, spec, rollback)
        .await?;
    Ok(Json(json!({ "Warnings": null })))
}

/// `GET /services/{id}/logs`: the lines of every task of the service, collected from the
/// nodes that run them (through the leader).
async fn service_logs(
    State(s): State<AppState>,
    Path(id): Path<String>,
    v: ApiVersion,
    p: Params,
) -> ApiResult<Response> {
    let m = manager(&s).await?;
    let svc = m.service(&id)?;
    let service_id = svc.service.id.clone().unwrap_or_default();
    let tty = svc
        .service
        .spec
        .as_ref()
        .and_then(|sp| sp.task_template.as_ref()?.container_spec.as_ref()?.tty)
        .unwrap_or(false);
    let selector = LogSelector {
        services: vec![service_id],
        tasks: Vec::new(),
    };
    stream_logs(&m, selector, tty, v, &p).await
}

/// `GET /tasks/{id}/logs`: the lines of one task.
async fn task_logs(
    State(s): State<AppState>,
    Path(id): Path<String>,
    v: ApiVersion,
    p: Params,
) -> ApiResult<Response> {
    let m = manager(&s).await?;
    let task = m.task(&id)?;
    let tty = task
        .spec
        .as_ref()
        .and_then(|sp| sp.container_spec.as_ref()?.tty)
        .unwrap_or(false);
    let selector = LogSelector {
        services: Vec::new(),
        tasks: vec![task.id.unwrap_or_default()],
    };
    stream_logs(&m, selector, tty, v, &p).await
}

/// Subscribes and writes the lines as Docker does: `details` puts the task's node, service and
/// task IDs before each line (the docker CLI asks for it to print `name@node |` prefixes),
/// `timestamps` the time before that, framed per stream unless the task has a TTY.
async fn stream_logs(
    m: &Manager,
    selector: LogSelector,
    tty: bool,
    v: ApiVersion,
    p: &Params,
) -> ApiResult<Response> {
    let (stdout, stderr) = log_streams(p)?;
    let tail = log_tail(p).map(|n| n as u64);
    let since = match p.get("since") {
        None | Some("") | Some("0") => None,
        Some(t) => {
            if parse_timestamp(t).is_none() {
                return Err(ApiError::bad_request(format!(
                    "invalid value for \"since\": {t}"
                )));
            }
            Some(t.to_string())
        }
    };
    let options = LogOptions {
        follow: p.bool("follow"),
        tail,
        since,
        stdout,
        stderr,
    };
    let (details, timestamps) = (p.bool("details"), p.bool("timestamps"));
    let mut rx = m.subscribe_logs(selector, options).await?;
    let (tx, body) = channel_body(64);
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let mut line = Vec::with_capacity(msg.time.len() + 160);
            if timestamps && !msg.time.is_empty() {
                line.extend_from_slice(msg.time.as_bytes());
                line.push(b' ');
            }
            if details {
                line.extend_from_slice(
                    format!(
                        "com.docker.swarm.node.id={},com.docker.swarm.service.id={},com.docker.swarm.task.id={} ",
                        msg.node_id, msg.service_id, msg.task_id
                    )
                    .as_bytes(),
                );
            }
            line.extend_from_slice(&msg.line());
            let kind = match msg.stream {
                LogStream::Stderr => StdStream::Stderr,
                LogStream::Stdout => StdStream::Stdout,
            };
            let chunk = log_chunk(tty, kind, line);
            if tx.send(chunk).await.is_err() {
                // The client left; dropping `rx` ends the subscription on every node.
                break;
            }
        }
    });
    Ok(log_response(body, v, tty))
}

/// `GET /secrets`, `GET /configs`: the store keeps none yet, so the list is empty (which lets
/// `docker stack rm` and dashboards work); creating one is refused plainly.
async fn task_list(State(s): State<AppState>, p: Params) -> ApiResult<Json<Vec<Task>>> {
    let m = manager(&s).await?;
    let f = p.filters()?;
    f.allow(&[
        "_up-to-date",
        "desired-state",
        "id",
        "label",
        "name",
        "node",
        "service",
    ])?;
    // `_up-to-date` (the CLI's convergence monitor) keeps tasks running the current spec.
    let up_to_date = !f.get("_up-to-date").is_empty();
    let records = m.services();
    let current: HashMap<String, Option<bollard_stubs::models::TaskSpec>> = records
        .iter()
        .map(|r| {
            let spec = r
                .service
                .spec
                .as_ref()
                .and_then(|s| s.task_template.clone());
            (r.service.id.clone().unwrap_or_default(), spec)
        })
        .collect();
    // A task's `label` filter matches its service's labels, as swarmkit keeps them on the task
    // (`docker stack ps` filters on the stack namespace this way).
    let service_labels: HashMap<String, Option<HashMap<String, String>>> = records
        .iter()
        .map(|r| {
            let labels = r.service.spec.as_ref().and_then(|s| s.labels.clone());
            (r.service.id.clone().unwrap_or_default(), labels)
        })
        .collect();
    // `service` and `node` filters take names or IDs (prefixes), as docker resolves them.
    let services: Vec<String> = f
        .get("service")
        .iter()
        .filter_map(|k| m.service(k).ok()?.service.id)
        .collect();
    if !f.get("service").is_empty() && services.is_empty() {
        return Ok(Json(vec![]));
    }
    let nodes: Vec<String> = f
        .get("node")
        .iter()
        .filter_map(|k| m.node(k).ok()?.id)
        .collect();
    let tasks = m
        .tasks()
        .into_iter()
        .filter(|t| {
            let id = t.id.as_deref().unwrap_or_default();
            let name = t.name.as_deref().unwrap_or_default();
            any_prefix(f.get("id"), id)
                && (f.get("name").is_empty()
                    || f.get("name").iter().any(|v| name.starts_with(v.as_str())))
                && (f.get("service").is_empty()
                    || services.iter().any(|s| t.service_id.as_deref() == Some(s)))
                && (f.get("node").is_empty()
                    || nodes.iter().any(|n| t.node_id.as_deref() == Some(n)))
                && any_eq(f.get("desired-state"), &enum_str(&t.desired_state))
                && (label_match(&f, "label", t.labels.as_ref())
                    || label_match(
                        &f,
                        "label",
                        t.service_id
                            .as_ref()
                            .and_then(|id| service_labels.get(id)?.as_ref()),
                    ))
                && (!up_to_date
                    || t.service_id
                        .as_ref()
                        .and_then(|id| current.get(id))
                        .is_none_or(|spec| *spec == t.spec))
        })
        .collect();
    Ok(Json(tasks))
}

async fn task_inspect(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Task>> {
    let m = manager(&s).await?;
    Ok(Json(m.task(&id)?))
}
