//! Secrets and configs: named blobs that a service's tasks receive as files. Both share one
//! record shape; their data is sealed with the cluster's data key ([`key`]) before it enters
//! the Raft log, so neither the log nor its snapshots hold it in the clear. Nodes get the
//! opened data only for the tasks they run, and keep it in memory (a tmpfs) only.

pub mod key;

pub use key::{DataKey, KeyError};

use crate::swarm::state::{ClusterState, Outcome};
use bollard_stubs::models::{
    Config, ConfigSpec, Driver, ObjectVersion, Secret, SecretSpec, TaskSpecContainerSpec,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which of the two object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DataKind {
    /// `docker secret`: never shown back through the API.
    Secret,
    /// `docker config`: its data is part of `config inspect`.
    Config,
}

impl DataKind {
    /// The word Docker's messages use.
    pub fn noun(self) -> &'static str {
        match self {
            DataKind::Secret => "secret",
            DataKind::Config => "config",
        }
    }

    /// The Engine API's collection path (`/secrets`, `/configs`) without the slash.
    pub fn api_path(self) -> &'static str {
        match self {
            DataKind::Secret => "secrets",
            DataKind::Config => "configs",
        }
    }

    /// What sealed data is bound to: kind and ID.
    pub fn context(self, id: &str) -> String {
        format!("{}/{id}", self.noun())
    }
}

/// A secret or config as the store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataObject {
    /// The object ID (chosen by the proposer).
    pub id: String,
    /// Raft index of the last change.
    pub version: u64,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    /// The unique name.
    pub name: String,
    /// Labels, the only thing an update may change.
    pub labels: BTreeMap<String, String>,
    /// The secret driver named at creation (kept and shown, not called).
    pub driver: Option<Driver>,
    /// The templating driver named at creation (kept and shown).
    pub templating: Option<Driver>,
    /// The data, sealed with the cluster's data key under [`DataKind::context`].
    pub sealed: String,
}

impl DataObject {
    fn version(&self) -> Option<ObjectVersion> {
        Some(ObjectVersion {
            index: Some(self.version),
        })
    }

    fn labels(&self) -> Option<std::collections::HashMap<String, String>> {
        Some(self.labels.clone().into_iter().collect())
    }

    /// The API's `Secret`: the data is never part of it.
    pub fn to_secret(&self) -> Secret {
        Secret {
            id: Some(self.id.clone()),
            version: self.version(),
            created_at: Some(self.created_at.clone()),
            updated_at: Some(self.updated_at.clone()),
            spec: Some(SecretSpec {
                name: Some(self.name.clone()),
                labels: self.labels(),
                data: None,
                driver: self.driver.clone(),
                templating: self.templating.clone(),
            }),
        }
    }

    /// The API's `Config`, with its data (base64) when given.
    pub fn to_config(&self, data: Option<String>) -> Config {
        Config {
            id: Some(self.id.clone()),
            version: self.version(),
            created_at: Some(self.created_at.clone()),
            updated_at: Some(self.updated_at.clone()),
            spec: Some(ConfigSpec {
                name: Some(self.name.clone()),
                labels: self.labels(),
                data,
                templating: self.templating.clone(),
            }),
        }
    }
}

/// One file a task's container gets from a secret or config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Secret or config.
    pub kind: DataKind,
    /// The object's ID.
    pub id: String,
    /// The object's name as the reference gives it.
    pub name: String,
    /// Absolute path inside the container.
    pub target: String,
    /// Owner (numeric, as a string; Docker's default "0").
    pub uid: String,
    /// Group (numeric, as a string; Docker's default "0").
    pub gid: String,
    /// Permission bits (Docker's default 0444).
    pub mode: u32,
}

/// Where a reference's file lands: secrets below `/run/secrets`, configs below `/`, unless
/// the target is absolute.
fn target_path(kind: DataKind, file: Option<&str>, name: &str) -> String {
    let file = file.filter(|f| !f.is_empty()).unwrap_or(name);
    if file.starts_with('/') {
        return file.to_string();
    }
    match kind {
        DataKind::Secret => format!("/run/secrets/{file}"),
        DataKind::Config => format!("/{file}"),
    }
}

/// The secret and config files of a container spec, in spec order.
pub fn references(spec: &TaskSpecContainerSpec) -> Vec<FileRef> {
    let mut out = Vec::new();
    for s in spec.secrets.iter().flatten() {
        let name = s.secret_name.clone().unwrap_or_default();
        // Without `File` there is nothing to mount (the manager refuses such references).
        let Some(f) = s.file.as_ref() else { continue };
        let f = Some(f);
        out.push(FileRef {
            kind: DataKind::Secret,
            id: s.secret_id.clone().unwrap_or_default(),
            target: target_path(DataKind::Secret, f.and_then(|f| f.name.as_deref()), &name),
            uid: f.and_then(|f| f.uid.clone()).unwrap_or_else(|| "0".into()),
            gid: f.and_then(|f| f.gid.clone()).unwrap_or_else(|| "0".into()),
            mode: f.and_then(|f| f.mode).unwrap_or(0o444),
            name,
        });
    }
    for c in spec.configs.iter().flatten() {
        let name = c.config_name.clone().unwrap_or_default();
        // A `Runtime` config (a Windows credential spec) is not a file.
        let Some(f) = c.file.as_ref() else { continue };
        let f = Some(f);
        out.push(FileRef {
            kind: DataKind::Config,
            id: c.config_id.clone().unwrap_or_default(),
            target: target_path(DataKind::Config, f.and_then(|f| f.name.as_deref()), &name),
            uid: f.and_then(|f| f.uid.clone()).unwrap_or_else(|| "0".into()),
            gid: f.and_then(|f| f.gid.clone()).unwrap_or_else(|| "0".into()),
            mode: f.and_then(|f| f.mode).unwrap_or(0o444),
            name,
        });
    }
    out
}

/// A secret's or config's opened data as a node receives it with its assignments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPayload {
    /// Secret or config.
    pub kind: DataKind,
    /// The object's ID.
    pub id: String,
    /// The data, base64.
    pub data: String,
}

impl ClusterState {
    /// The secrets or the configs.
    pub fn data_objects(&self, kind: DataKind) -> &BTreeMap<String, DataObject> {
        match kind {
            DataKind::Secret => &self.secrets,
            DataKind::Config => &self.configs,
        }
    }

    fn data_objects_mut(&mut self, kind: DataKind) -> &mut BTreeMap<String, DataObject> {
        match kind {
            DataKind::Secret => &mut self.secrets,
            DataKind::Config => &mut self.configs,
        }
    }

    /// Names of the services whose tasks use object `id`.
    pub fn data_users(&self, kind: DataKind, id: &str) -> Vec<String> {
        self.services
            .values()
            .filter_map(|r| {
                let spec = r.service.spec.as_ref()?;
                let c = spec.task_template.as_ref()?.container_spec.as_ref()?;
                // Every reference counts, files or not (a runtime config is still in use).
                let used = match kind {
                    DataKind::Secret => c
                        .secrets
                        .iter()
                        .flatten()
                        .any(|r| r.secret_id.as_deref() == Some(id)),
                    DataKind::Config => c
                        .configs
                        .iter()
                        .flatten()
                        .any(|r| r.config_id.as_deref() == Some(id)),
                };
                used.then(|| spec.name.clone().unwrap_or_default())
            })
            .collect()
    }

    pub(crate) fn apply_create_data(
        &mut self,
        kind: DataKind,
        mut object: DataObject,
        index: u64,
        at: &str,
    ) -> Outcome {
        let map = self.data_objects_mut(kind);
        if map.values().any(|o| o.name == object.name) {
            return Outcome::Conflict(format!(
                "rpc error: code = AlreadyExists desc = {} {} already exists",
                kind.noun(),
                object.name
            ));
        }
        object.version = index;
        object.created_at = at.to_string();
        object.updated_at = at.to_string();
        map.insert(object.id.clone(), object);
        Outcome::Done
    }

    pub(crate) fn apply_update_data(
        &mut self,
        kind: DataKind,
        id: &str,
        expected: u64,
        labels: BTreeMap<String, String>,
        index: u64,
        at: &str,
    ) -> Outcome {
        let Some(object) = self.data_objects_mut(kind).get_mut(id) else {
            return Outcome::NotFound(format!("{} {id} not found", kind.noun()));
        };
        if object.version != expected {
            return Outcome::Conflict(format!(
                "update out of sequence: {} version {expected} is not the current version {}",
                kind.noun(),
                object.version
            ));
        }
        object.labels = labels;
        object.version = index;
        object.updated_at = at.to_string();
        Outcome::Done
    }

    pub(crate) fn apply_remove_data(&mut self, kind: DataKind, id: &str) -> Outcome {
        let Some(object) = self.data_objects(kind).get(id) else {
            return Outcome::NotFound(format!("{} {id} not found", kind.noun()));
        };
        let users = self.data_users(kind, id);
        if !users.is_empty() {
            let plural = if users.len() > 1 { "s" } else { "" };
            return Outcome::Invalid(format!(
                "rpc error: code = InvalidArgument desc = {} '{}' is in use by the following service{plural}: {}",
                kind.noun(),
                object.name,
                users.join(", ")
            ));
        }
        self.data_objects_mut(kind).remove(id);
        Outcome::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::state::{Command, Request, ServiceRecord};
    use bollard_stubs::models::{
        Service, ServiceSpec, TaskSpec, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets,
    };

    fn req(command: Command) -> Request {
        Request {
            at: "2026-11-29T00:00:00Z".into(),
            command,
        }
    }

    fn object(id: &str, name: &str) -> DataObject {
        DataObject {
            id: id.into(),
            name: name.into(),
            sealed: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_unique_per_kind_and_removal_waits_for_users() {
        let mut s = ClusterState::default();
        let create = |kind, o| {
            req(Command::CreateData {
                kind,
                object: Box::new(o),
            })
        };
        assert_eq!(
            s.apply(1, create(DataKind::Secret, object("s1", "db"))),
            Outcome::Done
        );
        assert!(matches!(
            s.apply(2, create(DataKind::Secret, object("s2", "db"))),
            Outcome::Conflict(m) if m.contains("secret db already exists")
        ));
        // A config may share a secret's name.
        assert_eq!(
            s.apply(3, create(DataKind::Config, object("c1", "db"))),
            Outcome::Done
        );
        let spec = ServiceSpec {
            name: Some("web".into()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    secrets: Some(vec![TaskSpecContainerSpecSecrets {
                        file: Some(TaskSpecContainerSpecFile {
                            name: Some("db".into()),
                            ..Default::default()
                        }),
                        secret_id: Some("s1".into()),
                        secret_name: Some("db".into()),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        s.services.insert(
            "w".into(),
            ServiceRecord {
                service: Service {
                    id: Some("w".into()),
                    spec: Some(spec),
                    ..Default::default()
                },
                previous_spec: None,
            },
        );
        let remove = |kind, id: &str| {
            req(Command::RemoveData {
                kind,
                id: id.into(),
            })
        };
        let before = s.clone();
        assert!(matches!(
            s.apply(4, remove(DataKind::Secret, "s1")),
            Outcome::Invalid(m) if m.contains("secret 'db' is in use by the following service: web")
        ));
        assert_eq!(s, before);
        assert_eq!(s.apply(5, remove(DataKind::Config, "c1")), Outcome::Done);
        s.services.clear();
        assert_eq!(s.apply(6, remove(DataKind::Secret, "s1")), Outcome::Done);
        assert!(s.secrets.is_empty() && s.configs.is_empty());
    }

    #[test]
    fn label_updates_are_guarded_by_version() {
        let mut s = ClusterState::default();
        s.apply(
            7,
            req(Command::CreateData {
                kind: DataKind::Config,
                object: Box::new(object("c", "app")),
            }),
        );
        let update = |version| {
            req(Command::UpdateDataLabels {
                kind: DataKind::Config,
                id: "c".into(),
                version,
                labels: [("a".to_string(), "b".to_string())].into(),
            })
        };
        assert!(matches!(s.apply(8, update(6)), Outcome::Conflict(_)));
        assert_eq!(s.apply(9, update(7)), Outcome::Done);
        assert_eq!(s.configs["c"].version, 9);
        assert_eq!(s.configs["c"].labels["a"], "b");
    }

    #[test]
    fn file_targets_follow_docker() {
        let spec: TaskSpecContainerSpec = serde_json::from_value(serde_json::json!({
            "Secrets": [
                {"SecretID": "s", "SecretName": "db", "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292}},
                {"SecretID": "t", "SecretName": "tls", "File": {"Name": "/etc/tls.pem", "UID": "100", "GID": "101", "Mode": 256}}
            ],
            "Configs": [
                {"ConfigID": "c", "ConfigName": "app", "File": {"Name": "app.conf"}},
                {"ConfigID": "r", "ConfigName": "cred", "Runtime": {}}
            ]
        }))
        .unwrap();
        let refs = references(&spec);
        assert_eq!(refs[0].target, "/run/secrets/db");
        assert_eq!((refs[0].mode, refs[0].uid.as_str()), (0o444, "0"));
        assert_eq!(refs[1].target, "/etc/tls.pem");
        assert_eq!(
            (refs[1].mode, refs[1].uid.as_str(), refs[1].gid.as_str()),
            (0o400, "100", "101")
        );
        assert_eq!(refs[2].target, "/app.conf");
        assert_eq!(refs[2].kind, DataKind::Config);
        assert_eq!(refs.len(), 3, "a runtime config is not a file");
    }
}
