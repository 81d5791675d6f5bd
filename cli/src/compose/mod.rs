//! `berth compose`: global project options and the subcommands.

mod config;
mod project;
mod view;

use std::path::PathBuf;

use clap::{Args, Subcommand};

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
    #[command(subcommand)]
    pub command: ComposeCommand,
}

/// The `compose` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum ComposeCommand {
    /// Parse, resolve and render the Compose file in canonical format.
    Config(config::ConfigArgs),
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
        }
    })
}
