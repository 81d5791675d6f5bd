//! `berth volume ...`: create, ls, inspect, rm, prune, with docker's flags and output.

use super::container::{confirm, indent4};
use super::format::{Row, human_size, print_rows, render_value};
use super::image::filters_json;
use super::network::key_values;
use anyhow::{Result, bail};
use berth_client::Client;
use bollard_stubs::models::VolumeCreateRequest;
use clap::{Args, Subcommand};
use serde_json::Value;

/// `volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

/// Runs a `volume` subcommand.
pub async fn volume(c: &Client, cmd: VolumeCommand) -> Result<()> {
    match cmd {
        VolumeCommand::Create(a) => create(c, a).await,
        VolumeCommand::Ls(a) => ls(c, a).await,
        VolumeCommand::Inspect(a) => inspect(c, a).await,
        VolumeCommand::Rm(a) => rm(c, a).await,
        VolumeCommand::Prune(a) => prune(c, a).await,
    }
}

/// `volume create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Specify volume driver name.
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume.
    #[arg(long = "label")]
    label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Specify volume name (also the positional argument).
    #[arg(long = "name")]
    name_flag: Option<String>,
    /// VOLUME
    name: Option<String>,
}

async fn create(c: &Client, a: CreateArgs) -> Result<()> {
    if a.name.is_some() && a.name_flag.is_some() {
        bail!(
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
        );
    }
    let req = VolumeCreateRequest {
        name: a.name.or(a.name_flag),
        driver: Some(a.driver),
        driver_opts: Some(key_values(&a.opt)),
        labels: Some(key_values(&a.label)),
        ..Default::default()
    };
    let v = c.volume_create(&req).await?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(())
}

/// `volume ls` flags.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true").
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
    /// Only display volume names.
    #[arg(short, long)]
    quiet: bool,
}

fn labels_text(v: &Value) -> String {
    let mut l: Vec<String> = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    l.sort();
    l.join(",")
}

async fn ls(c: &Client, a: LsArgs) -> Result<()> {
    let f = filters_json(&a.filter, &[])?;
    let r = c.volumes(f.as_deref()).await?;
    let mut list: Vec<Value> = r["Volumes"].as_array().cloned().unwrap_or_default();
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    list.sort_by_key(|v| s(v, "Name"));
    for w in r["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or(""));
    }
    if a.quiet {
        for v in &list {
            println!("{}", s(v, "Name"));
        }
        return Ok(());
    }
    let rows: Vec<Row> = list
        .iter()
        .map(|v| {
            let size = match v["UsageData"]["Size"].as_i64() {
                Some(n) if n >= 0 => human_size(n as f64),
                _ => "N/A".into(),
            };
            Row::from([
                ("Name", s(v, "Name")),
                ("Driver", s(v, "Driver")),
                ("Scope", s(v, "Scope")),
                ("Mountpoint", s(v, "Mountpoint")),
                ("Labels", labels_text(v)),
                ("Links", "N/A".into()),
                ("Size", size),
                ("CreatedAt", s(v, "CreatedAt")),
            ])
        })
        .collect();
    // Every field has a header for `table` templates; the default table shows two.
    let columns: &[(&str, &'static str)] = if a.format.is_some() {
        &[
            ("DRIVER", "Driver"),
            ("VOLUME NAME", "Name"),
            ("SCOPE", "Scope"),
            ("MOUNTPOINT", "Mountpoint"),
            ("LABELS", "Labels"),
            ("LINKS", "Links"),
            ("SIZE", "Size"),
            ("CREATED AT", "CreatedAt"),
        ]
    } else {
        &[("DRIVER", "Driver"), ("VOLUME NAME", "Name")]
    };
    print_rows(&rows, columns, a.format.as_deref());
    Ok(())
}

/// `volume inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// VOLUME...
    #[arg(required = true)]
    names: Vec<String>,
}

async fn inspect(c: &Client, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = None;
    for n in &a.names {
        match c.volume_inspect(n).await {
            Ok(v) => out.push(v),
            Err(e) if e.is_not_found() => failed = Some(format!("Error: No such volume: {n}")),
            Err(e) => return Err(e.into()),
        }
    }
    match &a.format {
        Some(f) => {
            for v in &out {
                println!("{}", render_value(f, v));
            }
        }
        None => println!("{}", indent4(&Value::Array(out))),
    }
    if let Some(e) = failed {
        bail!(e);
    }
    Ok(())
}

/// `volume rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes.
    #[arg(short, long)]
    force: bool,
    /// VOLUME...
    #[arg(required = true)]
    names: Vec<String>,
}

async fn rm(c: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.names {
        match c.volume_remove(n, a.force).await {
            Ok(()) => println!("{n}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

/// `volume prune` flags.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "label=<label>").
    #[arg(long = "filter")]
    filter: Vec<String>,
}

async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning)? {
        return Ok(());
    }
    let extra: Vec<(&str, String)> = if a.all {
        vec![("all", "true".into())]
    } else {
        Vec::new()
    };
    let f = filters_json(&a.filter, &extra)?;
    let r = c.volumes_prune(f.as_deref()).await?;
    let names = r.volumes_deleted.unwrap_or_default();
    if !names.is_empty() {
        println!("Deleted Volumes:");
        for n in names {
            println!("{n}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(())
}
