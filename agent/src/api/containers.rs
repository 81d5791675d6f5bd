//! `/containers/*` and `/exec/*`: the container lifecycle, logs, attach and exec by HTTP upgrade,
//! stats, archives and exports, over the engine's container service.

use super::stream::{ChannelWriter, body_reader};
use super::{
    ApiError, ApiResult, ApiVersion, Filters, Params, StdStream, channel_body, json_body,
    log_chunk, log_response, log_streams, log_tail, parse_timestamp, stream_content_type,
};
use crate::daemon::{AppState, Daemon};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use berth_engine::container::{
    AttachOptions, Attached, DEFAULT_DETACH_KEYS, LogOptions, LogStreamKind, WaitCondition,
    format_log_time, parse_detach_keys,
};
use bollard_stubs::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerPruneResponse, ContainerSummary,
    ContainerUpdateBody, ContainerUpdateResponse, ExecConfig,
};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt, split};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/wait", post(wait))
        .route(
            "/containers/{id}/archive",
            get(archive_get).head(archive_head).put(archive_put),
        )
        .route("/containers/{id}/exec", post(exec_create))
        .route("/exec/{id}/start", post(exec_start))
        .route("/exec/{id}/resize", post(exec_resize))
        .route("/exec/{id}/json", get(exec_inspect))
}

/// Decodes a JSON request body the way Docker reports bad ones (400 with the parser's words).
async fn create(
    State(d): State<AppState>,
    p: Params,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let cfg: ContainerCreateBody = json_body(&body, "invalid JSON")?;
    let name = p.get("name").filter(|n| !n.is_empty());
    let (id, warnings) = d.containers.create(name, cfg).await?;
    let resp = ContainerCreateResponse { id, warnings };
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

/// The summary's `State` as a plain string (`running`, `exited`, ...).
fn summary_state(s: &ContainerSummary) -> String {
    s.state.map(|x| x.to_string()).unwrap_or_default()
}

async fn list(State(d): State<AppState>, p: Params) -> ApiResult<Json<Vec<ContainerSummary>>> {
    let filters = p.filters()?;
    filters.allow(&[
        "id",
        "name",
        "label",
        "status",
        "exited",
        "ancestor",
        "before",
        "since",
        "health",
        "isolation",
        "network",
        "publish",
        "expose",
        "volume",
        "is-task",
    ])?;
    for s in filters.get("status") {
        if !matches!(
            s.as_str(),
            "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
        ) {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'status={s}'"
            )));
        }
    }
    let limit: i64 = p.get("limit").and_then(|l| l.parse().ok()).unwrap_or(-1);
    let all =
        p.bool("all") || limit > 0 || filters.contains("status") || filters.contains("exited");
    let mut items = d.containers.list()?;
    items.sort_by_key(|c| std::cmp::Reverse(c.created));
    // `before`/`since` name containers; everything created at or after/before them is cut.
    let created_of = |name: &str| -> ApiResult<i64> {
        let id = d.containers.resolve(name)?;
        Ok(items
            .iter()
            .find(|c| c.id.as_deref() == Some(id.as_str()))
            .and_then(|c| c.created)
            .unwrap_or(0))
    };
    let before = filters
        .get("before")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let since = filters
        .get("since")
        .first()
        .map(|n| created_of(n))
        .transpose()?;
    let mut out = Vec::new();
    for c in items.iter() {
        let state = summary_state(c);
        if !all && state != "running" && state != "paused" && state != "restarting" {
            continue;
        }
        if !container_matches(&d, c, &state, &filters, before, since) {
            continue;
        }
        out.push(c.clone());
        if limit > 0 && out.len() as i64 >= limit {
            break;
        }
    }
    Ok(Json(out))
}

/// Whether a container passes every filter, as Docker's list filters do.
fn container_matches(
    d: &Daemon,
    c: &ContainerSummary,
    state: &str,
    f: &Filters,
    before: Option<i64>,
    since: Option<i64>,
) -> bool {
    let id = c.id.as_deref().unwrap_or("");
    let created = c.created.unwrap_or(0);
    let names: Vec<&str> = c
        .names
        .iter()
        .flatten()
        .map(|n| n.trim_start_matches('/'))
        .collect();
    let labels = c.labels.clone().unwrap_or_default();
    let ok_id = f.get("id").is_empty() || f.get("id").iter().any(|p| id.starts_with(p.as_str()));
    let ok_name = f.get("name").is_empty()
        || f.get("name").iter().any(|pat| {
            let pat = pat.trim_start_matches('/');
            names.iter().any(|n| name_matches(n, pat))
        });
    let ok_status = f.get("status").is_empty() || f.get("status").iter().any(|s| s == state);
    let exit_code = exit_code_from_status(c.status.as_deref().unwrap_or(""));
    let ok_exited = f.get("exited").is_empty()
        || (state == "exited"
            && f.get("exited")
                .iter()
                .any(|e| e.parse::<i64>().ok() == exit_code));
    let ok_ancestor = f.get("ancestor").is_empty()
        || f.get("ancestor").iter().any(|a| {
            let image = c.image.as_deref().unwrap_or("");
            let image_id = c.image_id.as_deref().unwrap_or("");
            image == a
                || image_id == a
                || image_id
                    .trim_start_matches("sha256:")
                    .starts_with(a.as_str())
                || d.images
                    .resolve(a)
                    .is_ok_and(|img| img.id.to_string() == image_id)
        });
    let health = c
        .status
        .as_deref()
        .and_then(|s| {
            ["(healthy)", "(unhealthy)", "(health: starting)"]
                .iter()
                .find(|h| s.ends_with(**h))
                .map(|h| match *h {
                    "(healthy)" => "healthy",
                    "(unhealthy)" => "unhealthy",
                    _ => "starting",
                })
        })
        .unwrap_or("none");
    let ok_health = f.get("health").is_empty() || f.get("health").iter().any(|h| h == health);
    let ok_before = before.is_none_or(|b| created < b);
    let ok_since = since.is_none_or(|s| created > s);
    ok_id
        && ok_name
        && ok_status
        && ok_exited
        && ok_ancestor
        && ok_health
        && ok_before
        && ok_since
        && f.match_labels(&labels)
}

/// Docker matches `name` filters as regular expressions; plain substrings cover what clients
/// send (compose uses `^/name$`-free substrings), and `^`/`$` anchors are honoured.
fn name_matches(name: &str, pat: &str) -> bool {
    let (start, pat) = match pat.strip_prefix('^') {
        Some(p) => (true, p.trim_start_matches('/')),
        None => (false, pat),
    };
    let (end, pat) = match pat.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, pat),
    };
    match (start, end) {
        (true, true) => name == pat,
        (true, false) => name.starts_with(pat),
        (false, true) => name.ends_with(pat),
        (false, false) => name.contains(pat),
    }
}

/// The exit code in a status line such as `Exited (3) 2 seconds ago`.
fn exit_code_from_status(s: &str) -> Option<i64> {
    let rest = s.strip_prefix("Exited (")?;
    rest.split(')').next()?.parse().ok()
}

async fn inspect(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = d.containers.inspect(&id)?;
    Ok(Json(c).into_response())
}

async fn top(State(d): State<AppState>, Path(id): Path<String>, p: Params) -> ApiResult<Response> {
    let t = d.containers.top(&id, p.get("ps_args"))?;
    Ok(Json(t).into_response())
}

async fn start(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.containers.start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `t` (or, from 1.42, also `timeout`) parameter in seconds.
fn timeout_param(p: &Params) -> ApiResult<Option<i64>> {
    match p.get("t").or_else(|| p.get("timeout")) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}"))),
    }
}

async fn stop(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let t = timeout_param(&p)?;
    d.containers
        .stop(&id, p.get("signal").filter(|s| !s.is_empty()), t)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let t = timeout_param(&p)?;
    d.containers
        .restart(&id, p.get("signal").filter(|s| !s.is_empty()), t)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let sig = p.get("signal").filter(|s| !s.is_empty()).unwrap_or("KILL");
    d.containers.kill(&id, sig).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.containers.pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.containers.unpause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rename(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let name = p.get("name").unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Neither old nor new names may be empty",
        ));
    }
    d.containers.rename(&id, name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ContainerUpdateResponse>> {
    let u: ContainerUpdateBody = json_body(&body, "invalid JSON")?;
    let warnings = d.containers.update(&id, u).await?;
    Ok(Json(ContainerUpdateResponse {
        warnings: Some(warnings),
    }))
}

async fn remove(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    if p.bool("link") {
        return Err(ApiError::bad_request(
            "links are not supported: Berth has no legacy container links",
        ));
    }
    d.containers
        .remove(&id, p.bool("force"), p.bool("v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(d): State<AppState>, p: Params) -> ApiResult<Json<ContainerPruneResponse>> {
    let filters = p.filters()?;
    filters.allow(&["until", "label", "label!"])?;
    let until = filters.until()?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in d.containers.list()? {
        let state = summary_state(&c);
        if state != "exited" && state != "created" && state != "dead" {
            continue;
        }
        let labels = c.labels.clone().unwrap_or_default();
        if !filters.match_labels(&labels) || !filters.match_not_labels(&labels) {
            continue;
        }
        if let Some(secs) = until
            && c.created.unwrap_or(0) >= secs
        {
            continue;
        }
        let Some(id) = c.id.clone() else { continue };
        reclaimed += c.size_rw.unwrap_or(0).max(0) as u64;
        match d.containers.remove(&id, false, false).await {
            Ok(()) => deleted.push(id),
            Err(e) => tracing::debug!(%id, error = %e, "prune skipped a container"),
        }
    }
    d.events.publish(
        "container",
        "prune",
        "",
        &[("reclaimed", &reclaimed.to_string())],
    );
    Ok(Json(ContainerPruneResponse {
        containers_deleted: Some(deleted),
        space_reclaimed: Some(reclaimed as i64),
    }))
}

async fn wait(State(d): State<AppState>, Path(id): Path<String>, p: Params) -> ApiResult<Response> {
    let condition = match p.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: \"{other}\""
            )));
        }
    };
    // Register before answering: `docker run` starts the container right after this request,
    // so the wait must already be in place or a quick exit would be missed. The first poll
    // subscribes; an unknown container fails right there with its 404.
    let svc = d.containers.clone();
    let waiter = match first_poll(Box::pin(async move { svc.wait(&id, condition).await })).await {
        Polled::Ready(r) => Polled::Ready(r?),
        Polled::Pending(f) => Polled::Pending(f),
    };
    // Headers go out at once (Docker flushes them), the body when the container stops.
    let (tx, body) = channel_body(1);
    tokio::spawn(async move {
        let r = match waiter {
            Polled::Ready(r) => Ok(r),
            Polled::Pending(f) => f.await,
        };
        let mut v = match r {
            Ok(r) => serde_json::to_vec(&r).unwrap_or_default(),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}})
                .to_string()
                .into_bytes(),
        };
        v.push(b'\n');
        let _ = tx.send(Bytes::from(v)).await;
    });
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// A future polled once: done already, or still running.
enum Polled<T, F> {
    Ready(T),
    Pending(F),
}

/// Polls `f` once, so whatever it registers before its first await point is in place.
async fn first_poll<F: Future + Unpin>(mut f: F) -> Polled<F::Output, F> {
    tokio::select! {
        biased;
        r = &mut f => Polled::Ready(r),
        _ = std::future::ready(()) => Polled::Pending(f),
    }
}

/// A point in time given as Unix seconds (`1700000000`, `1700000000.5`) or RFC 3339.
fn to_system_time((secs, nanos): (i64, u32)) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH
    }
}

async fn logs(
    State(d): State<AppState>,
    Path(id): Path<String>,
    v: ApiVersion,
    p: Params,
) -> ApiResult<Response> {
    let (stdout, stderr) = log_streams(&p)?;
    let tail = log_tail(&p);
    let time_param = |k: &str| -> ApiResult<Option<SystemTime>> {
        match p.get(k) {
            None | Some("") | Some("0") => Ok(None),
            Some(s) => parse_timestamp(s)
                .map(|t| Some(to_system_time(t)))
                .ok_or_else(|| ApiError::bad_request(format!("invalid value for \"{k}\": {s}"))),
        }
    };
    let opts = LogOptions {
        follow: p.bool("follow"),
        since: time_param("since")?,
        until: time_param("until")?,
        timestamps: p.bool("timestamps"),
        tail,
        stdout,
        stderr,
    };
    let tty = d
        .containers
        .inspect(&id)?
        .config
        .and_then(|c| c.tty)
        .unwrap_or(false);
    let mut entries = d.containers.logs(&id, opts.clone())?;
    let (tx, body) = channel_body(64);
    let mut shutdown = d.shutdown_signal();
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                e = entries.recv() => e,
                _ = shutdown.wait_for(|s| *s) => None,
            };
            let Some(e) = next else { break };
            let mut line = Vec::with_capacity(e.line.len() + 32);
            if opts.timestamps {
                line.extend_from_slice(format_log_time(e.time).as_bytes());
                line.push(b' ');
            }
            line.extend_from_slice(&e.line);
            let s = match e.stream {
                LogStreamKind::Stderr => StdStream::Stderr,
                _ => StdStream::Stdout,
            };
            let chunk = log_chunk(tty, s, line);
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    Ok(log_response(body, v, tty))
}

async fn resize(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let (h, w) = size_params(&p)?;
    d.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK)
}

/// `h` and `w` of a resize request.
fn size_params(p: &Params) -> ApiResult<(u16, u16)> {
    let get = |k: &str| -> ApiResult<u16> {
        p.get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resize parameter {k}")))
    };
    Ok((get("h")?, get("w")?))
}

/// Whether the client asked to take over the connection (`Upgrade: tcp`).
fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.is_empty())
}

/// Answers `101 UPGRADED` and, once hyper hands the connection over, joins it to the shim's
/// stream: client bytes become stdin, shim bytes (already in Docker's framing) go back.
/// Clients that did not ask for an upgrade get the output as a plain `200` body.
fn hijack(
    mut req: Request<Body>,
    v: ApiVersion,
    attached: impl Future<Output = ApiResult<Attached>> + Send + 'static,
    tty: bool,
    before_close: impl Future<Output = ()> + Send + 'static,
) -> Response {
    let content_type = stream_content_type(v, tty);
    if !wants_upgrade(req.headers()) {
        let (tx, body) = channel_body(64);
        tokio::spawn(async move {
            let Ok(a) = attached.await else { return };
            let (mut r, _w) = a.stream.into_split();
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    break;
                }
            }
        });
        let mut r = body.into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return r;
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let (upgraded, a) = tokio::join!(on_upgrade, attached);
        let upgraded = match upgraded {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let client = TokioIo::new(upgraded);
        let (mut cr, mut cw) = split(client);
        let a = match a {
            Ok(a) => a,
            Err(e) => {
                // The 101 is out; the client learns of the failure from start or wait, as
                // with dockerd, so the stream just ends.
                tracing::debug!(error = %e.message, "attach ended before the start");
                let _ = cw.shutdown().await;
                return;
            }
        };
        let (mut sr, mut sw) = a.stream.into_split();
        let to_shim = async {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            let _ = sw.shutdown().await;
            // Output may go on long after stdin ended.
            std::future::pending::<()>().await;
        };
        let to_client = async {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            // Clients ask for the exit code as soon as the stream ends; it must be there.
            before_close.await;
            let _ = cw.shutdown().await;
        };
        tokio::select! {
            _ = to_client => {}
            _ = to_shim => {}
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    r
}

async fn attach(
    State(d): State<AppState>,
    Path(id): Path<String>,
    v: ApiVersion,
    p: Params,
    req: Request<Body>,
) -> ApiResult<Response> {
    let c = d.containers.inspect(&id)?;
    let tty = c.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
    let opts = AttachOptions {
        stdin: p.bool("stdin"),
        stdout: p.bool("stdout"),
        stderr: p.bool("stderr"),
        stream: p.bool("stream"),
        logs: p.bool("logs"),
        detach_keys: parse_detach_keys(
            p.get("detachKeys")
                .filter(|k| !k.is_empty())
                .unwrap_or(DEFAULT_DETACH_KEYS),
        )
        .map_err(berth_engine::Error::from)?,
    };
    // Registered now, before the 101 goes out: `docker run` starts the container as soon as it
    // has the upgrade, and output from the first instant must reach this client.
    let svc = d.containers.clone();
    let fut = Box::pin(async move { svc.attach(&id, opts).await });
    let fut = match first_poll(fut).await {
        Polled::Ready(r) => {
            let a = r?;
            Box::pin(async move { Ok(a) }) as std::pin::Pin<Box<dyn Future<Output = _> + Send>>
        }
        Polled::Pending(f) => Box::pin(async move { f.await.map_err(ApiError::from) }),
    };
    Ok(hijack(req, v, fut, tty, async {}))
}

async fn exec_create(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let cfg: ExecConfig = json_body(&body, "invalid JSON")?;
    if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let exec_id = d.containers.exec_create(&id, cfg).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": exec_id }))).into_response())
}

/// The body of `POST /exec/{id}/start`.
#[derive(Debug, Default, serde::Deserialize)]
struct ExecStart {
    #[serde(rename = "Detach", default)]
    detach: bool,
    #[serde(rename = "Tty", default)]
    tty: Option<bool>,
    #[serde(rename = "ConsoleSize", default)]
    console_size: Option<Vec<u16>>,
}

async fn exec_start(
    State(d): State<AppState>,
    Path(exec_id): Path<String>,
    v: ApiVersion,
    req: Request<Body>,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
    let start: ExecStart = json_body(&bytes, "invalid JSON")?;
    let info = d.containers.exec_inspect(&exec_id)?;
    let tty = start
        .tty
        .or_else(|| info.process_config.as_ref().and_then(|p| p.tty))
        .unwrap_or(false);
    let attached = d
        .containers
        .exec_start(&exec_id, start.detach, Some(tty))
        .await?;
    if let (Some(size), Some(_)) = (&start.console_size, &attached)
        && let [h, w] = size.as_slice()
        && *h > 0
        && *w > 0
    {
        let _ = d.containers.exec_resize(&exec_id, *h, *w).await;
    }
    let Some(a) = attached else {
        return Ok(StatusCode::OK.into_response());
    };
    let req = Request::from_parts(parts, Body::empty());
    let svc = d.containers.clone();
    let exited = async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            match svc.exec_inspect(&exec_id) {
                Ok(i) if i.running != Some(true) => break,
                Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    };
    Ok(hijack(req, v, async move { Ok(a) }, tty, exited))
}

async fn exec_resize(
    State(d): State<AppState>,
    Path(exec_id): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let (h, w) = size_params(&p)?;
    d.containers.exec_resize(&exec_id, h, w).await?;
    Ok(StatusCode::OK)
}

async fn exec_inspect(
    State(d): State<AppState>,
    Path(exec_id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(d.containers.exec_inspect(&exec_id)?).into_response())
}

async fn stats(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let stream = p.get("stream").is_none_or(super::parse_bool);
    let one_shot = p.bool("one-shot");
    let first = d.containers.stats(&id)?;
    if !stream {
        let v = if one_shot {
            first
        } else {
            // Docker waits for a second sample so CPU percentages can be computed.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut next = d.containers.stats(&id)?;
            with_previous(&mut next, &first);
            next
        };
        return Ok(Json(v).into_response());
    }
    let (tx, body) = channel_body(4);
    let mut shutdown = d.shutdown_signal();
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let mut prev: Option<Value> = None;
        let mut cur = Some(first);
        loop {
            let mut s = match cur.take() {
                Some(s) => s,
                None => match containers.stats(&id) {
                    Ok(s) => s,
                    Err(_) => break,
                },
            };
            if let Some(p) = &prev {
                with_previous(&mut s, p);
            }
            let mut line = s.to_string().into_bytes();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                break;
            }
            prev = Some(s);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
    });
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Fills `precpu_stats` and `preread` of a sample from the one before it.
fn with_previous(s: &mut Value, prev: &Value) {
    if let Some(o) = s.as_object_mut() {
        if let Some(c) = prev.get("cpu_stats") {
            o.insert("precpu_stats".into(), c.clone());
        }
        if let Some(r) = prev.get("read") {
            o.insert("preread".into(), r.clone());
        }
    }
}

/// The `X-Docker-Container-Path-Stat` header: base64 of the path's stat as JSON.
fn path_stat_header(d: &Daemon, id: &str, path: &str) -> ApiResult<HeaderValue> {
    let st = d.containers.archive_stat(id, path)?;
    HeaderValue::from_str(&st.header_value()).map_err(|e| ApiError::internal(e.to_string()))
}

fn path_param(p: &Params) -> ApiResult<String> {
    match p.get("path") {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(ApiError::bad_request("bad parameter: path cannot be empty")),
    }
}

async fn archive_head(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let path = path_param(&p)?;
    let stat = path_stat_header(&d, &id, &path)?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert("X-Docker-Container-Path-Stat", stat);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

async fn archive_get(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let path = path_param(&p)?;
    let stat = path_stat_header(&d, &id, &path)?;
    let (tx, body) = channel_body(16);
    let containers = d.containers.clone();
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx));
        if let Err(e) = containers.archive_get(&id, &path, w) {
            tracing::warn!(error = %e, "archive ended early");
        }
    });
    let mut r = body.into_response();
    r.headers_mut().insert("X-Docker-Container-Path-Stat", stat);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

async fn archive_put(
    State(d): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    body: Body,
) -> ApiResult<StatusCode> {
    let path = path_param(&p)?;
    // 404 for an unknown container before reading a byte of the body.
    let id = d.containers.resolve(&id)?;
    let no_overwrite = p.bool("noOverwriteDirNonDir");
    let copy_uid_gid = p.bool("copyUIDGID");
    let reader = body_reader(body);
    let containers = d.containers.clone();
    tokio::task::spawn_blocking(move || {
        containers.archive_put(&id, &path, reader, no_overwrite, copy_uid_gid)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(StatusCode::OK)
}

async fn export(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = d.containers.resolve(&id)?;
    let (tx, body) = channel_body(16);
    let containers = d.containers.clone();
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx));
        if let Err(e) = containers.export(&id, w) {
            tracing::warn!(error = %e, "export ended early");
        }
    });
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name_matches("web-1", "web"));
        assert!(name_matches("web-1", "^web"));
        assert!(!name_matches("app-web", "^web"));
        assert!(name_matches("web", "^/web$"));
        assert!(!name_matches("web-1", "^web$"));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code_from_status("Exited (3) 2 seconds ago"), Some(3));
        assert_eq!(exit_code_from_status("Up 2 seconds"), None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_timestamp("1700000000"), Some((1700000000, 0)));
        assert_eq!(
            parse_timestamp("1700000000.5"),
            Some((1700000000, 500_000_000))
        );
        assert!(parse_timestamp("2026-11-28T04:25:18Z").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
