//! Overlay networks in the cluster store: each swarm network's subnet and VXLAN ID, the address
//! of every task on it and each service's virtual IP. All of it is allocated while commands
//! apply, from the state alone, so every replica allocates the same addresses; and each node
//! is told, per network it uses, where the other tasks are and what the services resolve to.

pub mod subnet;

use crate::swarm::state::{ClusterState, observed_state, task_state_rank};
use bollard_stubs::models::{
    EndpointSpecModeEnum, Ipam, IpamConfig, Network, NodeState, ServiceEndpoint,
    ServiceEndpointVirtualIps, Task, TaskState,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
pub use subnet::Subnet;

/// The driver option carrying a network's VXLAN ID, as Docker names it.
pub const VNI_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// The first VXLAN ID handed out (Docker's ingress has 4096).
const FIRST_VNI: u32 = 4097;
/// The UDP port of the data plane (VXLAN), as Docker's.
pub const DATA_PORT: u16 = 4789;
/// The routing mesh's network, made when a service first publishes an ingress-mode port.
pub const INGRESS: &str = "ingress";
const INGRESS_VNI: u32 = 4096;

/// Addresses handed out on overlay networks; part of the replicated state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocations {
    /// Task ID -> network ID -> the task's address there.
    pub tasks: BTreeMap<String, BTreeMap<String, Ipv4Addr>>,
    /// Service ID -> network ID -> the service's virtual IP there.
    pub vips: BTreeMap<String, BTreeMap<String, Ipv4Addr>>,
    /// Node ID -> the node's own address on the ingress network (the routing mesh's source
    /// address, so answers come back through the node that took the connection).
    #[serde(default)]
    pub nodes: BTreeMap<String, Ipv4Addr>,
}

/// A port the routing mesh publishes on every node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MeshPort {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The port on every node.
    pub published: u16,
    /// The port in the tasks.
    pub target: u16,
}

/// The ingress-mode ports a service spec publishes.
pub fn mesh_ports(spec: Option<&bollard_stubs::models::ServiceSpec>) -> Vec<MeshPort> {
    use bollard_stubs::models::{
        EndpointPortConfigProtocolEnum as P, EndpointPortConfigPublishModeEnum as M,
    };
    spec.and_then(|s| s.endpoint_spec.as_ref())
        .and_then(|e| e.ports.as_ref())
        .into_iter()
        .flatten()
        .filter(|p| p.publish_mode != Some(M::HOST))
        .filter_map(|p| {
            let published = u16::try_from(p.published_port?).ok().filter(|n| *n > 0)?;
            let target = u16::try_from(p.target_port?).ok().filter(|n| *n > 0)?;
            let protocol = match p.protocol {
                Some(P::UDP) => "udp",
                Some(P::SCTP) => return None,
                _ => "tcp",
            };
            Some(MeshPort {
                protocol: protocol.into(),
                published,
                target,
            })
        })
        .collect()
}

/// What a network's record says about its overlay: subnet, gateway and VXLAN ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayParams {
    /// The subnet.
    pub subnet: Subnet,
    /// The gateway (every node's bridge carries it, never leaving the node).
    pub gateway: Ipv4Addr,
    /// The VXLAN network identifier.
    pub vni: u32,
}

impl OverlayParams {
    /// The parameters of a network whose create was applied.
    pub fn of(n: &Network) -> Option<Self> {
        let cfg = n.ipam.as_ref()?.config.as_ref()?.first()?;
        let subnet = Subnet::parse(cfg.subnet.as_deref()?).ok()?;
        let gateway = cfg.gateway.as_deref()?.parse().ok()?;
        let vni = n.options.as_ref()?.get(VNI_OPTION)?.parse().ok()?;
        Some(Self {
            subnet,
            gateway,
            vni,
        })
    }
}

/// A task that may hold its addresses: not finished, and not dropped before it reached a
/// node that still exists.
fn live(state: &ClusterState, t: &Task) -> bool {
    if task_state_rank(observed_state(t)) >= task_state_rank(TaskState::COMPLETE) {
        return false;
    }
    match t.node_id.as_deref() {
        Some(node) => state.nodes.contains_key(node),
        None => t.desired_state.is_none_or(|d| d == TaskState::RUNNING),
    }
}

/// The network IDs a task attaches to: its spec's, plus the ingress network when its service
/// publishes ingress-mode ports.
fn task_networks<'a>(state: &'a ClusterState, t: &'a Task) -> Vec<&'a str> {
    let mut v: Vec<&str> = t
        .spec
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|n| n.target.as_deref())
        .collect();
    if let Some(ingress) = state.ingress_id()
        && t.service_id
            .as_deref()
            .and_then(|id| state.services.get(id))
            .is_some_and(|r| !mesh_ports(r.service.spec.as_ref()).is_empty())
    {
        v.push(ingress);
    }
    v
}

impl ClusterState {
    /// The subnets of the swarm networks.
    fn overlay_subnets(&self) -> Vec<Subnet> {
        self.networks
            .values()
            .filter_map(OverlayParams::of)
            .map(|p| p.subnet)
            .collect()
    }

    /// The lowest VXLAN ID from `from` up that no network has.
    fn free_vni(&self, from: u32) -> u32 {
        let used: BTreeSet<u32> = self
            .networks
            .values()
            .filter_map(OverlayParams::of)
            .map(|p| p.vni)
            .collect();
        (from..).find(|v| !used.contains(v)).unwrap_or(from)
    }

    /// The ID of the ingress network, once made.
    pub fn ingress_id(&self) -> Option<&str> {
        self.networks
            .iter()
            .find(|(_, n)| n.ingress == Some(true))
            .map(|(id, _)| id.as_str())
    }

    /// Makes the ingress network when a service publishes an ingress-mode port and there is
    /// none: 10.0.0.0/24 and VXLAN ID 4096 as Docker's, its ID derived from the cluster's so
    /// every replica makes the same one.
    fn ensure_ingress(&mut self) {
        if self.ingress_id().is_some()
            || !self
                .services
                .values()
                .any(|r| !mesh_ports(r.service.spec.as_ref()).is_empty())
        {
            return;
        }
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("ingress:{}", cluster.id).as_bytes());
        let id: String = digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .chars()
            .take(25)
            .collect();
        let taken = self.overlay_subnets();
        let wanted = Subnet {
            addr: Ipv4Addr::new(10, 0, 0, 0),
            prefix: 24,
        };
        let Some(subnet) = (!taken.iter().any(|t| t.overlaps(&wanted)))
            .then_some(wanted)
            .or_else(|| Subnet::free_default(&taken))
        else {
            return;
        };
        let vni = self.free_vni(INGRESS_VNI);
        let network = Network {
            id: Some(id.clone()),
            name: Some(INGRESS.into()),
            created: Some(cluster.created_at.clone()),
            scope: Some("swarm".into()),
            driver: Some("overlay".into()),
            ingress: Some(true),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(Ipv4Addr::from(subnet.first() + 1).to_string()),
                    ip_range: None,
                    auxiliary_addresses: None,
                }]),
                options: None,
            }),
            options: Some(
                [(VNI_OPTION.to_string(), vni.to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        self.networks.insert(id, network);
    }

    /// Fills in the subnet, gateway and VXLAN ID of a network about to be created, checking a
    /// requested subnet against the other swarm networks.
    pub(crate) fn prepare_network(&self, n: &mut Network) -> Result<(), String> {
        let taken = self.overlay_subnets();
        let cfg = n
            .ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.subnet.as_deref().is_some_and(|s| !s.contains(':')))
            })
            .cloned()
            .unwrap_or_default();
        let subnet = match cfg.subnet.as_deref() {
            Some(s) => {
                let s = Subnet::parse(s)?;
                if s.prefix > 29 {
                    return Err(format!("invalid pool request: subnet {s} is too small"));
                }
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    );
                }
                s
            }
            None => Subnet::free_default(&taken).ok_or(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
            )?,
        };
        let gateway = match cfg.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| format!("invalid gateway address {g}"))?;
                if !subnet.contains(g) {
                    return Err(format!("no matching subnet for gateway {g}"));
                }
                g
            }
            None => Ipv4Addr::from(subnet.first() + 1),
        };
        let vni = self.free_vni(FIRST_VNI);
        n.ipam = Some(Ipam {
            driver: Some("default".into()),
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.to_string()),
                gateway: Some(gateway.to_string()),
                ip_range: None,
                auxiliary_addresses: None,
            }]),
            options: None,
        });
        n.options
            .get_or_insert_with(HashMap::new)
            .insert(VNI_OPTION.into(), vni.to_string());
        Ok(())
    }

    /// Addresses in use per network: gateways, VIPs and the addresses of live tasks.
    fn used_addresses(&self) -> HashMap<&str, BTreeSet<Ipv4Addr>> {
        let mut used: HashMap<&str, BTreeSet<Ipv4Addr>> = HashMap::new();
        for (id, n) in &self.networks {
            if let Some(p) = OverlayParams::of(n) {
                used.entry(id).or_default().insert(p.gateway);
            }
        }
        for per in self
            .overlay
            .vips
            .values()
            .chain(self.overlay.tasks.values())
        {
            for (net, ip) in per {
                if let Some((id, _)) = self.networks.get_key_value(net) {
                    used.entry(id.as_str()).or_default().insert(*ip);
                }
            }
        }
        if let Some(ingress) = self.ingress_id() {
            used.entry(ingress)
                .or_default()
                .extend(self.overlay.nodes.values().copied());
        }
        used
    }

    /// Frees the addresses of tasks that are gone or finished, gives live tasks and services
    /// in VIP mode an address on each overlay network they use, and frees VIPs no longer used.
    /// Runs after every change to tasks or services; a network out of addresses leaves the
    /// task without one (its node rejects it, saying so).
    pub(crate) fn allocate_addresses(&mut self) {
        self.ensure_ingress();
        if self.networks.is_empty() && self.overlay == Allocations::default() {
            return;
        }
        let gone: Vec<String> = self
            .overlay
            .tasks
            .keys()
            .filter(|id| !self.tasks.get(*id).is_some_and(|t| live(self, t)))
            .cloned()
            .collect();
        for id in gone {
            self.overlay.tasks.remove(&id);
        }
        let services = &self.services;
        let networks = &self.networks;
        self.overlay.vips.retain(|id, per| {
            let Some(r) = services.get(id) else {
                return false;
            };
            let wanted = vip_networks(r.service.spec.as_ref());
            per.retain(|net, _| wanted.contains(net.as_str()) && networks.contains_key(net));
            !per.is_empty()
        });
        // What is missing: (kind of owner, owner ID, network ID).
        let mut missing: Vec<(Owner, String, String)> = Vec::new();
        for (id, r) in &self.services {
            for net in vip_networks(r.service.spec.as_ref()) {
                let has = self
                    .overlay
                    .vips
                    .get(id)
                    .is_some_and(|p| p.contains_key(net));
                if !has && self.networks.contains_key(net) {
                    missing.push((Owner::Service, id.clone(), net.to_string()));
                }
            }
        }
        let nodes = &self.nodes;
        self.overlay.nodes.retain(|id, _| nodes.contains_key(id));
        if let Some(ingress) = self.ingress_id() {
            for id in self.nodes.keys() {
                if !self.overlay.nodes.contains_key(id) {
                    missing.push((Owner::Node, id.clone(), ingress.to_string()));
                }
            }
        }
        for (id, t) in self.tasks.iter().filter(|(_, t)| live(self, t)) {
            for net in task_networks(self, t) {
                let has = self
                    .overlay
                    .tasks
                    .get(id)
                    .is_some_and(|p| p.contains_key(net));
                if !has && self.networks.contains_key(net) {
                    missing.push((Owner::Task, id.clone(), net.to_string()));
                }
            }
        }
        if missing.is_empty() {
            self.sync_service_endpoints();
            return;
        }
        let used = self.used_addresses();
        let mut used: HashMap<String, BTreeSet<Ipv4Addr>> =
            used.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        for (kind, owner, net) in missing {
            let Some(p) = self.networks.get(&net).and_then(OverlayParams::of) else {
                continue;
            };
            let taken = used.entry(net.clone()).or_default();
            let Some(ip) = (p.subnet.first() + 1..p.subnet.last())
                .map(Ipv4Addr::from)
                .find(|ip| !taken.contains(ip))
            else {
                continue;
            };
            taken.insert(ip);
            match kind {
                Owner::Service => {
                    self.overlay.vips.entry(owner).or_default().insert(net, ip);
                }
                Owner::Task => {
                    self.overlay.tasks.entry(owner).or_default().insert(net, ip);
                }
                Owner::Node => {
                    self.overlay.nodes.insert(owner, ip);
                }
            }
        }
        self.sync_service_endpoints();
    }

    /// Mirrors the VIPs into each service's `Endpoint.VirtualIPs`, as Docker shows them.
    fn sync_service_endpoints(&mut self) {
        for (id, r) in self.services.iter_mut() {
            let vips: Vec<ServiceEndpointVirtualIps> = self
                .overlay
                .vips
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|(net, ip)| {
                    let p = OverlayParams::of(self.networks.get(net)?)?;
                    Some(ServiceEndpointVirtualIps {
                        network_id: Some(net.clone()),
                        addr: Some(format!("{ip}/{}", p.subnet.prefix)),
                    })
                })
                .collect();
            let endpoint = r
                .service
                .endpoint
                .get_or_insert_with(ServiceEndpoint::default);
            endpoint.virtual_ips = (!vips.is_empty()).then_some(vips);
        }
    }

    /// The overlay view of every network, for the nodes: peers and service records.
    pub fn overlay_views(&self) -> BTreeMap<String, OverlayView> {
        let mut views: BTreeMap<String, OverlayView> = BTreeMap::new();
        for (id, n) in &self.networks {
            if let Some(p) = OverlayParams::of(n) {
                views.insert(
                    id.clone(),
                    OverlayView {
                        id: id.clone(),
                        name: n.name.clone().unwrap_or_default(),
                        subnet: p.subnet.to_string(),
                        gateway: p.gateway,
                        vni: p.vni,
                        internal: n.internal.unwrap_or(false),
                        ingress: n.ingress == Some(true),
                        peers: Vec::new(),
                        services: Vec::new(),
                    },
                );
            }
        }
        if views.is_empty() {
            return views;
        }
        let node_addr = |node: &str| -> Option<(Ipv4Addr, bool)> {
            let s = self.nodes.get(node)?.status.as_ref()?;
            let addr = s.addr.as_deref()?.parse().ok()?;
            Some((addr, s.state == Some(NodeState::READY)))
        };
        // Per (service, network): the addresses of its tasks that run, healthy, on a ready node.
        let mut backends: BTreeMap<(&str, &str), Vec<Ipv4Addr>> = BTreeMap::new();
        for (tid, addrs) in &self.overlay.tasks {
            let Some(t) = self.tasks.get(tid) else {
                continue;
            };
            let Some((node_ip, ready)) = t.node_id.as_deref().and_then(node_addr) else {
                continue;
            };
            let serving = ready
                && observed_state(t) == TaskState::RUNNING
                && t.desired_state == Some(TaskState::RUNNING);
            for (net, ip) in addrs {
                let Some(v) = views.get_mut(net) else {
                    continue;
                };
                v.peers.push(OverlayPeer {
                    ip: *ip,
                    node: t.node_id.clone().unwrap_or_default(),
                    node_addr: node_ip,
                });
                if serving && let Some(svc) = t.service_id.as_deref() {
                    backends.entry((svc, net.as_str())).or_default().push(*ip);
                }
            }
        }
        if let Some(v) = self.ingress_id().and_then(|id| views.get_mut(id)) {
            for (node, ip) in &self.overlay.nodes {
                if let Some((node_ip, _)) = node_addr(node) {
                    v.peers.push(OverlayPeer {
                        ip: *ip,
                        node: node.clone(),
                        node_addr: node_ip,
                    });
                }
            }
        }
        for (sid, r) in &self.services {
            let Some(spec) = r.service.spec.as_ref() else {
                continue;
            };
            let ports = mesh_ports(Some(spec));
            if let Some(ingress) = self.ingress_id()
                && !ports.is_empty()
                && let Some(v) = views.get_mut(ingress)
            {
                let mut tasks = backends
                    .remove(&(sid.as_str(), ingress))
                    .unwrap_or_default();
                tasks.sort();
                v.services.push(ServiceRecords {
                    name: spec.name.clone().unwrap_or_default(),
                    aliases: Vec::new(),
                    vip: None,
                    tasks,
                    ports,
                });
            }
            let dnsrr = endpoint_mode(spec) == EndpointSpecModeEnum::DNSRR;
            for a in spec
                .task_template
                .as_ref()
                .and_then(|t| t.networks.as_ref())
                .into_iter()
                .flatten()
            {
                let Some(net) = a.target.as_deref() else {
                    continue;
                };
                let Some(v) = views.get_mut(net) else {
                    continue;
                };
                let mut tasks = backends.remove(&(sid.as_str(), net)).unwrap_or_default();
                tasks.sort();
                v.services.push(ServiceRecords {
                    name: spec.name.clone().unwrap_or_default(),
                    aliases: a.aliases.clone().unwrap_or_default(),
                    vip: if dnsrr {
                        None
                    } else {
                        self.overlay.vips.get(sid).and_then(|p| p.get(net)).copied()
                    },
                    tasks,
                    ports: Vec::new(),
                });
            }
        }
        views
    }
}

/// Who an address is for.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Service,
    Task,
    Node,
}

/// A service's endpoint mode (`vip` unless the spec says `dnsrr`).
fn endpoint_mode(spec: &bollard_stubs::models::ServiceSpec) -> EndpointSpecModeEnum {
    spec.endpoint_spec
        .as_ref()
        .and_then(|e| e.mode)
        .filter(|m| *m != EndpointSpecModeEnum::EMPTY)
        .unwrap_or(EndpointSpecModeEnum::VIP)
}

/// The networks on which a service needs a virtual IP (all of them, in VIP mode).
fn vip_networks(spec: Option<&bollard_stubs::models::ServiceSpec>) -> BTreeSet<&str> {
    let Some(spec) = spec else {
        return BTreeSet::new();
    };
    if endpoint_mode(spec) == EndpointSpecModeEnum::DNSRR {
        return BTreeSet::new();
    }
    spec.task_template
        .as_ref()
        .and_then(|t| t.networks.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|n| n.target.as_deref())
        .collect()
}

/// What a node needs to know of one overlay network it uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OverlayView {
    /// The swarm network ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `a.b.c.d/n`.
    pub subnet: String,
    /// The gateway each node's bridge carries.
    pub gateway: Ipv4Addr,
    /// The VXLAN ID.
    pub vni: u32,
    /// No way out of the network.
    pub internal: bool,
    /// The routing mesh's network: every node has it while a service publishes a port.
    #[serde(default)]
    pub ingress: bool,
    /// Every task address on the network and the node it is on (this node's too).
    pub peers: Vec<OverlayPeer>,
    /// The names services resolve to here, and where their VIPs lead.
    pub services: Vec<ServiceRecords>,
}

/// One task address on an overlay network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OverlayPeer {
    /// The task's address.
    pub ip: Ipv4Addr,
    /// The node it runs on.
    pub node: String,
    /// That node's data-path address (the VXLAN tunnel end).
    pub node_addr: Ipv4Addr,
}

/// A service's names on one network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceRecords {
    /// The service name.
    pub name: String,
    /// Network aliases of the service.
    pub aliases: Vec<String>,
    /// The virtual IP (`None` in `dnsrr` mode: the name resolves to the tasks).
    pub vip: Option<Ipv4Addr>,
    /// Addresses of the tasks that run and are healthy, sorted.
    pub tasks: Vec<Ipv4Addr>,
    /// On the ingress network: the ports every node publishes for the service.
    #[serde(default)]
    pub ports: Vec<MeshPort>,
}

#[cfg(test)]
mod tests;
