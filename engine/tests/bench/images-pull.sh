#!/bin/sh
# Pull benchmark: a 4 x 50 MiB random-data image from a local docker-registry, pulled by
# Berth (download + verify + decompress + unpack into snapshots) and copied by
# `skopeo copy` to an OCI directory (download + verify only), alternately in one run.
# Prints the median time and peak RSS of each and the Berth/skopeo ratios.
#
#   engine/tests/bench/images-pull.sh [RUNS]      (default 5; run from the workspace root)
#
# Needs: docker-registry, skopeo, umoci, GNU time (/usr/bin/time), cargo.
set -eu
RUNS=${1:-5}
cargo build --release -q -p berth-engine --example berth-pull
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/berth-pull
W=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
REGPID=""
cleanup() { [ -n "$REGPID" ] && kill "$REGPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$W/config.yml" <<EOC
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/storage}}
http: {addr: $REG}
EOC
docker-registry serve "$W/config.yml" >"$W/registry.log" 2>&1 &
REGPID=$!
i=0; until curl -fs "http://$REG/v2/" >/dev/null; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done

# Image: four layers, each one file of 50 MiB of random data.
umoci init --layout "$W/oci" >/dev/null
umoci new --image "$W/oci:bench" >/dev/null
for n in 1 2 3 4; do
  rm -rf "$W/b"
  umoci unpack --image "$W/oci:bench" "$W/b" >/dev/null
  head -c 52428800 /dev/urandom > "$W/b/rootfs/data$n"
  umoci repack --image "$W/oci:bench" "$W/b" >/dev/null
done
rm -rf "$W/b"
skopeo copy -q --dest-tls-verify=false "oci:$W/oci:bench" "docker://$REG/bench:latest"
SIZE=$(du -sb "$W/storage" | cut -f1)
echo "image: 4 x 50 MiB random layers, registry storage $SIZE bytes"

measure() { # label, command...
  label=$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null
  echo "$label $(cat "$W/t")" >> "$W/results"
}
: > "$W/results"
r=0
while [ $r -lt "$RUNS" ]; do
  rm -rf "$W/sk" "$W/root"
  measure skopeo skopeo copy -q --src-tls-verify=false "docker://$REG/bench:latest" "oci:$W/sk:bench"
  measure berth "$BIN" "$W/root" "$REG/bench:latest"
  r=$((r+1))
done
python3 - "$W/results" <<'EOP'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
res = {}
for label, t, rss in rows:
    res.setdefault(label, []).append((float(t), int(rss)))
med = {k: (statistics.median(x[0] for x in v), max(x[1] for x in v)) for k, v in res.items()}
for k in ("skopeo", "berth"):
    t, rss = med[k]
    print(f"{k:7s} median {t:6.2f} s   peak RSS {rss/1024:6.1f} MiB   runs {[x[0] for x in res[k]]}")
print(f"ratio berth/skopeo: time {med['berth'][0]/med['skopeo'][0]:.2f}x, peak RSS {med['berth'][1]/med['skopeo'][1]:.2f}x")
EOP
