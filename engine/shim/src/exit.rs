//! The exit status the shim writes when its process ends, read by berthd (also after a restart).

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Result, io_err, json_err};

/// How the process ended, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code; 128+N when killed by signal N (Docker's convention).
    pub exit_code: i32,
    /// The signal that killed the process, if any.
    #[serde(default)]
    pub signal: Option<i32>,
    /// The kernel's OOM killer fired in the container's cgroup while the process ran.
    #[serde(default)]
    pub oom_killed: bool,
    /// The host pid the process had.
    pub pid: i32,
    /// When the process was started (RFC 3339, nanoseconds, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
}

impl ExitStatus {
    /// Builds the status from a raw waitpid status, finishing now.
    pub fn from_wait(pid: i32, raw: i32, started_at: String, oom_killed: bool) -> ExitStatus {
        let (exit_code, signal) = if libc::WIFEXITED(raw) {
            (libc::WEXITSTATUS(raw), None)
        } else if libc::WIFSIGNALED(raw) {
            let sig = libc::WTERMSIG(raw);
            (128 + sig, Some(sig))
        } else {
            (255, None)
        };
        ExitStatus {
            exit_code,
            signal,
            oom_killed,
            pid,
            started_at,
            finished_at: crate::time::format_nanos(SystemTime::now()),
        }
    }

    /// Writes the status so that a reader never sees a partial file (tmp, rename).
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).map_err(json_err("encode exit status"))?;
        crate::atomic::write_file(path, &data)
    }

    /// Reads a status written by [`ExitStatus::write_atomic`]; `Ok(None)` when there is none yet.
    pub fn read(path: &Path) -> Result<Option<ExitStatus>> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("read {}", path.display()))(e)),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(json_err(format!("parse {}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_exit_is_128_plus_n() {
        // A raw wait status of "killed by SIGKILL" is the signal number itself.
        let st = ExitStatus::from_wait(7, libc::SIGKILL, "s".into(), false);
        assert_eq!((st.exit_code, st.signal), (137, Some(9)));
        let st = ExitStatus::from_wait(7, 3 << 8, "s".into(), false);
        assert_eq!((st.exit_code, st.signal), (3, None));
    }

    #[test]
    fn write_then_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("exit.json");
        assert_eq!(ExitStatus::read(&p).unwrap(), None);
        let st = ExitStatus::from_wait(1, 0, crate::time::format_nanos(SystemTime::now()), true);
        st.write_atomic(&p).unwrap();
        assert_eq!(ExitStatus::read(&p).unwrap(), Some(st));
    }
}
