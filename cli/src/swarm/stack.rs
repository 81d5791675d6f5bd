//! `berth stack deploy|ls|ps|rm|services`: Compose files as swarm services.

use super::service::{LsArgs, progress, spec_of};
use super::tasks::{PsArgs, print_tasks};
use super::util::{s, version};
use crate::engine::format::{Row, print_rows};
use anyhow::{Context, Result, bail};
use berth_client::Client;
use berth_orchestrator::stack::{LABEL_NAMESPACE, StackPlan, convert};
use berth_orchestrator::swarm::secrets::DataKind;
use clap::{Args, Subcommand};
use compose_spec::loader::{LoadOptions, load_project};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `stack` subcommands.
#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Deploy a new stack or update an existing stack.
    ///
    /// Unlike Docker, the first deploy honours `depends_on`: services are created level by
    /// level in dependency order, and each level waits until the services it depends on have
    /// all their tasks running. Later deploys update existing services in place.
    #[command(alias = "up")]
    Deploy(DeployArgs),
    /// List stacks.
    #[command(alias = "list")]
    Ls(StackLsArgs),
    /// List the tasks in the stack.
    Ps(StackPsArgs),
    /// Remove one or more stacks.
    #[command(aliases = ["remove", "down"])]
    Rm(RmArgs),
    /// List the services in the stack.
    Services(ServicesArgs),
}

/// `stack deploy` flags.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Path to a Compose file, or "-" to read from stdin.
    #[arg(short = 'c', long = "compose-file", required = true)]
    files: Vec<PathBuf>,
    /// Prune services that are no longer referenced.
    #[arg(long)]
    prune: bool,
    /// Query the registry to resolve image digest and supported platforms ("always",
    /// "changed", "never"); Berth never rewrites the image.
    #[arg(long = "resolve-image", default_value = "always")]
    resolve_image: String,
    /// Send registry authentication details to Swarm agents.
    #[arg(long = "with-registry-auth")]
    with_registry_auth: bool,
    /// Exit immediately instead of waiting for the stack services to converge.
    #[arg(short, long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    detach: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    quiet: bool,
    /// STACK
    name: String,
}

/// `stack ls` flags.
#[derive(Debug, Args)]
pub struct StackLsArgs {
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
}

/// `stack ps` flags.
#[derive(Debug, Args)]
pub struct StackPsArgs {
    #[command(flatten)]
    ps: PsArgs,
    /// STACK
    name: String,
}

/// `stack rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not wait for stack removal.
    #[arg(short, long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    detach: bool,
    /// STACK
    #[arg(required = true)]
    names: Vec<String>,
}

/// `stack services` flags.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    ls: LsArgs,
    /// STACK
    name: String,
}

/// Runs a `stack` subcommand.
pub async fn run(c: &Client, cmd: StackCommand) -> Result<()> {
    match cmd {
        StackCommand::Deploy(a) => deploy(c, a).await,
        StackCommand::Ls(a) => ls(c, a).await,
        StackCommand::Ps(a) => {
            let services = stack_services(c, &a.name).await?;
            if services.is_empty() {
                bail!("nothing found in stack: {}", a.name);
            }
            let extra: Vec<(&str, String)> =
                services.iter().map(|v| ("service", s(v, "/ID"))).collect();
            print_tasks(c, &a.ps, &extra).await
        }
        StackCommand::Rm(a) => rm(c, a).await,
        StackCommand::Services(a) => {
            if stack_services(c, &a.name).await?.is_empty() {
                eprintln!("Nothing found in stack: {}", a.name);
                return Ok(());
            }
            let label = format!("{LABEL_NAMESPACE}={}", a.name);
            super::service::ls(c, &a.ls, &[("label", label)]).await
        }
    }
}

fn namespace_filter(name: &str) -> String {
    serde_json::json!({"label": {format!("{LABEL_NAMESPACE}={name}"): true}}).to_string()
}

async fn stack_services(c: &Client, name: &str) -> Result<Vec<Value>> {
    let mut v = c.services(Some(&namespace_filter(name))).await?;
    v.sort_by_key(|x| s(x, "/Spec/Name"));
    Ok(v)
}

async fn stack_networks(c: &Client, name: &str) -> Result<Vec<Value>> {
    let mut v = c.networks(Some(&namespace_filter(name))).await?;
    v.sort_by_key(|x| s(x, "/Name"));
    Ok(v)
}

/// Loads and converts the stack files; any error here means nothing is deployed.
fn plan(a: &DeployArgs) -> Result<StackPlan> {
    let stdin = if a.files.iter().any(|f| f.as_os_str() == "-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("reading the Compose file from standard input")?;
        Some(s)
    } else {
        None
    };
    let opts = LoadOptions {
        config_files: a.files.clone(),
        stdin,
        project_name: Some(a.name.clone()),
        os_env: std::env::vars().collect(),
        ..LoadOptions::default()
    };
    let loaded = load_project(&opts)?;
    for w in &loaded.warnings {
        eprintln!("WARN[0000] {w}");
    }
    Ok(convert(&a.name, &loaded.project)?)
}

/// Creates the stack's secrets or configs, or updates the labels of those that exist (the
/// manager refuses changed data, as Docker's does).
async fn deploy_data(
    c: &Client,
    kind: DataKind,
    objects: &[berth_orchestrator::stack::StackData],
) -> Result<()> {
    use base64::Engine as _;
    let (path, noun) = (kind.api_path(), kind.noun());
    for o in objects {
        let mut spec = serde_json::json!({
            "Name": o.name,
            "Labels": o.labels,
            "Data": base64::engine::general_purpose::STANDARD.encode(&o.data),
        });
        if let Some(d) = &o.template_driver {
            spec["Templating"] = serde_json::json!({ "Name": d });
        }
        // An inspect by name can also match an ID prefix: only the same name is ours.
        let current = match c.swarm_data_inspect(path, &o.name).await {
            Ok(cur) => (s(&cur, "/Spec/Name") == o.name).then_some(cur),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        match current {
            Some(cur) => {
                println!("Updating {noun} {}", o.name);
                c.swarm_data_update(path, &s(&cur, "/ID"), version(&cur), &spec)
                    .await
                    .with_context(|| format!("failed to update {noun} {}", o.name))?;
            }
            None => {
                println!("Creating {noun} {}", o.name);
                c.swarm_data_create(path, &spec)
                    .await
                    .with_context(|| format!("failed to create {noun} {}", o.name))?;
            }
        }
    }
    Ok(())
}

async fn deploy(c: &Client, a: DeployArgs) -> Result<()> {
    if !matches!(a.resolve_image.as_str(), "always" | "changed" | "never") {
        bail!(
            "Invalid option {} for flag --resolve-image",
            a.resolve_image
        );
    }
    let _ = a.with_registry_auth;
    let plan = plan(&a)?;
    let info = c.info().await?;
    if info.pointer("/Swarm/ControlAvailable") != Some(&Value::Bool(true)) {
        bail!(
            "this node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again"
        );
    }
    // Externals must exist before anything is created.
    for ext in &plan.external_networks {
        match c.network_inspect(ext).await {
            Ok(n) if s(&n, "/Scope") == "swarm" => {}
            Ok(_) => bail!(
                "network {ext:?} is declared as external, but it is not in the right scope: \"local\" instead of \"swarm\""
            ),
            Err(e) if e.is_not_found() => bail!(
                "network {ext:?} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    let existing_nets: Vec<String> = stack_networks(c, &a.name)
        .await?
        .iter()
        .map(|n| s(n, "/Name"))
        .collect();
    for n in &plan.networks {
        if !existing_nets.contains(&n.create.name) {
            println!("Creating network {}", n.create.name);
            c.network_create(&n.create)
                .await
                .with_context(|| format!("failed to create network {}", n.create.name))?;
        }
    }
    for (kind, objects) in [
        (DataKind::Secret, &plan.secrets),
        (DataKind::Config, &plan.configs),
    ] {
        deploy_data(c, kind, objects).await?;
    }
    let existing: HashMap<String, Value> = stack_services(c, &a.name)
        .await?
        .into_iter()
        .map(|v| (s(&v, "/Spec/Name"), v))
        .collect();
    if a.prune {
        let wanted: Vec<&str> = plan
            .services
            .iter()
            .filter_map(|s| s.spec.name.as_deref())
            .collect();
        let mut stale: Vec<&String> = existing
            .keys()
            .filter(|k| !wanted.contains(&k.as_str()))
            .collect();
        stale.sort();
        for name in stale {
            println!("Removing service {name}");
            c.service_remove(name).await?;
        }
    }
    let by_short: BTreeMap<&str, _> = plan
        .services
        .iter()
        .map(|s| (s.short_name.as_str(), s))
        .collect();
    let mut created_ids = Vec::new();
    for (i, level) in plan.levels.iter().enumerate() {
        let mut created_here = Vec::new();
        for short in level {
            let Some(svc) = by_short.get(short.as_str()) else {
                continue;
            };
            let name = svc.spec.name.clone().unwrap_or_default();
            match existing.get(&name) {
                Some(cur) => {
                    let id = s(cur, "/ID");
                    println!("Updating service {name} (id: {id})");
                    let mut spec = svc.spec.clone();
                    // Keep the forced-update counter so an unchanged file does not restart.
                    if let Ok(old) = spec_of(cur)
                        && let (Some(t), Some(o)) = (spec.task_template.as_mut(), old.task_template)
                    {
                        t.force_update = o.force_update;
                    }
                    let r = c
                        .service_update(&id, version(cur), &spec, false)
                        .await
                        .with_context(|| format!("failed to update service {name}"))?;
                    for w in r.warnings.iter().flatten() {
                        eprintln!("{w}");
                    }
                }
                None => {
                    println!("Creating service {name}");
                    let r = c
                        .service_create(&svc.spec)
                        .await
                        .with_context(|| format!("failed to create service {name}"))?;
                    for w in r.warnings.iter().flatten() {
                        eprintln!("{w}");
                    }
                    let id = r.id.unwrap_or_default();
                    created_here.push((name.clone(), id.clone()));
                    created_ids.push((name, id));
                }
            }
        }
        // The next level may depend on these: wait for their tasks to run.
        if i + 1 < plan.levels.len() {
            for (name, id) in &created_here {
                wait_running(c, name, id).await?;
            }
        }
    }
    if !a.detach {
        for (name, id) in &created_ids {
            if !a.quiet {
                println!("{name}:");
            }
            progress::wait_converged(c, id).await?;
        }
    }
    Ok(())
}

/// How long a dependency may take to run its tasks before the deploy gives up.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(300);

async fn wait_running(c: &Client, name: &str, id: &str) -> Result<()> {
    let deadline = Instant::now() + DEPENDENCY_TIMEOUT;
    let mut said = false;
    loop {
        let svc = c.service_inspect(id).await?;
        let (running, desired) = progress::counts(c, &svc).await?;
        let global = svc.pointer("/Spec/Mode/Global").is_some();
        if running >= desired && (desired > 0 || !global) {
            return Ok(());
        }
        if !said {
            println!("Waiting for service {name} to run its tasks (depends_on)");
            said = true;
        }
        if Instant::now() > deadline {
            bail!(
                "service {name} has {running} of {desired} tasks running after {}s; its dependents were not created",
                DEPENDENCY_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn ls(c: &Client, a: StackLsArgs) -> Result<()> {
    let f = serde_json::json!({"label": {LABEL_NAMESPACE: true}}).to_string();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in c.services(Some(&f)).await? {
        let ns = s(
            &v,
            &format!(
                "/Spec/Labels/{}",
                LABEL_NAMESPACE.replace('~', "~0").replace('/', "~1")
            ),
        );
        if !ns.is_empty() {
            *counts.entry(ns).or_default() += 1;
        }
    }
    let rows: Vec<Row> = counts
        .into_iter()
        .map(|(name, n)| {
            Row::from([
                ("Name", name),
                ("Services", n.to_string()),
                ("Orchestrator", "Swarm".to_string()),
            ])
        })
        .collect();
    print_rows(
        &rows,
        &[("NAME", "Name"), ("SERVICES", "Services")],
        a.format.as_deref(),
    );
    Ok(())
}

async fn rm(c: &Client, a: RmArgs) -> Result<()> {
    let mut failed = false;
    for name in &a.names {
        let services = stack_services(c, name).await?;
        let networks = stack_networks(c, name).await?;
        let mut data = Vec::new();
        for kind in [DataKind::Secret, DataKind::Config] {
            for v in c
                .swarm_data_list(kind.api_path(), Some(&namespace_filter(name)))
                .await?
            {
                data.push((kind, v));
            }
        }
        if services.is_empty() && networks.is_empty() && data.is_empty() {
            eprintln!("Nothing found in stack: {name}");
            continue;
        }
        for v in &services {
            let n = s(v, "/Spec/Name");
            println!("Removing service {n}");
            if let Err(e) = c.service_remove(&s(v, "/ID")).await {
                eprintln!("Failed to remove service {n}: {e}");
                failed = true;
            }
        }
        if !a.detach || !networks.is_empty() {
            // A network is in use until the services' tasks are gone.
            wait_tasks_gone(c, &services).await;
        }
        for n in &networks {
            let nn = s(n, "/Name");
            println!("Removing network {nn}");
            if let Err(e) = c.network_remove(&s(n, "/Id")).await {
                eprintln!("Failed to remove network {nn}: {e}");
                failed = true;
            }
        }
        for (kind, v) in &data {
            let noun = kind.noun();
            let n = s(v, "/Spec/Name");
            println!("Removing {noun} {n}");
            if let Err(e) = c.swarm_data_remove(kind.api_path(), &s(v, "/ID")).await {
                eprintln!("Failed to remove {noun} {n}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("failed to remove some resources from stack");
    }
    Ok(())
}

async fn wait_tasks_gone(c: &Client, services: &[Value]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for v in services {
        let f = serde_json::json!({"service": {s(v, "/ID"): true}}).to_string();
        while Instant::now() < deadline {
            match c.tasks(Some(&f)).await {
                Ok(t) if !t.is_empty() => tokio::time::sleep(Duration::from_millis(300)).await,
                _ => break,
            }
        }
    }
}
