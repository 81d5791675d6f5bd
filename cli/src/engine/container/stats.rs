//! `stats`: CPU, memory, network, block I/O and PIDs per container, computed from the
//! current and previous sample the daemon sends, as docker's `stats_helpers.go` does.

use crate::engine::format::{Row, print_rows};
use anyhow::{Result, bail};
use berth_client::Client;
use clap::Args;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

/// `stats` flags.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// [CONTAINER...]
    containers: Vec<String>,
}

/// Go's `%.<prec>g` for the magnitudes sizes take (no exponent form below 10^prec).
pub fn go_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let digits = x.abs().log10().floor() as i64 + 1;
    let decimals = (prec as i64 - digits).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn custom_size(size: f64, base: f64, units: &[&str], prec: usize) -> String {
    let mut s = size;
    let mut i = 0;
    while s >= base && i < units.len() - 1 {
        s /= base;
        i += 1;
    }
    format!("{}{}", go_g(s, prec), units[i])
}

/// docker's `units.BytesSize`: binary units, four significant digits.
pub fn bytes_size(size: f64) -> String {
    custom_size(
        size,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
        4,
    )
}

/// docker's `units.HumanSizeWithPrecision(size, 3)`.
pub fn human3(size: f64) -> String {
    custom_size(size, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"], 3)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// One sample as `stats` fields.
pub fn stats_row(s: &Value, name: &str, id: &str, no_trunc: bool) -> Row {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = f(&cpu["cpu_usage"]["total_usage"]) - f(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = f(&cpu["system_cpu_usage"]) - f(&pre["system_cpu_usage"]);
    let mut online = f(&cpu["online_cpus"]);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64;
    }
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let usage = f(&mem["usage"]);
    // cgroup v1 reports total_inactive_file, v2 inactive_file: both are page cache.
    let cache = ["total_inactive_file", "inactive_file"]
        .iter()
        .map(|k| &mem["stats"][k])
        .find(|v| v.is_number())
        .map(f)
        .filter(|&c| c < usage)
        .unwrap_or(0.0);
    let used = usage - cache;
    let limit = f(&mem["limit"]);
    let mem_pct = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s["networks"].as_object() {
        for n in nets.values() {
            rx += f(&n["rx_bytes"]);
            tx += f(&n["tx_bytes"]);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    if let Some(entries) = s["blkio_stats"]["io_service_bytes_recursive"].as_array() {
        for e in entries {
            match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => rd += f(&e["value"]),
                Some("write") => wr += f(&e["value"]),
                _ => {}
            }
        }
    }
    let mut r = Row::new();
    let short: String = if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    };
    r.insert("ID", short.clone());
    r.insert("Container", short);
    r.insert("Name", name.trim_start_matches('/').to_string());
    r.insert("CPUPerc", format!("{cpu_pct:.2}%"));
    r.insert(
        "MemUsage",
        format!("{} / {}", bytes_size(used), bytes_size(limit)),
    );
    r.insert("MemPerc", format!("{mem_pct:.2}%"));
    r.insert("NetIO", format!("{} / {}", human3(rx), human3(tx)));
    r.insert("BlockIO", format!("{} / {}", human3(rd), human3(wr)));
    r.insert(
        "PIDs",
        format!("{}", s["pids_stats"]["current"].as_u64().unwrap_or(0)),
    );
    r
}

const ALL_COLUMNS: [(&str, &str); 9] = [
    ("CONTAINER ID", "ID"),
    ("CONTAINER", "Container"),
    ("NAME", "Name"),
    ("CPU %", "CPUPerc"),
    ("MEM USAGE / LIMIT", "MemUsage"),
    ("MEM %", "MemPerc"),
    ("NET I/O", "NetIO"),
    ("BLOCK I/O", "BlockIO"),
    ("PIDS", "PIDs"),
];

fn print(rows: &[Row], format: Option<&str>) {
    match format {
        None | Some("table") => {
            // The default table has every column but the `.Container` alias of the ID.
            let cols: Vec<(&str, &'static str)> = ALL_COLUMNS
                .iter()
                .copied()
                .filter(|(_, k)| *k != "Container")
                .collect();
            print_rows(rows, &cols, None)
        }
        Some("json") => print_rows(rows, &ALL_COLUMNS, Some("{{json .}}")),
        Some(f) => print_rows(rows, &ALL_COLUMNS, Some(f)),
    }
}

/// `stats`.
pub async fn stats(c: &Client, a: StatsArgs) -> Result<()> {
    let targets: Vec<(String, String)> = if a.containers.is_empty() {
        c.containers(a.all, None, false, None)
            .await?
            .iter()
            .map(|ct| {
                (
                    ct["Id"].as_str().unwrap_or("").to_string(),
                    ct["Names"][0].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    } else {
        let mut t = Vec::new();
        let mut errors = Vec::new();
        for n in &a.containers {
            match c.container_inspect(n, false).await {
                Ok(v) => t.push((
                    v["Id"].as_str().unwrap_or(n).to_string(),
                    v["Name"].as_str().unwrap_or(n).to_string(),
                )),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            bail!(errors.join("\n"));
        }
        t
    };
    let fmt = a.format.as_deref();
    if a.no_stream {
        let mut rows = Vec::new();
        for (id, name) in &targets {
            let mut s = c.container_stats(id, false).await?;
            if let Some(v) = s.next::<Value>().await? {
                rows.push(stats_row(&v, name, id, a.no_trunc));
            }
        }
        print(&rows, fmt);
        return Ok(());
    }
    let latest: std::sync::Arc<std::sync::Mutex<BTreeMap<usize, Row>>> = Default::default();
    for (i, (id, name)) in targets.iter().enumerate() {
        let (c, id, name, latest) = (c.clone(), id.clone(), name.clone(), latest.clone());
        let no_trunc = a.no_trunc;
        tokio::spawn(async move {
            let Ok(mut s) = c.container_stats(&id, true).await else {
                return;
            };
            while let Ok(Some(v)) = s.next::<Value>().await {
                let r = stats_row(&v, &name, &id, no_trunc);
                if let Ok(mut m) = latest.lock() {
                    m.insert(i, r);
                }
            }
        });
    }
    let tty = std::io::stdout().is_terminal();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let rows: Vec<Row> = latest
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if tty {
            print!("\x1b[2J\x1b[H");
        }
        print(&rows, fmt);
        std::io::stdout().flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units() {
        assert_eq!(bytes_size(1_572_864.0), "1.5MiB");
        assert_eq!(bytes_size(8_229_650_432.0), "7.664GiB");
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(human3(1_982_398.0), "1.98MB");
        assert_eq!(human3(906.0), "906B");
        assert_eq!(human3(12_345.0), "12.3kB");
    }

    #[test]
    fn percentages_from_two_samples() {
        let s = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 300_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100_000_000u64}, "system_cpu_usage": 10_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"total_inactive_file": 5_242_880u64}},
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 500}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192}]},
            "pids_stats": {"current": 3}
        });
        let r = stats_row(&s, "/web", "0123456789abcdef", false);
        assert_eq!(r["CPUPerc"], "4.00%");
        assert_eq!(r["MemUsage"], "5MiB / 100MiB");
        assert_eq!(r["MemPerc"], "5.00%");
        assert_eq!(r["NetIO"], "1kB / 500B");
        assert_eq!(r["BlockIO"], "4.1kB / 8.19kB");
        assert_eq!(r["PIDs"], "3");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["ID"], "0123456789ab");
    }
}
