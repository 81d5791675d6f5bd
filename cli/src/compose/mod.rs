//! `berth compose`: global project options and the subcommands.

mod attach;
mod config;
mod lifecycle;
mod project;
mod run;
mod view;
mod watch;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use berth_orchestrator::compose::ops::Op;

use crate::engine::ConnArgs;

/// Options shared by every `compose` subcommand (docker compose's global flags).
#[derive(Args, Debug, Clone)]
pub struct ComposeArgs {
    /// Compose configuration files (`-` reads standard input).
    #[arg(short = 'f', long = "file", global = true)]
    pub files: Vec<PathBuf>,
    /// Project name.
    #[arg(short = 'p', long = "project-name", global = true)]
    pub project_name: Option<String>,
    /// Profiles to enable.
    #[arg(long = "profile", id = "profile", global = true)]
    pub profiles: Vec<String>,
    /// Alternate environment files.
    #[arg(long = "env-file", global = true)]
    pub env_files: Vec<PathBuf>,
    /// Alternate working directory (default: the directory of the first Compose file).
    #[arg(long = "project-directory", global = true)]
    pub project_directory: Option<PathBuf>,
    /// Control max parallelism, -1 for unlimited.
    #[arg(
        long,
        global = true,
        env = "COMPOSE_PARALLEL_LIMIT",
        allow_negative_numbers = true
    )]
    pub parallel: Option<i64>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

/// The `compose` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum ComposeCommand {
    /// Parse, resolve and render the Compose file in canonical format.
    Config(config::ConfigArgs),
    /// Create and start containers.
    Up(lifecycle::UpArgs),
    /// Creates containers for a service.
    Create(lifecycle::CreateArgs),
    /// Stop and remove containers, networks.
    Down(lifecycle::DownArgs),
    /// Start services.
    Start(lifecycle::ServicesArgs),
    /// Stop services.
    Stop(lifecycle::TimeoutArgs),
    /// Restart service containers.
    Restart(lifecycle::TimeoutArgs),
    /// Force stop service containers.
    Kill(lifecycle::KillArgs),
    /// Pause services.
    Pause(lifecycle::ServicesArgs),
    /// Unpause services.
    Unpause(lifecycle::ServicesArgs),
    /// Removes stopped service containers.
    Rm(lifecycle::RmArgs),
    /// Pull service images.
    Pull(lifecycle::PullArgs),
    /// Build or rebuild services.
    Build(lifecycle::BuildArgs),
    /// Push service images.
    Push(lifecycle::PushArgs),
    /// Run a one-off command on a service.
    Run(run::RunArgs),
    /// Watch build context for service and rebuild/refresh containers when files are updated.
    Watch(watch::WatchArgs),
    #[command(flatten)]
    View(view::ViewCommand),
}

/// Run a `compose` subcommand.
pub fn run(args: ComposeArgs, conn: &ConnArgs) -> anyhow::Result<()> {
    // `config` needs no daemon and no runtime.
    if let ComposeCommand::Config(c) = &args.command {
        return config::run(&args, c);
    }
    let client = conn.client()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match &args.command {
            ComposeCommand::Config(_) => Ok(()),
            ComposeCommand::View(v) => view::run(&args, v, &client).await,
            ComposeCommand::Up(a) => lifecycle::up_cmd(&args, a, &client).await,
            ComposeCommand::Create(a) => lifecycle::create_cmd(&args, a, &client).await,
            ComposeCommand::Down(a) => lifecycle::down_cmd(&args, a, &client).await,
            ComposeCommand::Start(a) => {
                lifecycle::op_cmd(&args, &a.services, Op::Start, &client).await
            }
            ComposeCommand::Stop(a) => {
                lifecycle::op_cmd(&args, &a.services, Op::Stop(a.timeout), &client).await
            }
            ComposeCommand::Restart(a) => {
                lifecycle::op_cmd(&args, &a.services, Op::Restart(a.timeout), &client).await
            }
            ComposeCommand::Kill(a) => {
                let op = Op::Kill(Some(a.signal.clone()));
                lifecycle::op_cmd(&args, &a.services, op, &client).await
            }
            ComposeCommand::Pause(a) => {
                lifecycle::op_cmd(&args, &a.services, Op::Pause, &client).await
            }
            ComposeCommand::Unpause(a) => {
                lifecycle::op_cmd(&args, &a.services, Op::Unpause, &client).await
            }
            ComposeCommand::Rm(a) => {
                let op = Op::Remove {
                    volumes: a.volumes,
                    stop: a.stop,
                };
                lifecycle::op_cmd(&args, &a.services, op, &client).await
            }
            ComposeCommand::Pull(a) => lifecycle::pull_cmd(&args, a, &client).await,
            ComposeCommand::Build(a) => lifecycle::build_cmd(&args, a, &client).await,
            ComposeCommand::Push(a) => lifecycle::push_cmd(&args, a, &client).await,
            ComposeCommand::Run(a) => run::run_cmd(&args, a, &client).await,
            ComposeCommand::Watch(a) => watch::watch_cmd(&args, a, &client).await,
        }
    })
}
