//! `/images/*` and `/auth`, backed by the engine's image service.

use super::progress::{JsonStream, pull_message, push_message, short_id};
use super::stream::{ChannelWriter, body_reader};
use super::{ApiError, ApiResult, Params, channel_body, parse_rfc3339};
use crate::daemon::{AppState, Daemon};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use berth_engine::image::auth::Credentials;
use berth_engine::image::reference::Reference;
use berth_engine::image::registry::RegistryClient;
use berth_engine::image::{ImageService, Platform, Progress, ProgressSink};
use berth_engine::state::ImageRecord;
use bollard_stubs::models::{
    AuthConfig, AuthResponse, ImageDeleteResponseItem, ImageHistoryResponseItem,
    ImagePruneResponse, ImageSummary,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(create))
        .route("/images/get", get(save_many))
        .route("/images/load", post(load))
        .route("/images/prune", post(prune))
        .route("/images/search", get(search))
        .route("/auth", post(auth))
        .route(
            "/images/{*rest}",
            get(by_name_get).post(by_name_post).delete(remove),
        )
}

fn engine_err(e: impl Into<berth_engine::Error>) -> ApiError {
    ApiError::from(e.into())
}

/// Docker's short form of a stored (normalized) reference.
fn familiar(full: &str) -> String {
    Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// The image's config blob as JSON (`Null` if unreadable).
fn config_of(d: &Daemon, img: &ImageRecord) -> Value {
    d.images
        .store()
        .read(&img.id)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn labels_of(cfg: &Value) -> HashMap<String, String> {
    cfg.pointer("/config/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn created_secs(img: &ImageRecord) -> i64 {
    img.created
        .as_deref()
        .and_then(parse_rfc3339)
        .map_or(0, |(s, _)| s)
}

/// Every image with its familiar tags, newest first.
pub(crate) fn list_summaries(d: &Daemon) -> ApiResult<Vec<(ImageRecord, Vec<String>)>> {
    let images = d.images.state().images().map_err(engine_err)?;
    let tags = d.images.state().tags().map_err(engine_err)?;
    let mut out: Vec<(ImageRecord, Vec<String>)> = images
        .into_iter()
        .map(|img| {
            let mut t: Vec<String> = tags
                .iter()
                .filter(|(_, id)| *id == img.id)
                .map(|(r, _)| familiar(r))
                .collect();
            t.sort();
            (img, t)
        })
        .collect();
    out.sort_by_key(|(img, _)| std::cmp::Reverse(created_secs(img)));
    Ok(out)
}

/// The `/images/json` entry of an image.
pub(crate) fn image_summary(d: &Daemon, img: &ImageRecord, tags: &[String]) -> ImageSummary {
    let cfg = config_of(d, img);
    ImageSummary {
        id: img.id.to_string(),
        parent_id: String::new(),
        repo_tags: tags.to_vec(),
        repo_digests: img.repo_digests.iter().map(|r| familiar(r)).collect(),
        created: created_secs(img),
        size: img.size as i64,
        shared_size: -1,
        labels: labels_of(&cfg),
        containers: -1,
        manifests: None,
        descriptor: None,
    }
}

/// Docker's `reference` filter: a glob on the familiar name, with or without the tag.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let name = tag
        .rsplit_once(':')
        .map_or(tag, |(n, t)| if t.contains('/') { tag } else { n });
    glob(pattern, tag) || glob(pattern, name)
}

/// `*` and `?` globbing as Go's `path.Match` does within one path segment.
fn glob(p: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (p.chars().collect(), s.chars().collect());
    fn m(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| m(&p[1..], &s[i..])),
            Some('?') => !s.is_empty() && s[0] != '/' && m(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && m(&p[1..], &s[1..]),
        }
    }
    m(&p, &s)
}

async fn list(State(d): State<AppState>, p: Params) -> ApiResult<Json<Vec<ImageSummary>>> {
    let f = p.filters()?;
    f.allow(&["dangling", "label", "reference", "before", "since", "until"])?;
    let dangling = f.bool("dangling")?;
    let all = list_summaries(&d)?;
    let created_of = |name: &str| -> ApiResult<i64> {
        let img = d.images.resolve(name).map_err(engine_err)?;
        Ok(created_secs(&img))
    };
    let before = f.get("before").first().map(|n| created_of(n)).transpose()?;
    let since = f.get("since").first().map(|n| created_of(n)).transpose()?;
    let mut out = Vec::new();
    for (img, tags) in &all {
        if let Some(dg) = dangling
            && dg != tags.is_empty()
        {
            continue;
        }
        let refs = f.get("reference");
        let tags: Vec<String> = if refs.is_empty() {
            tags.clone()
        } else {
            tags.iter()
                .filter(|t| refs.iter().any(|r| reference_matches(r, t)))
                .cloned()
                .collect()
        };
        if !refs.is_empty() && tags.is_empty() {
            continue;
        }
        let c = created_secs(img);
        if before.is_some_and(|b| c >= b) || since.is_some_and(|s| c <= s) {
            continue;
        }
        let mut s = image_summary(&d, img, &tags);
        if !refs.is_empty() {
            s.repo_digests.retain(|rd| {
                let name = rd.split_once('@').map_or(rd.as_str(), |(n, _)| n);
                refs.iter().any(|r| reference_matches(r, name))
            });
        }
        if !f.match_labels(&s.labels) {
            continue;
        }
        out.push(s);
    }
    Ok(Json(out))
}

/// Base64 as clients send it in headers: URL-safe or standard, padded or not.
pub(crate) fn decode_base64(raw: &str) -> Option<Vec<u8>> {
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(raw).ok())
}

/// The credentials of `X-Registry-Auth` (base64url JSON), for `domain`.
fn registry_auth(headers: &HeaderMap, domain: &str) -> Option<(String, Credentials)> {
    let raw = headers.get("X-Registry-Auth")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let bytes = decode_base64(raw)?;
    let a: AuthConfig = serde_json::from_slice(&bytes).ok()?;
    let username = a.username.filter(|u| !u.is_empty())?;
    Some((
        domain.to_string(),
        Credentials {
            username,
            password: a.password.unwrap_or_default(),
        },
    ))
}

fn json_stream_response(body: Body) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Runs an engine operation while forwarding its progress as JSON messages.
async fn with_progress<T>(
    js: &JsonStream,
    translate: fn(&Progress) -> Option<Value>,
    op: impl FnOnce(ProgressSink) -> std::pin::Pin<Box<dyn Future<Output = T> + Send>>,
    resolved: &mut Option<String>,
) -> T {
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
    let fut = op(ProgressSink::channel(ptx));
    tokio::pin!(fut);
    let forward = |p: Progress, resolved: &mut Option<String>| {
        if let Progress::Resolved { digest, .. } = &p {
            *resolved = Some(digest.to_string());
        }
        translate(&p)
    };
    let out = loop {
        tokio::select! {
            Some(p) = prx.recv() => {
                if let Some(m) = forward(p, resolved) {
                    js.send(m).await;
                }
            }
            out = &mut fut => break out,
        }
    };
    while let Ok(p) = prx.try_recv() {
        if let Some(m) = forward(p, resolved) {
            js.send(m).await;
        }
    }
    out
}

async fn create(
    State(d): State<AppState>,
    p: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if let Some(src) = p.get("fromSrc") {
        return import(d, src, &p, body).await;
    }
    let from = p
        .get("fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("fromImage or fromSrc is required"))?;
    let tag = p.get("tag").unwrap_or("");
    let refstr = if tag.is_empty() {
        from.to_string()
    } else if tag.contains(':') {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let r = Reference::parse(&refstr).map_err(engine_err)?;
    let platform = match p.get("platform").filter(|s| !s.is_empty()) {
        Some(s) => Some(
            Platform::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("invalid platform {s:?}")))?,
        ),
        None => None,
    };
    let images = d
        .images_with(registry_auth(&headers, r.domain()))
        .map_err(engine_err)?;
    let (tx, body) = channel_body(64);
    let js = JsonStream::new(tx);
    let full = r.to_string();
    tokio::spawn(async move {
        let shown = r.familiar();
        let id = r.tag().or(r.digest()).unwrap_or("latest").to_string();
        let path = r.path().to_string();
        js.status(Some(&id), &format!("Pulling from {path}")).await;
        let before = images.state().resolve_tag(&full).ok().flatten();
        let mut resolved = None;
        let images2 = images.clone();
        let full2 = full.clone();
        let res = with_progress(
            &js,
            pull_message,
            move |sink| Box::pin(async move { images2.pull(&full2, platform, sink).await }),
            &mut resolved,
        )
        .await;
        match res {
            Ok(img) => {
                if let Some(dg) = resolved {
                    js.status(None, &format!("Digest: {dg}")).await;
                }
                let status = if before.as_ref() == Some(&img.id) {
                    format!("Status: Image is up to date for {shown}")
                } else {
                    format!("Status: Downloaded newer image for {shown}")
                };
                js.status(None, &status).await;
                d.events
                    .publish("image", "pull", &shown, &[("name", &shown)]);
            }
            Err(e) => {
                tracing::warn!(reference = %full, error = %e, "pull failed");
                js.error(&e.to_string()).await;
            }
        }
    });
    Ok(json_stream_response(body))
}

async fn by_name_get(
    State(d): State<AppState>,
    Path(rest): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        return inspect(&d, name).map(|v| Json(v).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return history(&d, name).map(|v| Json(v).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        let _ = p;
        return save(&d, vec![name.to_string()]);
    }
    Err(ApiError::not_found("page not found"))
}

async fn by_name_post(
    State(d): State<AppState>,
    Path(rest): Path<String>,
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        return tag(&d, name, &p).map(IntoResponse::into_response);
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return push(d.clone(), name, &p, &headers).await;
    }
    Err(ApiError::not_found("page not found"))
}

fn inspect(d: &Daemon, name: &str) -> ApiResult<Value> {
    let img = d.images.resolve(name).map_err(engine_err)?;
    let cfg = config_of(d, &img);
    let mut tags: Vec<String> = d
        .images
        .tags_of(&img.id)
        .map_err(engine_err)?
        .iter()
        .map(|t| familiar(t))
        .collect();
    tags.sort();
    let c = cfg.get("config").cloned().unwrap_or(json!({}));
    let mut config = Map::new();
    // The 1.50 shape (maps for ExposedPorts/Volumes), which API 1.41..1.50 clients decode.
    for (k, default) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("ExposedPorts", Value::Null),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", Value::Null),
        ("Cmd", Value::Null),
        ("Healthcheck", Value::Null),
        ("ArgsEscaped", Value::Null),
        ("Image", json!("")),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("OnBuild", Value::Null),
        ("Labels", Value::Null),
        ("StopSignal", Value::Null),
        ("Shell", Value::Null),
    ] {
        match c.get(k) {
            Some(v) => {
                config.insert(k.into(), v.clone());
            }
            None if !default.is_null()
                || matches!(k, "Env" | "Cmd" | "Entrypoint" | "OnBuild" | "Labels") =>
            {
                config.insert(k.into(), default);
            }
            None => {}
        }
    }
    let diff_ids: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
    let lowers: Vec<String> = d
        .images
        .layer_paths(&img)
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let mut graph = Map::new();
    if let Some((top, rest)) = lowers.split_first() {
        graph.insert("MergedDir".into(), json!(top));
        graph.insert("UpperDir".into(), json!(top));
        graph.insert("WorkDir".into(), json!(top));
        if !rest.is_empty() {
            graph.insert("LowerDir".into(), json!(rest.join(":")));
        }
    }
    let s = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = json!({
        "Id": img.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": img.repo_digests.iter().map(|r| familiar(r)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": s("comment"),
        "Created": img.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "DockerVersion": s("docker_version"),
        "Author": s("author"),
        "Config": config,
        "Architecture": s("architecture"),
        "Os": s("os"),
        "Size": img.size,
        "GraphDriver": {"Data": graph, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    if let (Some(o), Some(v)) = (out.as_object_mut(), cfg.get("variant")) {
        o.insert("Variant".into(), v.clone());
    }
    Ok(out)
}

fn history(d: &Daemon, name: &str) -> ApiResult<Vec<ImageHistoryResponseItem>> {
    let img = d.images.resolve(name).map_err(engine_err)?;
    let cfg = config_of(d, &img);
    let mut tags: Vec<String> = d
        .images
        .tags_of(&img.id)
        .map_err(engine_err)?
        .iter()
        .map(|t| familiar(t))
        .collect();
    tags.sort();
    let hist = cfg
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut layers = img.layers.iter();
    let mut items: Vec<ImageHistoryResponseItem> = Vec::new();
    if hist.is_empty() {
        // No history in the config: one entry per layer, as Docker shows for imports.
        for l in &img.layers {
            items.push(ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: created_secs(&img),
                created_by: String::new(),
                tags: vec![],
                size: l.diff_size as i64,
                comment: String::new(),
            });
        }
    }
    for h in &hist {
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers.next().map_or(0, |l| l.diff_size as i64)
        };
        let str_of = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        items.push(ImageHistoryResponseItem {
            id: "<missing>".into(),
            created: h
                .get("created")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339)
                .map_or(0, |(s, _)| s),
            created_by: str_of("created_by"),
            tags: vec![],
            size,
            comment: str_of("comment"),
        });
    }
    items.reverse();
    if let Some(top) = items.first_mut() {
        top.id = img.id.to_string();
        top.tags = tags;
    }
    Ok(items)
}

fn tag(d: &Daemon, name: &str, p: &Params) -> ApiResult<StatusCode> {
    let repo = p
        .get("repo")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("repository name must have at least one component"))?;
    let t = p.get("tag").filter(|s| !s.is_empty()).unwrap_or("latest");
    let target = format!("{repo}:{t}");
    let r = Reference::parse(&target).map_err(engine_err)?;
    if r.digest().is_some() {
        return Err(ApiError::bad_request(
            "refusing to create a tag with a digest reference",
        ));
    }
    d.images.tag(name, &target).map_err(engine_err)?;
    let img = d.images.resolve(&target).map_err(engine_err)?;
    d.events.publish(
        "image",
        "tag",
        &img.id.to_string(),
        &[("name", &r.familiar())],
    );
    Ok(StatusCode::CREATED)
}

async fn push(d: AppState, name: &str, p: &Params, headers: &HeaderMap) -> ApiResult<Response> {
    let tag = p.get("tag").filter(|s| !s.is_empty());
    let refstr = match tag {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let r = Reference::parse(&refstr).map_err(engine_err)?;
    if d.images
        .state()
        .resolve_tag(&r.to_string())
        .map_err(engine_err)?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "An image does not exist locally with the tag: {}",
            r.repository()
        )));
    }
    let images = d
        .images_with(registry_auth(headers, r.domain()))
        .map_err(engine_err)?;
    let config_id = d.images.resolve(&r.to_string()).map_err(engine_err)?.id;
    let (tx, body) = channel_body(64);
    let js = JsonStream::new(tx).hiding(short_id(&config_id));
    tokio::spawn(async move {
        let repo_shown = r.repository();
        js.status(
            None,
            &format!("The push refers to repository [{repo_shown}]"),
        )
        .await;
        let full = r.to_string();
        let images2 = images.clone();
        let full2 = full.clone();
        let mut resolved = None;
        let res = with_progress(
            &js,
            push_message,
            move |sink| Box::pin(async move { images2.push(&full2, sink).await }),
            &mut resolved,
        )
        .await;
        match res {
            Ok(digest) => {
                let size = images.store().size(&digest).unwrap_or(0);
                let t = r.tag().unwrap_or("latest").to_string();
                js.status(None, &format!("{t}: digest: {digest} size: {size}"))
                    .await;
                js.send(json!({
                    "progressDetail": {},
                    "aux": {"Tag": t, "Digest": digest.to_string(), "Size": size},
                }))
                .await;
                d.events
                    .publish("image", "push", &r.familiar(), &[("name", &r.familiar())]);
            }
            Err(e) => {
                tracing::warn!(reference = %full, error = %e, "push failed");
                js.error(&e.to_string()).await;
            }
        }
    });
    Ok(json_stream_response(body))
}

async fn remove(
    State(d): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Vec<ImageDeleteResponseItem>>> {
    let lines = d
        .images
        .remove(&name, p.bool("force"))
        .map_err(engine_err)?;
    let mut out = Vec::new();
    for l in lines {
        if let Some(t) = l.strip_prefix("Untagged: ") {
            let f = familiar(t);
            d.events.publish("image", "untag", &f, &[("name", &f)]);
            out.push(ImageDeleteResponseItem {
                untagged: Some(f),
                deleted: None,
            });
        } else if let Some(id) = l.strip_prefix("Deleted: ") {
            d.events.publish("image", "delete", id, &[("name", id)]);
            out.push(ImageDeleteResponseItem {
                untagged: None,
                deleted: Some(id.to_string()),
            });
        }
    }
    if out.iter().any(|i| i.deleted.is_some()) {
        // Free the blobs and snapshots nothing references any more.
        let images = d.images.clone();
        let _ = tokio::task::spawn_blocking(move || images.gc()).await;
    }
    Ok(Json(out))
}

async fn prune(State(d): State<AppState>, p: Params) -> ApiResult<Json<ImagePruneResponse>> {
    let f = p.filters()?;
    f.allow(&["dangling", "label", "label!", "until"])?;
    let only_dangling = f.bool("dangling")?.unwrap_or(true);
    let mut deleted = Vec::new();
    for (img, tags) in list_summaries(&d)? {
        if only_dangling && !tags.is_empty() {
            continue;
        }
        let cfg = config_of(&d, &img);
        if !f.match_labels(&labels_of(&cfg)) {
            continue;
        }
        let lines = d
            .images
            .remove(&img.id.to_string(), true)
            .map_err(engine_err)?;
        for l in lines {
            if let Some(t) = l.strip_prefix("Untagged: ") {
                let f = familiar(t);
                d.events.publish("image", "untag", &f, &[("name", &f)]);
                deleted.push(ImageDeleteResponseItem {
                    untagged: Some(f),
                    deleted: None,
                });
            } else if let Some(id) = l.strip_prefix("Deleted: ") {
                d.events.publish("image", "delete", id, &[("name", id)]);
                deleted.push(ImageDeleteResponseItem {
                    untagged: None,
                    deleted: Some(id.to_string()),
                });
            }
        }
    }
    let images = d.images.clone();
    let report = tokio::task::spawn_blocking(move || images.gc())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(engine_err)?;
    let reclaimed = report.bytes.to_string();
    d.events
        .publish("image", "prune", "", &[("reclaimed", reclaimed.as_str())]);
    Ok(Json(ImagePruneResponse {
        images_deleted: Some(deleted),
        space_reclaimed: Some(report.bytes as i64),
    }))
}

async fn search() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "search is not supported: Berth does not query Docker Hub's search index",
    )
}

async fn save_many(State(d): State<AppState>, p: Params) -> ApiResult<Response> {
    let names: Vec<String> = p.all("names").into_iter().map(str::to_string).collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    save(&d, names)
}

/// `docker save`: a blocking task writes the archive straight into the response body, so the
/// daemon never holds a whole image in memory.
fn save(d: &Daemon, names: Vec<String>) -> ApiResult<Response> {
    // Resolve first, so an unknown name is a 404 before any byte of the archive is sent.
    for n in &names {
        d.images.resolve(n).map_err(engine_err)?;
    }
    let (tx, body) = channel_body(16);
    let images = d.images.clone();
    tokio::task::spawn_blocking(move || {
        let w = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx));
        if let Err(e) = images.save(&names, w) {
            tracing::warn!(error = %e, "save ended early");
        }
    });
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// `docker load`: the body is streamed into the engine on a blocking thread.
async fn load(State(d): State<AppState>, body: Body) -> ApiResult<Response> {
    let reader = body_reader(body);
    let images = d.images.clone();
    let loaded = tokio::task::spawn_blocking(move || images.load(reader))
        .await
        .map_err(|e| ApiError::internal(format!("load task failed: {e}")))?
        .map_err(engine_err)?;
    let mut out = String::new();
    for (img, tags) in loaded {
        if tags.is_empty() {
            out.push_str(&json!({"stream": format!("Loaded image ID: {}\n", img.id)}).to_string());
            out.push_str("\r\n");
        }
        for t in tags {
            let shown = Reference::parse(&t).map(|r| r.familiar()).unwrap_or(t);
            d.events
                .publish("image", "load", &img.id.to_string(), &[("name", &shown)]);
            out.push_str(&json!({"stream": format!("Loaded image: {shown}\n")}).to_string());
            out.push_str("\r\n");
        }
    }
    Ok(json_stream_response(Body::from(out)))
}

/// `docker import`: `fromSrc=-` reads the rootfs tar from the body; `repo`, `tag`,
/// `changes` and `message` as Docker has them.
async fn import(d: AppState, src: &str, p: &Params, body: Body) -> ApiResult<Response> {
    if src != "-" {
        return Err(ApiError::bad_request(
            "importing from a URL is not supported by this Berth engine; use fromSrc=-",
        ));
    }
    let repo = p.get("repo").unwrap_or("").to_string();
    let tag = p.get("tag").unwrap_or("");
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo.clone()),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    if let Some(r) = &reference {
        Reference::parse(r).map_err(engine_err)?;
    }
    let changes: Vec<String> = p.all("changes").into_iter().map(str::to_string).collect();
    let message = p.get("message").map(str::to_string);
    let reader = body_reader(body);
    let images = d.images.clone();
    let rt = tokio::runtime::Handle::current();
    let img = tokio::task::spawn_blocking(move || {
        let plain = changes.is_empty() && message.as_deref().is_none_or(str::is_empty);
        if plain {
            return images.import(reader, reference.as_deref());
        }
        let base = images.import(reader, None)?;
        images.apply_changes(
            &base,
            &changes,
            message.as_deref(),
            reference.as_deref(),
            &rt,
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("import task failed: {e}")))?
    .map_err(engine_err)?;
    d.events
        .publish("image", "import", &img.id.to_string(), &[]);
    let mut out = json!({"status": img.id.to_string()}).to_string();
    out.push_str("\r\n");
    Ok(json_stream_response(Body::from(out)))
}

async fn auth(State(d): State<AppState>, body: axum::body::Bytes) -> ApiResult<Json<AuthResponse>> {
    let a: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth configuration: {e}")))?;
    let server = a.serveraddress.clone().unwrap_or_default();
    let domain = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    let domain = if domain.is_empty() || domain == "index.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    let creds = Credentials {
        username: a.username.clone().unwrap_or_default(),
        password: a.password.clone().unwrap_or_default(),
    };
    let images: ImageService = d
        .images_with(Some((domain.clone(), creds)))
        .map_err(engine_err)?;
    let client = RegistryClient::new(&domain, images.registry_options()).map_err(engine_err)?;
    let denied = |detail: String| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("login attempt to {domain} failed: {detail}"),
        )
    };
    let authz = client
        .authorization(&[])
        .await
        .map_err(|e| denied(e.to_string()))?;
    if let Some(h) = authz {
        let url = format!("{}/v2/", client.base_url());
        let resp = client
            .http()
            .get(&url)
            .header(header::AUTHORIZATION, h)
            .send()
            .await
            .map_err(|e| ApiError::internal(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(denied(format!("{}", resp.status())));
        }
    }
    Ok(Json(AuthResponse {
        status: "Login Succeeded".into(),
        identity_token: Some(String::new()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("alpine", "busybox:latest"));
        assert!(reference_matches(
            "127.0.0.1:5000/busybox",
            "127.0.0.1:5000/busybox:1"
        ));
    }
}
