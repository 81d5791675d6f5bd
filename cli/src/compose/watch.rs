//! `compose watch`: bring the project up, then follow its `develop.watch` rules until Ctrl-C.

use anyhow::Result;
use berth_client::Client;
use berth_orchestrator::compose::progress::Progress;
use berth_orchestrator::compose::up::{self, UpOptions};
use berth_orchestrator::compose::watch;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::ComposeArgs;
use super::lifecycle::project;

/// Flags of `compose watch`.
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Do not build & start services before watching.
    #[arg(long)]
    pub no_up: bool,
    /// Hide build output.
    #[arg(long)]
    pub quiet: bool,
    /// Services.
    pub services: Vec<String>,
}

/// `compose watch`.
pub async fn watch_cmd(args: &ComposeArgs, a: &WatchArgs, client: &Client) -> Result<()> {
    let project = project(args)?;
    let progress = Progress::new(a.quiet);
    if !a.no_up {
        let opts = UpOptions {
            services: a.services.clone(),
            start: true,
            ..UpOptions::default()
        };
        up::up(client, &project, &opts, &progress).await?;
    }
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    };
    watch::watch(client, &project, &a.services, &progress, stop).await?;
    Ok(())
}
