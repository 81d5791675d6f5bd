//! The state directory: one `<root>/<id>/` per container with `state.json` and the exec fifo.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

/// Default `--root`.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";
/// Name of the fifo that holds the init process until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// Lifecycle status as the OCI runtime spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// create is in progress.
    Creating,
    /// Set up, waiting for start.
    Created,
    /// The user process runs.
    Running,
    /// Frozen by pause.
    Paused,
    /// The process has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// State errors: unknown or duplicate IDs, wrong lifecycle state, unreadable files.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No container with this ID.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The ID is taken.
    #[error("container {0:?} already exists")]
    Exists(String),
    /// The ID has characters that cannot name a directory safely.
    #[error("invalid container id {0:?}: use letters, digits, '_', '-', '.', '+'")]
    InvalidId(String),
    /// The operation is not allowed in the container's current status.
    #[error("cannot {op} container {id:?}: it is {status}")]
    WrongState {
        /// Container ID.
        id: String,
        /// Current status.
        status: Status,
        /// The refused operation.
        op: &'static str,
    },
    /// A state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A state file is unreadable JSON.
    #[error("{path}: corrupt state: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
}

/// What the runtime remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Persisted {
    /// Container ID.
    pub id: String,
    /// Host pid of the init process.
    pub pid: i32,
    /// Start time of that pid (clock ticks after boot), to tell a reused pid apart.
    pub start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Resolved cgroup path relative to each hierarchy root.
    pub cgroup_path: PathBuf,
    /// The config the container was created from.
    pub spec: Spec,
}

/// Checks an ID before it becomes a directory name.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The per-container directory.
pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Creates the container directory, failing if the ID is taken.
pub fn create_dir(root: &Path, id: &str) -> Result<PathBuf, StateError> {
    validate_id(id)?;
    fs::create_dir_all(root).map_err(io_err(root))?;
    let dir = container_dir(root, id);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(StateError::Exists(id.to_string()));
        }
        Err(e) => return Err(io_err(&dir)(e)),
    }
    // Search permission lets a container root mapped to another uid reach the exec fifo.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).map_err(io_err(&dir))?;
    Ok(dir)
}

/// Writes state.json atomically (temp file and rename), so readers never see half a file.
pub fn save(root: &Path, st: &Persisted) -> Result<(), StateError> {
    let dir = container_dir(root, &st.id);
    let tmp = dir.join(".state.json.tmp");
    let data = serde_json::to_vec(st).map_err(|e| StateError::Corrupt {
        path: tmp.clone(),
        message: e.to_string(),
    })?;
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&data).map_err(io_err(&tmp))?;
    let path = dir.join(STATE_FILE);
    fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// Reads a container's state.json.
pub fn load(root: &Path, id: &str) -> Result<Persisted, StateError> {
    validate_id(id)?;
    let path = container_dir(root, id).join(STATE_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotFound(id.to_string()));
        }
        Err(e) => return Err(io_err(&path)(e)),
    };
    serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
        path,
        message: e.to_string(),
    })
}

/// IDs of every container with a state file under root.
pub fn list_ids(root: &Path) -> Result<Vec<String>, StateError> {
    let mut ids = Vec::new();
    let rd = match fs::read_dir(root) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(io_err(root)(e)),
    };
    for ent in rd.flatten() {
        if ent.path().join(STATE_FILE).exists() {
            if let Some(name) = ent.file_name().to_str() {
                ids.push(name.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// Removes a container directory and everything in it.
pub fn remove_dir(root: &Path, id: &str) -> Result<(), StateError> {
    let dir = container_dir(root, id);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&dir)(e)),
    }
}

/// A process's start time and state letter from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the whole line is index 19 after the state (field 3).
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// Whether the recorded init process still exists (not exited, not a zombie, same start time).
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    match proc_stat(pid) {
        Some((start, state)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// Now as RFC 3339 in UTC, with nanoseconds like runc.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_dir_refused() {
        let root = tempfile::tempdir().unwrap();
        create_dir(root.path(), "x").unwrap();
        assert!(matches!(
            create_dir(root.path(), "x"),
            Err(StateError::Exists(_))
        ));
        assert!(matches!(
            load(root.path(), "y"),
            Err(StateError::NotFound(_))
        ));
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let (start, _) = proc_stat(pid).unwrap();
        assert!(process_alive(pid, start));
        assert!(!process_alive(pid, start + 1));
    }

    #[test]
    fn rfc3339_shape() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }
}
