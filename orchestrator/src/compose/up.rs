//! `up` and `create`: converge the engine towards the project. Services start as soon as their
//! own dependencies are satisfied (no global ordering lock); each container is kept, created or
//! recreated by its config hash and image, as docker compose v2 decides (convergence.go).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use berth_client::Client;
use bollard_stubs::models::MountPoint;
use compose_spec::hash::service_hash;
use compose_spec::model::{DependencyCondition, Project, Service};
use futures_util::future::{FutureExt, LocalBoxFuture, Shared, join_all};
use serde_json::Value;

use super::containers::{self, ProjectContainer, Select};
use super::convert::{self, ContainerSpec};
use super::error::{ComposeError, Context, Result};
use super::images::{self, BuildOverride, PullOverride};
use super::progress::{Kind, Progress};
use super::resources;

/// When existing containers are replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Recreate {
    /// When the config hash or the image changed.
    #[default]
    Diverged,
    /// Always (`--force-recreate`).
    Force,
    /// Never (`--no-recreate`).
    Never,
}

/// Options of `up` and `create`.
#[derive(Clone, Debug, Default)]
pub struct UpOptions {
    /// Services named on the command line (all when empty).
    pub services: Vec<String>,
    /// Leave dependencies alone (`--no-deps`).
    pub no_deps: bool,
    /// `--force-recreate` / `--no-recreate`.
    pub recreate: Recreate,
    /// `--pull`.
    pub pull: PullOverride,
    /// `--build` / `--no-build`.
    pub build: BuildOverride,
    /// `--scale SERVICE=N`.
    pub scale: HashMap<String, u32>,
    /// `--remove-orphans`.
    pub remove_orphans: bool,
    /// Start the containers (false for `create`).
    pub start: bool,
    /// `--wait`: return once every service is running or healthy.
    pub wait: bool,
    /// `--wait-timeout`.
    pub wait_timeout: Option<Duration>,
    /// `--timeout` for stopping containers that are replaced.
    pub timeout: Option<i64>,
    /// `--parallel`: at most this many engine operations at once (unlimited when `None`).
    pub parallel: Option<usize>,
}

/// The services an operation on `names` touches: those named plus, unless `no_deps`, every
/// service they depend on, in the project's order. Empty `names` means all.
pub fn selection(project: &Project, names: &[String], no_deps: bool) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    let mut want: HashSet<String> = HashSet::new();
    let mut stack: Vec<String> = Vec::new();
    for n in names {
        if !project.services.contains_key(n) {
            return Err(ComposeError::Invalid(format!("no such service: {n}")));
        }
        stack.push(n.clone());
    }
    while let Some(n) = stack.pop() {
        if !want.insert(n.clone()) || no_deps {
            continue;
        }
        if let Some(s) = project.services.get(&n) {
            for d in s.depends_on.keys() {
                if project.services.contains_key(d) {
                    stack.push(d.clone());
                }
            }
        }
    }
    Ok(project
        .services
        .keys()
        .filter(|k| want.contains(*k))
        .cloned()
        .collect())
}

/// How many containers a service should have.
pub fn desired_scale(s: &Service, overrides: &HashMap<String, u32>) -> u32 {
    if let Some(n) = overrides.get(&s.name) {
        return *n;
    }
    let n = s
        .scale
        .or_else(|| s.deploy.as_ref().and_then(|d| d.replicas))
        .unwrap_or(1);
    u32::try_from(n.max(0)).unwrap_or(1)
}

/// The name of container `number` of a service.
pub fn container_name(project: &Project, s: &Service, number: u32) -> String {
    match &s.container_name {
        Some(n) => n.clone(),
        None => format!("{}-{}-{number}", project.name, s.name),
    }
}

/// The stop timeout of a service in seconds (`stop_grace_period`), unless overridden.
pub fn stop_timeout(s: &Service, flag: Option<i64>) -> Option<i64> {
    flag.or_else(|| {
        s.stop_grace_period
            .as_ref()
            .map(|d| (d.0 / 1_000_000_000).max(0))
    })
}

type ServiceFuture<'a> = Shared<LocalBoxFuture<'a, std::result::Result<(), String>>>;

/// One `depends_on` entry of a service being converged.
struct Dep<'a> {
    name: String,
    condition: DependencyCondition,
    required: bool,
    restart: bool,
    done: ServiceFuture<'a>,
}

/// Shared state of one `up`.
struct Run<'a> {
    client: &'a Client,
    project: &'a Project,
    opts: &'a UpOptions,
    progress: &'a Progress,
    selected: Vec<String>,
    image_ids: HashMap<String, String>,
    existing: Vec<ProjectContainer>,
    /// A container ID of each converged service (for `service:x` references).
    refs: RefCell<HashMap<String, String>>,
    /// Bounds concurrent creates and starts (`--parallel`).
    limit: Option<tokio::sync::Semaphore>,
    /// Services some of whose containers were replaced (for `depends_on.restart`).
    recreated: RefCell<HashSet<String>>,
    /// Root causes, in the order they happened.
    errors: RefCell<Vec<String>>,
}

/// Runs `up` (or `create` when `opts.start` is false).
pub async fn up(
    client: &Client,
    project: &Project,
    opts: &UpOptions,
    progress: &Progress,
) -> Result<()> {
    let selected = selection(project, &opts.services, opts.no_deps)?;
    for s in &selected {
        if let Some(svc) = project.services.get(s)
            && svc.container_name.is_some()
            && desired_scale(svc, &opts.scale) > 1
        {
            return Err(ComposeError::Invalid(format!(
                "services.{s}: container_name \"{}\" cannot be used with more than one container",
                svc.container_name.as_deref().unwrap_or("")
            )));
        }
    }
    let image_ids =
        images::ensure(client, project, &selected, opts.pull, opts.build, progress).await?;
    let nets = resources::used_networks(project, &selected);
    resources::ensure_networks(client, project, &nets, progress).await?;
    resources::ensure_volumes(client, project, progress).await?;
    let existing = containers::list(
        client,
        &project.name,
        Select {
            all: true,
            oneoff: false,
        },
    )
    .await?;
    orphans(client, project, &existing, opts, progress).await?;
    let run = Run {
        client,
        project,
        opts,
        progress,
        selected,
        image_ids,
        existing,
        refs: RefCell::default(),
        recreated: RefCell::default(),
        limit: opts
            .parallel
            .filter(|n| *n > 0)
            .map(tokio::sync::Semaphore::new),
        errors: RefCell::default(),
    };
    let mut futures: HashMap<String, ServiceFuture> = HashMap::new();
    // Dependencies first, so a service's future can hold clones of theirs.
    for name in topological(project, &run.selected) {
        let deps: Vec<Dep> = project
            .services
            .get(&name)
            .map(|s| {
                s.depends_on
                    .iter()
                    .filter_map(|(d, dep)| {
                        futures.get(d).map(|f| Dep {
                            name: d.clone(),
                            condition: dep.condition,
                            required: dep.required,
                            restart: dep.restart,
                            done: f.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fut = service_task(&run, name.clone(), deps)
            .boxed_local()
            .shared();
        futures.insert(name, fut);
    }
    join_all(futures.into_values()).await;
    let errors = run.errors.into_inner();
    if let Some(first) = errors.into_iter().next() {
        return Err(ComposeError::Dependency(first));
    }
    if opts.wait && opts.start {
        wait_ready(client, project, &run.selected, opts.wait_timeout, progress).await?;
    }
    Ok(())
}

/// The selected services ordered so that each comes after its dependencies.
fn topological(project: &Project, selected: &[String]) -> Vec<String> {
    let set: HashSet<&String> = selected.iter().collect();
    let mut done: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    fn visit(
        p: &Project,
        n: &str,
        set: &HashSet<&String>,
        done: &mut HashSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if done.contains(n) || depth > p.services.len() {
            return;
        }
        if let Some(s) = p.services.get(n) {
            for d in s.depends_on.keys() {
                if set.contains(d) {
                    visit(p, d, set, done, out, depth + 1);
                }
            }
        }
        if done.insert(n.to_string()) {
            out.push(n.to_string());
        }
    }
    for n in selected {
        visit(project, n, &set, &mut done, &mut out, 0);
    }
    out
}

/// Whether a service's containers can be created before its dependencies are up: it is new
/// (no containers yet) and its create body names no other service's container (`links`,
/// `volumes_from`, `service:` namespaces take a dependency's container ID).
fn can_create_early(run: &Run<'_>, name: &str) -> bool {
    let Some(s) = run.project.services.get(name) else {
        return false;
    };
    let shares = |m: &Option<String>| m.as_deref().is_some_and(|m| m.starts_with("service:"));
    run.opts.start
        && !run.existing.iter().any(|c| c.service == name)
        && s.links.is_empty()
        && s.volumes_from.is_empty()
        && !shares(&s.network_mode)
        && !shares(&s.ipc)
        && !shares(&s.pid)
}

/// Creates the containers of a new service (number to ID), while its dependencies come up:
/// a chain then costs one start a link rather than a create and a start.
async fn create_early(run: &Run<'_>, name: &str) -> Result<HashMap<u32, String>> {
    let Some(s) = run.project.services.get(name) else {
        return Ok(HashMap::new());
    };
    let hash = service_hash(s)
        .map_err(|e| ComposeError::Invalid(format!("service \"{name}\": hashing: {e}")))?;
    let image_id = run.image_ids.get(name).cloned();
    let tasks = (1..=desired_scale(s, &run.opts.scale)).map(|number| {
        let (hash, image_id) = (&hash, image_id.as_deref());
        async move {
            let cname = container_name(run.project, s, number);
            run.progress.event(Kind::Container, &cname, "Creating");
            let id = create_container(run, s, number, hash, image_id, None).await?;
            run.progress.event(Kind::Container, &cname, "Created");
            Ok::<_, ComposeError>((number, id))
        }
    });
    join_all(tasks).await.into_iter().collect()
}

async fn service_task(
    run: &Run<'_>,
    name: String,
    deps: Vec<Dep<'_>>,
) -> std::result::Result<(), String> {
    let early = async {
        if can_create_early(run, &name) {
            Some(create_early(run, &name).await)
        } else {
            None
        }
    };
    let (waited, early) = futures_util::future::join(wait_deps(run, &name, deps), early).await;
    let restart_due = match waited {
        Ok(r) => r,
        Err(e) => {
            // As if the dependency had been waited for first: nothing of this service remains.
            if let Some(Ok(made)) = &early {
                for id in made.values() {
                    let _ = run.client.container_remove(id, true, true).await;
                }
            }
            return Err(e);
        }
    };
    let created = match early {
        Some(Err(e)) => {
            let msg = e.to_string();
            run.errors.borrow_mut().push(msg.clone());
            return Err(msg);
        }
        Some(Ok(m)) => m,
        None => HashMap::new(),
    };
    match converge(run, &name, restart_due, &created).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            run.errors.borrow_mut().push(msg.clone());
            Err(msg)
        }
    }
}

/// Waits for a service's dependencies and their conditions; true when one of them with
/// `restart: true` was recreated.
async fn wait_deps(
    run: &Run<'_>,
    name: &str,
    deps: Vec<Dep<'_>>,
) -> std::result::Result<bool, String> {
    let mut restart_due = false;
    for d in deps {
        let (dep, cond, required, fut) = (d.name, d.condition, d.required, d.done);
        // `fresh`: the dependency came up but missed its condition; its own failures are
        // already recorded.
        let res = match fut.await {
            Ok(()) if run.opts.start => wait_condition(run, &dep, &cond)
                .await
                .map_err(|e| (e, true)),
            Ok(()) => Ok(()),
            Err(e) => Err((e, false)),
        };
        if let Err((e, fresh)) = res {
            if required {
                let msg = if fresh {
                    format!("dependency failed to start: {e}")
                } else {
                    e
                };
                if fresh {
                    run.errors.borrow_mut().push(msg.clone());
                }
                return Err(msg);
            }
            run.progress.warn(&format!(
                "optional dependency \"{dep}\" of service \"{name}\" failed: {e}"
            ));
        }
        restart_due |= d.restart && run.recreated.borrow().contains(&dep);
    }
    Ok(restart_due)
}

/// What the waits look at in `State` of a container's inspect.
struct State {
    status: String,
    health: Option<String>,
    code: i64,
}

async fn state_of(client: &Client, id: &str) -> berth_client::Result<State> {
    let v = client.container_inspect(id, false).await?;
    let st = v.get("State").cloned().unwrap_or(Value::Null);
    Ok(State {
        status: st
            .get("Status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        health: st
            .pointer("/Health/Status")
            .and_then(Value::as_str)
            .map(str::to_string),
        code: st.get("ExitCode").and_then(Value::as_i64).unwrap_or(0),
    })
}

/// Waits until a dependency satisfies its condition.
async fn wait_condition(
    run: &Run<'_>,
    dep: &str,
    cond: &DependencyCondition,
) -> std::result::Result<(), String> {
    if *cond == DependencyCondition::ServiceStarted {
        return Ok(());
    }
    let list = containers::list(
        run.client,
        &run.project.name,
        Select {
            all: true,
            oneoff: false,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let mine: Vec<&ProjectContainer> = list.iter().filter(|c| c.service == dep).collect();
    for c in &mine {
        run.progress.event(Kind::Container, &c.name, "Waiting");
    }
    for c in mine {
        loop {
            let st = state_of(run.client, &c.id)
                .await
                .map_err(|e| format!("inspecting container {}: {e}", c.name))?;
            let (status, code) = (st.status.as_str(), st.code);
            match cond {
                DependencyCondition::ServiceHealthy => match st.health.as_deref() {
                    Some("healthy") => {
                        run.progress.event(Kind::Container, &c.name, "Healthy");
                        break;
                    }
                    Some("unhealthy") => {
                        run.progress.event(Kind::Container, &c.name, "Error");
                        return Err(format!("container {} is unhealthy", c.name));
                    }
                    None => {
                        return Err(format!(
                            "container {} has no healthcheck configured",
                            c.name
                        ));
                    }
                    _ if status == "exited" || status == "dead" => {
                        run.progress.event(Kind::Container, &c.name, "Error");
                        return Err(format!("container {} exited ({code})", c.name));
                    }
                    _ => {}
                },
                DependencyCondition::ServiceCompletedSuccessfully => {
                    if status == "exited" || status == "dead" {
                        if code == 0 {
                            run.progress.event(Kind::Container, &c.name, "Exited");
                            break;
                        }
                        run.progress.event(Kind::Container, &c.name, "Error");
                        return Err(format!(
                            "service \"{dep}\" didn't complete successfully: exit {code}"
                        ));
                    }
                }
                DependencyCondition::ServiceStarted => break,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Brings one service to its desired containers.
async fn converge(
    run: &Run<'_>,
    name: &str,
    restart_due: bool,
    created: &HashMap<u32, String>,
) -> Result<()> {
    let Some(s) = run.project.services.get(name) else {
        return Ok(());
    };
    let client = run.client;
    let hash = service_hash(s)
        .map_err(|e| ComposeError::Invalid(format!("service \"{name}\": hashing: {e}")))?;
    let image_id = run.image_ids.get(name).cloned();
    let want = desired_scale(s, &run.opts.scale);
    let mut mine: Vec<&ProjectContainer> =
        run.existing.iter().filter(|c| c.service == name).collect();
    mine.sort_by_key(|c| c.number);
    // Scale down: the highest numbers go first, as compose does.
    let mut keep: Vec<&ProjectContainer> = Vec::new();
    for c in &mine {
        if c.number >= 1 && c.number <= want && !keep.iter().any(|k| k.number == c.number) {
            keep.push(c);
        } else {
            remove_container(run, s, c).await?;
        }
    }
    let mut tasks = Vec::new();
    for number in 1..=want {
        let current = keep.iter().find(|c| c.number == number).copied();
        let hash = hash.clone();
        let image_id = image_id.clone();
        tasks.push(async move {
            let diverged = current.is_some_and(|c| {
                c.config_hash != hash
                    || image_id
                        .as_deref()
                        .is_some_and(|id| !c.image_id.is_empty() && c.image_id != id)
            });
            let recreate = match run.opts.recreate {
                Recreate::Force => current.is_some(),
                Recreate::Never => false,
                Recreate::Diverged => diverged,
            };
            let id = match current {
                Some(c) if !recreate => {
                    if run.opts.start && !c.is_running() {
                        start_container(run, &c.id, &c.name).await?;
                    } else if run.opts.start && restart_due {
                        // `depends_on: {x: {restart: true}}` and x was just replaced.
                        run.progress.event(Kind::Container, &c.name, "Restarting");
                        client
                            .container_restart(&c.id, stop_timeout(s, run.opts.timeout), None)
                            .await
                            .ctx(|| format!("restarting container {}", c.name))?;
                        run.progress.event(Kind::Container, &c.name, "Restarted");
                    } else if run.opts.start {
                        run.progress.event(Kind::Container, &c.name, "Running");
                    }
                    c.id.clone()
                }
                Some(c) => {
                    run.recreated.borrow_mut().insert(name.to_string());
                    run.progress.event(Kind::Container, &c.name, "Recreate");
                    let t = stop_timeout(s, run.opts.timeout);
                    client
                        .container_stop(&c.id, t, s.stop_signal.as_deref())
                        .await
                        .ctx(|| format!("stopping container {}", c.name))?;
                    client
                        .container_remove(&c.id, true, false)
                        .await
                        .ctx(|| format!("removing container {}", c.name))?;
                    let id = create_container(run, s, number, &hash, image_id.as_deref(), Some(c))
                        .await?;
                    let cname = container_name(run.project, s, number);
                    run.progress.event(Kind::Container, &cname, "Recreated");
                    if run.opts.start {
                        start_container(run, &id, &cname).await?;
                    }
                    id
                }
                None => {
                    let cname = container_name(run.project, s, number);
                    let id = match created.get(&number) {
                        Some(id) => id.clone(),
                        None => {
                            run.progress.event(Kind::Container, &cname, "Creating");
                            let id =
                                create_container(run, s, number, &hash, image_id.as_deref(), None)
                                    .await?;
                            run.progress.event(Kind::Container, &cname, "Created");
                            id
                        }
                    };
                    if run.opts.start {
                        start_container(run, &id, &cname).await?;
                    }
                    id
                }
            };
            Ok::<_, ComposeError>((number, id))
        });
    }
    let mut ids: Vec<(u32, String)> = join_all(tasks)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    ids.sort();
    if let Some((_, id)) = ids.first() {
        run.refs.borrow_mut().insert(name.to_string(), id.clone());
    }
    Ok(())
}

async fn create_container(
    run: &Run<'_>,
    s: &Service,
    number: u32,
    hash: &str,
    image_id: Option<&str>,
    replaces: Option<&ProjectContainer>,
) -> Result<String> {
    let _permit = match &run.limit {
        Some(l) => l.acquire().await.ok(),
        None => None,
    };
    let name = container_name(run.project, s, number);
    let refs = run.refs.borrow().clone();
    let spec = ContainerSpec {
        project: run.project,
        service: s,
        name: &name,
        number,
        oneoff: false,
        config_hash: hash,
        image_id,
        service_containers: &refs,
    };
    let mut plan = convert::container_create(&spec)?;
    if plan.body.image.is_none() {
        plan.body.image = Some(images::image_name(run.project, s));
    }
    if let Some(old) = replaces {
        // The replacement keeps the anonymous volumes (and the image's) of the old one.
        let mounts: Vec<MountPoint> = old
            .raw
            .get("Mounts")
            .cloned()
            .and_then(|m| serde_json::from_value(m).ok())
            .unwrap_or_default();
        let image_volumes = match image_id {
            Some(id) => run
                .client
                .image_inspect(id)
                .await
                .ok()
                .and_then(|v| v.pointer("/Config/Volumes").cloned())
                .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        convert::inherit_volumes(s, &mut plan, &mounts, &image_volumes);
    }
    let id = create_planned(run.client, &name, &s.name, plan).await?;
    Ok(id)
}

/// Creates a planned container, copies in the files compose copies (secrets and configs from
/// `environment:` or `content:`) and connects its further networks; returns its ID.
pub(super) async fn create_planned(
    client: &Client,
    name: &str,
    service: &str,
    plan: convert::CreatePlan,
) -> Result<String> {
    let created = client
        .container_create(Some(name), plan.platform.as_deref(), &plan.body)
        .await
        .ctx(|| format!("creating container {name} for service \"{service}\""))?;
    for copy in &plan.copies {
        let tar = copy.archive().map_err(|e| {
            ComposeError::Invalid(format!("service \"{service}\": {}: {e}", copy.target))
        })?;
        client
            .archive_put(&created.id, "/", Client::body_of(tar), copy.copy_uid_gid())
            .await
            .ctx(|| format!("copying {} into container {name}", copy.target))?;
    }
    for (net, ep) in plan.extra_networks {
        let req = bollard_stubs::models::NetworkConnectRequest {
            container: created.id.clone(),
            endpoint_config: Some(ep),
        };
        client
            .network_connect(&net, &req)
            .await
            .ctx(|| format!("connecting container {name} to network {net}"))?;
    }
    Ok(created.id)
}

async fn start_container(run: &Run<'_>, id: &str, name: &str) -> Result<()> {
    let _permit = match &run.limit {
        Some(l) => l.acquire().await.ok(),
        None => None,
    };
    run.progress.event(Kind::Container, name, "Starting");
    if let Err(e) = run.client.container_start(id).await {
        run.progress.event(Kind::Container, name, "Error");
        return Err(e).ctx(|| format!("starting container {name}"));
    }
    run.progress.event(Kind::Container, name, "Started");
    Ok(())
}

async fn remove_container(run: &Run<'_>, s: &Service, c: &ProjectContainer) -> Result<()> {
    let client = run.client;
    if c.is_running() {
        run.progress.event(Kind::Container, &c.name, "Stopping");
        client
            .container_stop(
                &c.id,
                stop_timeout(s, run.opts.timeout),
                s.stop_signal.as_deref(),
            )
            .await
            .ctx(|| format!("stopping container {}", c.name))?;
        run.progress.event(Kind::Container, &c.name, "Stopped");
    }
    run.progress.event(Kind::Container, &c.name, "Removing");
    client
        .container_remove(&c.id, true, false)
        .await
        .ctx(|| format!("removing container {}", c.name))?;
    run.progress.event(Kind::Container, &c.name, "Removed");
    Ok(())
}

/// Containers of services the project no longer has: a warning, or removed with
/// `--remove-orphans`.
async fn orphans(
    client: &Client,
    project: &Project,
    existing: &[ProjectContainer],
    opts: &UpOptions,
    progress: &Progress,
) -> Result<()> {
    let orphans: Vec<&ProjectContainer> = existing
        .iter()
        .filter(|c| {
            !project.services.contains_key(&c.service)
                && !project.disabled_services.contains_key(&c.service)
        })
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !opts.remove_orphans {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        progress.warn(&format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        ));
        return Ok(());
    }
    for c in orphans {
        progress.event(Kind::Container, &c.name, "Removing");
        client
            .container_remove(&c.id, true, false)
            .await
            .ctx(|| format!("removing orphan container {}", c.name))?;
        progress.event(Kind::Container, &c.name, "Removed");
    }
    Ok(())
}

/// `--wait`: every container of the services running, and healthy where it has a healthcheck.
async fn wait_ready(
    client: &Client,
    project: &Project,
    services: &[String],
    timeout: Option<Duration>,
    progress: &Progress,
) -> Result<()> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let list = containers::list(
        client,
        &project.name,
        Select {
            all: true,
            oneoff: false,
        },
    )
    .await?;
    for c in list.iter().filter(|c| services.contains(&c.service)) {
        progress.event(Kind::Container, &c.name, "Waiting");
        loop {
            let st = state_of(client, &c.id)
                .await
                .ctx(|| format!("inspecting container {}", c.name))?;
            let health = st.health.as_deref();
            match (st.status.as_str(), health) {
                ("running", None | Some("healthy")) => {
                    progress.event(
                        Kind::Container,
                        &c.name,
                        if health.is_some() {
                            "Healthy"
                        } else {
                            "Running"
                        },
                    );
                    break;
                }
                (_, Some("unhealthy")) => {
                    return Err(ComposeError::Dependency(format!(
                        "container {} is unhealthy",
                        c.name
                    )));
                }
                ("exited" | "dead", _) => {
                    let code = st.code;
                    if code == 0 {
                        progress.event(Kind::Container, &c.name, "Exited");
                        break;
                    }
                    return Err(ComposeError::Dependency(format!(
                        "container {} exited ({code})",
                        c.name
                    )));
                }
                _ => {}
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(ComposeError::Dependency(format!(
                    "timeout waiting for container {} to be ready",
                    c.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
