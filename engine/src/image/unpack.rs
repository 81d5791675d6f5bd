//! Layer tar unpacking into a snapshot directory. Paths are resolved inside the root without
//! following symlinks; OCI whiteouts become overlayfs whiteouts; hard links, xattrs, device
//! nodes, ownership, modes and mtimes are preserved.

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Prefix of an OCI whiteout entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of an OCI opaque-directory marker.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to make a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Errors while unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A filesystem operation failed.
    #[error("unpack: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The archive itself could not be read (truncated or corrupt).
    #[error("unpack: reading layer archive: {0}")]
    Archive(io::Error),
    /// An entry would write outside the root.
    #[error("unpack: refusing entry {path:?}: {reason}")]
    Escape {
        /// The entry path as found in the archive.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> UnpackError + 'a {
    move |source| UnpackError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn rx_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(rustix::io::Errno) -> UnpackError + 'a {
    move |e| UnpackError::Io {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// What an unpack wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries written.
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// Turns an archive path into a relative path of normal components, refusing `..`.
pub fn sanitize(p: &Path) -> Result<PathBuf, UnpackError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                return Err(UnpackError::Escape {
                    path: p.to_path_buf(),
                    reason: "path contains `..`",
                });
            }
            Component::Prefix(_) => {
                return Err(UnpackError::Escape {
                    path: p.to_path_buf(),
                    reason: "path has a prefix",
                });
            }
        }
    }
    Ok(out)
}

/// Makes every directory of `rel` under `root` exist, refusing to pass through a symlink
/// (which could point anywhere, including outside the root).
fn ensure_dirs(root: &Path, rel: &Path, entry: &Path) -> Result<PathBuf, UnpackError> {
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(UnpackError::Escape {
                    path: entry.to_path_buf(),
                    reason: "a parent directory is a symlink",
                });
            }
            Ok(_) => {
                fs::remove_file(&cur).map_err(io_err("remove", &cur))?;
                fs::create_dir(&cur).map_err(io_err("mkdir", &cur))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(io_err("mkdir", &cur))?;
            }
            Err(e) => return Err(io_err("stat", &cur)(e)),
        }
    }
    Ok(cur)
}

/// Removes whatever is at `p` (never following a symlink); absent is fine.
fn remove_existing(p: &Path) -> Result<(), UnpackError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(io_err("remove", p)),
        Ok(_) => fs::remove_file(p).map_err(io_err("remove", p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("stat", p)(e)),
    }
}

fn set_mtime(p: &Path, secs: u64) -> Result<(), UnpackError> {
    let t = Timespec {
        tv_sec: secs as i64,
        tv_nsec: 0,
    };
    let ts = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(rustix::fs::CWD, p, &ts, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(rx_err("utimes", p))
}

/// Unpacks a (decompressed) layer tar into `root`, which must exist.
pub fn unpack_layer<R: Read>(reader: R, root: &Path) -> Result<UnpackStats, UnpackError> {
    let mut archive = tar::Archive::new(reader);
    let mut stats = UnpackStats::default();
    // Directory mtimes change as children are written, so they are set last.
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in archive.entries().map_err(UnpackError::Archive)? {
        let mut entry = entry.map_err(UnpackError::Archive)?;
        let raw_path = entry.path().map_err(UnpackError::Archive)?.into_owned();
        let rel = sanitize(&raw_path)?;
        let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue; // the root itself ("./")
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = ensure_dirs(root, parent_rel, &raw_path)?;
        stats.entries += 1;

        if name == WHITEOUT_OPAQUE {
            rustix::fs::lsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(rx_err("set opaque xattr", &parent))?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(UnpackError::Escape {
                    path: raw_path,
                    reason: "invalid whiteout name",
                });
            }
            let target = parent.join(hidden);
            remove_existing(&target)?;
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &target,
                FileType::CharacterDevice,
                Mode::empty(),
                0,
            )
            .map_err(rx_err("mknod whiteout", &target))?;
            continue;
        }

        let target = parent.join(&name);
        let header = entry.header().clone();
        let mode = header.mode().map_err(UnpackError::Archive)? & 0o7777;
        let uid = header.uid().map_err(UnpackError::Archive)? as u32;
        let gid = header.gid().map_err(UnpackError::Archive)? as u32;
        let mtime = header.mtime().unwrap_or(0);
        let kind = header.entry_type();
        let mut set_mode = true;

        match kind {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    _ => {
                        remove_existing(&target)?;
                        fs::create_dir(&target).map_err(io_err("mkdir", &target))?;
                    }
                }
                dir_times.push((target.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_existing(&target)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(OFlags::NOFOLLOW.bits() as i32)
                    .open(&target)
                    .map_err(io_err("create", &target))?;
                loop {
                    let n = entry.read(&mut buf).map_err(UnpackError::Archive)?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&buf[..n]).map_err(io_err("write", &target))?;
                    stats.bytes += n as u64;
                }
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(UnpackError::Archive)?
                    .ok_or_else(|| UnpackError::Escape {
                        path: raw_path.clone(),
                        reason: "symlink without target",
                    })?
                    .into_owned();
                remove_existing(&target)?;
                // The target is stored, never followed while unpacking: absolute targets are
                // fine inside a rootfs.
                std::os::unix::fs::symlink(&link, &target).map_err(io_err("symlink", &target))?;
                set_mode = false;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(UnpackError::Archive)?
                    .ok_or_else(|| UnpackError::Escape {
                        path: raw_path.clone(),
                        reason: "hard link without target",
                    })?
                    .into_owned();
                let link_rel = sanitize(&link)?;
                let src_parent =
                    ensure_dirs(root, link_rel.parent().unwrap_or(Path::new("")), &raw_path)?;
                let src = match link_rel.file_name() {
                    Some(n) => src_parent.join(n),
                    None => {
                        return Err(UnpackError::Escape {
                            path: raw_path,
                            reason: "hard link to the root",
                        });
                    }
                };
                if src == target {
                    continue;
                }
                remove_existing(&target)?;
                // linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
                fs::hard_link(&src, &target).map_err(io_err("link", &target))?;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                remove_existing(&target)?;
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = rustix::fs::makedev(major, minor);
                rustix::fs::mknodat(rustix::fs::CWD, &target, ft, Mode::from_raw_mode(mode), dev)
                    .map_err(rx_err("mknod", &target))?;
            }
            other => {
                tracing::warn!(path = %raw_path.display(), kind = ?other, "skipping unsupported tar entry");
                continue;
            }
        }

        if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Archive)? {
            for ext in exts {
                let ext = ext.map_err(UnpackError::Archive)?;
                if let Ok(key) = ext.key()
                    && let Some(xname) = key.strip_prefix("SCHILY.xattr.")
                {
                    rustix::fs::lsetxattr(&target, xname, ext.value_bytes(), XattrFlags::empty())
                        .map_err(rx_err("set xattr", &target))?;
                }
            }
        }
        std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
            .map_err(io_err("chown", &target))?;
        // chmod after chown: chown clears setuid/setgid bits.
        if set_mode {
            rustix::fs::chmod(&target, Mode::from_raw_mode(mode))
                .map_err(rx_err("chmod", &target))?;
        }
        if kind != tar::EntryType::Directory {
            set_mtime(&target, mtime)?;
        }
    }
    for (d, t) in dir_times.iter().rev() {
        set_mtime(d, *t)?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_000_000);
        h.set_size(0);
        h
    }

    fn raw_name(h: &mut tar::Header, name: &str) {
        // set_path refuses `..`; write the raw name to build hostile archives.
        let b = name.as_bytes();
        h.as_old_mut().name[..b.len()].copy_from_slice(b);
        h.set_cksum();
    }

    #[test]
    fn unpacks_files_links_whiteouts() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Directory, 0o755);
        b.append_data(&mut h, "etc/", io::empty()).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o4755);
        h.set_size(5);
        b.append_data(&mut h, "etc/file", &b"hello"[..]).unwrap();
        let mut h = header(tar::EntryType::Link, 0);
        b.append_link(&mut h, "etc/hard", "etc/file").unwrap();
        let mut h = header(tar::EntryType::Symlink, 0o777);
        b.append_link(&mut h, "etc/abs", "/etc/passwd").unwrap();
        let mut h = header(tar::EntryType::Regular, 0);
        b.append_data(&mut h, "etc/.wh.gone", io::empty()).unwrap();
        let mut h = header(tar::EntryType::Regular, 0);
        b.append_data(&mut h, "opq/.wh..wh..opq", io::empty())
            .unwrap();
        let data = b.into_inner().unwrap();

        let dir = tempfile::tempdir().unwrap();
        unpack_layer(&data[..], dir.path()).unwrap();
        let f = dir.path().join("etc/file");
        let m = fs::symlink_metadata(&f).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"hello");
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
        assert_eq!((m.uid(), m.gid(), m.mtime()), (1000, 1001, 1_000_000));
        assert_eq!(m.nlink(), 2);
        assert_eq!(
            fs::read_link(dir.path().join("etc/abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        let w = fs::symlink_metadata(dir.path().join("etc/gone")).unwrap();
        assert!(w.file_type().is_char_device());
        assert_eq!(w.rdev(), 0);
        let x = rustix::fs::lgetxattr(dir.path().join("opq"), OVERLAY_OPAQUE_XATTR, &mut [0u8; 4])
            .unwrap();
        assert_eq!(x, 1);
    }

    #[test]
    fn refuses_escapes() {
        // `../` in a name
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Regular, 0o644);
        raw_name(&mut h, "../evil");
        b.append(&h, io::empty()).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        assert!(matches!(
            unpack_layer(&data[..], &root),
            Err(UnpackError::Escape { .. })
        ));
        assert!(!dir.path().join("evil").exists());

        // a symlink to outside, then a file through it
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Symlink, 0o777);
        b.append_link(&mut h, "link", &outside).unwrap();
        let mut h = header(tar::EntryType::Regular, 0o644);
        h.set_size(1);
        b.append_data(&mut h, "link/pwned", &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        assert!(matches!(
            unpack_layer(&data[..], &root),
            Err(UnpackError::Escape { .. })
        ));
        assert!(!outside.join("pwned").exists());

        // a hard link to a file outside
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Link, 0);
        h.set_link_name("x").unwrap();
        raw_name(&mut h, "h");
        let l = b"../outside/secret";
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let data = b.into_inner().unwrap();
        assert!(unpack_layer(&data[..], &root).is_err());
    }

    #[test]
    fn truncated_archive_fails() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Regular, 0o644);
        h.set_size(10000);
        b.append_data(&mut h, "big", &vec![7u8; 10000][..]).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(unpack_layer(&data[..3000], dir.path()).is_err());
    }
}
