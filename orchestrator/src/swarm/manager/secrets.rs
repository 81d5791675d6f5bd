//! Secrets and configs on a manager: Docker's operations on them, the cluster's data key, and
//! the opened data a node receives for the tasks it runs.

use super::{Manager, ManagerError, ops::lookup};
use crate::swarm::ids;
use crate::swarm::secrets::{DataKey, DataKind, DataObject, DataPayload, references};
use crate::swarm::state::Command;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bollard_stubs::models::{Driver, ServiceSpec, Task, TaskState};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Where managers hand the data key to other managers (manager certificates only).
pub const DATA_KEY_PATH: &str = "/swarm/v1/data-key";

/// swarmkit's size limits: secrets up to 500 KiB, configs up to 1000 KiB.
fn max_size(kind: DataKind) -> usize {
    match kind {
        DataKind::Secret => 500 * 1024,
        DataKind::Config => 1000 * 1024,
    }
}

fn invalid(message: String) -> ManagerError {
    ManagerError::Invalid(format!(
        "rpc error: code = InvalidArgument desc = {message}"
    ))
}

/// swarmkit's name rule for secrets and configs.
fn valid_name(name: &str) -> bool {
    let ok_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(ok_inner)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// What `secret create` / `config create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewData {
    /// The name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The data.
    pub data: Vec<u8>,
    /// The secret driver, if one was named.
    pub driver: Option<Driver>,
    /// The templating driver, if one was named.
    pub templating: Option<Driver>,
}

impl Manager {
    /// The data key if this manager has one.
    fn cached_data_key(&self) -> Option<Arc<DataKey>> {
        self.inner.data_key.lock().ok().and_then(|k| k.clone())
    }

    fn keep_data_key(&self, key: DataKey) -> Result<Arc<DataKey>, ManagerError> {
        key.save(&self.inner.cfg.dir)
            .map_err(|e| ManagerError::Unavailable(e.to_string()))?;
        let key = Arc::new(key);
        if let Ok(mut k) = self.inner.data_key.lock() {
            *k = Some(key.clone());
        }
        Ok(key)
    }

    /// `swarm init`: the new cluster's data key.
    pub(super) fn create_data_key(&self) -> Result<(), ManagerError> {
        let key = DataKey::generate().map_err(|e| ManagerError::Unavailable(e.to_string()))?;
        self.keep_data_key(key).map(|_| ())
    }

    /// The data key, asked of the other managers when this one has none yet (it joined or
    /// was promoted).
    pub async fn data_key(&self) -> Result<Arc<DataKey>, ManagerError> {
        if let Some(k) = self.cached_data_key() {
            return Ok(k);
        }
        let mut last = String::from("no other manager is known");
        for m in self.store().members() {
            if m.peer.node_id == self.node_id() {
                continue;
            }
            let url = format!("https://{}{DATA_KEY_PATH}", m.peer.addr);
            let got = async {
                let resp = self.inner.http.get(&url).send().await?;
                let status = resp.status();
                let text = resp.text().await?;
                Ok::<_, reqwest::Error>((status, text))
            };
            match tokio::time::timeout(Duration::from_secs(3), got).await {
                Ok(Ok((status, text))) if status.is_success() => {
                    match DataKey::from_base64(&text) {
                        Ok(key) => return self.keep_data_key(key),
                        Err(e) => last = format!("{}: {e}", m.peer.addr),
                    }
                }
                Ok(Ok((status, text))) => last = format!("{}: {status} {text}", m.peer.addr),
                Ok(Err(e)) => last = format!("{}: {e}", m.peer.addr),
                Err(_) => last = format!("{}: timed out", m.peer.addr),
            }
        }
        Err(ManagerError::Unavailable(format!(
            "this manager does not have the cluster's data key yet ({last})"
        )))
    }

    /// Until this manager holds the data key, asks the others for it every second, so that
    /// the key survives the loss of the manager that made it.
    pub(super) async fn fetch_data_key_loop(self) {
        let mut shutdown = self.shutdown_signal();
        loop {
            if self.cached_data_key().is_some() {
                return;
            }
            let initialised = self.store().read(|s| s.cluster.is_some());
            if initialised && let Err(e) = self.data_key().await {
                tracing::debug!(error = %e, "swarm manager: data key not fetched yet");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = super::stopped(&mut shutdown) => return,
            }
        }
    }

    /// Every secret or config.
    pub fn data_objects(&self, kind: DataKind) -> Vec<DataObject> {
        self.store()
            .read(|s| s.data_objects(kind).values().cloned().collect())
    }

    /// One secret or config by ID, unique ID prefix or name.
    pub fn data_object(&self, kind: DataKind, key: &str) -> Result<DataObject, ManagerError> {
        self.store().read(|s| {
            lookup(
                kind.noun(),
                key,
                s.data_objects(kind)
                    .iter()
                    .map(|(id, o)| (id, o, Some(o.name.as_str()))),
            )
            .cloned()
        })
    }

    /// The plain data of a secret or config.
    pub async fn open_data(&self, kind: DataKind, o: &DataObject) -> Result<Vec<u8>, ManagerError> {
        let key = self.data_key().await?;
        key.open(&kind.context(&o.id), &o.sealed)
            .map_err(|e| ManagerError::Unavailable(format!("{} {}: {e}", kind.noun(), o.name)))
    }

    /// `POST /secrets/create` / `POST /configs/create`: checks as swarmkit does, seals the
    /// data and records the object; returns its ID.
    pub async fn create_data(&self, kind: DataKind, new: NewData) -> Result<String, ManagerError> {
        if new.name.is_empty() {
            return Err(invalid("name must be provided".into()));
        }
        if !valid_name(&new.name) {
            return Err(invalid(
                "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]".into(),
            ));
        }
        if let Some(d) = &new.driver {
            return Err(invalid(format!(
                "secret driver {} is not available: Berth stores secret data itself",
                d.name
            )));
        }
        let max = max_size(kind);
        if new.data.is_empty() || new.data.len() >= max {
            return Err(invalid(format!(
                "{} data must be larger than 0 and less than {max} bytes",
                kind.noun()
            )));
        }
        let key = self.data_key().await?;
        let id = ids::new_id();
        let sealed = key
            .seal(&kind.context(&id), &new.data)
            .map_err(|e| ManagerError::Unavailable(e.to_string()))?;
        let object = DataObject {
            id: id.clone(),
            name: new.name,
            labels: new.labels,
            driver: new.driver,
            templating: new.templating,
            sealed,
            ..Default::default()
        };
        self.write_ok(Command::CreateData {
            kind,
            object: Box::new(object),
        })
        .await?;
        Ok(id)
    }

    /// `POST /secrets/{id}/update` / `POST /configs/{id}/update`: only labels may change;
    /// `name` and `data` must be absent or unchanged.
    pub async fn update_data(
        &self,
        kind: DataKind,
        key: &str,
        version: u64,
        name: Option<&str>,
        data: Option<&[u8]>,
        labels: BTreeMap<String, String>,
    ) -> Result<(), ManagerError> {
        let o = self.data_object(kind, key)?;
        let renamed = name.is_some_and(|n| n != o.name);
        let changed = match data {
            Some(d) => self.open_data(kind, &o).await? != d,
            None => false,
        };
        if renamed || changed {
            return Err(invalid("only updates to Labels are allowed".into()));
        }
        self.write_ok(Command::UpdateDataLabels {
            kind,
            id: o.id,
            version,
            labels,
        })
        .await
    }

    /// `DELETE /secrets/{id}` / `DELETE /configs/{id}`; refused while a service uses it.
    pub async fn remove_data(&self, kind: DataKind, key: &str) -> Result<(), ManagerError> {
        let id = self.data_object(kind, key)?.id;
        self.write_ok(Command::RemoveData { kind, id }).await
    }

    /// Checks a service's secret and config references as swarmkit does and fills in the
    /// IDs (from names) and names (from IDs).
    pub(super) fn resolve_data_refs(&self, spec: &mut ServiceSpec) -> Result<(), ManagerError> {
        let Some(c) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
        else {
            return Ok(());
        };
        self.store().read(|s| {
            let mut missing: BTreeMap<DataKind, Vec<String>> = BTreeMap::new();
            let mut resolve =
                |kind: DataKind, id: &mut Option<String>, name: &mut Option<String>| {
                    let objects = s.data_objects(kind);
                    let found = match id.as_deref().filter(|i| !i.is_empty()) {
                        Some(i) => objects.get(i),
                        None => name
                            .as_deref()
                            .and_then(|n| objects.values().find(|o| o.name == n)),
                    };
                    match found {
                        Some(o) => {
                            *id = Some(o.id.clone());
                            *name = Some(o.name.clone());
                        }
                        None => missing.entry(kind).or_default().push(
                            name.clone()
                                .filter(|n| !n.is_empty())
                                .or_else(|| id.clone())
                                .unwrap_or_default(),
                        ),
                    }
                };
            for r in c.secrets.iter_mut().flatten() {
                if r.file.is_none() {
                    return Err(invalid("malformed file secret reference".into()));
                }
                resolve(DataKind::Secret, &mut r.secret_id, &mut r.secret_name);
            }
            for r in c.configs.iter_mut().flatten() {
                if r.file.is_none() && r.runtime.is_none() {
                    return Err(invalid("malformed config reference".into()));
                }
                resolve(DataKind::Config, &mut r.config_id, &mut r.config_name);
            }
            if let Some((kind, names)) = missing.into_iter().next() {
                return Err(invalid(format!(
                    "{} not found: {}",
                    kind.noun(),
                    names.join(", ")
                )));
            }
            Ok(())
        })?;
        let mut targets: BTreeMap<String, String> = BTreeMap::new();
        for f in references(c) {
            if let Some(other) = targets.insert(f.target.clone(), f.name.clone()) {
                return Err(invalid(format!(
                    "{} references '{other}' and '{}' have a conflicting target: '{}'",
                    f.kind.noun(),
                    f.name,
                    f.target
                )));
            }
        }
        Ok(())
    }

    /// The opened data of every secret and config that `tasks` still need (those that should
    /// run), for the node they are assigned to.
    pub(super) async fn payloads_for(
        &self,
        tasks: &[Task],
    ) -> Result<Vec<DataPayload>, ManagerError> {
        let wanted: BTreeSet<(DataKind, String)> = tasks
            .iter()
            .filter(|t| {
                let d = t.desired_state.unwrap_or(TaskState::RUNNING);
                crate::swarm::state::task_state_rank(d)
                    <= crate::swarm::state::task_state_rank(TaskState::RUNNING)
            })
            .filter_map(|t| t.spec.as_ref()?.container_spec.as_ref())
            .flat_map(references)
            .map(|f| (f.kind, f.id))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.data_key().await?;
        let objects: Vec<(DataKind, DataObject)> = self.store().read(|s| {
            wanted
                .iter()
                .filter_map(|(kind, id)| Some((*kind, s.data_objects(*kind).get(id)?.clone())))
                .collect()
        });
        objects
            .into_iter()
            .map(|(kind, o)| {
                let plain = key.open(&kind.context(&o.id), &o.sealed).map_err(|e| {
                    ManagerError::Unavailable(format!("{} {}: {e}", kind.noun(), o.name))
                })?;
                Ok(DataPayload {
                    kind,
                    id: o.id,
                    data: STANDARD.encode(plain),
                })
            })
            .collect()
    }
}

/// `GET /swarm/v1/data-key`: another manager asks for the data key.
pub(super) async fn serve_data_key(Extension(m): Extension<Manager>) -> Response {
    match m.cached_data_key() {
        Some(k) => k.to_base64().into_response(),
        None => (StatusCode::NOT_FOUND, "this manager has no data key").into_response(),
    }
}
