//! The embedded DNS server that resolves container names on user-defined networks.
//!
//! One UDP and one TCP listener per network on the bridge gateway address; containers' resolv.conf
//! points there. A query's source address tells which container asks, and it sees the names of
//! every network it is connected to; everything else is forwarded to the host's resolvers.

mod forward;
mod records;
mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use records::Records;
use wire::Reject;

/// Plain DNS over UDP: bigger local answers are cut and flagged so the client retries over TCP.
const UDP_LIMIT: usize = 512;
/// Forwarded queries in flight at once; past it queries are dropped and the client retries.
const MAX_FORWARDS: usize = 512;
/// A TCP client idle this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

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

/// The embedded DNS server: cheap to clone, shared by every network it serves. Dropping the last
/// clone stops every listener.
#[derive(Clone)]
pub struct Dns {
    inner: Arc<Inner>,
}

/// Owns the listeners; the tasks hold only [`Shared`], so dropping this stops them.
struct Inner {
    shared: Arc<Shared>,
    listeners: Mutex<HashMap<String, Listener>>,
}

/// What every listener task reads.
struct Shared {
    upstreams: Vec<SocketAddr>,
    records: RwLock<Records>,
    round_robin: AtomicUsize,
    forwards: Arc<Semaphore>,
}

/// The UDP and TCP tasks of one network, aborted when dropped.
struct Listener {
    addr: SocketAddr,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Listener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Dns {
    /// A server forwarding unknown names to `upstreams`, serving no network yet.
    pub fn new(upstreams: Vec<SocketAddr>) -> Dns {
        let shared = Shared {
            upstreams,
            records: RwLock::new(Records::default()),
            round_robin: AtomicUsize::new(0),
            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
        };
        Dns {
            inner: Arc::new(Inner {
                shared: Arc::new(shared),
                listeners: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The host's resolvers: `nameserver` lines of /etc/resolv.conf, port 53; none if unreadable.
    pub fn host_upstreams() -> Vec<SocketAddr> {
        match std::fs::read_to_string("/etc/resolv.conf") {
            Ok(text) => parse_nameservers(&text),
            Err(e) => {
                tracing::warn!(error = %e, "reading /etc/resolv.conf: no DNS upstreams");
                Vec::new()
            }
        }
    }

    /// The host's `search` domains from /etc/resolv.conf; none if unreadable.
    pub fn host_search_domains() -> Vec<String> {
        std::fs::read_to_string("/etc/resolv.conf")
            .map(|text| parse_search(&text))
            .unwrap_or_default()
    }

    /// Lets `web.<domain>` resolve like `web`, for resolvers that append a search domain first.
    pub fn set_search_domains(&self, domains: Vec<String>) {
        let domains = domains
            .iter()
            .map(|d| d.trim_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        self.write_records().search_domains = domains;
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
        if self.serving(network_id) == Some(listen) {
            return Ok(());
        }
        let bind_error = |source| DnsError::Bind {
            network: network_id.to_owned(),
            addr: listen,
            source,
        };
        // A network moving to another address must free its old one first.
        self.stop_network(network_id);
        let udp = match UdpSocket::bind(listen).await {
            Ok(udp) => udp,
            Err(e) if self.serving(network_id) == Some(listen) => {
                tracing::debug!(error = %e, "DNS listener raced with another serve_network");
                return Ok(());
            }
            Err(e) => return Err(bind_error(e)),
        };
        let tcp = bind_tcp(listen).map_err(bind_error)?;
        let network: Arc<str> = network_id.into();
        let udp_task = tokio::spawn(serve_udp(
            Arc::new(udp),
            self.inner.shared.clone(),
            network.clone(),
        ));
        let tcp_task = tokio::spawn(serve_tcp(tcp, self.inner.shared.clone(), network));
        let listener = Listener {
            addr: listen,
            tasks: [udp_task, tcp_task],
        };
        tracing::debug!(network = network_id, %listen, "DNS listening");
        self.listeners().insert(network_id.to_owned(), listener);
        Ok(())
    }

    /// Stops the listeners of `network_id`; its records stay until its endpoints are removed.
    pub fn stop_network(&self, network_id: &str) {
        let stopped = self.listeners().remove(network_id);
        drop(stopped);
    }

    /// Makes `names` (container name, aliases, short id) of `container_id` resolve to `ip` on `network_id`.
    pub fn add_endpoint(
        &self,
        network_id: &str,
        container_id: &str,
        ip: IpAddr,
        names: Vec<String>,
    ) {
        self.write_records()
            .add(network_id, container_id, ip, names);
    }

    /// Makes each name resolve to its addresses on `network_id`, replacing the names set
    /// before (swarm services: a VIP, or task addresses on any node).
    pub fn set_network_names(&self, network_id: &str, names: Vec<(String, Vec<IpAddr>)>) {
        self.write_records().set_services(network_id, names);
    }

    /// Forgets `container_id`'s records on `network_id`.
    pub fn remove_endpoint(&self, network_id: &str, container_id: &str) {
        self.write_records().remove(network_id, container_id);
    }

    fn serving(&self, network_id: &str) -> Option<SocketAddr> {
        self.listeners().get(network_id).map(|l| l.addr)
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listener>> {
        // The map holds no invariant a panicking holder could break halfway.
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_records(&self) -> std::sync::RwLockWriteGuard<'_, Records> {
        self.inner
            .shared
            .records
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn bind_tcp(listen: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A network re-served right after a stop must not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(1024)
}

fn parse_nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next())
        // Scoped IPv6 addresses (fe80::1%eth0) name a host interface; keep the address part.
        .filter_map(|addr| addr.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn parse_search(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            line.strip_prefix("search")
                .or_else(|| line.strip_prefix("domain"))
        })
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect()
}

/// What to do with one received query.
enum Action {
    /// The answer is in the output buffer.
    Reply,
    /// Not ours: ask the upstreams.
    Forward,
    /// Not worth an answer.
    Drop,
}

impl Shared {
    /// Answers `query` from local records into `out` when the name is ours.
    fn answer(
        &self,
        query: &[u8],
        source: IpAddr,
        network: &str,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Action {
        let mut name_buf = [0u8; wire::MAX_NAME];
        let question = match wire::parse_query(query, &mut name_buf) {
            Ok(q) => q,
            Err(Reject::Ignore) => return Action::Drop,
            Err(Reject::Rcode(rcode)) => {
                wire::Response::start(out, query, 12, limit).finish(rcode);
                return Action::Reply;
            }
        };
        if !question.class_is_in() {
            return Action::Forward;
        }
        // The buffer holds only bytes copied from labels, so this fails only on non-UTF-8 names,
        // which no container has.
        let Ok(name) = std::str::from_utf8(&name_buf[..question.name_len]) else {
            return Action::Forward;
        };
        let records = self.records.read().unwrap_or_else(PoisonError::into_inner);
        if question.qtype == wire::TYPE_PTR {
            let Some(ip) = wire::reverse_ip(name) else {
                return Action::Forward;
            };
            let Some(target) = records
                .scopes(source, network)
                .find_map(|net| net.reverse(&ip))
            else {
                return Action::Forward;
            };
            let mut response = wire::Response::start(out, query, question.end, limit);
            response.pointer(target);
            response.finish(0);
            return Action::Reply;
        }
        let own = |name: &str| {
            records
                .scopes(source, network)
                .any(|net| net.lookup(name).is_some())
        };
        let name = if own(name) {
            name
        } else {
            match records
                .search_domains
                .iter()
                .filter_map(|d| name.strip_suffix(d.as_str())?.strip_suffix('.'))
                .find(|short| own(short))
            {
                Some(short) => short,
                None => return Action::Forward,
            }
        };
        let want_v4 = matches!(question.qtype, wire::TYPE_A | wire::TYPE_ANY);
        let want_v6 = matches!(question.qtype, wire::TYPE_AAAA | wire::TYPE_ANY);
        let turn = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let mut response = wire::Response::start(out, query, question.end, limit);
        for ips in records
            .scopes(source, network)
            .filter_map(|net| net.lookup(name))
        {
            let (tail, head) = ips.split_at(turn % ips.len());
            for ip in head.iter().chain(tail) {
                if (ip.is_ipv4() && want_v4) || (ip.is_ipv6() && want_v6) {
                    response.address(*ip);
                }
            }
        }
        // A name of ours with no address of the asked type is NOERROR with no answers, not a
        // question for the upstreams.
        response.finish(0);
        Action::Reply
    }

    /// The upstreams' answer to `query`, or SERVFAIL when none answers.
    async fn forwarded(&self, query: &[u8]) -> Vec<u8> {
        if let Some(answer) = forward::forward(&self.upstreams, query).await {
            return answer;
        }
        let mut out = Vec::new();
        let mut name = [0u8; wire::MAX_NAME];
        let end = wire::parse_query(query, &mut name).map_or(12, |q| q.end);
        wire::Response::start(&mut out, query, end, usize::MAX).finish(wire::RCODE_SERVFAIL);
        out
    }
}

/// Answers datagrams on one network's gateway address until aborted.
async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>, network: Arc<str>) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(UDP_LIMIT);
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!(network = %network, error = %e, "DNS receive failed");
                continue;
            }
        };
        let query = &buf[..n];
        match shared.answer(query, client.ip(), &network, &mut out, UDP_LIMIT) {
            Action::Reply => {
                if let Err(e) = socket.send_to(&out, client).await {
                    tracing::debug!(%client, error = %e, "DNS reply failed");
                }
            }
            Action::Forward => {
                let Ok(permit) = shared.forwards.clone().try_acquire_owned() else {
                    tracing::debug!(%client, "too many DNS queries in flight, dropping one");
                    continue;
                };
                let (socket, shared, query) = (socket.clone(), shared.clone(), query.to_vec());
                tokio::spawn(async move {
                    let answer = shared.forwarded(&query).await;
                    drop(permit);
                    if let Err(e) = socket.send_to(&answer, client).await {
                        tracing::debug!(%client, error = %e, "DNS reply failed");
                    }
                });
            }
            Action::Drop => {}
        }
    }
}

/// Accepts TCP clients on one network's gateway address until aborted.
async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>, network: Arc<str>) {
    loop {
        match listener.accept().await {
            Ok((stream, client)) => {
                tokio::spawn(serve_tcp_client(
                    stream,
                    client.ip(),
                    shared.clone(),
                    network.clone(),
                ));
            }
            Err(e) => {
                tracing::debug!(network = %network, error = %e, "DNS accept failed");
                // Out of descriptors: let some close rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Length-prefixed queries from one TCP client, answered in order.
async fn serve_tcp_client(
    mut stream: TcpStream,
    client: IpAddr,
    shared: Arc<Shared>,
    network: Arc<str>,
) {
    let mut query = Vec::new();
    let mut out = Vec::new();
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        query.resize(usize::from(len), 0);
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let answer = match shared.answer(&query, client, &network, &mut out, usize::from(u16::MAX))
        {
            Action::Reply => &out,
            Action::Forward => {
                out = shared.forwarded(&query).await;
                &out
            }
            Action::Drop => return,
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
