#!/bin/sh
# Network benchmark: Berth (berthd + berth-shim) against Debian's dockerd with its defaults
# (userland-proxy=true, iptables=true), in one run, each on its own private root.
#
#   1. Throughput from the host into a container: through a port published on 127.0.0.1, through
#      one published on the host's own address, and straight to the container's IP; and the cost
#      of a new connection (connect + 1-byte echo + close) published vs direct; UDP round trip
#      (both in five alternating blocks, median of the blocks' p50).
#   2. Container-to-container throughput over a user bridge network (sender in a second
#      container, to the first one's IP).
#   3. Added start latency on a user network vs `--network none` (hyperfine, `run --rm ... true`).
#   4. DNS: lookups of a container's name from a container on the user network, p50/p99.
#
# Sender and receiver are tests/bench/netbench.rs (std-only, static; busybox nc caps at
# ~470 MB/s), built here and put with busybox into an image in a private registry on 127.0.0.1.
#
# Berth runs first, alone, in the host's network namespace; then dockerd runs, alone, in a
# network namespace of its own (with its own loopback, a second local address standing in for
# the host's, and a second registry process on the same storage), so that its iptables
# rules (FORWARD policy DROP, DOCKER chains), docker0 and br_netfilter settings never touch the
# host's or Berth's traffic, and everything it made goes with that namespace. Host-side senders
# run in the engine's namespace. The script checks that `nft list ruleset` and the host's links
# are the same before and after.
#
#   tests/bench/network.sh [BYTES] [REPS] [CONNS] [DNS] [STARTS]
#   (defaults 4294967296 bytes a throughput run, 3 runs a path (median), 2000 connections,
#    10000 DNS lookups, 20 starts a variant; run from the workspace root, as root)
#
# Needs: dockerd/containerd (docker.io), docker CLI, docker-registry, umoci, skopeo, hyperfine,
# rustc, iproute2, nft.
set -eu
BYTES=${1:-4294967296}
REPS=${2:-3}
CONNS=${3:-2000}
DNSN=${4:-10000}
STARTS=${5:-20}
# BENCH_NO_BUILD=1 uses the binaries already in target/release.
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p berth-agent -p berth-cli -p berth-shim
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
W=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
NS=berth-bench-dockerd-$$
# TEST-NET addresses for the bridges, so that neither engine's default pool meets the host's.
BERTH_SUBNET=198.18.1.0/24
DOCKER_SUBNET=198.18.2.0/24
DOCKER_HOSTIP=198.51.100.2
HOSTIP=$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$HOSTIP" ] || HOSTIP=$(ip -4 -o addr show scope global | awk '{split($4,a,"/"); print a[1]; exit}')
PIDS=""
. tests/bench/hostcheck.sh
host_state before

cleanup() {
  # Every step runs even when an earlier one fails (a daemon already gone, say).
  set +e
  for s in "$W/berthd.sock" "$W/dockerd.sock"; do
    if [ -S "$s" ]; then
      docker -H "unix://$s" ps -aq 2>/dev/null | xargs -r docker -H "unix://$s" rm -f >/dev/null 2>&1
      docker -H "unix://$s" network rm nbnet >/dev/null 2>&1
    fi
  done
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  i=0; while [ $i -lt 100 ]; do
    alive=""; for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break; i=$((i+1)); sleep 0.1
  done
  for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
  TAG=$(printf %s "$W/berth-root" | sha256sum | cut -c1-6)
  nft delete table ip "berth-$TAG" 2>/dev/null
  ip link del "berth0$TAG" 2>/dev/null
  # Whatever dockerd left (containerd, shims, docker-proxy) lives in its namespace.
  if [ -e "/run/netns/$NS" ]; then
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
  fi
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  host_state after
  host_state_check
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(freeport)
REG=127.0.0.1:$PORT
cat >"$W/registry.yml" <<EOC
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/storage}}
http: {addr: $REG}
EOC
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REGISTRY=$!
PIDS="$PIDS $REGISTRY"

rustc -O -C target-feature=+crt-static -C strip=symbols tests/bench/netbench.rs -o "$W/netbench"
NB=$W/netbench

# Image: busybox-static with every applet linked, and /netbench.
umoci init --layout "$W/oci" >/dev/null
umoci new --image "$W/oci:latest" >/dev/null
umoci unpack --rootless --image "$W/oci:latest" "$W/b" >/dev/null
mkdir -p "$W/b/rootfs/bin"
cp /bin/busybox "$W/b/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/b/rootfs/bin/$a"; done
cp "$NB" "$W/b/rootfs/netbench"
umoci repack --image "$W/oci:latest" "$W/b" >/dev/null
umoci config --image "$W/oci:latest" --config.cmd /bin/sh --config.env PATH=/bin >/dev/null
i=0; until curl -fs "http://$REG/v2/" >/dev/null; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$W/oci:latest" "docker://$REG/netbench:latest"
export DOCKER_CONFIG="$W/docker-config"

# IPv4 address of container $2 on network $3, from `inspect` of CLI $1.
ipof() {
  $1 inspect "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["NetworkSettings"]["Networks"][sys.argv[1]]["IPAddress"])' "$3"
}
mbs() { awk '{print $1; exit}'; }

# measure ENGINE CLI HOST-PREFIX HOST-IP SUBNET NET: every figure for one engine, as
# "key value" lines in $W/res.ENGINE. HOST-PREFIX runs a host-side command in the engine's
# namespace. NET is nbnet (a user network made here) or bridge (the default one: no DNS there).
measure() {
  E=$1; C=$2; X=$3; HIP=$4; SUB=$5; NET=$6
  R=$W/res.$E
  : >"$R"
  $C pull -q "$REG/netbench:latest" >/dev/null
  $C tag "$REG/netbench:latest" netbench:latest
  [ "$NET" = bridge ] || $C network create --subnet "$SUB" nbnet >/dev/null
  LP=$(freeport); HP=$(freeport); EP=$(freeport); UP=$(freeport)
  $C run -d --name nbsrv --network "$NET" -p "127.0.0.1:$LP:5001" -p "$HIP:$HP:5001" \
    -p "127.0.0.1:$EP:5002" -p "127.0.0.1:$UP:5003/udp" netbench \
    sh -c '/netbench sink 5001 & /netbench echo 5002 & /netbench udp-echo 5003 & wait' >/dev/null
  IP=$(ipof "$C" nbsrv "$NET")
  if [ "$E" = docker ]; then
    echo "docker: $(ip netns pids "$NS" | xargs -r ps -o comm= -p | grep -c docker-proxy) docker-proxy processes for nbsrv (userland-proxy default)"
  fi
  echo "$E: network $NET, container $IP, published 127.0.0.1:$LP, $HIP:$HP (tcp 5001), 127.0.0.1:$EP (tcp 5002), 127.0.0.1:$UP (udp 5003)"
  i=0; until $X "$NB" connect-rate "$IP:5002" 1 >/dev/null 2>&1 && $X "$NB" connect-rate "127.0.0.1:$EP" 1 >/dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "$E: nbsrv does not answer"; return 1; }; sleep 0.1
  done

  # Paths alternate within each repetition, so that load from elsewhere hits all of them alike.
  r=0; while [ "$r" -lt "$REPS" ]; do
    echo "lo $($X "$NB" send "127.0.0.1:$LP" "$BYTES" | mbs)" >>"$W/tp.$E"
    echo "hostip $($X "$NB" send "$HIP:$HP" "$BYTES" | mbs)" >>"$W/tp.$E"
    echo "direct $($X "$NB" send "$IP:5001" "$BYTES" | mbs)" >>"$W/tp.$E"
    echo "c2c $($C run --rm --network "$NET" netbench /netbench send "$IP:5001" "$BYTES" | mbs)" >>"$W/tp.$E"
    r=$((r+1))
  done
  for k in lo hostip direct c2c; do
    echo "tp_$k $(awk -v k=$k '$1==k {print $2}' "$W/tp.$E" | median)" >>"$R"
  done
  echo "tp_all $(awk '{printf "%s=%s ", $1, $2}' "$W/tp.$E")" >>"$R"

  # Blocks of CONNS/5 alternate between the paths, as above; each figure is the median of the
  # five blocks' figures.
  b=0; while [ "$b" -lt 5 ]; do
    for path in "conn_pub connect-rate 127.0.0.1:$EP" "conn_direct connect-rate $IP:5002" \
      "udp_pub udp-rate 127.0.0.1:$UP" "udp_direct udp-rate $IP:5003"; do
      set -- $path
      s=$($X "$NB" "$2" "$3" $((CONNS / 5)))
      echo "$1 $(echo "$s" | field p50) $(echo "$s" | field p99) $(echo "$s" | field mean)" >>"$W/rtt.$E"
    done
    b=$((b+1))
  done
  for k in conn_pub conn_direct udp_pub udp_direct; do
    echo "${k}_p50 $(awk -v k=$k '$1==k {print $2}' "$W/rtt.$E" | median)" >>"$R"
    echo "${k}_p99 $(awk -v k=$k '$1==k {print $3}' "$W/rtt.$E" | median)" >>"$R"
    echo "${k}_mean $(awk -v k=$k '$1==k {print $4}' "$W/rtt.$E" | median)" >>"$R"
  done

  hyperfine -N -w 3 -r "$STARTS" --export-json "$W/start.$E.json" \
    -n none "$C run --rm --network none netbench true" \
    -n usernet "$C run --rm --network $NET netbench true" >/dev/null
  python3 - "$W/start.$E.json" >>"$R" <<'EOP'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
print(f"start_none {r['none']:.1f}\nstart_usernet {r['usernet']:.1f}")
EOP
  # Last, and allowed to fail: the other figures stand without it.
  if [ "$NET" != bridge ]; then
    if s=$($C run --rm --network "$NET" netbench /netbench dns nbsrv "$DNSN"); then
      echo "$E dns: $s"
      echo "dns_p50 $(echo "$s" | field p50)" >>"$R"
      echo "dns_p99 $(echo "$s" | field p99)" >>"$R"
    else
      echo "$E: DNS lookups of nbsrv failed; no DNS figures"
    fi
  fi
  $C rm -f nbsrv >/dev/null
  [ "$NET" = bridge ] || $C network rm nbnet >/dev/null
}

# Runs measure in a subshell with errexit on, so that one engine's failure leaves the other's
# figures standing.
try_measure() {
  set +e
  (set -e; measure "$@")
  rc=$?
  set -e
  [ $rc -eq 0 ] || echo "$1: measurement failed (exit $rc); its figures are missing"
}

# --- Berth, in the host's namespace ---
"$T/berthd" --root "$W/berth-root" --exec-root "$W/berth-run" -H "unix://$W/berthd.sock" \
  --log-level warn >"$W/berthd.log" 2>&1 &
BERTHD=$!
PIDS="$PIDS $BERTHD"
i=0; until [ -S "$W/berthd.sock" ]; do i=$((i+1)); [ $i -gt 300 ] && { echo "berthd did not start"; exit 1; }; sleep 0.1; done
BERTH="$T/berth -H unix://$W/berthd.sock"
# Until berthd creates networks, both engines are measured on their default bridge instead.
NET=nbnet
if $BERTH network create --subnet "$BERTH_SUBNET" nbprobe >/dev/null 2>"$W/probe.err"; then
  $BERTH network rm nbprobe >/dev/null
else
  NET=bridge
  echo "berth: no network create yet ($(head -1 "$W/probe.err")); both engines on the default bridge, no DNS figures"
fi
try_measure berth "$BERTH" "" "$HOSTIP" "$BERTH_SUBNET" "$NET"
# A failed measurement leaves its containers and network; they go while berthd still runs.
$BERTH ps -aq 2>/dev/null | xargs -r $BERTH rm -f >/dev/null 2>&1 || true
$BERTH network rm nbnet >/dev/null 2>&1 || true
kill "$BERTHD" 2>/dev/null || true
wait "$BERTHD" 2>/dev/null || true
# berthd keeps its default bridge and nftables table when it exits (to pick them up again on
# restart); they are named after a hash of its root, which goes with this run.
TAG=$(printf %s "$W/berth-root" | sha256sum | cut -c1-6)
nft delete table ip "berth-$TAG" 2>/dev/null || true
ip link del "berth0$TAG" 2>/dev/null || true

# --- dockerd, in a network namespace of its own ---
ip netns add "$NS"
# nsenter, not `ip netns exec`: the latter mounts a fresh /sys, which hides the cgroup mounts
# dockerd needs.
DX="nsenter --net=/run/netns/$NS"
ip -n "$NS" link set lo up
# The kernel has no dummy driver; a local address on lo takes the same path as the host's own
# address (local delivery through lo).
ip -n "$NS" addr add "$DOCKER_HOSTIP/32" dev lo
$DX docker-registry serve "$W/registry.yml" >"$W/registry-ns.log" 2>&1 &
PIDS="$PIDS $!"
$DX dockerd --data-root "$W/docker-root" --exec-root "$W/docker-exec" -H "unix://$W/dockerd.sock" \
  --pidfile "$W/dockerd.pid" --insecure-registry "$REG" >"$W/dockerd.log" 2>&1 &
DOCKERD=$!
PIDS="$PIDS $DOCKERD"
DD="docker -H unix://$W/dockerd.sock"
i=0; until $DD version >/dev/null 2>&1 && $DX curl -fs "http://$REG/v2/" >/dev/null; do
  i=$((i+1)); [ $i -gt 300 ] && { echo "dockerd did not start"; tail "$W/dockerd.log"; exit 1; }; sleep 0.1
done
try_measure docker "$DD" "$DX" "$DOCKER_HOSTIP" "$DOCKER_SUBNET" "$NET"

echo "network: $NET"
python3 - "$W/res.berth" "$W/res.docker" "$BYTES" <<'EOP'
import sys
def load(p):
    try:
        return dict(l.rstrip("\n").split(" ", 1) for l in open(p) if " " in l)
    except OSError:
        return {}
b, d = load(sys.argv[1]), load(sys.argv[2])
def f(m, k):
    try:
        return float(m[k])
    except (KeyError, ValueError):
        return None
def derived(m):
    m = dict(m)
    lo, direct = f(m, "tp_lo"), f(m, "tp_direct")
    if lo and direct:
        m["pub_over_direct"] = lo / direct
    hip = f(m, "tp_hostip")
    if hip and direct:
        m["hostip_over_direct"] = hip / direct
    for s in ("p50", "mean"):
        p, q = f(m, f"conn_pub_{s}"), f(m, f"conn_direct_{s}")
        if p is not None and q is not None:
            m[f"conn_added_{s}"] = p - q
    n, u = f(m, "start_none"), f(m, "start_usernet")
    if n is not None and u is not None:
        m["start_added"] = u - n
    return m
b, d = derived(b), derived(d)
rows = [
    ("throughput MB/s, published 127.0.0.1", "tp_lo", ".0f"),
    ("throughput MB/s, published host address", "tp_hostip", ".0f"),
    ("throughput MB/s, direct to container IP", "tp_direct", ".0f"),
    ("published 127.0.0.1 / direct", "pub_over_direct", ".3f"),
    ("published host address / direct", "hostip_over_direct", ".3f"),
    ("throughput MB/s, container to container", "tp_c2c", ".0f"),
    ("new connection us p50, published", "conn_pub_p50", ".1f"),
    ("new connection us p50, direct", "conn_direct_p50", ".1f"),
    ("added us per connection (p50)", "conn_added_p50", ".1f"),
    ("added us per connection (mean)", "conn_added_mean", ".1f"),
    ("UDP round trip us p50, published", "udp_pub_p50", ".1f"),
    ("UDP round trip us p50, direct", "udp_direct_p50", ".1f"),
    ("run --rm true ms, --network none", "start_none", ".1f"),
    ("run --rm true ms, on the network", "start_usernet", ".1f"),
    ("added start ms on the network", "start_added", ".1f"),
    ("DNS lookup of a container us p50", "dns_p50", ".1f"),
    ("DNS lookup of a container us p99", "dns_p99", ".1f"),
]
print(f"{'':42} {'Berth':>9} {'Docker':>9} {'B/D':>7}")
for label, k, fmt in rows:
    x, y = f(b, k), f(d, k)
    xs = format(x, fmt) if x is not None else "-"
    ys = format(y, fmt) if y is not None else "-"
    ratio = f"{x / y:.2f}x" if x is not None and y and not k.endswith("added_p50") and not k.endswith("added_mean") and k != "start_added" else ""
    print(f"{label:42} {xs:>9} {ys:>9} {ratio:>7}")
for e, m in (("berth", b), ("docker", d)):
    if "tp_all" in m:
        print(f"{e} runs (MB/s): {m['tp_all']}")
EOP
