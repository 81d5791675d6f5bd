#!/usr/bin/env bash
# `config` of the same Compose files with berth and with Debian's docker-compose 1.29, side by side
# in one run; prints mean wall times (hyperfine) and the berth/docker-compose ratio.
# Usage: tests/bench/compose-config.sh   (after `cargo build --release -p berth-cli`)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
berth="$root/target/release/berth"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v docker-compose >/dev/null || { echo "docker-compose (Debian package) is needed" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine (Debian package) is needed" >&2; exit 1; }
[ -x "$berth" ] || { echo "build first: cargo build --release -p berth-cli" >&2; exit 1; }

cp -r "$root/tests/bench/data/." "$work/full"
python3 "$root/tests/bench/gen_compose.py" 500 > "$work/s500.yaml"
python3 "$root/tests/bench/gen_compose.py" 5000 > "$work/s5000.yaml"
python3 "$root/tests/bench/gen_compose.py" 2500 > "$work/s2500.yaml"

bench() { # name file runs [warmup]
  local name=$1 file=$2 runs=$3 warmup=${4:-2}
  hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$work/$name.json" \
    -n berth "$berth compose -f $file config" \
    -n docker-compose "docker-compose -f $file config" >/dev/null 2>&1 || {
    echo "$name: a command failed:"; "$berth" compose -f "$file" config >/dev/null; docker-compose -f "$file" config >/dev/null; return 1; }
  python3 - "$work/$name.json" "$name" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
b, d = r["berth"]["mean"], r["docker-compose"]["mean"]
print(f"{sys.argv[2]:<14} berth {b*1000:8.1f} ms   docker-compose {d*1000:8.1f} ms   ratio {b/d:.3f}")
PY
}
export MODE=bench
bench full-example "$work/full/full-129.yaml" 20
bench services-500 "$work/s500.yaml" 10
# docker-compose 1.29 needs tens of seconds per run on the large files: few runs, no warm-up.
bench services-2500 "$work/s2500.yaml" 2 0
bench services-5000 "$work/s5000.yaml" 2 0
