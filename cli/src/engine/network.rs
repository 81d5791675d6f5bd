//! `berth network ...`: create, ls, inspect, rm, connect, disconnect, prune, with docker's
//! flags and output.

use super::container::confirm;
use super::format::{Row, print_rows, render_value};
use super::image::filters_json;
use anyhow::{Context, Result, bail};
use berth_client::Client;
use bollard_stubs::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest,
};
use clap::{Args, Subcommand};
use std::collections::HashMap;

/// `network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
}

/// Runs a `network` subcommand.
pub async fn network(c: &Client, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create(a) => create(c, a).await,
        NetworkCommand::Ls(a) => ls(c, a).await,
        NetworkCommand::Inspect(a) => inspect(c, a).await,
        NetworkCommand::Rm(a) => rm(c, a).await,
        NetworkCommand::Connect(a) => connect(c, a).await,
        NetworkCommand::Disconnect(a) => disconnect(c, a).await,
        NetworkCommand::Prune(a) => prune(c, a).await,
    }
}

/// `network create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Enable manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    /// Enable or disable IPv6 networking.
    #[arg(long)]
    ipv6: bool,
    /// Set metadata on a network.
    #[arg(long = "label")]
    label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    gateway: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    ip_range: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver.
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// IP Address Management Driver.
    #[arg(long = "ipam-driver", default_value = "default")]
    ipam_driver: String,
    /// Set IPAM driver specific options.
    #[arg(long = "ipam-opt")]
    ipam_opt: Vec<String>,
    /// Control the network's scope.
    #[arg(long)]
    scope: Option<String>,
    /// NETWORK
    name: String,
}

/// `key=value` flags into a map; a bare `key` maps to an empty value, as docker's opts do.
pub(super) fn key_values(flags: &[String]) -> HashMap<String, String> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (f.clone(), String::new()),
        })
        .collect()
}

/// Pairs `--gateway`, `--ip-range` and `--aux-address` with the `--subnet` that contains
/// them, as docker's CLI does; one of them without a subnet is an error.
fn ipam_configs(a: &CreateArgs) -> Result<Vec<IpamConfig>> {
    let mut cfgs: Vec<IpamConfig> = a
        .subnet
        .iter()
        .map(|s| IpamConfig {
            subnet: Some(s.clone()),
            ..Default::default()
        })
        .collect();
    let owner = |cfgs: &mut Vec<IpamConfig>, addr: &str, what: &str| -> Result<usize> {
        let ip = addr.split('/').next().unwrap_or(addr);
        let matching: Vec<usize> = cfgs
            .iter()
            .enumerate()
            .filter(|(_, c)| c.subnet.as_deref().is_some_and(|s| contains(s, ip)))
            .map(|(i, _)| i)
            .collect();
        match matching.as_slice() {
            [i] => Ok(*i),
            [] if cfgs.len() == 1 => Ok(0),
            [] => bail!("no matching subnet for {what} {addr}"),
            _ => bail!("multiple overlapping subnet configuration is not supported"),
        }
    };
    for r in &a.ip_range {
        let i = owner(&mut cfgs, r, "range")?;
        if cfgs[i].ip_range.is_some() {
            bail!("cannot configure multiple ranges ({r}) on the same subnet");
        }
        cfgs[i].ip_range = Some(r.clone());
    }
    for g in &a.gateway {
        if cfgs.is_empty() {
            bail!("every ip-range or gateway must have a corresponding subnet");
        }
        let i = owner(&mut cfgs, g, "gateway")?;
        if cfgs[i].gateway.is_some() {
            bail!("cannot configure multiple gateways ({g}) for the same subnet");
        }
        cfgs[i].gateway = Some(g.clone());
    }
    for aux in &a.aux_address {
        let (name, addr) = aux
            .split_once('=')
            .with_context(|| format!("invalid aux-address {aux}: expected name=ip"))?;
        let i = owner(&mut cfgs, addr, "auxiliary address")?;
        cfgs[i]
            .auxiliary_addresses
            .get_or_insert_with(HashMap::new)
            .insert(name.to_string(), addr.to_string());
    }
    if cfgs.is_empty() && !a.ip_range.is_empty() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    Ok(cfgs)
}

/// Whether IPv4 `ip` lies in `cidr`; non-IPv4 input never matches.
fn contains(cidr: &str, ip: &str) -> bool {
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(ip), Ok(len)) = (
        net.parse::<std::net::Ipv4Addr>(),
        ip.parse::<std::net::Ipv4Addr>(),
        len.parse::<u32>(),
    ) else {
        return false;
    };
    if len > 32 {
        return false;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(net) & mask == u32::from(ip) & mask
}

async fn create(c: &Client, a: CreateArgs) -> Result<()> {
    let config = ipam_configs(&a)?;
    let req = NetworkCreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        scope: a.scope.clone(),
        internal: Some(a.internal),
        attachable: Some(a.attachable),
        enable_ipv6: a.ipv6.then_some(true),
        ipam: Some(Ipam {
            driver: Some(a.ipam_driver.clone()),
            config: Some(config),
            options: Some(key_values(&a.ipam_opt)),
        }),
        options: Some(key_values(&a.opt)),
        labels: Some(key_values(&a.label)),
        ..Default::default()
    };
    let r = c.network_create(&req).await?;
    if !r.warning.is_empty() {
        eprintln!("WARNING: {}", r.warning);
    }
    println!("{}", r.id);
    Ok(())
}

/// `network ls` flags.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge").
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Only display network IDs.
    #[arg(short, long)]
    quiet: bool,
}

async fn ls(c: &Client, a: LsArgs) -> Result<()> {
    let f = filters_json(&a.filter, &[])?;
    let mut list = c.networks(f.as_deref()).await?;
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    list.sort_by_key(|n| s(n, "Name"));
    let id = |v: &serde_json::Value| {
        let id = s(v, "Id");
        if a.no_trunc {
            id
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for n in &list {
            println!("{}", id(n));
        }
        return Ok(());
    }
    let rows: Vec<Row> = list
        .iter()
        .map(|n| {
            let labels = n["Labels"]
                .as_object()
                .map(|m| {
                    let mut l: Vec<String> = m
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect();
                    l.sort();
                    l.join(",")
                })
                .unwrap_or_default();
            Row::from([
                ("ID", id(n)),
                ("Name", s(n, "Name")),
                ("Driver", s(n, "Driver")),
                ("Scope", s(n, "Scope")),
                (
                    "IPv6",
                    n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                ),
                (
                    "Internal",
                    n["Internal"].as_bool().unwrap_or(false).to_string(),
                ),
                ("Labels", labels),
                ("CreatedAt", s(n, "Created")),
            ])
        })
        .collect();
    print_rows(
        &rows,
        &[
            ("NETWORK ID", "ID"),
            ("NAME", "Name"),
            ("DRIVER", "Driver"),
            ("SCOPE", "Scope"),
        ],
        a.format.as_deref(),
    );
    Ok(())
}

/// `network inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    format: Option<String>,
    /// Verbose output for diagnostics.
    #[arg(short, long)]
    verbose: bool,
    /// NETWORK...
    #[arg(required = true)]
    names: Vec<String>,
}

async fn inspect(c: &Client, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut failed = None;
    for n in &a.names {
        match c.network_inspect(n).await {
            Ok(v) => out.push(v),
            Err(e) if e.is_not_found() => failed = Some(format!("Error: No such network: {n}")),
            Err(e) => return Err(e.into()),
        }
    }
    match &a.format {
        Some(f) => {
            for v in &out {
                println!("{}", render_value(f, v));
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    if let Some(e) = failed {
        bail!(e);
    }
    Ok(())
}

/// `network rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    force: bool,
    /// NETWORK...
    #[arg(required = true)]
    names: Vec<String>,
}

async fn rm(c: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for n in &a.names {
        match c.network_remove(n).await {
            Ok(()) => println!("{n}"),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!(errors.join("\n"));
    }
    Ok(())
}

/// `network connect` flags.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long = "alias")]
    alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104").
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33").
    #[arg(long)]
    ip6: Option<String>,
    /// Add link to another container.
    #[arg(long = "link")]
    link: Vec<String>,
    /// Add a link-local address for the container.
    #[arg(long = "link-local-ip")]
    link_local_ip: Vec<String>,
    /// driver options for the network.
    #[arg(long = "driver-opt")]
    driver_opt: Vec<String>,
    /// NETWORK
    network: String,
    /// CONTAINER
    container: String,
}

async fn connect(c: &Client, a: ConnectArgs) -> Result<()> {
    let ipam = (a.ip.is_some() || a.ip6.is_some() || !a.link_local_ip.is_empty()).then(|| {
        EndpointIpamConfig {
            ipv4_address: a.ip.clone(),
            ipv6_address: a.ip6.clone(),
            link_local_ips: (!a.link_local_ip.is_empty()).then(|| a.link_local_ip.clone()),
        }
    });
    let cfg = EndpointSettings {
        ipam_config: ipam,
        links: (!a.link.is_empty()).then(|| a.link.clone()),
        aliases: (!a.alias.is_empty()).then(|| a.alias.clone()),
        driver_opts: (!a.driver_opt.is_empty()).then(|| key_values(&a.driver_opt)),
        ..Default::default()
    };
    let req = NetworkConnectRequest {
        container: a.container.clone(),
        endpoint_config: Some(cfg),
    };
    c.network_connect(&a.network, &req).await?;
    Ok(())
}

/// `network disconnect` flags.
#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    force: bool,
    /// NETWORK
    network: String,
    /// CONTAINER
    container: String,
}

async fn disconnect(c: &Client, a: DisconnectArgs) -> Result<()> {
    let req = NetworkDisconnectRequest {
        container: a.container.clone(),
        force: Some(a.force),
    };
    c.network_disconnect(&a.network, &req).await?;
    Ok(())
}

/// `network prune` flags.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long = "filter")]
    filter: Vec<String>,
}

async fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(());
    }
    let f = filters_json(&a.filter, &[])?;
    let r = c.networks_prune(f.as_deref()).await?;
    let names = r.networks_deleted.unwrap_or_default();
    if !names.is_empty() {
        println!("Deleted Networks:");
        for n in names {
            println!("{n}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_membership() {
        assert!(contains("10.1.0.0/16", "10.1.2.3"));
        assert!(!contains("10.1.0.0/16", "10.2.0.1"));
        assert!(contains("0.0.0.0/0", "1.2.3.4"));
        assert!(!contains("fd00::/64", "fd00::1"));
    }
}
