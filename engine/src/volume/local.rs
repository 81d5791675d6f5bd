//! The local driver's file-system side: `type`/`o`/`device` options mounted like
//! `mount -t <type> -o <o> <device> <_data>`, and sizes.

use super::VolumeError;
use rustix::mount::{MountFlags, UnmountFlags};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

const VALID_OPTS: &[&str] = &["type", "device", "o", "size"];

/// Checks driver options as Docker's local driver does.
pub(super) fn validate_opts(opts: &BTreeMap<String, String>) -> Result<(), VolumeError> {
    for k in opts.keys() {
        if !VALID_OPTS.contains(&k.as_str()) {
            return Err(VolumeError::Invalid(format!("invalid option: \"{k}\"")));
        }
    }
    let typ = opts.get("type").filter(|s| !s.is_empty());
    let device = opts.get("device").filter(|s| !s.is_empty());
    match (typ, device) {
        (Some(_), None) => Err(VolumeError::Invalid(
            "missing required option: \"device\"".into(),
        )),
        (None, Some(_)) => Err(VolumeError::Invalid(
            "missing required option: \"type\"".into(),
        )),
        (None, None) if opts.contains_key("o") => Err(VolumeError::Invalid(
            "missing required option: \"type\"".into(),
        )),
        _ => {
            if opts.contains_key("size") {
                return Err(VolumeError::Invalid(
                    "quota size requested but no quota support".into(),
                ));
            }
            let o = opts.get("o").map(String::as_str).unwrap_or("");
            if o.split(',').any(|f| f == "bind" || f == "rbind")
                && let Some(d) = device
                && !Path::new(d).exists()
            {
                return Err(VolumeError::Invalid(format!(
                    "invalid device: bind source path does not exist: {d}"
                )));
            }
            Ok(())
        }
    }
}

/// Splits `o` into mount flags and the data string the file system gets.
fn parse_o(o: &str) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= MountFlags::RDONLY,
            "rw" | "defaults" | "suid" | "dev" | "exec" | "async" => {}
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            "dirsync" => flags |= MountFlags::DIRSYNC,
            "noatime" => flags |= MountFlags::NOATIME,
            "nodiratime" => flags |= MountFlags::NODIRATIME,
            "relatime" => flags |= MountFlags::RELATIME,
            "strictatime" => flags |= MountFlags::STRICTATIME,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Mounts a volume's file system on its `_data` directory.
pub(super) fn mount(opts: &BTreeMap<String, String>, target: &Path) -> Result<(), VolumeError> {
    let typ = opts.get("type").map(String::as_str).unwrap_or("");
    let device = opts.get("device").map(String::as_str).unwrap_or("");
    let (flags, data) = parse_o(opts.get("o").map(String::as_str).unwrap_or(""));
    let fail = |e: rustix::io::Errno| VolumeError::Mount {
        path: target.to_path_buf(),
        message: format!("mount -t {typ} {device}: {e}"),
    };
    let cdata = std::ffi::CString::new(data).map_err(|e| VolumeError::Mount {
        path: target.to_path_buf(),
        message: e.to_string(),
    })?;
    let data_arg = (!cdata.as_bytes().is_empty()).then_some(cdata.as_c_str());
    rustix::mount::mount(device, target, typ, flags, data_arg).map_err(fail)?;
    // A bind ignores MS_RDONLY: read-only takes a remount.
    if flags.contains(MountFlags::BIND) && flags.contains(MountFlags::RDONLY) {
        let r = rustix::mount::mount_remount(target, flags | MountFlags::BIND, "");
        if let Err(e) = r {
            let _ = unmount(target);
            return Err(fail(e));
        }
    }
    Ok(())
}

/// Unmounts a volume's `_data` (lazily, as containers may still hold it open).
pub(super) fn unmount(target: &Path) -> Result<(), VolumeError> {
    rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(|e| VolumeError::Mount {
        path: target.to_path_buf(),
        message: format!("unmount: {e}"),
    })
}

pub(super) use crate::container::is_mounted;

/// Bytes of the files below `dir` (hard links counted once, symlinks not followed), like
/// Docker's `directory.Size`.
pub(super) fn size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
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
            } else if md.nlink() <= 1 || seen.insert((md.dev(), md.ino())) {
                total += md.size();
            }
        }
    }
    total
}
