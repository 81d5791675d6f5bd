# Shared setup of the side-by-side engine benchmarks, sourced (`. tests/bench/engines.sh`)
# after `set -eu` and after $W (a private temp dir) and $T (the release target dir) are set:
# a docker-registry on 127.0.0.1 with a busybox image (busybox-static, every applet linked),
# berthd and Debian's dockerd on private roots, and a cleanup trap for all of it.
# Sets REG, PIDS, BERTHD, DOCKERD, BD/DD (docker CLI on berthd/dockerd) and BERTH.

PIDS=""
BRIDGE=""
cleanup() {
  # berthd keeps its default bridge after exit (as dockerd keeps docker0): remove ours.
  [ -S "$W/berthd.sock" ] && BRIDGE=$(docker -H "unix://$W/berthd.sock" network inspect bridge \
    --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)
  for s in "$W/berthd.sock" "$W/dockerd.sock"; do
    [ -S "$s" ] && docker -H "unix://$s" ps -aq 2>/dev/null | xargs -r docker -H "unix://$s" rm -f >/dev/null 2>&1
  done
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
  # Its nftables table (berth-<id>) stays too; the bridge is berth0<id>.
  [ -n "$BRIDGE" ] && ip link del "$BRIDGE" 2>/dev/null || true
  [ -n "$BRIDGE" ] && nft delete table ip "berth-${BRIDGE#berth0}" 2>/dev/null || true
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
