#!/bin/sh
# Overlay network benchmark (issue 9's data plane): a 2-node Berth swarm on one machine, each
# node a network namespace with its own berthd, joined through a bridge in a third ("hub")
# namespace on 10.98.0.0/24 (the tests use 10.99.0.0/24). An overlay network spans both nodes;
# service srv (busybox httpd on 8080) is pinned on node 2, service cli (sleep) on node 1, by node
# labels and constraints. Figures:
#
#   1. Throughput, container to container over VXLAN (cli's namespace -> srv's task address) and
#      through srv's VIP, against a plain veth baseline between the same two node namespaces
#      (node 1 -> node 2's underlay address, the path the VXLAN packets take).
#   2. Latency through the VIP vs direct to the task: new TCP connections (connect, 1-byte
#      echo, close; tests/bench/netbench.rs), and HTTP requests to srv's busybox httpd (ab, one
#      connection a request). 20 alternating blocks; median of the blocks. Target: the VIP adds
#      at most 5%.
#   3. DNS: A queries for `srv` (the VIP) and `tasks.srv` from cli's namespace to its embedded
#      DNS server. Target: p99 under 1 ms.
#
# The load runs from the host side in the task containers' network namespaces (nsenter --net
# -t <task pid>), so the image stays busybox; DNS queries go to the nameserver of the task's own
# resolv.conf (a copy read with `exec cat`, bind-mounted over /etc/resolv.conf in a private mount
# namespace).
#
#   tests/bench/overlay.sh [BYTES] [REPS] [CONNS] [DNS]
#   (defaults 2147483648 bytes a throughput run, 3 runs a path (median), 2000 connections and
#    requests a path, 10000 DNS queries a name; run from the workspace root, as root)
#   BENCH_NO_BUILD=1 uses the binaries already in target/release.
#
# Needs: docker CLI, ab (apache2-utils), rustc, iproute2, nft, util-linux (nsenter, unshare).
set -eu
BYTES=${1:-2147483648}
REPS=${2:-3}
CONNS=${3:-2000}
DNSN=${4:-10000}
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p berth-agent -p berth-cli -p berth-shim
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
W=$(mktemp -d /tmp/berth-bench-overlay.XXXXXX)
HUB=bbo-hub-$$
NODES="1 2"
IMAGE=berth-examples/busybox:latest
export DOCKER_CONFIG="$W/docker-config"
BERTHDS=""
LOADPIDS=""
. tests/bench/hostcheck.sh
host_state before

ns() { echo "bbo-n$1-$$"; }
d() { _n=$1; shift; docker -H "unix://$W/n$_n/berth.sock" "$@"; }

# Kills (by pid) every process whose command line names this run's directory: shims, and
# container processes a failed start may have left.
kill_ours() {
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    grep -qaF "$W" "$p/cmdline" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  return 0
}

cleanup() {
  # Every step runs even when an earlier one fails (a daemon already gone, say).
  set +e
  for p in $LOADPIDS; do kill "$p" 2>/dev/null; done
  for n in $NODES; do
    [ -S "$W/n$n/berth.sock" ] || continue
    d "$n" service ls -q 2>/dev/null | xargs -r docker -H "unix://$W/n$n/berth.sock" service rm >/dev/null 2>&1
  done
  for n in 2 1; do
    [ -S "$W/n$n/berth.sock" ] || continue
    d "$n" ps -aq 2>/dev/null | xargs -r docker -H "unix://$W/n$n/berth.sock" rm -f >/dev/null 2>&1
    d "$n" swarm leave --force >/dev/null 2>&1
  done
  for p in $BERTHDS; do kill "$p" 2>/dev/null; done
  i=0; while [ $i -lt 100 ]; do
    alive=""; for p in $BERTHDS; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break; i=$((i+1)); sleep 0.1
  done
  for p in $BERTHDS; do kill -9 "$p" 2>/dev/null; done
  kill_ours
  # Containers of a daemon that died are found by their cgroups.
  for c in "$W"/n*/root/containers/*; do
    [ -d "$c" ] || continue
    id=$(basename "$c")
    for g in /sys/fs/cgroup/*/berth/"$id" /sys/fs/cgroup/berth/"$id"; do
      [ -f "$g/cgroup.procs" ] && xargs -r kill -9 <"$g/cgroup.procs" 2>/dev/null
    done
    sleep 0.1
    for g in /sys/fs/cgroup/*/berth/"$id" /sys/fs/cgroup/berth/"$id"; do
      [ -d "$g" ] && rmdir "$g" 2>/dev/null
    done
  done
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  # The nodes' bridges, VXLAN devices and nftables tables live in their namespaces.
  for n in $(ns 1) $(ns 2) "$HUB"; do
    [ -e "/run/netns/$n" ] || continue
    ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  host_state after
  host_state_check
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rustc -O -C target-feature=+crt-static -C strip=symbols tests/bench/netbench.rs -o "$W/netbench"
NB=$W/netbench

# The tests' image: busybox-static with every applet linked.
mkdir -p "$W/rootfs/bin" "$W/rootfs/tmp" "$W/rootfs/etc"
cp /bin/busybox "$W/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .

# The underlay: one veth from each node's eth0 into the hub's bridge.
ip netns add "$HUB"
ip -n "$HUB" link set lo up
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" addr add 10.98.0.254/24 dev br0
ip -n "$HUB" link set br0 up
for n in $NODES; do
  N=$(ns "$n")
  ip netns add "$N"
  ip -n "$HUB" link add "v$n" type veth peer name eth0 netns "$N"
  ip -n "$HUB" link set "v$n" master br0 up
  ip -n "$N" link set lo up
  ip -n "$N" link set eth0 up
  ip -n "$N" addr add "10.98.0.$n/24" dev eth0
  ip -n "$N" route add default via 10.98.0.254
  mkdir -p "$W/n$n"
  # nsenter, not `ip netns exec` (which mounts a fresh /sys and hides the cgroup mounts); a UTS
  # namespace of its own gives each node its own hostname. Both exec, so $! is berthd.
  nsenter --net="/run/netns/$N" unshare --uts sh -c 'hostname "$0" && exec "$@"' "node$n" \
    "$T/berthd" --root "$W/n$n/root" --exec-root "$W/n$n/run" -H "unix://$W/n$n/berth.sock" \
    --log-level warn >"$W/n$n/berthd.log" 2>&1 &
  BERTHDS="$BERTHDS $!"
done
for n in $NODES; do
  i=0; until d "$n" version >/dev/null 2>&1; do
    i=$((i+1)); [ $i -gt 300 ] && { echo "berthd on node $n did not start"; tail -5 "$W/n$n/berthd.log"; exit 1; }; sleep 0.1
  done
  "$T/berth" -H "unix://$W/n$n/berth.sock" import -c "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin" \
    "$W/rootfs.tar" "$IMAGE" >/dev/null
done

d 1 swarm init --advertise-addr 10.98.0.1 >/dev/null
d 2 swarm join --advertise-addr 10.98.0.2 --token "$(d 1 swarm join-token -q worker)" 10.98.0.1:2377 >/dev/null
i=0; until [ "$(d 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready')" = 2 ]; do
  i=$((i+1)); [ $i -gt 300 ] && { echo "the nodes did not get ready"; d 1 node ls; exit 1; }; sleep 0.1
done
# The CLI sends the node version it read; a status report landing in between makes the update
# "out of sequence" (as with Docker swarm), so it is tried again.
label() {
  i=0; until d 1 node update --label-add "role=$2" "$(d "$1" info --format '{{.Swarm.NodeID}}')" >/dev/null 2>"$W/label.err"; do
    i=$((i+1)); [ $i -gt 20 ] && { cat "$W/label.err"; exit 1; }; sleep 0.2
  done
}
label 1 client
label 2 server
d 1 network create -d overlay benchnet >/dev/null
d 1 service create -d -q --no-resolve-image --name srv --network benchnet \
  --constraint node.labels.role==server "$IMAGE" \
  sh -c 'mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www' >/dev/null
d 1 service create -d -q --no-resolve-image --name cli --network benchnet \
  --constraint node.labels.role==client "$IMAGE" sleep 100000 >/dev/null

# task N SERVICE: the container of SERVICE's one task on node N, once it runs.
task() {
  i=0
  while :; do
    id=$(d "$1" ps -q -f "label=com.docker.swarm.service.name=$2" 2>/dev/null || true)
    [ -n "$id" ] && [ "$(echo "$id" | wc -l)" = 1 ] && { echo "$id"; return 0; }
    i=$((i+1)); [ $i -gt 600 ] && { echo "no running task of $2 on node $1" >&2; return 1; }
    sleep 0.1
  done
}
SRV=$(task 2 srv)
CLI=$(task 1 cli)
SPID=$(d 2 inspect -f '{{.State.Pid}}' "$SRV")
CPID=$(d 1 inspect -f '{{.State.Pid}}' "$CLI")
SIP=$(d 2 inspect -f '{{(index .NetworkSettings.Networks "benchnet").IPAddress}}' "$SRV")
VIP=$(d 1 service inspect -f '{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}' srv)
VIP=${VIP%%/*}
[ -n "$SIP" ] && [ -n "$VIP" ] || { echo "no task address ($SIP) or VIP ($VIP) for srv"; exit 1; }
echo "overlay: srv task $SIP (node 2), VIP $VIP; cli task on node 1; underlay 10.98.0.1 -> 10.98.0.2"

# Receivers: in srv's namespace for the overlay, in node 2's for the baseline.
IN_SRV="nsenter --net --target $SPID"
IN_CLI="nsenter --net --target $CPID"
IN_N1="nsenter --net=/run/netns/$(ns 1)"
IN_N2="nsenter --net=/run/netns/$(ns 2)"
$IN_SRV "$NB" sink 5001 >"$W/sink-srv.log" 2>&1 &
LOADPIDS="$LOADPIDS $!"
$IN_SRV "$NB" echo 5002 >/dev/null 2>&1 &
LOADPIDS="$LOADPIDS $!"
$IN_N2 "$NB" sink 5101 >"$W/sink-n2.log" 2>&1 &
LOADPIDS="$LOADPIDS $!"
$IN_N2 "$NB" echo 5102 >/dev/null 2>&1 &
LOADPIDS="$LOADPIDS $!"
i=0; until $IN_CLI "$NB" connect-rate "$SIP:5002" 1 >/dev/null 2>&1 && $IN_CLI "$NB" connect-rate "$VIP:5002" 1 >/dev/null 2>&1 \
  && $IN_N1 "$NB" connect-rate 10.98.0.2:5102 1 >/dev/null 2>&1 && $IN_CLI curl -fs -o /dev/null "http://$VIP:8080/"; do
  i=$((i+1)); [ $i -gt 300 ] && { echo "srv does not answer across the overlay"; exit 1; }; sleep 0.1
done

R=$W/results
: >"$R"

# Throughput: the paths alternate within each repetition, so that load from elsewhere hits all
# of them alike.
r=0; while [ "$r" -lt "$REPS" ]; do
  echo "tp_veth $($IN_N1 "$NB" send 10.98.0.2:5101 "$BYTES" | awk '{print $1}')" >>"$W/tp"
  echo "tp_overlay $($IN_CLI "$NB" send "$SIP:5001" "$BYTES" | awk '{print $1}')" >>"$W/tp"
  echo "tp_vip $($IN_CLI "$NB" send "$VIP:5001" "$BYTES" | awk '{print $1}')" >>"$W/tp"
  r=$((r+1))
done
for k in tp_veth tp_overlay tp_vip; do
  echo "$k $(awk -v k=$k '$1==k {print $2}' "$W/tp" | median)" >>"$R"
done
echo "tp_all $(awk '{printf "%s=%s ", $1, $2}' "$W/tp")" >>"$R"

# Latency: BLOCKS blocks of CONNS/BLOCKS a path, alternating, so that load from elsewhere (two
# shared cores) falls on every path alike; each figure is the median of the blocks' figures.
BLOCKS=20
b=0; while [ "$b" -lt "$BLOCKS" ]; do
  for path in "conn_direct $SIP:5002" "conn_vip $VIP:5002" "conn_veth 10.98.0.2:5102"; do
    set -- $path
    if [ "$1" = conn_veth ]; then s=$($IN_N1 "$NB" connect-rate "$2" $((CONNS / BLOCKS)))
    else s=$($IN_CLI "$NB" connect-rate "$2" $((CONNS / BLOCKS))); fi
    echo "$1 $(echo "$s" | field p50) $(echo "$s" | field p99) $(echo "$s" | field mean)" >>"$W/rtt"
  done
  for path in "http_direct $SIP" "http_vip $VIP"; do
    set -- $path
    # ab's mean "Time per request" (ms, one connection a request, one at a time).
    ms=$($IN_CLI ab -q -n $((CONNS / BLOCKS)) "http://$2:8080/" 2>/dev/null | awk '/^Time per request:/ {print $4; exit}')
    echo "$1 $(awk "BEGIN{print $ms * 1000}")" >>"$W/rtt"
  done
  b=$((b+1))
done
for k in conn_direct conn_vip conn_veth; do
  echo "${k}_p50 $(awk -v k=$k '$1==k {print $2}' "$W/rtt" | median)" >>"$R"
  echo "${k}_p99 $(awk -v k=$k '$1==k {print $3}' "$W/rtt" | median)" >>"$R"
  echo "${k}_mean $(awk -v k=$k '$1==k {print $4}' "$W/rtt" | median)" >>"$R"
done
for k in http_direct http_vip; do
  echo "${k}_mean $(awk -v k=$k '$1==k {print $2}' "$W/rtt" | median)" >>"$R"
done

# DNS from cli's namespace, to the nameserver its resolv.conf names (a copy bind-mounted over
# /etc/resolv.conf, in unshare's private mount namespace only).
d 1 exec "$CLI" cat /etc/resolv.conf >"$W/cli-resolv.conf"
echo "cli's nameserver: $(awk '$1=="nameserver" {print $2; exit}' "$W/cli-resolv.conf")"
for name in srv tasks.srv; do
  key=dns_$(echo "$name" | tr . _)
  if s=$(timeout 120 unshare -m sh -c 'mount --bind "$4" /etc/resolv.conf && exec nsenter --net --target "$0" "$1" dns "$2" "$3"' \
    "$CPID" "$NB" "$name" "$DNSN" "$W/cli-resolv.conf"); then
    echo "dns $name: $s"
    echo "${key}_p50 $(echo "$s" | field p50)" >>"$R"
    echo "${key}_p99 $(echo "$s" | field p99)" >>"$R"
  else
    echo "DNS queries for $name failed; no figures for it"
  fi
done

python3 - "$R" "$BYTES" "$REPS" "$CONNS" "$DNSN" <<'EOP'
import sys
m = {}
for l in open(sys.argv[1]):
    k, _, v = l.rstrip("\n").partition(" ")
    m[k] = v
def f(k):
    try:
        return float(m[k])
    except (KeyError, ValueError):
        return None
def row(label, v, fmt, note=""):
    print(f"{label:48} {format(v, fmt) if v is not None else '-':>10}  {note}")
def ratio(a, b):
    return a / b if a is not None and b else None
print(f"overlay, 2 nodes; {sys.argv[3]} x {int(sys.argv[2]) >> 20} MiB a throughput path (median), "
      f"{sys.argv[4]} connections/requests a path, {sys.argv[5]} DNS queries a name")
row("throughput MB/s, veth between the nodes", f("tp_veth"), ".0f")
row("throughput MB/s, task to task over VXLAN", f("tp_overlay"), ".0f")
row("throughput MB/s, task to VIP over VXLAN", f("tp_vip"), ".0f")
row("  VXLAN / veth", ratio(f("tp_overlay"), f("tp_veth")), ".3f")
row("  VIP / direct", ratio(f("tp_vip"), f("tp_overlay")), ".3f")
row("new connection us p50, veth between the nodes", f("conn_veth_p50"), ".1f")
row("new connection us p50, direct to the task", f("conn_direct_p50"), ".1f")
row("new connection us p50, through the VIP", f("conn_vip_p50"), ".1f")
row("new connection us p99, direct / VIP", None, "",
    f"{m.get('conn_direct_p99', '-')} / {m.get('conn_vip_p99', '-')}")
def verdict(r):
    return "" if r is None else ("target <= 1.05: met" if r <= 1.05 else "target <= 1.05: NOT met")
r = ratio(f("conn_vip_p50"), f("conn_direct_p50"))
row("  VIP / direct, new connection p50", r, ".3f", verdict(r))
r = ratio(f("conn_vip_mean"), f("conn_direct_mean"))
row("  VIP / direct, new connection mean", r, ".3f", verdict(r))
row("HTTP request us mean (ab), direct to the task", f("http_direct_mean"), ".1f")
row("HTTP request us mean (ab), through the VIP", f("http_vip_mean"), ".1f")
r = ratio(f("http_vip_mean"), f("http_direct_mean"))
row("  VIP / direct, HTTP request", r, ".3f", verdict(r))
for name, k in (("srv (VIP)", "dns_srv"), ("tasks.srv", "dns_tasks_srv")):
    p99 = f(k + "_p99")
    row(f"DNS {name} us p50", f(k + "_p50"), ".1f")
    row(f"DNS {name} us p99", p99, ".1f",
        "" if p99 is None else ("target < 1000: met" if p99 < 1000 else "target < 1000: NOT met"))
print(f"throughput runs (MB/s): {m.get('tp_all', '-')}")
EOP
