//! `ps` / `container ls`: docker's table, `--format` fields, `-q`, `-n`, `-l`, `-s`, filters.

use crate::engine::format::{Row, ago, human_size, print_rows};
use crate::engine::image::filters_json;
use anyhow::Result;
use berth_client::Client;
use clap::Args;
use serde_json::Value;

/// `ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE').
    #[arg(long)]
    format: Option<String>,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    last: i64,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    latest: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    size: bool,
}

/// docker's `formatter.Ellipsis` for ASCII and wide text alike: at most `max` characters.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the printable text a command line holds.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `YYYY-MM-DD HH:MM:SS +0000 UTC` of a unix time, as Go prints a `time.Time` in UTC.
pub fn go_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// docker's `DisplayablePorts`: same-number mappings grouped into ranges, others listed after.
pub fn display_ports(ports: &[Value]) -> String {
    let mut items: Vec<(u64, String, u64, String)> = ports
        .iter()
        .map(|p| {
            (
                p["PrivatePort"].as_u64().unwrap_or(0),
                p["IP"].as_str().unwrap_or("").to_string(),
                p["PublicPort"].as_u64().unwrap_or(0),
                p["Type"].as_str().unwrap_or("tcp").to_string(),
            )
        })
        .collect();
    items.sort();
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for (private, ip, public, proto) in items {
        let key = if ip.is_empty() {
            proto.clone()
        } else {
            if public != private {
                let host = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                host_mappings.push(format!("{host}->{private}/{proto}"));
                continue;
            }
            format!("{ip}/{proto}")
        };
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, private, private)),
            Some(g) if g.2 + 1 == private => g.2 = private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                *g = (key, private, private);
            }
        }
    }
    result.extend(groups.iter().map(|g| form_group(&g.0, g.1, g.2)));
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u64, last: u64) -> String {
    let (ip, proto) = match key.rsplit_once('/') {
        Some((ip, p)) => (ip, p),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{proto}")
}

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.chars().take(12).collect()
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// One container of `GET /containers/json` as `ps` fields.
pub fn row(c: &Value, trunc: bool) -> Row {
    let mut r = Row::new();
    let id = str_of(&c["Id"]);
    r.insert("ID", short_id(&id, !trunc));
    let mut image = str_of(&c["Image"]);
    if trunc && let Some(h) = image.strip_prefix("sha256:") {
        image = h.chars().take(12).collect();
    }
    r.insert("Image", image);
    let cmd = str_of(&c["Command"]);
    r.insert(
        "Command",
        go_quote(&if trunc { ellipsis(&cmd, 20) } else { cmd }),
    );
    let created = c["Created"].as_i64().unwrap_or(0);
    r.insert("CreatedAt", go_time(created));
    r.insert("RunningFor", ago(created));
    r.insert("Status", str_of(&c["Status"]));
    r.insert("State", str_of(&c["State"]));
    let ports = c["Ports"].as_array().cloned().unwrap_or_default();
    r.insert("Ports", display_ports(&ports));
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str())
                .map(|n| n.trim_start_matches('/'))
                // Link aliases (`other/alias`) only show without truncation.
                .filter(|n| !trunc || !n.contains('/'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    r.insert("Names", names.join(","));
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    r.insert("Labels", labels.join(","));
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let n = m["Name"]
                        .as_str()
                        .filter(|n| !n.is_empty())
                        .or(m["Source"].as_str())
                        .unwrap_or("");
                    if trunc {
                        ellipsis(n, 15)
                    } else {
                        n.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    r.insert("Mounts", mounts.join(","));
    let local = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["Driver"].as_str() == Some("local"))
                .count()
        })
        .unwrap_or(0);
    r.insert("LocalVolumes", local.to_string());
    let mut nets: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    nets.sort();
    r.insert("Networks", nets.join(","));
    let rw = human_size(c["SizeRw"].as_i64().unwrap_or(0) as f64);
    let size = match c["SizeRootFs"].as_i64() {
        Some(v) if v > 0 => format!("{rw} (virtual {})", human_size(v as f64)),
        _ => rw,
    };
    r.insert("Size", size);
    r
}

/// Every `ps` field with its table header (for `table` templates).
pub const ALL_COLUMNS: [(&str, &str); 14] = [
    ("CONTAINER ID", "ID"),
    ("IMAGE", "Image"),
    ("COMMAND", "Command"),
    ("CREATED AT", "CreatedAt"),
    ("CREATED", "RunningFor"),
    ("STATUS", "Status"),
    ("PORTS", "Ports"),
    ("NAMES", "Names"),
    ("LABELS", "Labels"),
    ("SIZE", "Size"),
    ("STATE", "State"),
    ("MOUNTS", "Mounts"),
    ("NETWORKS", "Networks"),
    ("LOCAL VOLUMES", "LocalVolumes"),
];

/// `ps`.
pub async fn ps(c: &Client, a: PsArgs) -> Result<()> {
    let filters = filters_json(&a.filter, &[])?;
    let limit = if a.latest {
        Some(1)
    } else {
        (a.last > 0).then_some(a.last)
    };
    let all = a.all || limit.is_some();
    let size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let list = c.containers(all, limit, size, filters.as_deref()).await?;
    if a.quiet {
        for ct in &list {
            println!("{}", short_id(ct["Id"].as_str().unwrap_or(""), a.no_trunc));
        }
        return Ok(());
    }
    let rows: Vec<Row> = list.iter().map(|ct| row(ct, !a.no_trunc)).collect();
    let mut cols = vec![
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
    ];
    if a.size {
        cols.push(("SIZE", "Size"));
    }
    match a.format.as_deref() {
        None | Some("table") => print_rows(&rows, &cols, None),
        Some("json") => print_rows(&rows, &ALL_COLUMNS, Some("{{json .}}")),
        Some(f) => print_rows(&rows, &ALL_COLUMNS, Some(f)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_and_time() {
        assert_eq!(go_quote("sleep 100"), "\"sleep 100\"");
        assert_eq!(go_quote("sh -c 'echo \"x\"'"), r#""sh -c 'echo \"x\"'""#);
        assert_eq!(
            go_quote(&ellipsis("sh -c 'while true; do sleep 1; done'", 20)),
            "\"sh -c 'while true; …\""
        );
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(1_795_000_000), "2026-11-18 11:06:40 +0000 UTC");
    }

    #[test]
    fn ports() {
        let p = vec![
            json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"IP": "0.0.0.0", "PrivatePort": 90, "PublicPort": 90, "Type": "tcp"}),
            json!({"IP": "0.0.0.0", "PrivatePort": 91, "PublicPort": 91, "Type": "tcp"}),
            json!({"PrivatePort": 53, "Type": "udp"}),
            json!({"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
        ];
        assert_eq!(
            display_ports(&p),
            "53/udp, 0.0.0.0:90-91->90-91/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
    }

    #[test]
    fn ps_row() {
        let c = json!({
            "Id": "89babf6bca4e7fa7f8adcc23106c230421e52d8338bc2d1ec0b1b9b3c8b97a05",
            "Names": ["/t1", "/other/alias"], "Image": "busybox", "Command": "sleep 100",
            "Created": 0, "Status": "Up 3 seconds", "State": "running", "Ports": [],
            "Labels": {"b": "2", "a": "1"}, "SizeRw": 12, "SizeRootFs": 1982398,
            "NetworkSettings": {"Networks": {"none": {}}}, "Mounts": []
        });
        let r = row(&c, true);
        assert_eq!(r["ID"], "89babf6bca4e");
        assert_eq!(r["Names"], "t1");
        assert_eq!(r["Command"], "\"sleep 100\"");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Size"], "12B (virtual 1.98MB)");
        assert_eq!(r["Networks"], "none");
        assert_eq!(row(&c, false)["Names"], "t1,other/alias");
    }
}
