//! cgroup v2: one directory in the unified hierarchy.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{CgroupError, Manager, Stats, keyed, parse_pids, read, read_u64, rmdir_retry, write};

/// A container's cgroup in the unified hierarchy.
#[derive(Debug, Clone)]
pub struct V2Manager {
    root: PathBuf,
    dir: PathBuf,
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc and crun use.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + ((u64::from(w).clamp(10, 1000) - 10) * 9999) / 990
}

impl V2Manager {
    /// A manager for `path` under the unified mount `root` (a temp dir in tests).
    pub fn new(root: &Path, path: &Path) -> Self {
        V2Manager {
            root: root.to_path_buf(),
            dir: root.join(path.strip_prefix("/").unwrap_or(path)),
        }
    }

    /// The cgroup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn enable_controllers(&self) {
        let Ok(avail) = read(&self.root, "cgroup.controllers") else {
            return;
        };
        let line: String = avail
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        if line.is_empty() {
            return;
        }
        let rel = self.dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut cur = self.root.clone();
        let comps: Vec<_> = rel.components().collect();
        // Every ancestor (not the leaf itself) must delegate controllers to its children.
        for comp in comps.iter().take(comps.len().saturating_sub(1)) {
            let _ = write(&cur, "cgroup.subtree_control", &line);
            cur.push(comp);
        }
        if !comps.is_empty() {
            let _ = write(&cur, "cgroup.subtree_control", &line);
        }
    }
}

impl Manager for V2Manager {
    fn create(&self) -> Result<(), CgroupError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| CgroupError::Io {
            path: self.dir.clone(),
            source,
        })?;
        self.enable_controllers();
        Ok(())
    }

    fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        let d = &self.dir;
        if let Some(m) = res.memory() {
            if let Some(l) = m.limit() {
                write(d, "memory.max", &limit_str(l))?;
            }
            if let Some(r) = m.reservation() {
                write(d, "memory.low", &limit_str(r))?;
            }
            if let Some(sw) = m.swap() {
                // v1's swap is memory+swap; v2 limits swap alone.
                let v = match (sw, m.limit()) {
                    (s, _) if s < 0 => "max".to_string(),
                    (s, Some(l)) if l >= 0 => {
                        if s < l {
                            return Err(CgroupError::Invalid {
                                field: "memory.swap".into(),
                                message: "memory+swap limit below memory limit".into(),
                            });
                        }
                        (s - l).to_string()
                    }
                    (s, _) => s.to_string(),
                };
                write(d, "memory.swap.max", &v)?;
            }
            if m.disable_oom_killer() == Some(true) {
                tracing::warn!("disableOOMKiller is not supported on cgroup v2; ignored");
            }
        }
        if let Some(c) = res.cpu() {
            if let Some(s) = c.shares() {
                write(d, "cpu.weight", &shares_to_weight(s).to_string())?;
            }
            if c.quota().is_some() || c.period().is_some() {
                let q = match c.quota() {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".into(),
                };
                let p = c.period().unwrap_or(100_000);
                write(d, "cpu.max", &format!("{q} {p}"))?;
            }
            if let Some(cpus) = c.cpus() {
                write(d, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(d, "cpuset.mems", mems)?;
            }
        }
        if let Some(p) = res.pids() {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            write(d, "pids.max", &v)?;
        }
        if let Some(b) = res.block_io() {
            if let Some(w) = b.weight() {
                write(d, "io.weight", &blkio_to_io_weight(w).to_string())?;
            }
            let throttles = [
                ("rbps", b.throttle_read_bps_device()),
                ("wbps", b.throttle_write_bps_device()),
                ("riops", b.throttle_read_iops_device()),
                ("wiops", b.throttle_write_iops_device()),
            ];
            for (key, list) in throttles {
                for t in list.iter().flatten() {
                    write(
                        d,
                        "io.max",
                        &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                    )?;
                }
            }
        }
        for h in res.hugepage_limits().iter().flatten() {
            write(
                d,
                &format!("hugetlb.{}.max", h.page_size()),
                &h.limit().to_string(),
            )?;
        }
        if res
            .devices()
            .iter()
            .flatten()
            .any(|r| r.allow() || r.typ().is_some())
        {
            tracing::warn!("device rules need eBPF on cgroup v2 and are not enforced");
        }
        for (k, v) in res.unified().iter().flatten() {
            if k.contains('/') || k.starts_with('.') {
                return Err(CgroupError::Invalid {
                    field: format!("unified.{k}"),
                    message: "not a cgroup file name".into(),
                });
            }
            write(d, k, v)?;
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        write(&self.dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = if frozen { 1 } else { 0 };
        for _ in 0..1000 {
            // A fake tree has no cgroup.events; the write is all there is.
            if !self.dir.join("cgroup.events").exists()
                || keyed(&self.dir, "cgroup.events", "frozen") == want
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Io {
            path: self.dir.join("cgroup.events"),
            source: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
        })
    }

    fn is_frozen(&self) -> bool {
        if self.dir.join("cgroup.events").exists() {
            keyed(&self.dir, "cgroup.events", "frozen") == 1
        } else {
            read(&self.dir, "cgroup.freeze").is_ok_and(|s| s.trim() == "1")
        }
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        match read(&self.dir, "cgroup.procs") {
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
        let d = &self.dir;
        let pids_max = read_u64(d, "pids.max");
        Ok(Stats {
            memory_usage: read_u64(d, "memory.current"),
            memory_max_usage: read_u64(d, "memory.peak"),
            memory_limit: read_u64(d, "memory.max"),
            oom_kills: keyed(d, "memory.events", "oom_kill"),
            pids_current: read_u64(d, "pids.current"),
            pids_limit: if pids_max == u64::MAX { 0 } else { pids_max },
            cpu_usage_ns: keyed(d, "cpu.stat", "usage_usec") * 1000,
            cpu_throttled_periods: keyed(d, "cpu.stat", "nr_throttled"),
        })
    }

    fn remove(&self) -> Result<(), CgroupError> {
        rmdir_retry(&self.dir)?;
        super::remove_berth_parents(&self.root, &self.dir);
        Ok(())
    }
}

fn limit_str(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
    };

    fn fake() -> (tempfile::TempDir, V2Manager) {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory pids io\n").unwrap();
        let m = V2Manager::new(t.path(), Path::new("/berth/c2"));
        (t, m)
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }

    #[test]
    fn writes_v2_files() {
        let (t, m) = fake();
        m.create().unwrap();
        let r = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        assert_eq!(r("cgroup.subtree_control"), "+cpu +memory +pids +io");
        assert_eq!(r("berth/cgroup.subtree_control"), "+cpu +memory +pids +io");
        let res = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(100i64 << 20)
                    .swap(200i64 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(20000i64)
                    .period(100000u64)
                    .cpus("0")
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(500u16)
                    .throttle_read_bps_device(vec![
                        LinuxThrottleDeviceBuilder::default()
                            .major(8i64)
                            .minor(0i64)
                            .rate(1_048_576u64)
                            .build()
                            .unwrap(),
                    ])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        m.apply(&res).unwrap();
        assert_eq!(r("berth/c2/memory.max"), "104857600");
        assert_eq!(r("berth/c2/memory.swap.max"), "104857600");
        assert_eq!(r("berth/c2/cpu.weight"), "39");
        assert_eq!(r("berth/c2/cpu.max"), "20000 100000");
        assert_eq!(r("berth/c2/cpuset.cpus"), "0");
        assert_eq!(r("berth/c2/pids.max"), "max");
        assert_eq!(r("berth/c2/io.weight"), "4950");
        assert_eq!(r("berth/c2/io.max"), "8:0 rbps=1048576");
        m.freeze(true).unwrap();
        assert!(m.is_frozen());
        m.freeze(false).unwrap();
        assert!(!m.is_frozen());
        m.add_task(7).unwrap();
        assert_eq!(m.pids().unwrap(), vec![7]);
        std::fs::write(
            t.path().join("berth/c2/memory.events"),
            "low 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(m.stats().unwrap().oom_kills, 3);
        m.remove().unwrap();
        assert!(!t.path().join("berth/c2").exists());
    }

    #[test]
    fn update_writes_only_what_it_changes_and_keeps_the_rest() {
        let (t, m) = fake();
        m.create().unwrap();
        let r = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
        let res = |v: serde_json::Value| -> LinuxResources { serde_json::from_value(v).unwrap() };
        let current = res(serde_json::json!({
            "memory": {"limit": 104857600},
            "cpu": {"quota": 20000, "period": 100000},
            "pids": {"limit": 50},
            "devices": [{"allow": false, "access": "rwm"}],
        }));
        m.apply(&current).unwrap();
        std::fs::write(t.path().join("berth/c2/memory.max"), "untouched").unwrap();
        let update = res(serde_json::json!({"cpu": {"period": 50000}, "pids": {"limit": 5}}));
        let (merged, apply) = crate::cgroups::merge_update(&current, &update).unwrap();
        m.apply(&apply).unwrap();
        // v2's cpu.max takes quota and period together: the quota survives a new period.
        assert_eq!(r("berth/c2/cpu.max"), "20000 50000");
        assert_eq!(r("berth/c2/pids.max"), "5");
        assert_eq!(r("berth/c2/memory.max"), "untouched");
        let want = res(serde_json::json!({
            "memory": {"limit": 104857600},
            "cpu": {"quota": 20000, "period": 50000},
            "pids": {"limit": 5},
            "devices": [{"allow": false, "access": "rwm"}],
        }));
        assert_eq!(merged, want);
        assert!(apply.devices().is_none() && apply.memory().is_none());
    }

    #[test]
    fn swap_below_limit_rejected() {
        let (_t, m) = fake();
        m.create().unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(100i64)
                    .swap(50i64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(matches!(m.apply(&res), Err(CgroupError::Invalid { .. })));
        m.remove().unwrap();
    }
}
