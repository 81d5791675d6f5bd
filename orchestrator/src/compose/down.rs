//! `down`: stop and remove the project's containers (dependents first), then its networks,
//! and with `-v` its volumes, with `--rmi` its images.

use std::collections::HashSet;

use berth_client::{Client, ClientError};
use compose_spec::model::Project;
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;

use super::containers::{self, ProjectContainer, Select};
use super::error::{ComposeError, Context, Result};
use super::images::image_name;
use super::progress::{Kind, Progress};
use super::resources;
use super::up::stop_timeout;

/// `--rmi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RemoveImages {
    /// Keep images.
    #[default]
    None,
    /// Images without a custom tag (built ones named `<project>-<service>`).
    Local,
    /// Every image a service uses.
    All,
}

/// Options of `down`.
#[derive(Clone, Debug, Default)]
pub struct DownOptions {
    /// `-v`: named volumes declared in the project and anonymous volumes of its containers.
    pub volumes: bool,
    /// `--rmi`.
    pub images: RemoveImages,
    /// `--remove-orphans`.
    pub remove_orphans: bool,
    /// `-t`.
    pub timeout: Option<i64>,
}

/// Groups of services in stop order: each group holds services nothing still running depends
/// on.
pub fn stop_groups(project: Option<&Project>, services: &[String]) -> Vec<Vec<String>> {
    let Some(p) = project else {
        return vec![services.to_vec()];
    };
    let mut left: Vec<String> = services.to_vec();
    let mut out = Vec::new();
    while !left.is_empty() {
        let needed: HashSet<&String> = left
            .iter()
            .filter_map(|n| p.services.get(n))
            .flat_map(|s| s.depends_on.keys())
            .collect();
        let (now, later): (Vec<String>, Vec<String>) =
            left.iter().cloned().partition(|n| !needed.contains(n));
        if now.is_empty() {
            // A cycle cannot load, but stay safe: stop the rest together.
            out.push(later);
            break;
        }
        out.push(now);
        left = later;
    }
    out
}

/// Stops then removes containers, group by group.
pub async fn stop_and_remove<'a>(
    client: &'a Client,
    project: Option<&'a Project>,
    list: &'a [ProjectContainer],
    timeout: Option<i64>,
    volumes: bool,
    progress: &'a Progress,
) -> Result<()> {
    let mut services: Vec<String> = Vec::new();
    for c in list {
        if !services.contains(&c.service) {
            services.push(c.service.clone());
        }
    }
    // Stops go group by group (dependents first); a stopped container's removal does not
    // wait for the next groups, it runs beside them.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&ProjectContainer>();
    let stops = async move {
        for group in stop_groups(project, &services) {
            let tasks = list
                .iter()
                .filter(|c| group.contains(&c.service))
                .map(|c| async move {
                    let svc = project.and_then(|p| p.services.get(&c.service));
                    if c.is_running() {
                        progress.event(Kind::Container, &c.name, "Stopping");
                        let t = svc.and_then(|s| stop_timeout(s, timeout)).or(timeout);
                        let sig = svc.and_then(|s| s.stop_signal.as_deref());
                        match client.container_stop(&c.id, t, sig).await {
                            Ok(()) | Err(ClientError::Daemon { status: 304, .. }) => {}
                            Err(e) => {
                                return Err(e).ctx(|| format!("stopping container {}", c.name));
                            }
                        }
                        progress.event(Kind::Container, &c.name, "Stopped");
                    }
                    Ok(c)
                });
            for c in join_all(tasks).await {
                let _ = tx.send(c?);
            }
        }
        Ok::<(), ComposeError>(())
    };
    let remove = |c: &'a ProjectContainer| async move {
        progress.event(Kind::Container, &c.name, "Removing");
        match client.container_remove(&c.id, true, volumes).await {
            Ok(()) | Err(ClientError::Daemon { status: 404, .. }) => {}
            Err(e) => return Err(e).ctx(|| format!("removing container {}", c.name)),
        }
        progress.event(Kind::Container, &c.name, "Removed");
        Ok(())
    };
    let removes = async {
        let mut pending = FuturesUnordered::new();
        let mut first_err = None;
        loop {
            tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => pending.push(remove(c)),
                    None => break,
                },
                Some(r) = pending.next(), if !pending.is_empty() => {
                    if let Err(e) = r {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        while let Some(r) = pending.next().await {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    };
    let (stopped, removed) = futures_util::future::join(stops, removes).await;
    stopped?;
    removed
}

/// Runs `down` for project `name` (the model, when a Compose file was found, gives stop order,
/// orphans and images).
pub async fn down(
    client: &Client,
    name: &str,
    project: Option<&Project>,
    opts: &DownOptions,
    progress: &Progress,
) -> Result<()> {
    let all = containers::list(
        client,
        name,
        Select {
            all: true,
            oneoff: true,
        },
    )
    .await?;
    let (ours, orphans): (Vec<ProjectContainer>, Vec<ProjectContainer>) =
        all.into_iter().partition(|c| {
            project.is_none_or(|p| {
                p.services.contains_key(&c.service) || p.disabled_services.contains_key(&c.service)
            })
        });
    let mut list = ours;
    if opts.remove_orphans {
        list.extend(orphans);
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        progress.warn(&format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        ));
    }
    stop_and_remove(client, project, &list, opts.timeout, opts.volumes, progress).await?;
    resources::remove_networks(client, name, progress).await?;
    if opts.volumes {
        resources::remove_volumes(client, name, progress).await?;
    }
    if opts.images != RemoveImages::None {
        remove_images(client, project, opts.images, progress).await?;
    }
    Ok(())
}

async fn remove_images(
    client: &Client,
    project: Option<&Project>,
    which: RemoveImages,
    progress: &Progress,
) -> Result<()> {
    let Some(p) = project else {
        return Ok(());
    };
    let mut done: HashSet<String> = HashSet::new();
    for s in p.services.values() {
        if which == RemoveImages::Local && s.image.is_some() {
            continue;
        }
        let image = image_name(p, s);
        if !done.insert(image.clone()) {
            continue;
        }
        progress.event(Kind::Image, &image, "Removing");
        match client.image_remove(&image, false, false).await {
            Ok(_) => progress.event(Kind::Image, &image, "Removed"),
            Err(ClientError::Daemon { status: 404, .. }) => {}
            Err(e) => return Err(e).ctx(|| format!("removing image {image}")),
        }
    }
    Ok(())
}
