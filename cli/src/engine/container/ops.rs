//! One-shot container commands: `stop`, `restart`, `kill`, `rm`, `logs`, `inspect`, `top`,
//! `wait`, `pause`, `unpause`, `rename`, `update`, `port`, `export`, `container prune`.

use super::opts::{parse_restart, ram_in_bytes};
use crate::engine::format::{human_size, render_value};
use crate::engine::image::filters_json;
use anyhow::{Context, Result, bail};
use berth_client::containers::LogsOptions;
use berth_client::{Client, Demuxer, StdStream};
use bollard_stubs::models::ContainerUpdateBody;
use clap::Args;
use serde_json::Value;
use std::io::{IsTerminal, Write};

/// Runs `f` on every name; prints each name that worked, and fails with the daemon's
/// messages, one a line, as docker does for multi-container commands.
async fn each<F, Fut>(names: &[String], print: bool, f: F) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut errors = Vec::new();
    for n in names {
        match f(n.clone()).await {
            Ok(()) => {
                if print {
                    println!("{n}");
                }
            }
            Err(e) => errors.push(super::chain(&e)),
        }
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

/// `stop`/`restart` flags.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container.
    #[arg(short, long)]
    signal: Option<String>,
    /// Seconds to wait before killing the container.
    #[arg(
        short = 't',
        long = "timeout",
        alias = "time",
        allow_negative_numbers = true
    )]
    timeout: Option<i64>,
    /// CONTAINER...
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `stop` (or `restart` when `restart`).
pub async fn stop(c: &Client, a: StopArgs, restart: bool) -> Result<()> {
    let (t, s) = (a.timeout, a.signal.as_deref());
    each(&a.containers, true, |n| async move {
        if restart {
            c.container_restart(&n, t, s).await?;
        } else {
            c.container_stop(&n, t, s).await?;
        }
        Ok(())
    })
    .await
}

/// `kill` flags.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long)]
    signal: Option<String>,
    /// CONTAINER...
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `kill`.
pub async fn kill(c: &Client, a: KillArgs) -> Result<()> {
    let s = a.signal.as_deref();
    each(&a.containers, true, |n| async move {
        Ok(c.container_kill(&n, s).await?)
    })
    .await
}

/// `rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    volumes: bool,
    /// Remove the specified link.
    #[arg(short, long)]
    link: bool,
    /// CONTAINER...
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `rm`.
pub async fn rm(c: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.containers {
        match c.container_remove(n, a.force, a.volumes).await {
            Ok(()) => println!("{n}"),
            // docker reports a missing container under `rm -f` but still exits 0.
            Err(e) if a.force && e.is_not_found() => eprintln!("{e}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

/// Names of containers.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// CONTAINER...
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `pause` or `unpause`.
pub async fn pause(c: &Client, a: NamesArgs, pause: bool) -> Result<()> {
    each(&a.containers, true, |n| async move {
        if pause {
            c.container_pause(&n).await?;
        } else {
            c.container_unpause(&n).await?;
        }
        Ok(())
    })
    .await
}

/// `wait`: prints each container's exit code.
pub async fn wait(c: &Client, a: NamesArgs) -> Result<()> {
    each(&a.containers, false, |n| async move {
        let code = c.container_wait(&n, "not-running").await?.status().await?;
        println!("{code}");
        Ok(())
    })
    .await
}

/// `rename` arguments.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// CONTAINER
    container: String,
    /// NEW_NAME
    new_name: String,
}

/// `rename`.
pub async fn rename(c: &Client, a: RenameArgs) -> Result<()> {
    let new = a.new_name.trim();
    if new.is_empty() || a.container.trim().is_empty() {
        bail!("Error: Neither old nor new names may be empty");
    }
    c.container_rename(&a.container, new).await.map_err(|e| {
        anyhow::anyhow!(
            "{e}\nError: failed to rename container named {}",
            a.container
        )
    })
}

/// `update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit.
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long)]
    memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// Limit CPU CFS period.
    #[arg(long)]
    cpu_period: Option<i64>,
    /// Limit CPU CFS quota.
    #[arg(long, allow_negative_numbers = true)]
    cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    restart: Option<String>,
    /// CONTAINER...
    #[arg(required = true)]
    containers: Vec<String>,
}

impl UpdateArgs {
    /// The update body of these flags.
    fn body(&self) -> Result<ContainerUpdateBody> {
        let memory_swap = match self.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(ram_in_bytes(s)?),
            None => None,
        };
        let body = ContainerUpdateBody {
            memory: self.memory.as_deref().map(ram_in_bytes).transpose()?,
            memory_reservation: self
                .memory_reservation
                .as_deref()
                .map(ram_in_bytes)
                .transpose()?,
            memory_swap,
            nano_cpus: self.cpus.map(|c| (c * 1e9).round() as i64),
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            restart_policy: self.restart.as_deref().map(parse_restart).transpose()?,
            ..Default::default()
        };
        if body == ContainerUpdateBody::default() {
            bail!("you must provide one or more flags when using this command");
        }
        Ok(body)
    }
}

/// `update`.
pub async fn update(c: &Client, a: UpdateArgs) -> Result<()> {
    let body = a.body()?;
    let body = &body;
    each(&a.containers, true, |n| async move {
        for w in c.container_update(&n, body).await? {
            eprintln!("{w}");
        }
        Ok(())
    })
    .await
}

/// `port` arguments.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// CONTAINER
    container: String,
    /// [PRIVATE_PORT[/PROTO]]
    port: Option<String>,
}

/// `port`: the published mappings, or the host addresses of one port.
pub async fn port(c: &Client, a: PortArgs) -> Result<()> {
    let info = c.container_inspect(&a.container, false).await?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let addr = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or("");
        let p = b["HostPort"].as_str().unwrap_or("");
        if ip.contains(':') {
            format!("[{ip}]:{p}")
        } else {
            format!("{ip}:{p}")
        }
    };
    if let Some(want) = &a.port {
        let key = if want.contains('/') {
            want.clone()
        } else {
            format!("{want}/tcp")
        };
        if let Some(bs) = ports.get(&key).and_then(Value::as_array) {
            for b in bs {
                println!("{}", addr(b));
            }
            return Ok(());
        }
        bail!(
            "Error: No public port '{want}' published for {}",
            a.container
        );
    }
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (n, p) = k.split_once('/').unwrap_or((k, ""));
        (n.parse::<u32>().unwrap_or(0), p.to_string())
    });
    for k in keys {
        if let Some(bs) = ports[k].as_array() {
            for b in bs {
                println!("{k} -> {}", addr(b));
            }
        }
    }
    Ok(())
}

/// `top` arguments.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// CONTAINER [ps OPTIONS]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONTAINER [ps OPTIONS]"
    )]
    args: Vec<String>,
}

/// Aligns tab-separated lines as Go's tabwriter with this minimum cell width and padding.
pub fn align(lines: &[String], min: usize, pad: usize) -> Vec<String> {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let ncol = cells.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; ncol];
    for row in &cells {
        // The last cell of a line is not terminated by a tab, so it does not set a width.
        for (i, c) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    cells
        .iter()
        .map(|row| {
            let mut out = String::new();
            for (i, c) in row.iter().enumerate() {
                out.push_str(c);
                if i + 1 < row.len() {
                    let w = (widths[i] + pad).max(min);
                    out.push_str(&" ".repeat(w - c.chars().count()));
                }
            }
            out
        })
        .collect()
}

/// `top`.
pub async fn top(c: &Client, a: TopArgs) -> Result<()> {
    let (container, ps_args) = a
        .args
        .split_first()
        .context("requires at least 1 argument")?;
    let ps_args = (!ps_args.is_empty()).then(|| ps_args.join(" "));
    let t = c.container_top(container, ps_args.as_deref()).await?;
    let mut lines = vec![t.titles.unwrap_or_default().join("\t")];
    for p in t.processes.unwrap_or_default() {
        lines.push(p.join("\t"));
    }
    for l in align(&lines, 20, 3) {
        println!("{l}");
    }
    Ok(())
}

/// `export` flags.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    /// CONTAINER
    container: String,
}

/// `export`.
pub async fn export(c: &Client, a: ExportArgs) -> Result<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut s = c.container_export(&a.container).await?;
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(b) = s.next().await? {
        out.write_all(&b)?;
    }
    out.flush()?;
    Ok(())
}

/// Asks docker's `[y/N]` question; true on yes.
pub fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// `container prune` flags.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `container prune`.
pub async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let f = filters_json(&a.filter, &[])?;
    let r = c.containers_prune(f.as_deref()).await?;
    let deleted: Vec<&str> = r["ContainersDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(())
}

/// `logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs.
    #[arg(long)]
    details: bool,
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    since: Option<String>,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    until: Option<String>,
    /// CONTAINER
    container: String,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// docker's `timetypes.GetTimestamp`: a relative duration back from `now`, a unix time, or
/// an RFC 3339 date (`Z` or an offset; date alone allowed), as `seconds[.nanos]`.
pub fn timestamp(value: &str, now: i64) -> Result<String> {
    if let Ok(d) = super::opts::go_duration(value) {
        let secs = now - d / 1_000_000_000;
        return Ok(secs.to_string());
    }
    if value.parse::<f64>().is_ok() {
        return Ok(value.to_string());
    }
    let bad = || anyhow::anyhow!("failed to parse value as time or duration: \"{value}\"");
    let (date, rest) = value.split_at(value.len().min(10));
    let dp: Vec<i64> = date
        .split('-')
        .map(|p| p.parse::<i64>().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let [y, mo, d] = dp[..] else {
        return Err(bad());
    };
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut frac = String::new();
    if let Some(t) = rest.strip_prefix('T') {
        let (clock, zone) = match t.find(['Z', 'z', '+', '-']) {
            Some(i) => t.split_at(i),
            None => (t, ""),
        };
        let (hms, f) = clock.split_once('.').unwrap_or((clock, ""));
        frac = f.to_string();
        let tp: Vec<i64> = hms
            .split(':')
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_>>()?;
        secs += tp.first().copied().unwrap_or(0) * 3600
            + tp.get(1).copied().unwrap_or(0) * 60
            + tp.get(2).copied().unwrap_or(0);
        if let Some(off) = zone.strip_prefix(['+', '-']) {
            let (h, m) = off.split_once(':').unwrap_or((off, "0"));
            let o = h.parse::<i64>().map_err(|_| bad())? * 3600
                + m.parse::<i64>().map_err(|_| bad())? * 60;
            secs -= if zone.starts_with('+') { o } else { -o };
        }
    } else if !rest.is_empty() {
        return Err(bad());
    }
    if frac.is_empty() {
        Ok(secs.to_string())
    } else {
        Ok(format!("{secs}.{frac:0<9}"))
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `logs`.
pub async fn logs(c: &Client, a: LogsArgs) -> Result<()> {
    let info = c.container_inspect(&a.container, false).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = now_unix();
    let o = LogsOptions {
        follow: a.follow,
        timestamps: a.timestamps,
        tail: Some(a.tail.clone()),
        since: a.since.as_deref().map(|s| timestamp(s, now)).transpose()?,
        until: a.until.as_deref().map(|s| timestamp(s, now)).transpose()?,
    };
    let _ = a.details;
    let mut s = c.container_logs(&a.container, &o).await?;
    let mut demux = Demuxer::new();
    while let Some(b) = s.next().await? {
        if tty {
            let mut out = std::io::stdout().lock();
            out.write_all(&b)?;
            out.flush()?;
            continue;
        }
        for (st, data) in demux.push(&b)? {
            if st == StdStream::Stderr {
                let mut e = std::io::stderr().lock();
                e.write_all(&data)?;
                e.flush()?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(&data)?;
                out.flush()?;
            }
        }
    }
    Ok(())
}

/// `inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes if the type is container.
    #[arg(short, long)]
    size: bool,
    /// Return JSON for specified type.
    #[arg(long = "type")]
    kind: Option<String>,
    /// NAME|ID...
    #[arg(required = true)]
    names: Vec<String>,
}

/// JSON as docker prints inspect output: four-space indentation.
pub fn indent4(v: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        return v.to_string();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// `inspect` (containers and images; `kind` forced by `container inspect`).
pub async fn inspect(c: &Client, a: InspectArgs, kind: Option<&str>) -> Result<()> {
    let kind = kind.map(str::to_string).or(a.kind.clone());
    if let Some(k) = &kind
        && k != "container"
        && k != "image"
    {
        bail!("\"{k}\" is not a valid value for --type");
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        let found = match kind.as_deref() {
            Some("image") => c.image_inspect(n).await,
            Some(_) => c.container_inspect(n, a.size).await,
            None => match c.container_inspect(n, a.size).await {
                Err(e) if e.is_not_found() => c.image_inspect(n).await,
                r => r,
            },
        };
        match found {
            Ok(v) => out.push(v),
            Err(e) if e.is_not_found() => errors.push(match kind.as_deref() {
                // `container inspect` passes the daemon's words on.
                Some("container") if a.kind.is_none() => e.to_string(),
                Some("container") => format!("Error: No such container: {n}"),
                Some("image") => format!("Error: No such image: {n}"),
                _ => format!("Error: No such object: {n}"),
            }),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match &a.format {
        Some(f) => {
            let f = if f == "json" {
                "{{json .}}"
            } else {
                f.as_str()
            };
            for v in &out {
                println!("{}", render_value(f, v));
            }
        }
        None => println!("{}", indent4(&Value::Array(out))),
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp("10s", 1000).unwrap(), "990");
        assert_eq!(timestamp("1m", 1000).unwrap(), "940");
        assert_eq!(timestamp("1700000000", 0).unwrap(), "1700000000");
        assert_eq!(timestamp("1970-01-02", 0).unwrap(), "86400");
        assert_eq!(timestamp("2026-11-28T04:00:00Z", 0).unwrap(), "1795838400");
        assert_eq!(
            timestamp("2026-11-28T05:00:00.5+01:00", 0).unwrap(),
            "1795838400.500000000"
        );
        assert!(timestamp("yesterday", 0).is_err());
    }

    #[test]
    fn top_alignment() {
        let l = align(
            &["UID\tPID\tCMD".into(), "root\t12345\tsleep 100".into()],
            20,
            3,
        );
        assert_eq!(
            l[0],
            format!("UID{}PID{}CMD", " ".repeat(17), " ".repeat(17))
        );
        assert_eq!(
            l[1],
            format!("root{}12345{}sleep 100", " ".repeat(16), " ".repeat(15))
        );
    }

    #[test]
    fn inspect_indent() {
        let v = serde_json::json!([{"Id": "x"}]);
        assert_eq!(indent4(&v), "[\n    {\n        \"Id\": \"x\"\n    }\n]");
    }
}
