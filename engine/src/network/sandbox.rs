//! A running container's network: its pinned namespace, one veth endpoint per network with
//! an address from IPAM, published ports, and the teardown that undoes all of it.

use super::netlink::{self, Netlink};
use super::{
    EndpointRecord, Error, NetworkError, NetworkRecord, NetworkService, Result, SandboxRecord,
    ipam, lock, netns, ports,
};
use crate::state::{ENDPOINTS, IP_LEASES, SANDBOXES};
use bollard_stubs::models::PortMap;
use redb::ReadableTable;
use sha2::Digest;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// One network a container joins.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    /// Network ID or name.
    pub network: String,
    /// Network-scoped aliases.
    pub aliases: Vec<String>,
    /// A static address (`IPAMConfig.IPv4Address`).
    pub ipv4: Option<Ipv4Addr>,
}

/// What a container start asks of the network.
#[derive(Debug, Clone, Default)]
pub struct SandboxRequest {
    /// The container.
    pub container_id: String,
    /// Its name, without `/`.
    pub name: String,
    /// Its hostname.
    pub hostname: String,
    /// Networks, the first one giving the default route.
    pub endpoints: Vec<EndpointRequest>,
    /// `HostConfig.PortBindings`.
    pub port_bindings: Option<PortMap>,
    /// `HostConfig.PublishAllPorts`.
    pub publish_all: bool,
    /// `Config.ExposedPorts` keys.
    pub exposed: Vec<String>,
}

/// What the container's spec and files need from a prepared sandbox.
#[derive(Debug, Clone)]
pub struct SandboxInfo {
    /// The namespace to join.
    pub netns: PathBuf,
    /// The endpoints, `eth0` first.
    pub endpoints: Vec<EndpointRecord>,
    /// Whether the first network is user-defined (embedded DNS) rather than `bridge`.
    pub user_network: bool,
}

fn veth_name(container: &str, net: &str) -> String {
    let h = sha2::Sha256::digest(format!("{container}/{net}"));
    let hex: String = h.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("bv{}", &hex[..11])
}

/// An endpoint checked and prepared, its address not yet chosen.
struct LeasePlan {
    first: u32,
    last: u32,
    want: Option<Ipv4Addr>,
    endpoint: EndpointRecord,
}

/// Inside a write transaction: takes the wanted or first free address of the plan and records
/// the lease and the endpoint; `None` when no address is available.
fn lease_in(
    txn: &redb::WriteTransaction,
    plan: &LeasePlan,
) -> std::result::Result<Option<EndpointRecord>, redb::Error> {
    let net = &plan.endpoint.network_id;
    let key_of = |ip: Ipv4Addr| format!("{net}/{ip}");
    let mut t = txn.open_table(IP_LEASES)?;
    let ip = match plan.want {
        Some(ip) if t.get(key_of(ip).as_str())?.is_some() => return Ok(None),
        Some(ip) => ip,
        None => {
            let mut found = None;
            for a in plan.first..=plan.last {
                let ip = Ipv4Addr::from(a);
                if t.get(key_of(ip).as_str())?.is_none() {
                    found = Some(ip);
                    break;
                }
            }
            match found {
                Some(ip) => ip,
                None => return Ok(None),
            }
        }
    };
    let container = plan.endpoint.container_id.as_str();
    t.insert(key_of(ip).as_str(), container)?;
    let mut e = plan.endpoint.clone();
    e.ip = ip;
    e.mac = ipam::mac_string(ipam::mac_for(ip));
    let json = serde_json::to_vec(&e).unwrap_or_default();
    txn.open_table(ENDPOINTS)?
        .insert(format!("{net}/{container}").as_str(), json.as_slice())?;
    Ok(Some(e))
}

/// Docker's messages when a plan finds no address.
fn lease_error(plan: &LeasePlan) -> Error {
    if plan.want.is_some() {
        NetworkError::Forbidden("Address already in use".into()).into()
    } else {
        NetworkError::Forbidden(
            "no available IPv4 addresses on this network's address pools".into(),
        )
        .into()
    }
}

impl NetworkService {
    fn netns_path(&self, container: &str) -> PathBuf {
        self.inner.opts.exec_root.join("netns").join(container)
    }

    /// Checks a request against network `n` and prepares its endpoint; the address is chosen
    /// later, inside the transaction that records it ([`lease_in`]).
    fn plan_lease(
        &self,
        n: &NetworkRecord,
        container: &str,
        name: &str,
        hostname: &str,
        req: &EndpointRequest,
        ifname: &str,
    ) -> Result<LeasePlan> {
        let subnet = n
            .subnet
            .ok_or_else(|| NetworkError::Invalid(format!("network {} has no subnet", n.name)))?;
        if let Some(ip) = req.ipv4 {
            let in_range = n.ip_range.map_or(subnet.contains(ip), |r| {
                r.contains(ip) || subnet.contains(ip)
            });
            if !in_range || u32::from(ip) == subnet.network() || u32::from(ip) == subnet.broadcast()
            {
                return Err(NetworkError::Invalid(format!(
                    "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}"
                ))
                .into());
            }
        }
        let pool = n.ip_range.unwrap_or(subnet);
        let mut aliases = req.aliases.clone();
        aliases.retain(|a| !a.is_empty());
        let mut dns_names = vec![name.to_string()];
        dns_names.extend(aliases.iter().cloned());
        let short = container.get(..12).unwrap_or(container).to_string();
        if !dns_names.contains(&short) {
            dns_names.push(short);
        }
        if !hostname.is_empty() && !dns_names.iter().any(|d| d == hostname) {
            dns_names.push(hostname.to_string());
        }
        Ok(LeasePlan {
            first: pool.network().max(subnet.network() + 1),
            last: pool.broadcast().min(subnet.broadcast() - 1),
            want: req.ipv4,
            endpoint: EndpointRecord {
                network_id: n.id.clone(),
                container_id: container.to_string(),
                container_name: name.to_string(),
                endpoint_id: crate::container::name::new_id(),
                ip: Ipv4Addr::UNSPECIFIED,
                prefix: subnet.prefix,
                gateway: n.gateway,
                mac: String::new(),
                aliases,
                dns_names,
                static_ip: req.ipv4.is_some(),
                veth: veth_name(container, &n.id),
                ifname: ifname.to_string(),
            },
        })
    }

    /// Picks `want` or the first free address of `n` and records the lease and endpoint, in a
    /// transaction of its own (`network connect`).
    fn lease(
        &self,
        n: &NetworkRecord,
        container: &str,
        name: &str,
        hostname: &str,
        req: &EndpointRequest,
        ifname: &str,
    ) -> Result<EndpointRecord> {
        let plan = self.plan_lease(n, container, name, hostname, req, ifname)?;
        let got = self.inner.state.write(|txn| lease_in(txn, &plan))?;
        got.ok_or_else(|| lease_error(&plan))
    }

    /// Drops one endpoint's record and lease.
    fn unlease(&self, e: &EndpointRecord) {
        let _ = self.inner.state.write(|txn| unlease_in(txn, e));
    }

    /// Plugs endpoint `e` of network `n` into the namespace behind `ns` (its socket).
    fn plug(
        &self,
        n: &NetworkRecord,
        e: &EndpointRecord,
        ns: &mut Netlink,
        nsfd: i32,
    ) -> Result<()> {
        let master = netlink::index_of(&n.bridge)
            .ok_or_else(|| NetworkError::Internal(format!("bridge {} is missing", n.bridge)))?;
        let mac = ipam::mac_for(e.ip);
        self.with_nl(|nl| {
            match nl.add_veth(&e.veth, &e.ifname, n.mtu, master, nsfd, mac) {
                // The kernel tears down the previous run's namespace asynchronously, and the
                // host end of its veth (named after this container and network, so ours) can
                // outlive it for a moment: a quick restart finds it. Remove it and retry.
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
                    if let Ok(idx) = nl.link_index(&e.veth) {
                        let _ = nl.del_link(idx);
                    }
                    nl.add_veth(&e.veth, &e.ifname, n.mtu, master, nsfd, mac)
                }
                r => r,
            }
        })?;
        let inside = (|| -> std::io::Result<()> {
            let idx = ns.link_index(&e.ifname)?;
            ns.add_addr(idx, e.ip, e.prefix)?;
            ns.set_up(idx)?;
            if e.ifname == "eth0"
                && !n.internal
                && let Some(gw) = e.gateway
            {
                ns.add_default_route(gw)?;
            }
            Ok(())
        })();
        inside.map_err(|err| -> Error {
            NetworkError::Internal(format!("configure {} in the container: {err}", e.ifname)).into()
        })
    }

    /// Creates the container's namespace, endpoints and published ports. Blocking; on error
    /// nothing is left behind.
    pub fn setup_sandbox(&self, req: &SandboxRequest) -> Result<SandboxInfo> {
        let _g = lock(&self.inner.lock);
        let c = req.container_id.as_str();
        let path = self.netns_path(c);
        // A previous run that died without cleanup (checked first: a teardown commits a
        // transaction, and every fdatasync counts in a container's start).
        let leftover = path.exists()
            || self.sandbox_of(c).ok().flatten().is_some()
            || !self.endpoints_of(c).unwrap_or_default().is_empty();
        if leftover {
            self.teardown_locked(c, false);
        }
        let mut nets = Vec::new();
        for r in &req.endpoints {
            let n = self.get(&r.network)?;
            if nets.iter().any(|(x, _): &(NetworkRecord, _)| x.id == n.id) {
                continue;
            }
            nets.push((n, r.clone()));
        }
        let res = (|| -> Result<SandboxInfo> {
            let mut plans = Vec::new();
            for (i, (n, r)) in nets.iter().enumerate() {
                plans.push(self.plan_lease(
                    n,
                    c,
                    &req.name,
                    &req.hostname,
                    r,
                    &format!("eth{i}"),
                )?);
            }
            let default_ip = nets
                .first()
                .and_then(|(n, _)| n.options.get("com.docker.network.bridge.host_binding_ipv4"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            let (mut published, held) = if nets.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                ports::reserve(
                    req.port_bindings.as_ref(),
                    &req.exposed,
                    req.publish_all,
                    default_ip,
                )?
            };
            // Every lease, endpoint and the sandbox in one transaction: one commit per start.
            let leased = self.inner.state.write(|txn| {
                let mut eps = Vec::new();
                for (i, plan) in plans.iter().enumerate() {
                    match lease_in(txn, plan)? {
                        Some(e) => eps.push(e),
                        None => return Ok(Err(i)),
                    }
                }
                if let Some(e) = eps.first() {
                    for p in &mut published {
                        p.ip = e.ip;
                    }
                }
                let sb = SandboxRecord {
                    container_id: c.to_string(),
                    netns: path.clone(),
                    ports: published.clone(),
                };
                let json = serde_json::to_vec(&sb).unwrap_or_default();
                txn.open_table(SANDBOXES)?.insert(c, json.as_slice())?;
                Ok(Ok(eps))
            })?;
            let eps = match leased {
                Ok(eps) => eps,
                Err(i) => return Err(lease_error(&plans[i])),
            };
            let mut ns = netns::create(&path)
                .map_err(|e| NetworkError::Internal(format!("create network namespace: {e}")))?;
            let nsf = std::fs::File::open(&path)
                .map_err(|e| NetworkError::Internal(format!("open {}: {e}", path.display())))?;
            for ((n, _), e) in nets.iter().zip(&eps) {
                self.plug(n, e, &mut ns, nsf.as_raw_fd())?;
            }
            lock(&self.inner.held).insert(c.to_string(), held);
            if !published.is_empty() {
                self.apply_rules()?;
            }
            Ok(SandboxInfo {
                netns: path.clone(),
                endpoints: eps,
                user_network: nets.first().is_some_and(|(n, _)| !n.predefined),
            })
        })();
        match &res {
            Ok(info) => {
                let made: Vec<(&NetworkRecord, &EndpointRecord)> =
                    nets.iter().map(|(n, _)| n).zip(&info.endpoints).collect();
                self.register_dns(&made);
            }
            Err(_) => self.teardown_locked(c, false),
        }
        res
    }

    /// Removes the container's namespace (its veths die with it), endpoints, leases and
    /// published ports. Blocking, best effort, idempotent.
    pub fn teardown_sandbox(&self, container: &str) {
        let _g = lock(&self.inner.lock);
        self.teardown_locked(container, true);
    }

    pub(super) fn teardown_blocking(&self, container: &str, rules: bool) {
        let _g = lock(&self.inner.lock);
        self.teardown_locked(container, rules);
    }

    fn teardown_locked(&self, c: &str, rules: bool) {
        let eps = self.endpoints_of(c).unwrap_or_default();
        let sb = self.sandbox_of(c).ok().flatten();
        let pinned = netns::remove(&self.netns_path(c));
        for e in &eps {
            // A pair whose inner end sat in the pinned namespace goes with it when the kernel
            // frees the namespace, batched and off this path (deleting it here takes the RTNL
            // for ~20 ms a link, serialising every teardown). Without a namespace, a half-made
            // pair may remain on the host: delete it.
            if !pinned && netlink::index_of(&e.veth).is_some() {
                self.del_link(&e.veth);
            }
        }
        lock(&self.inner.held).remove(c);
        self.forget_virtual_ips(c);
        if !eps.is_empty() || sb.is_some() {
            // One transaction for every endpoint and the sandbox. Lazy: teardown runs on exit
            // and removal, both of which recovery repeats when a crash loses this.
            let _ = self.inner.state.write_lazy(|txn| {
                for e in &eps {
                    unlease_in(txn, e)?;
                }
                txn.open_table(SANDBOXES)?.remove(c)?;
                Ok(())
            });
        }
        if rules && sb.is_some_and(|s| !s.ports.is_empty()) {
            if let Err(e) = self.apply_rules() {
                tracing::warn!(container = %c, error = %e, "nftables");
            }
        }
        self.refresh_dns();
    }

    /// Plugs a running container into one more network.
    pub fn connect_running(
        &self,
        container: &str,
        name: &str,
        hostname: &str,
        req: &EndpointRequest,
    ) -> Result<EndpointRecord> {
        let _g = lock(&self.inner.lock);
        let n = self.get(&req.network)?;
        let path = self.netns_path(container);
        let eps = self.endpoints_of(container)?;
        if eps.iter().any(|e| e.network_id == n.id) {
            return Err(NetworkError::Forbidden(format!(
                "endpoint with name {name} already exists in network {}",
                n.name
            ))
            .into());
        }
        let next = (0..)
            .map(|i| format!("eth{i}"))
            .find(|f| !eps.iter().any(|e| &e.ifname == f))
            .unwrap_or_else(|| "eth9".into());
        let e = self.lease(&n, container, name, hostname, req, &next)?;
        let res = (|| -> Result<()> {
            let nsf = std::fs::File::open(&path)
                .map_err(|err| NetworkError::Internal(format!("open {}: {err}", path.display())))?;
            let mut ns = enter(&path)?;
            self.plug(&n, &e, &mut ns, nsf.as_raw_fd())
        })();
        if let Err(err) = res {
            if netlink::index_of(&e.veth).is_some() {
                self.del_link(&e.veth);
            }
            self.unlease(&e);
            return Err(err);
        }
        self.refresh_dns();
        Ok(e)
    }

    /// Unplugs a running container from one network.
    pub fn disconnect_running(&self, container: &str, net_id: &str) -> Result<()> {
        let _g = lock(&self.inner.lock);
        for e in self.endpoints_of(container)? {
            if e.network_id == net_id {
                self.del_link(&e.veth);
                self.unlease(&e);
            }
        }
        self.refresh_dns();
        Ok(())
    }
}

/// A netlink socket inside the namespace pinned at `path`, opened from a short-lived thread.
fn enter(path: &std::path::Path) -> Result<Netlink> {
    let p = path.to_path_buf();
    std::thread::spawn(move || -> std::io::Result<Netlink> {
        let f = std::fs::File::open(&p)?;
        // SAFETY: setns on a namespace fd; only this thread moves and it ends right after.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Netlink::open()
    })
    .join()
    .map_err(|_| NetworkError::Internal("netns thread panicked".into()))?
    .map_err(|e| NetworkError::Internal(format!("enter {}: {e}", path.display())).into())
}

/// Drops endpoint `e` and its address lease (if still its own) inside `txn`.
fn unlease_in(txn: &redb::WriteTransaction, e: &EndpointRecord) -> Result<(), redb::Error> {
    let key = format!("{}/{}", e.network_id, e.container_id);
    let lease = format!("{}/{}", e.network_id, e.ip);
    txn.open_table(ENDPOINTS)?.remove(key.as_str())?;
    let mut l = txn.open_table(IP_LEASES)?;
    let mine = l
        .get(lease.as_str())?
        .is_some_and(|v| v.value() == e.container_id);
    if mine {
        l.remove(lease.as_str())?;
    }
    Ok(())
}
