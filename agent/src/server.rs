//! Listeners: UNIX sockets and TCP (with TLS), each connection served by hyper with HTTP
//! upgrades enabled, all stopped together on shutdown.

use crate::api;
use crate::daemon::AppState;
use axum::body::Body;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long in-flight requests may finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(3);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A UNIX socket path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

/// Errors of the listeners.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `-H` could not be understood.
    #[error("invalid -H {0:?}: expected unix:///path or tcp://ADDR:PORT")]
    BadHost(String),
    /// Plain TCP on an address other machines can reach.
    #[error(
        "refusing to listen on {0} without TLS: use --tlsverify with --tlscacert, --tlscert and --tlskey, or a loopback address"
    )]
    InsecureTcp(SocketAddr),
    /// A socket could not be bound or prepared.
    #[error("{op} {what}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The address or path.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Listen {
    /// Parses `unix:///path`, `tcp://host:port` (or a bare `host:port`).
    pub fn parse(s: &str) -> Result<Self, ServerError> {
        let bad = || ServerError::BadHost(s.to_string());
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(bad());
            }
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        let addr = s.strip_prefix("tcp://").unwrap_or(s);
        let addr = addr.trim_end_matches('/');
        let addr = if addr.starts_with(':') {
            format!("0.0.0.0{addr}")
        } else if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:2376")
        };
        let addr = if let Some(rest) = addr.strip_prefix("localhost:") {
            format!("127.0.0.1:{rest}")
        } else {
            addr
        };
        addr.parse().map(Self::Tcp).map_err(|_| bad())
    }
}

/// Bound listeners, ready to serve.
#[derive(Debug)]
pub struct Listeners {
    unix: Vec<(UnixListener, PathBuf)>,
    tcp: Vec<TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Listeners {
    /// Binds every address; TCP without TLS only on loopback. UNIX sockets get mode 0660
    /// and, if given, the group `gid`.
    pub async fn bind(
        addrs: &[Listen],
        tls: Option<Arc<rustls::ServerConfig>>,
        gid: Option<u32>,
    ) -> Result<Self, ServerError> {
        let mut out = Self {
            unix: vec![],
            tcp: vec![],
            tls,
        };
        for a in addrs {
            match a {
                Listen::Unix(p) => out.unix.push((bind_unix(p, gid)?, p.clone())),
                Listen::Tcp(addr) => {
                    if out.tls.is_none() && !addr.ip().is_loopback() {
                        return Err(ServerError::InsecureTcp(*addr));
                    }
                    let l = TcpListener::bind(addr)
                        .await
                        .map_err(|source| ServerError::Io {
                            op: "bind",
                            what: addr.to_string(),
                            source,
                        })?;
                    out.tcp.push(l);
                }
            }
        }
        Ok(out)
    }

    /// The bound TCP addresses (port 0 resolved).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` turns true, then drains and removes the UNIX sockets.
    pub async fn serve(self, state: AppState, mut shutdown: watch::Receiver<bool>) {
        let router = api::router(state);
        let mut accept = JoinSet::new();
        let conns: Arc<tokio::sync::Mutex<JoinSet<()>>> = Arc::default();
        let mut paths = Vec::new();
        for (l, p) in self.unix {
            paths.push(p);
            let (router, conns, sd) = (router.clone(), conns.clone(), shutdown.clone());
            accept.spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => {
                            let c = serve_conn(s, router.clone(), sd.clone());
                            conns.lock().await.spawn(c);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept on UNIX socket failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        for l in self.tcp {
            let (router, conns, sd) = (router.clone(), conns.clone(), shutdown.clone());
            let tls = self.tls.clone().map(tokio_rustls::TlsAcceptor::from);
            accept.spawn(async move {
                loop {
                    let (s, peer) = match l.accept().await {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept on TCP failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = s.set_nodelay(true);
                    let (router, sd) = (router.clone(), sd.clone());
                    match tls.clone() {
                        None => {
                            conns.lock().await.spawn(serve_conn(s, router, sd));
                        }
                        Some(acc) => {
                            conns.lock().await.spawn(async move {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acc.accept(s))
                                    .await
                                {
                                    Ok(Ok(t)) => serve_conn(t, router, sd).await,
                                    Ok(Err(e)) => {
                                        tracing::info!(%peer, error = %e, "TLS handshake refused")
                                    }
                                    Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
            });
        }
        // Reap finished connection tasks while waiting, so the set stays small.
        loop {
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { break },
                _ = tokio::time::sleep(Duration::from_secs(5)) => {
                    let mut c = conns.lock().await;
                    while c.try_join_next().is_some() {}
                }
            }
        }
        accept.shutdown().await;
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
        let mut c = conns.lock().await;
        let drained = tokio::time::timeout(DRAIN, async { while c.join_next().await.is_some() {} });
        if drained.await.is_err() {
            tracing::info!("aborting connections still open after {DRAIN:?}");
            c.shutdown().await;
        }
    }
}

fn bind_unix(path: &Path, gid: Option<u32>) -> Result<UnixListener, ServerError> {
    let io = |op, source| ServerError::Io {
        op,
        what: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create parent of", e))?;
    }
    // A socket file left by a daemon that died; a live one answers connect.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io(
                "bind",
                std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another daemon is listening there",
                ),
            ));
        }
        std::fs::remove_file(path).map_err(|e| io("remove stale", e))?;
    }
    let l = UnixListener::bind(path).map_err(|e| io("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io("chmod", e))?;
    if let Some(g) = gid {
        std::os::unix::fs::chown(path, None, Some(g)).map_err(|e| io("chown", e))?;
    }
    Ok(l)
}

async fn serve_conn<S>(stream: S, router: axum::Router, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        async move { Ok::<_, std::convert::Infallible>(api::handle(router, req.map(Body::new)).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = async { shutdown.wait_for(|v| *v).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The group ID of a group name, from `/etc/group`.
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    std::fs::read_to_string("/etc/group")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next()? == name).then_some(())?;
            f.nth(1)?.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Listen::parse("unix:///run/berth/berth.sock").unwrap(),
            Listen::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            Listen::parse("tcp://127.0.0.1:2376").unwrap(),
            Listen::Tcp("127.0.0.1:2376".parse().unwrap())
        );
        assert_eq!(
            Listen::parse("tcp://:2376").unwrap(),
            Listen::Tcp("0.0.0.0:2376".parse().unwrap())
        );
        assert!(Listen::parse("unix://").is_err());
    }
}
