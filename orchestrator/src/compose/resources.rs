//! The project's networks and volumes: created with compose's labels when missing, external
//! ones checked to exist, removed by `down`.

use std::collections::HashMap;

use berth_client::{Client, ClientError};
use bollard_stubs::models::{Ipam, IpamConfig, NetworkCreateRequest, VolumeCreateRequest};
use compose_spec::model::Project;
use serde_json::Value;

use super::convert::{network_name, volume_name};
use super::error::{ComposeError, Context, Result};
use super::labels;
use super::progress::{Kind, Progress};

/// The networks the selected services use (keys of `project.networks`), in file order.
pub fn used_networks(project: &Project, services: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for name in services {
        let Some(s) = project.services.get(name) else {
            continue;
        };
        if s.network_mode.is_some() {
            continue;
        }
        for k in s.networks.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    let mut ordered: Vec<String> = project
        .networks
        .keys()
        .filter(|k| keys.contains(k))
        .cloned()
        .collect();
    for k in keys {
        if !ordered.contains(&k) {
            ordered.push(k);
        }
    }
    ordered
}

fn is_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Daemon { status: 404, .. })
}

/// Creates the project's networks that are missing; checks external ones exist.
pub async fn ensure_networks(
    client: &Client,
    project: &Project,
    keys: &[String],
    progress: &Progress,
) -> Result<()> {
    for key in keys {
        let name = network_name(project, key);
        let net = project.networks.get(key);
        let external = net.map(|n| n.external.external).unwrap_or(false);
        match client.network_inspect(&name).await {
            Ok(v) => {
                if !external {
                    check_network_labels(&v, project, key, &name, progress);
                }
                continue;
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e).ctx(|| format!("inspecting network {name}")),
        }
        if external {
            return Err(ComposeError::Invalid(format!(
                "network {name} declared as external, but could not be found"
            )));
        }
        progress.event(Kind::Network, &name, "Creating");
        let mut lbls: HashMap<String, String> = net
            .map(|n| {
                n.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        lbls.insert(labels::PROJECT.into(), project.name.clone());
        lbls.insert(labels::NETWORK.into(), key.clone());
        lbls.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
        let ipam = net.map(|n| Ipam {
            driver: n.ipam.driver.clone(),
            config: Some(
                n.ipam
                    .config
                    .iter()
                    .map(|c| IpamConfig {
                        subnet: c.subnet.clone(),
                        gateway: c.gateway.clone(),
                        ip_range: c.ip_range.clone(),
                        auxiliary_addresses: (!c.aux_addresses.is_empty()).then(|| {
                            c.aux_addresses
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        }),
                    })
                    .collect(),
            ),
            options: (!n.ipam.options.is_empty()).then(|| {
                n.ipam
                    .options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        });
        let req = NetworkCreateRequest {
            name: name.clone(),
            driver: net.and_then(|n| n.driver.clone()),
            internal: net.map(|n| n.internal),
            attachable: net.map(|n| n.attachable),
            enable_ipv4: net.and_then(|n| n.enable_ipv4),
            enable_ipv6: net.and_then(|n| n.enable_ipv6),
            ipam,
            options: net.and_then(|n| {
                (!n.driver_opts.is_empty()).then(|| {
                    n.driver_opts
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
            }),
            labels: Some(lbls),
            ..Default::default()
        };
        match client.network_create(&req).await {
            Ok(_) => progress.event(Kind::Network, &name, "Created"),
            // Another `up` of the same project won the race: fine.
            Err(ClientError::Daemon { status: 409, .. }) => {}
            Err(e) => {
                return Err(e).ctx(|| format!("creating network {name}"));
            }
        }
    }
    Ok(())
}

/// Compose refuses a network of another project under the same name; it only warns when the
/// labels are missing (created by hand).
fn check_network_labels(v: &Value, project: &Project, key: &str, name: &str, p: &Progress) {
    let l = v.get("Labels");
    let label = |k: &str| l.and_then(|l| l.get(k)).and_then(Value::as_str);
    if label(labels::PROJECT) != Some(project.name.as_str()) || label(labels::NETWORK) != Some(key)
    {
        p.warn(&format!(
            "a network with name {name} exists but was not created for project \"{}\".\nSet `external: true` to use an existing network",
            project.name
        ));
    }
}

/// Creates the project's named volumes that are missing; checks external ones exist.
pub async fn ensure_volumes(client: &Client, project: &Project, progress: &Progress) -> Result<()> {
    for (key, vol) in &project.volumes {
        let name = volume_name(project, key).unwrap_or_else(|| format!("{}_{key}", project.name));
        match client.volume_inspect(&name).await {
            Ok(_) => continue,
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e).ctx(|| format!("inspecting volume {name}")),
        }
        if vol.external.external {
            return Err(ComposeError::Invalid(format!(
                "external volume \"{name}\" not found"
            )));
        }
        progress.event(Kind::Volume, &name, "Creating");
        let mut lbls: HashMap<String, String> = vol
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        lbls.insert(labels::PROJECT.into(), project.name.clone());
        lbls.insert(labels::VOLUME.into(), key.clone());
        lbls.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
        let req = VolumeCreateRequest {
            name: Some(name.clone()),
            driver: vol.driver.clone(),
            driver_opts: (!vol.driver_opts.is_empty()).then(|| {
                vol.driver_opts
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
            labels: Some(lbls),
            ..Default::default()
        };
        client
            .volume_create(&req)
            .await
            .ctx(|| format!("creating volume {name}"))?;
        progress.event(Kind::Volume, &name, "Created");
    }
    Ok(())
}

/// Removes the project's networks (those carrying its label; never external ones).
pub async fn remove_networks(client: &Client, project: &str, progress: &Progress) -> Result<()> {
    let filter = labels::project_filter(project, &[]);
    let nets = client
        .networks(Some(&filter))
        .await
        .ctx(|| format!("listing the networks of project {project}"))?;
    for n in nets {
        let Some(name) = n.get("Name").and_then(Value::as_str) else {
            continue;
        };
        progress.event(Kind::Network, name, "Removing");
        match client.network_remove(name).await {
            Ok(()) => progress.event(Kind::Network, name, "Removed"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                progress.event(Kind::Network, name, "Error");
                return Err(e).ctx(|| format!("removing network {name}"));
            }
        }
    }
    Ok(())
}

/// Removes the project's named volumes (`down -v`).
pub async fn remove_volumes(client: &Client, project: &str, progress: &Progress) -> Result<()> {
    let filter = labels::project_filter(project, &[]);
    let vols = client
        .volumes(Some(&filter))
        .await
        .ctx(|| format!("listing the volumes of project {project}"))?;
    let list = vols
        .get("Volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in list {
        let Some(name) = v.get("Name").and_then(Value::as_str) else {
            continue;
        };
        progress.event(Kind::Volume, name, "Removing");
        match client.volume_remove(name, false).await {
            Ok(()) => progress.event(Kind::Volume, name, "Removed"),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                progress.event(Kind::Volume, name, "Error");
                return Err(e).ctx(|| format!("removing volume {name}"));
            }
        }
    }
    Ok(())
}
