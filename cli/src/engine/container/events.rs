//! `events`, `system df` and `system prune`.

use super::ops::{confirm, timestamp};
use super::stats::go_g;
use crate::engine::format::{Row, print_rows, render_value};
use crate::engine::image::filters_json;
use anyhow::Result;
use berth_client::Client;
use clap::{Args, Subcommand};
use serde_json::Value;

/// `events` flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
    /// Show all events created since timestamp.
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    until: Option<String>,
}

/// RFC 3339 with nine fraction digits in UTC, as docker prints event times.
pub fn rfc3339_nano(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    // go_time gives "YYYY-MM-DD HH:MM:SS +0000 UTC".
    let t = super::ps::go_time(secs);
    let (date, rest) = t.split_once(' ').unwrap_or((&t, ""));
    let clock = rest.split(' ').next().unwrap_or("");
    format!("{date}T{clock}.{frac:09}Z")
}

/// One event as docker's default line.
pub fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or_else(|| e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let typ = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().or(e["status"].as_str()).unwrap_or("");
    let id = e["Actor"]["ID"].as_str().or(e["id"].as_str()).unwrap_or("");
    let mut line = format!("{} {typ} {action} {id}", rfc3339_nano(nanos));
    if let Some(attrs) = e["Actor"]["Attributes"].as_object()
        && !attrs.is_empty()
    {
        let mut a: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        a.sort();
        line.push_str(&format!(" ({})", a.join(", ")));
    }
    line
}

/// `events`.
pub async fn events(c: &Client, a: EventsArgs) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let since = a.since.as_deref().map(|s| timestamp(s, now)).transpose()?;
    let until = a.until.as_deref().map(|s| timestamp(s, now)).transpose()?;
    let f = filters_json(&a.filter, &[])?;
    let mut s = c
        .events(since.as_deref(), until.as_deref(), f.as_deref())
        .await?;
    while let Some(e) = s.next::<Value>().await? {
        match a.format.as_deref() {
            Some("json") => println!("{}", e),
            Some(t) => println!("{}", render_value(t, &e)),
            None => println!("{}", event_line(&e)),
        }
    }
    Ok(())
}

/// `system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show docker disk usage.
    Df(DfArgs),
    /// Remove unused data.
    Prune(SystemPruneArgs),
    /// Get real time events from the server.
    Events(EventsArgs),
}

/// `system df` flags.
#[derive(Debug, Args)]
pub struct DfArgs {
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
}

/// `system prune` flags.
#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>").
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// Runs a `system` subcommand.
pub async fn system(c: &Client, cmd: SystemCommand) -> Result<()> {
    match cmd {
        SystemCommand::Df(a) => df(c, a).await,
        SystemCommand::Prune(a) => prune(c, a).await,
        SystemCommand::Events(a) => events(c, a).await,
    }
}

/// docker's `units.HumanSize` (four significant digits).
fn human4(size: f64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let (mut s, mut i) = (size, 0);
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(s, 4), UNITS[i])
}

fn with_pct(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human4(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human4(reclaimable as f64)
    }
}

/// The four `system df` rows of a `/system/df` answer.
pub fn df_rows(v: &Value) -> Vec<Row> {
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let i64_of = |x: &Value| x.as_i64().unwrap_or(0);
    let mut rows = Vec::new();
    let mut push = |typ: &str, total: usize, active: usize, size: i64, recl: String| {
        let mut r = Row::new();
        r.insert("Type", typ.to_string());
        r.insert("TotalCount", total.to_string());
        r.insert("Active", active.to_string());
        r.insert("Size", human4(size as f64));
        r.insert("Reclaimable", recl);
        rows.push(r);
    };
    let images = arr("Images");
    let layers = i64_of(&v["LayersSize"]);
    let used: i64 = images
        .iter()
        .filter(|i| i64_of(&i["Containers"]) != 0)
        .filter(|i| i64_of(&i["Size"]) != -1 && i64_of(&i["SharedSize"]) != -1)
        .map(|i| i64_of(&i["Size"]) - i64_of(&i["SharedSize"]))
        .sum();
    let active = images
        .iter()
        .filter(|i| i64_of(&i["Containers"]) > 0)
        .count();
    push(
        "Images",
        images.len(),
        active,
        layers,
        with_pct(layers - used, layers),
    );
    let cts = arr("Containers");
    let is_active = |c: &Value| {
        matches!(
            c["State"].as_str(),
            Some("running" | "paused" | "restarting")
        )
    };
    let size: i64 = cts.iter().map(|c| i64_of(&c["SizeRw"])).sum();
    let recl: i64 = cts
        .iter()
        .filter(|c| !is_active(c))
        .map(|c| i64_of(&c["SizeRw"]))
        .sum();
    push(
        "Containers",
        cts.len(),
        cts.iter().filter(|c| is_active(c)).count(),
        size,
        with_pct(recl, size),
    );
    let vols = arr("Volumes");
    let vsize = |x: &Value| i64_of(&x["UsageData"]["Size"]).max(0);
    let size: i64 = vols.iter().map(vsize).sum();
    let recl: i64 = vols
        .iter()
        .filter(|x| i64_of(&x["UsageData"]["RefCount"]) == 0)
        .map(vsize)
        .sum();
    push(
        "Local Volumes",
        vols.len(),
        vols.iter()
            .filter(|x| i64_of(&x["UsageData"]["RefCount"]) > 0)
            .count(),
        size,
        with_pct(recl, size),
    );
    let cache = arr("BuildCache");
    let size: i64 = cache.iter().map(|b| i64_of(&b["Size"])).sum();
    let recl: i64 = cache
        .iter()
        .filter(|b| {
            !b["InUse"].as_bool().unwrap_or(false) && !b["Shared"].as_bool().unwrap_or(false)
        })
        .map(|b| i64_of(&b["Size"]))
        .sum();
    push(
        "Build Cache",
        cache.len(),
        cache
            .iter()
            .filter(|b| b["InUse"].as_bool().unwrap_or(false))
            .count(),
        size,
        human4(recl as f64),
    );
    rows
}

/// `system df`.
pub async fn df(c: &Client, a: DfArgs) -> Result<()> {
    let v = c.df().await?;
    let rows = df_rows(&v);
    let cols = [
        ("TYPE", "Type"),
        ("TOTAL", "TotalCount"),
        ("ACTIVE", "Active"),
        ("SIZE", "Size"),
        ("RECLAIMABLE", "Reclaimable"),
    ];
    let fmt = a
        .format
        .as_deref()
        .map(|f| if f == "json" { "{{json .}}" } else { f });
    print_rows(&rows, &cols, fmt);
    Ok(())
}

fn print_list(title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    println!("{title}");
    for i in items {
        println!("{i}");
    }
    println!();
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A prune of an endpoint the daemon may not serve (networks, build cache): a 404 means
/// nothing to prune there.
async fn optional_prune(c: &Client, kind: &str, filters: Option<&str>) -> Result<Value> {
    match c.prune(kind, filters).await {
        Err(e) if e.is_not_found() => Ok(Value::Null),
        r => Ok(r?),
    }
}

/// `system prune`.
pub async fn prune(c: &Client, a: SystemPruneArgs) -> Result<()> {
    if !a.force {
        let mut w = String::from(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
        );
        if a.volumes {
            w.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        if a.all {
            w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
        } else {
            w.push_str("  - all dangling images\n  - unused build cache\n");
        }
        if !confirm(&w)? {
            return Ok(());
        }
    }
    let f = filters_json(&a.filter, &[])?;
    let mut reclaimed = 0i64;
    let r = c.containers_prune(f.as_deref()).await?;
    reclaimed += r["SpaceReclaimed"].as_i64().unwrap_or(0);
    print_list("Deleted Containers:", &strings(&r["ContainersDeleted"]));
    if a.volumes {
        let r = optional_prune(c, "volumes", f.as_deref()).await?;
        reclaimed += r["SpaceReclaimed"].as_i64().unwrap_or(0);
        print_list("Deleted Volumes:", &strings(&r["VolumesDeleted"]));
    }
    let r = optional_prune(c, "networks", f.as_deref()).await?;
    print_list("Deleted Networks:", &strings(&r["NetworksDeleted"]));
    let extra = if a.all {
        vec![("dangling", "false".to_string())]
    } else {
        vec![]
    };
    let fi = filters_json(&a.filter, &extra)?;
    let r = c.images_prune(fi.as_deref()).await?;
    reclaimed += r.space_reclaimed.unwrap_or(0);
    let mut lines = Vec::new();
    for i in r.images_deleted.unwrap_or_default() {
        if let Some(u) = i.untagged {
            lines.push(format!("untagged: {u}"));
        }
        if let Some(d) = i.deleted {
            lines.push(format!("deleted: {d}"));
        }
    }
    print_list("Deleted Images:", &lines);
    let q = if a.all {
        Some("{\"all\":{\"true\":true}}")
    } else {
        None
    };
    let r = optional_prune(c, "build", q).await?;
    reclaimed += r["SpaceReclaimed"].as_i64().unwrap_or(0);
    print_list(
        "Deleted build cache objects:",
        &strings(&r["CachesDeleted"]),
    );
    println!(
        "Total reclaimed space: {}",
        crate::engine::format::human_size(reclaimed as f64)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "die", "Actor": {"ID": "abc",
            "Attributes": {"name": "x", "exitCode": "0", "image": "busybox"}},
            "timeNano": 1_795_838_400_123_456_789i64});
        assert_eq!(
            event_line(&e),
            "2026-11-28T04:00:00.123456789Z container die abc (exitCode=0, image=busybox, name=x)"
        );
    }

    #[test]
    fn disk_usage() {
        let v = json!({"LayersSize": 1984132, "Images": [{"Containers": 3, "Size": 1984132, "SharedSize": 0}],
            "Containers": [{"State": "exited", "SizeRw": 0}, {"State": "running", "SizeRw": 5}],
            "Volumes": [], "BuildCache": []});
        let r = df_rows(&v);
        assert_eq!(r[0]["Size"], "1.984MB");
        assert_eq!(r[0]["Reclaimable"], "0B (0%)");
        assert_eq!(r[0]["Active"], "1");
        assert_eq!(r[1]["TotalCount"], "2");
        assert_eq!(r[1]["Active"], "1");
        assert_eq!(r[1]["Reclaimable"], "0B (0%)");
        assert_eq!(r[2]["Reclaimable"], "0B");
    }
}
