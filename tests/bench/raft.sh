#!/bin/sh
# Raft cluster store benchmark: committed writes/s on three managers (fsync per append, many
# writes in flight) and leader failover time. RAFT_BENCH_WRITES / RAFT_BENCH_INFLIGHT tune it.
set -eu
cd "$(dirname "$0")/../.."
exec cargo test --release -p berth-orchestrator --test raft_bench -- --ignored --nocapture
