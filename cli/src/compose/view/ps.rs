//! `compose ps`: the project's containers as compose v2's table, one JSON object per line, or a
//! Go-style template.

use anyhow::{Result, bail};
use berth_client::Client;
use berth_orchestrator::compose::containers::{ProjectContainer, Select};
use clap::{ArgAction, Args};
use serde_json::{Value, json};

use super::super::ComposeArgs;
use crate::engine::container::ps::row;
use crate::engine::format::{Row, print_rows};

/// Flags of `compose ps`.
#[derive(Args, Debug, Clone)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command).
    #[arg(short, long)]
    all: bool,
    /// Only display IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Display services.
    #[arg(long)]
    services: bool,
    /// Filter services by a property (supported filters: status).
    #[arg(long)]
    filter: Option<String>,
    /// Format the output: table, json, or a Go template.
    #[arg(long, default_value = "table")]
    format: String,
    /// Filter services by status. Values: [paused | restarting | removing | running | dead |
    /// created | exited].
    #[arg(long)]
    status: Vec<String>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Include orphaned services (not declared by project).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    orphans: bool,
    /// SERVICE...
    service: Vec<String>,
}

/// compose's default table.
const TABLE: [(&str, &str); 7] = [
    ("NAME", "Name"),
    ("IMAGE", "Image"),
    ("COMMAND", "Command"),
    ("SERVICE", "Service"),
    ("CREATED", "RunningFor"),
    ("STATUS", "Status"),
    ("PORTS", "Ports"),
];

/// Every field's header, for `table TEMPLATE`.
const HEADERS: [(&str, &str); 17] = [
    ("CONTAINER ID", "ID"),
    ("NAME", "Name"),
    ("NAMES", "Names"),
    ("PROJECT", "Project"),
    ("SERVICE", "Service"),
    ("IMAGE", "Image"),
    ("COMMAND", "Command"),
    ("CREATED AT", "CreatedAt"),
    ("CREATED", "RunningFor"),
    ("PORTS", "Ports"),
    ("STATE", "State"),
    ("STATUS", "Status"),
    ("SIZE", "Size"),
    ("LABELS", "Labels"),
    ("MOUNTS", "Mounts"),
    ("NETWORKS", "Networks"),
    ("LOCAL VOLUMES", "LocalVolumes"),
];

/// `--filter status=X` and `--status X` (values are not checked, as compose).
fn statuses(a: &PsArgs) -> Result<Vec<String>> {
    let mut out = a.status.clone();
    if let Some(f) = &a.filter {
        match f.split_once('=') {
            Some(("status", v)) => out.push(v.to_string()),
            Some(("source", _)) => bail!("not implemented"),
            Some((k, _)) => bail!("unknown filter {k}"),
            None => bail!("arguments to --filter should be in form KEY=VAL"),
        }
    }
    Ok(out)
}

/// The health docker's status line carries (`Up 2 minutes (healthy)`).
fn health(status: &str) -> &'static str {
    if status.contains("(healthy)") {
        "healthy"
    } else if status.contains("(unhealthy)") {
        "unhealthy"
    } else if status.contains("(health: starting)") {
        "starting"
    } else {
        ""
    }
}

/// The exit code docker's status line carries (`Exited (3) 2 seconds ago`).
fn exit_code(status: &str) -> i64 {
    status
        .strip_prefix("Exited (")
        .and_then(|s| s.split_once(')'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

/// compose's `Publishers`: the list entry's ports.
fn publishers(raw: &Value) -> Value {
    let mut ports: Vec<(u64, String, u64, String)> = raw["Ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["PrivatePort"].as_u64().unwrap_or(0),
                        p["IP"].as_str().unwrap_or("").to_string(),
                        p["PublicPort"].as_u64().unwrap_or(0),
                        p["Type"].as_str().unwrap_or("tcp").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ports.sort();
    Value::Array(
        ports
            .into_iter()
            .map(|(target, url, published, proto)| {
                json!({"URL": url, "TargetPort": target, "PublishedPort": published, "Protocol": proto})
            })
            .collect(),
    )
}

/// One container's fields, as compose's `ContainerContext`.
fn fields(c: &ProjectContainer, project: &str, trunc: bool) -> Row {
    let mut r = row(&c.raw, trunc);
    r.insert("Name", c.name.clone());
    r.insert("Service", c.service.clone());
    r.insert("Project", project.to_string());
    r.insert("Image", c.image.clone());
    r.insert("Health", health(&c.status).to_string());
    r.insert("ExitCode", exit_code(&c.status).to_string());
    r
}

/// compose's JSON object of a container: every field, `ExitCode` a number, `Publishers` a
/// list.
fn json_of(c: &ProjectContainer, r: &Row) -> Value {
    // Go marshals the context's fields in name order.
    let mut m: std::collections::BTreeMap<String, Value> = r
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
        .collect();
    m.insert("ExitCode".into(), json!(exit_code(&c.status)));
    m.insert("Publishers".into(), publishers(&c.raw));
    Value::Object(m.into_iter().collect())
}

/// Runs `compose ps`.
pub async fn run(args: &ComposeArgs, a: &PsArgs, client: &Client) -> Result<()> {
    let (name, project) = super::project_for(args, &a.service)?;
    let mut services = a.service.clone();
    if let (Some(p), true, false) = (&project, services.is_empty(), a.orphans) {
        services = p.services.keys().cloned().collect();
    }
    let status = statuses(a)?;
    let sel = Select {
        all: a.all || !status.is_empty(),
        oneoff: true,
    };
    let mut list = super::listed(client, &name, sel, &services).await?;
    if !status.is_empty() {
        list.retain(|c| status.contains(&c.state));
    }
    list.sort_by(|x, y| x.name.cmp(&y.name));
    if a.quiet {
        for c in &list {
            println!("{}", c.id);
        }
        return Ok(());
    }
    if a.services {
        let mut seen: Vec<&str> = Vec::new();
        for c in &list {
            if !seen.contains(&c.service.as_str()) {
                seen.push(&c.service);
            }
        }
        println!("{}", seen.join("\n"));
        return Ok(());
    }
    let rows: Vec<Row> = list.iter().map(|c| fields(c, &name, !a.no_trunc)).collect();
    match a.format.as_str() {
        "json" => {
            for (c, r) in list.iter().zip(&rows) {
                println!("{}", json_of(c, r));
            }
        }
        "table" | "" => print_rows(&rows, &TABLE, None),
        f => print_rows(&rows, &HEADERS, Some(f)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_fields() {
        assert_eq!(exit_code("Exited (3) 2 seconds ago"), 3);
        assert_eq!(exit_code("Up 2 seconds"), 0);
        assert_eq!(health("Up 2 minutes (healthy)"), "healthy");
        assert_eq!(health("Up 1 second (health: starting)"), "starting");
    }
}
