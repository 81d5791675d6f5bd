//! `/volumes/*`, backed by the engine's volume service (held by the container service,
//! which mounts volumes into containers).

use super::{ApiError, ApiResult, ApiVersion, Filters, Params, json_body};
use crate::daemon::AppState;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use berth_engine::volume::{CreateOptions, Volume, VolumeFilters};
use serde_json::{Value, json};

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

/// Runs blocking volume work (directory walks, mounts, redb) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> berth_engine::Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)
}

fn volume_filters(f: &Filters) -> ApiResult<VolumeFilters> {
    let all = match f.get("all").first() {
        None => false,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(ApiError::bad_request(format!("invalid filter 'all={v}'"))),
        },
    };
    Ok(VolumeFilters {
        dangling: f.bool("dangling")?,
        driver: f.get("driver").to_vec(),
        name: f.get("name").to_vec(),
        label: f.get("label").to_vec(),
        label_not: f.get("label!").to_vec(),
        all,
    })
}

async fn list(State(d): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let f = p.filters()?;
    f.allow(&["dangling", "driver", "label", "name"])?;
    let vf = volume_filters(&f)?;
    let vols = d.containers.volumes().clone();
    let list = blocking(move || vols.list(&vf, false)).await?;
    Ok(Json(json!({"Volumes": list, "Warnings": null})))
}

async fn create(State(d): State<AppState>, body: Bytes) -> ApiResult<(StatusCode, Json<Volume>)> {
    let opts: CreateOptions = json_body(&body, "invalid JSON")?;
    let vols = d.containers.volumes().clone();
    let v = blocking(move || vols.create(opts)).await?;
    d.events.publish(
        "volume",
        "create",
        &v.name,
        &[("driver", v.driver.as_str())],
    );
    Ok((StatusCode::CREATED, Json(v)))
}

async fn inspect(State(d): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Volume>> {
    let vols = d.containers.volumes().clone();
    Ok(Json(blocking(move || vols.inspect(&name)).await?))
}

async fn remove(
    State(d): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<StatusCode> {
    let vols = d.containers.volumes().clone();
    let force = p.bool("force");
    let n = name.clone();
    let existed = vols.inspect(&name).is_ok();
    blocking(move || vols.remove(&n, force)).await?;
    if existed {
        d.events.publish("volume", "destroy", &name, &[]);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(d): State<AppState>, v: ApiVersion, p: Params) -> ApiResult<Json<Value>> {
    let f = p.filters()?;
    // `all` came with API 1.42, which also made prune keep named volumes by default.
    let new_api = v >= ApiVersion(1, 42);
    if new_api {
        f.allow(&["label", "label!", "all"])?;
    } else {
        f.allow(&["label", "label!"])?;
    }
    let mut vf = volume_filters(&f)?;
    if !new_api {
        vf.all = true;
    }
    let vols = d.containers.volumes().clone();
    let (names, space) = blocking(move || vols.prune(&vf)).await?;
    for n in &names {
        d.events.publish("volume", "destroy", n, &[]);
    }
    d.events.publish(
        "volume",
        "prune",
        "",
        &[("reclaimed", space.to_string().as_str())],
    );
    Ok(Json(
        json!({"VolumesDeleted": names, "SpaceReclaimed": space}),
    ))
}
