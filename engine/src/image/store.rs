//! The content-addressed blob store: `blobs/sha256/<hex>`, written through `ingest/` with
//! temp file + fsync + rename, so a blob is visible only once its digest has been verified.

use super::digest::{Digest, Hasher};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("content store: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Received content does not hash to the digest it was asked under.
    #[error("digest mismatch: expected {expected}, got {actual} ({size} bytes)")]
    DigestMismatch {
        /// The digest that was asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
        /// How many bytes arrived.
        size: u64,
    },
    /// Received content has another size than its descriptor says.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size of the descriptor.
        expected: u64,
        /// What arrived.
        actual: u64,
    },
    /// The blob is not in the store.
    #[error("blob {0} not found in the content store")]
    NotFound(Digest),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name for a temporary file or directory in this process.
pub(crate) fn unique_tmp_name(prefix: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{t}", std::process::id())
}

/// The content-addressed blob store.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

/// What a garbage collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcStats {
    /// Blobs deleted.
    pub removed: Vec<Digest>,
    /// Bytes freed.
    pub bytes: u64,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        fs::create_dir_all(&ingest).map_err(io_err("create", &ingest))?;
        Ok(Self { blobs, ingest })
    }

    /// Where a blob lives once committed.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The size of a present blob.
    pub fn size(&self, d: &Digest) -> Result<u64, StoreError> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound(d.clone())),
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Reads a whole (small) blob: manifests and configs.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(d);
        match fs::read(&p) {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound(d.clone())),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let p = self.blob_path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound(d.clone())),
            Err(e) => Err(io_err("open", &p)(e)),
        }
    }

    /// Writes a blob held in memory; with `expected`, refuses content of another digest.
    pub fn write_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest, StoreError> {
        let actual = Digest::of(data);
        if let Some(e) = expected
            && *e != actual
        {
            return Err(StoreError::DigestMismatch {
                expected: e.clone(),
                actual,
                size: data.len() as u64,
            });
        }
        if self.contains(&actual) {
            return Ok(actual);
        }
        let tmp = self.ingest.join(unique_tmp_name("tmp"));
        let res = (|| {
            let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            f.write_all(data).map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
            self.publish(&tmp, &actual)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map(|_| actual)
    }

    /// Starts or resumes writing the blob `expected` (an exclusive lock serializes two pulls
    /// of one blob; a partial file left by a killed pull is kept for resumption).
    pub fn ingest(&self, expected: &Digest) -> Result<Ingest, StoreError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.ingest.join(format!("{}.partial", expected.hex()));
        let file = loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .append(true)
                .open(&path)
                .map_err(io_err("open", &path))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| io_err("lock", &path)(e.into()))?;
            // The holder we waited for may have committed (renamed) the file: then our
            // descriptor is the published blob, and a fresh partial file is needed.
            let ours = file.metadata().map_err(io_err("stat", &path))?.ino();
            match fs::metadata(&path) {
                Ok(m) if m.ino() == ours => break file,
                _ => continue,
            }
        };
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        Ok(Ingest {
            file,
            path,
            len,
            expected: expected.clone(),
            store: self.clone(),
        })
    }

    fn publish(&self, tmp: &Path, d: &Digest) -> Result<(), StoreError> {
        let dst = self.blob_path(d);
        fs::rename(tmp, &dst).map_err(io_err("rename", &dst))?;
        // The rename is durable only once the directory itself is synced.
        File::open(&self.blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err("fsync", &self.blobs))
    }

    /// Removes a blob (absent is fine).
    pub fn delete(&self, d: &Digest) -> Result<(), StoreError> {
        let p = self.blob_path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// Every blob present.
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))? {
            let e = e.map_err(io_err("list", &self.blobs))?;
            if let Some(name) = e.file_name().to_str()
                && let Ok(d) = Digest::parse(&format!("sha256:{name}"))
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes every blob not in `keep`, and stray temporary files.
    pub fn gc(&self, keep: &HashSet<Digest>) -> Result<GcStats, StoreError> {
        let mut stats = GcStats::default();
        for d in self.list()? {
            if !keep.contains(&d) {
                stats.bytes += self.size(&d).unwrap_or(0);
                self.delete(&d)?;
                stats.removed.push(d);
            }
        }
        for e in fs::read_dir(&self.ingest).map_err(io_err("list", &self.ingest))? {
            let e = e.map_err(io_err("list", &self.ingest))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("tmp-") {
                let _ = fs::remove_file(e.path());
            } else if name.ends_with(".partial") {
                // Kept for a resumed pull until a prune; one being written is locked.
                let Ok(f) = File::open(e.path()) else {
                    continue;
                };
                if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_ok()
                {
                    stats.bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(stats)
    }
}

/// A blob being written; see [`ContentStore::ingest`].
pub struct Ingest {
    file: File,
    path: PathBuf,
    len: u64,
    expected: Digest,
    store: ContentStore,
}

impl Ingest {
    /// Bytes already present from an earlier, interrupted attempt.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest being written.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// A reader over the bytes already present, to replay them through hashing and unpacking.
    pub fn existing(&self) -> Result<io::Take<File>, StoreError> {
        let f = File::open(&self.path).map_err(io_err("open", &self.path))?;
        Ok(io::Read::take(f, self.len))
    }

    /// Appends received bytes.
    pub fn append(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(buf)
            .map_err(io_err("write", &self.path))?;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Forgets what was written (the next attempt starts from zero).
    pub fn reset(&mut self) -> Result<(), StoreError> {
        self.file
            .set_len(0)
            .map_err(io_err("truncate", &self.path))?;
        self.len = 0;
        Ok(())
    }

    /// Verifies the whole content hashes to the expected digest and makes the blob visible.
    pub fn commit(self, actual: Digest, size: Option<u64>) -> Result<Digest, StoreError> {
        if actual != self.expected {
            let _ = fs::remove_file(&self.path);
            return Err(StoreError::DigestMismatch {
                expected: self.expected,
                actual,
                size: self.len,
            });
        }
        if let Some(s) = size
            && s != self.len
        {
            let _ = fs::remove_file(&self.path);
            return Err(StoreError::SizeMismatch {
                digest: self.expected,
                expected: s,
                actual: self.len,
            });
        }
        self.file.sync_all().map_err(io_err("fsync", &self.path))?;
        self.store.publish(&self.path, &self.expected)?;
        Ok(self.expected)
    }

    /// Drops the partial content.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }

    /// Writes a whole stream, hashing it, and commits; for blobs that are not unpacked.
    pub fn write_all_from(
        mut self,
        mut r: impl io::Read,
        size: Option<u64>,
    ) -> Result<Digest, StoreError> {
        self.reset()?;
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = r.read(&mut buf).map_err(io_err("read", &self.path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            self.append(&buf[..n])?;
        }
        self.commit(h.finish(), size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_verify_gc() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        let d = s.write_blob(b"hello", None).unwrap();
        assert!(s.contains(&d));
        assert_eq!(s.read(&d).unwrap(), b"hello");
        let wrong = Digest::of(b"other");
        assert!(matches!(
            s.write_blob(b"hello!", Some(&wrong)),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.contains(&Digest::of(b"hello!")));

        let mut ing = s.ingest(&wrong).unwrap();
        ing.append(b"oth").unwrap();
        drop(ing);
        let mut ing = s.ingest(&wrong).unwrap();
        assert_eq!(ing.len(), 3);
        ing.append(b"er").unwrap();
        let mut h = Hasher::new();
        h.update(b"other");
        ing.commit(h.finish(), Some(5)).unwrap();
        assert_eq!(s.read(&wrong).unwrap(), b"other");

        // A partial download left behind, and one still being written.
        let mut stale = s.ingest(&Digest::of(b"stale")).unwrap();
        stale.append(b"sta").unwrap();
        drop(stale);
        let live_digest = Digest::of(b"live");
        let mut live = s.ingest(&live_digest).unwrap();
        live.append(b"li").unwrap();

        let keep: HashSet<_> = [d.clone()].into();
        let st = s.gc(&keep).unwrap();
        assert_eq!(st.removed, vec![wrong.clone()]);
        assert_eq!(st.bytes, 5 + 3);
        assert!(s.contains(&d) && !s.contains(&wrong));
        let left: Vec<_> = fs::read_dir(dir.path().join("ingest"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [format!("{}.partial", live_digest.hex())]);
        live.append(b"ve").unwrap();
        live.commit(Digest::of(b"live"), Some(4)).unwrap();
    }

    #[test]
    fn bad_ingest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        let want = Digest::of(b"abc");
        let ing = s.ingest(&want).unwrap();
        assert!(ing.write_all_from(&b"abd"[..], Some(3)).is_err());
        assert!(!s.contains(&want));
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn waiting_ingest_never_appends_to_a_published_blob() {
        let dir = tempfile::tempdir().unwrap();
        let s = ContentStore::open(dir.path()).unwrap();
        let d = Digest::of(b"data");
        let mut first = s.ingest(&d).unwrap();
        let s2 = s.clone();
        let d2 = d.clone();
        let waiter = std::thread::spawn(move || s2.ingest(&d2).map(|i| i.len()));
        std::thread::sleep(std::time::Duration::from_millis(100));
        first.append(b"data").unwrap();
        first.commit(Digest::of(b"data"), Some(4)).unwrap();
        assert_eq!(waiter.join().unwrap().unwrap(), 0);
        assert_eq!(s.read(&d).unwrap(), b"data");
    }
}
