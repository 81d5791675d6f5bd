//! `compose exec`, `compose cp` and `compose wait`: a service's container addressed by service
//! name and `--index`, then the engine commands' own code.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use berth_client::Client;
use berth_orchestrator::compose::containers::Select;
use berth_orchestrator::compose::down::{self, DownOptions};
use berth_orchestrator::compose::progress::Progress;
use clap::{ArgAction, Args};

use super::super::ComposeArgs;
use crate::engine::StatusError;
use crate::engine::container::{cp as engine_cp, run as engine_run};

/// Flags of `compose exec`.
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Index of the container if service has multiple replicas.
    #[arg(long)]
    index: Option<u32>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long, default_value_t = true, action = ArgAction::Set, hide = true)]
    interactive: bool,
    /// Disable pseudo-TTY allocation. By default `compose exec` allocates a TTY.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Give extended privileges to the process.
    #[arg(long)]
    privileged: bool,
    /// Run the command as this user.
    #[arg(short, long)]
    user: Option<String>,
    /// Path to workdir directory for this command.
    #[arg(short, long)]
    workdir: Option<String>,
    /// SERVICE COMMAND [ARGS...]
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "SERVICE COMMAND [ARGS...]"
    )]
    args: Vec<String>,
}

/// Runs `compose exec`; the exit code is the command's.
pub async fn exec(args: &ComposeArgs, a: &ExecArgs, client: &Client) -> Result<()> {
    let Some((service, command)) = a.args.split_first() else {
        bail!("\"compose exec\" requires at least 2 arguments.");
    };
    let (name, _) = super::project_for(args, std::slice::from_ref(service))?;
    let c = super::service_container(client, &name, service, a.index, false).await?;
    let mut argv = vec![c.id.clone()];
    argv.extend(command.iter().cloned());
    let tty = !a.no_tty && std::io::stdin().is_terminal();
    engine_run::exec(
        client,
        engine_run::ExecArgs {
            detach: a.detach,
            detach_keys: None,
            env: a.env.clone(),
            env_file: Vec::new(),
            interactive: a.interactive && !a.detach,
            privileged: a.privileged,
            tty,
            user: a.user.clone(),
            workdir: a.workdir.clone(),
            args: argv,
        },
    )
    .await
}

/// Flags of `compose cp`.
#[derive(Args, Debug, Clone)]
pub struct CpArgs {
    /// Index of the container if service has multiple replicas.
    #[arg(long)]
    index: Option<u32>,
    /// Include containers created by the run command.
    #[arg(long)]
    all: bool,
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// SERVICE:SRC_PATH or a local path (- for a tar stream on stdin).
    src: String,
    /// SERVICE:DEST_PATH or a local path (- for a tar stream on stdout).
    dest: String,
}

/// Runs `compose cp`: from one service container, or to the service's containers (every one
/// of them unless `--index` picks one, as compose).
pub async fn cp(args: &ComposeArgs, a: &CpArgs, client: &Client) -> Result<()> {
    let split = engine_cp::split_cp_arg;
    let (service, path, to_service) = match (split(&a.src), split(&a.dest)) {
        (Some((s, p)), None) => (s.to_string(), p.to_string(), false),
        (None, Some((s, p))) => (s.to_string(), p.to_string(), true),
        (Some(_), Some(_)) => bail!("copying between services is not supported"),
        (None, None) => bail!("unknown copy direction"),
    };
    let (name, _) = super::project_for(args, std::slice::from_ref(&service))?;
    let targets = if to_service && a.index.is_none() {
        let sel = Select {
            all: false,
            oneoff: a.all,
        };
        let list = super::listed(client, &name, sel, std::slice::from_ref(&service)).await?;
        if list.is_empty() {
            bail!("no container found for service \"{service}\"");
        }
        list
    } else {
        vec![super::service_container(client, &name, &service, a.index, true).await?]
    };
    for c in targets {
        let at = format!("{}:{path}", c.id);
        let (src, dest) = if to_service {
            (a.src.clone(), at)
        } else {
            (at, a.dest.clone())
        };
        let cp = engine_cp::CpArgs {
            archive: a.archive,
            follow_link: a.follow_link,
            quiet: true,
            src,
            dest,
        };
        engine_cp::cp(client, cp).await?;
    }
    Ok(())
}

/// Flags of `compose wait`.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// Drops project when the first container stops.
    #[arg(long)]
    down_project: bool,
    /// SERVICE...
    #[arg(required = true)]
    service: Vec<String>,
}

/// Runs `compose wait`: every container of the services, each exit reported; the exit
/// status is the last one's.
pub async fn wait(args: &ComposeArgs, a: &WaitArgs, client: &Client) -> Result<()> {
    let (name, project) = super::project_for(args, &a.service)?;
    let sel = Select {
        all: false,
        oneoff: true,
    };
    let list = super::listed(client, &name, sel, &a.service).await?;
    if list.is_empty() {
        bail!("no containers for project \"{name}\"");
    }
    let mut handles = Vec::new();
    for c in &list {
        handles.push((
            c.id.clone(),
            client.container_wait(&c.id, "not-running").await?,
        ));
    }
    let mut waits = tokio::task::JoinSet::new();
    for (id, h) in handles {
        waits.spawn(async move { (id, h.status().await) });
    }
    let mut code = 0;
    while let Some(r) = waits.join_next().await {
        let (id, status) = r?;
        code = status?;
        println!("container \"{id}\" exited with status code {code}");
    }
    if a.down_project {
        let opts = DownOptions {
            remove_orphans: true,
            ..DownOptions::default()
        };
        let progress = Progress::new(false);
        down::down(client, &name, project.as_ref(), &opts, &progress).await?;
    }
    if code != 0 {
        return Err(StatusError::silent(u8::try_from(code).unwrap_or(255)).into());
    }
    Ok(())
}
