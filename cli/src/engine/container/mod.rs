//! Container commands: `run`, `create`, `start`, `ps`, `logs`, `exec`, `inspect`, `stats`,
//! `cp`, ..., their `container <verb>` aliases, `events`, and `system df`/`system prune`.

pub(crate) mod cp;
mod events;
pub(crate) mod ops;
pub(crate) use ops::{align, timestamp};
pub use ops::{confirm, indent4};
mod opts;
pub(crate) mod ps;
pub(crate) mod run;
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

/// The error and its causes on one line, as `main` prints errors.
pub fn chain(e: &anyhow::Error) -> String {
    crate::message(e)
}

/// A container's inspect JSON; a missing one is docker's `No such container` error.
pub async fn inspect_json(c: &Client, name: &str) -> Result<serde_json::Value> {
    Ok(c.container_inspect(name, false).await?)
}

/// The verbs `berth <verb>` and `berth container <verb>` share.
#[derive(Debug, Subcommand)]
pub enum Verb {
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
    /// Fetch the logs of a container.
    Logs(ops::LogsArgs),
    /// Execute a command in a running container.
    Exec(run::ExecArgs),
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
}

/// Container commands as top-level verbs (`berth run`, `berth ps`, ...).
#[derive(Debug, Subcommand)]
pub enum TopLevel {
    #[command(flatten)]
    Verb(Verb),
    /// List containers.
    Ps(ps::PsArgs),
    /// Return low-level information on Docker objects.
    Inspect(ops::InspectArgs),
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
    #[command(flatten)]
    Verb(Verb),
    /// List containers.
    #[command(aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Display detailed information on one or more containers.
    Inspect(ops::InspectArgs),
    /// Remove all stopped containers.
    Prune(ops::PruneArgs),
}

async fn verb(c: &Client, v: Verb) -> Result<()> {
    use Verb as V;
    match v {
        V::Run(a) => run::run(c, *a).await,
        V::Create(a) => run::create(c, *a).await,
        V::Start(a) => run::start(c, a).await,
        V::Stop(a) => ops::stop(c, a, false).await,
        V::Restart(a) => ops::stop(c, a, true).await,
        V::Kill(a) => ops::kill(c, a).await,
        V::Rm(a) => ops::rm(c, a).await,
        V::Logs(a) => ops::logs(c, a).await,
        V::Exec(a) => run::exec(c, a).await,
        V::Stats(a) => stats::stats(c, a).await,
        V::Top(a) => ops::top(c, a).await,
        V::Cp(a) => cp::cp(c, a).await,
        V::Wait(a) => ops::wait(c, a).await,
        V::Pause(a) => ops::pause(c, a, true).await,
        V::Unpause(a) => ops::pause(c, a, false).await,
        V::Rename(a) => ops::rename(c, a).await,
        V::Update(a) => ops::update(c, a).await,
        V::Port(a) => ops::port(c, a).await,
        V::Attach(a) => run::attach(c, a).await,
        V::Export(a) => ops::export(c, a).await,
    }
}

/// Runs a top-level container command.
pub async fn top_level(c: &Client, cmd: TopLevel) -> Result<()> {
    match cmd {
        TopLevel::Verb(v) => verb(c, v).await,
        TopLevel::Ps(a) => ps::ps(c, a).await,
        TopLevel::Inspect(a) => ops::inspect(c, a, None).await,
        TopLevel::Events(a) => events::events(c, a).await,
        TopLevel::Container(cmd) => container(c, cmd).await,
        TopLevel::System(cmd) => events::system(c, cmd).await,
    }
}

/// Runs `container <verb>`.
pub async fn container(c: &Client, cmd: ContainerCommand) -> Result<()> {
    match cmd {
        ContainerCommand::Verb(v) => verb(c, v).await,
        ContainerCommand::Ls(a) => ps::ps(c, a).await,
        ContainerCommand::Inspect(a) => ops::inspect(c, a, Some("container")).await,
        ContainerCommand::Prune(a) => ops::prune(c, a).await,
    }
}
