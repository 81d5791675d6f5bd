//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use super::images::{image_summary, list_summaries};
use super::{ApiResult, ApiVersion, Params, VERSION, channel_body, parse_rfc3339};
use crate::daemon::AppState;
use crate::events::Event;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bollard_stubs::models::{SystemVersion, SystemVersionComponents, SystemVersionPlatform};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/events", get(events))
        .route("/system/df", get(df))
}

async fn ping(State(d): State<AppState>) -> Response {
    let mut r = "OK".into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static(d.swarm.ping_header()));
    r
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn kernel_version() -> String {
    read_trim("/proc/sys/kernel/osrelease")
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn version() -> Json<SystemVersion> {
    let details = HashMap::from([
        ("ApiVersion".to_string(), super::API_VERSION.to_string()),
        (
            "MinAPIVersion".to_string(),
            super::MIN_API_VERSION.to_string(),
        ),
        ("Os".to_string(), "linux".to_string()),
        ("Arch".to_string(), arch().to_string()),
        ("KernelVersion".to_string(), kernel_version()),
        ("Experimental".to_string(), "false".to_string()),
        ("GitCommit".to_string(), String::new()),
        ("GoVersion".to_string(), "n/a (Rust)".to_string()),
        ("BuildTime".to_string(), String::new()),
    ]);
    Json(SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: "Berth".into(),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: VERSION.into(),
            details: Some(details),
        }]),
        version: Some(VERSION.into()),
        api_version: Some(super::API_VERSION.to_string()),
        min_api_version: Some(super::MIN_API_VERSION.to_string()),
        git_commit: Some(String::new()),
        go_version: Some("n/a (Rust)".into()),
        os: Some("linux".into()),
        arch: Some(arch().into()),
        kernel_version: Some(kernel_version()),
        experimental: Some(false),
        build_time: Some(String::new()),
    })
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

async fn info(State(d): State<AppState>) -> ApiResult<Json<Value>> {
    let images = d
        .images
        .state()
        .images()
        .map_err(berth_engine::Error::from)?;
    let cgroup2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut index_configs = serde_json::Map::new();
    index_configs.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
    );
    for r in &d.config.insecure_registries {
        index_configs.insert(
            r.clone(),
            json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    let now = SystemTime::now();
    let containers = d.containers.list()?;
    let count = |state: &str| {
        containers
            .iter()
            .filter(|c| c.state.map(|s| s.to_string()).as_deref() == Some(state))
            .count()
    };
    let (running, paused) = (count("running"), count("paused"));
    Ok(Json(json!({
        "ID": d.id,
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": containers.len() - running - paused,
        "Images": images.len(),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": null,
            "Log": ["json-file", "local", "none"],
        },
        "MemoryLimit": true,
        "SwapLimit": true,
        "KernelMemory": false,
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": false,
        "NFd": 0,
        "OomKillDisable": false,
        "NGoroutines": 0,
        "SystemTime": super::unix_to_rfc3339(
            now.duration_since(UNIX_EPOCH).map(|x| x.as_secs() as i64).unwrap_or(0), 0),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if cgroup2 { "2" } else { "1" },
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": index_configs,
            "Mirrors": [],
        },
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "GenericResources": null,
        "DockerRootDir": d.config.root.display().to_string(),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": read_trim("/proc/sys/kernel/hostname"),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": {"berth": {"path": "berth-runtime"}},
        "DefaultRuntime": "berth",
        "Swarm": serde_json::to_value(d.swarm.info().await).unwrap_or_default(),
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": null,
    })))
}

/// `/events` filters: `type`, `event` (action), `image`, and the object's ID or name.
fn event_matches(ev: &Event, f: &super::Filters) -> bool {
    let any = |key: &str, val: &str| {
        let v = f.get(key);
        v.is_empty() || v.iter().any(|x| x == val)
    };
    let name = ev
        .attributes
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let image_ok = {
        let v = f.get("image");
        v.is_empty()
            || (ev.typ == "image" && v.iter().any(|x| x == &ev.id || x == name))
            || ev
                .attributes
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| v.iter().any(|x| x == i))
    };
    any("type", &ev.typ) && any("event", &ev.action) && image_ok && {
        let obj = f.get(&ev.typ);
        obj.is_empty() || obj.iter().any(|x| x == &ev.id || x == name)
    }
}

/// `since`/`until`: unix seconds (with optional fraction) or RFC 3339.
fn parse_time(s: &str) -> Option<i64> {
    if let Some((secs, nanos)) = parse_rfc3339(s) {
        return Some(secs * 1_000_000_000 + i64::from(nanos));
    }
    let (a, b) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = a.parse().ok()?;
    let mut frac = b.chars().take(9).collect::<String>();
    while frac.len() < 9 {
        frac.push('0');
    }
    Some(secs * 1_000_000_000 + frac.parse::<i64>().ok()?)
}

async fn events(State(d): State<AppState>, p: Params) -> ApiResult<Response> {
    let filters = p.filters()?;
    let bad = |k: &str, v: &str| super::ApiError::bad_request(format!("invalid {k} value: {v}"));
    let since = match p.get("since").filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_time(s).ok_or_else(|| bad("since", s))?),
        None => None,
    };
    let until = match p.get("until").filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_time(s).ok_or_else(|| bad("until", s))?),
        None => None,
    };
    let (past, mut rx) = d.events.subscribe();
    let (tx, body) = channel_body(64);
    let mut shutdown = d.shutdown_signal();
    tokio::spawn(async move {
        let line = |ev: &Event| {
            let mut s = ev.to_json().to_string();
            s.push('\n');
            Bytes::from(s)
        };
        let in_range = |ev: &Event| until.is_none_or(|u| ev.time_nano <= u);
        if let Some(s) = since {
            for ev in past.iter().filter(|e| e.time_nano >= s) {
                if in_range(ev) && event_matches(ev, &filters) && tx.send(line(ev)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = until.map(|u| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|x| x.as_nanos() as i64)
                .unwrap_or(0);
            Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        let sleep = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(u64::MAX / 4)));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if in_range(&ev) && event_matches(&ev, &filters)
                            && tx.send(line(&ev)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                _ = &mut sleep => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
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

async fn df(State(d): State<AppState>, v: ApiVersion) -> ApiResult<Json<Value>> {
    let _ = v;
    let mut images = Vec::new();
    let mut layers = 0i64;
    let all = list_summaries(&d)?;
    let containers = d.containers.list()?;
    for (img, tags) in &all {
        layers += img.size as i64;
        let id = img.id.to_string();
        // Docker counts every container made from the image, running or not.
        let users = containers
            .iter()
            .filter(|c| c.image_id.as_deref() == Some(id.as_str()))
            .count();
        let mut s = serde_json::to_value(image_summary(&d, img, tags))
            .map_err(|e| super::ApiError::internal(e.to_string()))?;
        if let Some(o) = s.as_object_mut() {
            o.insert("Containers".into(), json!(users));
            o.insert("SharedSize".into(), json!(0));
        }
        images.push(s);
    }
    let vols = d.containers.volumes().clone();
    let volumes = tokio::task::spawn_blocking(move || vols.disk_usage())
        .await
        .map_err(|e| super::ApiError::internal(e.to_string()))??;
    Ok(Json(json!({
        "LayersSize": layers,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })))
}
