//! The log drivers: `json-file` (Docker's exact format), `local` (Berth's compact binary
//! records) and `none`. The shim writes with [`LogWriter`]; the engine reads with [`LogReader`].
//!
//! Both drivers split output into lines at `\n` and at 16 KiB, like Docker; a line cut at
//! 16 KiB or at the end of the stream is stored without its `\n`. Rotation follows Docker's
//! json-file: `<path>` is current, `<path>.1` .. `<path>.(max_file-1)` are older, the oldest is
//! dropped; with `max_file` 1 the file is truncated instead.

mod json;
mod local;
mod reader;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::LogConfig;
use crate::error::{Result, io_err};
pub use reader::LogReader;

/// Docker's limit for one log record; longer lines are split (the parts lack `\n`).
pub const MAX_LINE: usize = 16 * 1024;

/// A stdio stream, numbered as in Docker's stream framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Stream {
    /// Standard input.
    Stdin = 0,
    /// Standard output.
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
}

impl Stream {
    /// The stream for a frame or record byte.
    pub fn from_u8(b: u8) -> Option<Stream> {
        match b {
            0 => Some(Stream::Stdin),
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            _ => None,
        }
    }

    /// The name json-file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn from_name(s: &str) -> Option<Stream> {
        match s {
            "stdin" => Some(Stream::Stdin),
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// A logging driver, named as in Docker's `--log-driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogDriver {
    /// One JSON object a line, Docker's format.
    #[serde(rename = "json-file")]
    JsonFile,
    /// Berth's length-prefixed binary records.
    #[serde(rename = "local")]
    Local,
    /// Nothing is kept.
    #[serde(rename = "none")]
    None,
}

/// One stored log line (or part of a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Which stream it came from.
    pub stream: Stream,
    /// When the shim read it.
    pub time: SystemTime,
    /// The bytes, with the trailing `\n` when the line was complete.
    pub line: Vec<u8>,
}

/// `<path>.<n>`, a rotated file (n >= 1).
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn encode(driver: LogDriver, e: &LogEntry, out: &mut Vec<u8>) {
    match driver {
        LogDriver::JsonFile => json::encode(e, out),
        LogDriver::Local => local::encode(e, out),
        LogDriver::None => {}
    }
}

/// Writes a process's output to a log driver, splitting lines and rotating files.
#[derive(Debug)]
pub struct LogWriter {
    cfg: LogConfig,
    file: Option<File>,
    size: u64,
    /// The unfinished line of stdout and stderr (index = stream number).
    pending: [Vec<u8>; 3],
}

fn open_append(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err(format!("open log {}", path.display())))
}

impl LogWriter {
    /// Opens (appends to) the current log file; the `none` driver opens nothing.
    pub fn open(cfg: &LogConfig) -> Result<LogWriter> {
        let (file, size) = if cfg.driver == LogDriver::None {
            (None, 0)
        } else {
            let f = open_append(&cfg.path)?;
            let size = f
                .metadata()
                .map_err(io_err(format!("stat {}", cfg.path.display())))?
                .len();
            (Some(f), size)
        };
        Ok(LogWriter {
            cfg: cfg.clone(),
            file,
            size,
            pending: Default::default(),
        })
    }

    /// The driver in use.
    pub fn driver(&self) -> LogDriver {
        self.cfg.driver
    }

    /// Adds output read from `stream`: complete lines (and 16 KiB pieces) are written now,
    /// the rest waits for more data or [`LogWriter::flush_stream`].
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let time = SystemTime::now();
        let idx = stream as usize;
        while !data.is_empty() {
            let held = self.pending[idx].len();
            let room = MAX_LINE - held;
            let window = &data[..data.len().min(room)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                let line = if held == 0 {
                    data[..=i].to_vec()
                } else {
                    let mut l = std::mem::take(&mut self.pending[idx]);
                    l.extend_from_slice(&data[..=i]);
                    l
                };
                self.write_entry(&LogEntry { stream, time, line })?;
                data = &data[i + 1..];
            } else if window.len() == room {
                let mut line = std::mem::take(&mut self.pending[idx]);
                line.extend_from_slice(window);
                self.write_entry(&LogEntry { stream, time, line })?;
                data = &data[room..];
            } else {
                self.pending[idx].extend_from_slice(data);
                break;
            }
        }
        Ok(())
    }

    /// Writes the unfinished line of `stream` as it is (the stream ended).
    pub fn flush_stream(&mut self, stream: Stream) -> Result<()> {
        let line = std::mem::take(&mut self.pending[stream as usize]);
        if line.is_empty() || self.file.is_none() {
            return Ok(());
        }
        self.write_entry(&LogEntry {
            stream,
            time: SystemTime::now(),
            line,
        })
    }

    /// Writes every unfinished line.
    pub fn flush_all(&mut self) -> Result<()> {
        for s in [Stream::Stdin, Stream::Stdout, Stream::Stderr] {
            self.flush_stream(s)?;
        }
        Ok(())
    }

    /// Writes one record, rotating first when the current file is full.
    pub fn write_entry(&mut self, e: &LogEntry) -> Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        if self.cfg.max_size > 0 && self.size >= self.cfg.max_size {
            self.rotate()?;
        }
        let mut rec = Vec::with_capacity(e.line.len() + 96);
        encode(self.cfg.driver, e, &mut rec);
        let path = &self.cfg.path;
        if let Some(f) = self.file.as_mut() {
            f.write_all(&rec)
                .map_err(io_err(format!("write log {}", path.display())))?;
        }
        self.size += rec.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let path = self.cfg.path.clone();
        if self.cfg.max_file <= 1 {
            if let Some(f) = &self.file {
                f.set_len(0)
                    .map_err(io_err(format!("truncate log {}", path.display())))?;
            }
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.cfg.max_file - 1).rev() {
            match std::fs::rename(rotated_path(&path, n), rotated_path(&path, n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(format!("rotate log {}", path.display()))(e));
                }
                _ => {}
            }
        }
        std::fs::rename(&path, rotated_path(&path, 1))
            .map_err(io_err(format!("rotate log {}", path.display())))?;
        self.file = Some(open_append(&path)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, driver: LogDriver, max_size: u64, max_file: u32) -> LogConfig {
        LogConfig {
            driver,
            path: dir.join("c.log"),
            max_size,
            max_file,
        }
    }

    fn lines(c: &LogConfig) -> Vec<(Stream, Vec<u8>)> {
        LogReader::open(c.driver, &c.path, c.max_file)
            .unwrap()
            .read()
            .unwrap()
            .into_iter()
            .map(|e| (e.stream, e.line))
            .collect()
    }

    #[test]
    fn splits_lines_like_docker() {
        for driver in [LogDriver::JsonFile, LogDriver::Local] {
            let d = tempfile::tempdir().unwrap();
            let c = cfg(d.path(), driver, 0, 1);
            let mut w = LogWriter::open(&c).unwrap();
            w.write(Stream::Stdout, b"hel").unwrap();
            w.write(Stream::Stderr, b"err\nx").unwrap();
            w.write(Stream::Stdout, b"lo\nworld\n").unwrap();
            let big = vec![b'a'; MAX_LINE + 10];
            w.write(Stream::Stdout, &big).unwrap();
            w.write(Stream::Stdout, b"\n").unwrap();
            w.flush_all().unwrap();
            let got = lines(&c);
            assert_eq!(got.len(), 6, "{driver:?}");
            assert_eq!(got[0], (Stream::Stderr, b"err\n".to_vec()));
            assert_eq!(got[1], (Stream::Stdout, b"hello\n".to_vec()));
            assert_eq!(got[2], (Stream::Stdout, b"world\n".to_vec()));
            assert_eq!(got[3].1.len(), MAX_LINE);
            assert_eq!(got[4].1, [vec![b'a'; 10], b"\n".to_vec()].concat());
            assert_eq!(got[5], (Stream::Stderr, b"x".to_vec()));
        }
    }

    #[test]
    fn rotates_and_keeps_max_file() {
        for driver in [LogDriver::JsonFile, LogDriver::Local] {
            let d = tempfile::tempdir().unwrap();
            let c = cfg(d.path(), driver, 200, 3);
            let mut w = LogWriter::open(&c).unwrap();
            for i in 0..100 {
                w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                    .unwrap();
            }
            assert!(c.path.exists() && rotated_path(&c.path, 1).exists());
            assert!(rotated_path(&c.path, 2).exists());
            assert!(!rotated_path(&c.path, 3).exists());
            let got = lines(&c);
            assert!(got.len() < 100 && got.len() > 3, "{driver:?} {}", got.len());
            assert_eq!(got.last().unwrap().1, b"line 99\n");
            // Oldest first and contiguous across files.
            let first: usize = String::from_utf8_lossy(&got[0].1)[5..]
                .trim()
                .parse()
                .unwrap();
            for (k, (_, l)) in got.iter().enumerate() {
                assert_eq!(l, format!("line {}\n", first + k).as_bytes());
            }
        }
    }

    #[test]
    fn single_file_truncates() {
        let d = tempfile::tempdir().unwrap();
        let c = cfg(d.path(), LogDriver::JsonFile, 100, 1);
        let mut w = LogWriter::open(&c).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(std::fs::metadata(&c.path).unwrap().len() < 200);
        assert!(!rotated_path(&c.path, 1).exists());
        assert_eq!(lines(&c).last().unwrap().1, b"line 19\n");
    }

    #[test]
    fn none_writes_nothing_and_cannot_be_read() {
        let d = tempfile::tempdir().unwrap();
        let c = cfg(d.path(), LogDriver::None, 0, 1);
        let mut w = LogWriter::open(&c).unwrap();
        w.write(Stream::Stdout, b"x\n").unwrap();
        assert!(!c.path.exists());
        let e = LogReader::open(LogDriver::None, &c.path, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "configured logging driver does not support reading"
        );
    }
}
