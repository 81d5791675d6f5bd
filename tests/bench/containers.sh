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
. tests/bench/engines.sh
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
