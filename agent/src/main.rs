//! `berthd`: the Berth node daemon.

use anyhow::{Context, Result, bail};
use berth_agent::server::{Listen, Listeners, group_id};
use berth_agent::{Config, Daemon};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

/// The Berth engine daemon: serves the Docker Engine API.
#[derive(Debug, Parser)]
#[command(name = "berthd", version)]
struct Args {
    /// Root of persistent state.
    #[arg(long, default_value = "/var/lib/berth")]
    root: PathBuf,
    /// Root of runtime state (sockets, pid file).
    #[arg(long = "exec-root", default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Where to listen: unix:///path or tcp://ADDR:PORT (repeatable); default
    /// unix://<exec-root>/berth.sock.
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Group owning the UNIX sockets (name or ID).
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Serve TLS on TCP listeners.
    #[arg(long)]
    tls: bool,
    /// Serve TLS and require client certificates signed by --tlscacert.
    #[arg(long)]
    tlsverify: bool,
    /// CA certificate that client certificates must chain to.
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// Server certificate.
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// Server key.
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
    /// A registry reached over plain HTTP (repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .with_context(|| format!("invalid --log-level {:?}", args.log_level))?,
        )
        .with_writer(std::io::stderr)
        .init();

    let hosts = if args.hosts.is_empty() {
        vec![Listen::Unix(args.exec_root.join("berth.sock"))]
    } else {
        args.hosts
            .iter()
            .map(|h| Listen::parse(h))
            .collect::<Result<Vec<_>, _>>()?
    };
    let tls = if args.tls || args.tlsverify {
        let (Some(cert), Some(key)) = (&args.tlscert, &args.tlskey) else {
            bail!("--tls and --tlsverify need --tlscert and --tlskey");
        };
        let ca = if args.tlsverify {
            Some(
                args.tlscacert
                    .as_deref()
                    .context("--tlsverify needs --tlscacert")?,
            )
        } else {
            None
        };
        Some(berth_agent::tls::server_config(cert, key, ca)?)
    } else {
        None
    };
    let gid = match &args.group {
        Some(g) => Some(group_id(g).with_context(|| format!("unknown group {g:?}"))?),
        None => None,
    };

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let config = Config {
        root: args.root.clone(),
        exec_root: args.exec_root.clone(),
        insecure_registries: args.insecure_registries.clone(),
        ignore_docker_config: false,
    };
    let daemon = Arc::new(Daemon::open(config, shutdown_rx.clone()).await?);
    let listeners = Listeners::bind(&hosts, tls, gid).await?;
    for h in &hosts {
        tracing::info!(listen = ?h, "API listening");
    }
    let pid_file = args.exec_root.join("berthd.pid");
    std::fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("write {}", pid_file.display()))?;
    daemon.events.publish("daemon", "start", &daemon.id, &[]);
    tokio::spawn(forward_container_events(daemon.clone()));

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let server = tokio::spawn(listeners.serve(daemon.clone(), shutdown_rx));
    // The swarm worker drives this daemon through its own API, so it needs a UNIX socket.
    if let Some(sock) = hosts.iter().find_map(|h| match h {
        Listen::Unix(p) => Some(p.clone()),
        Listen::Tcp(_) => None,
    }) {
        daemon.swarm.resume(sock).await;
    }
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    daemon.swarm.shutdown().await;
    let _ = shutdown_tx.send(true);
    let _ = server.await;
    // Live-restore: containers keep running; only the monitors stop.
    daemon.containers.shutdown().await;
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("stopped");
    Ok(())
}

/// Republishes the engine's container events on the API's event bus.
async fn forward_container_events(daemon: Arc<Daemon>) {
    let mut rx = daemon.containers.events();
    loop {
        match rx.recv().await {
            Ok(ev) => {
                let attrs: Vec<(&str, &str)> = ev
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                daemon
                    .events
                    .publish("container", &ev.action, &ev.id, &attrs);
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "event forwarding fell behind");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
}
