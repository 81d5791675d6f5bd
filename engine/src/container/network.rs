//! The network side of containers: which networks a record asks for, the sandbox made at
//! start, `network connect`/`disconnect`, and `NetworkSettings` for inspect and list.

use super::{ContainerError, ContainerService, record::ContainerRecord};
use crate::Result;
use crate::network::{EndpointRecord, EndpointRequest, NetworkError, SandboxRequest};
use bollard_stubs::models::{
    EndpointIpamConfig, EndpointSettings, NetworkSettings, NetworkingConfig, PortBinding, PortMap,
    PortSummary, PortSummaryTypeEnum,
};
use std::collections::HashMap;

/// The network a `NetworkMode` names, or `None` for `none`, `host` and `container:<id>`.
pub(super) fn primary_network(mode: Option<&str>) -> Option<String> {
    match mode.unwrap_or("") {
        "" | "default" | "bridge" => Some("bridge".into()),
        "none" | "host" => None,
        m if m.starts_with("container:") => None,
        m => Some(m.to_string()),
    }
}

impl ContainerService {
    /// Every network of a record with its endpoint config (primary first), as full IDs.
    fn wanted_networks(&self, rec: &ContainerRecord) -> Result<Vec<(String, EndpointSettings)>> {
        let nets = &self.inner.networks;
        let Some(primary) = primary_network(rec.host_config.network_mode.as_deref()) else {
            return Ok(Vec::new());
        };
        let cfgs = rec
            .networking
            .as_ref()
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        let pid = nets.resolve(&primary)?;
        let mut out = vec![(pid.clone(), EndpointSettings::default())];
        let mut keys: Vec<&String> = cfgs.keys().collect();
        keys.sort();
        for k in keys {
            // Clients key the default network's endpoint config as `default`.
            let name = primary_network(Some(k)).unwrap_or_else(|| k.clone());
            let id = nets.resolve(&name)?;
            let cfg = cfgs.get(k).cloned().unwrap_or_default();
            match out.iter_mut().find(|(i, _)| *i == id) {
                Some(slot) => slot.1 = cfg,
                None => out.push((id, cfg)),
            }
        }
        Ok(out)
    }

    /// Checks at create that every network named exists.
    ///
    /// Said as 400, not 404: the docker CLI answers any 404 from create by pulling the image
    /// (dockerd only notices at start, leaving a created container behind).
    pub(super) fn check_networks(&self, rec: &ContainerRecord) -> Result<()> {
        match self.wanted_networks(rec) {
            Ok(_) => Ok(()),
            Err(crate::Error::Network(NetworkError::NotFound(n))) => {
                Err(ContainerError::Invalid(format!("network {n} not found")).into())
            }
            Err(e) => Err(e),
        }
    }

    /// What `setup_sandbox` needs for `rec`, or `None` when it has no network of its own.
    pub(super) fn sandbox_request(&self, rec: &ContainerRecord) -> Result<Option<SandboxRequest>> {
        let wanted = self.wanted_networks(rec)?;
        if wanted.is_empty() {
            return Ok(None);
        }
        let endpoints = wanted
            .into_iter()
            .map(|(id, cfg)| endpoint_request(id, &cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(SandboxRequest {
            container_id: rec.id.clone(),
            name: rec.name.clone(),
            hostname: rec.config.hostname.clone().unwrap_or_default(),
            endpoints,
            port_bindings: rec.host_config.port_bindings.clone(),
            publish_all: rec.host_config.publish_all_ports == Some(true),
            exposed: rec.config.exposed_ports.clone().unwrap_or_default(),
        }))
    }

    /// `POST /networks/{id}/connect`: recorded always, plugged in now when running.
    pub async fn network_connect(
        &self,
        container: &str,
        network: &str,
        cfg: EndpointSettings,
    ) -> Result<()> {
        let id = self.resolve(container)?;
        let net = self.inner.networks.get(network)?;
        let rec = self.get(&id)?;
        if primary_network(rec.host_config.network_mode.as_deref()).is_none() {
            return Err(ContainerError::Invalid(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            )
            .into());
        }
        if !net.bridged() {
            return Err(ContainerError::Invalid(format!(
                "container cannot be disconnected from host network or connected to host network ({})",
                net.name
            ))
            .into());
        }
        if self
            .wanted_networks(&rec)?
            .iter()
            .any(|(n, _)| *n == net.id)
        {
            return Err(NetworkError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            ))
            .into());
        }
        let req = endpoint_request(net.id.clone(), &cfg)?;
        let live = self.live(&id);
        let _op = live.op.lock().await;
        let rec = self.get(&id)?;
        if rec.state.is_running() {
            let svc = self.inner.networks.clone();
            let (c, name, host) = (
                id.clone(),
                rec.name.clone(),
                rec.config.hostname.clone().unwrap_or_default(),
            );
            tokio::task::spawn_blocking(move || svc.connect_running(&c, &name, &host, &req))
                .await
                .map_err(|e| ContainerError::Internal(e.to_string()))??;
        }
        self.modify(&id, |r| {
            r.networking
                .get_or_insert_with(NetworkingConfig::default)
                .endpoints_config
                .get_or_insert_with(HashMap::new)
                .insert(net.name.clone(), cfg);
        })?;
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(
        &self,
        container: &str,
        network: &str,
        force: bool,
    ) -> Result<()> {
        let _ = force;
        let id = self.resolve(container)?;
        let net = self.inner.networks.get(network)?;
        let rec = self.get(&id)?;
        let wanted = self.wanted_networks(&rec)?;
        if !wanted.iter().any(|(n, _)| *n == net.id) {
            return Err(NetworkError::Forbidden(format!(
                "container {id} is not connected to network {}",
                net.name
            ))
            .into());
        }
        let live = self.live(&id);
        let _op = live.op.lock().await;
        let svc = self.inner.networks.clone();
        let (c, n) = (id.clone(), net.id.clone());
        tokio::task::spawn_blocking(move || svc.disconnect_running(&c, &n))
            .await
            .map_err(|e| ContainerError::Internal(e.to_string()))??;
        let nets = self.inner.networks.clone();
        let next_primary = wanted
            .iter()
            .find(|(n, _)| *n != net.id)
            .and_then(|(n, _)| nets.get(n).ok())
            .map(|r| r.name);
        self.modify(&id, |r| {
            if let Some(m) = r
                .networking
                .as_mut()
                .and_then(|n| n.endpoints_config.as_mut())
            {
                m.retain(|k, _| nets.resolve(k).ok().as_deref() != Some(net.id.as_str()));
            }
            let primary = primary_network(r.host_config.network_mode.as_deref())
                .and_then(|p| nets.resolve(&p).ok());
            if primary.as_deref() == Some(net.id.as_str()) {
                // The container keeps its other networks; with none left it has loopback only.
                r.host_config.network_mode = Some(next_primary.unwrap_or_else(|| "none".into()));
            }
        })?;
        Ok(())
    }

    /// `NetworkSettings` of inspect: live endpoints while running, the configuration else.
    pub(super) fn network_settings(&self, rec: &ContainerRecord) -> NetworkSettings {
        let nets = &self.inner.networks;
        let eps = nets.endpoints_of(&rec.id).unwrap_or_default();
        let sb = nets.sandbox_of(&rec.id).ok().flatten();
        let mut networks = HashMap::new();
        match self.wanted_networks(rec) {
            Ok(w) if !w.is_empty() => {
                for (nid, cfg) in w {
                    let name = nets.get(&nid).map(|n| n.name).unwrap_or(nid.clone());
                    let e = eps.iter().find(|e| e.network_id == nid);
                    networks.insert(name, endpoint_settings(&nid, cfg, e));
                }
            }
            _ => {
                let mode = rec
                    .host_config
                    .network_mode
                    .clone()
                    .unwrap_or_else(|| "bridge".into());
                if !mode.starts_with("container:") {
                    networks.insert(mode, EndpointSettings::default());
                }
            }
        }
        let mut ports: PortMap = HashMap::new();
        if primary_network(rec.host_config.network_mode.as_deref()).is_some() {
            for p in rec.config.exposed_ports.iter().flatten() {
                ports.insert(p.clone(), None);
            }
            for p in sb.iter().flat_map(|s| s.ports.iter()) {
                ports
                    .entry(format!("{}/{}", p.port, p.proto))
                    .or_insert(None)
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding {
                        host_ip: Some(p.host_ip.to_string()),
                        host_port: Some(p.host_port.to_string()),
                    });
            }
        }
        NetworkSettings {
            sandbox_id: Some(sb.as_ref().map(|_| rec.id.clone()).unwrap_or_default()),
            sandbox_key: Some(
                sb.map(|s| s.netns.to_string_lossy().to_string())
                    .unwrap_or_default(),
            ),
            ports: Some(ports),
            networks: Some(networks),
        }
    }

    /// `Ports` of the container list.
    pub(super) fn port_summaries(&self, rec: &ContainerRecord) -> Vec<PortSummary> {
        let sb = self.inner.networks.sandbox_of(&rec.id).ok().flatten();
        let mut out: Vec<PortSummary> = sb
            .iter()
            .flat_map(|s| s.ports.iter())
            .map(|p| PortSummary {
                ip: Some(p.host_ip.to_string()),
                private_port: p.port,
                public_port: Some(p.host_port),
                typ: Some(proto_enum(&p.proto)),
            })
            .collect();
        for p in rec.config.exposed_ports.iter().flatten() {
            let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            if !out.iter().any(|s| s.private_port == port) {
                out.push(PortSummary {
                    ip: None,
                    private_port: port,
                    public_port: None,
                    typ: Some(proto_enum(proto)),
                });
            }
        }
        out
    }
}

fn proto_enum(p: &str) -> PortSummaryTypeEnum {
    match p {
        "udp" => PortSummaryTypeEnum::UDP,
        "sctp" => PortSummaryTypeEnum::SCTP,
        _ => PortSummaryTypeEnum::TCP,
    }
}

fn endpoint_request(network: String, cfg: &EndpointSettings) -> Result<EndpointRequest> {
    let ipv4 = match cfg
        .ipam_config
        .as_ref()
        .and_then(|c| c.ipv4_address.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(
            s.parse()
                .map_err(|_| ContainerError::Invalid(format!("invalid IPv4 address: {s}")))?,
        ),
        None => None,
    };
    Ok(EndpointRequest {
        network,
        aliases: cfg.aliases.clone().unwrap_or_default(),
        ipv4,
    })
}

fn endpoint_settings(
    nid: &str,
    cfg: EndpointSettings,
    e: Option<&EndpointRecord>,
) -> EndpointSettings {
    let mut s = EndpointSettings {
        ipam_config: cfg
            .ipam_config
            .clone()
            .or(Some(EndpointIpamConfig::default()))
            .filter(|c| c.ipv4_address.is_some()),
        links: cfg.links.clone(),
        aliases: cfg.aliases.clone(),
        driver_opts: cfg.driver_opts.clone(),
        network_id: Some(nid.to_string()),
        endpoint_id: Some(String::new()),
        gateway: Some(String::new()),
        ip_address: Some(String::new()),
        ip_prefix_len: Some(0),
        mac_address: Some(String::new()),
        ipv6_gateway: Some(String::new()),
        global_ipv6_address: Some(String::new()),
        global_ipv6_prefix_len: Some(0),
        dns_names: None,
        ..Default::default()
    };
    if let Some(e) = e {
        s.endpoint_id = Some(e.endpoint_id.clone());
        s.gateway = Some(e.gateway.map(|g| g.to_string()).unwrap_or_default());
        s.ip_address = Some(e.ip.to_string());
        s.ip_prefix_len = Some(e.prefix as i64);
        s.mac_address = Some(e.mac.clone());
        s.dns_names = Some(e.dns_names.clone());
    }
    s
}
