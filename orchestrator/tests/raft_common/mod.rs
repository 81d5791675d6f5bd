//! A cluster of raft stores on 127.0.0.1 for the raft tests and benchmark.

#![allow(dead_code)]

use axum::body::Body;
use berth_orchestrator::swarm::raft::{ClusterStore, RaftPeer, StoreConfig, Tuning};
use berth_orchestrator::swarm::state::{Command, Request};
use bollard_stubs::models::Node as SwarmNode;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// One manager: its store and the HTTP server in front of its router.
pub struct Manager {
    pub id: u64,
    pub addr: String,
    pub dir: PathBuf,
    pub store: Option<ClusterStore>,
    server: Option<JoinHandle<()>>,
}

impl Manager {
    /// Opens the store in `dir` and serves it on `addr` (a fresh port when `None`).
    pub async fn start(id: u64, dir: &Path, addr: Option<&str>, tuning: Tuning) -> Manager {
        let listener = TcpListener::bind(addr.unwrap_or("127.0.0.1:0"))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let store = ClusterStore::open_with(
            StoreConfig {
                dir: dir.to_path_buf(),
                raft_id: id,
                peer: peer(id, &addr),
                client,
                scheme: "http".into(),
            },
            tuning,
        )
        .await
        .unwrap();
        let router = store.router();
        let server = tokio::spawn(async move {
            // Dropping the set (when the server task is aborted) closes every connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let router = router.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let router = router.clone();
                        async move { router.oneshot(req.map(Body::new)).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Manager {
            id,
            addr,
            dir: dir.to_path_buf(),
            store: Some(store),
            server: Some(server),
        }
    }

    pub fn store(&self) -> &ClusterStore {
        self.store.as_ref().expect("manager is running")
    }

    pub fn peer(&self) -> RaftPeer {
        peer(self.id, &self.addr)
    }

    /// Stops the server and the raft core, like a crash as seen by the peers.
    pub async fn kill(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
            let _ = s.await;
        }
        if let Some(store) = self.store.take() {
            store.shutdown().await;
        }
    }

    /// Starts it again from its directory on the same address.
    pub async fn restart(&mut self, tuning: Tuning) {
        self.kill().await;
        let again =
            Manager::start(self.id, &self.dir.clone(), Some(&self.addr.clone()), tuning).await;
        *self = again;
    }

    pub fn nodes(&self) -> usize {
        self.store().read(|s| s.nodes.len())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

pub fn peer(id: u64, addr: &str) -> RaftPeer {
    RaftPeer {
        addr: addr.to_string(),
        node_id: format!("node{id}"),
    }
}

/// A write that adds node `n<i>` (so the state's node count counts the writes).
pub fn add_node(i: usize) -> Request {
    Request {
        at: "2026-01-01T00:00:00Z".into(),
        command: Command::AddNode(Box::new(SwarmNode {
            id: Some(format!("n{i}")),
            ..Default::default()
        })),
    }
}

/// Three managers in one cluster: 1 bootstrapped, 2 added by 1, 3 added through 2 (forwarded).
pub async fn three(root: &Path, tuning: Tuning) -> Vec<Manager> {
    let a = Manager::start(1, &root.join("m1"), None, tuning).await;
    let b = Manager::start(2, &root.join("m2"), None, tuning).await;
    let c = Manager::start(3, &root.join("m3"), None, tuning).await;
    a.store().bootstrap().await.unwrap();
    a.store().add_manager(2, b.peer()).await.unwrap();
    wait_for(Duration::from_secs(5), || b.store().leader().is_some()).await;
    b.store().add_manager(3, c.peer()).await.unwrap();
    let ms = vec![a, b, c];
    wait_for(Duration::from_secs(5), || {
        ms.iter()
            .all(|m| m.store().members().iter().filter(|x| x.voter).count() == 3)
    })
    .await;
    ms
}

/// Polls `f` until it holds; panics after `limit`.
pub async fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// The running manager that leads, if one does.
pub fn leader(ms: &[Manager]) -> Option<usize> {
    ms.iter()
        .position(|m| m.store.as_ref().is_some_and(|s| s.is_leader()))
}
