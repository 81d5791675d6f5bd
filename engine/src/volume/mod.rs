//! Volumes: the local driver's named and anonymous volumes.
//!
//! Records live in the `volumes` table; a volume's files are at `<root>/volumes/<name>/_data`,
//! which is a mount point while containers use a volume created with `type`/`device` options.
//! The `container_volumes` table says which volumes each container mounts: that, not whether
//! the container runs, makes a volume in use (as in Docker).

mod copy;
mod error;
mod local;
pub mod mounts;

pub use error::VolumeError;

use crate::Result;
use crate::state::{CONTAINER_VOLUMES, CONTAINERS, StateStore, VOLUMES};
use error::io_err;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The label Docker puts on anonymous volumes (prune removes only those unless `all`).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only driver there is.
pub const LOCAL_DRIVER: &str = "local";

/// A volume as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeRecord {
    /// The name (64 hex digits for anonymous volumes).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// Creation time (RFC 3339, seconds).
    pub created_at: String,
    /// User labels (`None` when the request had none, shown as `null` like Docker).
    pub labels: Option<BTreeMap<String, String>>,
    /// Driver options (`type`, `device`, `o`).
    pub options: Option<BTreeMap<String, String>>,
}

impl VolumeRecord {
    /// Whether the volume was created for a container without a name.
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }

    fn label_map(&self) -> HashMap<String, String> {
        self.labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Size and users of a volume (`/system/df`, `size` requests).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct UsageData {
    /// Bytes used by its files.
    #[serde(rename = "Size")]
    pub size: i64,
    /// Containers that reference it.
    #[serde(rename = "RefCount")]
    pub ref_count: i64,
}

/// A volume as the Engine API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    /// Creation time.
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    /// `local`.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// User labels.
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `<root>/volumes/<name>/_data`.
    #[serde(rename = "Mountpoint")]
    pub mountpoint: String,
    /// The name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Driver options.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    /// `local`.
    #[serde(rename = "Scope")]
    pub scope: String,
    /// Only when asked for.
    #[serde(rename = "UsageData", skip_serializing_if = "Option::is_none", default)]
    pub usage_data: Option<UsageData>,
}

/// What `create` takes (the body of `POST /volumes/create`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateOptions {
    /// The name; a random 64-hex name when empty.
    #[serde(rename = "Name", default)]
    pub name: Option<String>,
    /// The driver; `local` when empty.
    #[serde(rename = "Driver", default)]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(rename = "DriverOpts", default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Labels.
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// List and prune filters, already split by the caller.
#[derive(Debug, Clone, Default)]
pub struct VolumeFilters {
    /// `dangling`: only unused (`true`) or only used (`false`) volumes.
    pub dangling: Option<bool>,
    /// `driver` values (any matches).
    pub driver: Vec<String>,
    /// `name` substrings (any matches).
    pub name: Vec<String>,
    /// `label` filters (`key` or `key=value`, all must match).
    pub label: Vec<String>,
    /// `label!` filters (none may match).
    pub label_not: Vec<String>,
    /// prune: named volumes too.
    pub all: bool,
}

fn match_label(labels: &HashMap<String, String>, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f),
    }
}

/// The engine's volume service; cheap to clone.
#[derive(Clone)]
pub struct VolumeService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for VolumeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeService")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

struct Inner {
    /// `<root>/volumes`.
    dir: PathBuf,
    state: StateStore,
    /// Users of each volume mounted from driver options.
    mounted: Mutex<HashMap<String, u32>>,
    /// Volumes each running container holds (released at its exit).
    held: Mutex<HashMap<String, Vec<String>>>,
    /// Serialises create and remove of one name against each other.
    lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode(key: &str, b: &[u8]) -> Result<VolumeRecord> {
    serde_json::from_slice(b).map_err(|source| {
        crate::state::StateError::Corrupt {
            key: key.to_string(),
            source,
        }
        .into()
    })
}

fn now_seconds() -> String {
    let t = berth_runtime::state::now_rfc3339();
    match t.split_once('.') {
        Some((s, _)) => format!("{s}Z"),
        None => t,
    }
}

/// Checks a local volume name as Docker's local driver does.
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    if name.len() == 1 {
        return Err(VolumeError::Invalid(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    let ok = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '_' | '.' | '-')));
    if !ok || name.is_empty() {
        return Err(VolumeError::Invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

impl VolumeService {
    /// Opens the service on `<root>/volumes`; removes directories a crash left without a
    /// record, and mounts nothing (volumes are mounted on first use).
    pub fn open(root: &Path, state: StateStore) -> Result<Self> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let svc = Self {
            inner: Arc::new(Inner {
                dir,
                state,
                mounted: Default::default(),
                held: Default::default(),
                lock: Mutex::new(()),
            }),
        };
        svc.remove_orphans()?;
        Ok(svc)
    }

    fn remove_orphans(&self) -> Result<()> {
        let known: Vec<String> = self.records()?.into_iter().map(|r| r.name).collect();
        let Ok(rd) = std::fs::read_dir(&self.inner.dir) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                continue;
            }
            let data = e.path().join("_data");
            if local::is_mounted(&data) {
                let _ = local::unmount(&data);
            }
            if !local::is_mounted(&data) {
                tracing::info!(volume = %name, "removing a volume directory without a record");
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    /// `<root>/volumes/<name>/_data`.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.inner.dir.join(name).join("_data")
    }

    fn records(&self) -> Result<Vec<VolumeRecord>> {
        self.inner
            .state
            .entries(VOLUMES)?
            .into_iter()
            .map(|(k, v)| decode(&k, &v))
            .collect()
    }

    fn record(&self, name: &str) -> Result<Option<VolumeRecord>> {
        let raw = self.inner.state.read(|txn| {
            let t = txn.open_table(VOLUMES)?;
            Ok(t.get(name)?.map(|v| v.value().to_vec()))
        })?;
        raw.map(|b| decode(name, &b)).transpose()
    }

    fn view(&self, r: &VolumeRecord) -> Volume {
        Volume {
            created_at: r.created_at.clone(),
            driver: r.driver.clone(),
            labels: r.labels.clone(),
            mountpoint: self.data_path(&r.name).to_string_lossy().into_owned(),
            name: r.name.clone(),
            options: r.options.clone(),
            scope: "local".into(),
            usage_data: None,
        }
    }

    /// `docker volume create`: an existing volume of that name is returned as it is.
    pub fn create(&self, opts: CreateOptions) -> Result<Volume> {
        let (rec, _) = self.create_record(opts)?;
        Ok(self.view(&rec))
    }

    /// Creates a volume; also says whether it is new.
    fn create_record(&self, opts: CreateOptions) -> Result<(VolumeRecord, bool)> {
        let name = match opts.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => crate::container::name::new_id(),
        };
        let driver = opts
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| LOCAL_DRIVER.into());
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::NoPlugin {
                op: "create",
                name,
                driver,
            }
            .into());
        }
        validate_name(&name)?;
        let _g = lock(&self.inner.lock);
        if let Some(old) = self.record(&name)? {
            return Ok((old, false));
        }
        let options = opts.driver_opts.filter(|o| !o.is_empty());
        if let Some(o) = &options {
            local::validate_opts(o).map_err(|e| match e {
                VolumeError::Invalid(m) => VolumeError::Invalid(format!("create {name}: {m}")),
                other => other,
            })?;
        }
        let rec = VolumeRecord {
            name: name.clone(),
            driver,
            created_at: now_seconds(),
            labels: opts.labels,
            options,
        };
        // The directory first: a crash before the record leaves an orphan `open` removes.
        let data = self.data_path(&name);
        std::fs::create_dir_all(&data).map_err(io_err("create", &data))?;
        let json =
            serde_json::to_vec(&rec).map_err(|source| crate::state::StateError::Corrupt {
                key: name.clone(),
                source,
            })?;
        self.inner.state.write(|txn| {
            txn.open_table(VOLUMES)?
                .insert(name.as_str(), json.as_slice())?;
            Ok(())
        })?;
        tracing::debug!(volume = %name, "created");
        Ok((rec, true))
    }

    /// `docker volume inspect`.
    pub fn inspect(&self, name: &str) -> Result<Volume> {
        let rec = self
            .record(name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        Ok(self.view(&rec))
    }

    /// Container IDs using each volume (containers whose record still exists).
    fn users(&self) -> Result<HashMap<String, Vec<String>>> {
        let rows = self.inner.state.read(|txn| {
            let t = txn.open_table(CONTAINER_VOLUMES)?;
            let c = txn.open_table(CONTAINERS)?;
            let mut out = Vec::new();
            for e in t.iter()? {
                let (k, v) = e?;
                if c.get(k.value())?.is_some() {
                    out.push((k.value().to_string(), v.value().to_vec()));
                }
            }
            Ok(out)
        })?;
        let mut users: HashMap<String, Vec<String>> = HashMap::new();
        for (cid, raw) in rows {
            for m in mounts::decode_list(&cid, &raw)? {
                let ids = users.entry(m.name).or_default();
                if !ids.contains(&cid) {
                    ids.push(cid.clone());
                }
            }
        }
        Ok(users)
    }

    /// `docker volume ls`, sorted by name; `size` fills UsageData.
    pub fn list(&self, f: &VolumeFilters, size: bool) -> Result<Vec<Volume>> {
        let users = self.users()?;
        let mut out = Vec::new();
        for r in self.records()? {
            let labels = r.label_map();
            let used = users.get(&r.name).map_or(0, Vec::len);
            if f.dangling.is_some_and(|d| d != (used == 0))
                || (!f.driver.is_empty() && !f.driver.contains(&r.driver))
                || (!f.name.is_empty() && !f.name.iter().any(|n| r.name.contains(n.as_str())))
                || !f.label.iter().all(|l| match_label(&labels, l))
                || f.label_not.iter().any(|l| match_label(&labels, l))
            {
                continue;
            }
            let mut v = self.view(&r);
            if size {
                v.usage_data = Some(UsageData {
                    size: local::size(&self.data_path(&r.name)) as i64,
                    ref_count: used as i64,
                });
            }
            out.push(v);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `docker volume rm`: refused while containers use it; `force` only makes a missing
    /// volume no error, as in Docker.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        match self.remove_unused(name)? {
            Removed::Yes(_) => Ok(()),
            Removed::Missing if force => Ok(()),
            Removed::Missing => Err(VolumeError::NotFound(name.to_string()).into()),
            Removed::InUse(ids) => Err(VolumeError::InUse {
                name: name.to_string(),
                ids,
            }
            .into()),
        }
    }

    /// Removes the record (in the same transaction that checks it is unused), then files.
    fn remove_unused(&self, name: &str) -> Result<Removed> {
        let _g = lock(&self.inner.lock);
        let users = self.users()?;
        if let Some(ids) = users.get(name).filter(|ids| !ids.is_empty()) {
            return Ok(Removed::InUse(ids.clone()));
        }
        if lock(&self.inner.mounted).get(name).copied().unwrap_or(0) > 0 {
            return Ok(Removed::InUse(Vec::new()));
        }
        let gone = self.inner.state.write(|txn| {
            let mut t = txn.open_table(VOLUMES)?;
            let gone = t.remove(name)?.is_some();
            Ok(gone)
        })?;
        if !gone {
            return Ok(Removed::Missing);
        }
        let data = self.data_path(name);
        if local::is_mounted(&data) {
            local::unmount(&data)?;
        }
        let size = local::size(&data);
        let d = self.inner.dir.join(name);
        std::fs::remove_dir_all(&d).map_err(io_err("remove", &d))?;
        tracing::debug!(volume = %name, "removed");
        Ok(Removed::Yes(size))
    }

    /// `docker volume prune`: unused anonymous volumes (every unused volume with `all`)
    /// matching the label filters. Returns the names removed and the bytes freed.
    pub fn prune(&self, f: &VolumeFilters) -> Result<(Vec<String>, u64)> {
        let users = self.users()?;
        let mut names = Vec::new();
        let mut freed = 0;
        for r in self.records()? {
            let labels = r.label_map();
            if users.get(&r.name).is_some_and(|u| !u.is_empty())
                || (!f.all && !r.is_anonymous())
                || !f.label.iter().all(|l| match_label(&labels, l))
                || f.label_not.iter().any(|l| match_label(&labels, l))
            {
                continue;
            }
            match self.remove_unused(&r.name) {
                Ok(Removed::Yes(size)) => {
                    freed += size;
                    names.push(r.name);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(volume = %r.name, error = %e, "prune"),
            }
        }
        Ok((names, freed))
    }

    /// Volume counts and sizes for `/system/df`: every volume with UsageData.
    pub fn disk_usage(&self) -> Result<Vec<Volume>> {
        self.list(&VolumeFilters::default(), true)
    }

    /// Mounts a volume's driver-option file system if this is its first user.
    fn acquire(&self, rec: &VolumeRecord) -> Result<PathBuf> {
        let data = self.data_path(&rec.name);
        if !data.is_dir() {
            std::fs::create_dir_all(&data).map_err(io_err("create", &data))?;
        }
        if let Some(opts) = &rec.options {
            let mut m = lock(&self.inner.mounted);
            let n = m.entry(rec.name.clone()).or_insert(0);
            if *n == 0 && !local::is_mounted(&data) {
                local::mount(opts, &data)?;
            }
            *n += 1;
        }
        Ok(data)
    }

    /// Drops one user of a volume; its file system is unmounted with the last.
    fn release(&self, name: &str) {
        let mut m = lock(&self.inner.mounted);
        let Some(n) = m.get_mut(name) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(name);
            let data = self.data_path(name);
            if local::is_mounted(&data)
                && let Err(e) = local::unmount(&data)
            {
                tracing::warn!(volume = %name, error = %e, "unmount");
            }
        }
    }
}

enum Removed {
    Yes(u64),
    Missing,
    InUse(Vec<String>),
}
