//! `top` (host `ps` filtered to the container's processes), `stats` (cgroup v1 counters in
//! Docker's stats JSON) and live resource updates.

use super::{ContainerError, ContainerService, lock};
use crate::Result;
use bollard_stubs::models::{ContainerTopResponse, HostConfig};
use serde_json::{Value, json};
use std::path::PathBuf;

fn cg(ctrl: &str, id: &str) -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
        .join(ctrl)
        .join("berth")
        .join(id)
}

fn read_u64(p: PathBuf) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn read_kv(p: PathBuf) -> serde_json::Map<String, Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

/// Every PID in the container's cgroup (v1 `pids` or `memory` hierarchy, recursively).
fn cgroup_pids(id: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for ctrl in ["pids", "memory", "cpu,cpuacct", "unified"] {
        let base = cg(ctrl, id);
        if !base.exists() {
            continue;
        }
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                stack.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
            }
        }
        break;
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// System CPU time in nanoseconds from /proc/stat (Docker's `system_cpu_usage`).
fn system_cpu_ns() -> u64 {
    let ticks: u64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(7)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
        })
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * (1_000_000_000 / hz)
}

fn blkio(id: &str, file: &str) -> Value {
    let entries: Vec<Value> = std::fs::read_to_string(cg("blkio", id).join(file))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(
                json!({"major": maj.parse::<u64>().ok()?, "minor": min.parse::<u64>().ok()?,
                "op": f[1], "value": f[2].parse::<u64>().ok()?}),
            )
        })
        .collect();
    if entries.is_empty() {
        Value::Null
    } else {
        json!(entries)
    }
}

/// Writes changed resources into the running container's v1 cgroups; returns warnings.
pub(super) fn apply_resources(id: &str, h: &HostConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut w = |ctrl: &str, file: &str, v: String| {
        let p = cg(ctrl, id).join(file);
        if let Err(e) = std::fs::write(&p, &v) {
            warnings.push(format!("update {}: {e}", p.display()));
        }
    };
    if let Some(m) = h.memory.filter(|m| *m > 0) {
        // Raising the limit above memsw fails, so order the writes by direction.
        let swap = h.memory_swap.filter(|s| *s != 0).unwrap_or(m * 2);
        let cur = read_u64(cg("memory", id).join("memory.limit_in_bytes")).unwrap_or(0);
        if (m as u64) > cur {
            w("memory", "memory.memsw.limit_in_bytes", swap.to_string());
            w("memory", "memory.limit_in_bytes", m.to_string());
        } else {
            w("memory", "memory.limit_in_bytes", m.to_string());
            w("memory", "memory.memsw.limit_in_bytes", swap.to_string());
        }
    }
    if let Some(s) = h.cpu_shares.filter(|s| *s > 0) {
        w("cpu,cpuacct", "cpu.shares", s.to_string());
    }
    if let Some(n) = h.nano_cpus.filter(|n| *n > 0) {
        w("cpu,cpuacct", "cpu.cfs_period_us", "100000".into());
        w(
            "cpu,cpuacct",
            "cpu.cfs_quota_us",
            (n * 100_000 / 1_000_000_000).to_string(),
        );
    }
    if let Some(p) = h.cpu_period.filter(|p| *p > 0) {
        w("cpu,cpuacct", "cpu.cfs_period_us", p.to_string());
    }
    if let Some(q) = h.cpu_quota.filter(|q| *q != 0) {
        w("cpu,cpuacct", "cpu.cfs_quota_us", q.to_string());
    }
    if let Some(c) = h.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        w("cpuset", "cpuset.cpus", c);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        w(
            "pids",
            "pids.max",
            if p < 0 { "max".into() } else { p.to_string() },
        );
    }
    if let Some(b) = h.blkio_weight.filter(|b| *b > 0) {
        w("blkio", "blkio.weight", b.to_string());
    }
    warnings
}

impl ContainerService {
    /// `docker top`: `ps` (default `-ef`) filtered to the container's processes.
    pub fn top(&self, id: &str, ps_args: Option<&str>) -> Result<ContainerTopResponse> {
        let id = self.resolve(id)?;
        let rec = self.get(&id)?;
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!("Container {id} is not running")).into());
        }
        let pids = cgroup_pids(&id);
        let args: Vec<&str> = ps_args
            .filter(|a| !a.trim().is_empty())
            .unwrap_or("-ef")
            .split_whitespace()
            .collect();
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| ContainerError::Internal(format!("ps: {e}")))?;
        if !out.status.success() {
            return Err(ContainerError::Internal(format!(
                "Error running ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let pid_col = header.iter().position(|h| h == "PID").ok_or_else(|| {
            ContainerError::Invalid("Couldn't find PID field in ps output".into())
        })?;
        let mut processes = Vec::new();
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < header.len() {
                continue;
            }
            let Ok(pid) = f[pid_col].parse::<i32>() else {
                continue;
            };
            if pids.binary_search(&pid).is_err() {
                continue;
            }
            // The last column (the command) keeps its spaces.
            let mut row: Vec<String> = f[..header.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(f[header.len() - 1..].join(" "));
            processes.push(row);
        }
        Ok(ContainerTopResponse {
            titles: Some(header),
            processes: Some(processes),
        })
    }

    /// One stats sample shaped like Docker's `/containers/{id}/stats` (`precpu_stats` from
    /// the previous call).
    pub fn stats(&self, id: &str) -> Result<Value> {
        let id = self.resolve(id)?;
        let rec = self.get(&id)?;
        let running = rec.state.is_running();
        let now = berth_runtime::state::now_rfc3339();
        let online = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let cpu = if running {
            let cpuacct = cg("cpu,cpuacct", &id);
            let percpu: Vec<u64> = std::fs::read_to_string(cpuacct.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let st = read_kv(cpuacct.join("cpuacct.stat"));
            // SAFETY: sysconf only reads a system constant.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
            let tick =
                |k: &str| st.get(k).and_then(Value::as_u64).unwrap_or(0) * (1_000_000_000 / hz);
            let thr = read_kv(cpuacct.join("cpu.stat"));
            json!({
                "cpu_usage": {
                    "total_usage": read_u64(cpuacct.join("cpuacct.usage")).unwrap_or(0),
                    "percpu_usage": percpu,
                    "usage_in_kernelmode": tick("system"),
                    "usage_in_usermode": tick("user"),
                },
                "system_cpu_usage": system_cpu_ns(),
                "online_cpus": online,
                "throttling_data": {
                    "periods": thr.get("nr_periods").cloned().unwrap_or(json!(0)),
                    "throttled_periods": thr.get("nr_throttled").cloned().unwrap_or(json!(0)),
                    "throttled_time": thr.get("throttled_time").cloned().unwrap_or(json!(0)),
                },
            })
        } else {
            json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
        };
        let mem = cg("memory", &id);
        let memory = if running {
            json!({
                "usage": read_u64(mem.join("memory.usage_in_bytes")).unwrap_or(0),
                "max_usage": read_u64(mem.join("memory.max_usage_in_bytes")).unwrap_or(0),
                "stats": read_kv(mem.join("memory.stat")),
                "failcnt": read_u64(mem.join("memory.failcnt")).unwrap_or(0),
                // Unlimited reads as a huge page-aligned number; Docker reports the host's memory.
                "limit": read_u64(mem.join("memory.limit_in_bytes"))
                    .unwrap_or(u64::MAX)
                    .min(host_memory().unwrap_or(u64::MAX)),
            })
        } else {
            json!({})
        };
        let pids = cg("pids", &id);
        let pids_stats = if running {
            let max = std::fs::read_to_string(pids.join("pids.max")).unwrap_or_default();
            let mut p = json!({"current": read_u64(pids.join("pids.current")).unwrap_or(0)});
            if let Ok(n) = max.trim().parse::<u64>() {
                p["limit"] = json!(n);
            }
            p
        } else {
            json!({})
        };
        let live = self.live(&id);
        let mut prev = lock(&live.prev_stats);
        let (preread, precpu) = match prev.as_ref() {
            Some(p) => (p["read"].clone(), p["cpu_stats"].clone()),
            None => (
                json!("0001-01-01T00:00:00Z"),
                json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}),
            ),
        };
        let sample = json!({
            "name": format!("/{}", rec.name),
            "id": id,
            "read": now,
            "preread": preread,
            "pids_stats": pids_stats,
            "blkio_stats": {
                "io_service_bytes_recursive": if running { blkio(&id, "blkio.throttle.io_service_bytes_recursive") } else { Value::Null },
                "io_serviced_recursive": if running { blkio(&id, "blkio.throttle.io_serviced_recursive") } else { Value::Null },
                "io_queue_recursive": null,
                "io_service_time_recursive": null,
                "io_wait_time_recursive": null,
                "io_merged_recursive": null,
                "io_time_recursive": null,
                "sectors_recursive": null,
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu,
            "precpu_stats": precpu,
            "memory_stats": memory,
        });
        *prev = running.then(|| sample.clone());
        Ok(sample)
    }
}

/// The host's total memory in bytes (`MemTotal` of /proc/meminfo).
fn host_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}
