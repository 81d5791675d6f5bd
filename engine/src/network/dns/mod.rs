//! The embedded DNS server that resolves container names on user-defined networks.
//!
//! One UDP and one TCP listener per network on the bridge gateway address; containers' resolv.conf
//! points there. Names a container may see are those of every network it is connected to; the
//! rest is forwarded to the host's resolvers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Errors from the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A listener could not be bound on the network's gateway address.
    #[error("binding DNS listener for network {network} on {addr}: {source}")]
    Bind {
        /// The network the listener serves.
        network: String,
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
}

/// The embedded DNS server: cheap to clone, shared by every network it serves.
#[derive(Clone)]
pub struct Dns {
    inner: Arc<()>,
}

impl Dns {
    /// A server forwarding unknown names to `upstreams`, serving no network yet.
    pub fn new(upstreams: Vec<SocketAddr>) -> Dns {
        let _ = upstreams;
        todo!()
    }

    /// The host's resolvers: `nameserver` lines of /etc/resolv.conf, port 53.
    pub fn host_upstreams() -> Vec<SocketAddr> {
        todo!()
    }

    /// Serves `network_id` on UDP and TCP `listen:53`; calling again for the same address is a no-op.
    pub async fn serve_network(&self, network_id: &str, listen: IpAddr) -> Result<(), DnsError> {
        self.serve_network_on(network_id, SocketAddr::new(listen, 53))
            .await
    }

    /// As [`Dns::serve_network`] on any port (tests, or a non-standard setup).
    pub async fn serve_network_on(
        &self,
        network_id: &str,
        listen: SocketAddr,
    ) -> Result<(), DnsError> {
        let _ = (network_id, listen, &self.inner);
        todo!()
    }

    /// Stops the listeners of `network_id`; its records stay until its endpoints are removed.
    pub fn stop_network(&self, network_id: &str) {
        let _ = network_id;
        todo!()
    }

    /// Makes `names` (container name, aliases, short id) of `container_id` resolve to `ip` on `network_id`.
    pub fn add_endpoint(
        &self,
        network_id: &str,
        container_id: &str,
        ip: IpAddr,
        names: Vec<String>,
    ) {
        let _ = (network_id, container_id, ip, names);
        todo!()
    }

    /// Forgets `container_id`'s records on `network_id`.
    pub fn remove_endpoint(&self, network_id: &str, container_id: &str) {
        let _ = (network_id, container_id);
        todo!()
    }
}
