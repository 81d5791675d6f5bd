//! Container records in the metadata store: the `containers` table (ID -> JSON) and the
//! `container_names` index, always written together in one transaction.

use super::ContainerError;
use crate::state::{CONTAINER_NAMES, CONTAINERS, StateStore};
use crate::{Error, Result};
use bollard_stubs::models::{ContainerConfig, Health, HostConfig, NetworkingConfig};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

/// Docker's "never" timestamp.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The run state of a container as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub status: String,
    /// The init's host PID while running, else 0.
    pub pid: i64,
    /// The last exit code.
    pub exit_code: i64,
    /// Why the last start or run failed.
    pub error: String,
    /// Whether the last exit was an OOM kill.
    pub oom_killed: bool,
    /// When the last start happened (RFC 3339).
    pub started_at: String,
    /// When the last exit happened (RFC 3339).
    pub finished_at: String,
}

impl Default for RunState {
    fn default() -> Self {
        Self {
            status: "created".into(),
            pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        }
    }
}

impl RunState {
    /// Whether a process is (or should be) alive: running or paused.
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "running" | "paused")
    }
}

/// One container, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// The name without the leading `/`.
    pub name: String,
    /// Creation time (RFC 3339, nanoseconds).
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image ID (`sha256:...`).
    pub image_id: String,
    /// The effective config (create body merged with the image config).
    pub config: ContainerConfig,
    /// The host config as given (defaults filled).
    pub host_config: HostConfig,
    /// Networks asked for at create time.
    #[serde(default)]
    pub networking: Option<NetworkingConfig>,
    /// The process path (first of Entrypoint + Cmd).
    pub path: String,
    /// The process arguments.
    pub args: Vec<String>,
    /// Run state.
    pub state: RunState,
    /// Restarts done by the restart policy.
    #[serde(default)]
    pub restart_count: i64,
    /// Exec instances of this container.
    #[serde(default)]
    pub exec_ids: Vec<String>,
    /// Health, when the container has a healthcheck and has been started.
    #[serde(default)]
    pub health: Option<Health>,
    /// Set while `create` has not finished; such records are removed at the next open.
    #[serde(default)]
    pub creating: bool,
    /// The user stopped or killed it: the restart policy does not apply to this exit.
    #[serde(default)]
    pub manual_stop: bool,
    /// Whether it was ever started (for `unless-stopped` after a daemon restart).
    #[serde(default)]
    pub has_been_started: bool,
}

fn encode(rec: &ContainerRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(rec)
        .map_err(|e| ContainerError::Internal(format!("encode record: {e}")).into())
}

fn decode(key: &str, b: &[u8]) -> Result<ContainerRecord> {
    serde_json::from_slice(b).map_err(|source| {
        crate::state::StateError::Corrupt {
            key: key.to_string(),
            source,
        }
        .into()
    })
}

/// Inserts a new record and its name; fails with `NameConflict` if the name is taken.
pub fn insert(state: &StateStore, rec: &ContainerRecord) -> Result<()> {
    let json = encode(rec)?;
    let taken = state.write(|txn| {
        let mut names = txn.open_table(CONTAINER_NAMES)?;
        if let Some(other) = names.get(rec.name.as_str())? {
            return Ok(Some(other.value().to_string()));
        }
        names.insert(rec.name.as_str(), rec.id.as_str())?;
        txn.open_table(CONTAINERS)?
            .insert(rec.id.as_str(), json.as_slice())?;
        Ok(None)
    })?;
    match taken {
        Some(id) => Err(ContainerError::NameConflict {
            name: rec.name.clone(),
            id,
        }
        .into()),
        None => Ok(()),
    }
}

/// Overwrites an existing record (its name must not change; see [`rename`]).
pub fn put(state: &StateStore, rec: &ContainerRecord) -> Result<()> {
    let json = encode(rec)?;
    state.write(|txn| put_in(txn, &rec.id, &json))?;
    Ok(())
}

fn put_in(
    txn: &redb::WriteTransaction,
    id: &str,
    json: &[u8],
) -> std::result::Result<(), redb::Error> {
    txn.open_table(CONTAINERS)?.insert(id, json)?;
    Ok(())
}

/// A record by full ID.
pub fn get(state: &StateStore, id: &str) -> Result<Option<ContainerRecord>> {
    let raw = state.read(|txn| {
        let t = txn.open_table(CONTAINERS)?;
        Ok(t.get(id)?.map(|v| v.value().to_vec()))
    })?;
    raw.map(|b| decode(id, &b)).transpose()
}

/// Every record.
pub fn all(state: &StateStore) -> Result<Vec<ContainerRecord>> {
    let raw = state.entries(CONTAINERS)?;
    raw.into_iter().map(|(k, b)| decode(&k, &b)).collect()
}

/// The ID a name points at.
pub fn id_by_name(state: &StateStore, name: &str) -> Result<Option<String>> {
    Ok(state.read(|txn| {
        let t = txn.open_table(CONTAINER_NAMES)?;
        Ok(t.get(name)?.map(|v| v.value().to_string()))
    })?)
}

/// Overwrites an existing record without waiting for the disk (see
/// [`StateStore::write_lazy`]): for states recovery redoes when a crash loses them.
pub fn put_lazy(state: &StateStore, rec: &ContainerRecord) -> Result<()> {
    let json = encode(rec)?;
    state.write_lazy(|txn| put_in(txn, &rec.id, &json))?;
    Ok(())
}

/// Removes a record and its name.
pub fn remove(state: &StateStore, id: &str) -> Result<()> {
    state.write(|txn| remove_in(txn, id))?;
    Ok(())
}

/// Removes a record and its name without waiting for the disk: only after a durable
/// "removing" state, which recovery completes.
pub fn remove_lazy(state: &StateStore, id: &str) -> Result<()> {
    state.write_lazy(|txn| remove_in(txn, id))?;
    Ok(())
}

fn remove_in(txn: &redb::WriteTransaction, id: &str) -> std::result::Result<(), redb::Error> {
    {
        let mut t = txn.open_table(CONTAINERS)?;
        let old = t.remove(id)?.map(|v| v.value().to_vec());
        let mut names = txn.open_table(CONTAINER_NAMES)?;
        if let Some(old) = old
            && let Ok(rec) = serde_json::from_slice::<ContainerRecord>(&old)
            && names.get(rec.name.as_str())?.map(|v| v.value() == id) == Some(true)
        {
            names.remove(rec.name.as_str())?;
        }
        // A record that no longer decodes may still own a name.
        let stale: Vec<String> = names
            .iter()?
            .filter_map(|e| e.ok())
            .filter(|(_, v)| v.value() == id)
            .map(|(k, _)| k.value().to_string())
            .collect();
        for n in stale {
            names.remove(n.as_str())?;
        }
    }
    Ok(())
}

/// Renames a container; fails with `NameConflict` if the new name is taken.
pub fn rename(state: &StateStore, id: &str, new_name: &str) -> Result<()> {
    let res = state.write(|txn| {
        let mut names = txn.open_table(CONTAINER_NAMES)?;
        if let Some(other) = names.get(new_name)? {
            return Ok(Err(other.value().to_string()));
        }
        let mut t = txn.open_table(CONTAINERS)?;
        let Some(raw) = t.get(id)?.map(|v| v.value().to_vec()) else {
            return Ok(Ok(false));
        };
        let Ok(mut rec) = serde_json::from_slice::<ContainerRecord>(&raw) else {
            return Ok(Ok(false));
        };
        names.remove(rec.name.as_str())?;
        names.insert(new_name, id)?;
        rec.name = new_name.to_string();
        let json = serde_json::to_vec(&rec).unwrap_or(raw);
        t.insert(id, json.as_slice())?;
        Ok(Ok(true))
    })?;
    match res {
        Err(other) => Err(Error::from(ContainerError::NameConflict {
            name: new_name.to_string(),
            id: other,
        })),
        Ok(false) => Err(ContainerError::NotFound(id.to_string()).into()),
        Ok(true) => Ok(()),
    }
}
