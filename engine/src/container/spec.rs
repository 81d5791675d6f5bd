//! The OCI runtime spec of a container, from its config and host config, following Docker's
//! daemon/oci_linux.go and containerd's defaults (mounts, masked paths, capabilities,
//! seccomp, cgroup resources).

use super::ContainerError;
use super::user;
use bollard_stubs::models::{ContainerConfig, HostConfig, MountType};
use oci_spec::runtime::Spec;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// Docker's default capabilities (shared with RUN steps of builds).
pub use crate::image::build::run::DEFAULT_CAPS;

/// Every capability the kernel knows (up to CAP_CHECKPOINT_RESTORE).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The default PATH (Docker's `DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where an init binary is looked for on the host (`--init`); the first one found is used.
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/local/bin/docker-init",
    "/usr/bin/docker-init",
    "/usr/bin/tini-static",
    "/usr/bin/tini",
];

/// What the spec is made from.
pub struct SpecInput<'a> {
    /// The container ID.
    pub id: &'a str,
    /// The effective config.
    pub config: &'a ContainerConfig,
    /// The host config.
    pub host: &'a HostConfig,
    /// The mounted rootfs (users are resolved in it, the working dir is created in it).
    pub rootfs: &'a Path,
    /// The container directory holding `hostname`, `hosts` and `resolv.conf`.
    pub dir: &'a Path,
    /// Finds the init PID of another container for `container:<name>` modes.
    pub pid_of: &'a dyn Fn(&str) -> Result<i64, ContainerError>,
    /// The pinned network namespace to join, when the engine made one (bridge networks).
    pub netns: Option<&'a Path>,
}

/// Normalizes `net_admin` / `CAP_NET_ADMIN` to `CAP_NET_ADMIN`.
fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capabilities this process can hand out: [`ALL_CAPS`] (numbered in order) within our
/// own bounding set, as Docker's "all capabilities" are.
fn available_caps() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Docker's capability tweak: defaults, then drops and adds (`ALL` in either).
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, ContainerError> {
    if host.privileged == Some(true) {
        return Ok(available_caps());
    }
    let check = |c: &str| -> Result<String, ContainerError> {
        let n = cap_name(c);
        if n == "CAP_ALL" || ALL_CAPS.contains(&n.as_str()) {
            Ok(n)
        } else {
            Err(ContainerError::Invalid(format!(
                "unknown capability: \"{n}\""
            )))
        }
    };
    let adds: Vec<String> = host
        .cap_add
        .iter()
        .flatten()
        .map(|c| check(c))
        .collect::<Result<_, _>>()?;
    let drops: Vec<String> = host
        .cap_drop
        .iter()
        .flatten()
        .map(|c| check(c))
        .collect::<Result<_, _>>()?;
    if adds.iter().any(|c| c == "CAP_ALL") {
        return Ok(available_caps()
            .into_iter()
            .filter(|c| !drops.contains(c) || adds.contains(c))
            .collect());
    }
    let mut caps: Vec<String> = if drops.iter().any(|c| c == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    for a in adds {
        if !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

/// Replaces or appends `KEY=value` entries like Docker's `ReplaceOrAppendEnvValues`.
pub fn merge_env(base: &mut Vec<String>, over: &[String]) {
    for e in over {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
        if let Some(slot) = base
            .iter_mut()
            .find(|b| b.split_once('=').map(|(k, _)| k).unwrap_or(b) == key)
        {
            slot.clone_from(e);
        } else {
            base.push(e.clone());
        }
    }
}

/// Parses Docker sizes (`64m`, `1g`, `512k`, `100`) into bytes.
pub fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    Some((v * mul as f64) as i64)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

fn ns_mode(mode: Option<&str>) -> Option<&str> {
    mode.filter(|m| !m.is_empty())
}

/// Parses a Binds entry `src:dst[:opts]` into a mount.
fn bind_mount(spec: &str) -> Result<(Value, String), ContainerError> {
    let invalid = || ContainerError::Invalid(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(invalid()),
    };
    if !dst.starts_with('/') {
        return Err(ContainerError::Invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    if !src.starts_with('/') {
        return Err(ContainerError::Invalid(format!(
            "invalid volume specification: '{spec}'"
        )));
    }
    let mut options = vec!["rbind".to_string()];
    let mut propagation = "rprivate".to_string();
    let mut ro = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" | "z" | "Z" | "nocopy" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                propagation = o.to_string()
            }
            _ => return Err(invalid()),
        }
    }
    if ro {
        options.push("ro".into());
    }
    options.push(propagation);
    // Docker creates a missing source directory for -v (not for --mount).
    if !Path::new(src).exists() {
        std::fs::create_dir_all(src).map_err(super::error::io_err("create bind source", src))?;
    }
    Ok((
        json!({"destination": dst, "type": "bind", "source": src, "options": options}),
        dst.to_string(),
    ))
}

/// Every device node of the host (`--privileged`), as runc's `HostDevices` lists them.
fn host_devices() -> Vec<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = p.symlink_metadata() else {
                continue;
            };
            let ft = md.file_type();
            let name = e.file_name();
            if ft.is_dir() {
                if !matches!(
                    name.to_str(),
                    Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
                ) {
                    stack.push(p);
                }
                continue;
            }
            if name == "console" {
                continue;
            }
            let typ = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let rdev = md.rdev();
            out.push(json!({"path": p, "type": typ, "major": libc::major(rdev),
                "minor": libc::minor(rdev), "fileMode": md.mode() & 0o7777,
                "uid": md.uid(), "gid": md.gid()}));
        }
    }
    out
}

/// Builds the OCI spec; returns it with warnings to show the user.
pub fn build(input: &SpecInput<'_>) -> Result<(Spec, Vec<String>), ContainerError> {
    let c = input.config;
    let h = input.host;
    let mut warnings = Vec::new();
    let privileged = h.privileged == Some(true);
    let tty = c.tty == Some(true);

    // Process.
    let mut args: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(ContainerError::Invalid("no command specified".into()));
    }
    let hostname = c
        .hostname
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| input.id[..12].to_string());
    let usr = user::resolve(
        input.rootfs,
        c.user.as_deref().unwrap_or(""),
        h.group_add.as_deref().unwrap_or(&[]),
    )?;
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, c.env.as_deref().unwrap_or(&[]));
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", usr.home));
    }
    let cwd = c
        .working_dir
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(ContainerError::Invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let wd = super::rootpath::resolve(input.rootfs, &cwd, true);
    if !wd.exists() {
        std::fs::create_dir_all(&wd).map_err(super::error::io_err("create working dir", &wd))?;
        let _ = std::os::unix::fs::chown(&wd, Some(usr.uid), Some(usr.gid));
    }
    let caps = capabilities(h)?;
    let sec = h.security_opt.clone().unwrap_or_default();
    let no_new_privs = sec.iter().any(|o| {
        matches!(
            o.as_str(),
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
        )
    });
    let mut rlimits = Vec::new();
    for u in h.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        let soft = u.soft.unwrap_or(0);
        let hard = u.hard.unwrap_or(soft);
        rlimits.push(json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": soft as u64, "hard": hard as u64}));
    }
    if h.init == Some(true) {
        match INIT_CANDIDATES.iter().find(|p| Path::new(p).exists()) {
            Some(_) => {
                let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
                a.append(&mut args);
                args = a;
            }
            None => warnings.push("no init binary found on the host; --init ignored".into()),
        }
    }
    let mut process = json!({
        "terminal": tty,
        "user": {"uid": usr.uid, "gid": usr.gid, "additionalGids": usr.additional_gids},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privs,
    });
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    if let Some(adj) = h.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }

    // Namespaces.
    let mut namespaces = vec![json!({"type": "mount"})];
    let join =
        |kind: &str, mode: Option<&str>, ns: &str| -> Result<Option<Value>, ContainerError> {
            match ns_mode(mode) {
                Some("host") => Ok(None),
                Some(m) if m.starts_with("container:") => {
                    let pid = (input.pid_of)(&m["container:".len()..])?;
                    Ok(Some(
                        json!({"type": kind, "path": format!("/proc/{pid}/ns/{ns}")}),
                    ))
                }
                _ => Ok(Some(json!({"type": kind}))),
            }
        };
    let net_mode = ns_mode(h.network_mode.as_deref()).unwrap_or("bridge");
    let host_net = net_mode == "host";
    match (join("network", Some(net_mode), "net")?, input.netns) {
        (Some(n), Some(p)) if n.get("path").is_none() => {
            namespaces.push(json!({"type": "network", "path": p}));
        }
        (Some(n), _) => namespaces.push(n),
        (None, _) => {}
    }
    let ipc_mode = ns_mode(h.ipc_mode.as_deref());
    if let Some(n) = join("ipc", ipc_mode, "ipc")? {
        namespaces.push(n);
    }
    if let Some(n) = join("pid", h.pid_mode.as_deref(), "pid")? {
        namespaces.push(n);
    }
    let host_uts = ns_mode(h.uts_mode.as_deref()) == Some("host") || host_net;
    if !host_uts {
        namespaces.push(json!({"type": "uts"}));
    }
    if ns_mode(h.cgroupns_mode.as_ref().map(|m| m.as_ref())) == Some("private") {
        namespaces.push(json!({"type": "cgroup"}));
    }

    // Mounts.
    let shm_size = h.shm_size.filter(|s| *s > 0).unwrap_or(64 << 20);
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            if privileged {
                &["nosuid", "noexec", "nodev"]
            } else {
                &["nosuid", "noexec", "nodev", "ro"]
            },
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            if privileged {
                &["nosuid", "noexec", "nodev", "relatime"]
            } else {
                &["ro", "nosuid", "noexec", "nodev", "relatime"]
            },
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    if ipc_mode == Some("host") {
        mounts.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        ));
    } else {
        mounts.push(
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
        );
    }
    let mut user_mounts: Vec<(Value, String)> = Vec::new();
    for b in h.binds.iter().flatten() {
        user_mounts.push(bind_mount(b)?);
    }
    for m in h.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        if !target.starts_with('/') {
            return Err(ContainerError::Invalid(format!(
                "invalid mount config for type \"{}\": invalid mount path: '{target}' mount path must be absolute",
                m.typ.map(|t| t.to_string()).unwrap_or_default()
            )));
        }
        let ro = m.read_only == Some(true);
        match m.typ {
            Some(MountType::BIND) => {
                let src = m.source.clone().unwrap_or_default();
                if !Path::new(&src).exists() {
                    return Err(ContainerError::Invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                    )));
                }
                let prop = m
                    .bind_options
                    .as_ref()
                    .and_then(|b| b.propagation)
                    .map(|p| p.to_string())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "rprivate".into());
                let rec = m.bind_options.as_ref().and_then(|b| b.non_recursive) != Some(true);
                let mut o = vec![if rec { "rbind" } else { "bind" }.to_string()];
                if ro {
                    o.push("ro".into());
                }
                o.push(prop);
                user_mounts.push((
                    json!({"destination": target, "type": "bind", "source": src, "options": o}),
                    target,
                ));
            }
            Some(MountType::TMPFS) => {
                let mut o = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
                if let Some(t) = &m.tmpfs_options {
                    if let Some(s) = t.size_bytes.filter(|s| *s > 0) {
                        o.push(format!("size={s}"));
                    }
                    if let Some(mode) = t.mode.filter(|m| *m > 0) {
                        o.push(format!("mode={mode:o}"));
                    }
                    for kv in t.options.iter().flatten() {
                        o.push(kv.join("="));
                    }
                }
                if ro {
                    o.push("ro".into());
                }
                user_mounts.push((
                    json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o}),
                    target,
                ));
            }
            other => {
                return Err(ContainerError::Invalid(format!(
                    "mount type {} is not supported yet",
                    other.map(|t| t.to_string()).unwrap_or_default()
                )));
            }
        }
    }
    for (dst, opts) in h.tmpfs.iter().flatten() {
        let mut o = vec!["noexec".to_string(), "nosuid".into(), "nodev".into()];
        o.extend(
            opts.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        user_mounts.push((
            json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}),
            dst.clone(),
        ));
    }
    // Parents before children, as Docker sorts mounts.
    user_mounts.sort_by_key(|(_, d)| Path::new(d).components().count());
    let user_dests: Vec<String> = user_mounts.iter().map(|(_, d)| d.clone()).collect();
    mounts.retain(|m| {
        let d = m["destination"].as_str().unwrap_or("");
        !user_dests.iter().any(|u| u == d)
    });
    mounts.extend(user_mounts.into_iter().map(|(m, _)| m));
    let ro_root = h.readonly_rootfs == Some(true);
    for f in ["hostname", "hosts", "resolv.conf"] {
        let dest = format!("/etc/{f}");
        if user_dests.contains(&dest) {
            continue;
        }
        let mut o = vec!["rbind", "rprivate"];
        if ro_root {
            o.push("ro");
        }
        mounts.push(json!({"destination": dest, "type": "bind",
            "source": input.dir.join(f), "options": o}));
    }
    if h.init == Some(true)
        && let Some(p) = INIT_CANDIDATES.iter().find(|p| Path::new(p).exists())
    {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind",
            "source": p, "options": ["bind", "ro", "rprivate"]}));
    }

    // Resources.
    let mut res = json!({});
    let mut devices = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}),
        json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
    ];
    if privileged {
        devices = vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut linux_devices = if privileged {
        host_devices()
    } else {
        Vec::new()
    };
    for d in h.devices.iter().flatten() {
        let host = d.path_on_host.clone().unwrap_or_default();
        let in_c = d
            .path_in_container
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| host.clone());
        let perms = d
            .cgroup_permissions
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "rwm".into());
        let md = std::fs::metadata(&host).map_err(|_| {
            ContainerError::Invalid(format!("error gathering device information while adding custom device \"{host}\": no such file or directory"))
        })?;
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let typ = if md.file_type().is_block_device() {
            "b"
        } else if md.file_type().is_char_device() {
            "c"
        } else {
            return Err(ContainerError::Invalid(format!(
                "{host} is not a device node"
            )));
        };
        let rdev = md.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        linux_devices.push(
            json!({"path": in_c, "type": typ, "major": major, "minor": minor,
            "fileMode": md.mode() & 0o7777, "uid": 0, "gid": 0}),
        );
        devices.push(
            json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": perms}),
        );
    }
    res["devices"] = json!(devices);
    let mut mem = json!({});
    if let Some(m) = h.memory.filter(|m| *m > 0) {
        mem["limit"] = json!(m);
        match h.memory_swap {
            Some(-1) => mem["swap"] = json!(-1),
            Some(s) if s > 0 => mem["swap"] = json!(s),
            _ => mem["swap"] = json!(m * 2),
        }
    }
    if let Some(r) = h.memory_reservation.filter(|m| *m > 0) {
        mem["reservation"] = json!(r);
    }
    if h.oom_kill_disable == Some(true) {
        mem["disableOOMKiller"] = json!(true);
    }
    if let Some(s) = h.memory_swappiness.filter(|s| *s >= 0) {
        mem["swappiness"] = json!(s);
    }
    if mem.as_object().is_some_and(|o| !o.is_empty()) {
        res["memory"] = mem;
    }
    let mut cpu = json!({});
    if let Some(s) = h.cpu_shares.filter(|s| *s > 0) {
        cpu["shares"] = json!(s);
    }
    if let Some(n) = h.nano_cpus.filter(|n| *n > 0) {
        if h.cpu_quota.is_some_and(|q| q > 0) || h.cpu_period.is_some_and(|p| p > 0) {
            return Err(ContainerError::Invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        cpu["period"] = json!(100_000);
        cpu["quota"] = json!(n * 100_000 / 1_000_000_000);
    }
    if let Some(p) = h.cpu_period.filter(|p| *p > 0) {
        cpu["period"] = json!(p);
    }
    if let Some(q) = h.cpu_quota.filter(|q| *q > 0) {
        cpu["quota"] = json!(q);
    }
    if let Some(s) = h.cpuset_cpus.clone().filter(|s| !s.is_empty()) {
        cpu["cpus"] = json!(s);
    }
    if let Some(s) = h.cpuset_mems.clone().filter(|s| !s.is_empty()) {
        cpu["mems"] = json!(s);
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        res["cpu"] = cpu;
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        res["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
    }
    if let Some(w) = h.blkio_weight.filter(|w| *w > 0) {
        res["blockIO"] = json!({"weight": w});
    }

    let mut linux = json!({
        "cgroupsPath": format!("/berth/{}", input.id),
        "namespaces": namespaces,
        "resources": res,
    });
    if !linux_devices.is_empty() {
        linux["devices"] = json!(linux_devices);
    }
    if !privileged {
        let mut masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        let mut ro: Vec<String> = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
        if let Some(m) = &h.masked_paths {
            masked.clone_from(m);
        }
        if let Some(r) = &h.readonly_paths {
            ro.clone_from(r);
        }
        linux["maskedPaths"] = json!(masked);
        linux["readonlyPaths"] = json!(ro);
    }
    let sysctls: BTreeMap<String, String> =
        h.sysctls.clone().unwrap_or_default().into_iter().collect();
    if !sysctls.is_empty() {
        linux["sysctl"] = json!(sysctls);
    }
    let seccomp_opt = sec.iter().find_map(|o| {
        o.strip_prefix("seccomp=")
            .or_else(|| o.strip_prefix("seccomp:"))
    });
    match seccomp_opt {
        _ if privileged => {}
        Some("unconfined") => {}
        Some(file) => {
            let txt = std::fs::read_to_string(file).map_err(|e| {
                ContainerError::Invalid(format!("opening seccomp profile ({file}) failed: {e}"))
            })?;
            let v: Value = serde_json::from_str(&txt).map_err(|e| {
                ContainerError::Invalid(format!("decoding seccomp profile failed: {e}"))
            })?;
            linux["seccomp"] = v;
        }
        None => {
            let prof = berth_runtime::default_profile(&caps);
            linux["seccomp"] = serde_json::to_value(&prof)
                .map_err(|e| ContainerError::Internal(format!("seccomp profile: {e}")))?;
        }
    }

    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": input.rootfs, "readonly": ro_root},
        "mounts": mounts,
        "linux": linux,
    });
    if !host_uts {
        spec["hostname"] = json!(hostname);
        if let Some(d) = c.domainname.clone().filter(|d| !d.is_empty()) {
            spec["domainname"] = json!(d);
        }
    }
    let spec: Spec = serde_json::from_value(spec)
        .map_err(|e| ContainerError::Internal(format!("generated OCI spec is invalid: {e}")))?;
    Ok((spec, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::ResourcesUlimits;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nu:x:5:6::/home/u:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\n").unwrap();
        d
    }

    fn build_with(c: ContainerConfig, h: HostConfig) -> (Spec, Vec<String>) {
        let r = rootfs();
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let no = |_: &str| -> Result<i64, ContainerError> { Ok(4242) };
        build(&SpecInput {
            id,
            config: &c,
            host: &h,
            rootfs: r.path(),
            dir: Path::new("/ctr"),
            pid_of: &no,
            netns: None,
        })
        .unwrap()
    }

    fn v(s: &Spec) -> Value {
        serde_json::to_value(s).unwrap()
    }

    #[test]
    fn defaults() {
        let (s, w) = build_with(
            ContainerConfig {
                cmd: Some(vec!["sh".into()]),
                env: Some(vec!["A=1".into(), "PATH=/x".into()]),
                ..Default::default()
            },
            HostConfig::default(),
        );
        assert!(w.is_empty());
        let j = v(&s);
        assert_eq!(j["process"]["args"], json!(["sh"]));
        assert_eq!(
            j["process"]["env"],
            json!(["PATH=/x", "HOSTNAME=0123456789ab", "A=1", "HOME=/root"])
        );
        assert_eq!(j["hostname"], "0123456789ab");
        assert_eq!(
            j["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(
            j["linux"]["cgroupsPath"],
            "/berth/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
        assert!(
            j["linux"]["seccomp"]["syscalls"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
        assert!(
            j["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .contains(&json!("/proc/kcore"))
        );
        let dests: Vec<&str> = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf"
            ]
        );
        let shm = &j["mounts"][6];
        assert!(
            shm["options"]
                .as_array()
                .unwrap()
                .contains(&json!("size=67108864"))
        );
        let ns: Vec<&str> = j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["mount", "network", "ipc", "pid", "uts"]);
    }

    #[test]
    fn host_config() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("data");
        let h = HostConfig {
            binds: Some(vec![format!("{}:/data:ro", src.display())]),
            tmpfs: Some([("/run".to_string(), "size=1m".to_string())].into()),
            cap_add: Some(vec!["net_admin".into()]),
            cap_drop: Some(vec!["MKNOD".into()]),
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(100),
            network_mode: Some("host".into()),
            pid_mode: Some("container:web".into()),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(10),
                hard: Some(20),
            }]),
            security_opt: Some(vec![
                "no-new-privileges".into(),
                "seccomp=unconfined".into(),
            ]),
            readonly_rootfs: Some(true),
            sysctls: Some([("net.core.somaxconn".to_string(), "1024".to_string())].into()),
            shm_size: Some(1 << 20),
            ..Default::default()
        };
        let c = ContainerConfig {
            entrypoint: Some(vec!["/bin/echo".into()]),
            cmd: Some(vec!["hi".into()]),
            user: Some("u".into()),
            working_dir: Some("/work/dir".into()),
            tty: Some(true),
            ..Default::default()
        };
        let r = rootfs();
        let pid_of = |n: &str| -> Result<i64, ContainerError> {
            assert_eq!(n, "web");
            Ok(77)
        };
        let (s, _) = build(&SpecInput {
            id: &"a".repeat(64),
            config: &c,
            host: &h,
            rootfs: r.path(),
            dir: Path::new("/ctr"),
            pid_of: &pid_of,
            netns: None,
        })
        .unwrap();
        assert!(src.is_dir(), "missing bind source created like docker -v");
        assert!(r.path().join("work/dir").is_dir());
        let j = v(&s);
        assert_eq!(j["process"]["args"], json!(["/bin/echo", "hi"]));
        assert_eq!(j["process"]["user"]["uid"], 5);
        assert_eq!(j["process"]["user"]["gid"], 6);
        assert_eq!(j["process"]["terminal"], true);
        assert!(
            j["process"]["env"]
                .as_array()
                .unwrap()
                .contains(&json!("TERM=xterm"))
        );
        assert_eq!(j["process"]["noNewPrivileges"], true);
        assert_eq!(
            j["process"]["rlimits"][0],
            json!({"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20})
        );
        let caps = j["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(caps.contains(&json!("CAP_NET_ADMIN")) && !caps.contains(&json!("CAP_MKNOD")));
        assert!(j["linux"].get("seccomp").is_none());
        assert!(
            j.get("hostname").is_none(),
            "host network shares the host's UTS"
        );
        let ns = j["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert!(ns.contains(&json!({"type": "pid", "path": "/proc/77/ns/pid"})));
        assert_eq!(j["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(j["linux"]["resources"]["memory"]["swap"], 128 << 20);
        assert_eq!(j["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(j["linux"]["resources"]["pids"]["limit"], 100);
        assert_eq!(j["linux"]["sysctl"]["net.core.somaxconn"], "1024");
        assert_eq!(j["root"]["readonly"], true);
        let m: Vec<&Value> = j["mounts"].as_array().unwrap().iter().collect();
        let data = m.iter().find(|m| m["destination"] == "/data").unwrap();
        assert!(data["options"].as_array().unwrap().contains(&json!("ro")));
        assert!(
            m.iter()
                .any(|m| m["destination"] == "/run" && m["type"] == "tmpfs")
        );
        assert!(m.iter().any(|m| {
            m["destination"] == "/dev/shm"
                && m["options"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("size=1048576"))
        }));
    }

    #[test]
    fn caps_and_errors() {
        let h = HostConfig {
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(vec!["CAP_KILL".into()]),
            ..Default::default()
        };
        assert_eq!(capabilities(&h).unwrap(), ["CAP_KILL"]);
        let h = HostConfig {
            cap_add: Some(vec!["ALL".into()]),
            ..Default::default()
        };
        assert_eq!(capabilities(&h).unwrap(), available_caps());
        assert!(available_caps().contains(&"CAP_SYS_ADMIN".to_string()));
        let h = HostConfig {
            cap_add: Some(vec!["BOGUS".into()]),
            ..Default::default()
        };
        assert_eq!(
            capabilities(&h).unwrap_err().to_string(),
            "unknown capability: \"CAP_BOGUS\""
        );
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("10"), Some(10));
        let r = rootfs();
        let no = |_: &str| -> Result<i64, ContainerError> { Ok(1) };
        let c = ContainerConfig::default();
        let h = HostConfig::default();
        let e = build(&SpecInput {
            id: &"b".repeat(64),
            config: &c,
            host: &h,
            rootfs: r.path(),
            dir: Path::new("/c"),
            pid_of: &no,
            netns: None,
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "no command specified");
    }
}
