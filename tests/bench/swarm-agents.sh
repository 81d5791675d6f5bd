#!/bin/sh
# Control plane at scale: three managers on 127.0.0.1 (Raft with fsync, mutual TLS) and 1,000
# simulated agents in one process; times all nodes Ready, 10 x 1,000 replicas to all RUNNING
# (tasks/s) and 100 stopped agents to their tasks running elsewhere. SWARM_SCALE_AGENTS,
# SWARM_SCALE_SERVICES, SWARM_SCALE_REPLICAS, SWARM_SCALE_KILL tune it.
set -eu
cd "$(dirname "$0")/../.."
# Two sockets per agent (client and server side) live in this one process.
ulimit -n 20000 2>/dev/null || true
exec cargo test --release -p berth-orchestrator --test swarm_scale_bench -- --ignored --nocapture
