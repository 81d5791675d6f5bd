//! Raft store benchmark (ignored by default): committed writes/s on three managers with fsync,
//! many writes in flight, and leader failover time.
//! Run: `cargo test --release -p berth-orchestrator --test raft_bench -- --ignored --nocapture`
//! (or tests/bench/raft.sh).

mod raft_common;

use berth_orchestrator::swarm::raft::Tuning;
use futures_util::StreamExt;
use raft_common::{add_node, leader, three, wait_for};
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_raft_writes_and_failover() {
    let writes = env_usize("RAFT_BENCH_WRITES", 20_000);
    let inflight = env_usize("RAFT_BENCH_INFLIGHT", 512);
    let root = tempfile::tempdir().unwrap();
    let mut ms = three(root.path(), Tuning::default()).await;
    let l = leader(&ms).expect("a leader");
    let store = ms[l].store().clone();
    let start = Instant::now();
    let done = futures_util::stream::iter(0..writes)
        .map(|i| {
            let store = store.clone();
            async move { store.write(add_node(i)).await }
        })
        .buffer_unordered(inflight)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    let took = start.elapsed();
    assert_eq!(done, writes);
    println!(
        "raft bench: {writes} committed writes, {inflight} in flight, 3 managers, fsync: {:.2}s, {:.0} writes/s",
        took.as_secs_f64(),
        writes as f64 / took.as_secs_f64()
    );
    // Forwarded writes (from a follower) for comparison.
    let f = (0..3).find(|i| *i != l).unwrap();
    let fstore = ms[f].store().clone();
    let fwrites = writes / 4;
    let start = Instant::now();
    let done = futures_util::stream::iter(writes..writes + fwrites)
        .map(|i| {
            let s = fstore.clone();
            async move { s.write(add_node(i)).await }
        })
        .buffer_unordered(inflight)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await;
    let took = start.elapsed();
    assert_eq!(done, fwrites);
    println!(
        "raft bench: {fwrites} writes forwarded by a follower: {:.0} writes/s",
        fwrites as f64 / took.as_secs_f64()
    );
    let total = writes + fwrites;
    wait_for(Duration::from_secs(30), || {
        ms.iter().all(|m| m.nodes() == total)
    })
    .await;
    let mut failovers = Vec::new();
    for _ in 0..3 {
        wait_for(Duration::from_secs(10), || leader(&ms).is_some()).await;
        let old = leader(&ms).expect("a leader");
        let t = Instant::now();
        ms[old].kill().await;
        wait_for(Duration::from_secs(10), || leader(&ms).is_some()).await;
        failovers.push(t.elapsed());
        ms[old].restart(Tuning::default()).await;
        wait_for(Duration::from_secs(30), || ms[old].nodes() == total).await;
    }
    println!("raft bench: leader failover times: {failovers:?}");
}
