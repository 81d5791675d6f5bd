//! Snapshots: one directory per unpacked layer, keyed by chain ID and shared by every image
//! that has the layer; overlay mounts of a container rootfs; the diff of an upper directory
//! as a layer tar.

use super::digest::Digest;
use super::store::unique_tmp_name;
use super::unpack::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Errors of snapshot operations.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A filesystem operation failed.
    #[error("snapshot: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A snapshot that should exist does not.
    #[error("snapshot {0} does not exist")]
    Missing(Digest),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The snapshot directories under `<root>/snapshots`.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// Opens (creating if needed) the snapshot directory; leftovers of interrupted unpacks
    /// are removed, since nothing half-written is trusted.
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        let dir = root.join("snapshots");
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let s = Self { dir };
        s.remove_temporaries()?;
        Ok(s)
    }

    fn remove_temporaries(&self) -> Result<(), SnapshotError> {
        for e in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let e = e.map_err(io_err("list", &self.dir))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            // Another process may be unpacking right now: only our own pid's are stale.
            if let Some(rest) = name.strip_prefix("tmp-")
                && let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok())
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    /// The directory of a committed snapshot.
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// Whether the snapshot is committed.
    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// A fresh temporary directory to unpack into; removed on drop unless committed.
    pub fn prepare(&self) -> Result<PendingSnapshot, SnapshotError> {
        let path = self.dir.join(unique_tmp_name("tmp"));
        fs::create_dir(&path).map_err(io_err("create", &path))?;
        Ok(PendingSnapshot {
            path,
            dir: self.dir.clone(),
            committed: false,
        })
    }

    /// Every committed snapshot.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let e = e.map_err(io_err("list", &self.dir))?;
            if let Ok(d) = Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a snapshot (absent is fine).
    pub fn remove(&self, chain_id: &Digest) -> Result<(), SnapshotError> {
        let p = self.path(chain_id);
        // Rename first so a crash midway never leaves a half-deleted snapshot under its key.
        let tmp = self.dir.join(unique_tmp_name("tmp"));
        match fs::rename(&p, &tmp) {
            Ok(()) => fs::remove_dir_all(&tmp).map_err(io_err("remove", &tmp)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("rename", &p)(e)),
        }
    }

    /// Removes every snapshot not in `keep`; returns the removed chain IDs.
    pub fn gc(&self, keep: &HashSet<Digest>) -> Result<Vec<Digest>, SnapshotError> {
        let mut removed = Vec::new();
        for c in self.list()? {
            if !keep.contains(&c) {
                self.remove(&c)?;
                removed.push(c);
            }
        }
        Ok(removed)
    }

    /// Mounts an overlay of the snapshots `chain_ids` (bottom first) with a private
    /// upper/work pair at `target`.
    pub fn mount_rootfs(
        &self,
        chain_ids: &[Digest],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), SnapshotError> {
        let mut lowers: Vec<PathBuf> = Vec::with_capacity(chain_ids.len().max(1));
        for c in chain_ids.iter().rev() {
            let p = self.path(c);
            if !p.is_dir() {
                return Err(SnapshotError::Missing(c.clone()));
            }
            lowers.push(p);
        }
        if lowers.is_empty() {
            // overlayfs needs a lower directory even for an image without layers.
            let empty = self.dir.join("empty");
            fs::create_dir_all(&empty).map_err(io_err("create", &empty))?;
            lowers.push(empty);
        }
        for d in [upper, work, target] {
            fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        mount_overlay(&lowers, upper, work, target)
    }
}

/// The mount(2) data page: option strings must fit in it with their NUL.
const MOUNT_DATA_MAX: usize = 4095;

/// Mounts an overlay of `lowers` (top-most first) with `upper` and `work` at `target`.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), SnapshotError> {
    let lower: Vec<String> = lowers
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if opts.len() > MOUNT_DATA_MAX {
        // Many layers with long snapshot paths overflow the page; the new mount API takes
        // each lower directory in its own call ("lowerdir+", Linux 6.8), so no cwd tricks
        // (cwd is process-wide, and berthd is threaded) and no short-link farm are needed.
        return mount_overlay_appending(lowers, upper, work, target, opts.len());
    }
    let opts = std::ffi::CString::new(opts)
        .map_err(|e| io_err("mount options", target)(io::Error::other(e)))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(opts.as_c_str()),
    )
    .map_err(|e| io_err("mount overlay", target)(e.into()))
}

/// [`mount_overlay`] through fsopen/fsconfig/fsmount, one `lowerdir+` per layer.
fn mount_overlay_appending(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    classic_len: usize,
) -> Result<(), SnapshotError> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| io_err("fsopen overlay for", target)(e.into()))?;
    for l in lowers {
        fsconfig_set_string(&fs, "lowerdir+", l.as_path()).map_err(|e| {
            if e == rustix::io::Errno::INVAL {
                io_err("mount overlay", target)(io::Error::other(format!(
                    "{} layers need {classic_len} bytes of mount options (limit {MOUNT_DATA_MAX}) \
                     and this kernel has no overlay \"lowerdir+\" (Linux 6.8 or later)",
                    lowers.len()
                )))
            } else {
                io_err("overlay lowerdir+", l)(e.into())
            }
        })?;
    }
    fsconfig_set_string(&fs, "upperdir", upper)
        .map_err(|e| io_err("overlay upperdir", upper)(e.into()))?;
    fsconfig_set_string(&fs, "workdir", work)
        .map_err(|e| io_err("overlay workdir", work)(e.into()))?;
    fsconfig_create(&fs).map_err(|e| io_err("create overlay for", target)(e.into()))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| io_err("fsmount overlay for", target)(e.into()))?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| io_err("move overlay mount to", target)(e.into()))
}

/// Unmounts a rootfs mounted by [`Snapshots::mount_rootfs`].
pub fn unmount_rootfs(target: &Path) -> Result<(), SnapshotError> {
    rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| io_err("unmount", target)(e.into()))
}

/// A snapshot being unpacked; see [`Snapshots::prepare`].
#[derive(Debug)]
pub struct PendingSnapshot {
    path: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl PendingSnapshot {
    /// Where to unpack.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the snapshot visible under its chain ID, after syncing its content to disk.
    pub fn commit(mut self, chain_id: &Digest) -> Result<PathBuf, SnapshotError> {
        let dst = self.dir.join(chain_id.hex());
        let f = fs::File::open(&self.path).map_err(io_err("open", &self.path))?;
        rustix::fs::syncfs(&f).map_err(|e| io_err("syncfs", &self.path)(e.into()))?;
        match fs::rename(&self.path, &dst) {
            Ok(()) => {}
            // Another pull committed the same layer first: keep theirs.
            Err(_) if dst.is_dir() => {
                let _ = fs::remove_dir_all(&self.path);
            }
            Err(e) => return Err(io_err("rename", &dst)(e)),
        }
        self.committed = true;
        Ok(dst)
    }
}

impl Drop for PendingSnapshot {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes the content of an overlay upper directory as an OCI layer tar: overlay whiteouts
/// (0/0 character devices, opaque xattrs) become `.wh.` entries.
pub fn diff_to_tar<W: Write>(upper: &Path, w: W) -> Result<W, SnapshotError> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(upper, Path::new(""), &mut b, &mut inodes)?;
    b.into_inner().map_err(io_err("finish tar", upper))
}

fn walk<W: Write>(
    root: &Path,
    rel: &Path,
    b: &mut tar::Builder<W>,
    inodes: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), SnapshotError> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err("list", &dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err("list", &dir))?;
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let p = root.join(&r);
        let m = fs::symlink_metadata(&p).map_err(io_err("stat", &p))?;
        let ft = m.file_type();
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        if ft.is_char_device() && m.rdev() == 0 {
            let wh = rel.join(format!("{WHITEOUT_PREFIX}{}", name.to_string_lossy()));
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o644);
            h.set_mtime(m.mtime().max(0) as u64);
            b.append_data(&mut h, &wh, io::empty())
                .map_err(io_err("write whiteout", &p))?;
            continue;
        }
        append_xattrs(b, &p)?;
        if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, &r, io::empty())
                .map_err(io_err("write dir", &p))?;
            let mut v = [0u8; 4];
            if matches!(rustix::fs::lgetxattr(&p, OVERLAY_OPAQUE_XATTR, &mut v), Ok(1) if v[0] == b'y')
            {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(0);
                h.set_mode(0o644);
                b.append_data(&mut h, r.join(WHITEOUT_OPAQUE), io::empty())
                    .map_err(io_err("write opaque", &p))?;
            }
            walk(root, &r, b, inodes)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&p).map_err(io_err("readlink", &p))?;
            h.set_size(0);
            b.append_link(&mut h, &r, &target)
                .map_err(io_err("write symlink", &p))?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = inodes.get(&key) {
                    let mut h = tar::Header::new_gnu();
                    h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &r, first)
                        .map_err(io_err("write hard link", &p))?;
                    continue;
                }
                inodes.insert(key, r.clone());
            }
            let f = fs::File::open(&p).map_err(io_err("open", &p))?;
            b.append_data(&mut h, &r, f)
                .map_err(io_err("write file", &p))?;
        } else {
            // devices and fifos: the header carries type and numbers
            h.set_size(0);
            if ft.is_char_device() || ft.is_block_device() {
                let rdev = m.rdev();
                h.set_device_major(rustix::fs::major(rdev))
                    .map_err(io_err("device major", &p))?;
                h.set_device_minor(rustix::fs::minor(rdev))
                    .map_err(io_err("device minor", &p))?;
            }
            b.append_data(&mut h, &r, io::empty())
                .map_err(io_err("write node", &p))?;
        }
    }
    Ok(())
}

fn append_xattrs<W: Write>(b: &mut tar::Builder<W>, p: &Path) -> Result<(), SnapshotError> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(p, &mut names) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(io_err("list xattrs", p)(e.into())),
    };
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    for name in names[..n].split(|c| *c == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        // overlay's own bookkeeping is translated (opaque) or meaningless in a layer
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let mut val = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(p, name.as_str(), &mut val) {
            val.truncate(len);
            pax.push((format!("SCHILY.xattr.{name}"), val));
        }
    }
    if !pax.is_empty() {
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(io_err("write xattrs", p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::unpack::unpack_layer;

    #[test]
    fn diff_roundtrips_through_unpack() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        fs::create_dir_all(upper.join("d/sub")).unwrap();
        fs::write(upper.join("d/f"), b"data").unwrap();
        fs::hard_link(upper.join("d/f"), upper.join("d/f2")).unwrap();
        std::os::unix::fs::symlink("/abs/target", upper.join("l")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        rustix::fs::lsetxattr(
            upper.join("d/sub"),
            OVERLAY_OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::lsetxattr(
            upper.join("d/f"),
            "user.test",
            b"v",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let tar = diff_to_tar(&upper, Vec::new()).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".wh.gone",
                "d",
                "d/f",
                "d/f2",
                "d/sub",
                "d/sub/.wh..wh..opq",
                "l"
            ]
        );
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        unpack_layer(&tar[..], &out).unwrap();
        assert_eq!(fs::read(out.join("d/f2")).unwrap(), b"data");
        assert_eq!(fs::symlink_metadata(out.join("d/f")).unwrap().nlink(), 2);
        assert!(
            fs::symlink_metadata(out.join("gone"))
                .unwrap()
                .file_type()
                .is_char_device()
        );
        let mut v = [0u8; 2];
        assert_eq!(
            rustix::fs::lgetxattr(out.join("d/f"), "user.test", &mut v).unwrap(),
            1
        );
        assert_eq!(
            rustix::fs::lgetxattr(out.join("d/sub"), OVERLAY_OPAQUE_XATTR, &mut v).unwrap(),
            1
        );
    }

    #[test]
    fn overlay_mount_merges_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshots::open(dir.path()).unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let p = s.prepare().unwrap();
        fs::write(p.path().join("base"), b"1").unwrap();
        fs::write(p.path().join("hidden"), b"1").unwrap();
        p.commit(&a).unwrap();
        let p = s.prepare().unwrap();
        fs::write(p.path().join("top"), b"2").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p.path().join("hidden"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        p.commit(&b).unwrap();
        let target = dir.path().join("rootfs");
        let guard = MountGuard(target.clone());
        s.mount_rootfs(
            &[a, b],
            &dir.path().join("upper"),
            &dir.path().join("work"),
            &target,
        )
        .unwrap();
        assert!(target.join("base").exists() && target.join("top").exists());
        assert!(!target.join("hidden").exists());
        fs::write(target.join("new"), b"3").unwrap();
        fs::remove_file(target.join("base")).unwrap();
        drop(guard);
        let tar = diff_to_tar(&dir.path().join("upper"), Vec::new()).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [".wh.base", "new"]);
    }

    #[test]
    fn overlay_mount_of_many_layers_past_the_option_page() {
        // A deep root makes every lower path long, as under a real data root.
        let dir = tempfile::tempdir().unwrap();
        let root = dir
            .path()
            .join("a-rather-long-data-root-directory-name".repeat(2));
        let s = Snapshots::open(&root).unwrap();
        let chain: Vec<Digest> = (0..100u32)
            .map(|i| {
                let p = s.prepare().unwrap();
                fs::write(p.path().join(format!("f{i}")), i.to_string()).unwrap();
                fs::write(p.path().join("top"), i.to_string()).unwrap();
                let d = Digest::of(&i.to_be_bytes());
                p.commit(&d).unwrap();
                d
            })
            .collect();
        let classic: usize = chain.iter().map(|c| s.path(c).as_os_str().len() + 1).sum();
        assert!(classic > MOUNT_DATA_MAX, "the test must overflow the page");
        let target = dir.path().join("rootfs");
        let guard = MountGuard(target.clone());
        s.mount_rootfs(
            &chain,
            &dir.path().join("upper"),
            &dir.path().join("work"),
            &target,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(target.join("f0")).unwrap(), "0");
        assert_eq!(fs::read_to_string(target.join("f99")).unwrap(), "99");
        assert_eq!(fs::read_to_string(target.join("top")).unwrap(), "99");
        fs::write(target.join("new"), b"x").unwrap();
        drop(guard);
        assert!(dir.path().join("upper/new").exists());
    }

    struct MountGuard(PathBuf);
    impl Drop for MountGuard {
        fn drop(&mut self) {
            let _ = unmount_rootfs(&self.0);
        }
    }
}
