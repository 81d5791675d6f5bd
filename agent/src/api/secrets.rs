//! Docker's `/secrets` and `/configs`, served by managers: the same operations over the two
//! kinds of [`DataKind`]; a secret's data is never returned, a config's is.

use super::swarm::{any_prefix, label_match, manager, version_param};
use super::{ApiError, ApiResult, Params, json_body};
use crate::daemon::AppState;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_orchestrator::swarm::manager::{Manager, NewData};
use berth_orchestrator::swarm::secrets::{DataKind, DataObject};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// The secret and config routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(|s, p| list(s, p, DataKind::Secret)))
        .route("/configs", get(|s, p| list(s, p, DataKind::Config)))
        .route(
            "/secrets/create",
            post(|s, b| create(s, b, DataKind::Secret)),
        )
        .route(
            "/configs/create",
            post(|s, b| create(s, b, DataKind::Config)),
        )
        .route(
            "/secrets/{id}",
            get(|s, id| inspect(s, id, DataKind::Secret))
                .delete(|s, id| remove(s, id, DataKind::Secret)),
        )
        .route(
            "/configs/{id}",
            get(|s, id| inspect(s, id, DataKind::Config))
                .delete(|s, id| remove(s, id, DataKind::Config)),
        )
        .route(
            "/secrets/{id}/update",
            post(|s, id, p, b| update(s, id, p, b, DataKind::Secret)),
        )
        .route(
            "/configs/{id}/update",
            post(|s, id, p, b| update(s, id, p, b, DataKind::Config)),
        )
}

/// The fields of `SecretSpec` and `ConfigSpec` a client sends (a config has no driver).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Spec {
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    data: Option<String>,
    driver: Option<bollard_stubs::models::Driver>,
    templating: Option<bollard_stubs::models::Driver>,
}

impl Spec {
    fn data(&self) -> ApiResult<Option<Vec<u8>>> {
        self.data
            .as_deref()
            .map(|d| {
                STANDARD
                    .decode(d)
                    .map_err(|e| ApiError::bad_request(format!("Data is not valid base64: {e}")))
            })
            .transpose()
    }
}

/// The object as the API shows it; a config's data is opened for it.
async fn to_json(m: &Manager, kind: DataKind, o: &DataObject) -> ApiResult<Value> {
    let v = match kind {
        DataKind::Secret => serde_json::to_value(o.to_secret()),
        DataKind::Config => {
            let data = STANDARD.encode(m.open_data(kind, o).await?);
            serde_json::to_value(o.to_config(Some(data)))
        }
    };
    Ok(v.unwrap_or_default())
}

async fn list(State(s): State<AppState>, p: Params, kind: DataKind) -> ApiResult<Json<Vec<Value>>> {
    let m = manager(&s).await?;
    let f = p.filters()?;
    f.allow(&["id", "label", "name", "names"])?;
    let mut out = Vec::new();
    for o in m.data_objects(kind) {
        let labels: HashMap<String, String> = o.labels.clone().into_iter().collect();
        let keep = any_prefix(f.get("id"), &o.id)
            && any_prefix(f.get("name"), &o.name)
            && (f.get("names").is_empty() || f.get("names").contains(&o.name))
            && label_match(&f, "label", Some(&labels));
        if keep {
            out.push(to_json(&m, kind, &o).await?);
        }
    }
    Ok(Json(out))
}

async fn create(
    State(s): State<AppState>,
    body: Bytes,
    kind: DataKind,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let m = manager(&s).await?;
    let spec: Spec = json_body(&body, &format!("{} spec", kind.noun()))?;
    let data = spec.data()?.unwrap_or_default();
    let new = NewData {
        name: spec.name.unwrap_or_default(),
        labels: spec.labels.unwrap_or_default(),
        data,
        driver: spec.driver,
        templating: spec.templating,
    };
    let id = m.create_data(kind, new).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ID": id }))))
}

async fn inspect(
    State(s): State<AppState>,
    Path(id): Path<String>,
    kind: DataKind,
) -> ApiResult<Json<Value>> {
    let m = manager(&s).await?;
    let o = m.data_object(kind, &id)?;
    Ok(Json(to_json(&m, kind, &o).await?))
}

async fn remove(
    State(s): State<AppState>,
    Path(id): Path<String>,
    kind: DataKind,
) -> ApiResult<StatusCode> {
    let m = manager(&s).await?;
    m.remove_data(kind, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
    body: Bytes,
    kind: DataKind,
) -> ApiResult<StatusCode> {
    let m = manager(&s).await?;
    let spec: Spec = json_body(&body, &format!("{} spec", kind.noun()))?;
    let data = spec.data()?;
    m.update_data(
        kind,
        &id,
        version_param(&p)?,
        spec.name.as_deref(),
        data.as_deref(),
        spec.labels.unwrap_or_default(),
    )
    .await?;
    Ok(StatusCode::OK)
}
