//! The `compose` subcommands that look at a running project without changing it: `ps`,
//! `logs`, `top`, `port`, `images`, `ls`, `events`, `version`, `wait`, plus `exec` and `cp`.

mod events;
mod exec;
mod inspect;
mod logs;
mod ls;
mod ps;

use anyhow::{Result, bail};
use berth_client::Client;
use berth_orchestrator::compose::containers::{self, ProjectContainer, Select};
use clap::{Args, Subcommand};
use compose_spec::model::Project;

use super::ComposeArgs;

/// The read-side subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum ViewCommand {
    /// List containers.
    Ps(ps::PsArgs),
    /// View output from containers.
    Logs(logs::LogsArgs),
    /// Display the running processes.
    Top(inspect::ServicesArgs),
    /// Print the public port for a port binding.
    Port(inspect::PortArgs),
    /// List images used by the created containers.
    Images(inspect::ImagesArgs),
    /// List running compose projects.
    Ls(ls::LsArgs),
    /// Receive real time events from containers.
    Events(events::EventsArgs),
    /// Show the Docker Compose version information.
    Version(VersionArgs),
    /// Block until containers of all (or specified) services stop.
    Wait(exec::WaitArgs),
    /// Execute a command in a running container.
    Exec(exec::ExecArgs),
    /// Copy files/folders between a service container and the local filesystem.
    Cp(exec::CpArgs),
}

/// Flags of `compose version`.
#[derive(Args, Debug, Clone)]
pub struct VersionArgs {
    /// Shows only Compose's version number.
    #[arg(long)]
    pub short: bool,
    /// Format the output. Values: [pretty | json].
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Runs a read-side subcommand.
pub async fn run(args: &ComposeArgs, cmd: &ViewCommand, client: &Client) -> Result<()> {
    match cmd {
        ViewCommand::Ps(a) => ps::run(args, a, client).await,
        ViewCommand::Logs(a) => logs::run(args, a, client).await,
        ViewCommand::Top(a) => inspect::top(args, a, client).await,
        ViewCommand::Port(a) => inspect::port(args, a, client).await,
        ViewCommand::Images(a) => inspect::images(args, a, client).await,
        ViewCommand::Ls(a) => ls::run(a, client).await,
        ViewCommand::Events(a) => events::run(args, a, client).await,
        ViewCommand::Version(v) => version(v),
        ViewCommand::Wait(a) => exec::wait(args, a, client).await,
        ViewCommand::Exec(a) => exec::exec(args, a, client).await,
        ViewCommand::Cp(a) => exec::cp(args, a, client).await,
    }
}

fn version(v: &VersionArgs) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    if v.short {
        println!("{version}");
    } else if v.format.as_deref() == Some("json") {
        println!(
            "{}",
            serde_json::json!({ "version": format!("v{version}") })
        );
    } else {
        println!("Berth Compose version v{version}");
    }
    Ok(())
}

/// The project name and, when a Compose file is found, its model; the services named on the
/// command line must exist in the model.
fn project_for(args: &ComposeArgs, services: &[String]) -> Result<(String, Option<Project>)> {
    let (name, project) = super::lifecycle::project_or_name(args)?;
    if let Some(p) = &project {
        for s in services {
            if !p.services.contains_key(s) {
                bail!("no such service: {s}");
            }
        }
    }
    Ok((name, project))
}

/// The project's containers, restricted to `services` when any are named.
async fn listed(
    client: &Client,
    project: &str,
    sel: Select,
    services: &[String],
) -> Result<Vec<ProjectContainer>> {
    let mut list = containers::list(client, project, sel).await?;
    if !services.is_empty() {
        list.retain(|c| services.contains(&c.service));
    }
    Ok(list)
}

/// The container `--index` designates among a service's containers (the lowest number when
/// no index is given), as compose's `getSpecifiedContainer`.
async fn service_container(
    client: &Client,
    project: &str,
    service: &str,
    index: Option<u32>,
    all: bool,
) -> Result<ProjectContainer> {
    let sel = Select { all, oneoff: false };
    let list = listed(client, project, sel, &[service.to_string()]).await?;
    let found = match index {
        Some(i) if i > 0 => list.into_iter().find(|c| c.number == i),
        _ => list.into_iter().next(),
    };
    match (found, index) {
        (Some(c), _) => Ok(c),
        (None, Some(i)) if i > 0 => {
            bail!("service \"{service}\" is not running container #{i}")
        }
        (None, _) => bail!("service \"{service}\" is not running"),
    }
}
