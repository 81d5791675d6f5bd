//! Relaying names the server does not own to the host's resolvers.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::wire;

/// How long one upstream gets before the next is tried.
pub(super) const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The first upstream answer to `query`, which keeps the client's id; None when all fail.
pub(super) async fn forward(upstreams: &[SocketAddr], query: &[u8]) -> Option<Vec<u8>> {
    for upstream in upstreams {
        match ask(*upstream, query).await {
            Ok(answer) => return Some(answer),
            Err(e) => tracing::debug!(%upstream, error = %e, "DNS upstream failed"),
        }
    }
    None
}

/// One upstream over UDP, again over TCP when the answer came back truncated.
async fn ask(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let answer = timeout(UPSTREAM_TIMEOUT, ask_udp(upstream, query))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    if !wire::is_truncated(&answer) {
        return Ok(answer);
    }
    timeout(UPSTREAM_TIMEOUT, ask_tcp(upstream, query))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

async fn ask_udp(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    // Connected: only the upstream's packets arrive, and a closed port fails fast.
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // Stray or stale datagrams carry another id; keep waiting for ours.
        if n >= 12 && wire::id(&buf[..n]) == wire::id(query) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn ask_tcp(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len =
        u16::try_from(query.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut answer = vec![0; usize::from(len)];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}
