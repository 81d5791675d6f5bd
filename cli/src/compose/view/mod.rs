//! The `compose` subcommands that look at a running project without changing it: `ps`,
//! `logs`, `top`, `port`, `images`, `ls`, `events`, `version`, `wait`, plus `exec` and `cp`.

use anyhow::Result;
use berth_client::Client;
use clap::{Args, Subcommand};

use super::ComposeArgs;

/// The read-side subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum ViewCommand {
    /// Show the Docker Compose version information.
    Version(VersionArgs),
}

/// Flags of `compose version`.
#[derive(Args, Debug, Clone)]
pub struct VersionArgs {
    /// Shows only Compose's version number.
    #[arg(long)]
    pub short: bool,
}

/// Runs a read-side subcommand.
pub async fn run(_args: &ComposeArgs, cmd: &ViewCommand, _client: &Client) -> Result<()> {
    match cmd {
        ViewCommand::Version(v) => {
            let version = env!("CARGO_PKG_VERSION");
            if v.short {
                println!("{version}");
            } else {
                println!("Berth Compose version v{version}");
            }
            Ok(())
        }
    }
}
