//! Container networking: bridge networks, IPAM, network namespaces, published ports through
//! nftables, and the embedded DNS server.
//!
//! State lives in the engine's store (networks, names, leases, endpoints, sandboxes), always
//! changed in one transaction before kernel objects are made, so `open` after a crash can
//! rebuild or remove whatever the kernel disagrees with.

mod discovery;
pub mod dns;
pub mod etc;
pub mod ipam;
mod netlink;
mod netns;
pub mod nft;
mod overlay;
mod ports;
mod sandbox;

pub use ipam::Ipv4Net;
pub use overlay::{MeshRule, OverlaySpec, VirtualIp};
pub use ports::PublishedPort;
pub use sandbox::{EndpointRequest, SandboxInfo, SandboxRequest};

use crate::state::{ENDPOINTS, IP_LEASES, NETWORK_NAMES, NETWORKS, SANDBOXES, StateStore};
use crate::{Error, Result};
use bollard_stubs::models::{
    EndpointResource, Ipam, IpamConfig, NetworkCreateRequest, NetworkCreateResponse,
    NetworkInspect, NetworkSummary,
};
use netlink::Netlink;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Errors of the network service, each mapping to one Docker API status.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// 404: no such network.
    #[error("network {0} not found")]
    NotFound(String),
    /// 409: a name is taken.
    #[error("{0}")]
    Conflict(String),
    /// 403: not allowed (predefined network, active endpoints, pool overlap, address taken).
    #[error("{0}")]
    Forbidden(String),
    /// 400: bad input.
    #[error("{0}")]
    Invalid(String),
    /// 500: the kernel or the store refused.
    #[error("{0}")]
    Internal(String),
}

fn internal(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| NetworkError::Internal(format!("{what}: {e}")).into()
}

/// Where the service keeps things.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// The engine's persistent root.
    pub root: PathBuf,
    /// The engine's runtime root (namespace pins live under `netns/`).
    pub exec_root: PathBuf,
}

/// The engine that owns `/var/lib/berth` owns the plain names; any other engine on the same
/// host (tests, a second daemon) gets names tagged with a hash of its root, so engines never
/// rewrite each other's table or share a default bridge.
const SYSTEM_ROOT: &str = "/var/lib/berth";

impl NetworkOptions {
    fn tag(&self) -> Option<String> {
        if self.root == std::path::Path::new(SYSTEM_ROOT) {
            return None;
        }
        use sha2::Digest;
        let h = sha2::Sha256::digest(self.root.to_string_lossy().as_bytes());
        Some(h.iter().take(3).map(|b| format!("{b:02x}")).collect())
    }

    /// The nftables table (`ip berth` for the system engine).
    pub fn table(&self) -> String {
        match self.tag() {
            None => "berth".into(),
            Some(t) => format!("berth-{t}"),
        }
    }

    /// The default bridge device (`berth0` for the system engine).
    pub fn default_bridge(&self) -> String {
        match self.tag() {
            None => "berth0".into(),
            Some(t) => format!("berth0{t}"),
        }
    }
}

/// One network, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    /// The unique name.
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    /// The subnet (bridge networks).
    pub subnet: Option<Ipv4Net>,
    /// The gateway, the bridge's address.
    pub gateway: Option<Ipv4Addr>,
    /// Where dynamic addresses come from, when narrower than the subnet.
    pub ip_range: Option<Ipv4Net>,
    /// No way out.
    pub internal: bool,
    /// Docker's flag, kept for inspect.
    pub attachable: bool,
    /// User labels.
    pub labels: HashMap<String, String>,
    /// Driver options as given.
    pub options: HashMap<String, String>,
    /// The bridge device.
    pub bridge: String,
    /// The MTU (0: kernel default).
    pub mtu: u32,
    /// Masquerade outbound traffic.
    pub masquerade: bool,
    /// One of `bridge`, `host`, `none`.
    pub predefined: bool,
}

impl NetworkRecord {
    fn rules(&self) -> Option<nft::NetRules> {
        Some(nft::NetRules {
            bridge: self.bridge.clone(),
            subnet: self.subnet?,
            internal: self.internal,
            masquerade: self.masquerade,
        })
    }

    fn ipam(&self) -> Ipam {
        Ipam {
            driver: Some("default".into()),
            options: Some(HashMap::new()),
            config: Some(
                self.subnet
                    .map(|s| {
                        vec![IpamConfig {
                            subnet: Some(s.to_string()),
                            ip_range: self.ip_range.map(|r| r.to_string()),
                            gateway: self.gateway.map(|g| g.to_string()),
                            auxiliary_addresses: None,
                        }]
                    })
                    .unwrap_or_default(),
            ),
        }
    }

    fn summary(&self) -> NetworkSummary {
        NetworkSummary {
            name: Some(self.name.clone()),
            id: Some(self.id.clone()),
            created: Some(self.created.clone()),
            scope: Some(
                if self.driver == overlay::DRIVER {
                    "swarm"
                } else {
                    "local"
                }
                .into(),
            ),
            driver: Some(self.driver.clone()),
            ipam: Some(self.ipam()),
            internal: Some(self.internal),
            attachable: Some(self.attachable),
            ingress: Some(false),
            config_only: Some(false),
            options: Some(self.options.clone()),
            labels: Some(self.labels.clone()),
            ..Default::default()
        }
    }
}

/// One container's attachment to one network while it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The network.
    pub network_id: String,
    /// The container.
    pub container_id: String,
    /// The container's name, without `/`.
    pub container_name: String,
    /// 64 hex digits.
    pub endpoint_id: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The network's gateway.
    pub gateway: Option<Ipv4Addr>,
    /// `02:42:...`.
    pub mac: String,
    /// Aliases given at create/connect.
    pub aliases: Vec<String>,
    /// Names the embedded DNS answers for.
    pub dns_names: Vec<String>,
    /// The address was asked for.
    pub static_ip: bool,
    /// The host end of the veth pair.
    pub veth: String,
    /// The name inside the container (`eth0`, ...).
    pub ifname: String,
}

/// A container's network namespace and published ports, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// The container.
    pub container_id: String,
    /// The pinned namespace.
    pub netns: PathBuf,
    /// Published ports.
    pub ports: Vec<PublishedPort>,
}

/// The engine's network service; cheap to clone.
#[derive(Clone)]
pub struct NetworkService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NetworkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkService")
            .field("exec_root", &self.inner.opts.exec_root)
            .finish()
    }
}

struct Inner {
    opts: NetworkOptions,
    state: StateStore,
    /// Serialises IPAM, sandbox and network changes with the kernel work that follows them.
    lock: Mutex<()>,
    /// The host's rtnetlink socket.
    nl: Mutex<Option<Netlink>>,
    /// Sockets holding published host ports, by container.
    held: Mutex<HashMap<String, Vec<ports::Held>>>,
    /// The embedded DNS server and what it knows.
    discovery: discovery::Discovery,
    /// Overlay peers and VIP rules as programmed.
    overlay: Mutex<overlay::OverlayState>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|source| {
        crate::state::StateError::Corrupt {
            key: key.to_string(),
            source,
        }
        .into()
    })
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| NetworkError::Internal(format!("encode: {e}")).into())
}

impl NetworkService {
    /// Opens the service: creates or repairs the predefined networks and every bridge,
    /// removes Berth bridges without a record, enables forwarding and rebuilds the nftables
    /// table. Endpoints of containers that no longer run are released by [`Self::reconcile`].
    pub async fn open(opts: NetworkOptions, state: StateStore) -> Result<Self> {
        let svc = Self {
            inner: Arc::new(Inner {
                opts,
                state,
                lock: Mutex::new(()),
                nl: Mutex::new(None),
                held: Mutex::new(HashMap::new()),
                discovery: discovery::Discovery::new(),
                overlay: Mutex::new(overlay::OverlayState::default()),
            }),
        };
        let s = svc.clone();
        tokio::task::spawn_blocking(move || s.open_blocking())
            .await
            .map_err(|e| NetworkError::Internal(e.to_string()))??;
        svc.serve_all_dns().await;
        Ok(svc)
    }

    fn open_blocking(&self) -> Result<()> {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
        let _g = lock(&self.inner.lock);
        let mut recs = self.records()?;
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if recs.iter().any(|r| r.name == name) {
                continue;
            }
            let mut r = NetworkRecord {
                id: crate::container::name::new_id(),
                name: name.into(),
                driver: driver.into(),
                created: berth_runtime::state::now_rfc3339(),
                subnet: None,
                gateway: None,
                ip_range: None,
                internal: false,
                attachable: false,
                labels: HashMap::new(),
                options: HashMap::new(),
                bridge: String::new(),
                mtu: 0,
                masquerade: true,
                predefined: true,
            };
            if driver == "bridge" {
                let subnet = self.free_pool(&recs)?;
                r.subnet = Some(subnet);
                r.gateway = Some(Ipv4Addr::from(subnet.network() + 1));
                r.bridge = self.inner.opts.default_bridge();
                r.mtu = 1500;
                r.options = [
                    ("com.docker.network.bridge.default_bridge", "true"),
                    ("com.docker.network.bridge.enable_icc", "true"),
                    ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                    ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                    ("com.docker.network.driver.mtu", "1500"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                r.options
                    .insert("com.docker.network.bridge.name".into(), r.bridge.clone());
            }
            self.insert_record(&r)?;
            recs.push(r);
        }
        // An engine without the rights or tools for networking still serves everything
        // else; starts on bridge networks then report the cause.
        for r in &recs {
            if r.bridged()
                && let Err(e) = self.ensure_bridge(r).and_then(|()| self.ensure_vxlan(r))
            {
                tracing::warn!(network = %r.name, error = %e, "bridge");
            }
        }
        if let Err(e) = self.apply_rules() {
            tracing::warn!(error = %e, "nftables");
        }
        Ok(())
    }

    /// Releases endpoints, sandboxes and leases of containers not in `running` (what a crash
    /// left), re-holds the published ports of the others, and rebuilds the rules.
    pub fn reconcile(&self, running: &std::collections::HashSet<String>) -> Result<()> {
        let boxes: Vec<SandboxRecord> = self.sandboxes()?;
        let mut stale: Vec<String> = boxes
            .iter()
            .map(|b| b.container_id.clone())
            .filter(|c| !running.contains(c))
            .collect();
        for e in self.all_endpoints()? {
            if !running.contains(&e.container_id) && !stale.contains(&e.container_id) {
                stale.push(e.container_id);
            }
        }
        for c in &stale {
            self.teardown_blocking(c, false);
        }
        for b in boxes.iter().filter(|b| running.contains(&b.container_id)) {
            let held = ports::hold_existing(&b.ports);
            lock(&self.inner.held).insert(b.container_id.clone(), held);
        }
        // Leases whose holder is neither reserved nor a running container.
        let leases = self.leases()?;
        let gone: Vec<String> = leases
            .into_iter()
            .filter(|(_, holder)| {
                holder != "gateway" && holder != "reserved" && !running.contains(holder)
            })
            .map(|(k, _)| k)
            .collect();
        if !gone.is_empty() {
            self.inner.state.write(|txn| {
                let mut t = txn.open_table(IP_LEASES)?;
                for k in &gone {
                    t.remove(k.as_str())?;
                }
                Ok(())
            })?;
        }
        self.apply_rules()
    }

    fn with_nl<T>(&self, f: impl FnOnce(&mut Netlink) -> std::io::Result<T>) -> Result<T> {
        let mut g = lock(&self.inner.nl);
        if g.is_none() {
            *g = Some(Netlink::open().map_err(internal("netlink"))?);
        }
        match g.as_mut() {
            Some(nl) => f(nl).map_err(internal("netlink")),
            None => Err(NetworkError::Internal("netlink socket".into()).into()),
        }
    }

    fn del_link(&self, name: &str) {
        if let Some(i) = netlink::index_of(name) {
            let _ = self.with_nl(|nl| nl.del_link(i));
        }
    }

    /// Creates the bridge of `r` if missing, with its gateway address, up, `route_localnet`.
    fn ensure_bridge(&self, r: &NetworkRecord) -> Result<()> {
        let (Some(subnet), Some(gw)) = (r.subnet, r.gateway) else {
            return Ok(());
        };
        let idx = match netlink::index_of(&r.bridge) {
            Some(i) => i,
            None => {
                self.with_nl(|nl| nl.add_bridge(&r.bridge, r.mtu))
                    .map_err(|e| {
                        NetworkError::Internal(format!("create bridge {}: {e}", r.bridge))
                    })?;
                netlink::index_of(&r.bridge).ok_or_else(|| {
                    NetworkError::Internal(format!("bridge {} vanished", r.bridge))
                })?
            }
        };
        self.with_nl(|nl| {
            nl.add_addr(idx, gw, subnet.prefix)?;
            nl.set_up(idx)
        })?;
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{}/route_localnet", r.bridge),
            "1",
        );
        Ok(())
    }

    fn records(&self) -> Result<Vec<NetworkRecord>> {
        self.read_all(NETWORKS)
    }

    fn sandboxes(&self) -> Result<Vec<SandboxRecord>> {
        self.read_all(SANDBOXES)
    }

    fn all_endpoints(&self) -> Result<Vec<EndpointRecord>> {
        self.read_all(ENDPOINTS)
    }

    /// Every JSON record of `table`.
    fn read_all<T: serde::de::DeserializeOwned>(
        &self,
        table: redb::TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>> {
        let raw: Vec<(String, Vec<u8>)> = self.inner.state.read(|txn| {
            let t = txn.open_table(table)?;
            let mut v = Vec::new();
            for row in t.iter()? {
                let (k, val) = row?;
                v.push((k.value().to_string(), val.value().to_vec()));
            }
            Ok(v)
        })?;
        raw.iter().map(|(k, v)| decode(k, v)).collect()
    }

    fn leases(&self) -> Result<Vec<(String, String)>> {
        Ok(self.inner.state.read(|txn| {
            let t = txn.open_table(IP_LEASES)?;
            let mut v = Vec::new();
            for row in t.iter()? {
                let (k, val) = row?;
                v.push((k.value().to_string(), val.value().to_string()));
            }
            Ok(v)
        })?)
    }

    fn insert_record(&self, r: &NetworkRecord) -> Result<()> {
        let json = encode(r)?;
        let taken = self.inner.state.write(|txn| {
            let mut names = txn.open_table(NETWORK_NAMES)?;
            if names.get(r.name.as_str())?.is_some() {
                return Ok(true);
            }
            names.insert(r.name.as_str(), r.id.as_str())?;
            txn.open_table(NETWORKS)?
                .insert(r.id.as_str(), json.as_slice())?;
            if let (Some(gw), Some(_)) = (r.gateway, r.subnet) {
                let key = format!("{}/{gw}", r.id);
                txn.open_table(IP_LEASES)?.insert(key.as_str(), "gateway")?;
            }
            Ok(false)
        })?;
        if taken {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                r.name
            ))
            .into());
        }
        Ok(())
    }

    /// The first default pool overlapping no network and no host route.
    fn free_pool(&self, recs: &[NetworkRecord]) -> Result<Ipv4Net> {
        let routes = ipam::host_routes();
        ipam::default_pools()
            .find(|p| {
                !recs.iter().filter_map(|r| r.subnet).any(|s| s.overlaps(p))
                    && !routes.iter().any(|r| r.overlaps(p))
            })
            .ok_or_else(|| {
                NetworkError::Forbidden(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
                )
                .into()
            })
    }

    /// The record of a network by ID, name or unique ID prefix.
    pub fn get(&self, id_or_name: &str) -> Result<NetworkRecord> {
        let id = self.resolve(id_or_name)?;
        let raw = self.inner.state.read(|txn| {
            Ok(txn
                .open_table(NETWORKS)?
                .get(id.as_str())?
                .map(|v| v.value().to_vec()))
        })?;
        match raw {
            Some(b) => decode(&id, &b),
            None => Err(NetworkError::NotFound(id_or_name.to_string()).into()),
        }
    }

    /// The full ID: an exact ID, an exact name, then a unique ID prefix (Docker's order).
    pub fn resolve(&self, id_or_name: &str) -> Result<String> {
        let nf = || Error::from(NetworkError::NotFound(id_or_name.to_string()));
        if id_or_name.is_empty() {
            return Err(nf());
        }
        let found = self.inner.state.read(|txn| {
            let nets = txn.open_table(NETWORKS)?;
            if nets.get(id_or_name)?.is_some() {
                return Ok(vec![id_or_name.to_string()]);
            }
            if let Some(id) = txn.open_table(NETWORK_NAMES)?.get(id_or_name)? {
                return Ok(vec![id.value().to_string()]);
            }
            let mut m = Vec::new();
            for row in nets.range(id_or_name..)? {
                let (k, _) = row?;
                if !k.value().starts_with(id_or_name) {
                    break;
                }
                m.push(k.value().to_string());
            }
            Ok(m)
        })?;
        match found.len() {
            1 => Ok(found.into_iter().next().unwrap_or_default()),
            0 => Err(nf()),
            _ => Err(NetworkError::Invalid(format!(
                "network {id_or_name} is ambiguous ({} matches found based on ID prefix)",
                found.len()
            ))
            .into()),
        }
    }

    /// `POST /networks/create`.
    pub async fn create(&self, req: NetworkCreateRequest) -> Result<NetworkCreateResponse> {
        let s = self.clone();
        let resp = tokio::task::spawn_blocking(move || s.create_blocking(req, false))
            .await
            .map_err(|e| NetworkError::Internal(e.to_string()))??;
        if let Ok(r) = self.get(&resp.id) {
            self.serve_dns(&r).await;
        }
        Ok(resp)
    }

    /// Creates a bridge network, or with `overlay` the local part of a swarm network.
    fn create_blocking(
        &self,
        req: NetworkCreateRequest,
        overlay: bool,
    ) -> Result<NetworkCreateResponse> {
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        match driver.as_str() {
            "bridge" => {}
            overlay::DRIVER if overlay => {}
            overlay::DRIVER => {
                return Err(NetworkError::Forbidden(
                    "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.".into(),
                )
                .into());
            }
            "host" | "null" => {
                return Err(NetworkError::Forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                ))
                .into());
            }
            other => {
                return Err(NetworkError::NotFound(format!("plugin \"{other}\"")).into());
            }
        }
        let _g = lock(&self.inner.lock);
        let recs = self.records()?;
        if recs.iter().any(|r| r.name == req.name) {
            return Err(NetworkError::Conflict(format!(
                "network with name {} already exists",
                req.name
            ))
            .into());
        }
        let cfgs = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        let cfg = cfgs
            .into_iter()
            .find(|c| c.subnet.as_deref().is_none_or(|s| !s.contains(':')))
            .unwrap_or_default();
        let parse = |s: &str| -> Result<Ipv4Net> {
            s.parse::<Ipv4Net>()
                .map_err(|e| NetworkError::Invalid(e).into())
        };
        let subnet = match cfg.subnet.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => {
                let n = parse(s)?.normalised();
                if let Some(o) = recs
                    .iter()
                    .find(|r| r.subnet.is_some_and(|x| x.overlaps(&n)))
                {
                    tracing::debug!(network = %o.name, "subnet overlaps");
                    return Err(NetworkError::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    )
                    .into());
                }
                n
            }
            None => {
                if cfg.ip_range.is_some() || cfg.gateway.is_some() {
                    return Err(NetworkError::Invalid(
                        "invalid pool request: gateway or ip-range given without a subnet".into(),
                    )
                    .into());
                }
                self.free_pool(&recs)?
            }
        };
        let ip_range = match cfg.ip_range.as_deref().filter(|s| !s.is_empty()) {
            Some(r) => {
                let r = parse(r)?.normalised();
                if !subnet.contains(r.addr) || r.prefix < subnet.prefix {
                    return Err(NetworkError::Invalid(format!(
                        "invalid pool request: ip-range {r} is not within subnet {subnet}"
                    ))
                    .into());
                }
                Some(r)
            }
            None => None,
        };
        let gateway = match cfg.gateway.as_deref().filter(|s| !s.is_empty()) {
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| NetworkError::Invalid(format!("invalid gateway address {g}")))?;
                if !subnet.contains(g) {
                    return Err(NetworkError::Invalid(format!(
                        "no matching subnet for gateway {g}"
                    ))
                    .into());
                }
                g
            }
            None => Ipv4Addr::from(subnet.network() + 1),
        };
        let opts = req.options.clone().unwrap_or_default();
        let id = crate::container::name::new_id();
        let bridge = match opts.get("com.docker.network.bridge.name") {
            Some(b) if !b.is_empty() => {
                if b.len() > 15 {
                    return Err(NetworkError::Invalid(format!(
                        "bridge name {b} is longer than 15 characters"
                    ))
                    .into());
                }
                if recs.iter().any(|r| &r.bridge == b) {
                    return Err(NetworkError::Forbidden(format!(
                        "bridge name {b} is already used by another network"
                    ))
                    .into());
                }
                b.clone()
            }
            _ => format!("berth-{}", &id[..8]),
        };
        let mtu = match opts.get("com.docker.network.driver.mtu") {
            Some(m) => m
                .parse::<u32>()
                .map_err(|_| NetworkError::Invalid(format!("invalid MTU {m}")))?,
            None => 0,
        };
        let masquerade = opts
            .get("com.docker.network.bridge.enable_ip_masquerade")
            .is_none_or(|v| v != "false");
        let rec = NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            driver,
            created: berth_runtime::state::now_rfc3339(),
            subnet: Some(subnet),
            gateway: Some(gateway),
            ip_range,
            internal: req.internal.unwrap_or(false),
            attachable: req.attachable.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default(),
            options: opts,
            bridge,
            mtu,
            masquerade,
            predefined: false,
        };
        self.insert_record(&rec)?;
        let made = self
            .ensure_bridge(&rec)
            .and_then(|()| self.ensure_vxlan(&rec))
            .and_then(|()| self.apply_rules());
        if let Err(e) = made {
            self.drop_record(&rec);
            if let Some(dev) = rec.vxlan() {
                self.del_link(&dev);
            }
            self.del_link(&rec.bridge);
            let _ = self.apply_rules();
            return Err(e);
        }
        Ok(NetworkCreateResponse {
            id,
            warning: String::new(),
        })
    }

    fn drop_record(&self, r: &NetworkRecord) {
        let prefix = format!("{}/", r.id);
        let _ = self.inner.state.write(|txn| {
            txn.open_table(NETWORKS)?.remove(r.id.as_str())?;
            txn.open_table(NETWORK_NAMES)?.remove(r.name.as_str())?;
            let mut l = txn.open_table(IP_LEASES)?;
            let keys: Vec<String> = l
                .range(prefix.as_str()..)?
                .filter_map(|x| x.ok())
                .map(|(k, _)| k.value().to_string())
                .take_while(|k| k.starts_with(&prefix))
                .collect();
            for k in keys {
                l.remove(k.as_str())?;
            }
            Ok(())
        });
    }

    /// Endpoints on one network.
    pub fn endpoints_on(&self, net_id: &str) -> Result<Vec<EndpointRecord>> {
        Ok(self
            .all_endpoints()?
            .into_iter()
            .filter(|e| e.network_id == net_id)
            .collect())
    }

    /// Endpoints of one container, in attachment order (`eth0` first).
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        let mut v: Vec<EndpointRecord> = self
            .all_endpoints()?
            .into_iter()
            .filter(|e| e.container_id == container_id)
            .collect();
        v.sort_by_key(|e| {
            e.ifname
                .trim_start_matches("eth")
                .parse::<u32>()
                .unwrap_or(0)
        });
        Ok(v)
    }

    /// The nftables table this engine owns.
    pub fn table(&self) -> String {
        self.inner.opts.table()
    }

    /// The sandbox of a running container.
    pub fn sandbox_of(&self, container_id: &str) -> Result<Option<SandboxRecord>> {
        let raw = self.inner.state.read(|txn| {
            Ok(txn
                .open_table(SANDBOXES)?
                .get(container_id)?
                .map(|v| v.value().to_vec()))
        })?;
        raw.map(|b| decode(container_id, &b)).transpose()
    }

    /// `GET /networks/{id}`.
    pub fn inspect(&self, id_or_name: &str) -> Result<NetworkInspect> {
        let r = self.get(id_or_name)?;
        let s = r.summary();
        let containers = self
            .endpoints_on(&r.id)?
            .into_iter()
            .map(|e| {
                (
                    e.container_id.clone(),
                    EndpointResource {
                        name: Some(e.container_name.clone()),
                        endpoint_id: Some(e.endpoint_id.clone()),
                        mac_address: Some(e.mac.clone()),
                        ipv4_address: Some(format!("{}/{}", e.ip, e.prefix)),
                        ipv6_address: Some(String::new()),
                    },
                )
            })
            .collect();
        Ok(NetworkInspect {
            name: s.name,
            id: s.id,
            created: s.created,
            scope: s.scope,
            driver: s.driver,
            ipam: s.ipam,
            internal: s.internal,
            attachable: s.attachable,
            ingress: s.ingress,
            config_only: s.config_only,
            config_from: Some(bollard_stubs::models::ConfigReference {
                network: Some(String::new()),
            }),
            options: s.options,
            labels: s.labels,
            containers: Some(containers),
            ..Default::default()
        })
    }

    /// `GET /networks`, unfiltered, by name.
    pub fn list(&self) -> Result<Vec<NetworkSummary>> {
        let mut v = self.records()?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v.iter().map(NetworkRecord::summary).collect())
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove(&self, id_or_name: &str) -> Result<()> {
        let s = self.clone();
        let n = id_or_name.to_string();
        tokio::task::spawn_blocking(move || s.remove_blocking(&n))
            .await
            .map_err(|e| NetworkError::Internal(e.to_string()))?
    }

    fn remove_blocking(&self, id_or_name: &str) -> Result<()> {
        let _g = lock(&self.inner.lock);
        let r = self.get(id_or_name)?;
        if r.predefined {
            return Err(NetworkError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                r.name
            ))
            .into());
        }
        if !self.endpoints_on(&r.id)?.is_empty() {
            return Err(NetworkError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                r.name, r.id
            ))
            .into());
        }
        // Link first: a crash in between leaves a record whose bridge `open` re-creates,
        // never a bridge without a record.
        if let Some(dev) = r.vxlan() {
            self.drop_mesh(&r);
            self.del_link(&dev);
            self.forget_peers(&r.id);
        }
        self.del_link(&r.bridge);
        self.drop_record(&r);
        self.stop_dns(&r.id);
        self.apply_rules()
    }

    /// Removes user-defined networks without endpoints whose labels match every
    /// `key` / `key=value` in `labels`; returns their names.
    pub async fn prune(&self, labels: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for r in self.records()? {
            if r.predefined || !self.endpoints_on(&r.id)?.is_empty() {
                continue;
            }
            let ok = labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
                None => r.labels.contains_key(l),
            });
            if ok && self.remove(&r.id).await.is_ok() {
                out.push(r.name);
            }
        }
        Ok(out)
    }

    /// Rebuilds the nftables table from the store.
    fn apply_rules(&self) -> Result<()> {
        let nets: Vec<nft::NetRules> = self
            .records()?
            .iter()
            .filter(|r| r.bridged())
            .filter_map(NetworkRecord::rules)
            .collect();
        let ports: Vec<nft::PortRule> = self
            .sandboxes()?
            .iter()
            .flat_map(|b| b.ports.iter().map(PublishedPort::rule))
            .collect();
        nft::apply(&nft::render(&self.inner.opts.table(), &nets, &ports))
            .map_err(internal("nftables"))
    }
}
