//! Cgroups: one manager type over the v1 and v2 implementations.

pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::Serialize;

/// Cgroup failures, with the file involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory operation failed.
    #[error("cgroup {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No usable cgroup hierarchy was found.
    #[error("no cgroup hierarchy mounted: {0}")]
    NotMounted(String),
    /// A resource value cannot be applied.
    #[error("invalid resource `{field}`: {message}")]
    Invalid {
        /// The config field (under linux.resources).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A controller the config needs is not available.
    #[error("cgroup controller {0} is not available")]
    MissingController(String),
}

/// Resource usage of a container, as `events --stats` prints it.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// Memory usage in bytes.
    pub memory_usage: u64,
    /// Peak memory usage in bytes, when the kernel reports it.
    pub memory_max_usage: u64,
    /// Memory limit in bytes (u64::MAX when unlimited).
    pub memory_limit: u64,
    /// How many times the OOM killer fired in this cgroup.
    pub oom_kills: u64,
    /// Number of tasks.
    pub pids_current: u64,
    /// Task limit (0 when unlimited).
    pub pids_limit: u64,
    /// Total CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of periods the group was throttled.
    pub cpu_throttled_periods: u64,
}

/// The operations every cgroup implementation provides.
pub trait Manager {
    /// Creates the cgroup directories.
    fn create(&self) -> Result<(), CgroupError>;
    /// Writes the resource limits.
    fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError>;
    /// Moves a process into the cgroup.
    fn add_task(&self, pid: i32) -> Result<(), CgroupError>;
    /// Freezes or thaws every process of the cgroup, waiting until the kernel reports it done.
    fn freeze(&self, frozen: bool) -> Result<(), CgroupError>;
    /// Whether the cgroup is frozen.
    fn is_frozen(&self) -> bool;
    /// Pids of the processes in the cgroup.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Usage counters.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// Removes the cgroup directories; missing ones are fine.
    fn remove(&self) -> Result<(), CgroupError>;
}

/// For `update`: the container's resources with `update`'s fields laid over them, and what to
/// write, which is the merged memory, cpu, pids and blockIO sections the update touches (so a
/// lone new cpu period keeps the quota, as v2's `cpu.max` needs both). Other sections are not
/// changed by `update` (as with runc) and are left out with a warning.
pub fn merge_update(
    current: &LinuxResources,
    update: &LinuxResources,
) -> Result<(LinuxResources, LinuxResources), CgroupError> {
    fn lay_over(base: &mut serde_json::Value, over: serde_json::Value) {
        match (base, over) {
            (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
                for (k, v) in o {
                    if !v.is_null() {
                        lay_over(b.entry(k).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
            (b, o) => *b = o,
        }
    }
    let invalid = |e: serde_json::Error| CgroupError::Invalid {
        field: "resources".into(),
        message: e.to_string(),
    };
    let mut merged = serde_json::to_value(current).map_err(invalid)?;
    lay_over(&mut merged, serde_json::to_value(update).map_err(invalid)?);
    let merged: LinuxResources = serde_json::from_value(merged).map_err(invalid)?;
    if update.devices().is_some()
        || update.hugepage_limits().is_some()
        || update.network().is_some()
        || update.rdma().is_some()
        || update.unified().is_some()
    {
        tracing::warn!(
            "update changes memory, cpu, pids and blockIO only; other sections are ignored"
        );
    }
    let mut apply = LinuxResources::default();
    if update.memory().is_some() {
        apply.set_memory(*merged.memory());
    }
    if update.cpu().is_some() {
        apply.set_cpu(merged.cpu().clone());
    }
    if update.pids().is_some() {
        apply.set_pids(*merged.pids());
    }
    if update.block_io().is_some() {
        apply.set_block_io(merged.block_io().clone());
    }
    Ok((merged, apply))
}

/// The cgroup manager of one container, v1 or v2 depending on the host.
#[derive(Debug, Clone)]
pub enum CgroupManager {
    /// Legacy or hybrid hierarchy.
    V1(v1::V1Manager),
    /// Unified hierarchy.
    V2(v2::V2Manager),
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

impl CgroupManager {
    /// Picks v2 when /sys/fs/cgroup is a cgroup2 mount, v1 otherwise.
    pub fn for_path(cgroup_path: &Path) -> Result<Self, CgroupError> {
        let root = Path::new("/sys/fs/cgroup");
        if crate::sys::fs_magic(root).ok() == Some(CGROUP2_SUPER_MAGIC) {
            return Ok(CgroupManager::V2(v2::V2Manager::new(root, cgroup_path)));
        }
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| CgroupError::Io {
                path: "/proc/self/mountinfo".into(),
                source,
            })?;
        let mounts = v1::parse_mountinfo(&mountinfo);
        if mounts.is_empty() {
            return Err(CgroupError::NotMounted(
                "no cgroup v1 controllers and /sys/fs/cgroup is not cgroup2".into(),
            ));
        }
        Ok(CgroupManager::V1(v1::V1Manager::new(mounts, cgroup_path)))
    }

    /// Host directories of this cgroup (one per v1 hierarchy), for bind mounts.
    pub fn v1_dirs(&self) -> Vec<(String, PathBuf)> {
        match self {
            CgroupManager::V1(m) => m.dirs(),
            CgroupManager::V2(_) => Vec::new(),
        }
    }
}

impl Manager for CgroupManager {
    fn create(&self) -> Result<(), CgroupError> {
        match self {
            CgroupManager::V1(m) => m.create(),
            CgroupManager::V2(m) => m.create(),
        }
    }
    fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        match self {
            CgroupManager::V1(m) => m.apply(res),
            CgroupManager::V2(m) => m.apply(res),
        }
    }
    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        match self {
            CgroupManager::V1(m) => m.add_task(pid),
            CgroupManager::V2(m) => m.add_task(pid),
        }
    }
    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        match self {
            CgroupManager::V1(m) => m.freeze(frozen),
            CgroupManager::V2(m) => m.freeze(frozen),
        }
    }
    fn is_frozen(&self) -> bool {
        match self {
            CgroupManager::V1(m) => m.is_frozen(),
            CgroupManager::V2(m) => m.is_frozen(),
        }
    }
    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match self {
            CgroupManager::V1(m) => m.pids(),
            CgroupManager::V2(m) => m.pids(),
        }
    }
    fn stats(&self) -> Result<Stats, CgroupError> {
        match self {
            CgroupManager::V1(m) => m.stats(),
            CgroupManager::V2(m) => m.stats(),
        }
    }
    fn remove(&self) -> Result<(), CgroupError> {
        match self {
            CgroupManager::V1(m) => m.remove(),
            CgroupManager::V2(m) => m.remove(),
        }
    }
}

/// The cgroup path of a container: cgroupsPath when absolute, else under `/berth/`.
pub fn resolve_path(cgroups_path: Option<&Path>, id: &str) -> PathBuf {
    match cgroups_path {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) if !p.as_os_str().is_empty() => {
            // systemd-style "slice:prefix:name" names carry no directory meaning here.
            let s = p.to_string_lossy().replace(':', "-");
            Path::new("/berth").join(s.trim_start_matches('/'))
        }
        _ => Path::new("/berth").join(id),
    }
}

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    tracing::debug!(path = %path.display(), value, "cgroup write");
    std::fs::write(&path, value).map_err(|source| CgroupError::Io { path, source })
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Io { path, source })
}

pub(crate) fn read_u64(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .ok()
        .and_then(|s| {
            let t = s.trim();
            if t == "max" {
                Some(u64::MAX)
            } else {
                t.parse().ok()
            }
        })
        .unwrap_or(0)
}

pub(crate) fn keyed(dir: &Path, file: &str, key: &str) -> u64 {
    read(dir, file)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key))
                    .then(|| it.next().and_then(|v| v.parse().ok()))
                    .flatten()
            })
        })
        .unwrap_or(0)
}

pub(crate) fn parse_pids(s: &str) -> Vec<i32> {
    s.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// rmdir with a few retries: the kernel refuses while the last tasks are still exiting.
pub(crate) fn rmdir_retry(dir: &Path) -> Result<(), CgroupError> {
    for attempt in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => {
                // A fake tree in tests holds regular files; remove them like the kernel would.
                if e.raw_os_error() == Some(libc::ENOTEMPTY) {
                    if let Ok(rd) = std::fs::read_dir(dir) {
                        let only_files = rd
                            .flatten()
                            .all(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false));
                        if only_files {
                            return std::fs::remove_dir_all(dir).map_err(|source| {
                                CgroupError::Io {
                                    path: dir.to_path_buf(),
                                    source,
                                }
                            });
                        }
                    }
                }
                return Err(CgroupError::Io {
                    path: dir.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// Removes the empty parents of `dir` that Berth created under `<mount>/berth`, stopping at
/// the first one still in use; cgroups outside `berth/` are never touched.
pub(crate) fn remove_berth_parents(mount: &Path, dir: &Path) {
    let berth = mount.join("berth");
    let mut cur = dir.parent();
    while let Some(p) = cur {
        if !p.starts_with(&berth) {
            break;
        }
        if std::fs::remove_dir(p).is_err() {
            break;
        }
        cur = p.parent();
    }
}

/// Device rules every container gets on top of its config, like runc's allowed devices.
pub(crate) const DEFAULT_DEVICE_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths_live_under_berth() {
        assert_eq!(resolve_path(None, "c1"), Path::new("/berth/c1"));
        assert_eq!(
            resolve_path(Some(Path::new("app/c1")), "c1"),
            Path::new("/berth/app/c1")
        );
        assert_eq!(
            resolve_path(Some(Path::new("/custom/x")), "c1"),
            Path::new("/custom/x")
        );
    }
}
