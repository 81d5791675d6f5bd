//! The task table of `service ps`, `node ps` and `stack ps`.

use super::util::{filters, s, short_id, strip_digest, unix_of};
use crate::engine::format::{Row, ago, print_rows};
use anyhow::Result;
use berth_client::Client;
use clap::Args;
use serde_json::Value;
use std::collections::HashMap;

/// Flags shared by the `ps` commands.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Do not map IDs to Names.
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Only display task IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print tasks using a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

fn title(v: &str) -> String {
    let mut c = v.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The tasks matching `extra` fixed filters (and the flags' own), newest first within a slot.
pub async fn print_tasks(c: &Client, a: &PsArgs, extra: &[(&str, String)]) -> Result<()> {
    let f = filters(&a.filter, extra)?;
    let mut tasks = c.tasks(f.as_deref()).await?;
    let mut service_names: HashMap<String, String> = HashMap::new();
    for svc in c.services(None).await? {
        service_names.insert(s(&svc, "/ID"), s(&svc, "/Spec/Name"));
    }
    let node_names: HashMap<String, String> = if a.no_resolve {
        HashMap::new()
    } else {
        c.nodes(None)
            .await
            .unwrap_or_default()
            .iter()
            .map(|n| (s(n, "/ID"), s(n, "/Description/Hostname")))
            .collect()
    };
    let task_name = |t: &Value| {
        let sid = s(t, "/ServiceID");
        let svc = if a.no_resolve {
            sid.clone()
        } else {
            service_names.get(&sid).cloned().unwrap_or(sid)
        };
        match t.get("Slot").and_then(Value::as_u64) {
            Some(slot) if slot > 0 => format!("{svc}.{slot}"),
            _ => format!("{svc}.{}", s(t, "/NodeID")),
        }
    };
    tasks.sort_by(|x, y| {
        (task_name(x), std::cmp::Reverse(s(x, "/CreatedAt")))
            .cmp(&(task_name(y), std::cmp::Reverse(s(y, "/CreatedAt"))))
    });
    if a.quiet {
        for t in &tasks {
            println!("{}", short_id(&s(t, "/ID"), a.no_trunc));
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    let mut prev = String::new();
    for t in &tasks {
        let name = task_name(t);
        let shown = if name == prev {
            format!(" \\_ {name}")
        } else {
            name.clone()
        };
        prev = name;
        let mut err = s(t, "/Status/Err");
        if !err.is_empty() {
            if !a.no_trunc && err.chars().count() > 29 {
                err = format!("{}…", err.chars().take(29).collect::<String>());
            }
            err = format!("\"{err}\"");
        }
        let since = unix_of(&s(t, "/Status/Timestamp"))
            .map(ago)
            .unwrap_or_default();
        let state = title(&s(t, "/Status/State"));
        let current = if since.is_empty() {
            state
        } else {
            format!("{state} {since}")
        };
        let node_id = s(t, "/NodeID");
        let image = s(t, "/Spec/ContainerSpec/Image");
        let ports: Vec<String> = t
            .pointer("/Status/PortStatus/Ports")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        format!(
                            "*:{}->{}/{}",
                            s(p, "/PublishedPort"),
                            s(p, "/TargetPort"),
                            s(p, "/Protocol")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        rows.push(Row::from([
            ("ID", short_id(&s(t, "/ID"), a.no_trunc)),
            ("Name", shown),
            (
                "Image",
                if a.no_trunc {
                    image
                } else {
                    strip_digest(&image)
                },
            ),
            ("Node", node_names.get(&node_id).cloned().unwrap_or(node_id)),
            ("DesiredState", title(&s(t, "/DesiredState"))),
            ("CurrentState", current),
            ("Error", err),
            ("Ports", ports.join(", ")),
        ]));
    }
    print_rows(
        &rows,
        &[
            ("ID", "ID"),
            ("NAME", "Name"),
            ("IMAGE", "Image"),
            ("NODE", "Node"),
            ("DESIRED STATE", "DesiredState"),
            ("CURRENT STATE", "CurrentState"),
            ("ERROR", "Error"),
            ("PORTS", "Ports"),
        ],
        a.format.as_deref(),
    );
    Ok(())
}
