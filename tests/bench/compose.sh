#!/bin/sh
# Compose benchmark: `berth compose` + berthd against Debian's docker-compose 1.29 + dockerd, in
# one run, each engine on a private root, the tools alternating within every repetition.
#
#   1. `up -d` and `down` wall time of generated projects (tests/bench/gen_compose.py) of 10 and
#      50 busybox `sleep 3600` services, three shapes each: chain (each depends on the previous
#      one), fanout (one base, all others depend on it), independent. Berth: berth compose +
#      berthd; peer: docker-compose 1.29 + dockerd. Target: berth/peer <= 0.1.
#   2. The compose layer alone: `berth compose -H unix://<dockerd.sock>` against docker-compose
#      1.29, both against dockerd, same cases. Target <= 0.3.
#   3. `berth compose config` of a 500-service project (no daemon) and `berth compose ps` on the
#      50 running services of the last case (and, with BENCH_PS500=1, on 500 created ones).
#      Target < 100 ms.
#
# For 1 and 2 it also records the CPU time (user + system) of the compose client process: the
# compose layer's own cost, apart from what the daemon spends. Each figure is the median of REPS
# runs. berthd runs in the host's network namespace; dockerd in one of its own, so that its
# iptables rules and docker0 never touch the host. The script checks
# that `nft list ruleset`, the host's links and mounts are the same before and after.
#
#   tests/bench/compose.sh [REPS] [SIZES]   (defaults 3, "10 50"; run from the workspace root,
#   as root). BENCH_NO_BUILD=1 uses the binaries already in target/release.
#
# Needs: dockerd/containerd (docker.io), docker CLI, docker-compose 1.29, busybox-static,
# hyperfine, iproute2, nft.
set -eu
REPS=${1:-3}
SIZES=${2:-10 50}
SHAPES="chain fanout independent"
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p berth-agent -p berth-cli -p berth-shim
ROOT=$(pwd)
T=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
W=$(mktemp -d /tmp/berth-bench-compose.XXXXXX)
NS=berth-bench-compose-$$
GEN=$ROOT/tests/bench/gen_compose.py
IMAGE=benchbox:latest
PIDS=""
BERTHD=""
DOCKERD=""
nft list ruleset >"$W/nft.before"
ip -o link | awk -F': ' '{print $2}' | sort >"$W/links.before"
awk '{print $5}' /proc/self/mountinfo | sort >"$W/mounts.before"
export DOCKER_CONFIG="$W/docker-config"

cleanup() {
  # Every step runs even when an earlier one fails (a daemon already gone, say).
  set +e
  for d in "$W"/p-*; do
    [ -d "$d" ] || continue
    p=$(basename "$d" | tr -d -- '-')
    [ -S "$W/berthd.sock" ] && "$T/berth" compose -H "unix://$W/berthd.sock" -p "b$p" -f "$d/compose.yaml" down -t 0 >/dev/null 2>&1
    if [ -S "$W/dockerd.sock" ]; then
      DOCKER_HOST="unix://$W/dockerd.sock" docker-compose -p "d$p" -f "$d/compose.yaml" down -t 0 >/dev/null 2>&1
      "$T/berth" compose -H "unix://$W/dockerd.sock" -p "x$p" -f "$d/compose.yaml" down -t 0 >/dev/null 2>&1
    fi
  done
  for s in "$W/berthd.sock" "$W/dockerd.sock"; do
    if [ -S "$s" ]; then
      docker -H "unix://$s" ps -aq 2>/dev/null | xargs -r docker -H "unix://$s" rm -f >/dev/null 2>&1
      docker -H "unix://$s" network ls -q --filter label=com.docker.compose.project 2>/dev/null |
        xargs -r docker -H "unix://$s" network rm >/dev/null 2>&1
    fi
  done
  # The daemons are this shell's children: wait for them, with a watchdog for a stuck one.
  if [ -n "$PIDS" ]; then
    kill $PIDS 2>/dev/null
    (sleep 15; kill -9 $PIDS 2>/dev/null) &
    WATCHDOG=$!
    wait $PIDS 2>/dev/null
    kill "$WATCHDOG" 2>/dev/null
  fi
  # berthd keeps its default bridge and nftables table when it exits (to pick them up again on
  # restart); they are named after a hash of its root, which goes with this run. Whatever
  # dockerd left (containerd, shims) lives in its namespace.
  TAG=$(printf %s "$W/berth-root" | sha256sum | cut -c1-6)
  nft list table ip "berth-$TAG" >/dev/null 2>&1 && nft delete table ip "berth-$TAG"
  [ -e "/sys/class/net/berth0$TAG" ] && ip link del "berth0$TAG"
  [ -e "/run/netns/$NS" ] && { ip netns pids "$NS" | xargs -r kill -9; sleep 0.2; ip netns del "$NS"; }
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  nft list ruleset >"$W/nft.after" 2>/dev/null || true
  ip -o link | awk -F': ' '{print $2}' | sort >"$W/links.after"
  awk '{print $5}' /proc/self/mountinfo | sort >"$W/mounts.after"
  for k in nft links mounts; do
    if ! cmp -s "$W/$k.before" "$W/$k.after"; then
      echo "WARNING: $k differ from before the run (other helpers' tests may be running):"
      diff "$W/$k.before" "$W/$k.after" | head -20
    fi
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Image: busybox-static with every applet linked, imported from a rootfs tar by both engines.
mkdir -p "$W/rootfs/bin"
cp /bin/busybox "$W/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .

# --- berthd, in the host's namespace ---
"$T/berthd" --root "$W/berth-root" --exec-root "$W/berth-run" -H "unix://$W/berthd.sock" \
  --log-level warn >"$W/berthd.log" 2>&1 &
BERTHD=$!
PIDS="$PIDS $BERTHD"
# --- dockerd, in a network namespace of its own ---
ip netns add "$NS"
ip -n "$NS" link set lo up
# nsenter, not `ip netns exec`: the latter mounts a fresh /sys, which hides the cgroup mounts
# dockerd needs.
nsenter --net="/run/netns/$NS" dockerd --data-root "$W/docker-root" --exec-root "$W/docker-exec" \
  -H "unix://$W/dockerd.sock" --pidfile "$W/dockerd.pid" >"$W/dockerd.log" 2>&1 &
DOCKERD=$!
PIDS="$PIDS $DOCKERD"
i=0; until [ -S "$W/berthd.sock" ] && docker -H "unix://$W/dockerd.sock" version >/dev/null 2>&1; do
  i=$((i+1)); [ $i -gt 600 ] && { echo "a daemon did not start"; tail -5 "$W/berthd.log" "$W/dockerd.log"; exit 1; }; sleep 0.1
done
"$T/berth" -H "unix://$W/berthd.sock" import "$W/rootfs.tar" "$IMAGE" >/dev/null
docker -H "unix://$W/dockerd.sock" import "$W/rootfs.tar" "$IMAGE" >/dev/null

# The three tools, as a script so that the timer below can run it: berth compose + berthd,
# docker-compose + dockerd, berth compose + dockerd.
cat >"$W/tool" <<EOT
#!/bin/sh
n=\$1; p=\$2; f=\$3; shift 3
case \$n in
  berth) exec "$T/berth" compose -H "unix://$W/berthd.sock" -p "b\$p" -f "\$f" "\$@" ;;
  peer) DOCKER_HOST="unix://$W/dockerd.sock" exec docker-compose -p "d\$p" -f "\$f" "\$@" ;;
  layer) exec "$T/berth" compose -H "unix://$W/dockerd.sock" -p "x\$p" -f "\$f" "\$@" ;;
esac
EOT
tool() { sh "$W/tool" "$@"; }
# Wall time and the CPU time (user + system) of the compose client itself: the latter is the
# compose layer's own cost, whatever the daemon behind it spends.
cat >"$W/timeit.py" <<'EOT'
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[2:])
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.3f}\n")
sys.exit(rc)
EOT
# timed NAME CASE OP PROJECT FILE ARGS...: appends "NAME CASE OP wall-s client-cpu-s" to
# $W/times, or "NAME CASE OP fail fail" with the tool's output kept in $W/fail.NAME.CASE.OP.
timed() {
  _n=$1; _c=$2; _o=$3; shift 3
  if python3 "$W/timeit.py" "$W/t" sh "$W/tool" "$_n" "$@" >"$W/out" 2>&1; then
    echo "$_n $_c $_o $(cat "$W/t")" >>"$W/times"
  else
    echo "$_n $_c $_o fail fail" >>"$W/times"
    cp "$W/out" "$W/fail.$_n.$_c.$_o"
    echo "$_n $_c $_o failed: $(tail -3 "$W/out" | tr '\n' ' ')" >&2
  fi
}
# running NAME PROJECT FILE: how many of the project's containers run (a sanity check).
running() {
  case $1 in
    berth) _s=$W/berthd.sock; _p=b$2 ;;
    peer) _s=$W/dockerd.sock; _p=d$2 ;;
    layer) _s=$W/dockerd.sock; _p=x$2 ;;
  esac
  docker -H "unix://$_s" ps -q --filter "label=com.docker.compose.project=$_p" | wc -l
}

: >"$W/times"
for n in $SIZES; do
  for shape in $SHAPES; do
    c=$shape-$n
    mkdir -p "$W/p-$c"
    python3 "$GEN" "$n" "$shape" "$IMAGE" >"$W/p-$c/compose.yaml"
    p=$(echo "$c" | tr -d -- '-')
    r=0; while [ "$r" -lt "$REPS" ]; do
      for e in berth peer layer; do
        timed "$e" "$c" up "$p" "$W/p-$c/compose.yaml" up -d
        k=$(running "$e" "$p")
        [ "$k" -eq "$n" ] || echo "$e $c: $k of $n containers running after up -d" >&2
        if [ "$e" = berth ] && [ "$c" = "independent-$n" ] && [ "$r" -eq $((REPS - 1)) ]; then
          # ps on the running project, before it goes down.
          hyperfine -N -w 2 -r 10 --export-json "$W/ps-$n.json" \
            -n berth "$T/berth compose -H unix://$W/berthd.sock -p b$p -f $W/p-$c/compose.yaml ps" \
            >/dev/null 2>&1 || echo "berth compose ps on $n services failed" >&2
        fi
        timed "$e" "$c" down "$p" "$W/p-$c/compose.yaml" down
      done
      r=$((r+1))
    done
  done
done

python3 "$GEN" 500 >"$W/s500.yaml"
MODE=bench hyperfine -N -w 2 -r 10 --export-json "$W/config.json" \
  -n berth "$T/berth compose -f $W/s500.yaml config" >/dev/null 2>&1 ||
  echo "berth compose config on 500 services failed" >&2
if [ -n "${BENCH_PS500:-}" ]; then
  mkdir -p "$W/p-created-500"
  python3 "$GEN" 500 independent "$IMAGE" >"$W/p-created-500/compose.yaml"
  timed berth created-500 create created500 "$W/p-created-500/compose.yaml" create
  hyperfine -N -w 2 -r 10 --export-json "$W/ps-500.json" \
    -n berth "$T/berth compose -H unix://$W/berthd.sock -p bcreated500 -f $W/p-created-500/compose.yaml ps -a" \
    >/dev/null 2>&1 || echo "berth compose ps on 500 created services failed" >&2
  timed berth created-500 down created500 "$W/p-created-500/compose.yaml" down
fi

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared with other work); $REPS runs a case, medians"
python3 - "$W" <<'EOP'
import json, os, statistics, sys
w = sys.argv[1]
t, cases = {}, []
for line in open(os.path.join(w, "times")):
    n, c, o, wall, cpu = line.split()
    t.setdefault((n, c, o), []).append((wall, cpu))
    if (c, o) not in cases and c != "created-500":
        cases.append((c, o))

def med(key, i):
    # Over the runs that succeeded; the failures are listed with the runs.
    v = [float(x[i]) for x in t.get(key, []) if x[i] != "fail"]
    return statistics.median(v) if v else None

fmt = lambda x: "fail" if x is None else f"{x:.2f}"
for title, a, b, target in (("berth compose + berthd vs docker-compose 1.29 + dockerd: wall s", "berth", "peer", 0.1),
                            ("compose layer: berth compose vs docker-compose 1.29, both on dockerd: wall s; client CPU s", "layer", "peer", 0.3)):
    print(f"-- {title}")
    print(f"{'case':<22} {'berth':>7} {'peer':>7} {'ratio':>7} {'target':>7}  {'met':<8} {'cpu b':>6} {'cpu p':>6} {'ratio':>7}")
    for c, o in cases:
        x, y = med((a, c, o), 0), med((b, c, o), 0)
        ratio = x / y if x is not None and y else None
        ok = "-" if ratio is None else ("met" if ratio <= target else "not met")
        cx, cy = med((a, c, o), 1), med((b, c, o), 1)
        cr = f"{cx / cy:.3f}x" if cx is not None and cy else "-"
        print(f"{c + ' ' + o:<22} {fmt(x):>7} {fmt(y):>7} {fmt(ratio) + 'x' if ratio else '-':>7} {'<=' + str(target):>7}  {ok:<8} {fmt(cx):>6} {fmt(cy):>6} {cr:>7}")
    for c, o in cases:
        print(f"   runs (wall) {a} {c} {o}: {' '.join(x[0] for x in t.get((a, c, o), []))}; {b}: {' '.join(x[0] for x in t.get((b, c, o), []))}")
print("-- berth compose, no peer (target < 100 ms)")
for name, label in (("config.json", "config, 500 services (no daemon)"),
                    *((f, f"ps, {f[3:-5]} running services") for f in sorted(os.listdir(w)) if f.startswith("ps-") and f != "ps-500.json"),
                    ("ps-500.json", "ps -a, 500 created services")):
    p = os.path.join(w, name)
    if not os.path.exists(p):
        continue
    ms = json.load(open(p))["results"][0]["median"] * 1000
    print(f"{label:<36} {ms:8.1f} ms  {'met' if ms < 100 else 'not met'}")
for o in ("create", "down"):
    if ("berth", "created-500", o) in t:
        print(f"{o}, 500 services (berth): {' '.join(x[0] for x in t[('berth', 'created-500', o)])} s wall")
EOP
for f in "$W"/fail.*; do
  [ -e "$f" ] || continue
  echo "== $(basename "$f"):"; tail -5 "$f"
done
