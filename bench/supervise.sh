#!/usr/bin/env bash
# Supervision costs (as root; never run by CI, never asserting a time):
#   1. berthd's CPU (user+system, % of one CPU) and RSS over $SECS seconds
#      while $N containers run with a health check every second, then the
#      same with `berthctl stats` streaming all of them too
#   2. `berthctl run --rm IMAGE true`: median of $RUNS runs plain, with
#      `--memory 64m --cpus 0.5`, and with `--health-cmd true` (the cost of
#      limits and of a check on a short-lived container)
# berthd's figures come from /proc/PID/stat and /proc/PID/status, so the
# probes' own processes (execs in the containers, run by their shims) are
# not counted in berthd's CPU; the shims' total CPU is shown beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100}
SECS=${SECS:-20}
RUNS=${RUNS:-30}

bash scripts/setup.sh
cargo build --release --bins -q
cargo build --profile shim -p berth-shim --bin berth-shim -q
bin=$PWD/target/release
shim=$PWD/target/shim/berth-shim

work=$(mktemp -d /var/tmp/bs.XXXX)
sock=$work/berthd.sock
export BERTH_SOCKET=$sock
ctl() { "$bin/berthctl" "$@"; }
stats_pid=
cleanup() {
  [ -n "$stats_pid" ] && kill "$stats_pid" 2>/dev/null || true
  ctl ps -aq 2>/dev/null | xargs -r "$bin/berthctl" rm -f >/dev/null 2>&1 || true
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/berthd" --root "$work/root" --state "$work/state" --socket "$sock" --shim "$shim" \
  >"$work/berthd.log" 2>&1 &
agent=$!
for _ in $(seq 100); do ctl version >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/mkimage" --format oci --name bench/busybox "$work/img.tar" >/dev/null
ctl load -i "$work/img.tar" >/dev/null

ticks=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
shims_cpu() {
  local t=0 p
  for p in $(pgrep -f "$shim" || true); do
    [ "$p" = "$agent" ] && continue  # berthd names the shim in its own arguments
    t=$((t + $(cpu_of "$p" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
measure() { # label
  local a0 s0 a1 s1
  a0=$(cpu_of "$agent"); s0=$(shims_cpu)
  sleep "$SECS"
  a1=$(cpu_of "$agent"); s1=$(shims_cpu)
  local rss
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
  awk -v l="$1" -v a="$((a1 - a0))" -v s="$((s1 - s0))" -v r="$rss" -v t="$ticks" -v d="$SECS" \
    'BEGIN {printf "%-44s berthd CPU %6.2f %%  RSS %6.1f MiB   shims CPU %6.2f %%\n", l, a*100/t/d, r/1024, s*100/t/d}'
}

for i in $(seq "$N"); do
  ctl run -d --name "h$i" --health-cmd true --health-interval 1s bench/busybox sleep 100000 >/dev/null
done
sleep 3
echo "== $N containers, health check every 1 s, over ${SECS} s"
measure "health checks"
ctl stats --format json >/dev/null &
stats_pid=$!
sleep 2
measure "health checks + stats streamed for all"
kill "$stats_pid"; stats_pid=
ctl ps --format json | grep -c '(healthy)' | sed 's/^/healthy containers: /'
ctl ps -aq | xargs -r "$bin/berthctl" rm -f >/dev/null

median_ms() { # args...: median wall time of $RUNS runs of `berthctl ARGS`
  local t=()
  for _ in $(seq "$RUNS"); do
    local s e
    s=$(date +%s%N); ctl "$@" >/dev/null; e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}
echo "== run --rm true, median of $RUNS"
for round in 1 2; do
  echo "round $round: plain $(median_ms run --rm bench/busybox true) ms," \
    "--memory 64m --cpus 0.5 $(median_ms run --rm --memory 64m --cpus 0.5 bench/busybox true) ms," \
    "--health-cmd true $(median_ms run --rm --health-cmd true bench/busybox true) ms"
done
