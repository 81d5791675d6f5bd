//! `down`: stop and remove the project's containers (dependents first), then its networks,
//! and with `-v` its volumes, with `--rmi` its images.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use berth_client::{Client, ClientError};
use compose_spec::model::Project;
use futures_util::StreamExt;
use futures_util::future::{FutureExt, LocalBoxFuture, Shared, join_all};
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

/// Stops then removes containers: each service stops as soon as every service depending on it
/// has stopped (no barrier between groups), and each container's removal starts as soon as it
/// has stopped.
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
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&ProjectContainer>();
    let first_err: RefCell<Option<ComposeError>> = RefCell::default();
    let stop_one = |c: &'a ProjectContainer| async move {
        let svc = project.and_then(|p| p.services.get(&c.service));
        if c.is_running() {
            progress.event(Kind::Container, &c.name, "Stopping");
            let t = svc.and_then(|s| stop_timeout(s, timeout)).or(timeout);
            let sig = svc.and_then(|s| s.stop_signal.as_deref());
            match client.container_stop(&c.id, t, sig).await {
                Ok(()) | Err(ClientError::Daemon { status: 304, .. }) => {}
                Err(e) => return Err(e).ctx(|| format!("stopping container {}", c.name)),
            }
            progress.event(Kind::Container, &c.name, "Stopped");
        }
        Ok(c)
    };
    // Built in stop order, so that a service's future holds clones of its dependents'; each
    // resolves to whether its containers stopped.
    let mut stops: HashMap<String, Shared<LocalBoxFuture<'_, bool>>> = HashMap::new();
    for group in stop_groups(project, &services) {
        for name in group {
            let waits: Vec<_> = dependents(project, &name, &services)
                .filter_map(|d| stops.get(d).cloned())
                .collect();
            let (tx, first_err, stop_one) = (tx.clone(), &first_err, &stop_one);
            let svc = name.clone();
            let fut = async move {
                if !join_all(waits).await.into_iter().all(|ok| ok) {
                    return false;
                }
                let mine = list.iter().filter(|c| c.service == svc).map(stop_one);
                let mut ok = true;
                for r in join_all(mine).await {
                    match r {
                        Ok(c) => {
                            let _ = tx.send(c);
                        }
                        Err(e) => {
                            ok = false;
                            first_err.borrow_mut().get_or_insert(e);
                        }
                    }
                }
                ok
            }
            .boxed_local()
            .shared();
            stops.insert(name, fut);
        }
    }
    drop(tx);
    let stops = join_all(stops.into_values());
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
    let (_, removed) = futures_util::future::join(stops, removes).await;
    if let Some(e) = first_err.into_inner() {
        return Err(e);
    }
    removed
}

/// The services of `services` that depend on `name`.
fn dependents<'s>(
    project: Option<&'s Project>,
    name: &'s str,
    services: &'s [String],
) -> impl Iterator<Item = &'s String> + 's {
    services.iter().filter(move |t| {
        project
            .and_then(|p| p.services.get(*t))
            .is_some_and(|s| s.depends_on.contains_key(name))
    })
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
