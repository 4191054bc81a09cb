#!/usr/bin/env bash
# Pull benchmark (as root; never run by CI, never asserting a time): an
# image of about $PAD_MB MB (four layers, the top one $PAD_MB MiB of
# incompressible data, gzip) is put into Debian's docker-registry on
# loopback (plain HTTP, no auth) with skopeo, then pulled, each on an empty
# store, by
#   * berth: `berthctl pull` (download, verify, unpack into snapshots)
#   * containerd: `ctr image pull --plain-http` (download, verify, unpack)
#     when Debian's containerd is installed
#   * skopeo: `skopeo copy docker://… dir:` (download and verify only)
# and the ratios are printed. Median of $RUNS pulls each, in interleaved
# rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
PAD_MB=${PAD_MB:-300}
RUNS=${RUNS:-3}

bash scripts/setup.sh
cargo build --release --bins -q
cargo build --profile shim -p berth-shim --bin berth-shim -q
bin=$PWD/target/release
shim=$PWD/target/shim/berth-shim

work=$(mktemp -d /var/tmp/bp.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  awk '{print $5}' /proc/self/mountinfo | grep "^$work/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

"$bin/mkimage" --format oci --name bench/big:latest --pad-mb "$PAD_MB" "$work/big.tar" >/dev/null
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci-archive:$work/big.tar" "docker://127.0.0.1:$port/bench/big:latest"
ref=127.0.0.1:$port/bench/big:latest
size=$(du -m "$work/big.tar" | cut -f1)
echo "== pull of a ${size} MB image (4 layers) from a loopback registry, median of $RUNS"

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%d", m}'; }
# wall ms of a command that must succeed, appended to the list named $1
ms() {
  local -n out=$1
  local t0 t1
  shift
  t0=${EPOCHREALTIME/./}
  if ! "$@" >"$work/out" 2>&1; then echo "failed: $*" >&2; cat "$work/out" >&2; exit 1; fi
  t1=${EPOCHREALTIME/./}
  out+=($(((t1 - t0) / 1000)))
}
# kills a daemon this script started, by its PID, and forgets the PID: once
# reaped it may be another process's
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

berth_t=() skopeo_t=() ctrd_t=()
berth_once() {
  local d=$work/berth-$1
  "$bin/berthd" --root "$d/root" --state "$d/state" --socket "$d/sock" --shim "$shim" --log warn 2>"$d.log" &
  local a=$!
  pids+=("$a")
  for _ in $(seq 200); do BERTH_SOCKET=$d/sock "$bin/berthctl" version >/dev/null 2>&1 && break; sleep 0.05; done
  ms berth_t env BERTH_SOCKET="$d/sock" DOCKER_CONFIG="$work/none" "$bin/berthctl" pull "$ref"
  stop "$a"
  rm -rf "$d"
}
skopeo_once() {
  ms skopeo_t skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$ref" "dir:$work/skopeo-$1"
  rm -rf "$work/skopeo-$1"
}
ctrd=
command -v containerd >/dev/null && command -v ctr >/dev/null && ctrd=1
ctrd_once() {
  local d=$work/ctrd-$1
  mkdir -p "$d"
  cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
[grpc]
  address = "$d/sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_cgroup = true
TOML
  containerd --config "$d/config.toml" >"$d/log" 2>&1 &
  local c=$!
  pids+=("$c")
  for _ in $(seq 100); do ctr -a "$d/sock" version >/dev/null 2>&1 && break; sleep 0.1; done
  ms ctrd_t ctr -a "$d/sock" -n bench image pull --plain-http "$ref"
  stop "$c"
  awk '{print $5}' /proc/self/mountinfo | grep "^$d/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$d"
}
# interleaved rounds (berth, skopeo, containerd, berth, ...): a load that
# comes and goes on a shared machine falls on all three alike
for i in $(seq "$RUNS"); do
  berth_once "$i"
  skopeo_once "$i"
  [ -z "$ctrd" ] || ctrd_once "$i"
done
berth=$(printf '%s\n' "${berth_t[@]}" | median)
sk=$(printf '%s\n' "${skopeo_t[@]}" | median)
echo "berth  (berthctl pull):            ${berth} ms"
echo "skopeo (copy to dir:, no unpack):  ${sk} ms"
if [ -n "$ctrd" ]; then
  ctrd=$(printf '%s\n' "${ctrd_t[@]}" | median)
  echo "containerd $(containerd --version | awk '{print $3}') (ctr image pull): ${ctrd} ms"
  awk -v b="$berth" -v c="$ctrd" -v s="$sk" 'BEGIN {printf "ratios: containerd/berth %.2f, skopeo/berth %.2f\n", c/b, s/b}'
else
  awk -v b="$berth" -v s="$sk" 'BEGIN {printf "ratio: skopeo/berth %.2f (containerd not installed)\n", s/b}'
fi
