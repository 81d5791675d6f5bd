//! The Raft log, vote, commit point and purge point in redb, fsynced on every append so an
//! acknowledged entry survives a crash.

use super::TypeConfig;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// Log entries by index, JSON.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Small records: vote, committed, purged, snapshot meta and data.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

type SErr = StorageError<u64>;

/// Creates the tables so read transactions never meet a missing one.
pub(crate) fn init_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(META)?;
    txn.commit()?;
    Ok(())
}

/// Reads one JSON record from the meta table.
pub(crate) fn get_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = txn.open_table(META).map_err(|e| e.to_string())?;
    let Some(v) = table.get(key).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    serde_json::from_slice(v.value())
        .map(Some)
        .map_err(|e| format!("decoding {key}: {e}"))
}

/// Writes meta records in one transaction, off the async threads (commit fsyncs).
pub(crate) async fn put_meta(
    db: &Arc<Database>,
    records: Vec<(&'static str, Vec<u8>)>,
    durable: bool,
) -> Result<(), String> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || -> Result<(), redb::Error> {
        let mut txn = db.begin_write()?;
        if !durable {
            // The next durable commit (every append is one) carries it to disk.
            txn.set_durability(Durability::None)
                .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
        }
        {
            let mut table = txn.open_table(META)?;
            for (k, v) in &records {
                table.insert(*k, v.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, SErr> {
    serde_json::to_vec(v).map_err(|e| StorageIOError::write(&e).into())
}

/// The log store; clones share the database.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> Self {
        Self { db }
    }

    fn read_range(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        let rd = |e: &dyn std::fmt::Display| -> SErr {
            StorageIOError::read_logs(&std::io::Error::other(e.to_string())).into()
        };
        let txn = self.db.begin_read().map_err(|e| rd(&e))?;
        let table = txn.open_table(LOG).map_err(|e| rd(&e))?;
        let mut out = Vec::new();
        for item in table.range::<u64>(range).map_err(|e| rd(&e))? {
            let (_, v) = item.map_err(|e| rd(&e))?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| rd(&e))?);
        }
        Ok(out)
    }

    fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SErr> {
        get_meta(&self.db, key).map_err(|e| StorageIOError::read(&std::io::Error::other(e)).into())
    }

    async fn put(&self, key: &'static str, v: Vec<u8>, durable: bool) -> Result<(), SErr> {
        put_meta(&self.db, vec![(key, v)], durable)
            .await
            .map_err(|e| StorageIOError::write(&std::io::Error::other(e)).into())
    }

    /// Runs a log-table write off the async threads.
    async fn write_log(
        &self,
        f: impl FnOnce(&mut redb::Table<u64, &[u8]>) -> Result<(), redb::Error> + Send + 'static,
        meta: Option<(&'static str, Vec<u8>)>,
    ) -> Result<(), std::io::Error> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                f(&mut table)?;
            }
            if let Some((k, v)) = meta {
                let mut table = txn.open_table(META)?;
                table.insert(k, v.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        self.read_range((range.start_bound().cloned(), range.end_bound().cloned()))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let purged: Option<LogId<u64>> = self.meta(PURGED)?;
        let rd = |e: &dyn std::fmt::Display| -> SErr {
            StorageIOError::read_logs(&std::io::Error::other(e.to_string())).into()
        };
        let txn = self.db.begin_read().map_err(|e| rd(&e))?;
        let table = txn.open_table(LOG).map_err(|e| rd(&e))?;
        let last = match table.last().map_err(|e| rd(&e))? {
            Some((_, v)) => {
                let e: Entry<TypeConfig> = serde_json::from_slice(v.value()).map_err(|e| rd(&e))?;
                Some(e.log_id)
            }
            None => purged,
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), SErr> {
        self.put(VOTE, json(vote)?, true)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, SErr> {
        self.meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), SErr> {
        self.put(COMMITTED, json(&committed)?, false).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, SErr> {
        Ok(self.meta::<Option<LogId<u64>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for e in entries {
            rows.push((e.log_id.index, json(&e)?));
        }
        let res = self
            .write_log(
                move |t| {
                    for (i, v) in &rows {
                        t.insert(*i, v.as_slice())?;
                    }
                    Ok(())
                },
                None,
            )
            .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_logs(&e).into();
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        let from = log_id.index;
        self.write_log(move |t| t.retain_in(from.., |_, _| false).map_err(Into::into), None)
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        let upto = log_id.index;
        self.write_log(
            move |t| t.retain_in(..=upto, |_, _| false).map_err(Into::into),
            Some((PURGED, json(&log_id)?)),
        )
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
