//! `compose ls`: the projects the engine's containers belong to, read from their compose
//! labels (no Compose file needed).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use berth_client::Client;
use berth_orchestrator::compose::labels;
use clap::Args;
use serde_json::{Value, json};

use crate::engine::container::align;

/// Flags of `compose ls`.
#[derive(Args, Debug, Clone)]
pub struct LsArgs {
    /// Show all stopped Compose projects.
    #[arg(short, long)]
    all: bool,
    /// Only display project names.
    #[arg(short, long)]
    quiet: bool,
    /// Filter output based on conditions provided.
    #[arg(long)]
    filter: Vec<String>,
    /// Format the output. Values: [table | json].
    #[arg(long, default_value = "table")]
    format: String,
}

/// One project, as compose's `Stack`.
struct Stack {
    name: String,
    status: String,
    config_files: String,
}

/// compose's `combinedStatus`: `exited(1), running(2)`, states sorted.
fn combined_status(states: &[&str]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in states {
        *counts.entry(s).or_default() += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{s}({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `name=` filter values; docker's filters match a value anywhere in the name.
fn name_filters(filters: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in filters {
        match f.split_once('=') {
            Some(("name", v)) => out.push(v.to_string()),
            Some((k, _)) => bail!("invalid filter '{k}'"),
            None => bail!("bad format of filter (expected name=value)"),
        }
    }
    Ok(out)
}

async fn stacks(client: &Client, all: bool) -> Result<Vec<Stack>> {
    let filter = json!({ "label": [labels::PROJECT, labels::CONFIG_HASH] }).to_string();
    let list = client.containers(all, None, false, Some(&filter)).await?;
    let mut by_project: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for c in &list {
        if let Some(p) = c["Labels"][labels::PROJECT].as_str() {
            by_project.entry(p.to_string()).or_default().push(c);
        }
    }
    let mut out = Vec::new();
    for (name, cs) in by_project {
        let states: Vec<&str> = cs
            .iter()
            .map(|c| c["State"].as_str().unwrap_or(""))
            .collect();
        let mut files: Vec<&str> = Vec::new();
        let mut missing = false;
        for c in &cs {
            match c["Labels"][labels::CONFIG_FILES].as_str() {
                Some(f) => {
                    for f in f.split(',') {
                        if !files.contains(&f) {
                            files.push(f);
                        }
                    }
                }
                None => missing = true,
            }
        }
        let config_files = if missing {
            eprintln!(
                "WARN[0000] no label \"{}\" set on a container of compose project {name}",
                labels::CONFIG_FILES
            );
            "N/A".to_string()
        } else {
            files.join(",")
        };
        out.push(Stack {
            status: combined_status(&states),
            name,
            config_files,
        });
    }
    Ok(out)
}

/// Runs `compose ls`.
pub async fn run(a: &LsArgs, client: &Client) -> Result<()> {
    let names = name_filters(&a.filter)?;
    let mut list = stacks(client, a.all).await?;
    if !names.is_empty() {
        list.retain(|s| names.iter().any(|n| s.name.contains(n.as_str())));
    }
    if a.quiet {
        for s in &list {
            println!("{}", s.name);
        }
        return Ok(());
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<Value> = list
                .iter()
                .map(|s| json!({"Name": s.name, "Status": s.status, "ConfigFiles": s.config_files}))
                .collect();
            println!("{}", Value::Array(v));
        }
        "table" | "" => {
            let mut lines = vec!["NAME\tSTATUS\tCONFIG FILES".to_string()];
            for s in &list {
                lines.push(format!("{}\t{}\t{}", s.name, s.status, s.config_files));
            }
            for l in align(&lines, 20, 3) {
                println!("{l}");
            }
        }
        f => bail!("format value \"{f}\" could not be parsed: parsing failed"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_counted_per_state() {
        assert_eq!(
            combined_status(&["running", "exited", "running"]),
            "exited(1), running(2)"
        );
    }
}
