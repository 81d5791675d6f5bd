//! `compose run`: a one-off container of a service, attached like `docker run` unless `-d`.

use std::io::IsTerminal;

use anyhow::Result;
use berth_client::Client;
use berth_orchestrator::compose::progress::Progress;
use berth_orchestrator::compose::run::{self, RunOptions};
use clap::Args;

use super::ComposeArgs;
use super::lifecycle::project;
use crate::engine::container::run::{attach_start_wait, exit_with};

/// Flags of `compose run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the entrypoint of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Add or override a label.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Disable pseudo-TTY allocation (default: auto-detected).
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long, default_value_t = true)]
    pub interactive: bool,
    /// Don't start linked services.
    #[arg(long)]
    pub no_deps: bool,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run command with all service's ports enabled and mapped to the host.
    #[arg(short = 'P', long)]
    pub service_ports: bool,
    /// Use the service's network aliases in the network(s) the container connects to.
    #[arg(long)]
    pub use_aliases: bool,
    /// Run as specified username or uid.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Build image before starting container.
    #[arg(long)]
    pub build: bool,
    /// The service.
    pub service: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `compose run`.
pub async fn run_cmd(args: &ComposeArgs, a: &RunArgs, client: &Client) -> Result<()> {
    let project = project(args)?;
    let stdin_tty = std::io::stdin().is_terminal();
    let tty = !a.no_tty && !a.detach && (a.tty || stdin_tty);
    let interactive = a.interactive && !a.detach;
    let o = RunOptions {
        service: a.service.clone(),
        command: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: a.env.clone(),
        labels: a.labels.clone(),
        volumes: a.volumes.clone(),
        publish: a.publish.clone(),
        service_ports: a.service_ports,
        use_aliases: a.use_aliases,
        name: a.name.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty,
        interactive,
        no_deps: a.no_deps,
        auto_remove: a.rm && a.detach,
    };
    let progress = Progress::new(false);
    let c = run::create(client, &project, &o, &progress).await?;
    if a.detach {
        client.container_start(&c.id).await?;
        println!("{}", c.name);
        return Ok(());
    }
    let res = attach_start_wait(
        client,
        &c.id,
        tty,
        interactive,
        None,
        true,
        "next-exit",
        true,
    )
    .await;
    if a.rm {
        let _ = client.container_remove(&c.id, true, true).await;
    }
    match res {
        Ok(None) => Ok(()),
        Ok(Some(code)) => exit_with(code),
        Err((_, e)) => Err(e),
    }
}
