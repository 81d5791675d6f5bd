#!/bin/sh
# Build benchmark: a 3-step Dockerfile (ENV, COPY, RUN) on busybox, built by `berth build`
# through berthd and by `docker build` (legacy builder, DOCKER_BUILDKIT=0) through Debian's
# dockerd, side by side in one run, each daemon on its own private root. Cold = --no-cache
# (every step runs, RUN in a fresh container); cached = the same build again, every step a hit.
# Prints hyperfine medians and the Berth/docker ratios.
#
#   engine/tests/bench/images-build.sh [RUNS]     (default 10; from the workspace root, as root)
#
# Needs: dockerd (docker.io), docker CLI, docker-registry, umoci, skopeo, hyperfine.
set -eu
RUNS=${1:-10}
cargo build --release -q -p berth-agent -p berth-cli -p berth-shim
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
W=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
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
PIDS="$PIDS $!"
dockerd --data-root "$W/docker-root" --exec-root "$W/docker-exec" -H "unix://$W/dockerd.sock" \
  --pidfile "$W/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
  --insecure-registry "$REG" >"$W/dockerd.log" 2>&1 &
PIDS="$PIDS $!"
i=0; until docker -H "unix://$W/dockerd.sock" version >/dev/null 2>&1 && [ -S "$W/berthd.sock" ]; do
  i=$((i+1)); [ $i -gt 300 ] && { echo "daemons did not start"; exit 1; }; sleep 0.1
done
export DOCKER_CONFIG="$W/docker-config" DOCKER_BUILDKIT=0
BD="docker -H unix://$W/berthd.sock"
DD="docker -H unix://$W/dockerd.sock"
BERTH="$T/berth -H unix://$W/berthd.sock"
for c in "$BD" "$DD"; do
  $c pull -q "$REG/busybox:latest" >/dev/null
  $c tag "$REG/busybox:latest" busybox:latest
done

mkdir -p "$W/ctx"
printf 'payload\n' > "$W/ctx/f.txt"
cat > "$W/ctx/Dockerfile" <<'EOD'
FROM busybox
ENV GREETING=hello
COPY f.txt /f.txt
RUN echo "$GREETING" > /greeting
EOD
# Cold builds leave one image per run behind; dangling images do not change build times.
echo "--- cold: build --no-cache ($RUNS runs each) ---"
hyperfine -N -w 2 -r "$RUNS" --export-json "$W/cold.json" \
  -n berth "$BERTH build -q --no-cache -t bench:cold $W/ctx" \
  -n docker "$DD build -q --no-cache -t bench:cold $W/ctx" >/dev/null
echo "--- cached: build again ($RUNS runs each) ---"
hyperfine -N -w 2 -r "$RUNS" --export-json "$W/cached.json" \
  -n berth "$BERTH build -q -t bench:cached $W/ctx" \
  -n docker "$DD build -q -t bench:cached $W/ctx" >/dev/null
python3 - "$W/cold.json" "$W/cached.json" <<'EOP'
import json, sys
for name, path in (("cold", sys.argv[1]), ("cached", sys.argv[2])):
    r = {x["command"]: x["median"] for x in json.load(open(path))["results"]}
    print(f"{name:7} berth {r['berth']*1000:7.1f} ms   docker {r['docker']*1000:7.1f} ms   "
          f"berth/docker {r['berth']/r['docker']:.2f}x")
EOP
