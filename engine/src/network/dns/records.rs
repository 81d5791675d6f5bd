//! Who is where: the names each network resolves and the networks each container is on.

use std::collections::HashMap;
use std::net::IpAddr;

/// One container's attachment to one network.
struct Endpoint {
    ip: IpAddr,
    names: Vec<String>,
}

/// The records of one network, rebuilt from its endpoints on every change so lookups stay plain
/// map reads.
#[derive(Default)]
pub(super) struct NetworkRecords {
    endpoints: HashMap<String, Endpoint>,
    /// Names given for the whole network (swarm services, their VIPs and tasks elsewhere).
    services: Vec<(String, Vec<IpAddr>)>,
    names: HashMap<Box<str>, Vec<IpAddr>>,
    reverse: HashMap<IpAddr, Box<str>>,
}

impl NetworkRecords {
    fn rebuild(&mut self) {
        self.names.clear();
        self.reverse.clear();
        let mut ids: Vec<&String> = self.endpoints.keys().collect();
        // A stable order makes round-robin start from the same place for everyone.
        ids.sort();
        for id in ids {
            let endpoint = &self.endpoints[id];
            for name in &endpoint.names {
                let ips = self.names.entry(name.as_str().into()).or_default();
                if !ips.contains(&endpoint.ip) {
                    ips.push(endpoint.ip);
                }
            }
            if let Some(first) = endpoint.names.first() {
                self.reverse
                    .entry(endpoint.ip)
                    .or_insert_with(|| first.as_str().into());
            }
        }
        for (name, addrs) in &self.services {
            let ips = self.names.entry(name.as_str().into()).or_default();
            for ip in addrs {
                if !ips.contains(ip) {
                    ips.push(*ip);
                }
            }
        }
    }

    /// The addresses `name` (lower-cased, no trailing dot) resolves to here.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.names.get(name).map(Vec::as_slice)
    }

    /// The name `ip` reverses to here.
    pub fn reverse(&self, ip: &IpAddr) -> Option<&str> {
        self.reverse.get(ip).map(|n| &**n)
    }
}

/// Every network's records plus the index from a source address to the asking container.
#[derive(Default)]
pub(super) struct Records {
    networks: HashMap<String, NetworkRecords>,
    container_by_ip: HashMap<IpAddr, String>,
    networks_of: HashMap<String, Vec<String>>,
    /// Lower-cased search domains a resolver may have appended to a container name.
    pub search_domains: Vec<String>,
}

/// Normalises a name the way queries are normalised: lower case, no trailing dot.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Records {
    /// Adds or replaces `container`'s endpoint on `network`.
    pub fn add(&mut self, network: &str, container: &str, ip: IpAddr, names: Vec<String>) {
        let mut names: Vec<String> = names
            .iter()
            .map(|n| normalise(n))
            .filter(|n| !n.is_empty())
            .collect();
        names.dedup();
        let net = self.networks.entry(network.to_owned()).or_default();
        if let Some(old) = net
            .endpoints
            .insert(container.to_owned(), Endpoint { ip, names })
        {
            if old.ip != ip {
                self.container_by_ip.remove(&old.ip);
            }
        }
        net.rebuild();
        self.container_by_ip.insert(ip, container.to_owned());
        let nets = self.networks_of.entry(container.to_owned()).or_default();
        if !nets.iter().any(|n| n == network) {
            nets.push(network.to_owned());
        }
    }

    /// Replaces the network-wide names of `network` (empty: none).
    pub fn set_services(&mut self, network: &str, names: Vec<(String, Vec<IpAddr>)>) {
        let names: Vec<(String, Vec<IpAddr>)> = names
            .into_iter()
            .map(|(n, ips)| (normalise(&n), ips))
            .filter(|(n, _)| !n.is_empty())
            .collect();
        if names.is_empty() && !self.networks.contains_key(network) {
            return;
        }
        let net = self.networks.entry(network.to_owned()).or_default();
        net.services = names;
        net.rebuild();
        if net.endpoints.is_empty() && net.services.is_empty() {
            self.networks.remove(network);
        }
    }

    /// Removes `container`'s endpoint on `network`, dropping empty entries.
    pub fn remove(&mut self, network: &str, container: &str) {
        let Some(net) = self.networks.get_mut(network) else {
            return;
        };
        let Some(old) = net.endpoints.remove(container) else {
            return;
        };
        net.rebuild();
        if net.endpoints.is_empty() && net.services.is_empty() {
            self.networks.remove(network);
        }
        if self
            .container_by_ip
            .get(&old.ip)
            .is_some_and(|c| c == container)
        {
            self.container_by_ip.remove(&old.ip);
        }
        if let Some(nets) = self.networks_of.get_mut(container) {
            nets.retain(|n| n != network);
            if nets.is_empty() {
                self.networks_of.remove(container);
            }
        }
    }

    /// The networks whose names a query from `source`, received on `listener`'s network, may see.
    pub fn scopes<'a>(
        &'a self,
        source: IpAddr,
        listener: &'a str,
    ) -> impl Iterator<Item = &'a NetworkRecords> {
        let (nets, fallback): (&[String], Option<&str>) = match self
            .container_by_ip
            .get(&source)
            .and_then(|c| self.networks_of.get(c))
        {
            Some(nets) => (nets, None),
            None => (&[], Some(listener)),
        };
        fallback
            .into_iter()
            .chain(nets.iter().map(String::as_str))
            .filter_map(|n| self.networks.get(n))
    }
}
