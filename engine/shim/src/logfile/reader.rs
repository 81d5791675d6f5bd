//! Reading a log back: oldest first across rotated files, `tail` by walking backwards from the
//! end, `since`/`until` filters, and a blocking `follow` that survives rotation.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::{LogDriver, LogEntry, json, local, rotated_path};
use crate::error::{Error, Result, io_err};

/// How much `tail` reads at a time when walking a json-file log backwards.
const CHUNK: u64 = 64 * 1024;
/// How often `follow` looks for new data.
const POLL: Duration = Duration::from_millis(50);

/// Reads the log of one container; `tail`, `since` and `until` narrow what is returned.
#[derive(Debug, Clone)]
pub struct LogReader {
    driver: LogDriver,
    path: PathBuf,
    max_file: u32,
    tail: Option<usize>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

/// Whether to go on after an entry.
enum Flow {
    Go,
    Stop,
}

impl LogReader {
    /// A reader of `path` and its rotated files; the `none` driver has nothing to read.
    pub fn open(driver: LogDriver, path: impl Into<PathBuf>, max_file: u32) -> Result<LogReader> {
        if driver == LogDriver::None {
            return Err(Error::NotReadable);
        }
        Ok(LogReader {
            driver,
            path: path.into(),
            max_file: max_file.max(1),
            tail: None,
            since: None,
            until: None,
        })
    }

    /// Only the last `n` entries (before the `since`/`until` filters, as Docker does).
    pub fn tail(mut self, n: usize) -> Self {
        self.tail = Some(n);
        self
    }

    /// Only entries at or after `t`.
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since = Some(t);
        self
    }

    /// Only entries at or before `t`; `follow` ends once past it.
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until = Some(t);
        self
    }

    /// Every selected entry, oldest first.
    pub fn read(&self) -> Result<Vec<LogEntry>> {
        let mut out = Vec::new();
        self.for_each(|e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each selected entry, oldest first, until it returns false.
    pub fn for_each(&self, mut f: impl FnMut(LogEntry) -> bool) -> Result<()> {
        let current = open_optional(&self.path)?;
        let end = match &current {
            Some(c) => len_of(c, &self.path)?,
            None => 0,
        };
        self.initial(current.as_ref(), end, &mut f)?;
        Ok(())
    }

    /// Like [`LogReader::for_each`], then waits for new entries (through rotations) until
    /// `stop` is set, `f` returns false, or an entry is past `until`.
    pub fn follow(&self, stop: &AtomicBool, mut f: impl FnMut(LogEntry) -> bool) -> Result<()> {
        let mut current = loop {
            if let Some(c) = open_optional(&self.path)? {
                break c;
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(POLL);
        };
        let end = len_of(&current, &self.path)?;
        let Some(mut pos) = self.initial(Some(&current), end, &mut f)? else {
            return Ok(());
        };
        let mut ino = current
            .metadata()
            .map_err(io_err(format!("stat {}", self.path.display())))?
            .ino();
        while !stop.load(Ordering::Relaxed) {
            let len = len_of(&current, &self.path)?;
            if len < pos {
                // Truncated in place (max_file 1).
                pos = 0;
            }
            let before = pos;
            match self.scan(&current, pos, len, &mut f)? {
                (p, Flow::Go) => pos = p,
                (_, Flow::Stop) => return Ok(()),
            }
            let rotated = std::fs::metadata(&self.path).is_ok_and(|m| m.ino() != ino);
            if rotated {
                // Whatever reached the old file before the rename is still ours to read.
                let len = len_of(&current, &self.path)?;
                if let (_, Flow::Stop) = self.scan(&current, pos, len, &mut f)? {
                    return Ok(());
                }
                // Several rotations may have happened since the last look: our file is now
                // `<path>.k`, and `<path>.(k-1)` .. `<path>.1` came after it.
                let k = (1..self.max_file).find(|&n| {
                    std::fs::metadata(rotated_path(&self.path, n)).is_ok_and(|m| m.ino() == ino)
                });
                // Gone altogether: every rotated file is newer than what we read.
                for n in (1..k.unwrap_or(self.max_file)).rev() {
                    let p = rotated_path(&self.path, n);
                    let Some(file) = open_optional(&p)? else {
                        continue;
                    };
                    let len = len_of(&file, &p)?;
                    if let (_, Flow::Stop) = self.scan(&file, 0, len, &mut f)? {
                        return Ok(());
                    }
                }
                if let Some(next) = open_optional(&self.path)? {
                    ino = next
                        .metadata()
                        .map_err(io_err(format!("stat {}", self.path.display())))?
                        .ino();
                    current = next;
                    pos = 0;
                    continue;
                }
            }
            if pos == before {
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    /// Files oldest first, the current one (already open, read up to `end`) last.
    fn older_files(&self) -> Vec<PathBuf> {
        (1..self.max_file)
            .rev()
            .map(|n| rotated_path(&self.path, n))
            .collect()
    }

    /// Emits the selected existing entries; returns where complete records end in the current
    /// file, or None when the caller asked to stop.
    fn initial(
        &self,
        current: Option<&File>,
        end: u64,
        f: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<Option<u64>> {
        if let Some(n) = self.tail {
            return self.initial_tail(current, end, n, f);
        }
        for p in self.older_files() {
            let Some(file) = open_optional(&p)? else {
                continue;
            };
            let len = len_of(&file, &p)?;
            if let (_, Flow::Stop) = self.scan(&file, 0, len, f)? {
                return Ok(None);
            }
        }
        match current {
            Some(c) => match self.scan(c, 0, end, f)? {
                (p, Flow::Go) => Ok(Some(p)),
                (_, Flow::Stop) => Ok(None),
            },
            None => Ok(Some(0)),
        }
    }

    fn initial_tail(
        &self,
        current: Option<&File>,
        end: u64,
        n: usize,
        f: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<Option<u64>> {
        // Newest first while collecting.
        let mut picked: Vec<LogEntry> = Vec::new();
        let mut complete_end = 0;
        if let Some(c) = current {
            complete_end = self.tail_file(c, &self.path, end, n, &mut picked)?;
        }
        for p in self.older_files().into_iter().rev() {
            if picked.len() >= n {
                break;
            }
            let Some(file) = open_optional(&p)? else {
                continue;
            };
            let len = len_of(&file, &p)?;
            self.tail_file(&file, &p, len, n, &mut picked)?;
        }
        for e in picked.into_iter().rev() {
            if let Flow::Stop = self.offer(e, f) {
                return Ok(None);
            }
        }
        Ok(Some(complete_end))
    }

    /// Applies since/until, then hands the entry over.
    fn offer(&self, e: LogEntry, f: &mut dyn FnMut(LogEntry) -> bool) -> Flow {
        if self.since.is_some_and(|s| e.time < s) {
            return Flow::Go;
        }
        if self.until.is_some_and(|u| e.time > u) {
            return Flow::Stop;
        }
        if f(e) { Flow::Go } else { Flow::Stop }
    }

    /// Reads complete records in `[from, to)`; returns the position after the last one.
    fn scan(
        &self,
        file: &File,
        from: u64,
        to: u64,
        f: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<(u64, Flow)> {
        if to <= from {
            return Ok((from, Flow::Go));
        }
        let ctx = || format!("read log {}", self.path.display());
        let mut handle = file;
        handle.seek(SeekFrom::Start(from)).map_err(io_err(ctx()))?;
        let mut r = BufReader::with_capacity(CHUNK as usize, handle.take(to - from));
        let mut pos = from;
        let mut rec = Vec::new();
        loop {
            rec.clear();
            let entry = match self.driver {
                LogDriver::JsonFile => {
                    let n = r.read_until(b'\n', &mut rec).map_err(io_err(ctx()))?;
                    if n == 0 || rec.last() != Some(&b'\n') {
                        return Ok((pos, Flow::Go));
                    }
                    pos += n as u64;
                    match json::decode(&rec) {
                        Ok(e) => e,
                        Err(err) => {
                            tracing::warn!(path = %self.path.display(), error = %err, "skipping bad log line");
                            continue;
                        }
                    }
                }
                _ => {
                    let mut header = [0u8; local::HEADER];
                    if !read_full(&mut r, &mut header).map_err(io_err(ctx()))? {
                        return Ok((pos, Flow::Go));
                    }
                    let len = local::payload_len(&header).map_err(|m| self.corrupt(m))?;
                    rec.extend_from_slice(&header);
                    rec.resize(local::HEADER + len + local::TRAILER, 0);
                    if !read_full(&mut r, &mut rec[local::HEADER..]).map_err(io_err(ctx()))? {
                        return Ok((pos, Flow::Go));
                    }
                    pos += rec.len() as u64;
                    local::decode(&rec).map_err(|m| self.corrupt(m))?
                }
            };
            if let Flow::Stop = self.offer(entry, f) {
                return Ok((pos, Flow::Stop));
            }
        }
    }

    fn corrupt(&self, message: String) -> Error {
        Error::Corrupt {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// Pushes up to `n - out.len()` newest entries of one file, newest first; returns where the
    /// complete records end (an unfinished last record is skipped).
    fn tail_file(
        &self,
        file: &File,
        path: &Path,
        end: u64,
        n: usize,
        out: &mut Vec<LogEntry>,
    ) -> Result<u64> {
        match self.driver {
            LogDriver::JsonFile => tail_json(file, path, end, n, out),
            _ => match tail_local(file, path, end, n, out)? {
                Some(e) => Ok(e),
                None => {
                    // The file does not end on a record boundary: count forwards instead.
                    let mut ring = VecDeque::new();
                    let want = n - out.len();
                    let (pos, _) = self.scan(file, 0, end, &mut |e| {
                        if ring.len() == want {
                            ring.pop_front();
                        }
                        ring.push_back(e);
                        true
                    })?;
                    out.extend(ring.into_iter().rev());
                    Ok(pos)
                }
            },
        }
    }
}

fn tail_json(file: &File, path: &Path, end: u64, n: usize, out: &mut Vec<LogEntry>) -> Result<u64> {
    let mut pos = end;
    // File bytes [pos, pos + buf.len()) not turned into entries yet.
    let mut buf: Vec<u8> = Vec::new();
    let mut complete_end = None;
    while out.len() < n {
        if pos == 0 && buf.is_empty() {
            break;
        }
        if pos > 0 {
            let start = pos.saturating_sub(CHUNK);
            let mut chunk = vec![0u8; (pos - start) as usize];
            file.read_exact_at(&mut chunk, start)
                .map_err(io_err(format!("read log {}", path.display())))?;
            chunk.extend_from_slice(&buf);
            buf = chunk;
            pos = start;
        }
        if complete_end.is_none() {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    buf.truncate(i + 1);
                    complete_end = Some(pos + i as u64 + 1);
                }
                None if pos == 0 => {
                    complete_end = Some(0);
                    break;
                }
                None => continue,
            }
        }
        // buf ends with a newline: peel whole lines off its end.
        while out.len() < n && !buf.is_empty() {
            let body = &buf[..buf.len() - 1];
            let start = match body.iter().rposition(|&b| b == b'\n') {
                Some(j) => j + 1,
                None if pos == 0 => 0,
                None => break,
            };
            match json::decode(&buf[start..]) {
                Ok(e) => out.push(e),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "skipping bad log line")
                }
            }
            buf.truncate(start);
        }
    }
    Ok(complete_end.unwrap_or(end))
}

/// Walks local records backwards; None when the end is not a record boundary.
fn tail_local(
    file: &File,
    path: &Path,
    end: u64,
    n: usize,
    out: &mut Vec<LogEntry>,
) -> Result<Option<u64>> {
    let ctx = || format!("read log {}", path.display());
    let mut pos = end;
    let overhead = (local::HEADER + local::TRAILER) as u64;
    while out.len() < n && pos > 0 {
        if pos < overhead {
            return Ok(None);
        }
        let mut trailer = [0u8; local::TRAILER];
        file.read_exact_at(&mut trailer, pos - local::TRAILER as u64)
            .map_err(io_err(ctx()))?;
        let len = u32::from_le_bytes(trailer) as u64;
        if len as usize > local::MAX_PAYLOAD || pos < overhead + len {
            return Ok(None);
        }
        let start = pos - overhead - len;
        let mut rec = vec![0u8; (overhead + len) as usize];
        file.read_exact_at(&mut rec, start).map_err(io_err(ctx()))?;
        match local::decode(&rec) {
            Ok(e) => out.push(e),
            Err(_) => return Ok(None),
        }
        pos = start;
    }
    Ok(Some(end))
}

/// Fills `buf` completely; false when EOF comes first.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn open_optional(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("open log {}", path.display()))(e)),
    }
}

fn len_of(file: &File, path: &Path) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(io_err(format!("stat {}", path.display())))?
        .len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::logfile::{LogWriter, Stream};
    use std::sync::Arc;

    fn writer(
        dir: &Path,
        driver: LogDriver,
        max_size: u64,
        max_file: u32,
    ) -> (LogConfig, LogWriter) {
        let cfg = LogConfig {
            driver,
            path: dir.join("c.log"),
            max_size,
            max_file,
        };
        let w = LogWriter::open(&cfg).unwrap();
        (cfg, w)
    }

    fn texts(v: &[LogEntry]) -> Vec<String> {
        v.iter()
            .map(|e| String::from_utf8_lossy(&e.line).into_owned())
            .collect()
    }

    #[test]
    fn tail_across_rotated_files() {
        for driver in [LogDriver::JsonFile, LogDriver::Local] {
            let d = tempfile::tempdir().unwrap();
            let size = if driver == LogDriver::Local { 100 } else { 300 };
            let (c, mut w) = writer(d.path(), driver, size, 4);
            for i in 0..60 {
                w.write(Stream::Stdout, format!("l{i}\n").as_bytes())
                    .unwrap();
            }
            // An unfinished record at the end (a writer mid-write) is not returned.
            std::fs::OpenOptions::new()
                .append(true)
                .open(&c.path)
                .unwrap();
            let r = LogReader::open(driver, &c.path, 4).unwrap();
            let all = texts(&r.read().unwrap());
            assert!(all.len() > 12 && all.len() < 50, "{driver:?} {}", all.len());
            assert_eq!(all.last().unwrap(), "l59\n");
            for n in [0usize, 1, 3, 7, 12, all.len(), 10_000] {
                let got = r.clone().tail(n).read().unwrap();
                assert_eq!(
                    texts(&got),
                    all[all.len().saturating_sub(n)..],
                    "{driver:?} tail {n}"
                );
            }
        }
    }

    #[test]
    fn tail_skips_a_partial_last_record() {
        for driver in [LogDriver::JsonFile, LogDriver::Local] {
            let d = tempfile::tempdir().unwrap();
            let (c, mut w) = writer(d.path(), driver, 0, 1);
            for i in 0..5 {
                w.write(Stream::Stdout, format!("l{i}\n").as_bytes())
                    .unwrap();
            }
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&c.path)
                .unwrap();
            f.write_all(b"{\"log\":\"half").unwrap();
            let r = LogReader::open(driver, &c.path, 1).unwrap();
            assert_eq!(
                texts(&r.clone().tail(2).read().unwrap()),
                ["l3\n", "l4\n"],
                "{driver:?}"
            );
            assert_eq!(r.read().unwrap().len(), 5);
        }
    }

    #[test]
    fn since_and_until() {
        let d = tempfile::tempdir().unwrap();
        let (c, mut w) = writer(d.path(), LogDriver::JsonFile, 0, 1);
        let t = |s: i64| crate::time::from_parts(1_000 + s, 0);
        for i in 0..10 {
            w.write_entry(&LogEntry {
                stream: Stream::Stdout,
                time: t(i),
                line: format!("{i}\n").into_bytes(),
            })
            .unwrap();
        }
        let r = LogReader::open(LogDriver::JsonFile, &c.path, 1).unwrap();
        let got = r.clone().since(t(3)).until(t(5)).read().unwrap();
        assert_eq!(texts(&got), ["3\n", "4\n", "5\n"]);
        let got = r.clone().tail(4).since(t(7)).read().unwrap();
        assert_eq!(texts(&got), ["7\n", "8\n", "9\n"]);
    }

    #[test]
    fn follow_sees_new_lines_through_rotation() {
        for driver in [LogDriver::JsonFile, LogDriver::Local] {
            let d = tempfile::tempdir().unwrap();
            let (c, mut w) = writer(d.path(), driver, 400, 3);
            w.write(Stream::Stdout, b"before\n").unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let r = LogReader::open(driver, &c.path, 3).unwrap().tail(1);
            let (tx, rx) = std::sync::mpsc::channel();
            let st = stop.clone();
            let h = std::thread::spawn(move || {
                r.follow(&st, |e| tx.send(e.line).is_ok()).unwrap();
            });
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(5)).unwrap(),
                b"before\n"
            );
            for i in 0..40 {
                w.write(Stream::Stderr, format!("after {i}\n").as_bytes())
                    .unwrap();
                if i % 5 == 0 {
                    std::thread::sleep(Duration::from_millis(150));
                }
            }
            for i in 0..40 {
                let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
                assert_eq!(got, format!("after {i}\n").as_bytes(), "{driver:?}");
            }
            stop.store(true, Ordering::Relaxed);
            h.join().unwrap();
            assert!(rotated_path(&c.path, 1).exists());
        }
    }
}
