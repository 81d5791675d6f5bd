//! Service discovery: keeps the embedded DNS server in step with the networks and endpoints
//! in the store. Each user-defined bridge network gets a listener on its gateway address; the
//! names of every endpoint on it (container name, aliases, short id, hostname) resolve to the
//! endpoint's address. The default `bridge` has none: its containers use the host's resolvers,
//! as with Docker.

use super::dns::Dns;
use super::{EndpointRecord, NetworkRecord, NetworkService, lock};
use std::collections::HashSet;
use std::net::IpAddr;

/// The server and what is registered with it.
pub(super) struct Discovery {
    /// The embedded DNS server.
    pub dns: Dns,
    /// `(network, container)` pairs registered with `dns`.
    registered: std::sync::Mutex<HashSet<(String, String)>>,
}

impl Discovery {
    /// A server forwarding to the host's resolvers.
    pub fn new() -> Self {
        let dns = Dns::new(Dns::host_upstreams());
        dns.set_search_domains(Dns::host_search_domains());
        Self {
            dns,
            registered: Default::default(),
        }
    }
}

/// Whether containers on `r` resolve each other's names through the embedded server.
fn has_dns(r: &NetworkRecord) -> bool {
    r.bridged() && !r.predefined && r.gateway.is_some()
}

impl NetworkService {
    /// Starts a listener for every user-defined bridge network (at open).
    pub(super) async fn serve_all_dns(&self) {
        let recs = match self.records() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "dns: reading networks");
                return;
            }
        };
        for r in recs.iter().filter(|r| has_dns(r)) {
            self.serve_dns(r).await;
        }
        self.refresh_dns();
    }

    /// Starts the listener of one network; a failure leaves the network without names.
    pub(super) async fn serve_dns(&self, r: &NetworkRecord) {
        let Some(gw) = r.gateway.filter(|_| has_dns(r)) else {
            return;
        };
        if let Err(e) = self
            .inner
            .discovery
            .dns
            .serve_network(&r.id, IpAddr::V4(gw))
            .await
        {
            tracing::warn!(network = %r.name, error = %e, "dns listener");
        }
    }

    /// Stops the listener of a removed network.
    pub(super) fn stop_dns(&self, network_id: &str) {
        self.inner.discovery.dns.stop_network(network_id);
        self.inner
            .discovery
            .dns
            .set_network_names(network_id, Vec::new());
        lock(&self.inner.discovery.registered).retain(|(n, _)| n != network_id);
    }

    /// Registers the endpoints a container start just made (cheaper than [`refresh_dns`],
    /// which reads every endpoint of the store).
    pub(super) fn register_dns(&self, made: &[(&NetworkRecord, &EndpointRecord)]) {
        let d = &self.inner.discovery;
        let mut registered = lock(&d.registered);
        for (_, e) in made.iter().filter(|(n, _)| has_dns(n)) {
            let key = (e.network_id.clone(), e.container_id.clone());
            if registered.insert(key) {
                d.dns.add_endpoint(
                    &e.network_id,
                    &e.container_id,
                    IpAddr::V4(e.ip),
                    e.dns_names.clone(),
                );
            }
        }
    }

    /// Registers every endpoint of the store with the server and forgets the ones gone; called
    /// after changes other than a start (stop, connect, disconnect, repair).
    pub(super) fn refresh_dns(&self) {
        let (Ok(recs), Ok(eps)) = (self.records(), self.all_endpoints()) else {
            return;
        };
        let named: HashSet<&str> = recs
            .iter()
            .filter(|r| has_dns(r))
            .map(|r| r.id.as_str())
            .collect();
        let d = &self.inner.discovery;
        let mut registered = lock(&d.registered);
        let mut now = HashSet::new();
        for e in eps.iter().filter(|e| named.contains(e.network_id.as_str())) {
            let key = (e.network_id.clone(), e.container_id.clone());
            if !registered.contains(&key) {
                d.dns.add_endpoint(
                    &e.network_id,
                    &e.container_id,
                    IpAddr::V4(e.ip),
                    e.dns_names.clone(),
                );
            }
            now.insert(key);
        }
        for (n, c) in registered.difference(&now) {
            d.dns.remove_endpoint(n, c);
        }
        *registered = now;
    }
}
