//! `berth swarm|node|service|stack`: the swarm commands, with docker's flags and output.

mod cluster;
mod data;
mod node;
mod service;
mod stack;
mod tasks;
mod util;

use crate::engine::ConnArgs;
use anyhow::Result;
use berth_orchestrator::swarm::secrets::DataKind;
use clap::Subcommand;

/// The swarm command groups.
#[derive(Debug, Subcommand)]
pub enum SwarmTop {
    /// Manage Swarm.
    #[command(subcommand)]
    Swarm(cluster::SwarmCommand),
    /// Manage Swarm nodes.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Manage Swarm services.
    #[command(subcommand)]
    Service(Box<service::ServiceCommand>),
    /// Manage Swarm stacks.
    #[command(subcommand)]
    Stack(Box<stack::StackCommand>),
    /// Manage Swarm secrets.
    #[command(subcommand)]
    Secret(data::DataCommand),
    /// Manage Swarm configs.
    #[command(subcommand)]
    Config(data::DataCommand),
}

/// Runs a swarm command.
pub fn run(cmd: SwarmTop, conn: &ConnArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let c = conn.client()?;
        match cmd {
            SwarmTop::Swarm(s) => cluster::run(&c, s).await,
            SwarmTop::Node(n) => node::run(&c, n).await,
            SwarmTop::Service(s) => service::run(&c, *s).await,
            SwarmTop::Stack(s) => stack::run(&c, *s).await,
            SwarmTop::Secret(s) => data::run(&c, DataKind::Secret, s).await,
            SwarmTop::Config(s) => data::run(&c, DataKind::Config, s).await,
        }
    })
}
