//! The managers' port (2377 by default): HTTPS for Raft, joins and agent sessions. Each request
//! carries who the peer is (from its verified client certificate) as an extension.

use super::stopped;
use crate::swarm::ca::{PeerIdentity, identity_of};
use axum::body::Body;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The peer of a request on the cluster port.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The remote address.
    pub addr: SocketAddr,
    /// The identity from the client certificate; `None` for a node that has none yet.
    pub identity: Option<PeerIdentity>,
}

impl Peer {
    /// The certificate's identity, or the 401 for a peer without one.
    pub fn node(&self) -> Result<&PeerIdentity, (axum::http::StatusCode, &'static str)> {
        self.identity.as_ref().ok_or((
            axum::http::StatusCode::UNAUTHORIZED,
            "a node certificate is required",
        ))
    }
}

/// Serves `router` on `listener` with TLS until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept on the cluster port failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
        };
        while conns.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let (acceptor, router, sd) = (acceptor.clone(), router.clone(), shutdown.clone());
        conns.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "cluster TLS handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| identity_of(c).ok());
            let peer = Peer { addr, identity };
            serve_conn(tls, router, peer, sd).await;
        });
    }
    conns.shutdown().await;
}

async fn serve_conn<S>(
    stream: S,
    router: axum::Router,
    peer: Peer,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let router = router.clone();
        req.extensions_mut().insert(peer.clone());
        async move {
            let resp = router.oneshot(req.map(Body::new)).await;
            Ok::<_, std::convert::Infallible>(match resp {
                Ok(r) => r,
                Err(e) => match e {},
            })
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "cluster connection ended with an error");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}
