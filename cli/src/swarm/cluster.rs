//! `berth swarm init|join|join-token|leave|update|unlock-key`.

use super::util::s;
use anyhow::{Result, bail};
use berth_client::Client;
use berth_client::swarm::SwarmUpdateFlags;
use bollard_stubs::models::{
    NodeSpecAvailabilityEnum, SwarmInitRequest, SwarmJoinRequest, SwarmSpec,
    SwarmSpecEncryptionConfig, SwarmSpecOrchestration,
};
use clap::{Args, Subcommand};
use std::str::FromStr;

/// `swarm` subcommands.
#[derive(Debug, Subcommand)]
pub enum SwarmCommand {
    /// Initialize a swarm.
    Init(InitArgs),
    /// Join a swarm as a node and/or manager.
    Join(JoinArgs),
    /// Manage join tokens.
    JoinToken(JoinTokenArgs),
    /// Leave the swarm.
    Leave(LeaveArgs),
    /// Update the swarm.
    Update(UpdateArgs),
    /// Manage the unlock key.
    UnlockKey(UnlockKeyArgs),
}

/// `swarm init` flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Advertised address (format: "<ip|interface>[:port]").
    #[arg(long = "advertise-addr")]
    advertise_addr: Option<String>,
    /// Listen address (format: "<ip|interface>[:port]").
    #[arg(long = "listen-addr", default_value = "0.0.0.0:2377")]
    listen_addr: String,
    /// Availability of the node ("active", "pause", "drain").
    #[arg(long, default_value = "active")]
    availability: String,
    /// Task history retention limit.
    #[arg(long = "task-history-limit", default_value_t = 5)]
    task_history_limit: i64,
    /// Enable manager autolocking (requiring an unlock key to start a stopped manager).
    #[arg(long)]
    autolock: bool,
    /// Force create a new cluster from current state.
    #[arg(long = "force-new-cluster")]
    force_new_cluster: bool,
}

/// `swarm join` flags.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Token for entry into the swarm.
    #[arg(long)]
    token: String,
    /// Advertised address (format: "<ip|interface>[:port]").
    #[arg(long = "advertise-addr")]
    advertise_addr: Option<String>,
    /// Listen address (format: "<ip|interface>[:port]").
    #[arg(long = "listen-addr", default_value = "0.0.0.0:2377")]
    listen_addr: String,
    /// Availability of the node ("active", "pause", "drain").
    #[arg(long, default_value = "active")]
    availability: String,
    /// HOST:PORT
    remote: String,
}

/// `swarm join-token` flags.
#[derive(Debug, Args)]
pub struct JoinTokenArgs {
    /// Only display token.
    #[arg(short, long)]
    quiet: bool,
    /// Rotate join token.
    #[arg(long)]
    rotate: bool,
    /// worker or manager
    role: String,
}

/// `swarm leave` flags.
#[derive(Debug, Args)]
pub struct LeaveArgs {
    /// Force this node to leave the swarm, ignoring warnings.
    #[arg(short, long)]
    force: bool,
}

/// `swarm update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Task history retention limit.
    #[arg(long = "task-history-limit")]
    task_history_limit: Option<i64>,
    /// Change manager autolocking setting (true|false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    autolock: Option<bool>,
}

/// `swarm unlock-key` flags.
#[derive(Debug, Args)]
pub struct UnlockKeyArgs {
    /// Only display token.
    #[arg(short, long)]
    quiet: bool,
    /// Rotate unlock key.
    #[arg(long)]
    rotate: bool,
}

/// Runs a `swarm` subcommand.
pub async fn run(c: &Client, cmd: SwarmCommand) -> Result<()> {
    match cmd {
        SwarmCommand::Init(a) => init(c, a).await,
        SwarmCommand::Join(a) => join(c, a).await,
        SwarmCommand::JoinToken(a) => join_token(c, a).await,
        SwarmCommand::Leave(a) => {
            c.swarm_leave(a.force).await?;
            println!("Node left the swarm.");
            Ok(())
        }
        SwarmCommand::Update(a) => update(c, a).await,
        SwarmCommand::UnlockKey(a) => unlock_key(c, a).await,
    }
}

fn availability(a: &str) -> Result<NodeSpecAvailabilityEnum> {
    match NodeSpecAvailabilityEnum::from_str(&a.to_lowercase()) {
        Ok(v) if v != NodeSpecAvailabilityEnum::EMPTY => Ok(v),
        _ => bail!("invalid availability {a:?}: must be active, pause or drain"),
    }
}

/// Sets this node's availability when it is not the default.
async fn set_availability(c: &Client, node_id: &str, a: NodeSpecAvailabilityEnum) -> Result<()> {
    if a == NodeSpecAvailabilityEnum::ACTIVE {
        return Ok(());
    }
    let node = c.node_inspect(node_id).await?;
    let mut spec: bollard_stubs::models::NodeSpec =
        serde_json::from_value(node["Spec"].clone()).unwrap_or_default();
    spec.availability = Some(a);
    c.node_update(node_id, super::util::version(&node), &spec)
        .await?;
    Ok(())
}

async fn init(c: &Client, a: InitArgs) -> Result<()> {
    let avail = availability(&a.availability)?;
    let req = SwarmInitRequest {
        listen_addr: Some(a.listen_addr),
        advertise_addr: a.advertise_addr,
        force_new_cluster: Some(a.force_new_cluster),
        spec: Some(SwarmSpec {
            orchestration: Some(SwarmSpecOrchestration {
                task_history_retention_limit: Some(a.task_history_limit),
            }),
            encryption_config: Some(SwarmSpecEncryptionConfig {
                auto_lock_managers: Some(a.autolock),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node_id = c.swarm_init(&req).await?;
    set_availability(c, &node_id, avail).await?;
    println!("Swarm initialized: current node ({node_id}) is now a manager.\n");
    print_join_command(c, &node_id, true, false).await?;
    print!(
        "To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.\n\n"
    );
    if a.autolock {
        let key = c.swarm_unlock_key().await?;
        print_unlock_key(&s(&key, "/UnlockKey"));
    }
    Ok(())
}

async fn print_join_command(c: &Client, node_id: &str, worker: bool, manager: bool) -> Result<()> {
    let sw = c.swarm_inspect().await?;
    let node = c.node_inspect(node_id).await?;
    let addr = s(&node, "/ManagerStatus/Addr");
    for (want, role, key) in [
        (worker, "worker", "/JoinTokens/Worker"),
        (manager, "manager", "/JoinTokens/Manager"),
    ] {
        if want {
            print!(
                "To add a {role} to this swarm, run the following command:\n\n    docker swarm join --token {} {addr}\n\n",
                s(&sw, key)
            );
        }
    }
    Ok(())
}

async fn join(c: &Client, a: JoinArgs) -> Result<()> {
    let avail = availability(&a.availability)?;
    let req = SwarmJoinRequest {
        listen_addr: Some(a.listen_addr),
        advertise_addr: a.advertise_addr,
        remote_addrs: Some(vec![a.remote]),
        join_token: Some(a.token),
        ..Default::default()
    };
    c.swarm_join(&req).await?;
    let info = c.info().await?;
    let node_id = s(&info, "/Swarm/NodeID");
    if !node_id.is_empty() && info.pointer("/Swarm/ControlAvailable") == Some(&true.into()) {
        set_availability(c, &node_id, avail).await?;
        println!("This node joined a swarm as a manager.");
    } else {
        println!("This node joined a swarm as a worker.");
    }
    Ok(())
}

async fn join_token(c: &Client, a: JoinTokenArgs) -> Result<()> {
    let (worker, manager) = match a.role.as_str() {
        "worker" => (true, false),
        "manager" => (false, true),
        r => bail!("unknown role {r}"),
    };
    if a.rotate {
        let sw = c.swarm_inspect().await?;
        let spec: SwarmSpec = serde_json::from_value(sw["Spec"].clone()).unwrap_or_default();
        let flags = SwarmUpdateFlags {
            rotate_worker_token: worker,
            rotate_manager_token: manager,
            ..Default::default()
        };
        c.swarm_update(super::util::version(&sw), &spec, flags)
            .await?;
        if !a.quiet {
            print!("Successfully rotated {} join token.\n\n", a.role);
        }
    }
    let sw = c.swarm_inspect().await?;
    if a.quiet {
        let key = if worker {
            "/JoinTokens/Worker"
        } else {
            "/JoinTokens/Manager"
        };
        println!("{}", s(&sw, key));
        return Ok(());
    }
    let info = c.info().await?;
    print_join_command(c, &s(&info, "/Swarm/NodeID"), worker, manager).await
}

async fn update(c: &Client, a: UpdateArgs) -> Result<()> {
    let sw = c.swarm_inspect().await?;
    let mut spec: SwarmSpec = serde_json::from_value(sw["Spec"].clone()).unwrap_or_default();
    if let Some(l) = a.task_history_limit {
        spec.orchestration
            .get_or_insert_with(Default::default)
            .task_history_retention_limit = Some(l);
    }
    if let Some(al) = a.autolock {
        spec.encryption_config
            .get_or_insert_with(Default::default)
            .auto_lock_managers = Some(al);
    }
    c.swarm_update(
        super::util::version(&sw),
        &spec,
        SwarmUpdateFlags::default(),
    )
    .await?;
    println!("Swarm updated.");
    if a.autolock == Some(true) {
        let key = c.swarm_unlock_key().await?;
        print_unlock_key(&s(&key, "/UnlockKey"));
    }
    Ok(())
}

fn print_unlock_key(key: &str) {
    if key.is_empty() {
        return;
    }
    print!(
        "To unlock a swarm manager after it restarts, run the `docker swarm unlock`\ncommand and provide the following key:\n\n    {key}\n\nPlease remember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n"
    );
}

async fn unlock_key(c: &Client, a: UnlockKeyArgs) -> Result<()> {
    if a.rotate {
        let sw = c.swarm_inspect().await?;
        let spec: SwarmSpec = serde_json::from_value(sw["Spec"].clone()).unwrap_or_default();
        let flags = SwarmUpdateFlags {
            rotate_manager_unlock_key: true,
            ..Default::default()
        };
        c.swarm_update(super::util::version(&sw), &spec, flags)
            .await?;
        if !a.quiet {
            print!("Successfully rotated manager unlock key.\n\n");
        }
    }
    let key = s(&c.swarm_unlock_key().await?, "/UnlockKey");
    if key.is_empty() {
        bail!("no unlock key is set");
    }
    if a.quiet {
        println!("{key}");
    } else {
        print_unlock_key(&key);
    }
    Ok(())
}
