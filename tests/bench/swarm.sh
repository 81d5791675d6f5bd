#!/bin/sh
# Swarm benchmark: a one-node Berth swarm (berthd) against a one-node Docker swarm (Debian's
# dockerd), the real docker CLI driving both, in one run, the engines alternating within every
# repetition. Cases (issue 8's figures for Docker swarm: 7.2 s, 8.9 s, 2.6 s; target <= 0.2x):
#   create  `service create --replicas 20` until 20/20 running
#   scale   `service scale s20=50` until 50/50 running
#   stack   `stack deploy` of 5 services, 8 tasks, until all running
# Each daemon runs in a network namespace of its own (so dockerd's iptables rules and both
# cluster ports stay out of the host), advertising 127.0.0.1. Figures are medians of REPS.
#
#   tests/bench/swarm.sh [REPS]   (default 3; from the workspace root, as root)
#   BENCH_NO_BUILD=1 uses the binaries already in target/release.
set -eu
REPS=${1:-3}
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p berth-agent -p berth-cli -p berth-shim
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
W=$(mktemp -d /tmp/berth-bench-swarm.XXXXXX)
IMAGE=benchbox:latest
PIDS=""
export DOCKER_CONFIG="$W/docker-config"
nft list ruleset >"$W/nft.before"

cleanup() {
  set +e
  for e in berth docker; do
    s="$W/$e.sock"
    [ -S "$s" ] || continue
    docker -H "unix://$s" service ls -q 2>/dev/null | xargs -r docker -H "unix://$s" service rm >/dev/null 2>&1
    docker -H "unix://$s" ps -aq 2>/dev/null | xargs -r docker -H "unix://$s" rm -f >/dev/null 2>&1
    docker -H "unix://$s" swarm leave --force >/dev/null 2>&1
  done
  if [ -n "$PIDS" ]; then
    kill $PIDS 2>/dev/null
    (sleep 15; kill -9 $PIDS 2>/dev/null) &
    WATCHDOG=$!
    wait $PIDS 2>/dev/null
    kill "$WATCHDOG" 2>/dev/null
  fi
  for e in berth docker; do
    ns=bbs-$e-$$
    [ -e "/run/netns/$ns" ] && { ip netns pids "$ns" | xargs -r kill -9; sleep 0.2; ip netns del "$ns"; }
  done
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  nft list ruleset >"$W/nft.after" 2>/dev/null
  cmp -s "$W/nft.before" "$W/nft.after" || echo "WARNING: the host's nftables ruleset changed during the run"
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$W/rootfs/bin"
cp /bin/busybox "$W/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .

for e in berth docker; do
  ns=bbs-$e-$$
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
# nsenter, not `ip netns exec`, which mounts a fresh /sys and hides the cgroup mounts.
nsenter --net="/run/netns/bbs-berth-$$" "$T/berthd" --root "$W/berth-root" --exec-root "$W/berth-run" \
  -H "unix://$W/berth.sock" --log-level warn >"$W/berthd.log" 2>&1 &
PIDS="$PIDS $!"
nsenter --net="/run/netns/bbs-docker-$$" dockerd --data-root "$W/docker-root" --exec-root "$W/docker-exec" \
  -H "unix://$W/docker.sock" --pidfile "$W/dockerd.pid" >"$W/dockerd.log" 2>&1 &
PIDS="$PIDS $!"
i=0; until docker -H "unix://$W/berth.sock" version >/dev/null 2>&1 && docker -H "unix://$W/docker.sock" version >/dev/null 2>&1; do
  i=$((i+1)); [ $i -gt 600 ] && { echo "a daemon did not start"; tail -5 "$W/berthd.log" "$W/dockerd.log"; exit 1; }; sleep 0.1
done
for e in berth docker; do
  d() { docker -H "unix://$W/$e.sock" "$@"; }
  d import "$W/rootfs.tar" "$IMAGE" >/dev/null
  d swarm init --advertise-addr 127.0.0.1 >/dev/null
done

cat >"$W/stack.yml" <<EOT
x-task: &task
  image: $IMAGE
  command: sleep 3600
  stop_grace_period: 1s
services:
  a: {<<: *task, deploy: {replicas: 1}}
  b: {<<: *task, deploy: {replicas: 1}}
  c: {<<: *task, deploy: {replicas: 2}}
  d: {<<: *task, deploy: {replicas: 2}}
  e: {<<: *task, deploy: {replicas: 2}}
EOT

now() { date +%s.%N; }
# wait_replicas ENGINE WANT CMD...: polls until every line CMD prints is WANT (n/n for each).
wait_all() {
  e=$1; shift
  i=0
  while :; do
    out=$(docker -H "unix://$W/$e.sock" "$@" 2>/dev/null || true)
    if [ -n "$out" ] && ! echo "$out" | awk -F/ '{ if ($1 != $2) bad=1 } END { exit !bad }'; then return 0; fi
    i=$((i+1)); [ $i -gt 2400 ] && { echo "$e: timed out: $out"; return 1; }
    sleep 0.05
  done
}
gone() {
  e=$1
  i=0
  until [ -z "$(docker -H "unix://$W/$e.sock" ps -aq)" ] && [ -z "$(docker -H "unix://$W/$e.sock" service ls -q)" ]; do
    i=$((i+1)); [ $i -gt 1200 ] && { echo "$e: containers left"; return 1; }; sleep 0.1
  done
}

for r in $(seq "$REPS"); do
  for e in berth docker; do
    d() { docker -H "unix://$W/$e.sock" "$@"; }
    t0=$(now)
    d service create -d -q --no-resolve-image --stop-grace-period 1s --name s20 --replicas 20 "$IMAGE" sleep 3600 >/dev/null
    wait_all "$e" service ls --filter name=s20 --format '{{.Replicas}}'
    t1=$(now)
    d service scale -d s20=50 >/dev/null 2>&1
    wait_all "$e" service ls --filter name=s20 --format '{{.Replicas}}'
    t2=$(now)
    d service rm s20 >/dev/null
    gone "$e"
    t3=$(now)
    d stack deploy --resolve-image never -c "$W/stack.yml" bench >/dev/null
    wait_all "$e" stack services bench --format '{{.Replicas}}'
    t4=$(now)
    d stack rm bench >/dev/null
    gone "$e"
    echo "$e create $(awk "BEGIN{print $t1 - $t0}")" >>"$W/results"
    echo "$e scale $(awk "BEGIN{print $t2 - $t1}")" >>"$W/results"
    echo "$e stack $(awk "BEGIN{print $t4 - $t3}")" >>"$W/results"
  done
done

python3 - "$W/results" "$REPS" <<'EOT'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for case in ("create", "scale", "stack"):
    for e in ("berth", "docker"):
        med[e, case] = statistics.median(float(v) for n, c, v in rows if n == e and c == case)
print(f"swarm, one node, median of {sys.argv[2]}")
print(f"{'case':<34}{'berth':>9}{'docker':>9}{'ratio':>8}")
names = {"create": "service create --replicas 20", "scale": "service scale 20 -> 50",
         "stack": "stack deploy 5 services / 8 tasks"}
for case in ("create", "scale", "stack"):
    b, d = med["berth", case], med["docker", case]
    print(f"{names[case]:<34}{b:>8.2f}s{d:>8.2f}s{b / d:>7.2f}x")
EOT
