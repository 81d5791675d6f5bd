//! cgroup v1: one directory per hierarchy, controllers found in /proc/self/mountinfo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{CgroupError, Manager, Stats, keyed, parse_pids, read, read_u64, rmdir_retry, write};

const CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// Controller name to mount point, from mountinfo text.
pub fn parse_mountinfo(text: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup") {
            continue;
        }
        let _source = post.next();
        let opts = post.next().unwrap_or("");
        let Some(mountpoint) = pre.split_whitespace().nth(4) else {
            continue;
        };
        for opt in opts.split(',') {
            if CONTROLLERS.contains(&opt) {
                out.entry(opt.to_string())
                    .or_insert_with(|| PathBuf::from(unescape(mountpoint)));
            }
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\134", "\\")
}

/// A container's cgroup on every v1 hierarchy.
#[derive(Debug, Clone)]
pub struct V1Manager {
    mounts: BTreeMap<String, PathBuf>,
    path: PathBuf,
}

impl V1Manager {
    /// A manager for `path` (absolute, relative to each hierarchy root) over the given mounts.
    pub fn new(mounts: BTreeMap<String, PathBuf>, path: &Path) -> Self {
        V1Manager {
            mounts,
            path: path.to_path_buf(),
        }
    }

    fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.mounts
            .get(controller)
            .map(|m| m.join(self.path.strip_prefix("/").unwrap_or(&self.path)))
    }

    fn need(&self, controller: &str) -> Result<PathBuf, CgroupError> {
        self.dir(controller)
            .ok_or_else(|| CgroupError::MissingController(controller.to_string()))
    }

    /// (controller, directory) for each distinct hierarchy.
    pub fn dirs(&self) -> Vec<(String, PathBuf)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (c, m) in &self.mounts {
            if seen.insert(m.clone()) {
                if let Some(d) = self.dir(c) {
                    out.push((c.clone(), d));
                }
            }
        }
        out
    }

    fn apply_memory(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(mem) = res.memory() else {
            return Ok(());
        };
        let dir = self.need("memory")?;
        if let Some(limit) = mem.limit() {
            let swap = mem.swap();
            let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
            // memsw must stay >= limit, so the order of the two writes depends on the direction.
            let first = write(&dir, "memory.limit_in_bytes", &limit.to_string());
            if let (Some(sw), true) = (swap, memsw) {
                write(&dir, "memory.memsw.limit_in_bytes", &sw.to_string())?;
            }
            if first.is_err() {
                write(&dir, "memory.limit_in_bytes", &limit.to_string())?;
            }
        } else if let Some(sw) = mem.swap() {
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                write(&dir, "memory.memsw.limit_in_bytes", &sw.to_string())?;
            }
        }
        if let Some(r) = mem.reservation() {
            write(&dir, "memory.soft_limit_in_bytes", &r.to_string())?;
        }
        if let Some(s) = mem.swappiness() {
            if s > 100 {
                return Err(CgroupError::Invalid {
                    field: "memory.swappiness".into(),
                    message: format!("{s} is above 100"),
                });
            }
            write(&dir, "memory.swappiness", &s.to_string())?;
        }
        if mem.disable_oom_killer() == Some(true) {
            write(&dir, "memory.oom_control", "1")?;
        }
        if let Some(k) = mem.kernel() {
            if dir.join("memory.kmem.limit_in_bytes").exists() {
                let _ = write(&dir, "memory.kmem.limit_in_bytes", &k.to_string());
            }
        }
        if let Some(k) = mem.kernel_tcp() {
            if dir.join("memory.kmem.tcp.limit_in_bytes").exists() {
                write(&dir, "memory.kmem.tcp.limit_in_bytes", &k.to_string())?;
            }
        }
        Ok(())
    }

    fn apply_cpu(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = res.cpu() else {
            return Ok(());
        };
        let any_cpu = cpu.shares().is_some()
            || cpu.quota().is_some()
            || cpu.period().is_some()
            || cpu.realtime_period().is_some()
            || cpu.realtime_runtime().is_some();
        if any_cpu {
            let dir = self.need("cpu")?;
            if let Some(s) = cpu.shares() {
                write(&dir, "cpu.shares", &s.to_string())?;
            }
            if let Some(p) = cpu.period() {
                write(&dir, "cpu.cfs_period_us", &p.to_string())?;
            }
            if let Some(q) = cpu.quota() {
                write(&dir, "cpu.cfs_quota_us", &q.to_string())?;
            }
            if let Some(p) = cpu.realtime_period() {
                write(&dir, "cpu.rt_period_us", &p.to_string())?;
            }
            if let Some(r) = cpu.realtime_runtime() {
                write(&dir, "cpu.rt_runtime_us", &r.to_string())?;
            }
        }
        if cpu.cpus().is_some() || cpu.mems().is_some() {
            let dir = self.need("cpuset")?;
            if let Some(c) = cpu.cpus() {
                write(&dir, "cpuset.cpus", c)?;
            }
            if let Some(m) = cpu.mems() {
                write(&dir, "cpuset.mems", m)?;
            }
        }
        Ok(())
    }

    fn apply_blkio(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(b) = res.block_io() else {
            return Ok(());
        };
        let dir = self.need("blkio")?;
        if let Some(w) = b.weight() {
            let file = if dir.join("blkio.weight").exists() {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
            write(&dir, file, &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight() {
            // CFQ's leaf weights are gone from kernels since 5.0.
            if dir.join("blkio.leaf_weight").exists() {
                write(&dir, "blkio.leaf_weight", &w.to_string())?;
            } else {
                tracing::warn!("blockIO.leafWeight: not supported by this kernel; ignored");
            }
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                write(
                    &dir,
                    "blkio.weight_device",
                    &format!("{}:{} {}", d.major(), d.minor(), w),
                )?;
            }
            if let Some(w) = d.leaf_weight() {
                write(
                    &dir,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {}", d.major(), d.minor(), w),
                )?;
            }
        }
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        for (file, list) in throttles {
            for d in list.iter().flatten() {
                write(
                    &dir,
                    file,
                    &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
        Ok(())
    }

    fn apply_devices(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        // No rules (as in an `update`) leaves the cgroup's list as it is.
        let (Some(dir), Some(rules)) = (self.dir("devices"), res.devices()) else {
            return Ok(());
        };
        for rule in rules {
            let file = if rule.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(&dir, file, &device_rule(rule))?;
        }
        for rule in super::DEFAULT_DEVICE_RULES {
            write(&dir, "devices.allow", rule)?;
        }
        Ok(())
    }
}

/// The devices.allow / devices.deny line for a rule.
pub fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => "p",
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    format!("{typ} {}:{} {access}", num(rule.major()), num(rule.minor()))
}

impl Manager for V1Manager {
    fn create(&self) -> Result<(), CgroupError> {
        for (c, dir) in self.dirs() {
            std::fs::create_dir_all(&dir).map_err(|source| CgroupError::Io {
                path: dir.clone(),
                source,
            })?;
            if c == "cpuset" {
                init_cpuset(&self.mounts[&c], &dir)?;
            }
        }
        // cpuset may share a hierarchy with another controller: make sure it is initialised.
        if let (Some(m), Some(d)) = (self.mounts.get("cpuset"), self.dir("cpuset")) {
            init_cpuset(m, &d)?;
        }
        Ok(())
    }

    fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        self.apply_memory(res)?;
        self.apply_cpu(res)?;
        if let Some(p) = res.pids() {
            let dir = self.need("pids")?;
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            write(&dir, "pids.max", &v)?;
        }
        self.apply_blkio(res)?;
        for h in res.hugepage_limits().iter().flatten() {
            let dir = self.need("hugetlb")?;
            write(
                &dir,
                &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
                &h.limit().to_string(),
            )?;
        }
        if let Some(net) = res.network() {
            if let Some(id) = net.class_id() {
                write(&self.need("net_cls")?, "net_cls.classid", &id.to_string())?;
            }
            for p in net.priorities().iter().flatten() {
                write(
                    &self.need("net_prio")?,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        self.apply_devices(res)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        for (_, dir) in self.dirs() {
            write(&dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.need("freezer")?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        for _ in 0..1000 {
            write(&dir, "freezer.state", want)?;
            if read(&dir, "freezer.state")?.trim() == want {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Io {
            path: dir.join("freezer.state"),
            source: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
        })
    }

    fn is_frozen(&self) -> bool {
        self.dir("freezer")
            .and_then(|d| read(&d, "freezer.state").ok())
            .is_some_and(|s| s.trim() != "THAWED")
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let (_, dir) = self
            .dirs()
            .into_iter()
            .find(|(c, _)| matches!(c.as_str(), "pids" | "freezer" | "memory" | "devices"))
            .or_else(|| self.dirs().into_iter().next())
            .ok_or_else(|| CgroupError::NotMounted("no v1 hierarchy".into()))?;
        match read(&dir, "cgroup.procs") {
            Ok(s) => Ok(parse_pids(&s)),
            Err(CgroupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("memory") {
            s.memory_usage = read_u64(&d, "memory.usage_in_bytes");
            s.memory_max_usage = read_u64(&d, "memory.max_usage_in_bytes");
            s.memory_limit = read_u64(&d, "memory.limit_in_bytes");
            s.oom_kills = keyed(&d, "memory.oom_control", "oom_kill");
        }
        if let Some(d) = self.dir("pids") {
            s.pids_current = read_u64(&d, "pids.current");
            let max = read_u64(&d, "pids.max");
            s.pids_limit = if max == u64::MAX { 0 } else { max };
        }
        if let Some(d) = self.dir("cpuacct") {
            s.cpu_usage_ns = read_u64(&d, "cpuacct.usage");
        }
        if let Some(d) = self.dir("cpu") {
            s.cpu_throttled_periods = keyed(&d, "cpu.stat", "nr_throttled");
        }
        Ok(s)
    }

    fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for (_, dir) in self.dirs() {
            if let Err(e) = rmdir_retry(&dir) {
                first_err.get_or_insert(e);
            }
            // Tidy the shared `berth` parents once the last container is gone; busy is fine.
            if let Some(mount) = self.mounts.values().find(|m| dir.starts_with(m)) {
                super::remove_berth_parents(mount, &dir);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// A new cpuset cgroup has empty cpus/mems and refuses tasks until they are copied from the parent.
fn init_cpuset(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = read(&cur, f).unwrap_or_default();
            if mine.trim().is_empty() {
                let theirs = read(&parent, f).unwrap_or_default();
                if !theirs.trim().is_empty() {
                    write(&cur, f, theirs.trim())?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxResourcesBuilder,
    };

    const MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn mountinfo_finds_controllers_only() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m["cpu"], Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(m["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(m["cpuacct"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(!m.contains_key("name=systemd"));
        assert_eq!(m.len(), 3);
    }

    fn fake() -> (tempfile::TempDir, V1Manager) {
        let t = tempfile::tempdir().unwrap();
        let mut mounts = BTreeMap::new();
        for c in ["memory", "cpu", "cpuset", "pids", "freezer", "devices"] {
            let d = t.path().join(c);
            std::fs::create_dir_all(&d).unwrap();
            mounts.insert(c.to_string(), d);
        }
        std::fs::write(t.path().join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(t.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
        let m = V1Manager::new(mounts, Path::new("/berth/c1"));
        (t, m)
    }

    #[test]
    fn writes_limits_into_each_hierarchy() {
        let (t, m) = fake();
        m.create().unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("cpuset/berth/c1/cpuset.cpus")).unwrap(),
            "0-1"
        );
        let res = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .reservation(32 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50000i64)
                    .period(100000u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        m.apply(&res).unwrap();
        let r = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(r("memory/berth/c1/memory.limit_in_bytes"), "67108864");
        assert_eq!(r("memory/berth/c1/memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(r("cpu/berth/c1/cpu.shares"), "512");
        assert_eq!(r("cpu/berth/c1/cpu.cfs_quota_us"), "50000");
        assert_eq!(r("cpu/berth/c1/cpu.cfs_period_us"), "100000");
        assert_eq!(r("pids/berth/c1/pids.max"), "20");
        assert!(std::fs::metadata(t.path().join("devices/berth/c1/devices.deny")).is_ok());
        m.add_task(42).unwrap();
        assert_eq!(m.pids().unwrap(), vec![42]);
        m.remove().unwrap();
        assert!(!t.path().join("memory/berth/c1").exists());
        assert!(!t.path().join("memory/berth").exists());
    }

    #[test]
    fn missing_controller_is_an_error() {
        let (_t, m) = fake();
        let res = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![
                oci_spec::runtime::LinuxHugepageLimitBuilder::default()
                    .page_size("2MB")
                    .limit(1i64 << 21)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        m.create().unwrap();
        assert!(matches!(
            m.apply(&res),
            Err(CgroupError::MissingController(c)) if c == "hugetlb"
        ));
        m.remove().unwrap();
    }

    #[test]
    fn device_rule_lines() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1i64)
            .minor(3i64)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(device_rule(&r), "c 1:3 rw");
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        assert_eq!(device_rule(&all), "a *:* rwm");
    }
}
