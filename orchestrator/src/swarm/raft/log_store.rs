//! The Raft log, vote, commit point and purge point in redb, fsynced on every append so an
//! acknowledged entry survives a crash.

// openraft's storage and network traits fix these error types; helpers return them as is.
#![allow(clippy::result_large_err)]

use super::TypeConfig;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

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

/// One write for the writer task; everything queued while it fsyncs goes into the next commit.
enum Job {
    Append(Vec<(u64, Vec<u8>)>, Vec<LogId<u64>>, LogFlushed<TypeConfig>),
    Truncate(u64, oneshot::Sender<Result<(), String>>),
    Purge(LogId<u64>, oneshot::Sender<Result<(), String>>),
    Meta(
        &'static str,
        Vec<u8>,
        Option<oneshot::Sender<Result<(), String>>>,
    ),
}

/// The log store; clones share the database, the writer and the unflushed entries.
///
/// openraft 0.9 appends each client write on its own, so an fsync per `append` would cap the
/// cluster at one write per fsync. Appends go to an in-memory tail (readable at once) and a
/// writer task commits everything queued in one durable redb transaction, then acknowledges
/// them all: group commit, still fsynced before openraft counts an entry as persisted.
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
    tail: Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let tail = Arc::new(Mutex::new(BTreeMap::new()));
        tokio::spawn(writer(db.clone(), tail.clone(), rx));
        Self { db, tail, jobs }
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry<TypeConfig>>> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_range(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        let rd = |e: &dyn std::fmt::Display| -> SErr {
            StorageIOError::read_logs(&std::io::Error::other(e.to_string())).into()
        };
        let mut out = BTreeMap::new();
        {
            let txn = self.db.begin_read().map_err(|e| rd(&e))?;
            let table = txn.open_table(LOG).map_err(|e| rd(&e))?;
            for item in table.range::<u64>(range).map_err(|e| rd(&e))? {
                let (k, v) = item.map_err(|e| rd(&e))?;
                let e: Entry<TypeConfig> = serde_json::from_slice(v.value()).map_err(|e| rd(&e))?;
                out.insert(k.value(), e);
            }
        }
        // Unflushed entries are newer than anything stored at the same index.
        for (k, e) in self.tail().range(range) {
            out.insert(*k, e.clone());
        }
        Ok(out.into_values().collect())
    }

    fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SErr> {
        get_meta(&self.db, key).map_err(|e| StorageIOError::read(&std::io::Error::other(e)).into())
    }

    fn send(&self, job: Job) -> Result<(), std::io::Error> {
        self.jobs
            .send(job)
            .map_err(|_| std::io::Error::other("the raft log writer stopped"))
    }

    /// Queues a job and waits until its commit is on disk.
    async fn run(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Job,
    ) -> Result<(), std::io::Error> {
        let (tx, rx) = oneshot::channel();
        self.send(job(tx))?;
        rx.await
            .map_err(|_| std::io::Error::other("the raft log writer stopped"))?
            .map_err(std::io::Error::other)
    }
}

/// Commits queued jobs in batches, one fsync per batch, then acknowledges them.
async fn writer(
    db: Arc<Database>,
    tail: Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(job) = rx.try_recv() {
            batch.push(job);
        }
        let db2 = db.clone();
        let (batch, res) = tokio::task::spawn_blocking(move || {
            let res = commit_batch(&db2, &batch).map_err(|e| e.to_string());
            (batch, res)
        })
        .await
        .unwrap_or_else(|e| (Vec::new(), Err(e.to_string())));
        for job in batch {
            match job {
                Job::Append(_, ids, cb) => {
                    if res.is_ok() {
                        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                        for id in ids {
                            if t.get(&id.index).is_some_and(|e| e.log_id == id) {
                                t.remove(&id.index);
                            }
                        }
                    }
                    cb.log_io_completed(res.clone().map_err(std::io::Error::other));
                }
                Job::Truncate(_, tx) | Job::Purge(_, tx) | Job::Meta(_, _, Some(tx)) => {
                    let _ = tx.send(res.clone());
                }
                Job::Meta(_, _, None) => {
                    if let Err(e) = &res {
                        tracing::warn!(error = %e, "saving raft metadata");
                    }
                }
            }
        }
    }
}

fn commit_batch(db: &Database, batch: &[Job]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut log = txn.open_table(LOG)?;
        let mut meta = txn.open_table(META)?;
        for job in batch {
            match job {
                Job::Append(rows, _, _) => {
                    for (i, v) in rows {
                        log.insert(*i, v.as_slice())?;
                    }
                }
                Job::Truncate(from, _) => log.retain_in(*from.., |_, _| false)?,
                Job::Purge(upto, _) => {
                    log.retain_in(..=upto.index, |_, _| false)?;
                    let v = serde_json::to_vec(upto)
                        .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
                    meta.insert(PURGED, v.as_slice())?;
                }
                Job::Meta(k, v, _) => {
                    meta.insert(*k, v.as_slice())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
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
        let tail_last = self.tail().last_key_value().map(|(_, e)| e.log_id);
        let last = match tail_last {
            Some(l) => Some(l),
            None => {
                let txn = self.db.begin_read().map_err(|e| rd(&e))?;
                let table = txn.open_table(LOG).map_err(|e| rd(&e))?;
                match table.last().map_err(|e| rd(&e))? {
                    Some((_, v)) => {
                        let e: Entry<TypeConfig> =
                            serde_json::from_slice(v.value()).map_err(|e| rd(&e))?;
                        Some(e.log_id)
                    }
                    None => purged,
                }
            }
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
        let v = json(vote)?;
        self.run(|tx| Job::Meta(VOTE, v, Some(tx)))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, SErr> {
        self.meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), SErr> {
        // Only an optimisation for restarts (re-apply up to here): rides along the next batch.
        self.send(Job::Meta(COMMITTED, json(&committed)?, None))
            .map_err(|e| StorageIOError::write(&e).into())
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
        let mut ids = Vec::new();
        {
            let mut tail = self.tail();
            for e in entries {
                rows.push((e.log_id.index, json(&e)?));
                ids.push(e.log_id);
                tail.insert(e.log_id.index, e);
            }
        }
        self.send(Job::Append(rows, ids, callback))
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        let from = log_id.index;
        self.tail().retain(|k, _| *k < from);
        self.run(|tx| Job::Truncate(from, tx))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), SErr> {
        self.tail().retain(|k, _| *k > log_id.index);
        self.run(|tx| Job::Purge(log_id, tx))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
