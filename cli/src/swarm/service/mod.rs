//! `berth service create|inspect|logs|ls|ps|rm|rollback|scale|update`.

mod logs;
mod opts;
pub(crate) mod progress;

use super::tasks::{PsArgs, print_tasks};
use super::util::{filters, print_inspected, s, short_id, strip_digest, version};
use crate::engine::format::{Row, print_rows};
use anyhow::{Context, Result, bail};
use berth_client::Client;
use bollard_stubs::models::{ServiceSpec, TaskSpec, TaskSpecContainerSpec};
use clap::{Args, Subcommand};
use opts::SpecFlags;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;

/// `service` subcommands.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a new service.
    Create(CreateArgs),
    /// Display detailed information on one or more services.
    Inspect(InspectArgs),
    /// Fetch the logs of a service or task.
    Logs(logs::LogsArgs),
    /// List services.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// List the tasks of one or more services.
    Ps(ServicePsArgs),
    /// Remove one or more services.
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Revert changes to a service's configuration.
    Rollback(RollbackArgs),
    /// Scale one or multiple replicated services.
    Scale(ScaleArgs),
    /// Update a service.
    Update(UpdateArgs),
}

/// `service create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Service name.
    #[arg(long)]
    name: Option<String>,
    /// Service mode ("replicated", "global").
    #[arg(long, default_value = "replicated")]
    mode: String,
    /// Set environment variables.
    #[arg(short, long)]
    env: Vec<String>,
    /// Service labels.
    #[arg(short, long)]
    label: Vec<String>,
    /// Container labels.
    #[arg(long = "container-label")]
    container_label: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Exit immediately instead of waiting for the service to converge.
    #[arg(short, long)]
    detach: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    flags: SpecFlags,
    /// IMAGE
    image: String,
    /// COMMAND and ARG...
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `service update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Service image tag.
    #[arg(long)]
    image: Option<String>,
    /// Service command args.
    #[arg(long)]
    args: Option<String>,
    /// Add or update an environment variable.
    #[arg(long = "env-add")]
    env_add: Vec<String>,
    /// Remove an environment variable.
    #[arg(long = "env-rm")]
    env_rm: Vec<String>,
    /// Add or update a service label.
    #[arg(long = "label-add")]
    label_add: Vec<String>,
    /// Remove a label by its key.
    #[arg(long = "label-rm")]
    label_rm: Vec<String>,
    /// Add or update a container label.
    #[arg(long = "container-label-add")]
    container_label_add: Vec<String>,
    /// Remove a container label by its key.
    #[arg(long = "container-label-rm")]
    container_label_rm: Vec<String>,
    /// Remove a constraint.
    #[arg(long = "constraint-rm")]
    constraint_rm: Vec<String>,
    /// Remove a secret.
    #[arg(long = "secret-rm")]
    secret_rm: Vec<String>,
    /// Remove a configuration file.
    #[arg(long = "config-rm")]
    config_rm: Vec<String>,
    /// Remove a published port by its target port.
    #[arg(long = "publish-rm")]
    publish_rm: Vec<String>,
    /// Remove a network.
    #[arg(long = "network-rm")]
    network_rm: Vec<String>,
    /// Remove a mount by its target path.
    #[arg(long = "mount-rm")]
    mount_rm: Vec<String>,
    /// Force update even if no changes require it.
    #[arg(long)]
    force: bool,
    /// Rollback to previous specification.
    #[arg(long)]
    rollback: bool,
    /// Exit immediately instead of waiting for the service to converge.
    #[arg(short, long)]
    detach: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    flags: SpecFlags,
    /// SERVICE
    service: String,
}

/// `service inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print the information in a human friendly format.
    #[arg(long)]
    pretty: bool,
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// SERVICE
    #[arg(required = true)]
    services: Vec<String>,
}

/// `service ls` flags.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

/// `service ps` flags.
#[derive(Debug, Args)]
pub struct ServicePsArgs {
    #[command(flatten)]
    ps: PsArgs,
    /// SERVICE
    #[arg(required = true)]
    services: Vec<String>,
}

/// Service names.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// SERVICE
    #[arg(required = true)]
    services: Vec<String>,
}

/// `service rollback` flags.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Exit immediately instead of waiting for the service to converge.
    #[arg(short, long)]
    detach: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    quiet: bool,
    /// SERVICE
    service: String,
}

/// `service scale` flags.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Exit immediately instead of waiting for the service to converge.
    #[arg(short, long)]
    detach: bool,
    /// SERVICE=REPLICAS
    #[arg(required = true)]
    pairs: Vec<String>,
}

/// Runs a `service` subcommand.
pub async fn run(c: &Client, cmd: ServiceCommand) -> Result<()> {
    match cmd {
        ServiceCommand::Create(a) => create(c, a).await,
        ServiceCommand::Inspect(a) => inspect(c, a).await,
        ServiceCommand::Logs(a) => logs::logs(c, a).await,
        ServiceCommand::Ls(a) => ls(c, &a, &[]).await,
        ServiceCommand::Ps(a) => {
            let mut extra = Vec::new();
            for name in &a.services {
                let svc = c.service_inspect(name).await?;
                extra.push(("service", s(&svc, "/ID")));
            }
            print_tasks(c, &a.ps, &extra).await
        }
        ServiceCommand::Rm(a) => {
            let mut failed = false;
            for name in &a.services {
                match c.service_remove(name).await {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Err(crate::engine::StatusError::new(1, "").into());
            }
            Ok(())
        }
        ServiceCommand::Rollback(a) => {
            let svc = c.service_inspect(&a.service).await?;
            let spec: ServiceSpec = spec_of(&svc)?;
            let r = c
                .service_update(&s(&svc, "/ID"), version(&svc), &spec, true)
                .await?;
            warnings(&r.warnings);
            println!("{}", a.service);
            if !a.detach {
                wait(c, &a.service, a.quiet).await?;
            }
            Ok(())
        }
        ServiceCommand::Scale(a) => scale(c, a).await,
        ServiceCommand::Update(a) => update(c, a).await,
    }
}

fn warnings(w: &Option<Vec<String>>) {
    for w in w.iter().flatten() {
        eprintln!("{w}");
    }
}

/// A service's spec as the typed model.
pub fn spec_of(svc: &Value) -> Result<ServiceSpec> {
    serde_json::from_value(svc["Spec"].clone()).context("decoding the service's spec")
}

async fn wait(c: &Client, service: &str, quiet: bool) -> Result<()> {
    if quiet {
        let out = std::io::stdout();
        let _ = out.lock().flush();
    }
    progress::wait_converged(c, service).await
}

fn key_values(flags: &[String]) -> HashMap<String, String> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (f.clone(), String::new()),
        })
        .collect()
}

async fn create(c: &Client, a: CreateArgs) -> Result<()> {
    let mut args = a.args.into_iter();
    let mut container = TaskSpecContainerSpec {
        image: Some(a.image.clone()),
        ..Default::default()
    };
    if let Some(e) = &a.entrypoint {
        container.command =
            Some(compose_spec::model::split_shell(e).unwrap_or_else(|_| vec![e.clone()]));
        container.args = Some(args.collect()).filter(|v: &Vec<String>| !v.is_empty());
    } else if let Some(cmd) = args.next() {
        container.command = Some(vec![cmd]);
        container.args = Some(args.collect()).filter(|v: &Vec<String>| !v.is_empty());
    }
    if !a.env.is_empty() {
        container.env = Some(a.env.clone());
    }
    if !a.container_label.is_empty() {
        container.labels = Some(key_values(&a.container_label));
    }
    let mut spec = ServiceSpec {
        name: a.name.clone(),
        labels: Some(key_values(&a.label)),
        mode: Some(opts::mode(&a.mode, a.flags.replicas)?),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut flags = a.flags;
    flags.replicas = None;
    flags.apply(&mut spec)?;
    let r = c.service_create(&spec).await?;
    warnings(&r.warnings);
    let id = r.id.unwrap_or_default();
    println!("{id}");
    if !a.detach {
        wait(c, &id, a.quiet).await?;
    }
    Ok(())
}

async fn update(c: &Client, a: UpdateArgs) -> Result<()> {
    let svc = c.service_inspect(&a.service).await?;
    let mut spec = spec_of(&svc)?;
    // Removals first, as docker does, so that `--secret-rm x --secret-add ...x...` replaces.
    if let Some(c) = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    {
        if let Some(list) = c.secrets.as_mut() {
            list.retain(|r| {
                !a.secret_rm
                    .contains(r.secret_name.as_ref().unwrap_or(&String::new()))
            });
        }
        if let Some(list) = c.configs.as_mut() {
            list.retain(|r| {
                !a.config_rm
                    .contains(r.config_name.as_ref().unwrap_or(&String::new()))
            });
        }
    }
    a.flags.apply(&mut spec)?;
    if !a.label_add.is_empty() || !a.label_rm.is_empty() {
        let l = spec.labels.get_or_insert_with(HashMap::new);
        for k in &a.label_rm {
            l.remove(k);
        }
        l.extend(key_values(&a.label_add));
    }
    let task = spec.task_template.get_or_insert_with(TaskSpec::default);
    let cs = task.container_spec.get_or_insert_with(Default::default);
    if let Some(i) = &a.image {
        cs.image = Some(i.clone());
    }
    if let Some(args) = &a.args {
        cs.args =
            Some(compose_spec::model::split_shell(args).unwrap_or_else(|_| vec![args.clone()]));
    }
    if !a.env_add.is_empty() || !a.env_rm.is_empty() {
        let env = cs.env.get_or_insert_with(Vec::new);
        let key = |e: &str| e.split('=').next().unwrap_or(e).to_string();
        for k in a.env_rm.iter().chain(&a.env_add).map(|e| key(e)) {
            env.retain(|e| key(e) != k);
        }
        env.extend(a.env_add.iter().cloned());
    }
    if !a.container_label_add.is_empty() || !a.container_label_rm.is_empty() {
        let l = cs.labels.get_or_insert_with(HashMap::new);
        for k in &a.container_label_rm {
            l.remove(k);
        }
        l.extend(key_values(&a.container_label_add));
    }
    if !a.mount_rm.is_empty()
        && let Some(m) = cs.mounts.as_mut()
    {
        m.retain(|m| !a.mount_rm.iter().any(|t| m.target.as_deref() == Some(t)));
    }
    if !a.constraint_rm.is_empty()
        && let Some(p) = task.placement.as_mut().and_then(|p| p.constraints.as_mut())
    {
        p.retain(|x| !a.constraint_rm.contains(x));
    }
    if !a.network_rm.is_empty()
        && let Some(n) = task.networks.as_mut()
    {
        n.retain(|x| !a.network_rm.iter().any(|r| x.target.as_deref() == Some(r)));
    }
    if a.force {
        task.force_update = Some(task.force_update.unwrap_or(0) + 1);
    }
    if !a.publish_rm.is_empty()
        && let Some(p) = spec.endpoint_spec.as_mut().and_then(|e| e.ports.as_mut())
    {
        p.retain(|x| {
            !a.publish_rm.iter().any(|r| {
                let t = r.split('/').next().unwrap_or(r);
                x.target_port.map(|p| p.to_string()).as_deref() == Some(t)
                    || x.published_port.map(|p| p.to_string()).as_deref() == Some(t)
            })
        });
    }
    let r = c
        .service_update(&s(&svc, "/ID"), version(&svc), &spec, a.rollback)
        .await?;
    warnings(&r.warnings);
    println!("{}", a.service);
    if !a.detach {
        wait(c, &a.service, a.quiet).await?;
    }
    Ok(())
}

async fn scale(c: &Client, a: ScaleArgs) -> Result<()> {
    let mut parsed = Vec::new();
    for p in &a.pairs {
        let Some((name, n)) = p.split_once('=') else {
            bail!("invalid scale specifier '{p}'.\nSee 'docker service scale --help'.");
        };
        let n: i64 = n
            .parse()
            .with_context(|| format!("invalid replicas value {n}: expected a number"))?;
        parsed.push((name.to_string(), n));
    }
    let mut failed = false;
    let mut done = Vec::new();
    for (name, n) in parsed {
        let r = async {
            let svc = c.service_inspect(&name).await?;
            let mut spec = spec_of(&svc)?;
            let mode = spec.mode.get_or_insert_with(Default::default);
            match mode.replicated.as_mut() {
                Some(r) => r.replicas = Some(n),
                None => bail!("scale can only be used with replicated or replicated-job mode"),
            }
            c.service_update(&s(&svc, "/ID"), version(&svc), &spec, false)
                .await?;
            anyhow::Ok(())
        }
        .await;
        match r {
            Ok(()) => {
                println!("{name} scaled to {n}");
                done.push(name);
            }
            Err(e) => {
                eprintln!("{name}: {}", crate::message(&e));
                failed = true;
            }
        }
    }
    if !a.detach {
        for name in &done {
            wait(c, name, false).await?;
        }
    }
    if failed {
        return Err(crate::engine::StatusError::new(1, "").into());
    }
    Ok(())
}

/// `service ls` (and `stack services`, which adds a namespace filter).
pub async fn ls(c: &Client, a: &LsArgs, extra: &[(&str, String)]) -> Result<()> {
    let f = filters(&a.filter, extra)?;
    let mut list = c.services(f.as_deref()).await?;
    list.sort_by_key(|v| s(v, "/Spec/Name"));
    if a.quiet {
        for v in &list {
            println!("{}", s(v, "/ID"));
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    for v in &list {
        let global = v.pointer("/Spec/Mode/Global").is_some();
        let (running, desired) = match (
            v.pointer("/ServiceStatus/RunningTasks")
                .and_then(Value::as_u64),
            v.pointer("/ServiceStatus/DesiredTasks")
                .and_then(Value::as_u64),
        ) {
            (Some(r), Some(d)) => (r, d),
            _ => progress::counts(c, v).await?,
        };
        let ports: Vec<String> = v
            .pointer("/Endpoint/Ports")
            .or_else(|| v.pointer("/Spec/EndpointSpec/Ports"))
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter(|p| s(p, "/PublishMode") != "host" && p.get("PublishedPort").is_some())
                    .map(|p| {
                        format!(
                            "*:{}->{}/{}",
                            s(p, "/PublishedPort"),
                            s(p, "/TargetPort"),
                            s(p, "/Protocol")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        rows.push(Row::from([
            ("ID", short_id(&s(v, "/ID"), false)),
            ("Name", s(v, "/Spec/Name")),
            (
                "Mode",
                if global { "global" } else { "replicated" }.to_string(),
            ),
            ("Replicas", format!("{running}/{desired}")),
            (
                "Image",
                strip_digest(&s(v, "/Spec/TaskTemplate/ContainerSpec/Image")),
            ),
            ("Ports", ports.join(", ")),
        ]));
    }
    print_rows(
        &rows,
        &[
            ("ID", "ID"),
            ("NAME", "Name"),
            ("MODE", "Mode"),
            ("REPLICAS", "Replicas"),
            ("IMAGE", "Image"),
            ("PORTS", "Ports"),
        ],
        a.format.as_deref(),
    );
    Ok(())
}

async fn inspect(c: &Client, a: InspectArgs) -> Result<()> {
    let mut all = Vec::new();
    for n in &a.services {
        all.push(c.service_inspect(n).await?);
    }
    if print_inspected(&all, a.format.as_deref(), a.pretty)? {
        return Ok(());
    }
    for (i, v) in all.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("ID:\t\t{}", s(v, "/ID"));
        println!("Name:\t\t{}", s(v, "/Spec/Name"));
        if let Some(l) = v.pointer("/Spec/Labels").and_then(Value::as_object)
            && !l.is_empty()
        {
            println!("Labels:");
            for (k, val) in l {
                println!(" {k}={}", val.as_str().unwrap_or(""));
            }
        }
        if let Some(r) = v.pointer("/Spec/Mode/Replicated/Replicas") {
            println!("Service Mode:\tReplicated");
            println!(" Replicas:\t{r}");
        } else {
            println!("Service Mode:\tGlobal");
        }
        if let Some(cons) = v
            .pointer("/Spec/TaskTemplate/Placement/Constraints")
            .and_then(Value::as_array)
        {
            println!("Placement:");
            println!(" Constraints:\t{}", serde_json::to_string(cons)?);
        }
        if v.pointer("/Spec/UpdateConfig").is_some() {
            println!("UpdateConfig:");
            println!(" Parallelism:\t{}", s(v, "/Spec/UpdateConfig/Parallelism"));
            println!(" On failure:\t{}", s(v, "/Spec/UpdateConfig/FailureAction"));
            println!(" Update order:      {}", s(v, "/Spec/UpdateConfig/Order"));
        }
        println!("ContainerSpec:");
        println!(
            " Image:\t\t{}",
            s(v, "/Spec/TaskTemplate/ContainerSpec/Image")
        );
        for (label, key) in [("Command", "Command"), ("Args", "Args")] {
            if let Some(a) = v
                .pointer(&format!("/Spec/TaskTemplate/ContainerSpec/{key}"))
                .and_then(Value::as_array)
            {
                let words: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                println!(" {label}:\t{}", words.join(" "));
            }
        }
        if let Some(env) = v
            .pointer("/Spec/TaskTemplate/ContainerSpec/Env")
            .and_then(Value::as_array)
        {
            println!(" Env:");
            for e in env.iter().filter_map(Value::as_str) {
                println!("  {e}");
            }
        }
        let mode = s(v, "/Spec/EndpointSpec/Mode");
        println!(
            "Endpoint Mode:\t{}",
            if mode.is_empty() { "vip" } else { &mode }
        );
        if let Some(ports) = v
            .pointer("/Spec/EndpointSpec/Ports")
            .and_then(Value::as_array)
        {
            println!("Ports:");
            for p in ports {
                println!(" PublishedPort = {}", s(p, "/PublishedPort"));
                println!("  Protocol = {}", s(p, "/Protocol"));
                println!("  TargetPort = {}", s(p, "/TargetPort"));
                println!("  PublishMode = {}", s(p, "/PublishMode"));
            }
        }
    }
    Ok(())
}
