//! The daemon's shared state: the engine services, the event bus and the settings.

use crate::events::EventBus;
use berth_engine::container::{ContainerOptions, ContainerService};
use berth_engine::image::ImageService;
use berth_engine::image::registry::RegistryOptions;
use berth_engine::state::StateStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

/// Settings of one daemon.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Persistent state (`--root`).
    pub root: PathBuf,
    /// Runtime state: sockets, pid file (`--exec-root`).
    pub exec_root: PathBuf,
    /// Registries reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// Do not read `~/.docker/config.json` for registry credentials (tests).
    pub ignore_docker_config: bool,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A directory or file could not be prepared.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The engine could not open its stores.
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    /// The metadata store could not be opened.
    #[error(transparent)]
    State(#[from] berth_engine::state::StateError),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DaemonError + 'a {
    move |source| DaemonError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Everything a request handler needs; shared by all connections.
#[derive(Debug)]
pub struct Daemon {
    /// The settings.
    pub config: Config,
    /// The image service.
    pub images: ImageService,
    /// The container service.
    pub containers: ContainerService,
    /// The network service (the one containers attach to).
    pub networks: berth_engine::network::NetworkService,
    /// The event bus behind `/events`.
    pub events: EventBus,
    /// A stable identifier of this engine (`/info` `ID`).
    pub id: String,
    /// When the daemon started.
    pub started: SystemTime,
    /// Swarm membership: the worker and, on managers, the manager.
    pub swarm: crate::swarm::SwarmNode,
    shutdown: watch::Receiver<bool>,
}

/// The state handlers receive.
pub type AppState = Arc<Daemon>;

impl Daemon {
    /// Prepares `root` and `exec_root` and opens the engine's stores.
    pub async fn open(
        config: Config,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, DaemonError> {
        for dir in [&config.root, &config.exec_root] {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        let images_root = config.root.join("image");
        std::fs::create_dir_all(&images_root).map_err(io_err("create", &images_root))?;
        let state = StateStore::open(&config.root.join("state.redb"))?;
        let images = ImageService::open(&images_root, state.clone(), registry_options(&config))?;
        let id = engine_id(&config.root)?;
        let containers = ContainerService::open(
            ContainerOptions {
                root: config.root.clone(),
                exec_root: config.exec_root.clone(),
                shim: None,
            },
            state,
            images.clone(),
        )
        .await?;
        let networks = containers.networks().clone();
        let swarm = crate::swarm::SwarmNode::open(&config.root, networks.clone());
        Ok(Self {
            config,
            images,
            containers,
            networks,
            events: EventBus::new(),
            swarm,
            id,
            started: SystemTime::now(),
            shutdown,
        })
    }

    /// An image service with extra credentials for one request (`X-Registry-Auth`).
    pub fn images_with(
        &self,
        creds: Option<(String, berth_engine::image::auth::Credentials)>,
    ) -> Result<ImageService, berth_engine::Error> {
        let Some((domain, c)) = creds else {
            return Ok(self.images.clone());
        };
        let mut opts = registry_options(&self.config);
        opts.credentials.insert(domain, c);
        ImageService::open(self.images.root(), self.images.state().clone(), opts)
    }

    /// Resolves once the daemon is shutting down, so endless streams can end.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }
}

fn registry_options(config: &Config) -> RegistryOptions {
    RegistryOptions {
        insecure_registries: config.insecure_registries.clone(),
        ignore_docker_config: config.ignore_docker_config,
        ..Default::default()
    }
}

/// Reads the engine ID kept under `root`, creating it on first start.
fn engine_id(root: &Path) -> Result<String, DaemonError> {
    let path = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if !s.is_empty() {
            return Ok(s.to_string());
        }
    }
    let mut buf = [0u8; 16];
    let mut f =
        std::fs::File::open("/dev/urandom").map_err(io_err("open", Path::new("/dev/urandom")))?;
    std::io::Read::read_exact(&mut f, &mut buf)
        .map_err(io_err("read", Path::new("/dev/urandom")))?;
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let tmp = root.join("engine-id.tmp");
    std::fs::write(&tmp, &id).map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
    Ok(id)
}
