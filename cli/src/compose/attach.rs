//! Attached `up`: the containers' output multiplexed with `name  | ` prefixes until they all
//! exit; `--abort-on-container-exit`/`--exit-code-from` end it early; the first Ctrl-C stops
//! the project gracefully, the second kills it.

use std::io::Write;

use anyhow::Result;
use berth_client::containers::LogsOptions;
use berth_client::{Client, Demuxer};
use berth_orchestrator::compose::containers::{self, ProjectContainer, Select};
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
    name: String,
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
    prefix: String,
    ts: bool,
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
    let tty = client
        .container_inspect(&c.id, false)
        .await
        .ok()
        .and_then(|v| {
            v.pointer("/Config/Tty")
                .and_then(serde_json::Value::as_bool)
        })
        .unwrap_or(false);
    if let Ok(mut body) = client.container_logs(&c.id, &opts).await {
        let mut demux = Demuxer::new();
        let mut partial: Vec<u8> = Vec::new();
        while let Ok(Some(chunk)) = body.next().await {
            let frames: Vec<bytes::Bytes> = if tty {
                vec![chunk]
            } else {
                match demux.push(&chunk) {
                    Ok(f) => f.into_iter().map(|(_, b)| b).collect(),
                    Err(_) => vec![chunk],
                }
            };
            for f in frames {
                partial.extend_from_slice(&f);
                while let Some(i) = partial.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=i).collect();
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(prefix.as_bytes());
                    let _ = out.write_all(&line);
                    let _ = out.flush();
                }
            }
        }
        if !partial.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(prefix.as_bytes());
            let _ = out.write_all(&partial);
            let _ = out.write_all(b"\n");
        }
    }
    let code = match wait {
        Ok(w) => w.status().await.unwrap_or(-1),
        Err(_) => -1,
    };
    let _ = tx.send(Exited {
        name: c.name,
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
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    println!("Attaching to {}", names.join(", "));
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut running = 0usize;
    for c in list.iter().filter(|c| c.is_running()) {
        let prefix = if a.no_log_prefix {
            String::new()
        } else {
            format!("{:width$}  | ", c.name)
        };
        tokio::spawn(follow(
            client.clone(),
            c.clone(),
            prefix,
            a.timestamps,
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
                println!("{} exited with code {}", ev.name, ev.code);
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
