//! `start`, `stop`, `restart`, `kill`, `pause`, `unpause` and `rm` over a project's existing
//! containers, in dependency order where order matters.

use berth_client::{Client, ClientError};
use compose_spec::model::Project;
use futures_util::future::join_all;

use super::containers::{self, ProjectContainer, Select};
use super::down::stop_groups;
use super::error::{Context, Result};
use super::progress::{Kind, Progress};
use super::up::stop_timeout;

/// What to do to each container.
#[derive(Clone, Debug)]
pub enum Op {
    /// Start stopped containers.
    Start,
    /// Stop running ones (`-t`).
    Stop(Option<i64>),
    /// Restart (`-t`).
    Restart(Option<i64>),
    /// Send a signal (`-s`).
    Kill(Option<String>),
    /// Freeze.
    Pause,
    /// Thaw.
    Unpause,
    /// Remove stopped containers (`-v` anonymous volumes too; `-s` stop first).
    Remove {
        /// Remove anonymous volumes.
        volumes: bool,
        /// Stop running containers first.
        stop: bool,
    },
}

impl Op {
    fn verbs(&self) -> (&'static str, &'static str) {
        match self {
            Op::Start => ("Starting", "Started"),
            Op::Stop(_) => ("Stopping", "Stopped"),
            Op::Restart(_) => ("Restarting", "Started"),
            Op::Kill(_) => ("Killing", "Killed"),
            Op::Pause => ("Pausing", "Paused"),
            Op::Unpause => ("Unpausing", "Unpaused"),
            Op::Remove { .. } => ("Removing", "Removed"),
        }
    }

    fn applies(&self, c: &ProjectContainer) -> bool {
        match self {
            Op::Start => !c.is_running(),
            Op::Stop(_) | Op::Kill(_) => c.is_running(),
            Op::Restart(_) => true,
            Op::Pause => c.state == "running",
            Op::Unpause => c.state == "paused",
            Op::Remove { stop, .. } => *stop || !c.is_running(),
        }
    }
}

/// Applies `op` to the containers of `services` (all when empty) of project `name`.
pub async fn apply(
    client: &Client,
    name: &str,
    project: Option<&Project>,
    services: &[String],
    op: &Op,
    progress: &Progress,
) -> Result<Vec<ProjectContainer>> {
    let list: Vec<ProjectContainer> = containers::list(
        client,
        name,
        Select {
            all: true,
            oneoff: matches!(op, Op::Remove { .. }),
        },
    )
    .await?
    .into_iter()
    .filter(|c| services.is_empty() || services.contains(&c.service))
    .filter(|c| op.applies(c))
    .collect();
    let mut svcs: Vec<String> = Vec::new();
    for c in &list {
        if !svcs.contains(&c.service) {
            svcs.push(c.service.clone());
        }
    }
    let mut groups = stop_groups(project, &svcs);
    if matches!(op, Op::Start | Op::Restart(_) | Op::Unpause) {
        groups.reverse();
    }
    let (doing, done) = op.verbs();
    for group in groups {
        let tasks = list
            .iter()
            .filter(|c| group.contains(&c.service))
            .map(|c| async move {
                let svc = project.and_then(|p| p.services.get(&c.service));
                progress.event(Kind::Container, &c.name, doing);
                let what = || format!("{} container {}", doing.to_lowercase(), c.name);
                match op {
                    Op::Start => client.container_start(&c.id).await.ctx(what)?,
                    Op::Stop(t) => {
                        let t = svc.and_then(|s| stop_timeout(s, *t)).or(*t);
                        let sig = svc.and_then(|s| s.stop_signal.as_deref());
                        match client.container_stop(&c.id, t, sig).await {
                            Ok(()) | Err(ClientError::Daemon { status: 304, .. }) => {}
                            Err(e) => return Err(e).ctx(what),
                        }
                    }
                    Op::Restart(t) => {
                        let t = svc.and_then(|s| stop_timeout(s, *t)).or(*t);
                        client.container_restart(&c.id, t, None).await.ctx(what)?
                    }
                    Op::Kill(sig) => client
                        .container_kill(&c.id, sig.as_deref())
                        .await
                        .ctx(what)?,
                    Op::Pause => client.container_pause(&c.id).await.ctx(what)?,
                    Op::Unpause => client.container_unpause(&c.id).await.ctx(what)?,
                    Op::Remove { volumes, stop } => {
                        if *stop && c.is_running() {
                            let t = svc.and_then(|s| stop_timeout(s, None));
                            match client.container_stop(&c.id, t, None).await {
                                Ok(()) | Err(ClientError::Daemon { status: 304, .. }) => {}
                                Err(e) => return Err(e).ctx(what),
                            }
                        }
                        client
                            .container_remove(&c.id, true, *volumes)
                            .await
                            .ctx(what)?
                    }
                }
                progress.event(Kind::Container, &c.name, done);
                Ok(())
            });
        join_all(tasks).await.into_iter().collect::<Result<()>>()?;
    }
    Ok(list)
}
