//! `run`, `create`, `start`, `attach` and `exec`: creating (with a pull when the image is
//! missing), attaching before starting, waiting, and exit codes as docker gives them.

use super::opts::CreateOpts;
use super::stream::{
    DEFAULT_DETACH_KEYS, End, RawTerminal, ResizeTarget, monitor_size, parse_detach_keys, pump,
    stdin_chunks,
};
use super::{StatusError, inspect_json};
use crate::engine::system::auth_for;
use anyhow::{Result, bail};
use berth_client::Client;
use berth_client::containers::AttachOptions;
use bollard_stubs::models::ExecConfig;
use clap::Args;
use std::collections::HashMap;
use std::io::IsTerminal;

/// `run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: CreateOpts,
}

/// `create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: CreateOpts,
}

/// `name[:tag]` with docker's default tag, for messages and pulls.
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Pulls `image` showing docker's plain progress lines on stderr, as `docker run` does.
async fn pull_to_stderr(c: &Client, image: &str, platform: Option<&str>) -> Result<()> {
    let full = with_default_tag(image);
    let (name, tag) = match full.split_once('@') {
        Some((n, d)) => (n.to_string(), d.to_string()),
        None => match full.rsplit_once(':') {
            Some((n, t)) => (n.to_string(), t.to_string()),
            None => (full.clone(), "latest".to_string()),
        },
    };
    let auth = auth_for(&name);
    let stream = c.pull(&name, &tag, platform, auth.as_ref()).await?;
    let mut last: HashMap<String, String> = HashMap::new();
    stream
        .for_each(|m| {
            let status = m.status.clone().unwrap_or_default();
            match &m.id {
                Some(id) => {
                    if m.progress_detail
                        .as_ref()
                        .is_some_and(|d| d.total.is_some())
                    {
                        return;
                    }
                    if last.get(id) != Some(&status) {
                        eprintln!("{id}: {status}");
                        last.insert(id.clone(), status);
                    }
                }
                None if !status.is_empty() => eprintln!("{status}"),
                None => {}
            }
        })
        .await?;
    Ok(())
}

/// Creates the container, pulling its image when missing (or always) as docker does;
/// prints the daemon's warnings on stderr.
async fn create_container(c: &Client, o: &CreateOpts, detach: bool) -> Result<String> {
    let body = o.body(detach)?;
    let platform = o.platform.as_deref();
    match o.pull.as_str() {
        "always" => pull_to_stderr(c, o.image(), platform).await?,
        "missing" | "never" => {}
        other => bail!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        ),
    }
    let created = match c.container_create(o.name.as_deref(), platform, &body).await {
        Err(e) if e.is_not_found() && o.pull != "never" && o.pull != "always" => {
            eprintln!(
                "Unable to find image '{}' locally",
                with_default_tag(o.image())
            );
            pull_to_stderr(c, o.image(), platform).await?;
            c.container_create(o.name.as_deref(), platform, &body)
                .await?
        }
        r => r?,
    };
    for w in &created.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(created.id)
}

/// docker's exit status for a failed start: 127 command not found, 126 not executable,
/// else 125.
fn start_error_code(msg: &str) -> u8 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

fn run_error(cmd: &str, e: impl std::fmt::Display, code: u8) -> anyhow::Error {
    StatusError::new(
        code,
        format!("berth: {e}\n\nRun 'berth {cmd} --help' for more information"),
    )
    .into()
}

/// `create`: prints the new container's id.
pub async fn create(c: &Client, a: CreateArgs) -> Result<()> {
    // docker's `create` attaches like a foreground run would (AttachStdin, StdinOnce with -i).
    match create_container(c, &a.opts, false).await {
        Ok(id) => {
            println!("{id}");
            Ok(())
        }
        Err(e) => Err(run_error("create", super::chain(&e), 125)),
    }
}

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container while attached (`--sig-proxy`).
fn proxy_signals(c: &Client, id: &str) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (c, id) = (c.clone(), id.to_string());
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
        ];
        let mut sigs = Vec::new();
        for (k, n) in kinds {
            if let Ok(s) = signal(k) {
                sigs.push((s, n));
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(4);
        for (mut s, n) in sigs {
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(n).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(n) = rx.recv().await {
            if let Err(e) = c.container_kill(&id, Some(n)).await {
                tracing::debug!(error = %e, "forwarding {n}");
            }
        }
    })
}

/// Attaches to a created container, starts it, streams until it ends and returns its exit
/// code (or `None` when the user detached).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn attach_start_wait(
    c: &Client,
    id: &str,
    tty: bool,
    stdin: bool,
    detach_keys: Option<&str>,
    sig_proxy: bool,
    wait_condition: &str,
    start: bool,
) -> Result<Option<i64>, (u8, anyhow::Error)> {
    let keys =
        parse_detach_keys(detach_keys.unwrap_or(DEFAULT_DETACH_KEYS)).map_err(|e| (125, e))?;
    if tty && stdin && !std::io::stdin().is_terminal() {
        return Err((1, anyhow::anyhow!("the input device is not a TTY")));
    }
    let conn = c
        .container_attach(
            id,
            &AttachOptions {
                stdin,
                stdout: true,
                stderr: true,
                logs: false,
                detach_keys: detach_keys.map(str::to_string),
            },
        )
        .await
        .map_err(|e| (125, e.into()))?;
    let wait = c
        .container_wait(id, wait_condition)
        .await
        .map_err(|e| (125, e.into()))?;
    let raw = if tty && stdin {
        RawTerminal::stdin()
    } else {
        None
    };
    let input = stdin.then(stdin_chunks);
    let streams = tokio::spawn(pump(conn, tty, input, Some(keys)));
    if start && let Err(e) = c.container_start(id).await {
        drop(raw);
        streams.abort();
        let msg = e.to_string();
        return Err((start_error_code(&msg), e.into()));
    }
    let resizer = (tty && std::io::stdout().is_terminal())
        .then(|| monitor_size(c, ResizeTarget::Container(id.to_string()), !start));
    let proxy = (sig_proxy && !tty).then(|| proxy_signals(c, id));
    let end = streams.await;
    drop(raw);
    if let Some(r) = resizer {
        r.abort();
    }
    if let Some(p) = proxy {
        p.abort();
    }
    match end {
        Ok(Ok(End::Detached)) => return Ok(None),
        Ok(Ok(End::Eof)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "attached streams"),
        Err(e) => tracing::debug!(error = %e, "attached streams task"),
    }
    match wait.status().await {
        Ok(code) => Ok(Some(code)),
        Err(e) => Err((125, e.into())),
    }
}

pub(crate) fn exit_with(code: i64) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(StatusError::silent(u8::try_from(code).unwrap_or(255)).into())
    }
}

/// `run`: create, then either start and print the id (`-d`) or attach, start, wait.
pub async fn run(c: &Client, a: RunArgs) -> Result<()> {
    let o = &a.opts;
    let id = create_container(c, o, a.detach)
        .await
        .map_err(|e| run_error("run", super::chain(&e), 125))?;
    if a.detach {
        if let Err(e) = c.container_start(&id).await {
            let msg = e.to_string();
            return Err(run_error("run", msg.clone(), start_error_code(&msg)));
        }
        println!("{id}");
        return Ok(());
    }
    let condition = if o.rm { "removed" } else { "next-exit" };
    match attach_start_wait(
        c,
        &id,
        o.tty,
        o.interactive,
        a.detach_keys.as_deref(),
        a.sig_proxy,
        condition,
        true,
    )
    .await
    {
        Ok(None) => Ok(()),
        Ok(Some(code)) => exit_with(code),
        Err((1, e)) => Err(e),
        Err((code, e)) => Err(run_error("run", super::chain(&e), code)),
    }
}

/// `start` flags.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    detach_keys: Option<String>,
    /// CONTAINER...
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `start`: starts containers, or attaches to one and streams it with `-a`/`-i`.
pub async fn start(c: &Client, a: StartArgs) -> Result<()> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let name = &a.containers[0];
        let info = inspect_json(c, name).await?;
        let id = info["Id"].as_str().unwrap_or(name).to_string();
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        return match attach_start_wait(
            c,
            &id,
            tty,
            stdin,
            a.detach_keys.as_deref(),
            true,
            "next-exit",
            true,
        )
        .await
        {
            Ok(None) => Ok(()),
            Ok(Some(code)) => exit_with(code),
            Err((_, e)) => Err(e),
        };
    }
    let mut failed = Vec::new();
    for n in &a.containers {
        match c.container_start(n).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(n.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("Error: failed to start containers: {}", failed.join(", "));
    }
    Ok(())
}

/// `attach` flags.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    detach_keys: Option<String>,
    /// Do not attach STDIN.
    #[arg(long)]
    no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// CONTAINER
    container: String,
}

/// `attach`: streams a running container until it exits or the user detaches.
pub async fn attach(c: &Client, a: AttachArgs) -> Result<()> {
    let info = inspect_json(c, &a.container).await?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a paused container, unpause it first");
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    match attach_start_wait(
        c,
        &id,
        tty,
        stdin,
        a.detach_keys.as_deref(),
        a.sig_proxy,
        "not-running",
        false,
    )
    .await
    {
        // Unlike `run`, docker's `attach` reports the detach and exits 1.
        Ok(None) => Err(StatusError::new(1, "read escape sequence").into()),
        Ok(Some(code)) => exit_with(code),
        Err((_, e)) => Err(e),
    }
}

/// `exec` flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub(crate) detach_keys: Option<String>,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long)]
    pub(crate) env_file: Vec<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub(crate) workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONTAINER COMMAND [ARG...]"
    )]
    pub(crate) args: Vec<String>,
}

/// `exec`: runs a command in a running container; the exit code is the command's.
pub async fn exec(c: &Client, a: ExecArgs) -> Result<()> {
    let Some((container, command)) = a.args.split_first() else {
        bail!("\"berth exec\" requires at least 2 arguments.");
    };
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(super::opts::read_env_file(f)?);
    }
    env.extend(a.env.iter().cloned());
    let attach = !a.detach;
    let cfg = ExecConfig {
        user: a.user.clone(),
        privileged: Some(a.privileged),
        tty: Some(a.tty),
        attach_stdin: Some(a.interactive && attach),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        detach_keys: a.detach_keys.clone(),
        env: (!env.is_empty()).then_some(env),
        working_dir: a.workdir.clone(),
        cmd: Some(command.to_vec()),
        console_size: if a.tty {
            super::stream::terminal_size().map(|(h, w)| vec![h as usize, w as usize])
        } else {
            None
        },
    };
    let exec_id = c.exec_create(container, &cfg).await?;
    if a.detach {
        c.exec_start_detached(&exec_id).await?;
        return Ok(());
    }
    let keys = parse_detach_keys(a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))?;
    if a.tty && a.interactive && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY");
    }
    let conn = c.exec_start_attached(&exec_id, a.tty).await?;
    let raw = if a.tty && a.interactive {
        RawTerminal::stdin()
    } else {
        None
    };
    let resizer = (a.tty && std::io::stdout().is_terminal())
        .then(|| monitor_size(c, ResizeTarget::Exec(exec_id.clone()), false));
    let input = a.interactive.then(stdin_chunks);
    let end = pump(conn, a.tty, input, Some(keys)).await;
    drop(raw);
    if let Some(r) = resizer {
        r.abort();
    }
    if end? == End::Detached {
        return Ok(());
    }
    let info = c.exec_inspect(&exec_id).await?;
    exit_with(info.exit_code.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags_and_start_codes() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(with_default_tag("x:1"), "x:1");
        assert_eq!(with_default_tag("x@sha256:ab"), "x@sha256:ab");
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("exec: permission denied"), 126);
        assert_eq!(start_error_code("something else"), 125);
    }
}
