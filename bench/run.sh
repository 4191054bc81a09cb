#!/usr/bin/env bash
# berth's benchmarks (as root; never run by CI, never asserting a time):
#   1. `berthctl run --rm IMAGE true`, end to end, median of $RUNS runs
#   2. per-shim proportional set size and berthd's RSS with $N containers
#   3. `berthctl load` of an image of ~$PAD_MB MB
#   4. `berthctl exec NAME true` into a running container, median of $RUNS
#   5. `berthctl commit` of a 1 KiB and of a 50 MiB change on that image:
#      the time follows the diff, not the image (berth only: ctr has no commit)
# and the same with containerd + runc (its `ctr` on a private socket) when
# Debian's containerd and runc are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
N=${N:-100}
PAD_MB=${PAD_MB:-300}

bash scripts/setup.sh
cargo build --release --bins -q
# The shim in its own profile: small beats fast for a process per container.
cargo build --profile shim -p berth-shim --bin berth-shim -q
bin=$PWD/target/release
shim=$PWD/target/shim/berth-shim

work=$(mktemp -d /var/tmp/bb.XXXX)
export BERTH_SOCKET=$work/berthd.sock
"$bin/berthd" --root "$work/root" --state "$work/state" --socket "$BERTH_SOCKET" --shim "$shim" --log warn 2>"$work/berthd.log" &
agent=$!
ctr_pid=
cleanup() {
  ids=$("$bin/berthctl" ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && "$bin/berthctl" rm -f $ids >/dev/null 2>&1 || true
  kill "$agent" 2>/dev/null || true
  if [ -n "$ctr_pid" ]; then
    local c="ctr -a $work/ctrd.sock -n berth-bench"
    for id in $($c container ls -q 2>/dev/null); do
      $c task kill -s KILL "$id" >/dev/null 2>&1 || true
      $c task delete -f "$id" >/dev/null 2>&1 || true
      $c container delete "$id" >/dev/null 2>&1 || true
    done
    # runc keeps its state outside containerd's root
    for id in $(runc --root /run/containerd/runc/berth-bench list -q 2>/dev/null); do
      runc --root /run/containerd/runc/berth-bench delete -f "$id" >/dev/null 2>&1 || true
    done
    kill "$ctr_pid" 2>/dev/null || true
    pkill -9 -f "containerd-shim.*$work" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  # whatever containerd left mounted under the scratch dir
  awk '{print $5}' /proc/self/mountinfo | grep "^$work" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 200); do "$bin/berthctl" version >/dev/null 2>&1 && break; sleep 0.05; done

"$bin/mkimage" --format oci --name bench/busybox:latest "$work/img.tar" >/dev/null
"$bin/berthctl" load -i "$work/img.tar" >/dev/null

# median of a command's wall time in ms over $RUNS runs
median_ms() {
  local times=()
  for _ in $(seq "$RUNS"); do
    # bash's own clock: a `date` process would add its own start-up time
    local t0 t1
    t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1; t1=${EPOCHREALTIME/./}
    times+=($(( t1 - t0 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m/1000}'
}

pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

t_true=$(median_ms /bin/true)
echo "== baseline: fork+exec of /bin/true from bash: median ${t_true} ms"
echo "== berth"
run_ms=$(median_ms "$bin/berthctl" run --rm bench/busybox true)
echo "run --rm true: median ${run_ms} ms over $RUNS runs"

"$bin/berthctl" run -d --name ex bench/busybox sleep 100000 >/dev/null
echo "exec true: median $(median_ms "$bin/berthctl" exec ex true) ms over $RUNS runs"
"$bin/berthctl" rm -f ex >/dev/null

for i in $(seq "$N"); do "$bin/berthctl" run -d bench/busybox sleep 100000 >/dev/null; done
sleep 1
total=0; count=0
for f in "$work"/state/*/shim.pid; do
  p=$(cat "$f"); total=$((total + $(pss_kib "$p"))); count=$((count + 1))
done
echo "shim PSS with $count running: $(awk -v t=$total -v c=$count 'BEGIN {printf "%.0f KiB (%.2f MiB) each", t/c, t/c/1024}')"
echo "berthd RSS with $count running: $(awk -v r=$(rss_kib $agent) 'BEGIN {printf "%.1f MiB", r/1024}')"
"$bin/berthctl" rm -f $("$bin/berthctl" ps -aq) >/dev/null

"$bin/mkimage" --format oci --name bench/big:latest --pad-mb "$PAD_MB" "$work/big.tar" >/dev/null
size=$(du -m "$work/big.tar" | cut -f1)
t0=${EPOCHREALTIME/./}; "$bin/berthctl" load -i "$work/big.tar" >/dev/null; t1=${EPOCHREALTIME/./}
echo "load of a ${size} MB image: $(( (t1 - t0) / 1000 )) ms"

commit_ms() { # NAME SCRIPT: time of `commit` of a container that ran SCRIPT
  "$bin/berthctl" run --name "$1" bench/big sh -c "$2" >/dev/null
  local t0 t1
  t0=${EPOCHREALTIME/./}; "$bin/berthctl" commit "$1" "bench/$1" >/dev/null; t1=${EPOCHREALTIME/./}
  echo "$(( (t1 - t0) / 1000 ))"
}
small=$(commit_ms c-small 'head -c 1024 /dev/urandom > /small')
large=$(commit_ms c-large 'head -c 52428800 /dev/urandom > /large')
echo "commit on the ${size} MB image: 1 KiB change ${small} ms, 50 MiB change ${large} ms"

if command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null; then
  echo "== containerd $(containerd --version | awk '{print $3}') + runc"
  mkdir -p "$work/ctrd-root" "$work/ctrd-state"
  cat >"$work/ctrd.toml" <<TOML
version = 2
root = "$work/ctrd-root"
state = "$work/ctrd-state"
[grpc]
  address = "$work/ctrd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_cgroup = true
TOML
  containerd --config "$work/ctrd.toml" >"$work/ctrd.log" 2>&1 &
  ctr_pid=$!
  c="ctr -a $work/ctrd.sock -n berth-bench"
  for _ in $(seq 100); do $c version >/dev/null 2>&1 && break; sleep 0.1; done
  $c image import --all-platforms "$work/img.tar" >/dev/null
  ref=docker.io/bench/busybox:latest
  i=0
  ctr_run() { i=$((i + 1)); $c run --rm "$ref" "b$$-$i" true; }
  echo "run --rm true: median $(median_ms ctr_run) ms over $RUNS runs"
  $c run -d "$ref" "ex$$" sleep 100000 >/dev/null
  ctr_exec() { i=$((i + 1)); $c task exec --exec-id "e$i" "ex$$" true; }
  echo "exec true: median $(median_ms ctr_exec) ms over $RUNS runs"
  for j in $(seq "$N"); do $c run -d "$ref" "s$$-$j" sleep 100000 >/dev/null; done
  sleep 1
  total=0; count=0
  for p in $(pgrep -f containerd-shim); do total=$((total + $(pss_kib "$p"))); count=$((count + 1)); done
  echo "shim PSS with $count running: $(awk -v t=$total -v c=$count 'BEGIN {printf "%.0f KiB (%.2f MiB) each", t/c, t/c/1024}')"
  echo "containerd RSS: $(awk -v r=$(rss_kib $ctr_pid) 'BEGIN {printf "%.1f MiB", r/1024}')"
  t0=${EPOCHREALTIME/./}; $c image import "$work/big.tar" >/dev/null; t1=${EPOCHREALTIME/./}
  echo "import of a ${size} MB image: $(( (t1 - t0) / 1000 )) ms"
else
  echo "== containerd + runc not installed (apt-get install containerd runc): no side-by-side figures"
fi
