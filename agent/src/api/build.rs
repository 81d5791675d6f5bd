//! `POST /build`: the legacy builder API the docker CLI uses with `DOCKER_BUILDKIT=0`. The
//! context tar is streamed from the request body into a scratch directory, the engine builds
//! on a blocking thread, and its output goes out as Docker's JSON messages (`stream`, `aux`,
//! `errorDetail`). A client that goes away cancels the build. Also `POST /commit`: a
//! container's upper directory becomes a layer on its image.

use super::progress::JsonStream;
use super::{ApiError, ApiResult, Params, channel_body};
use crate::daemon::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use berth_engine::image::auth::Credentials;
use berth_engine::image::build::builder::{BuildOptions, BuildOutput};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/build", post(build))
        .route("/commit", post(commit))
}

/// The first usable credentials of `X-Registry-Config` (base64 JSON: registry -> auth).
fn registry_config(headers: &HeaderMap) -> Option<(String, Credentials)> {
    let raw = headers.get("X-Registry-Config")?.to_str().ok()?.trim();
    let bytes = super::images::decode_base64(raw)?;
    let map: HashMap<String, Value> = serde_json::from_slice(&bytes).ok()?;
    map.into_iter().find_map(|(server, a)| {
        let username = a.get("username")?.as_str().filter(|u| !u.is_empty())?;
        let domain = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Some((
            domain,
            Credentials {
                username: username.to_string(),
                password: a
                    .get("password")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
        ))
    })
}

/// A JSON object parameter (`buildargs`, `labels`); `null` values are dropped.
fn json_map(p: &Params, key: &str) -> ApiResult<Vec<(String, String)>> {
    let Some(s) = p.get(key).filter(|s| !s.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let m: serde_json::Map<String, Value> = serde_json::from_str(s)
        .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
    Ok(m.into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect())
}

async fn build(
    State(d): State<AppState>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if p.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote build contexts are not supported by this Berth engine",
        ));
    }
    let dockerfile = p.get("dockerfile").unwrap_or("Dockerfile").to_string();
    if dockerfile.split('/').any(|c| c == "..") {
        return Err(ApiError::bad_request(
            "the Dockerfile must be within the build context",
        ));
    }
    let quiet = p.bool("q");
    let mut opts = BuildOptions {
        tags: p
            .all("t")
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        build_args: json_map(&p, "buildargs")?.into_iter().collect(),
        labels: json_map(&p, "labels")?,
        target: p
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: p.bool("nocache"),
        pull: p.bool("pull"),
        ..Default::default()
    };
    for t in &opts.tags {
        berth_engine::image::reference::Reference::parse(t).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid tag {t:?}: {}",
                berth_engine::Error::from(e)
            ))
        })?;
    }
    let images = d
        .images_with(registry_config(&headers))
        .map_err(ApiError::from)?;
    let ctx = images.build_context_dir().map_err(ApiError::from)?;

    let (tx, out_body) = channel_body(64);
    let js = JsonStream::new(tx.clone());
    let cancel = Arc::new(AtomicBool::new(false));
    // The client hanging up cancels the build, even while a step prints nothing.
    let watch_tx = tx.clone();
    let watch_cancel = cancel.clone();
    let watcher = tokio::spawn(async move {
        watch_tx.closed().await;
        watch_cancel.store(true, Ordering::Relaxed);
    });
    if !quiet {
        let out_tx = tx.clone();
        let c2 = cancel.clone();
        opts.output = BuildOutput::new(move |s| {
            let mut line = json!({ "stream": s }).to_string();
            line.push_str("\r\n");
            if out_tx.blocking_send(Bytes::from(line)).is_err() {
                c2.store(true, Ordering::Relaxed);
            }
        });
    }
    drop(tx);
    opts.cancel = Some(cancel);
    opts.context = ctx.path().to_path_buf();
    opts.dockerfile = Some(ctx.path().join(dockerfile.trim_start_matches('/')));
    let reader = super::stream::body_reader(body);
    let rt = tokio::runtime::Handle::current();
    let events = d.clone();
    tokio::spawn(async move {
        let images2 = images.clone();
        let res = tokio::task::spawn_blocking(move || {
            let ctx = ctx;
            images2.unpack_context(reader, ctx.path())?;
            images2.build(&opts, &rt).map(|r| (r, opts.tags))
        })
        .await;
        watcher.abort();
        match res {
            Ok(Ok((r, tags))) => {
                let id = r.image.id.to_string();
                if quiet {
                    js.send(json!({ "stream": format!("{id}\n") })).await;
                }
                js.send(json!({"aux": {"ID": id}})).await;
                for t in tags {
                    events
                        .events
                        .publish("image", "tag", &id, &[("name", t.as_str())]);
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "build failed");
                js.error(&e.to_string()).await;
            }
            Err(e) => js.error(&format!("build task failed: {e}")).await,
        }
    });
    let mut r = out_body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// The container config fields an image keeps (`docker commit` copies them from the
/// container; `Image`, `Hostname` and the stdio flags stay behind).
const COMMITTED_FIELDS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

async fn commit(State(d): State<AppState>, p: Params) -> ApiResult<Response> {
    let name = p
        .get("container")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("container is required"))?
        .to_string();
    let info = d.containers.inspect(&name).map_err(ApiError::from)?;
    let id = info.id.clone().unwrap_or_default();
    let repo = p.get("repo").unwrap_or("");
    let tag = p.get("tag").unwrap_or("");
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo.to_string()),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    if let Some(r) = &reference {
        berth_engine::image::reference::Reference::parse(r)
            .map_err(|e| ApiError::bad_request(berth_engine::Error::from(e).to_string()))?;
    }
    let base = d
        .images
        .resolve(info.image.as_deref().unwrap_or_default())
        .map_err(ApiError::from)?;
    let upper = info
        .graph_driver
        .as_ref()
        .and_then(|g| g.data.get("UpperDir"))
        .map(std::path::PathBuf::from)
        .ok_or_else(|| ApiError::internal(format!("container {id} has no upper directory")))?;
    let mut config = serde_json::Map::new();
    if let Some(Value::Object(c)) = info.config.as_ref().map(|c| json!(c)) {
        for (k, v) in c {
            if COMMITTED_FIELDS.contains(&k.as_str()) && !v.is_null() {
                config.insert(k, v);
            }
        }
    }
    let created_by = match (&info.path, &info.args) {
        (Some(p), Some(a)) => std::iter::once(p.clone())
            .chain(a.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let opts = berth_engine::image::commit::CommitOptions {
        created_by,
        comment: p
            .get("comment")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        author: p
            .get("author")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        config,
        empty_layer: false,
        reference: None,
    };
    let changes: Vec<String> = p.all("changes").into_iter().map(str::to_string).collect();
    // Docker pauses a running container by default so the layer is consistent.
    let running = info
        .state
        .as_ref()
        .is_some_and(|s| s.running == Some(true) && s.paused != Some(true));
    let pause = running && p.get("pause").is_none_or(super::parse_bool);
    if pause {
        d.containers.pause(&id).await.map_err(ApiError::from)?;
    }
    let images = d.images.clone();
    let rt = tokio::runtime::Handle::current();
    let res = tokio::task::spawn_blocking(move || {
        let img = images.commit(Some(&base), Some(&upper), &opts)?;
        let img = if changes.is_empty() {
            img
        } else {
            images.apply_changes(&img, &changes, None, None, &rt)?
        };
        if let Some(r) = &reference {
            images.tag(&img.id.to_string(), r)?;
        }
        Ok::<_, berth_engine::Error>(img)
    })
    .await;
    if pause && let Err(e) = d.containers.unpause(&id).await {
        tracing::warn!(container = %id, error = %e, "unpause after commit");
    }
    let img = res
        .map_err(|e| ApiError::internal(format!("commit task failed: {e}")))?
        .map_err(ApiError::from)?;
    d.events.publish(
        "container",
        "commit",
        &id,
        &[("comment", p.get("comment").unwrap_or(""))],
    );
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(json!({"Id": img.id.to_string()})),
    )
        .into_response())
}
