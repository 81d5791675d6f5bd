//! Attached `up`: the containers' output multiplexed with `name  | ` prefixes until they all
//! exit; `--abort-on-container-exit`/`--exit-code-from` end it early; the first Ctrl-C stops
//! the project gracefully, the second kills it.

use anyhow::Result;
use berth_client::Client;
use berth_client::containers::LogsOptions;
use berth_orchestrator::compose::containers::{self, ProjectContainer, Select};
use berth_orchestrator::compose::logs::{self, LogPrinter, PrinterOptions};
use berth_orchestrator::compose::ops::{self, Op};
use berth_orchestrator::compose::progress::Progress;
use berth_orchestrator::compose::up::{UpOptions, selection};
use compose_spec::model::Project;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::ComposeArgs;
use super::lifecycle::UpArgs;
use crate::engine::StatusError;

/// A container's end, reported by its follower.
struct Exited {
    service: String,
    code: i64,
}

/// Which services `up` attaches to.
fn attached_services(project: &Project, a: &UpArgs, opts: &UpOptions) -> Result<Vec<String>> {
    let mut names = if !a.attach.is_empty() {
        a.attach.clone()
    } else if a.attach_dependencies || opts.services.is_empty() {
        selection(project, &opts.services, opts.no_deps)?
    } else {
        opts.services.clone()
    };
    names.retain(|n| !a.no_attach.contains(n));
    names.retain(|n| {
        project
            .services
            .get(n)
            .is_none_or(|s| s.attach != Some(false))
    });
    Ok(names)
}

/// Streams one container's logs until it exits, then reports its exit code.
async fn follow(
    client: Client,
    c: ProjectContainer,
    ts: bool,
    printer: LogPrinter,
    tx: mpsc::UnboundedSender<Exited>,
) {
    let wait = client.container_wait(&c.id, "next-exit").await;
    let opts = LogsOptions {
        follow: true,
        timestamps: ts,
        tail: None,
        since: None,
        until: None,
    };
    if let Err(e) = logs::stream(&client, &c, &opts, &printer).await {
        tracing::debug!("log stream of {}: {e}", c.name);
    }
    let code = match wait {
        Ok(w) => w.status().await.unwrap_or(-1),
        Err(_) => -1,
    };
    printer.status(&logs::display_name(&c), &format!("exited with code {code}"));
    let _ = tx.send(Exited {
        service: c.service,
        code,
    });
}

/// The exit code of a service's first container (after it was stopped).
async fn exit_code_of(client: &Client, list: &[ProjectContainer], service: &str) -> i64 {
    let Some(c) = list.iter().find(|c| c.service == service) else {
        return 0;
    };
    client
        .container_inspect(&c.id, false)
        .await
        .ok()
        .and_then(|v| {
            v.pointer("/State/ExitCode")
                .and_then(serde_json::Value::as_i64)
        })
        .unwrap_or(0)
}

/// Runs the attached part of `up`.
pub async fn run(
    args: &ComposeArgs,
    a: &UpArgs,
    client: &Client,
    project: &Project,
    opts: &UpOptions,
) -> Result<()> {
    let _ = args;
    let services = attached_services(project, a, opts)?;
    let list: Vec<ProjectContainer> = containers::list(
        client,
        &project.name,
        Select {
            all: true,
            oneoff: false,
        },
    )
    .await?
    .into_iter()
    .filter(|c| services.contains(&c.service))
    .collect();
    let names: Vec<String> = list.iter().map(logs::display_name).collect();
    println!("Attaching to {}", names.join(", "));
    let printer = LogPrinter::stdout(PrinterOptions::for_stdout(a.no_color, a.no_log_prefix));
    for n in &names {
        printer.register(n);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut running = 0usize;
    for c in list.iter().filter(|c| c.is_running()) {
        tokio::spawn(follow(
            client.clone(),
            c.clone(),
            a.timestamps,
            printer.clone(),
            tx.clone(),
        ));
        running += 1;
    }
    drop(tx);
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    let mut exit_code: i64 = 0;
    let mut interrupted = false;
    let progress = Progress::new(false);
    let all = Vec::new();
    while running > 0 {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                running -= 1;
                if abort || (a.abort_on_container_failure && ev.code != 0) {
                    eprintln!("Aborting on container exit...");
                    ops::apply(client, &project.name, Some(project), &all, &Op::Stop(a.timeout), &progress).await?;
                    exit_code = match &a.exit_code_from {
                        Some(svc) if *svc != ev.service => exit_code_of(client, &list, svc).await,
                        _ => ev.code,
                    };
                    break;
                }
            }
            _ = sigint.recv() => {
                if interrupted {
                    ops::apply(client, &project.name, Some(project), &all, &Op::Kill(None), &progress).await?;
                    break;
                }
                interrupted = true;
                eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                let stop_op = Op::Stop(a.timeout);
                let stop = ops::apply(client, &project.name, Some(project), &all, &stop_op, &progress);
                tokio::pin!(stop);
                tokio::select! {
                    r = &mut stop => { r?; }
                    _ = sigint.recv() => {
                        ops::apply(client, &project.name, Some(project), &all, &Op::Kill(None), &progress).await?;
                    }
                }
                break;
            }
            _ = sigterm.recv() => {
                ops::apply(client, &project.name, Some(project), &all, &Op::Stop(a.timeout), &progress).await?;
                interrupted = true;
                break;
            }
        }
    }
    if interrupted {
        return Err(StatusError::silent(130).into());
    }
    if exit_code != 0 {
        return Err(StatusError::silent(u8::try_from(exit_code.clamp(0, 255)).unwrap_or(1)).into());
    }
    Ok(())
}
