//! The state machine: the `ClusterState` in memory, its snapshots in redb. The state is not
//! persisted per entry; on open it is rebuilt from the last snapshot and openraft re-applies
//! the committed log behind it.

// openraft's storage and network traits fix these error types; helpers return them as is.
#![allow(clippy::result_large_err)]

use super::TypeConfig;
use super::log_store::{META, get_meta, put_meta};
use crate::swarm::state::{ClusterState, Outcome};
use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use redb::Database;
use std::io::Cursor;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

use super::RaftPeer;

const SNAPSHOT_META: &str = "snapshot_meta";
const SNAPSHOT_DATA: &str = "snapshot_data";

type SErr = StorageError<u64>;

/// What has been applied, kept together so a snapshot sees one consistent view.
#[derive(Default)]
pub(crate) struct Applied {
    pub(crate) state: ClusterState,
    pub(crate) last_applied: Option<LogId<u64>>,
    pub(crate) membership: StoredMembership<u64, RaftPeer>,
}

/// Shared between the state machine (writer) and the store's readers.
pub(crate) struct Shared {
    pub(crate) applied: RwLock<Applied>,
    pub(crate) applied_tx: watch::Sender<u64>,
}

impl Shared {
    fn publish(&self, index: u64) {
        self.applied_tx.send_replace(index);
    }
}

/// The state machine handed to openraft.
pub(crate) struct StateMachine {
    db: Arc<Database>,
    shared: Arc<Shared>,
}

fn io_read(e: impl std::fmt::Display) -> SErr {
    StorageIOError::read_snapshot(None, &std::io::Error::other(e.to_string())).into()
}

fn io_write(e: impl std::fmt::Display) -> SErr {
    StorageIOError::write_snapshot(None, &std::io::Error::other(e.to_string())).into()
}

impl StateMachine {
    /// Restores the state from the last stored snapshot.
    pub(crate) fn open(db: Arc<Database>) -> Result<(Self, Arc<Shared>), String> {
        let mut applied = Applied::default();
        if let Some(meta) = get_meta::<SnapshotMeta<u64, RaftPeer>>(&db, SNAPSHOT_META)? {
            let data = read_data(&db)?;
            applied.state =
                serde_json::from_slice(&data).map_err(|e| format!("decoding the snapshot: {e}"))?;
            applied.last_applied = meta.last_log_id;
            applied.membership = meta.last_membership;
        }
        let index = applied.last_applied.map(|l| l.index).unwrap_or(0);
        let (applied_tx, _) = watch::channel(index);
        let shared = Arc::new(Shared {
            applied: RwLock::new(applied),
            applied_tx,
        });
        Ok((
            Self {
                db,
                shared: shared.clone(),
            },
            shared,
        ))
    }
}

fn read_data(db: &Database) -> Result<Vec<u8>, String> {
    use redb::ReadableDatabase;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = txn.open_table(META).map_err(|e| e.to_string())?;
    let v = table.get(SNAPSHOT_DATA).map_err(|e| e.to_string())?;
    Ok(v.map(|v| v.value().to_vec()).unwrap_or_default())
}

async fn store_snapshot(
    db: &Arc<Database>,
    meta: &SnapshotMeta<u64, RaftPeer>,
    data: Vec<u8>,
) -> Result<(), SErr> {
    let meta = serde_json::to_vec(meta).map_err(io_write)?;
    put_meta(db, vec![(SNAPSHOT_META, meta), (SNAPSHOT_DATA, data)], true)
        .await
        .map_err(io_write)
}

/// Builds snapshots from a consistent view of the applied state.
pub(crate) struct Builder {
    db: Arc<Database>,
    shared: Arc<Shared>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let (data, last_log_id, last_membership) = {
            let a = self.shared.applied.read().map_err(io_read)?;
            (
                serde_json::to_vec(&a.state).map_err(io_write)?,
                a.last_applied,
                a.membership.clone(),
            )
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let snapshot_id = match last_log_id {
            Some(l) => format!("{}-{}-{nanos}", l.leader_id, l.index),
            None => format!("none-{nanos}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        store_snapshot(&self.db, &meta, data.clone()).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, RaftPeer>), SErr> {
        let a = self.shared.applied.read().map_err(io_read)?;
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, SErr>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let last = {
            let mut a = self.shared.applied.write().map_err(|e| {
                StorageIOError::write_state_machine(&std::io::Error::other(e.to_string()))
            })?;
            for entry in entries {
                a.last_applied = Some(entry.log_id);
                out.push(match entry.payload {
                    EntryPayload::Blank => Outcome::Done,
                    EntryPayload::Normal(req) => a.state.apply(entry.log_id.index, req),
                    EntryPayload::Membership(m) => {
                        a.membership = StoredMembership::new(Some(entry.log_id), m);
                        Outcome::Done
                    }
                });
            }
            a.last_applied.map(|l| l.index).unwrap_or(0)
        };
        self.shared.publish(last);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        Builder {
            db: self.db.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, RaftPeer>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SErr> {
        let data = snapshot.into_inner();
        let state: ClusterState = serde_json::from_slice(&data).map_err(io_read)?;
        store_snapshot(&self.db, meta, data).await?;
        let index = {
            let mut a = self.shared.applied.write().map_err(io_write)?;
            a.state = state;
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
            meta.last_log_id.map(|l| l.index).unwrap_or(0)
        };
        self.shared.publish(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        let Some(meta) =
            get_meta::<SnapshotMeta<u64, RaftPeer>>(&self.db, SNAPSHOT_META).map_err(io_read)?
        else {
            return Ok(None);
        };
        let data = read_data(&self.db).map_err(io_read)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
