//! `berth secret|config create|ls|inspect|rm`: one set of commands over the two kinds, with
//! docker's flags and tables.

use super::service::LsArgs;
use super::util::{filters, print_inspected, s, unix_of};
use crate::engine::format::{Row, ago, print_rows};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_client::Client;
use berth_orchestrator::swarm::secrets::DataKind;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::Read;

/// `secret` and `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Create from a file or STDIN as content.
    Create(CreateArgs),
    /// List them.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more of them.
    Inspect(InspectArgs),
    /// Remove one or more of them.
    #[command(alias = "remove")]
    Rm(RmArgs),
}

/// `create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Labels (key=value).
    #[arg(short, long)]
    label: Vec<String>,
    /// Template driver.
    #[arg(long = "template-driver")]
    template_driver: Option<String>,
    /// NAME
    name: String,
    /// FILE, or - for STDIN
    file: String,
}

/// `inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print the information in a human friendly format.
    #[arg(long)]
    pretty: bool,
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// NAME or ID
    #[arg(required = true)]
    names: Vec<String>,
}

/// `rm` arguments.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// NAME or ID
    #[arg(required = true)]
    names: Vec<String>,
}

/// Runs a `secret` or `config` subcommand.
pub async fn run(c: &Client, kind: DataKind, cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Create(a) => create(c, kind, a).await,
        DataCommand::Ls(a) => ls(c, kind, a).await,
        DataCommand::Inspect(a) => inspect(c, kind, a).await,
        DataCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                match c.swarm_data_remove(kind.api_path(), n).await {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn create(c: &Client, kind: DataKind, a: CreateArgs) -> Result<()> {
    let data = if a.file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("error reading content from STDIN")?;
        buf
    } else {
        std::fs::read(&a.file).with_context(|| format!("error reading from {}", a.file))?
    };
    if data.is_empty() {
        bail!("error reading from {}: data is empty", a.file);
    }
    let labels: serde_json::Map<String, Value> = a
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect();
    let mut spec = json!({
        "Name": a.name,
        "Labels": labels,
        "Data": STANDARD.encode(&data),
    });
    if let Some(d) = a.template_driver {
        spec["Templating"] = json!({ "Name": d });
    }
    let created = c.swarm_data_create(kind.api_path(), &spec).await?;
    println!("{}", s(&created, "/ID"));
    Ok(())
}

fn created_ago(v: &Value, ptr: &str) -> String {
    unix_of(&s(v, ptr)).map(ago).unwrap_or_default()
}

fn labels_text(v: &Value) -> String {
    let mut pairs: Vec<String> = v
        .pointer("/Spec/Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs.join(",")
}

async fn ls(c: &Client, kind: DataKind, a: LsArgs) -> Result<()> {
    let f = filters(&a.filter, &[])?;
    let mut all = c.swarm_data_list(kind.api_path(), f.as_deref()).await?;
    all.sort_by_key(|v| s(v, "/Spec/Name"));
    if a.quiet {
        for v in &all {
            println!("{}", s(v, "/ID"));
        }
        return Ok(());
    }
    let rows: Vec<Row> = all
        .iter()
        .map(|v| {
            Row::from([
                ("ID", s(v, "/ID")),
                ("Name", s(v, "/Spec/Name")),
                ("Driver", s(v, "/Spec/Driver/Name")),
                ("CreatedAt", created_ago(v, "/CreatedAt")),
                ("UpdatedAt", created_ago(v, "/UpdatedAt")),
                ("Labels", labels_text(v)),
            ])
        })
        .collect();
    let columns: &[(&str, &'static str)] = match kind {
        DataKind::Secret => &[
            ("ID", "ID"),
            ("NAME", "Name"),
            ("DRIVER", "Driver"),
            ("CREATED", "CreatedAt"),
            ("UPDATED", "UpdatedAt"),
        ],
        DataKind::Config => &[
            ("ID", "ID"),
            ("NAME", "Name"),
            ("CREATED", "CreatedAt"),
            ("UPDATED", "UpdatedAt"),
        ],
    };
    print_rows(&rows, columns, a.format.as_deref());
    Ok(())
}

async fn inspect(c: &Client, kind: DataKind, a: InspectArgs) -> Result<()> {
    let mut all = Vec::new();
    for n in &a.names {
        all.push(c.swarm_data_inspect(kind.api_path(), n).await?);
    }
    if print_inspected(&all, a.format.as_deref(), a.pretty)? {
        return Ok(());
    }
    for (i, v) in all.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("ID:              {}", s(v, "/ID"));
        println!("Name:            {}", s(v, "/Spec/Name"));
        let labels = labels_text(v);
        if !labels.is_empty() {
            println!("Labels:");
            for l in labels.split(',') {
                println!(" - {l}");
            }
        }
        if kind == DataKind::Secret {
            println!("Driver:          {}", s(v, "/Spec/Driver/Name"));
        }
        println!("Created at:      {}", s(v, "/CreatedAt"));
        println!("Updated at:      {}", s(v, "/UpdatedAt"));
        if kind == DataKind::Config {
            let data = STANDARD.decode(s(v, "/Spec/Data")).unwrap_or_default();
            println!("Data:");
            println!("{}", String::from_utf8_lossy(&data));
        }
    }
    Ok(())
}
