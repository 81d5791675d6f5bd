//! The container's file system: spec mounts, /dev, pivot_root, masked and readonly paths.

use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use crate::sys;

/// The mount-related system calls, so mount planning can be tested without root.
pub trait Syscall {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn mkdir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates an empty file (and its parent directories) to bind a file onto.
    fn touch(&self, path: &Path) -> io::Result<()>;
    /// Flags of the mount holding `path`, to keep locked flags on remount.
    fn mount_flags(&self, path: &Path) -> io::Result<libc::c_ulong>;
}

/// The real kernel.
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        sys::mount(source, target, fstype, flags, data)
    }
    fn mkdir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn touch(&self, path: &Path) -> io::Result<()> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        if path.exists() {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(path)
            .map(drop)
    }
    fn mount_flags(&self, path: &Path) -> io::Result<libc::c_ulong> {
        sys::mount_flags(path)
    }
}

/// Parsed mount options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2).
    pub flags: libc::c_ulong,
    /// Propagation changes applied after the mount (MS_SHARED, MS_PRIVATE, ...).
    pub propagation: Vec<libc::c_ulong>,
    /// Filesystem-specific options joined for the data argument.
    pub data: Vec<String>,
    /// bind or rbind was requested.
    pub bind: bool,
}

/// Splits OCI mount options into mount(2) flags, propagation and data.
pub fn parse_options(opts: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in opts {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match opt.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                (libc::MS_BIND, 0)
            }
            "rbind" => {
                o.bind = true;
                (libc::MS_BIND | libc::MS_REC, 0)
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation.push(propagation_flag(opt).unwrap_or(0));
                (0, 0)
            }
            "defaults" => (0, 0),
            // ID-mapped and recursive attributes need mount_setattr; tmpcopyup is crun's.
            "idmap" | "ridmap" | "tmpcopyup" | "rro" | "rrw" | "rnosuid" | "rnodev" | "rnoexec" => {
                (0, 0)
            }
            other => {
                o.data.push(other.to_string());
                (0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o
}

/// The propagation flag for a name like "rslave".
pub fn propagation_flag(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// Joins `unsafe_path` under `root`, resolving symlinks as if `root` were `/`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    let mut pending: Vec<PathBuf> = vec![unsafe_path.to_path_buf()];
    let mut links = 0;
    while let Some(p) = pending.pop() {
        let comps: Vec<Component> = p.components().collect();
        for (i, c) in comps.iter().enumerate() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(name) => {
                    let candidate = root.join(&out).join(name);
                    match std::fs::read_link(&candidate) {
                        Ok(target) if links < 255 => {
                            links += 1;
                            if target.is_absolute() {
                                out = PathBuf::new();
                            }
                            let rest: PathBuf = comps[i + 1..].iter().collect();
                            pending.push(rest);
                            pending.push(target);
                            break;
                        }
                        _ => out.push(name),
                    }
                }
            }
        }
    }
    root.join(out)
}

/// Context for mounting spec entries under the rootfs.
pub struct MountContext<'a> {
    /// The absolute rootfs path.
    pub rootfs: &'a Path,
    /// The bundle directory, for relative bind sources.
    pub bundle: &'a Path,
    /// (controller, host dir) of the container's cgroup per v1 hierarchy.
    pub cgroup_dirs: &'a [(String, PathBuf)],
    /// A new cgroup namespace is in use.
    pub cgroupns: bool,
    /// A new user namespace is in use (mknod is not allowed there).
    pub userns: bool,
}

fn mount_err(what: &str, dest: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", dest.display()))
}

/// Mounts one spec entry.
pub fn mount_entry(sc: &dyn Syscall, ctx: &MountContext, m: &Mount) -> io::Result<()> {
    let opts = parse_options(&m.options().clone().unwrap_or_default());
    let dest = secure_join(ctx.rootfs, m.destination());
    let typ = m.typ().clone().unwrap_or_default();
    if typ == "cgroup" && !opts.bind {
        return mount_cgroup(sc, ctx, &dest, &opts);
    }
    if opts.bind || typ == "bind" {
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            ctx.bundle.join(src)
        };
        if src.is_dir() {
            sc.mkdir_all(&dest)?;
        } else {
            sc.touch(&dest)?;
        }
        let base = libc::MS_BIND | (opts.flags & libc::MS_REC);
        sc.mount(Some(&src), &dest, None, base, None)
            .map_err(|e| mount_err("bind", &dest, e))?;
        let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if extra != 0 {
            // Flags a user namespace inherited as locked must be kept or the remount is refused.
            let locked = sc.mount_flags(&dest).unwrap_or(0)
                & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY);
            let keep = if ctx.userns { locked } else { 0 };
            sc.mount(
                None,
                &dest,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | extra | keep,
                None,
            )
            .map_err(|e| mount_err("remount", &dest, e))?;
        }
    } else {
        sc.mkdir_all(&dest)?;
        let data = opts.data.join(",");
        let data = (!data.is_empty()).then_some(data);
        let src = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
        let r = sc.mount(Some(&src), &dest, Some(&typ), opts.flags, data.as_deref());
        match r {
            Ok(()) => {}
            Err(e) if typ == "sysfs" && e.raw_os_error() == Some(libc::EPERM) => {
                // Without its own network namespace a user namespace cannot mount sysfs.
                sc.mount(
                    Some(Path::new("/sys")),
                    &dest,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
                sc.mount(
                    None,
                    &dest,
                    None,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | opts.flags,
                    None,
                )?;
            }
            Err(e) if typ == "mqueue" && e.raw_os_error() == Some(libc::EPERM) => {
                sc.mount(
                    Some(Path::new("/dev/mqueue")),
                    &dest,
                    None,
                    libc::MS_BIND,
                    None,
                )?;
            }
            Err(e) => return Err(mount_err(&format!("mount {typ}"), &dest, e)),
        }
    }
    for p in &opts.propagation {
        sc.mount(None, &dest, None, *p, None)
            .map_err(|e| mount_err("propagation", &dest, e))?;
    }
    Ok(())
}

/// /sys/fs/cgroup for v1: a tmpfs with one entry per hierarchy showing the container's cgroup.
fn mount_cgroup(
    sc: &dyn Syscall,
    ctx: &MountContext,
    dest: &Path,
    opts: &MountOptions,
) -> io::Result<()> {
    sc.mkdir_all(dest)?;
    if ctx.cgroup_dirs.is_empty() {
        // Unified hierarchy: the kernel shows the namespace root, or the host tree without one.
        return sc.mount(
            Some(Path::new("cgroup2")),
            dest,
            Some("cgroup2"),
            opts.flags,
            None,
        );
    }
    let flags = opts.flags & !libc::MS_RDONLY;
    sc.mount(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("mode=755"),
    )?;
    for (controller, host_dir) in ctx.cgroup_dirs {
        let name = host_dir
            .ancestors()
            .find(|a| a.parent().is_some_and(|p| p == Path::new("/sys/fs/cgroup")))
            .and_then(|a| a.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| controller.clone());
        let target = dest.join(&name);
        sc.mkdir_all(&target)?;
        if ctx.cgroupns {
            sc.mount(
                Some(Path::new("cgroup")),
                &target,
                Some("cgroup"),
                flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some(&name),
            )?;
        } else {
            sc.mount(
                Some(host_dir),
                &target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )?;
        }
        if opts.flags & libc::MS_RDONLY != 0 {
            sc.mount(
                None,
                &target,
                None,
                libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC,
                None,
            )?;
        }
    }
    if opts.flags & libc::MS_RDONLY != 0 {
        sc.mount(
            None,
            dest,
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

/// The devices every container gets: (path, major, minor).
pub const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Creates the default devices, the config's devices and the /dev symlinks.
pub fn setup_dev(rootfs: &Path, devices: &[LinuxDevice], userns: bool) -> io::Result<()> {
    let dev = secure_join(rootfs, Path::new("/dev"));
    std::fs::create_dir_all(&dev)?;
    for (path, major, minor) in DEFAULT_DEVICES {
        if devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            rootfs,
            Path::new(path),
            libc::S_IFCHR | 0o666,
            *major,
            *minor,
            (0, 0),
            userns,
        )?;
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        };
        let mode = kind | d.file_mode().unwrap_or(0o666) & 0o7777;
        make_device(
            rootfs,
            d.path(),
            mode,
            d.major() as u64,
            d.minor() as u64,
            (d.uid().unwrap_or(0), d.gid().unwrap_or(0)),
            userns,
        )?;
    }
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    for (target, name) in links {
        let p = dev.join(name);
        if p.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(target, &p)?;
        }
    }
    if Path::new("/proc/kcore").exists() {
        let p = dev.join("core");
        if p.symlink_metadata().is_err() {
            std::os::unix::fs::symlink("/proc/kcore", &p)?;
        }
    }
    let ptmx = dev.join("ptmx");
    if dev.join("pts").is_dir() {
        let is_link = ptmx
            .symlink_metadata()
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if !is_link {
            let _ = std::fs::remove_file(&ptmx);
            std::os::unix::fs::symlink("pts/ptmx", &ptmx)?;
        }
    }
    let shm = dev.join("shm");
    if !shm.exists() {
        std::fs::create_dir_all(&shm)?;
        std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o1777))?;
    }
    Ok(())
}

fn make_device(
    rootfs: &Path,
    path: &Path,
    mode: u32,
    major: u64,
    minor: u64,
    owner: (u32, u32),
    userns: bool,
) -> io::Result<()> {
    let dest = secure_join(rootfs, path);
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p)?;
    }
    if dest.symlink_metadata().is_ok() {
        // The image may ship a regular file there; a device must replace it.
        let is_dev = dest.metadata().map(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_char_device() || m.file_type().is_block_device()
        });
        if is_dev.unwrap_or(false) {
            return Ok(());
        }
        let _ = std::fs::remove_file(&dest);
    }
    if userns {
        LinuxSyscall.touch(&dest)?;
        return sys::mount(Some(path), &dest, None, libc::MS_BIND, None)
            .map_err(|e| mount_err("bind device", &dest, e));
    }
    // The umask would strip bits from the configured mode; restore it right after.
    let old = sys::umask(0);
    let r = sys::mknod(&dest, mode, major, minor);
    sys::umask(old);
    r.map_err(|e| mount_err("mknod", &dest, e))?;
    sys::lchown(&dest, owner.0, owner.1)
}

/// Moves into the new root with pivot_root and drops the old one.
pub fn pivot_root(rootfs: &Path) -> io::Result<()> {
    let old = std::fs::File::open("/")?;
    let new = std::fs::File::open(rootfs)?;
    sys::fchdir(sys::raw(&new))?;
    sys::pivot_root(Path::new("."), Path::new("."))?;
    sys::fchdir(sys::raw(&old))?;
    // The old root must not propagate the unmount back to the host.
    sys::mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )?;
    sys::umount2(Path::new("."), libc::MNT_DETACH)?;
    std::env::set_current_dir("/")
}

/// `--no-pivot`: move the rootfs over / and chroot into it.
pub fn move_root(rootfs: &Path) -> io::Result<()> {
    std::env::set_current_dir(rootfs)?;
    sys::mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)?;
    sys::chroot(Path::new("."))?;
    std::env::set_current_dir("/")
}

/// Hides paths: /dev/null over files, an empty read-only tmpfs over directories.
pub fn mask_paths(sc: &dyn Syscall, paths: &[String]) -> io::Result<()> {
    for p in paths {
        let path = Path::new(p);
        let Ok(meta) = path.metadata() else {
            continue;
        };
        if meta.is_dir() {
            sc.mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                libc::MS_RDONLY,
                None,
            )?;
        } else {
            sc.mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                libc::MS_BIND,
                None,
            )?;
        }
    }
    Ok(())
}

/// Makes paths read-only with a bind mount onto themselves.
pub fn readonly_paths(sc: &dyn Syscall, paths: &[String]) -> io::Result<()> {
    for p in paths {
        let path = Path::new(p);
        if path.symlink_metadata().is_err() {
            continue;
        }
        sc.mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None)?;
        let locked = sc.mount_flags(path).unwrap_or(0)
            & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        sc.mount(
            None,
            path,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked,
            None,
        )?;
    }
    Ok(())
}

/// Writes sysctls through /proc/sys.
pub fn apply_sysctls(sysctls: &std::collections::HashMap<String, String>) -> io::Result<()> {
    for (k, v) in sysctls {
        if k.contains("..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("linux.sysctl: bad key {k:?}"),
            ));
        }
        let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&path, v)
            .map_err(|e| io::Error::new(e.kind(), format!("linux.sysctl {k}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Recorder {
        calls: RefCell<Vec<String>>,
    }

    impl Syscall for Recorder {
        fn mount(
            &self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: libc::c_ulong,
            data: Option<&str>,
        ) -> io::Result<()> {
            self.calls.borrow_mut().push(format!(
                "mount {:?} {} {:?} {:#x} {:?}",
                source.map(|s| s.display().to_string()),
                target.display(),
                fstype,
                flags,
                data
            ));
            Ok(())
        }
        fn mkdir_all(&self, path: &Path) -> io::Result<()> {
            self.calls
                .borrow_mut()
                .push(format!("mkdir {}", path.display()));
            Ok(())
        }
        fn touch(&self, path: &Path) -> io::Result<()> {
            self.calls
                .borrow_mut()
                .push(format!("touch {}", path.display()));
            Ok(())
        }
        fn mount_flags(&self, _path: &Path) -> io::Result<libc::c_ulong> {
            Ok(libc::MS_NODEV)
        }
    }

    fn mnt(json: serde_json::Value) -> Mount {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "rslave".into(),
        ]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        assert!(!o.bind);
        let o = parse_options(&["rbind".into(), "ro".into(), "rw".into()]);
        assert!(o.bind);
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC);
    }

    #[test]
    fn readonly_bind_is_bind_then_remount() {
        let root = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let rec = Recorder::default();
        let ctx = MountContext {
            rootfs: root.path(),
            bundle: Path::new("/b"),
            cgroup_dirs: &[],
            cgroupns: false,
            userns: true,
        };
        let m = mnt(serde_json::json!({"destination": "/data", "type": "bind",
            "source": src.path(), "options": ["rbind", "ro", "nosuid"]}));
        mount_entry(&rec, &ctx, &m).unwrap();
        let calls = rec.calls.borrow();
        let dest = root.path().join("data");
        assert_eq!(calls[0], format!("mkdir {}", dest.display()));
        assert_eq!(
            calls[1],
            format!(
                "mount Some({:?}) {} None {:#x} None",
                src.path().display().to_string(),
                dest.display(),
                libc::MS_BIND | libc::MS_REC
            )
        );
        // The remount keeps the locked nodev flag the source mount had.
        assert_eq!(
            calls[2],
            format!(
                "mount None {} None {:#x} None",
                dest.display(),
                libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
            )
        );
    }

    #[test]
    fn tmpfs_gets_data_and_file_bind_gets_touch() {
        let root = tempfile::tempdir().unwrap();
        let rec = Recorder::default();
        let ctx = MountContext {
            rootfs: root.path(),
            bundle: Path::new("/b"),
            cgroup_dirs: &[],
            cgroupns: false,
            userns: false,
        };
        mount_entry(
            &rec,
            &ctx,
            &mnt(
                serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "mode=755"]}),
            ),
        )
        .unwrap();
        mount_entry(
            &rec,
            &ctx,
            &mnt(
                serde_json::json!({"destination": "/etc/hosts", "source": "/etc/hosts",
                "options": ["bind"]}),
            ),
        )
        .unwrap();
        let calls = rec.calls.borrow();
        assert!(calls[1].contains("Some(\"tmpfs\")") && calls[1].contains("Some(\"mode=755\")"));
        assert_eq!(
            calls[2],
            format!("touch {}", root.path().join("etc/hosts").display())
        );
    }

    #[test]
    fn v1_cgroup_mount_is_tmpfs_plus_binds() {
        let root = tempfile::tempdir().unwrap();
        let rec = Recorder::default();
        let dirs = vec![(
            "memory".to_string(),
            PathBuf::from("/sys/fs/cgroup/memory/berth/c1"),
        )];
        let ctx = MountContext {
            rootfs: root.path(),
            bundle: Path::new("/b"),
            cgroup_dirs: &dirs,
            cgroupns: false,
            userns: false,
        };
        mount_entry(
            &rec,
            &ctx,
            &mnt(
                serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
                "source": "cgroup", "options": ["ro", "nosuid"]}),
            ),
        )
        .unwrap();
        let calls = rec.calls.borrow();
        assert!(calls[1].contains("Some(\"tmpfs\")"));
        assert!(calls[3].contains("/sys/fs/cgroup/memory/berth/c1"));
        assert!(calls.last().unwrap().contains("Some(\"mode=755\")"));
    }

    #[test]
    fn secure_join_keeps_symlinks_inside() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.path().join("escape")).unwrap();
        assert_eq!(
            secure_join(root.path(), Path::new("/abs/x")),
            root.path().join("real/x")
        );
        assert_eq!(
            secure_join(root.path(), Path::new("/escape/passwd")),
            root.path().join("etc/passwd")
        );
        assert_eq!(
            secure_join(root.path(), Path::new("/../../a")),
            root.path().join("a")
        );
    }

    #[test]
    fn masking_uses_dev_null_and_tmpfs() {
        let rec = Recorder::default();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        mask_paths(
            &rec,
            &[
                dir.path().display().to_string(),
                file.display().to_string(),
                "/does/not/exist".into(),
            ],
        )
        .unwrap();
        let calls = rec.calls.borrow();
        assert_eq!(calls.len(), 2);
        assert!(calls[0].contains("tmpfs"));
        assert!(calls[1].contains("/dev/null"));
    }
}
