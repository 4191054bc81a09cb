#!/usr/bin/env bash
# berth's benchmarks (as root; never run by CI, never asserting a time):
#   1. `berthctl run --rm IMAGE true`, end to end, median of $RUNS runs
#   2. `berthctl exec NAME true` into a running container, median of $RUNS
#   3. C (each of $CONC) `berthctl run --rm IMAGE true` started at once: the
#      wall time until the last has exited, median of $CROUNDS rounds
#   4. per-shim proportional set size and berthd's RSS with $N containers
#   5. `berthctl load` of an image of ~$PAD_MB MB
#   6. `berthctl commit` of a 1 KiB and of a 50 MiB change on that image:
#      the time follows the diff, not the image (berth only: ctr has no commit)
#   7. with each of $SCALE containers created (berth only): `run --rm`,
#      `ps`, `ps -a --filter label=` matching one, and `ps -a`, median of
#      $SRUNS each: the first three should not grow with the count
# and the same with containerd + runc (its `ctr` on a private socket, root
# and namespace, containers with containerd's default seccomp profile as
# berth's have Docker's) when Debian's containerd and runc are installed.
# Timings are taken in interleaved rounds (berth, containerd, berth, ...) so
# that a load which comes and goes on a shared machine falls on both alike.
#
# The script kills only what it started, by PID: each daemon is started in
# a pids cgroup of the script's own, and the shims it forks stay there (they
# do not move themselves), so whatever is left at the end is found by that
# membership, never by a name pattern over the machine's processes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50}
N=${N:-100}
PAD_MB=${PAD_MB:-300}
CONC=${CONC:-20 100}
CROUNDS=${CROUNDS:-3}
SCALE=${SCALE:-0 1000 10000}
SRUNS=${SRUNS:-20}

bash scripts/setup.sh
cargo build --release --bins -q
# The shim in its own profile: small beats fast for a process per container.
cargo build --profile shim -p berth-shim --bin berth-shim -q
bin=$PWD/target/release
shim=$PWD/target/shim/berth-shim

ctrd=
if command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null; then ctrd=1; fi

if [ -d /sys/fs/cgroup/pids ]; then
  cg_root=/sys/fs/cgroup/pids
elif [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  cg_root=/sys/fs/cgroup
else
  echo "bench: no pids cgroup hierarchy to keep the daemons' processes in" >&2
  exit 1
fi

work=$(mktemp -d /var/tmp/bb.XXXX)
tag=bb-$$-${work##*.}
cg_berth=$cg_root/$tag-berth
cg_ctrd=$cg_root/$tag-containerd
# containerd's namespace: runc keeps its state in /run/containerd/runc/<ns>
# and the containers' cgroups go under /<ns>/ in every hierarchy, both
# outside containerd's root, so the name is this run's own.
ns=$tag
runc_root=/run/containerd/runc/$ns
had_run_containerd=
[ -e /run/containerd ] && had_run_containerd=1
ctrc() { ctr -a "$work/ctrd.sock" -n "$ns" "$@"; }
export BERTH_SOCKET=$work/berthd.sock
agent=
ctr_pid=

# Starts "$@" in the background inside the cgroup $1 (created here); $! is
# its PID, as the subshell joins the cgroup and then execs the command.
start_in() {
  mkdir "$1"
  (
    cg=$1
    shift
    echo "$BASHPID" >"$cg/cgroup.procs"
    exec "$@"
  ) &
}

# SIGKILLs, by PID, whatever is still in one of our cgroups, then removes it.
empty_cgroup() {
  [ -d "$1" ] || return 0
  local left
  for _ in $(seq 50); do
    left=$(cat "$1/cgroup.procs")
    [ -z "$left" ] && break
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null || true
    sleep 0.1
  done
  rmdir "$1" 2>/dev/null || echo "bench: could not remove $1" >&2
}

cleanup() {
  if [ -n "$agent" ]; then
    ids=$("$bin/berthctl" ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || "$bin/berthctl" rm -f $ids >/dev/null 2>&1 || true
    kill "$agent" 2>/dev/null || true
    wait "$agent" 2>/dev/null || true
  fi
  if [ -n "$ctr_pid" ]; then
    for id in $(ctrc container ls -q 2>/dev/null); do
      ctrc task kill -s KILL "$id" >/dev/null 2>&1 || true
      ctrc task delete -f "$id" >/dev/null 2>&1 || true
      ctrc container delete "$id" >/dev/null 2>&1 || true
    done
    for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
      runc --root "$runc_root" delete -f "$id" >/dev/null 2>&1 || true
    done
    kill "$ctr_pid" 2>/dev/null || true
    wait "$ctr_pid" 2>/dev/null || true
  fi
  # the shims (and anything else the daemons forked) still running
  empty_cgroup "$cg_berth"
  empty_cgroup "$cg_ctrd"
  # whatever is left mounted under the scratch dir
  awk '{print $5}' /proc/self/mountinfo | grep "^$work/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
  if [ -n "$ctrd" ]; then
    rm -rf "$runc_root"
    # the containers' cgroups are gone with them; their parent is ours
    for d in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do [ ! -d "$d" ] || rmdir "$d" 2>/dev/null || true; done
    # containerd's fixed paths (shim sockets, ctr's fifos), only if this
    # run made /run/containerd; rmdir leaves anything not empty alone
    if [ -z "$had_run_containerd" ]; then
      rmdir /run/containerd/runc /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null || true
    fi
  fi
}
trap cleanup EXIT

start_in "$cg_berth" "$bin/berthd" --root "$work/root" --state "$work/state" --socket "$BERTH_SOCKET" --shim "$shim" --log warn 2>"$work/berthd.log"
agent=$!
if [ -n "$ctrd" ]; then
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
  start_in "$cg_ctrd" containerd --config "$work/ctrd.toml" >"$work/ctrd.log" 2>&1
  ctr_pid=$!
fi
for _ in $(seq 200); do "$bin/berthctl" version >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/mkimage" --format oci --name bench/busybox:latest "$work/img.tar" >/dev/null
"$bin/berthctl" load -i "$work/img.tar" >/dev/null
ref=docker.io/bench/busybox:latest
if [ -n "$ctrd" ]; then
  for _ in $(seq 100); do ctrc version >/dev/null 2>&1 && break; sleep 0.1; done
  ctrc image import --all-platforms "$work/img.tar" >/dev/null
fi

# Wall times in µs by bash's own clock (a `date` process would add its own
# start-up), per key; a failed command is counted, not timed.
declare -A times fails
timed() { # KEY CMD...
  local key=$1 t0 t1 rc=0
  shift
  t0=${EPOCHREALTIME/./}
  "$@" >/dev/null 2>&1 || rc=$?
  t1=${EPOCHREALTIME/./}
  if [ "$rc" = 0 ]; then times[$key]+=" $((t1 - t0))"; else fails[$key]=$((${fails[$key]:-0} + 1)); fi
}
# "MEDIAN ms" of a key's times, and how many failed
median_ms() {
  local f=${fails[$1]:-0} m=
  # shellcheck disable=SC2086
  [ -n "${times[$1]:-}" ] && m=$(printf '%s\n' ${times[$1]} | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f ms", m/1000}')
  printf '%s' "${m:-(none succeeded)}"
  [ "$f" = 0 ] || printf ' (%s failed)' "$f"
}
row() { printf '  %-12s %s\n' "$1" "$2"; }

i=0
berth_run() { "$bin/berthctl" run --rm bench/busybox true; }
ctr_run() { i=$((i + 1)); ctrc run --rm --seccomp "$ref" "r$i" true; }
berth_exec() { "$bin/berthctl" exec ex true; }
ctr_exec() { i=$((i + 1)); ctrc task exec --exec-id "e$i" ex true; }

for _ in $(seq "$RUNS"); do timed true /bin/true; done
echo "== baseline: fork+exec of /bin/true from bash: median $(median_ms true)"

echo "== run --rm IMAGE true, median of $RUNS interleaved rounds"
for _ in $(seq "$RUNS"); do
  timed berth-run berth_run
  [ -z "$ctrd" ] || timed ctr-run ctr_run
done
row berth "$(median_ms berth-run)"
[ -z "$ctrd" ] || row containerd "$(median_ms ctr-run)"

echo "== exec NAME true, median of $RUNS interleaved rounds"
"$bin/berthctl" run -d --name ex bench/busybox sleep 100000 >/dev/null
[ -z "$ctrd" ] || ctrc run -d --seccomp "$ref" ex sleep 100000 >/dev/null
for _ in $(seq "$RUNS"); do
  timed berth-exec berth_exec
  [ -z "$ctrd" ] || timed ctr-exec ctr_exec
done
"$bin/berthctl" rm -f ex >/dev/null
[ -z "$ctrd" ] || ctrc task delete -f ex >/dev/null 2>&1
[ -z "$ctrd" ] || ctrc container delete ex >/dev/null
row berth "$(median_ms berth-exec)"
[ -z "$ctrd" ] || row containerd "$(median_ms ctr-exec)"

# C commands started at once. The C shells are forked first and each waits
# on a fifo until all are ready; the clock starts when they are released (so
# bash's own forking is not counted) and stops when the last has exited.
burst() { # KEY C FUNCTION (FUNCTION K runs the K-th command)
  local key=$1 n=$2 f=$3 k p pids=() bad=0 t0 t1
  rm -f "$work/go" "$work/ready"
  mkfifo "$work/go" "$work/ready"
  # read-write opens never block, and keep both fifos open until the end
  exec 3<>"$work/go" 4<>"$work/ready"
  for k in $(seq "$n"); do
    (
      printf x >&4
      read -r -u 3 _
      "$f" "$k" 3>&- 4>&-
    ) >/dev/null 2>&1 &
    pids+=($!)
  done
  read -r -N "$n" -u 4 _
  t0=${EPOCHREALTIME/./}
  # one newline per waiter: each read takes exactly one
  printf '%*s' "$n" '' | tr ' ' '\n' >&3
  for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
  t1=${EPOCHREALTIME/./}
  exec 3>&- 4>&-
  times[$key]+=" $((t1 - t0))"
  [ "$bad" = 0 ] || fails[$key]=$((${fails[$key]:-0} + bad))
}
# NAME KEY C: the median round in s, every round in the order they ran, and
# how many of the runs failed
burst_row() {
  local r l f=${fails[$2]:-0}
  # shellcheck disable=SC2086
  l=$(printf '%s\n' ${times[$2]} | awk '{printf "%s%.2f", (NR > 1 ? " " : ""), $1 / 1e6}')
  # shellcheck disable=SC2086
  r=$(printf '%s\n' ${times[$2]} | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f s", m/1e6}')
  r+=" median (rounds: $l s)"
  [ "$f" = 0 ] || r+="; $f of $((CROUNDS * $3)) runs failed"
  row "$1" "$r"
}
berth_one() { "$bin/berthctl" run --rm bench/busybox true; }
ctr_one() { ctrc run --rm --seccomp "$ref" "c$C-$r-$1" true; }
left() { # what a burst left behind
  local b n=0
  b=$("$bin/berthctl" ps -aq | wc -l)
  [ -z "$ctrd" ] || n=$(ctrc container ls -q | wc -l)
  [ "$b$n" = 00 ] || echo "  (left behind: $b berth, $n containerd containers)"
}
for C in $CONC; do
  echo "== $C x run --rm IMAGE true started at once, wall time for all, $CROUNDS interleaved rounds"
  for r in $(seq "$CROUNDS"); do
    burst "berth-c$C" "$C" berth_one
    [ -z "$ctrd" ] || burst "ctr-c$C" "$C" ctr_one
  done
  burst_row berth "berth-c$C" "$C"
  [ -z "$ctrd" ] || burst_row containerd "ctr-c$C" "$C"
  left
done

pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k/1024}'; }
each() { awk -v t="$1" -v c="$2" 'BEGIN {printf "%.0f KiB (%.2f MiB) each", t/c, t/c/1024}'; }

echo "== $N containers running sleep"
for _ in $(seq "$N"); do "$bin/berthctl" run -d bench/busybox sleep 100000 >/dev/null; done
sleep 1
total=0 count=0
for f in "$work"/state/*/shim.pid; do
  p=$(cat "$f")
  grep -qx "$p" "$cg_berth/cgroup.procs" || echo "bench: $p in $f is not berthd's shim" >&2
  total=$((total + $(pss_kib "$p"))) count=$((count + 1))
done
row berth "$count shims, PSS $(each "$total" "$count"); berthd RSS $(mib "$(rss_kib "$agent")")"
# shellcheck disable=SC2046
"$bin/berthctl" rm -f $("$bin/berthctl" ps -aq) >/dev/null
if [ -n "$ctrd" ]; then
  for j in $(seq "$N"); do ctrc run -d --seccomp "$ref" "s$j" sleep 100000 >/dev/null; done
  sleep 1
  # each container's shim is its init's parent (the shim is the subreaper
  # runc's init is left with); one shim per container, counted as such
  total=0 count=0
  for p in $(ctrc task ls | awk 'NR > 1 && $3 == "RUNNING" {print $2}'); do
    s=$(awk '/^PPid:/ {print $2}' "/proc/$p/status")
    grep -qx "$s" "$cg_ctrd/cgroup.procs" || echo "bench: $s, parent of task $p, is not containerd's shim" >&2
    total=$((total + $(pss_kib "$s"))) count=$((count + 1))
  done
  row containerd "$count shims, PSS $(each "$total" "$count"); containerd RSS $(mib "$(rss_kib "$ctr_pid")")"
  ids=$(ctrc container ls -q)
  # shellcheck disable=SC2086
  ctrc task delete -f $ids >/dev/null 2>&1
  # shellcheck disable=SC2086
  ctrc container delete $ids >/dev/null
fi

"$bin/mkimage" --format oci --name bench/big:latest --pad-mb "$PAD_MB" "$work/big.tar" >/dev/null
size=$(du -m "$work/big.tar" | cut -f1)
echo "== load of a ${size} MB image (4 layers), once each"
timed berth-load "$bin/berthctl" load -i "$work/big.tar"
[ -z "$ctrd" ] || timed ctr-load ctrc image import "$work/big.tar"
row berth "$(median_ms berth-load) (berthctl load)"
[ -z "$ctrd" ] || row containerd "$(median_ms ctr-load) (ctr image import)"

commit_ms() { # NAME SCRIPT: time of `commit` of a container that ran SCRIPT
  "$bin/berthctl" run --name "$1" bench/big sh -c "$2" >/dev/null
  timed "commit-$1" "$bin/berthctl" commit "$1" "bench/$1"
  median_ms "commit-$1"
}
echo "== commit on the ${size} MB image (berth only: ctr has no commit)"
row "1 KiB" "$(commit_ms c-small 'head -c 1024 /dev/urandom > /small')"
row "50 MiB" "$(commit_ms c-large 'head -c 52428800 /dev/urandom > /large')"
echo "== with K containers created: median of $SRUNS (berth only)"
printf '  %-8s %-12s %-12s %-14s %s\n' K "run --rm" ps "ps -a label=" "ps -a"
"$bin/berthctl" create --name scale-one -l bench=one bench/busybox true >/dev/null
have=1
for K in $SCALE; do
  while [ "$have" -lt "$K" ]; do
    "$bin/berthctl" create -l bench=scale bench/busybox true >/dev/null
    have=$((have + 1))
  done
  for _ in $(seq "$SRUNS"); do
    timed "scale-run-$K" berth_run
    timed "scale-ps-$K" "$bin/berthctl" ps
    timed "scale-label-$K" "$bin/berthctl" ps -a --filter label=bench=one
    timed "scale-all-$K" "$bin/berthctl" ps -a
  done
  printf '  %-8s %-12s %-12s %-14s %s\n' "$have" "$(median_ms "scale-run-$K")" "$(median_ms "scale-ps-$K")" \
    "$(median_ms "scale-label-$K")" "$(median_ms "scale-all-$K")"
done
"$bin/berthctl" ps -aq | xargs -r -n 500 "$bin/berthctl" rm -f >/dev/null

[ -n "$ctrd" ] || echo "== containerd + runc not installed (apt-get install containerd runc): no side-by-side figures"
