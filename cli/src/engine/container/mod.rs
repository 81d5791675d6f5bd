//! Container commands: `run`, `create`, `start`, `ps`, `logs`, `exec`, `inspect`, `stats`,
//! `cp`, ..., their `container <verb>` aliases, `events`, and `system df`/`system prune`.

mod cp;
mod events;
mod ops;
mod opts;
mod ps;
mod run;
mod stats;
mod stream;

use anyhow::Result;
use berth_client::Client;
use clap::Subcommand;

/// An exit status to leave with, and what to print first (nothing when empty).
#[derive(Debug)]
pub struct StatusError {
    /// The process exit code.
    pub code: u8,
    /// The message for stderr.
    pub message: String,
}

impl StatusError {
    /// An exit code with a message.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An exit code alone (a container's or an exec's status).
    pub fn silent(code: u8) -> Self {
        Self::new(code, "")
    }
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(f, "exit status {}", self.code)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for StatusError {}

/// The error and its causes on one line, skipping causes the message already quotes.
pub fn chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// A container's inspect JSON; a missing one is docker's `No such container` error.
pub async fn inspect_json(c: &Client, name: &str) -> Result<serde_json::Value> {
    Ok(c.container_inspect(name, false).await?)
}

/// Container commands as top-level verbs (`berth run`, `berth ps`, ...).
#[derive(Debug, Subcommand)]
pub enum TopLevel {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(Box<run::RunArgs>),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(Box<run::CreateArgs>),
    /// Start one or more stopped containers.
    Start(run::StartArgs),
    /// Stop one or more running containers.
    Stop(ops::StopArgs),
    /// Restart one or more containers.
    Restart(ops::StopArgs),
    /// Kill one or more running containers.
    Kill(ops::KillArgs),
    /// Remove one or more containers.
    Rm(ops::RmArgs),
    /// List containers.
    Ps(ps::PsArgs),
    /// Fetch the logs of a container.
    Logs(ops::LogsArgs),
    /// Execute a command in a running container.
    Exec(run::ExecArgs),
    /// Return low-level information on Docker objects.
    Inspect(ops::InspectArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(stats::StatsArgs),
    /// Display the running processes of a container.
    Top(ops::TopArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::CpArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(ops::NamesArgs),
    /// Pause all processes within one or more containers.
    Pause(ops::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(ops::NamesArgs),
    /// Rename a container.
    Rename(ops::RenameArgs),
    /// Update configuration of one or more containers.
    Update(ops::UpdateArgs),
    /// List port mappings or a specific mapping for the container.
    Port(ops::PortArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(run::AttachArgs),
    /// Export a container's filesystem as a tar archive.
    Export(ops::ExportArgs),
    /// Get real time events from the server.
    Events(events::EventsArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage Docker.
    #[command(subcommand)]
    System(events::SystemCommand),
}

/// `container <verb>`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(Box<run::RunArgs>),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(Box<run::CreateArgs>),
    /// Start one or more stopped containers.
    Start(run::StartArgs),
    /// Stop one or more running containers.
    Stop(ops::StopArgs),
    /// Restart one or more containers.
    Restart(ops::StopArgs),
    /// Kill one or more running containers.
    Kill(ops::KillArgs),
    /// Remove one or more containers.
    #[command(alias = "remove")]
    Rm(ops::RmArgs),
    /// List containers.
    #[command(aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Fetch the logs of a container.
    Logs(ops::LogsArgs),
    /// Execute a command in a running container.
    Exec(run::ExecArgs),
    /// Display detailed information on one or more containers.
    Inspect(ops::InspectArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(stats::StatsArgs),
    /// Display the running processes of a container.
    Top(ops::TopArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::CpArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(ops::NamesArgs),
    /// Pause all processes within one or more containers.
    Pause(ops::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(ops::NamesArgs),
    /// Rename a container.
    Rename(ops::RenameArgs),
    /// Update configuration of one or more containers.
    Update(ops::UpdateArgs),
    /// List port mappings or a specific mapping for the container.
    Port(ops::PortArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(run::AttachArgs),
    /// Export a container's filesystem as a tar archive.
    Export(ops::ExportArgs),
    /// Remove all stopped containers.
    Prune(ops::PruneArgs),
}

/// Runs a top-level container command.
pub async fn top_level(c: &Client, cmd: TopLevel) -> Result<()> {
    use TopLevel as T;
    match cmd {
        T::Run(a) => run::run(c, *a).await,
        T::Create(a) => run::create(c, *a).await,
        T::Start(a) => run::start(c, a).await,
        T::Stop(a) => ops::stop(c, a, false).await,
        T::Restart(a) => ops::stop(c, a, true).await,
        T::Kill(a) => ops::kill(c, a).await,
        T::Rm(a) => ops::rm(c, a).await,
        T::Ps(a) => ps::ps(c, a).await,
        T::Logs(a) => ops::logs(c, a).await,
        T::Exec(a) => run::exec(c, a).await,
        T::Inspect(a) => ops::inspect(c, a, None).await,
        T::Stats(a) => stats::stats(c, a).await,
        T::Top(a) => ops::top(c, a).await,
        T::Cp(a) => cp::cp(c, a).await,
        T::Wait(a) => ops::wait(c, a).await,
        T::Pause(a) => ops::pause(c, a, true).await,
        T::Unpause(a) => ops::pause(c, a, false).await,
        T::Rename(a) => ops::rename(c, a).await,
        T::Update(a) => ops::update(c, a).await,
        T::Port(a) => ops::port(c, a).await,
        T::Attach(a) => run::attach(c, a).await,
        T::Export(a) => ops::export(c, a).await,
        T::Events(a) => events::events(c, a).await,
        T::Container(cmd) => container(c, cmd).await,
        T::System(cmd) => events::system(c, cmd).await,
    }
}

/// Runs `container <verb>`.
pub async fn container(c: &Client, cmd: ContainerCommand) -> Result<()> {
    use ContainerCommand as C;
    match cmd {
        C::Run(a) => run::run(c, *a).await,
        C::Create(a) => run::create(c, *a).await,
        C::Start(a) => run::start(c, a).await,
        C::Stop(a) => ops::stop(c, a, false).await,
        C::Restart(a) => ops::stop(c, a, true).await,
        C::Kill(a) => ops::kill(c, a).await,
        C::Rm(a) => ops::rm(c, a).await,
        C::Ls(a) => ps::ps(c, a).await,
        C::Logs(a) => ops::logs(c, a).await,
        C::Exec(a) => run::exec(c, a).await,
        C::Inspect(a) => ops::inspect(c, a, Some("container")).await,
        C::Stats(a) => stats::stats(c, a).await,
        C::Top(a) => ops::top(c, a).await,
        C::Cp(a) => cp::cp(c, a).await,
        C::Wait(a) => ops::wait(c, a).await,
        C::Pause(a) => ops::pause(c, a, true).await,
        C::Unpause(a) => ops::pause(c, a, false).await,
        C::Rename(a) => ops::rename(c, a).await,
        C::Update(a) => ops::update(c, a).await,
        C::Port(a) => ops::port(c, a).await,
        C::Attach(a) => run::attach(c, a).await,
        C::Export(a) => ops::export(c, a).await,
        C::Prune(a) => ops::prune(c, a).await,
    }
}
