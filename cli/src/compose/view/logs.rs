//! `compose logs`: every selected container's log through the orchestrator's multiplexer;
//! with `-f`, containers that start meanwhile are followed too, until all have stopped.

use std::collections::HashSet;

use anyhow::Result;
use berth_client::containers::LogsOptions;
use berth_client::{Client, JsonLines};
use berth_orchestrator::compose::containers::{ProjectContainer, Select};
use berth_orchestrator::compose::labels;
use berth_orchestrator::compose::logs::{LogPrinter, PrinterOptions, follow, follow_added};
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::mpsc;

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

/// What `logs -f` watches for: the selection's containers that start while it runs.
struct Watch {
    project: String,
    services: Vec<String>,
    index: Option<u32>,
}

impl Watch {
    fn wants(&self, c: &ProjectContainer) -> bool {
        !c.oneoff
            && (self.services.is_empty() || self.services.contains(&c.service))
            && self.index.is_none_or(|i| c.number == i)
    }
}

/// Feeds containers that start during `logs -f` to the follower, and hangs up once every
/// watched container has stopped, so the follow ends with them as compose's does. A
/// container that restarts is not followed again.
async fn watch(
    client: Client,
    mut events: JsonLines,
    w: Watch,
    mut running: HashSet<String>,
    mut known: HashSet<String>,
    tx: mpsc::UnboundedSender<ProjectContainer>,
) {
    while !running.is_empty() {
        let ev = match events.next::<Value>().await {
            Ok(Some(ev)) => ev,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("event stream of {}: {e}", w.project);
                return;
            }
        };
        if ev["Type"].as_str() != Some("container") {
            continue;
        }
        let Some(id) = ev["Actor"]["ID"].as_str().map(str::to_string) else {
            continue;
        };
        match ev["Action"].as_str() {
            Some("start") => {
                let filter = json!({ "id": [id] }).to_string();
                let found = client
                    .containers(true, None, false, Some(&filter))
                    .await
                    .unwrap_or_default();
                let Some(c) = found.iter().find_map(ProjectContainer::from_summary) else {
                    continue;
                };
                if !w.wants(&c) {
                    continue;
                }
                running.insert(id.clone());
                if known.insert(id) && tx.send(c).is_err() {
                    return;
                }
            }
            Some("die") => {
                running.remove(&id);
            }
            _ => {}
        }
    }
}

/// Runs `compose logs`.
pub async fn run(args: &ComposeArgs, a: &LogsArgs, client: &Client) -> Result<()> {
    let (name, _) = super::project_for(args, &a.service)?;
    // With -f, subscribe before listing, so no container starts or stops unseen in between.
    let events = if a.follow {
        let filter = json!({ "label": [format!("{}={name}", labels::PROJECT)] }).to_string();
        Some(client.events(None, None, Some(&filter)).await?)
    } else {
        None
    };
    let sel = Select {
        all: true,
        oneoff: false,
    };
    let mut list = super::listed(client, &name, sel, &a.service).await?;
    let index = a.index.filter(|i| *i > 0);
    if let Some(i) = index {
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
    let Some(events) = events else {
        follow(client, list, opts, printer).await?;
        return Ok(());
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let w = Watch {
        project: name,
        services: a.service.clone(),
        index,
    };
    let running = list
        .iter()
        .filter(|c| c.is_running())
        .map(|c| c.id.clone())
        .collect();
    let known = list.iter().map(|c| c.id.clone()).collect();
    let watcher = tokio::spawn(watch(client.clone(), events, w, running, known, tx));
    let r = follow_added(client, list, opts, printer, rx).await;
    watcher.abort();
    r?;
    Ok(())
}
