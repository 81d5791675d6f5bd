//! `berth service logs SERVICE|TASK`: the tasks' lines from every node, each prefixed with
//! `service.slot.task@node |` as the docker CLI prints them.

use super::super::util::{s, short_id};
use anyhow::{Context, Result};
use berth_client::swarm::SwarmLogsOptions;
use berth_client::{Client, Demuxer, StdStream};
use clap::Args;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;

/// `service logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs.
    #[arg(long)]
    details: bool,
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Do not map IDs to Names in output.
    #[arg(long)]
    no_resolve: bool,
    /// Do not include task IDs in output.
    #[arg(long)]
    no_task_ids: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Do not neatly format logs.
    #[arg(long)]
    raw: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    since: Option<String>,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// SERVICE|TASK
    target: String,
}

/// Names for the prefixes: task ID -> `service.slot[.task]`, node ID -> hostname.
struct Names {
    tasks: HashMap<String, String>,
    nodes: HashMap<String, String>,
    width: usize,
}

/// Streams the logs of a service (or of one task, when the argument is not a service).
pub async fn logs(c: &Client, a: LogsArgs) -> Result<()> {
    let (id, task, tty, service_name, service_id) = match c.service_inspect(&a.target).await {
        Ok(svc) => (
            s(&svc, "/ID"),
            false,
            svc.pointer("/Spec/TaskTemplate/ContainerSpec/TTY")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            s(&svc, "/Spec/Name"),
            s(&svc, "/ID"),
        ),
        Err(service_err) => {
            let t = c
                .task_inspect(&a.target)
                .await
                .map_err(|_| service_err)
                .context("no such service or task")?;
            let sid = s(&t, "/ServiceID");
            let name = match c.service_inspect(&sid).await {
                Ok(svc) => s(&svc, "/Spec/Name"),
                Err(_) => sid.clone(),
            };
            (
                s(&t, "/ID"),
                true,
                t.pointer("/Spec/ContainerSpec/TTY")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                name,
                sid,
            )
        }
    };
    let pretty = !a.raw;
    let names = if pretty {
        Some(names(c, &a, &service_id, &service_name).await?)
    } else {
        None
    };
    let opts = SwarmLogsOptions {
        task,
        follow: a.follow,
        timestamps: a.timestamps,
        details: a.details || pretty,
        tail: (a.tail != "all").then(|| a.tail.clone()),
        since: match &a.since {
            Some(v) => Some(crate::engine::container::ops::timestamp(
                v,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            )?),
            None => None,
        },
    };
    let mut stream = c.swarm_logs(&id, &opts).await?;
    let mut demux = Demuxer::default();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    while let Some(chunk) = stream.next().await? {
        let frames = if tty {
            vec![(StdStream::Stdout, chunk)]
        } else {
            demux.push(&chunk)?
        };
        for (kind, data) in frames {
            let line = match &names {
                Some(n) => pretty_line(&data, n, &a),
                None => data.to_vec(),
            };
            if kind == StdStream::Stderr {
                err.write_all(&line)?;
            } else {
                out.write_all(&line)?;
            }
        }
        out.flush()?;
    }
    Ok(())
}

async fn names(c: &Client, a: &LogsArgs, service_id: &str, service_name: &str) -> Result<Names> {
    let filters = serde_json::json!({ "service": { service_id: true } }).to_string();
    let mut tasks = HashMap::new();
    for t in c.tasks(Some(&filters)).await? {
        let slot = t.pointer("/Slot").and_then(Value::as_u64).unwrap_or(0);
        let mut name = if slot > 0 {
            format!("{service_name}.{slot}")
        } else {
            format!("{service_name}.{}", s(&t, "/NodeID"))
        };
        if !a.no_task_ids {
            name.push('.');
            name.push_str(&short_id(&s(&t, "/ID"), a.no_trunc));
        }
        tasks.insert(s(&t, "/ID"), name);
    }
    let mut nodes = HashMap::new();
    if !a.no_resolve {
        for n in c.nodes(None).await.unwrap_or_default() {
            nodes.insert(s(&n, "/ID"), s(&n, "/Description/Hostname"));
        }
    }
    let width = tasks.values().map(String::len).max().unwrap_or(0)
        + 1
        + nodes.values().map(String::len).max().unwrap_or(0);
    Ok(Names {
        tasks,
        nodes,
        width,
    })
}

/// `[time ]details line` -> `[time ]name@node    | line` (details kept with `--details`).
fn pretty_line(data: &[u8], names: &Names, a: &LogsArgs) -> Vec<u8> {
    let (time, rest) = if a.timestamps {
        match data.iter().position(|b| *b == b' ') {
            Some(i) => (&data[..=i], &data[i + 1..]),
            None => (&data[..0], data),
        }
    } else {
        (&data[..0], data)
    };
    let Some(i) = rest.iter().position(|b| *b == b' ') else {
        return data.to_vec();
    };
    let (details, line) = (String::from_utf8_lossy(&rest[..i]), &rest[i + 1..]);
    let mut ids: HashMap<&str, &str> = HashMap::new();
    let mut extra = Vec::new();
    for pair in details.split(',') {
        match pair.split_once('=') {
            Some((k, v)) if k.starts_with("com.docker.swarm.") => {
                ids.insert(k, v);
            }
            _ => extra.push(pair),
        }
    }
    let task = ids.get("com.docker.swarm.task.id").copied().unwrap_or("");
    let node = ids.get("com.docker.swarm.node.id").copied().unwrap_or("");
    let task_name = names
        .tasks
        .get(task)
        .cloned()
        .unwrap_or_else(|| short_id(task, a.no_trunc));
    let node_name = names.nodes.get(node).map(String::as_str).unwrap_or(node);
    let prefix = format!("{task_name}@{node_name}");
    let mut out = time.to_vec();
    out.extend_from_slice(format!("{prefix:<w$}    | ", w = names.width).as_bytes());
    if a.details && !extra.is_empty() {
        out.extend_from_slice(extra.join(",").as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(line);
    out
}
