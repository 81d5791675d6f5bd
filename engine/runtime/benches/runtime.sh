#!/bin/sh
# Runtime benchmark: `run` of /bin/true on one busybox bundle with berth-runtime, runc and crun,
# under the same conditions (one private mount namespace where the cgroup2 mount of the hybrid
# hierarchy is unmounted, since crun refuses hybrid mode). Prints medians, ratios and peak RSS.
#
# Usage (root): engine/runtime/benches/runtime.sh [RUNS]   (needs busybox-static, runc, crun)
# BERTH_RUNTIME overrides the binary (default: target/release/berth-runtime).
set -eu
RUNS=${1:-50}
WARMUP=5
here=$(cd "$(dirname "$0")/../../.." && pwd)
BERTH=${BERTH_RUNTIME:-$here/target/release/berth-runtime}
[ -x "$BERTH" ] || { echo "build first: cargo build --release -p berth-runtime" >&2; exit 1; }
for t in runc crun /bin/busybox; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install runc crun busybox-static)" >&2; exit 1; }
done

if [ "${BERTH_BENCH_INNER:-}" != 1 ]; then
    export BERTH_BENCH_INNER=1
    exec unshare -m --propagation private sh -c \
        'if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi; exec "$0" "$@"' "$0" "$@"
fi

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" \
    "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$a"
done
"$BERTH" spec --bundle "$bundle"
# Same config for every runtime: /bin/true, no terminal.
sed -i 's|"sh"|"/bin/true"|' "$bundle/config.json"

now_ns() { date +%s%N; }

bench() { # name binary -> prints "name median_ms peak_rss_kb"
    name=$1 bin=$2 root=$work/root-$name
    mkdir -p "$root"
    i=0
    while [ $i -lt $WARMUP ]; do
        "$bin" --root "$root" run --bundle "$bundle" "w$i" >/dev/null 2>&1 || true
        i=$((i + 1))
    done
    : >"$work/$name.times"
    : >"$work/$name.rss"
    i=0
    while [ $i -lt "$RUNS" ]; do
        t0=$(now_ns)
        /usr/bin/time -f %M -a -o "$work/$name.rss" \
            "$bin" --root "$root" run --bundle "$bundle" "b$i" >/dev/null
        t1=$(now_ns)
        echo $(((t1 - t0) / 1000)) >>"$work/$name.times"
        i=$((i + 1))
    done
    med=$(sort -n "$work/$name.times" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}')
    rss=$(sort -n "$work/$name.rss" | tail -1)
    echo "$name $med $rss"
}

b=$(bench berth "$BERTH")
r=$(bench runc "$(command -v runc)")
c=$(bench crun "$(command -v crun)")
echo "runtime        median_ms  peak_rss_kb  (run of /bin/true, $RUNS runs after $WARMUP warm-up)"
for line in "$b" "$r" "$c"; do
    set -- $line
    printf '%-14s %9s  %11s\n' "$1" "$2" "$3"
done
set -- $b; bm=$2 brss=$3
set -- $r; rm_=$2
set -- $c; cm=$2 crss=$3
awk -v b="$bm" -v r="$rm_" -v c="$cm" -v br="$brss" -v cr="$crss" 'BEGIN {
    printf "berth/runc time ratio: %.2f\nberth/crun time ratio: %.2f\nberth/crun peak RSS ratio: %.2f\n", b/r, b/c, br/cr }'
