//! `compose logs`: every selected container's log through the orchestrator's multiplexer.

use anyhow::Result;
use berth_client::Client;
use berth_client::containers::LogsOptions;
use berth_orchestrator::compose::containers::Select;
use berth_orchestrator::compose::logs::{LogPrinter, PrinterOptions, follow};
use clap::Args;

use super::super::ComposeArgs;
use crate::engine::container::timestamp;

/// Flags of `compose logs`.
#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs for each container.
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42
    /// minutes).
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42
    /// minutes).
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// Don't print prefix in logs.
    #[arg(long)]
    no_log_prefix: bool,
    /// Produce monochrome output.
    #[arg(long)]
    no_color: bool,
    /// index of the container if service has multiple replicas.
    #[arg(long)]
    index: Option<u32>,
    /// SERVICE...
    service: Vec<String>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs `compose logs`.
pub async fn run(args: &ComposeArgs, a: &LogsArgs, client: &Client) -> Result<()> {
    let (name, _) = super::project_for(args, &a.service)?;
    let sel = Select {
        all: true,
        oneoff: false,
    };
    let mut list = super::listed(client, &name, sel, &a.service).await?;
    if let Some(i) = a.index.filter(|i| *i > 0) {
        list.retain(|c| c.number == i);
    }
    let now = now_unix();
    let opts = LogsOptions {
        follow: a.follow,
        timestamps: a.timestamps,
        tail: Some(a.tail.clone()),
        since: a.since.as_deref().map(|s| timestamp(s, now)).transpose()?,
        until: a.until.as_deref().map(|s| timestamp(s, now)).transpose()?,
    };
    let printer = LogPrinter::stdout(PrinterOptions::for_stdout(a.no_color, a.no_log_prefix));
    follow(client, list, opts, printer).await?;
    Ok(())
}
