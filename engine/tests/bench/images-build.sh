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
. tests/bench/engines.sh
export DOCKER_BUILDKIT=0

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
