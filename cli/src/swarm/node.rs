//! `berth node ls|inspect|update|promote|demote|rm|ps`.

use super::tasks::{PsArgs, print_tasks};
use super::util::{filters, print_inspected, s, version};
use crate::engine::format::{Row, print_rows};
use anyhow::{Context, Result, bail};
use berth_client::Client;
use bollard_stubs::models::{NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::str::FromStr;

/// `node` subcommands.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List nodes in the swarm.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more nodes.
    Inspect(InspectArgs),
    /// Update a node.
    Update(UpdateArgs),
    /// Promote one or more nodes to manager in the swarm.
    Promote(NodesArgs),
    /// Demote one or more nodes from manager in the swarm.
    Demote(NodesArgs),
    /// Remove one or more nodes from the swarm.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List tasks running on one or more nodes, defaults to current node.
    Ps(NodePsArgs),
}

/// `node ls` flags.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
}

/// `node inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print the information in a human friendly format.
    #[arg(long)]
    pretty: bool,
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// NODE (self for this node)
    #[arg(required = true)]
    nodes: Vec<String>,
}

/// `node update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Availability of the node ("active", "pause", "drain").
    #[arg(long)]
    availability: Option<String>,
    /// Add or update a node label (key=value).
    #[arg(long = "label-add")]
    label_add: Vec<String>,
    /// Remove a node label if exists.
    #[arg(long = "label-rm")]
    label_rm: Vec<String>,
    /// Role of the node ("worker", "manager").
    #[arg(long)]
    role: Option<String>,
    /// NODE
    node: String,
}

/// Node names for promote/demote.
#[derive(Debug, Args)]
pub struct NodesArgs {
    /// NODE
    #[arg(required = true)]
    nodes: Vec<String>,
}

/// `node rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force remove a node from the swarm.
    #[arg(short, long)]
    force: bool,
    /// NODE
    #[arg(required = true)]
    nodes: Vec<String>,
}

/// `node ps` flags.
#[derive(Debug, Args)]
pub struct NodePsArgs {
    #[command(flatten)]
    ps: PsArgs,
    /// NODE (default: self)
    nodes: Vec<String>,
}

/// Runs a `node` subcommand.
pub async fn run(c: &Client, cmd: NodeCommand) -> Result<()> {
    match cmd {
        NodeCommand::Ls(a) => ls(c, a).await,
        NodeCommand::Inspect(a) => inspect(c, a).await,
        NodeCommand::Update(a) => {
            let id = a.node.clone();
            update(c, &id, |spec| apply_update(spec, &a)).await?;
            println!("{id}");
            Ok(())
        }
        NodeCommand::Promote(a) => {
            for n in &a.nodes {
                update(c, n, |spec| {
                    spec.role = Some(NodeSpecRoleEnum::MANAGER);
                    Ok(())
                })
                .await?;
                println!("Node {n} promoted to a manager in the swarm.");
            }
            Ok(())
        }
        NodeCommand::Demote(a) => {
            for n in &a.nodes {
                update(c, n, |spec| {
                    spec.role = Some(NodeSpecRoleEnum::WORKER);
                    Ok(())
                })
                .await?;
                println!("Manager {n} demoted in the swarm.");
            }
            Ok(())
        }
        NodeCommand::Rm(a) => {
            for n in &a.nodes {
                c.node_remove(n, a.force).await?;
                println!("{n}");
            }
            Ok(())
        }
        NodeCommand::Ps(a) => {
            let nodes = if a.nodes.is_empty() {
                vec!["self".to_string()]
            } else {
                a.nodes
            };
            let mut extra = Vec::new();
            for n in &nodes {
                let node = resolve(c, n).await?;
                extra.push(("node", s(&node, "/ID")));
            }
            print_tasks(c, &a.ps, &extra).await
        }
    }
}

/// `self` is this daemon's node, as docker resolves it.
async fn resolve(c: &Client, name: &str) -> Result<Value> {
    let id = if name == "self" {
        let info = c.info().await?;
        let id = s(&info, "/Swarm/NodeID");
        if id.is_empty() {
            bail!("This node is not a swarm manager.");
        }
        id
    } else {
        name.to_string()
    };
    Ok(c.node_inspect(&id).await?)
}

fn apply_update(spec: &mut NodeSpec, a: &UpdateArgs) -> Result<()> {
    if let Some(av) = &a.availability {
        spec.availability = Some(
            NodeSpecAvailabilityEnum::from_str(&av.to_lowercase())
                .map_err(|_| anyhow::anyhow!("invalid availability {av:?}"))?,
        );
    }
    if let Some(r) = &a.role {
        spec.role = Some(
            NodeSpecRoleEnum::from_str(&r.to_lowercase())
                .map_err(|_| anyhow::anyhow!("invalid role {r:?}"))?,
        );
    }
    let labels = spec.labels.get_or_insert_with(Default::default);
    for l in &a.label_add {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    for k in &a.label_rm {
        if labels.remove(k).is_none() {
            bail!("key {k} doesn't exist in node's labels");
        }
    }
    Ok(())
}

async fn update(
    c: &Client,
    name: &str,
    change: impl FnOnce(&mut NodeSpec) -> Result<()>,
) -> Result<()> {
    let node = resolve(c, name).await?;
    let mut spec: NodeSpec =
        serde_json::from_value(node["Spec"].clone()).context("decoding the node's spec")?;
    change(&mut spec)?;
    c.node_update(&s(&node, "/ID"), version(&node), &spec)
        .await?;
    Ok(())
}

fn title(v: &str) -> String {
    let mut c = v.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

async fn ls(c: &Client, a: LsArgs) -> Result<()> {
    let f = filters(&a.filter, &[])?;
    let mut nodes = c.nodes(f.as_deref()).await?;
    nodes.sort_by_key(|n| (s(n, "/Description/Hostname"), s(n, "/ID")));
    if a.quiet {
        for n in &nodes {
            println!("{}", s(n, "/ID"));
        }
        return Ok(());
    }
    let me = s(&c.info().await?, "/Swarm/NodeID");
    let rows: Vec<Row> = nodes
        .iter()
        .map(|n| {
            let id = s(n, "/ID");
            let shown = if id == me {
                format!("{id} *")
            } else {
                id.clone()
            };
            let manager = if n.pointer("/ManagerStatus/Leader") == Some(&Value::Bool(true)) {
                "Leader".to_string()
            } else {
                title(&s(n, "/ManagerStatus/Reachability"))
            };
            Row::from([
                ("ID", shown),
                ("Self", (id == me).to_string()),
                ("Hostname", s(n, "/Description/Hostname")),
                ("Status", title(&s(n, "/Status/State"))),
                ("Availability", title(&s(n, "/Spec/Availability"))),
                ("ManagerStatus", manager),
                ("EngineVersion", s(n, "/Description/Engine/EngineVersion")),
            ])
        })
        .collect();
    print_rows(
        &rows,
        &[
            ("ID", "ID"),
            ("HOSTNAME", "Hostname"),
            ("STATUS", "Status"),
            ("AVAILABILITY", "Availability"),
            ("MANAGER STATUS", "ManagerStatus"),
            ("ENGINE VERSION", "EngineVersion"),
        ],
        a.format.as_deref(),
    );
    Ok(())
}

async fn inspect(c: &Client, a: InspectArgs) -> Result<()> {
    let mut all = Vec::new();
    for n in &a.nodes {
        all.push(resolve(c, n).await?);
    }
    if print_inspected(&all, a.format.as_deref(), a.pretty)? {
        return Ok(());
    }
    for (i, n) in all.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("ID:\t\t\t{}", s(n, "/ID"));
        if let Some(l) = n.pointer("/Spec/Labels").and_then(Value::as_object)
            && !l.is_empty()
        {
            println!("Labels:");
            for (k, v) in l {
                println!(" - {k}={}", v.as_str().unwrap_or(""));
            }
        }
        println!("Hostname:\t\t{}", s(n, "/Description/Hostname"));
        println!("Joined at:\t\t{}", s(n, "/CreatedAt"));
        println!("Status:");
        println!(" State:\t\t\t{}", title(&s(n, "/Status/State")));
        println!(" Availability:\t\t{}", title(&s(n, "/Spec/Availability")));
        println!(" Address:\t\t{}", s(n, "/Status/Addr"));
        if n.get("ManagerStatus").is_some_and(|m| !m.is_null()) {
            println!("Manager Status:");
            println!(" Address:\t\t{}", s(n, "/ManagerStatus/Addr"));
            println!(
                " Raft Status:\t\t{}",
                title(&s(n, "/ManagerStatus/Reachability"))
            );
            let leader = n.pointer("/ManagerStatus/Leader") == Some(&Value::Bool(true));
            println!(" Leader:\t\t{}", if leader { "Yes" } else { "No" });
        }
        println!("Platform:");
        println!(" Operating System:\t{}", s(n, "/Description/Platform/OS"));
        println!(
            " Architecture:\t\t{}",
            s(n, "/Description/Platform/Architecture")
        );
        println!("Resources:");
        println!(
            " CPUs:\t\t\t{}",
            n.pointer("/Description/Resources/NanoCPUs")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                / 1_000_000_000
        );
        println!(
            " Memory:\t\t{}",
            crate::engine::format::human_size(
                n.pointer("/Description/Resources/MemoryBytes")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
            )
        );
        println!(
            "Engine Version:\t\t{}",
            s(n, "/Description/Engine/EngineVersion")
        );
    }
    Ok(())
}
