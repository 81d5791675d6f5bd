//! Secret and config files of the tasks on this node. They live on a tmpfs that the worker
//! mounts for them (so their data never reaches a disk), one directory per task, and each file
//! is bind-mounted read-only into the task's container at its target.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_orchestrator::swarm::secrets::{DataKind, DataPayload, FileRef, references};
use bollard_stubs::models::{Mount, MountType, Task};
use rustix::mount::{MountFlags, UnmountFlags};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Opened data by kind and object ID, as the last session answer carried it.
pub type DataSet = HashMap<(DataKind, String), Vec<u8>>;

/// The payloads of a session answer, decoded; undecodable ones are left out (and the tasks
/// that need them are rejected with a clear message).
pub fn decode(payloads: &[DataPayload]) -> DataSet {
    payloads
        .iter()
        .filter_map(|p| Some(((p.kind, p.id.clone()), STANDARD.decode(&p.data).ok()?)))
        .collect()
}

/// The tmpfs holding every task's files.
#[derive(Debug, Clone)]
pub struct TaskFiles {
    root: PathBuf,
}

fn is_mount_point(path: &Path) -> bool {
    let target = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_ref()))
}

fn numeric(what: &str, v: &str) -> Result<u32, String> {
    v.parse()
        .map_err(|_| format!("{what} {v:?} of a secret or config file is not a number"))
}

impl TaskFiles {
    /// Files kept below `root` (a directory the worker owns).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn ensure_mounted(&self) -> Result<(), String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| format!("create {}: {e}", self.root.display()))?;
        if is_mount_point(&self.root) {
            return Ok(());
        }
        rustix::mount::mount(
            "tmpfs",
            &self.root,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"mode=0700",
        )
        .map_err(|e| format!("mount a tmpfs on {}: {e}", self.root.display()))
    }

    /// Writes `task`'s files and returns the bind mounts that put them in its container.
    pub fn prepare(&self, task: &Task, data: &DataSet) -> Result<Vec<Mount>, String> {
        let refs: Vec<FileRef> = task
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .map(references)
            .unwrap_or_default();
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_mounted()?;
        let task_id = task.id.as_deref().unwrap_or_default();
        let dir = self.root.join(task_id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut mounts = Vec::with_capacity(refs.len());
        for (i, f) in refs.iter().enumerate() {
            let Some(bytes) = data.get(&(f.kind, f.id.clone())) else {
                return Err(format!(
                    "{} {} is not available on this node",
                    f.kind.noun(),
                    f.name
                ));
            };
            let uid = numeric("uid", &f.uid)?;
            let gid = numeric("gid", &f.gid)?;
            let path = dir.join(format!("{i}-{}", f.id));
            let write = || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(bytes)?;
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
                // After chown, which clears set-id bits; the mode is exactly the spec's.
                file.set_permissions(std::fs::Permissions::from_mode(f.mode & 0o7777))
            };
            write().map_err(|e| format!("write {} {}: {e}", f.kind.noun(), f.name))?;
            mounts.push(Mount {
                target: Some(f.target.clone()),
                source: Some(path.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Default::default()
            });
        }
        Ok(mounts)
    }

    /// Removes the files of tasks not in `keep`.
    pub fn retain(&self, keep: &BTreeSet<&str>) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !keep.contains(name.to_string_lossy().as_ref()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Removes every file and the tmpfs itself (the node left the swarm).
    pub fn remove_all(&self) {
        self.retain(&BTreeSet::new());
        if is_mount_point(&self.root) {
            let _ = rustix::mount::unmount(&self.root, UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_that_is_not_base64_is_left_out() {
        let set = decode(&[
            DataPayload {
                kind: DataKind::Secret,
                id: "a".into(),
                data: STANDARD.encode(b"x"),
            },
            DataPayload {
                kind: DataKind::Config,
                id: "b".into(),
                data: "%%".into(),
            },
        ]);
        assert_eq!(set.len(), 1);
        assert_eq!(set[&(DataKind::Secret, "a".to_string())], b"x");
    }
}
