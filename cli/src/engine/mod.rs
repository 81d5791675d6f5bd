//! Docker-shaped commands that talk to a daemon through the Engine API: images, login,
//! version, info, and `tls init`.

mod build;
pub(crate) mod container;
pub(crate) mod format;
mod image;
mod network;
mod system;
mod volume;

use anyhow::Result;
use berth_client::{Client, TlsFiles};
use clap::{Args, Subcommand};
use std::path::PathBuf;

pub use container::StatusError;

/// How to reach the daemon, as docker's global flags.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Daemon socket to connect to (unix:///path or tcp://HOST:PORT); default BERTH_HOST,
    /// DOCKER_HOST, then unix:///run/berth/berth.sock.
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    /// Use TLS; implied by --tlsverify.
    #[arg(long, global = true)]
    tls: bool,
    /// Use TLS and verify the daemon.
    #[arg(long, global = true)]
    tlsverify: bool,
    /// Trust certs signed only by this CA.
    #[arg(long, global = true)]
    tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file.
    #[arg(long, global = true)]
    tlscert: Option<PathBuf>,
    /// Path to TLS key file.
    #[arg(long, global = true)]
    tlskey: Option<PathBuf>,
}

impl ConnArgs {
    pub(crate) fn client(&self) -> Result<Client> {
        let tls = TlsFiles::resolve(
            self.tls,
            self.tlsverify,
            self.tlscacert.clone(),
            self.tlscert.clone(),
            self.tlskey.clone(),
        );
        Ok(Client::from_env(self.host.as_deref(), tls)?)
    }
}

/// The engine commands.
#[derive(Debug, Subcommand)]
pub enum EngineCommand {
    /// Download an image from a registry.
    Pull(image::PullArgs),
    /// Upload an image to a registry.
    Push(image::PushArgs),
    /// List images.
    Images(image::ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Show the history of an image.
    History(image::HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(image::TagArgs),
    /// Remove one or more images.
    Rmi(image::RmiArgs),
    /// Load an image from a tar archive or STDIN.
    Load(image::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(image::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(image::ImportArgs),
    /// Build an image from a Dockerfile (the daemon's legacy builder).
    Build(build::BuildArgs),
    /// Create a new image from a container's changes.
    Commit(build::CommitArgs),
    /// Log in to a registry.
    Login(system::LoginArgs),
    /// Log out from a registry.
    Logout(system::LogoutArgs),
    /// Show the Berth version information.
    Version(system::FormatArgs),
    /// Display system-wide information.
    Info(system::FormatArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// TLS certificates for the daemon and its clients.
    #[command(subcommand)]
    Tls(system::TlsCommand),
    #[command(flatten)]
    Container(container::TopLevel),
}

/// Runs an engine command.
pub fn run(cmd: EngineCommand, conn: &ConnArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use EngineCommand as C;
        match cmd {
            C::Tls(c) => system::tls(c),
            C::Login(a) => system::login(&conn.client()?, a).await,
            C::Logout(a) => system::logout(a),
            C::Version(a) => system::version(&conn.client()?, a).await,
            C::Info(a) => system::info(&conn.client()?, a).await,
            C::Pull(a) => image::pull(&conn.client()?, a).await,
            C::Push(a) => image::push(&conn.client()?, a).await,
            C::Images(a) => image::images(&conn.client()?, a).await,
            C::Image(c) => image::image(&conn.client()?, c).await,
            C::History(a) => image::history(&conn.client()?, a).await,
            C::Tag(a) => image::tag(&conn.client()?, a).await,
            C::Rmi(a) => image::rmi(&conn.client()?, a).await,
            C::Load(a) => image::load(&conn.client()?, a).await,
            C::Save(a) => image::save(&conn.client()?, a).await,
            C::Import(a) => image::import(&conn.client()?, a).await,
            C::Build(a) => build::build(&conn.client()?, a).await,
            C::Commit(a) => build::commit(&conn.client()?, a).await,
            C::Network(c) => network::network(&conn.client()?, c).await,
            C::Volume(c) => volume::volume(&conn.client()?, c).await,
            C::Container(c) => container::top_level(&conn.client()?, c).await,
        }
    })
}
