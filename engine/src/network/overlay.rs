//! Overlay networks on this node. A swarm network's local part is a bridge, like a user
//! network's, with a VXLAN device on it; the swarm worker tells the engine where the other
//! nodes' tasks are (forwarding and neighbour entries on the device), which names the services
//! resolve to, and where each container's virtual IPs lead (nftables DNAT in the container's
//! own namespace, as Docker puts its IPVS rules in each sandbox).
//!
//! The VXLAN device learns nothing and answers ARP itself from its neighbour entries, so no
//! broadcast crosses nodes: the gateway every node's bridge carries stays local, and a task
//! reaches a remote one in one unicast hop.

use super::ipam::{self, Ipv4Net};
use super::{NetworkError, NetworkRecord, NetworkService, internal, lock, netlink};
use crate::Result;
use bollard_stubs::models::{Ipam, IpamConfig, NetworkCreateRequest};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// The driver name of overlay networks.
pub const DRIVER: &str = "overlay";
/// The driver option with the VXLAN ID, as Docker names it.
pub const VNI_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// The UDP port VXLAN traffic uses between nodes (Docker's).
pub const DATA_PORT: u16 = 4789;
/// 1500 minus the 50 bytes VXLAN adds, so encapsulated frames fit the underlay.
pub const MTU: u32 = 1450;
/// The option marking the local part of the routing mesh's network.
const INGRESS_OPTION: &str = "berth.overlay.ingress";
/// The nftables table holding a container's VIP rules, inside its namespace.
const LB_TABLE: &str = "berth-lb";

/// The local part of one swarm network, as the worker asks for it.
#[derive(Debug, Clone)]
pub struct OverlaySpec {
    /// The network name (the swarm network's).
    pub name: String,
    /// The subnet the managers allocated.
    pub subnet: Ipv4Net,
    /// The gateway every node's bridge carries.
    pub gateway: Ipv4Addr,
    /// The VXLAN ID.
    pub vni: u32,
    /// No way out.
    pub internal: bool,
    /// The routing mesh's network.
    pub ingress: bool,
    /// Labels (the swarm network ID among them).
    pub labels: HashMap<String, String>,
}

/// One virtual IP and the addresses it spreads connections over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualIp {
    /// The service's VIP.
    pub vip: Ipv4Addr,
    /// Its healthy tasks' addresses (empty: connections are refused).
    pub backends: Vec<Ipv4Addr>,
}

/// A port the routing mesh publishes on this node, and the tasks it leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeshRule {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The port on this node.
    pub published: u16,
    /// The port in the tasks.
    pub target: u16,
    /// The tasks' ingress addresses (empty: nothing answers).
    pub backends: Vec<Ipv4Addr>,
}

/// What the overlay part of the service remembers between calls.
#[derive(Default)]
pub(super) struct OverlayState {
    /// The routing mesh as applied: (ingress network ID, node address, rules).
    mesh: Option<(String, Ipv4Addr, Vec<MeshRule>)>,
    /// Network ID -> remote task address -> its node's address, as programmed.
    peers: HashMap<String, BTreeMap<Ipv4Addr, Ipv4Addr>>,
    /// Container ID -> the VIP rules last applied in its namespace.
    lb: HashMap<String, Vec<VirtualIp>>,
}

impl NetworkRecord {
    /// Whether containers attach through a bridge of ours (bridge and overlay networks).
    pub fn bridged(&self) -> bool {
        self.driver == "bridge" || self.driver == DRIVER
    }

    /// The VXLAN device of an overlay network.
    pub(super) fn vxlan(&self) -> Option<String> {
        (self.driver == DRIVER).then(|| format!("bvx-{}", self.id.get(..8).unwrap_or(&self.id)))
    }

    fn vni(&self) -> Option<u32> {
        self.options.get(VNI_OPTION)?.parse().ok()
    }
}

impl NetworkService {
    /// Makes the local part of an overlay network unless a network of that name exists;
    /// returns the local network's ID.
    pub async fn ensure_overlay(&self, spec: OverlaySpec) -> Result<String> {
        if let Ok(r) = self.get(&spec.name) {
            if r.driver != DRIVER {
                return Err(NetworkError::Conflict(format!(
                    "network with name {} already exists on this node and is not an overlay",
                    spec.name
                ))
                .into());
            }
            return Ok(r.id);
        }
        let req = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some(DRIVER.into()),
            internal: Some(spec.internal),
            attachable: Some(true),
            labels: Some(spec.labels.clone()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.to_string()),
                    gateway: Some(spec.gateway.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            options: Some(
                [
                    (VNI_OPTION.to_string(), spec.vni.to_string()),
                    ("com.docker.network.driver.mtu".into(), MTU.to_string()),
                ]
                .into_iter()
                .chain(
                    spec.ingress
                        .then(|| (INGRESS_OPTION.to_string(), "true".to_string())),
                )
                .collect(),
            ),
            ..Default::default()
        };
        let s = self.clone();
        let resp = tokio::task::spawn_blocking(move || s.create_blocking(req, true))
            .await
            .map_err(|e| NetworkError::Internal(e.to_string()))??;
        if let Ok(r) = self.get(&resp.id) {
            self.serve_dns(&r).await;
        }
        Ok(resp.id)
    }

    /// Creates the VXLAN device of overlay network `r` on its bridge if missing.
    pub(super) fn ensure_vxlan(&self, r: &NetworkRecord) -> Result<()> {
        let (Some(dev), Some(vni)) = (r.vxlan(), r.vni()) else {
            return Ok(());
        };
        if netlink::index_of(&dev).is_some() {
            return Ok(());
        }
        let master = netlink::index_of(&r.bridge).ok_or_else(|| {
            NetworkError::Internal(format!("bridge {} of {} is missing", r.bridge, r.name))
        })?;
        self.with_nl(|nl| nl.add_vxlan(&dev, vni, DATA_PORT, r.mtu, master))
            .map_err(|e| NetworkError::Internal(format!("create vxlan {dev}: {e}")).into())
    }

    /// Programs the tasks of other nodes on overlay network `network_id`: `peers` maps each
    /// task address to its node's address. Entries no longer listed are removed.
    pub async fn set_overlay_peers(
        &self,
        network_id: &str,
        peers: BTreeMap<Ipv4Addr, Ipv4Addr>,
    ) -> Result<()> {
        let s = self.clone();
        let id = network_id.to_string();
        tokio::task::spawn_blocking(move || s.set_peers_blocking(&id, peers))
            .await
            .map_err(|e| NetworkError::Internal(e.to_string()))?
    }

    fn set_peers_blocking(&self, id: &str, peers: BTreeMap<Ipv4Addr, Ipv4Addr>) -> Result<()> {
        let r = self.get(id)?;
        let Some(dev) = r.vxlan() else {
            return Err(
                NetworkError::Invalid(format!("{} is not an overlay network", r.name)).into(),
            );
        };
        let _g = lock(&self.inner.lock);
        let index = netlink::index_of(&dev)
            .ok_or_else(|| NetworkError::Internal(format!("vxlan device {dev} is missing")))?;
        let mut state = lock(&self.inner.overlay);
        let had = state.peers.remove(&r.id).unwrap_or_default();
        let mut now = BTreeMap::new();
        let mut failed = None;
        for (ip, vtep) in &had {
            if peers.get(ip) != Some(vtep)
                && let Err(e) =
                    self.with_nl(|nl| nl.vxlan_peer(index, *ip, ipam::mac_for(*ip), *vtep, false))
            {
                failed = Some(e);
                now.insert(*ip, *vtep);
            }
        }
        for (ip, vtep) in &peers {
            if had.get(ip) == Some(vtep) {
                now.insert(*ip, *vtep);
                continue;
            }
            match self.with_nl(|nl| nl.vxlan_peer(index, *ip, ipam::mac_for(*ip), *vtep, true)) {
                Ok(()) => {
                    now.insert(*ip, *vtep);
                }
                Err(e) => failed = Some(e),
            }
        }
        state.peers.insert(r.id.clone(), now);
        failed.map_or(Ok(()), Err)
    }

    /// Makes `names` resolve on network `network_id` (services' VIPs and task addresses
    /// anywhere in the cluster), replacing the names set before.
    pub fn set_network_names(&self, network_id: &str, names: Vec<(String, Vec<Ipv4Addr>)>) {
        let names = names
            .into_iter()
            .map(|(n, ips)| (n, ips.into_iter().map(IpAddr::V4).collect()))
            .collect();
        self.inner
            .discovery
            .dns
            .set_network_names(network_id, names);
    }

    /// Applies the VIP rules of a running container in its namespace when they changed:
    /// connections to each VIP go to one of its backends in turn.
    pub async fn set_virtual_ips(&self, container_id: &str, vips: Vec<VirtualIp>) -> Result<()> {
        if lock(&self.inner.overlay).lb.get(container_id) == Some(&vips) {
            return Ok(());
        }
        let Some(sandbox) = self.sandbox_of(container_id)? else {
            return Err(NetworkError::Invalid(format!(
                "container {container_id} has no network namespace"
            ))
            .into());
        };
        let script = render_lb(&vips);
        let netns = sandbox.netns.clone();
        tokio::task::spawn_blocking(move || super::nft::apply_in(&netns, &script))
            .await
            .map_err(|e| NetworkError::Internal(e.to_string()))?
            .map_err(internal("nftables in the container's namespace"))?;
        lock(&self.inner.overlay)
            .lb
            .insert(container_id.to_string(), vips);
        Ok(())
    }

    /// Publishes the routing mesh's ports on this node: connections to any local address on
    /// a published port go to one of the service's tasks on ingress network `network`, with
    /// this node's ingress address `node_ip` as source so answers come back here. The bridge
    /// carries `node_ip` and the MAC other nodes' neighbour entries give it.
    pub async fn set_mesh(
        &self,
        network: &str,
        node_ip: Ipv4Addr,
        rules: Vec<MeshRule>,
    ) -> Result<()> {
        let r = self.get(network)?;
        let wanted = (r.id.clone(), node_ip, rules);
        if lock(&self.inner.overlay).mesh.as_ref() == Some(&wanted) {
            return Ok(());
        }
        let (Some(subnet), Some(index)) = (r.subnet, netlink::index_of(&r.bridge)) else {
            return Err(NetworkError::Internal(format!("bridge of {} is missing", r.name)).into());
        };
        self.with_nl(|nl| {
            nl.set_mac(index, ipam::mac_for(node_ip))?;
            nl.add_addr(index, node_ip, subnet.prefix)
        })?;
        let script = render_mesh(&self.mesh_table(), &r.bridge, subnet, node_ip, &wanted.2);
        let s = script.clone();
        tokio::task::spawn_blocking(move || super::nft::apply(&s))
            .await
            .map_err(|e| NetworkError::Internal(e.to_string()))?
            .map_err(internal("nftables (routing mesh)"))?;
        lock(&self.inner.overlay).mesh = Some(wanted);
        Ok(())
    }

    /// The routing mesh's table, beside the engine's own.
    fn mesh_table(&self) -> String {
        format!("{}-mesh", self.inner.opts.table())
    }

    /// Removes the routing mesh's rules when `r`, going, is its network (also after a
    /// restart, when nothing was applied by this process yet).
    pub(super) fn drop_mesh(&self, r: &NetworkRecord) {
        let mut st = lock(&self.inner.overlay);
        let applied = st.mesh.as_ref().is_some_and(|(n, _, _)| *n == r.id);
        if applied || r.options.get(INGRESS_OPTION).is_some_and(|v| v == "true") {
            st.mesh = None;
            super::nft::delete_table(&self.mesh_table());
        }
    }

    /// Forgets what was programmed for a container that stopped.
    pub(super) fn forget_virtual_ips(&self, container_id: &str) {
        lock(&self.inner.overlay).lb.remove(container_id);
    }

    /// Forgets the peers of a removed network (its device went with it).
    pub(super) fn forget_peers(&self, network_id: &str) {
        lock(&self.inner.overlay).peers.remove(network_id);
    }
}

/// The DNAT target spreading new connections over `backends` in turn (`None` without any).
fn spread(backends: &[Ipv4Addr]) -> Option<String> {
    match backends {
        [] => None,
        [one] => Some(one.to_string()),
        many => {
            let map: Vec<String> = many
                .iter()
                .enumerate()
                .map(|(i, ip)| format!("{i} : {ip}"))
                .collect();
            Some(format!(
                "numgen inc mod {} map {{ {} }}",
                many.len(),
                map.join(", ")
            ))
        }
    }
}

/// The VIP table: DNAT on output spreading new connections over the backends, and a reject
/// for a VIP with none (so clients fail at once instead of waiting on ARP).
fn render_lb(vips: &[VirtualIp]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "table ip {LB_TABLE} {{}}\ndelete table ip {LB_TABLE}\ntable ip {LB_TABLE} {{"
    );
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n");
    for v in vips {
        if let Some(to) = spread(&v.backends) {
            let _ = writeln!(s, "    ip daddr {} dnat to {to}", v.vip);
        }
    }
    s.push_str("  }\n");
    s.push_str("  chain filter {\n    type filter hook output priority 0; policy accept;\n");
    for v in vips.iter().filter(|v| v.backends.is_empty()) {
        let _ = writeln!(
            s,
            "    ip daddr {} meta l4proto tcp reject with tcp reset",
            v.vip
        );
        let _ = writeln!(s, "    ip daddr {} reject", v.vip);
    }
    s.push_str("  }\n}\n");
    s
}

/// The routing mesh's table: DNAT of published ports on local addresses to the tasks in turn,
/// and SNAT to this node's ingress address of what leaves through the ingress bridge.
fn render_mesh(
    table: &str,
    bridge: &str,
    subnet: Ipv4Net,
    node_ip: Ipv4Addr,
    rules: &[MeshRule],
) -> String {
    let mut dnat = String::new();
    for r in rules {
        let Some(to) = spread(&r.backends) else {
            continue;
        };
        let _ = writeln!(
            dnat,
            "    fib daddr type local {} dport {} dnat to {to} : {}",
            r.protocol, r.published, r.target
        );
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{"
    );
    for (chain, hook, prio) in [
        ("prerouting", "prerouting", "dstnat - 1"),
        ("output", "output", "-101"),
    ] {
        let _ = writeln!(
            s,
            "  chain {chain} {{\n    type nat hook {hook} priority {prio}; policy accept;\n{dnat}  }}"
        );
    }
    let _ = writeln!(
        s,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat - 1; policy accept;\n    oifname \"{bridge}\" ct status dnat ip daddr {subnet} snat to {node_ip}\n  }}\n}}"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_rules_spread_over_backends_and_refuse_without_any() {
        let ip = |d: u8| Ipv4Addr::new(10, 0, 1, d);
        let s = render_lb(&[
            VirtualIp {
                vip: ip(2),
                backends: vec![ip(5), ip(6)],
            },
            VirtualIp {
                vip: ip(3),
                backends: vec![ip(7)],
            },
            VirtualIp {
                vip: ip(4),
                backends: vec![],
            },
        ]);
        assert!(s.contains(
            "ip daddr 10.0.1.2 dnat to numgen inc mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 }"
        ));
        assert!(s.contains("ip daddr 10.0.1.3 dnat to 10.0.1.7"));
        assert!(s.contains("ip daddr 10.0.1.4 reject"));
        assert!(!s.contains("ip daddr 10.0.1.4 dnat"));
    }

    #[test]
    fn mesh_rules_dnat_published_ports_and_snat_to_the_node() {
        let ip = |d: u8| Ipv4Addr::new(10, 0, 0, d);
        let rule = |published, backends| MeshRule {
            protocol: "tcp".into(),
            published,
            target: 80,
            backends,
        };
        let subnet: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        let s = render_mesh(
            "berth-mesh",
            "berth-abc",
            subnet,
            ip(2),
            &[rule(8080, vec![ip(3), ip(4)]), rule(9090, vec![])],
        );
        assert!(s.contains(
            "fib daddr type local tcp dport 8080 dnat to numgen inc mod 2 map { 0 : 10.0.0.3, 1 : 10.0.0.4 } : 80"
        ));
        assert!(!s.contains("dport 9090"));
        assert!(s.contains(
            "oifname \"berth-abc\" ct status dnat ip daddr 10.0.0.0/24 snat to 10.0.0.2"
        ));
    }
}
