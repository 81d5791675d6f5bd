//! The engine's metadata in one transactional store (redb): images and tags today;
//! containers, networks and volumes add their own tables to the same database.

use crate::image::digest::Digest;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Image records by image ID (`sha256:` of the config), as JSON.
pub const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
/// Full normalized references (`docker.io/library/busybox:latest`) to image IDs.
pub const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
/// Container records by container ID, as JSON (owned by `container::record`).
pub const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
/// Container names (without the leading `/`) to container IDs.
pub const CONTAINER_NAMES: TableDefinition<&str, &str> = TableDefinition::new("container_names");
/// Volume records by name, as JSON (owned by `volume`).
pub const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");
/// The volume mounts of each container by container ID, as JSON (owned by `volume`).
pub const CONTAINER_VOLUMES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("container_volumes");

/// Network records by network ID, as JSON (owned by `network`).
pub const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
/// Network names to network IDs.
pub const NETWORK_NAMES: TableDefinition<&str, &str> = TableDefinition::new("network_names");
/// IPAM leases: `<network id>/<ipv4>` to the holder (a container ID, `gateway` or `reserved`).
pub const IP_LEASES: TableDefinition<&str, &str> = TableDefinition::new("ip_leases");
/// Live endpoints: `<network id>/<container id>` to the endpoint as JSON (owned by `network`).
pub const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
/// Network sandboxes: container ID to its namespace path and published ports, as JSON.
pub const SANDBOXES: TableDefinition<&str, &[u8]> = TableDefinition::new("sandboxes");

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database failed.
    #[error("state store {path}: {op}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        source: Box<redb::Error>,
    },
    /// A stored record could not be decoded.
    #[error("state store: corrupt record {key}: {source}")]
    Corrupt {
        /// The key of the record.
        key: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// No image with this ID or reference.
    #[error("no such image: {0}")]
    NoSuchImage(String),
}

/// One layer of an image, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as distributed (usually compressed).
    pub digest: Digest,
    /// Media type of that blob.
    pub media_type: String,
    /// Size of that blob.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Chain ID, the key of the layer's snapshot.
    pub chain_id: Digest,
    /// Size of the uncompressed tar.
    #[serde(default)]
    pub diff_size: u64,
}

/// An image as stored in the metadata store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Image ID: the digest of its config.
    pub id: Digest,
    /// Digest of the manifest the image was pulled, loaded or built as.
    pub manifest_digest: Digest,
    /// Media type of that manifest.
    pub manifest_media_type: String,
    /// `repo@digest` references under which registries know it.
    pub repo_digests: Vec<String>,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Creation time from the config (RFC 3339), if any.
    pub created: Option<String>,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
}

/// The engine's metadata store.
#[derive(Clone)]
pub struct StateStore {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish()
    }
}

impl StateStore {
    /// Opens (creating if needed) the database file and its tables.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let err = |op| {
            let path = path.to_path_buf();
            move |e: redb::Error| StateError::Db {
                path,
                op,
                source: Box::new(e),
            }
        };
        let db = Database::create(path).map_err(|e| err("open")(e.into()))?;
        let s = Self {
            db: Arc::new(db),
            path: path.to_path_buf(),
        };
        s.write(|txn| {
            txn.open_table(IMAGES)?;
            txn.open_table(TAGS)?;
            txn.open_table(CONTAINERS)?;
            txn.open_table(CONTAINER_NAMES)?;
            txn.open_table(VOLUMES)?;
            txn.open_table(CONTAINER_VOLUMES)?;
            txn.open_table(NETWORKS)?;
            txn.open_table(NETWORK_NAMES)?;
            txn.open_table(IP_LEASES)?;
            txn.open_table(ENDPOINTS)?;
            txn.open_table(SANDBOXES)?;
            Ok(())
        })?;
        Ok(s)
    }

    /// The database, for modules that keep their own tables in it.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn err(&self, op: &'static str) -> impl FnOnce(redb::Error) -> StateError + '_ {
        move |e| StateError::Db {
            path: self.path.clone(),
            op,
            source: Box::new(e),
        }
    }

    /// Runs `f` in one write transaction and commits it; nothing is written if `f` fails.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StateError> {
        self.commit(f, true)
    }

    /// Like [`Self::write`], without waiting for the disk: the commit is visible at once and
    /// reaches the disk with the next durable one. For writes that a crash may lose because
    /// recovery redoes them (completions, never intents that recovery reads).
    pub fn write_lazy<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StateError> {
        self.commit(f, false)
    }

    fn commit<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
        durable: bool,
    ) -> Result<T, StateError> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| self.err("begin write")(e.into()))?;
        if !durable {
            // Refused only in multi-process modes; a durable commit is then still correct.
            let _ = txn.set_durability(redb::Durability::None);
        }
        let out = f(&txn).map_err(self.err("write"))?;
        txn.commit().map_err(|e| self.err("commit")(e.into()))?;
        Ok(out)
    }

    /// Runs `f` in one read transaction.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StateError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.err("begin read")(e.into()))?;
        f(&txn).map_err(self.err("read"))
    }

    /// Stores an image and points `tags` at it, in one transaction.
    pub fn put_image(&self, rec: &ImageRecord, tags: &[String]) -> Result<(), StateError> {
        let json = serde_json::to_vec(rec).map_err(|source| StateError::Corrupt {
            key: rec.id.to_string(),
            source,
        })?;
        self.write(|txn| {
            let mut images = txn.open_table(IMAGES)?;
            // Keep repo digests gathered by earlier pulls of the same image.
            let merged = match images.get(rec.id.as_str())? {
                Some(old) => match serde_json::from_slice::<ImageRecord>(old.value()) {
                    Ok(mut old_rec) => {
                        for rd in &rec.repo_digests {
                            if !old_rec.repo_digests.contains(rd) {
                                old_rec.repo_digests.push(rd.clone());
                            }
                        }
                        let mut r = rec.clone();
                        r.repo_digests = old_rec.repo_digests;
                        serde_json::to_vec(&r).ok()
                    }
                    Err(_) => None,
                },
                None => None,
            };
            images.insert(rec.id.as_str(), merged.as_deref().unwrap_or(&json))?;
            let mut t = txn.open_table(TAGS)?;
            for tag in tags {
                t.insert(tag.as_str(), rec.id.as_str())?;
            }
            Ok(())
        })
    }

    /// An image by ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StateError> {
        let raw = self.read(|txn| {
            let t = txn.open_table(IMAGES)?;
            Ok(t.get(id.as_str())?.map(|v| v.value().to_vec()))
        })?;
        raw.map(|b| {
            serde_json::from_slice(&b).map_err(|source| StateError::Corrupt {
                key: id.to_string(),
                source,
            })
        })
        .transpose()
    }

    /// Every (key, value) of a table of JSON records.
    pub fn entries(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        self.read(|txn| {
            let t = txn.open_table(table)?;
            let mut v = Vec::new();
            for e in t.iter()? {
                let (k, val) = e?;
                v.push((k.value().to_string(), val.value().to_vec()));
            }
            Ok(v)
        })
    }

    /// Every image.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StateError> {
        let raw = self.entries(IMAGES)?;
        raw.into_iter()
            .map(|(key, b)| {
                serde_json::from_slice(&b).map_err(|source| StateError::Corrupt { key, source })
            })
            .collect()
    }

    /// The image ID a full reference points at.
    pub fn resolve_tag(&self, reference: &str) -> Result<Option<Digest>, StateError> {
        let raw = self.read(|txn| {
            let t = txn.open_table(TAGS)?;
            Ok(t.get(reference)?.map(|v| v.value().to_string()))
        })?;
        Ok(raw.and_then(|s| Digest::parse(&s).ok()))
    }

    /// Every (reference, image ID) pair.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>, StateError> {
        self.read(|txn| {
            let t = txn.open_table(TAGS)?;
            let mut v = Vec::new();
            for e in t.iter()? {
                let (k, val) = e?;
                if let Ok(d) = Digest::parse(val.value()) {
                    v.push((k.value().to_string(), d));
                }
            }
            Ok(v)
        })
    }

    /// Points a reference at an existing image.
    pub fn set_tag(&self, reference: &str, id: &Digest) -> Result<(), StateError> {
        let ok = self.write(|txn| {
            if txn.open_table(IMAGES)?.get(id.as_str())?.is_none() {
                return Ok(false);
            }
            txn.open_table(TAGS)?.insert(reference, id.as_str())?;
            Ok(true)
        })?;
        if ok {
            Ok(())
        } else {
            Err(StateError::NoSuchImage(id.to_string()))
        }
    }

    /// Removes a reference; returns the image it pointed at.
    pub fn remove_tag(&self, reference: &str) -> Result<Option<Digest>, StateError> {
        let old = self.write(|txn| {
            let mut t = txn.open_table(TAGS)?;
            let old = t.remove(reference)?.map(|v| v.value().to_string());
            Ok(old)
        })?;
        Ok(old.and_then(|s| Digest::parse(&s).ok()))
    }

    /// Removes an image and every reference to it; returns the removed references.
    pub fn remove_image(&self, id: &Digest) -> Result<Vec<String>, StateError> {
        self.write(|txn| {
            let mut tags = txn.open_table(TAGS)?;
            let mut gone = Vec::new();
            for e in tags.iter()? {
                let (k, v) = e?;
                if v.value() == id.as_str() {
                    gone.push(k.value().to_string());
                }
            }
            for g in &gone {
                tags.remove(g.as_str())?;
            }
            txn.open_table(IMAGES)?.remove(id.as_str())?;
            Ok(gone)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(&dir.path().join("state.redb")).unwrap();
        let id = Digest::of(b"config");
        let rec = ImageRecord {
            id: id.clone(),
            manifest_digest: Digest::of(b"m"),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            repo_digests: vec!["a@sha256:1".into()],
            layers: vec![],
            created: None,
            size: 0,
        };
        s.put_image(&rec, &["docker.io/library/x:latest".into()])
            .unwrap();
        let mut rec2 = rec.clone();
        rec2.repo_digests = vec!["b@sha256:2".into()];
        s.put_image(&rec2, &[]).unwrap();
        assert_eq!(s.image(&id).unwrap().unwrap().repo_digests.len(), 2);
        assert_eq!(
            s.resolve_tag("docker.io/library/x:latest").unwrap(),
            Some(id.clone())
        );
        s.set_tag("docker.io/library/y:1", &id).unwrap();
        assert!(s.set_tag("z", &Digest::of(b"nope")).is_err());
        assert_eq!(s.tags().unwrap().len(), 2);
        drop(s);
        let s = StateStore::open(&dir.path().join("state.redb")).unwrap();
        let gone = s.remove_image(&id).unwrap();
        assert_eq!(gone.len(), 2);
        assert!(s.images().unwrap().is_empty());
    }
}
