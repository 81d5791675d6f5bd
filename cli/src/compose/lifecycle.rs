//! The `compose` subcommands that change the project's containers: `up`, `create`, `down`,
//! `start`, `stop`, `restart`, `kill`, `pause`, `unpause`, `rm`, `pull` and `build`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use berth_client::Client;
use berth_orchestrator::compose::down::{self, DownOptions, RemoveImages};
use berth_orchestrator::compose::images::{self, BuildOverride, PullOverride};
use berth_orchestrator::compose::ops::{self, Op};
use berth_orchestrator::compose::progress::Progress;
use berth_orchestrator::compose::up::{self, Recreate, UpOptions};
use clap::Args;
use compose_spec::model::Project;

use super::ComposeArgs;
use super::project::{Switches, load};

const FULL: Switches = Switches {
    interpolate: true,
    normalize: true,
    resolve_paths: true,
    consistency: true,
};

/// Loads the project the global flags designate.
pub fn project(args: &ComposeArgs) -> Result<Project> {
    Ok(load(args, FULL, &[])?.project)
}

/// The project name and, when a Compose file is found, the model. Commands that only need the
/// name (`down -p x`, `stop -p x`) work without a file, as with compose v2.
pub fn project_or_name(args: &ComposeArgs) -> Result<(String, Option<Project>)> {
    match project(args) {
        Ok(p) => Ok((p.name.clone(), Some(p))),
        Err(e) => match &args.project_name {
            Some(n) if args.files.is_empty() => Ok((n.clone(), None)),
            _ => Err(e),
        },
    }
}

/// `--parallel N` (N <= 0: unlimited).
fn parallel(args: &ComposeArgs) -> Option<usize> {
    args.parallel
        .filter(|n| *n > 0)
        .and_then(|n| usize::try_from(n).ok())
}

fn parse_pull(s: &str) -> Result<PullOverride> {
    Ok(match s {
        "always" => PullOverride::Always,
        "missing" => PullOverride::Missing,
        "never" => PullOverride::Never,
        "policy" => PullOverride::Policy,
        other => bail!("invalid --pull option {other:?}: use always, missing, never or policy"),
    })
}

fn parse_scale(v: &[String]) -> Result<HashMap<String, u32>> {
    let mut m = HashMap::new();
    for s in v {
        let Some((name, n)) = s.split_once('=') else {
            bail!("invalid --scale option {s:?}: expected SERVICE=NUM");
        };
        let n: u32 = n
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid --scale option {s:?}: {n:?} is not a number"))?;
        m.insert(name.to_string(), n);
    }
    Ok(m)
}

/// Flags shared by `up` and `create`.
#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Build images before starting containers.
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Don't build an image, even if it's policy.
    #[arg(long)]
    pub no_build: bool,
    /// Pull image before running ("always"|"missing"|"never"|"policy").
    #[arg(long, default_value = "policy")]
    pub pull: String,
    /// Recreate containers even if their configuration and image haven't changed.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them.
    #[arg(long)]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM instances; overrides the `scale` setting in the Compose file.
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Suppress the pull output.
    #[arg(long)]
    pub quiet_pull: bool,
    /// Services.
    pub services: Vec<String>,
}

impl CreateArgs {
    fn options(&self) -> Result<UpOptions> {
        Ok(UpOptions {
            services: self.services.clone(),
            recreate: if self.force_recreate {
                Recreate::Force
            } else if self.no_recreate {
                Recreate::Never
            } else {
                Recreate::Diverged
            },
            pull: parse_pull(&self.pull)?,
            build: if self.build {
                BuildOverride::Always
            } else if self.no_build {
                BuildOverride::Never
            } else {
                BuildOverride::Policy
            },
            scale: parse_scale(&self.scale)?,
            remove_orphans: self.remove_orphans,
            ..UpOptions::default()
        })
    }
}

/// Flags of `compose up`.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detached mode: run containers in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Don't start linked services.
    #[arg(long)]
    pub no_deps: bool,
    /// Don't start the services after creating them.
    #[arg(long)]
    pub no_start: bool,
    /// Wait for services to be running|healthy. Implies detached mode.
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy.
    #[arg(long)]
    pub wait_timeout: Option<u64>,
    /// Use this timeout in seconds for container shutdown when containers are already running.
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// Stops all containers if any container was stopped. Incompatible with -d.
    #[arg(long, conflicts_with = "detach")]
    pub abort_on_container_exit: bool,
    /// Stops all containers if any container exited with failure. Incompatible with -d.
    #[arg(long, conflicts_with = "detach")]
    pub abort_on_container_failure: bool,
    /// Return the exit code of the selected service container. Implies
    /// --abort-on-container-exit.
    #[arg(long, conflicts_with = "detach")]
    pub exit_code_from: Option<String>,
    /// Restrict attaching to the specified services.
    #[arg(long)]
    pub attach: Vec<String>,
    /// Do not attach (stream logs) to the specified services.
    #[arg(long)]
    pub no_attach: Vec<String>,
    /// Attach to dependent containers.
    #[arg(long)]
    pub attach_dependencies: bool,
    /// Produce monochrome output.
    #[arg(long)]
    pub no_color: bool,
    /// Don't prefix container names to log lines.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Show timestamps.
    #[arg(long)]
    pub timestamps: bool,
}

/// `compose up`.
pub async fn up_cmd(args: &ComposeArgs, a: &UpArgs, client: &Client) -> Result<()> {
    let project = project(args)?;
    let mut opts = a.create.options()?;
    opts.no_deps = a.no_deps;
    opts.start = !a.no_start;
    opts.wait = a.wait;
    opts.wait_timeout = a.wait_timeout.map(Duration::from_secs);
    opts.timeout = a.timeout;
    opts.parallel = parallel(args);
    let progress = Progress::new(false);
    up::up(client, &project, &opts, &progress).await?;
    if a.detach || a.wait || a.no_start {
        return Ok(());
    }
    super::attach::run(args, a, client, &project, &opts).await
}

/// `compose create`.
pub async fn create_cmd(args: &ComposeArgs, a: &CreateArgs, client: &Client) -> Result<()> {
    let project = project(args)?;
    let mut opts = a.options()?;
    opts.start = false;
    opts.parallel = parallel(args);
    up::up(client, &project, &opts, &Progress::new(false)).await?;
    Ok(())
}

/// Flags of `compose down`.
#[derive(Args, Debug, Clone)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and
    /// anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove images used by services. "local" remove only images that don't have a custom
    /// tag ("local"|"all").
    #[arg(long)]
    pub rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds.
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// Services (accepted for compatibility; down always takes the whole project).
    pub services: Vec<String>,
}

/// `compose down`.
pub async fn down_cmd(args: &ComposeArgs, a: &DownArgs, client: &Client) -> Result<()> {
    let (name, project) = project_or_name(args)?;
    let images = match a.rmi.as_deref() {
        None => RemoveImages::None,
        Some("local") => RemoveImages::Local,
        Some("all") => RemoveImages::All,
        Some(o) => bail!("invalid --rmi option {o:?}: use \"local\" or \"all\""),
    };
    let opts = DownOptions {
        volumes: a.volumes,
        images,
        remove_orphans: a.remove_orphans,
        timeout: a.timeout,
    };
    down::down(
        client,
        &name,
        project.as_ref(),
        &opts,
        &Progress::new(false),
    )
    .await?;
    Ok(())
}

/// Flags of the commands that take services and a timeout.
#[derive(Args, Debug, Clone)]
pub struct TimeoutArgs {
    /// Specify a shutdown timeout in seconds.
    #[arg(short = 't', long)]
    pub timeout: Option<i64>,
    /// Services.
    pub services: Vec<String>,
}

/// Flags of the commands that only take services.
#[derive(Args, Debug, Clone)]
pub struct ServicesArgs {
    /// Services.
    pub services: Vec<String>,
}

/// Flags of `compose kill`.
#[derive(Args, Debug, Clone)]
pub struct KillArgs {
    /// SIGNAL to send to the container.
    #[arg(short = 's', long, default_value = "SIGKILL")]
    pub signal: String,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Services.
    pub services: Vec<String>,
}

/// Flags of `compose rm`.
#[derive(Args, Debug, Clone)]
pub struct RmArgs {
    /// Don't ask to confirm removal.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers, if required, before removing.
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Services.
    pub services: Vec<String>,
}

/// Runs one of the per-container operations.
pub async fn op_cmd(
    args: &ComposeArgs,
    services: &[String],
    op: Op,
    client: &Client,
) -> Result<()> {
    let (name, project) = project_or_name(args)?;
    if let Some(p) = &project {
        for s in services {
            if !p.services.contains_key(s) {
                bail!("no such service: {s}");
            }
        }
    }
    let done = ops::apply(
        client,
        &name,
        project.as_ref(),
        services,
        &op,
        &Progress::new(false),
    )
    .await?;
    if done.is_empty() && matches!(op, Op::Remove { .. }) {
        eprintln!("No stopped containers");
    }
    Ok(())
}

/// Flags of `compose pull`.
#[derive(Args, Debug, Clone)]
pub struct PullArgs {
    /// Ignore images that can be built.
    #[arg(long)]
    pub ignore_buildable: bool,
    /// Pull what it can and ignores images with pull failures.
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// Pull without printing progress information.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Services.
    pub services: Vec<String>,
}

/// `compose pull`.
pub async fn pull_cmd(args: &ComposeArgs, a: &PullArgs, client: &Client) -> Result<()> {
    let project = project(args)?;
    let selected = up::selection(&project, &a.services, true)?;
    let progress = Progress::new(a.quiet);
    let mut tasks = Vec::new();
    for name in &selected {
        let Some(s) = project.services.get(name) else {
            continue;
        };
        if s.build.is_some() && (a.ignore_buildable || s.image.is_none()) {
            continue;
        }
        let image = images::image_name(&project, s);
        let progress = &progress;
        tasks.push(async move {
            match images::pull(client, name, &image, progress).await {
                Err(e) if a.ignore_pull_failures => {
                    progress.warn(&e.to_string());
                    Ok(())
                }
                r => r,
            }
        });
    }
    for r in futures_util::future::join_all(tasks).await {
        r?;
    }
    Ok(())
}

/// Flags of `compose push`.
#[derive(Args, Debug, Clone)]
pub struct PushArgs {
    /// Push what it can and ignores images with push failures.
    #[arg(long)]
    pub ignore_push_failures: bool,
    /// Push without printing progress information.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Also push images of services declared as dependencies.
    #[arg(long)]
    pub include_deps: bool,
    /// Services.
    pub services: Vec<String>,
}

/// `compose push`: the images of services that name one (compose skips the others).
pub async fn push_cmd(args: &ComposeArgs, a: &PushArgs, client: &Client) -> Result<()> {
    let project = project(args)?;
    let selected = up::selection(&project, &a.services, !a.include_deps)?;
    let progress = Progress::new(a.quiet);
    for name in &selected {
        let Some(s) = project.services.get(name) else {
            continue;
        };
        let Some(image) = &s.image else {
            continue;
        };
        match images::push(client, name, image, &progress).await {
            Err(e) if a.ignore_push_failures => progress.warn(&e.to_string()),
            r => r?,
        }
    }
    Ok(())
}

/// Flags of `compose build`.
#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// Do not use cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pub pull: bool,
    /// Don't print anything to STDOUT.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set build-time variables for services.
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Services.
    pub services: Vec<String>,
}

/// `compose build`: every selected service with a build section, in parallel.
pub async fn build_cmd(args: &ComposeArgs, a: &BuildArgs, client: &Client) -> Result<()> {
    let mut project = project(args)?;
    let selected = up::selection(&project, &a.services, true)?;
    for name in &selected {
        if let Some(b) = project
            .services
            .get_mut(name)
            .and_then(|s| s.build.as_mut())
        {
            b.no_cache |= a.no_cache;
            b.pull |= a.pull;
            for kv in &a.build_args {
                let (k, v) = match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (kv.clone(), std::env::var(kv).ok()),
                };
                b.args.insert(k, v);
            }
        }
    }
    let progress = Progress::new(a.quiet);
    let project = &project;
    let progress = &progress;
    let tasks = selected.iter().filter_map(|name| {
        let s = project.services.get(name)?;
        s.build.as_ref()?;
        Some(async move {
            let image = images::image_name(project, s);
            images::build(client, project, s, &image, progress).await
        })
    });
    for r in futures_util::future::join_all(tasks).await {
        r?;
    }
    Ok(())
}
