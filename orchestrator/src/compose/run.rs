//! `run`: a one-off container of a service, with the command line's overrides, named
//! `<project>-<service>-run-<slug>` and labelled `oneoff=True` as compose v2 does.

use std::collections::HashMap;

use berth_client::Client;
use compose_spec::hash::service_hash;
use compose_spec::model::{Project, parse_port, parse_volume};

use super::convert::{self, ContainerSpec};
use super::error::{ComposeError, Result};
use super::images;
use super::labels;
use super::progress::Progress;
use super::resources;
use super::up::{self, UpOptions};

/// Options of `run`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The service.
    pub service: String,
    /// The command (replaces the service's when given).
    pub command: Vec<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// `-e KEY[=VALUE]`.
    pub env: Vec<String>,
    /// `-l KEY=VALUE`.
    pub labels: Vec<String>,
    /// `-v` short syntax.
    pub volumes: Vec<String>,
    /// `-p` short syntax.
    pub publish: Vec<String>,
    /// `--service-ports`: keep the service's published ports.
    pub service_ports: bool,
    /// `--use-aliases`: the service's network aliases on the one-off container too.
    pub use_aliases: bool,
    /// `--name`.
    pub name: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open.
    pub interactive: bool,
    /// `--no-deps`.
    pub no_deps: bool,
    /// `--rm` (recorded as AutoRemove only when detached; attached runs remove themselves).
    pub auto_remove: bool,
}

/// A created one-off container.
pub struct OneOff {
    /// Its ID.
    pub id: String,
    /// Its name.
    pub name: String,
}

fn slug() -> String {
    let mut b = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Starts the service's dependencies (unless `--no-deps`), then creates the one-off container.
pub async fn create(
    client: &Client,
    project: &Project,
    o: &RunOptions,
    progress: &Progress,
) -> Result<OneOff> {
    let Some(base) = project.services.get(&o.service) else {
        return Err(ComposeError::Invalid(format!(
            "no such service: {}",
            o.service
        )));
    };
    let deps: Vec<String> = base.depends_on.keys().cloned().collect();
    if !o.no_deps && !deps.is_empty() {
        let opts = UpOptions {
            services: deps,
            start: true,
            ..UpOptions::default()
        };
        up::up(client, project, &opts, progress).await?;
    }
    let image_ids = images::ensure(
        client,
        project,
        std::slice::from_ref(&o.service),
        images::PullOverride::Policy,
        images::BuildOverride::Policy,
        progress,
    )
    .await?;
    let nets = resources::used_networks(project, std::slice::from_ref(&o.service));
    resources::ensure_networks(client, project, &nets, progress).await?;
    resources::ensure_volumes(client, project, progress).await?;

    let mut s = base.clone();
    if !o.command.is_empty() {
        s.command = Some(o.command.clone());
    }
    if let Some(ep) = &o.entrypoint {
        s.entrypoint = Some(
            compose_spec::model::split_shell(ep)
                .map_err(|e| ComposeError::Invalid(format!("invalid --entrypoint {ep:?}: {e}")))?,
        );
    }
    for kv in &o.env {
        match kv.split_once('=') {
            Some((k, v)) => s.environment.insert(k.to_string(), Some(v.to_string())),
            None => s.environment.insert(kv.clone(), std::env::var(kv).ok()),
        };
    }
    for kv in &o.labels {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        s.labels.insert(k.to_string(), v.to_string());
    }
    if !o.service_ports {
        s.ports.clear();
    }
    for p in &o.publish {
        let ports =
            parse_port(p).map_err(|e| ComposeError::Invalid(format!("invalid -p {p:?}: {e}")))?;
        s.ports.extend(ports);
    }
    for v in &o.volumes {
        let vol =
            parse_volume(v).map_err(|e| ComposeError::Invalid(format!("invalid -v {v:?}: {e}")))?;
        s.volumes.push(vol);
    }
    if o.user.is_some() {
        s.user = o.user.clone();
    }
    if o.workdir.is_some() {
        s.working_dir = o.workdir.clone();
    }
    s.tty = o.tty;
    s.stdin_open = o.interactive;
    // A one-off container never restarts by itself, and has no healthcheck gate.
    s.restart = None;
    if !o.use_aliases {
        for n in s.networks.values_mut().flatten() {
            n.aliases.clear();
        }
    }
    let hash = service_hash(&s)
        .map_err(|e| ComposeError::Invalid(format!("service \"{}\": hashing: {e}", s.name)))?;
    let slug = slug();
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-run-{slug}", project.name, s.name));
    let refs: HashMap<String, String> = HashMap::new();
    let spec = ContainerSpec {
        project,
        service: &s,
        name: &name,
        number: 1,
        oneoff: true,
        config_hash: &hash,
        image_id: image_ids.get(&o.service).map(String::as_str),
        service_containers: &refs,
    };
    let mut plan = convert::container_create(&spec)?;
    if plan.body.image.is_none() {
        plan.body.image = Some(images::image_name(project, &s));
    }
    if let Some(l) = plan.body.labels.as_mut() {
        l.insert(labels::SLUG.into(), slug);
    }
    plan.body.attach_stdin = Some(o.interactive);
    plan.body.attach_stdout = Some(true);
    plan.body.attach_stderr = Some(true);
    plan.body.open_stdin = Some(o.interactive);
    plan.body.stdin_once = Some(o.interactive);
    plan.body.tty = Some(o.tty);
    if let Some(h) = plan.body.host_config.as_mut() {
        h.auto_remove = Some(o.auto_remove);
        h.restart_policy = None;
    }
    if !o.use_aliases
        && let Some(eps) = plan
            .body
            .networking_config
            .as_mut()
            .and_then(|n| n.endpoints_config.as_mut())
    {
        for ep in eps.values_mut() {
            ep.aliases = None;
        }
    }
    if !o.use_aliases {
        for (_, ep) in plan.extra_networks.iter_mut() {
            ep.aliases = None;
        }
    }
    let id = up::create_planned(client, &name, &s.name, plan).await?;
    Ok(OneOff { id, name })
}
