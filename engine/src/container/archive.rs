//! Files of a container: stat, tar out (`docker cp` from), tar in (`docker cp` to) and export.
//! Paths are resolved inside the rootfs (symlinks included), so nothing escapes it.

use super::{ContainerError, ContainerService, rootpath};
use crate::Result;
use crate::image::unpack::sanitize;
use serde::Serialize;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What `HEAD /containers/{id}/archive` reports in `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go `os.FileMode` bits (type bits + permissions).
    pub mode: u32,
    /// Modification time (RFC 3339).
    pub mtime: String,
    /// For symlinks, the resolved target inside the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The header value: base64 of the JSON.
    pub fn header_value(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

fn go_mode(md: &std::fs::Metadata) -> u32 {
    let ft = md.file_type();
    use std::os::unix::fs::FileTypeExt;
    let mut m = md.permissions().mode() & 0o777;
    let raw = md.mode();
    if ft.is_dir() {
        m |= 1 << 31;
    } else if ft.is_symlink() {
        m |= 1 << 27;
    } else if ft.is_fifo() {
        m |= 1 << 25;
    } else if ft.is_socket() {
        m |= 1 << 24;
    } else if ft.is_char_device() {
        m |= (1 << 26) | (1 << 21);
    } else if ft.is_block_device() {
        m |= 1 << 26;
    }
    if raw & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if raw & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if raw & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// Total size of the files under `dir` (not following symlinks).
pub(super) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                total += md.len();
            }
        }
    }
    total
}

fn base_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "/".into())
}

fn tar_err(e: std::io::Error) -> ContainerError {
    ContainerError::Internal(format!("tar: {e}"))
}

impl ContainerService {
    /// Runs `f` on the mounted rootfs (mounting it for the call if the container is stopped).
    fn with_rootfs<T>(&self, id: &str, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        self.mount_ref(id)?;
        let r = f(&self.rootfs(id));
        self.mount_unref(id);
        r
    }

    fn not_found(path: &str, id: &str) -> ContainerError {
        ContainerError::NoSuchPath(format!("Could not find the file {path} in container {id}"))
    }

    /// Stat of a path inside the container.
    pub fn archive_stat(&self, id: &str, path: &str) -> Result<PathStat> {
        let id = self.resolve(id)?;
        self.with_rootfs(&id, |root| {
            let host = rootpath::resolve(root, path, false);
            let md = host
                .symlink_metadata()
                .map_err(|_| Self::not_found(path, &id))?;
            let link_target = if md.file_type().is_symlink() {
                let t = rootpath::resolve(root, path, true);
                format!("/{}", t.strip_prefix(root).unwrap_or(&t).display())
            } else {
                String::new()
            };
            Ok(PathStat {
                name: base_name(path),
                size: md.len() as i64,
                mode: go_mode(&md),
                mtime: berth_shim::time::format_nanos(
                    md.modified().unwrap_or(std::time::UNIX_EPOCH),
                ),
                link_target,
            })
        })
    }

    /// Writes a tar of `path` (a file, link or directory named by its base name; `dir/.`
    /// gives the directory's contents).
    pub fn archive_get(&self, id: &str, path: &str, out: impl Write) -> Result<()> {
        let id = self.resolve(id)?;
        self.with_rootfs(&id, |root| {
            let follow = path.ends_with('/') || path.ends_with("/.");
            let host = rootpath::resolve(root, path, follow);
            let md = host
                .symlink_metadata()
                .map_err(|_| Self::not_found(path, &id))?;
            let mut b = tar::Builder::new(out);
            b.follow_symlinks(false);
            if md.is_dir() {
                let name = if path.ends_with("/.") {
                    ".".to_string()
                } else {
                    base_name(path.trim_end_matches('/'))
                };
                b.append_dir_all(&name, &host).map_err(tar_err)?;
            } else {
                b.append_path_with_name(&host, base_name(path))
                    .map_err(tar_err)?;
            }
            b.into_inner().map_err(tar_err)?.flush().map_err(tar_err)?;
            Ok(())
        })
    }

    /// Extracts a tar into directory `path` of the container.
    pub fn archive_put(
        &self,
        id: &str,
        path: &str,
        tar: impl Read,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        let id = self.resolve(id)?;
        let rec = self.get(&id)?;
        if rec.host_config.readonly_rootfs == Some(true) {
            return Err(
                ContainerError::Conflict("container rootfs is marked read-only".into()).into(),
            );
        }
        self.with_rootfs(&id, |root| {
            let dest = rootpath::resolve(root, path, true);
            let md = dest.metadata().map_err(|_| Self::not_found(path, &id))?;
            if !md.is_dir() {
                return Err(
                    ContainerError::Invalid("extraction point is not a directory".into()).into(),
                );
            }
            let base = format!(
                "/{}",
                dest.strip_prefix(root).unwrap_or(Path::new("")).display()
            );
            let mut ar = tar::Archive::new(tar);
            ar.set_preserve_permissions(true);
            ar.set_preserve_ownerships(copy_uid_gid);
            ar.set_overwrite(true);
            for entry in ar.entries().map_err(tar_err)? {
                let mut e = entry.map_err(tar_err)?;
                let raw = e.path().map_err(tar_err)?.into_owned();
                let rel = sanitize(&raw).map_err(|err| ContainerError::Invalid(err.to_string()))?;
                if rel.as_os_str().is_empty() {
                    continue;
                }
                let in_ctr = Path::new(&base).join(&rel);
                let parent = in_ctr
                    .parent()
                    .map(|p| p.to_string_lossy().to_string())
                    .unwrap_or_else(|| "/".into());
                let parent_host = rootpath::resolve(root, &parent, true);
                let target: PathBuf = parent_host.join(rel.file_name().unwrap_or_default());
                let is_dir = e.header().entry_type().is_dir();
                if no_overwrite_dir_non_dir && let Ok(old) = target.symlink_metadata() {
                    if old.is_dir() && !is_dir {
                        return Err(ContainerError::Invalid(format!(
                            "cannot overwrite directory \"{}\" with non-directory \"{}\"",
                            in_ctr.display(),
                            raw.display()
                        ))
                        .into());
                    }
                    if !old.is_dir() && is_dir {
                        return Err(ContainerError::Invalid(format!(
                            "cannot overwrite non-directory \"{}\" with directory \"{}\"",
                            in_ctr.display(),
                            raw.display()
                        ))
                        .into());
                    }
                }
                std::fs::create_dir_all(&parent_host)
                    .map_err(super::io_err("create", &parent_host))?;
                if e.header().entry_type().is_hard_link() {
                    let link = e
                        .link_name()
                        .map_err(tar_err)?
                        .unwrap_or_default()
                        .into_owned();
                    let lrel =
                        sanitize(&link).map_err(|err| ContainerError::Invalid(err.to_string()))?;
                    let src = rootpath::resolve(
                        root,
                        &Path::new(&base).join(lrel).to_string_lossy(),
                        false,
                    );
                    let _ = std::fs::remove_file(&target);
                    std::fs::hard_link(&src, &target).map_err(super::io_err("link", &target))?;
                    continue;
                }
                if is_dir && target.is_dir() {
                    if let Ok(mode) = e.header().mode() {
                        let _ = std::fs::set_permissions(
                            &target,
                            std::fs::Permissions::from_mode(mode & 0o7777),
                        );
                    }
                    continue;
                }
                e.unpack(&target).map_err(tar_err)?;
            }
            Ok(())
        })
    }

    /// `docker export`: a tar of the container's filesystem.
    pub fn export(&self, id: &str, out: impl Write) -> Result<()> {
        let id = self.resolve(id)?;
        self.with_rootfs(&id, |root| {
            let mut b = tar::Builder::new(out);
            b.follow_symlinks(false);
            for e in std::fs::read_dir(root)
                .map_err(super::io_err("read", root))?
                .flatten()
            {
                let name = e.file_name();
                let p = e.path();
                if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                    b.append_dir_all(&name, &p).map_err(tar_err)?;
                } else {
                    b.append_path_with_name(&p, &name).map_err(tar_err)?;
                }
            }
            b.into_inner().map_err(tar_err)?.flush().map_err(tar_err)?;
            Ok(())
        })
    }
}
