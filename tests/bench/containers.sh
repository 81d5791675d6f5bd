#!/bin/sh
# Container benchmark: Berth (berthd + berth-shim) against Debian's dockerd (+ containerd +
# containerd-shim-runc-v2), side by side in one run, each daemon on its own private root.
#
#   1. `run --rm busybox true`: `berth run` against berthd, `docker run` against dockerd, and
#      the same docker CLI against berthd (hyperfine, both with --network none, since Berth's
#      networks arrive with the next issue).
#   2. 100 containers `run -d busybox sleep 1000`, then `rm -f` of all: wall time of each phase
#      and the engine's memory with the 100 containers up (sum of RSS and of PSS of the daemon,
#      containerd and every shim), plus the idle daemon's RSS.
#
#   tests/bench/containers.sh [RUNS] [COUNT]     (defaults 20 and 100; from the workspace root)
#
# Needs: dockerd/containerd (docker.io), docker CLI, docker-registry, umoci, skopeo, hyperfine.
set -eu
RUNS=${1:-20}
COUNT=${2:-100}
cargo build --release -q -p berth-agent -p berth-cli -p berth-shim
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
W=$(mktemp -d /tmp/berth-bench-ctr.XXXXXX)
PIDS=""
cleanup() {
  for s in "$W/berthd.sock" "$W/dockerd.sock"; do
    [ -S "$s" ] && docker -H "unix://$s" ps -aq 2>/dev/null | xargs -r docker -H "unix://$s" rm -f >/dev/null 2>&1
  done
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$W/registry.yml" <<EOC
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/storage}}
http: {addr: $REG}
EOC
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
PIDS="$PIDS $!"

# busybox image: busybox-static with every applet linked.
umoci init --layout "$W/oci" >/dev/null
umoci new --image "$W/oci:latest" >/dev/null
umoci unpack --rootless --image "$W/oci:latest" "$W/b" >/dev/null
mkdir -p "$W/b/rootfs/bin"
cp /bin/busybox "$W/b/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/b/rootfs/bin/$a"; done
umoci repack --image "$W/oci:latest" "$W/b" >/dev/null
umoci config --image "$W/oci:latest" --config.cmd /bin/sh --config.env PATH=/bin >/dev/null
i=0; until curl -fs "http://$REG/v2/" >/dev/null; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$W/oci:latest" "docker://$REG/busybox:latest"

"$T/berthd" --root "$W/berth-root" --exec-root "$W/berth-run" -H "unix://$W/berthd.sock" \
  --log-level warn >"$W/berthd.log" 2>&1 &
BERTHD=$!
PIDS="$PIDS $BERTHD"
dockerd --data-root "$W/docker-root" --exec-root "$W/docker-exec" -H "unix://$W/dockerd.sock" \
  --pidfile "$W/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
  --insecure-registry "$REG" >"$W/dockerd.log" 2>&1 &
DOCKERD=$!
PIDS="$PIDS $DOCKERD"
i=0; until docker -H "unix://$W/dockerd.sock" version >/dev/null 2>&1 && [ -S "$W/berthd.sock" ]; do
  i=$((i+1)); [ $i -gt 300 ] && { echo "daemons did not start"; exit 1; }; sleep 0.1
done
BD="docker -H unix://$W/berthd.sock"
DD="docker -H unix://$W/dockerd.sock"
BERTH="$T/berth -H unix://$W/berthd.sock"
export DOCKER_CONFIG="$W/docker-config"
for c in "$BD" "$DD"; do
  $c pull -q "$REG/busybox:latest" >/dev/null
  $c tag "$REG/busybox:latest" busybox:latest
done
sleep 2
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "idle RSS: berthd $(rss "$BERTHD") KiB, dockerd $(rss "$DOCKERD") KiB, containerd $(rss "$(pgrep -f "containerd --config $W" | head -1 || pgrep -n containerd)") KiB"

echo "--- run --rm busybox true ($RUNS runs each) ---"
hyperfine -N -w 3 -r "$RUNS" --export-json "$W/run.json" \
  -n berth "$BERTH run --rm --network none busybox true" \
  -n docker-cli-on-berthd "$BD run --rm --network none busybox true" \
  -n docker-on-dockerd "$DD run --rm --network none busybox true" >/dev/null
python3 - "$W/run.json" <<'EOP'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
d = r["docker-on-dockerd"]["median"]
for k in ("berth", "docker-cli-on-berthd", "docker-on-dockerd"):
    m = r[k]["median"]
    print(f"{k:22} median {m*1000:7.1f} ms  ratio to docker/dockerd {m/d:.2f}x")
EOP

# Sum of RSS and PSS (KiB) of the engine's processes.
engine_mem() { # pids...
  python3 - "$@" <<'EOP'
import sys
rss = pss = 0
for p in sys.argv[1:]:
    try:
        for l in open(f"/proc/{p}/smaps_rollup"):
            k, v = l.split(":", 1)
            if k == "Rss": rss += int(v.split()[0])
            if k == "Pss": pss += int(v.split()[0])
    except OSError:
        pass
print(rss, pss)
EOP
}
many() { # label, docker command prefix, pids-function
  label=$1; cli=$2; pids=$3
  start=$(date +%s.%N)
  n=0; while [ $n -lt "$COUNT" ]; do $cli run -d --network none busybox sleep 1000 >/dev/null; n=$((n+1)); done
  up=$(date +%s.%N)
  sleep 2
  mem=$(engine_mem $($pids))
  $cli ps -aq | xargs -r $cli rm -f >/dev/null
  down=$(date +%s.%N)
  echo "$label $start $up $down $mem" >> "$W/many"
}
berth_pids() { echo "$BERTHD $(pgrep -f "berth-shim $W" || true)"; }
docker_pids() { echo "$DOCKERD $(pgrep -f "containerd --config $W" || pgrep -f "$W/docker-exec/containerd" || true) $(pgrep -f "containerd-shim-runc-v2.*$W" || true)"; }
: > "$W/many"
echo "--- $COUNT x run -d sleep, then rm -f ---"
many berth "$BD" berth_pids
many docker "$DD" docker_pids
python3 - "$W/many" "$COUNT" <<'EOP'
import sys
rows = {}
for l in open(sys.argv[1]):
    k, start, up, down, rss, pss = l.split()
    # The 2 s pause before measuring memory is not part of the rm phase.
    rows[k] = [float(up) - float(start), float(down) - float(up) - 2, float(rss), float(pss)]
b, d = rows["berth"], rows["docker"]
n = sys.argv[2]
print(f"{'':8} {'run -d x'+n:>12} {'rm -f all':>10} {'RSS MiB':>9} {'PSS MiB':>9}")
for k, v in (("berth", b), ("docker", d)):
    print(f"{k:8} {v[0]:11.2f}s {v[1]:9.2f}s {v[2]/1024:9.1f} {v[3]/1024:9.1f}")
print(f"{'ratio':8} {b[0]/d[0]:11.2f}x {b[1]/d[1]:9.2f}x {b[2]/d[2]:9.2f}x {b[3]/d[3]:9.2f}x")
EOP
