//! Copy-up: an empty volume mounted over a directory of the image gets that directory's
//! content once (files, ownership, modes, times, xattrs, symlinks, hard links, nodes).

use super::VolumeError;
use super::error::io_err;
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Whether a directory has no entries (a missing one counts as empty).
pub(super) fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut rd| rd.next().is_none())
}

/// Copies `src`'s content into the empty `dst` and gives `dst` the owner and mode of `src`.
pub(super) fn copy_up(src: &Path, dst: &Path) -> Result<(), VolumeError> {
    let md = src.symlink_metadata().map_err(io_err("stat", src))?;
    if !md.is_dir() {
        return Ok(());
    }
    let mut links = HashMap::new();
    copy_dir(src, dst, &mut links)?;
    apply_meta(src, dst, &md)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), VolumeError> {
    for e in std::fs::read_dir(src).map_err(io_err("read", src))? {
        let e = e.map_err(io_err("read", src))?;
        let s = e.path();
        let d = dst.join(e.file_name());
        let md = s.symlink_metadata().map_err(io_err("stat", &s))?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&d).map_err(io_err("create", &d))?;
            copy_dir(&s, &d, links)?;
        } else if md.nlink() > 1
            && !ft.is_dir()
            && let Some(first) = links.get(&(md.dev(), md.ino()))
        {
            std::fs::hard_link(first, &d).map_err(io_err("link", &d))?;
            continue;
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&s).map_err(io_err("readlink", &s))?;
            std::os::unix::fs::symlink(&t, &d).map_err(io_err("symlink", &d))?;
        } else if ft.is_file() {
            std::fs::copy(&s, &d).map_err(io_err("copy", &d))?;
        } else {
            let mode = rustix::fs::FileType::from_raw_mode(md.mode());
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &d,
                mode,
                rustix::fs::Mode::from_raw_mode(md.mode() & 0o7777),
                md.rdev(),
            )
            .map_err(|e| io_err("mknod", &d)(e.into()))?;
        }
        if md.nlink() > 1 && !ft.is_dir() {
            links.insert((md.dev(), md.ino()), d.clone());
        }
        apply_meta(&s, &d, &md)?;
    }
    Ok(())
}

/// Owner, mode (after chown, which clears set-id bits), xattrs and times.
fn apply_meta(src: &Path, dst: &Path, md: &std::fs::Metadata) -> Result<(), VolumeError> {
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid())).map_err(io_err("chown", dst))?;
    if !md.file_type().is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(io_err("chmod", dst))?;
    }
    copy_xattrs(src, dst);
    let ts = |s: i64, ns: i64| rustix::fs::Timespec {
        tv_sec: s,
        tv_nsec: ns as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: ts(md.atime(), md.atime_nsec()),
        last_modification: ts(md.mtime(), md.mtime_nsec()),
    };
    let _ = rustix::fs::utimensat(
        rustix::fs::CWD,
        dst,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    );
    Ok(())
}

fn copy_xattrs(src: &Path, dst: &Path) {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(src, &mut names) else {
        return;
    };
    for name in names[..n].split(|c| *c == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        // overlay's own bookkeeping means nothing outside the overlay.
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let mut val = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(src, name.as_str(), &mut val) {
            let _ = rustix::fs::lsetxattr(
                dst,
                name.as_str(),
                &val[..len],
                rustix::fs::XattrFlags::empty(),
            );
        }
    }
}
