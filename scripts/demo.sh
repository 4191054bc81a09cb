#!/usr/bin/env bash
# berth's main job, end to end (the README's first Quick start command):
# build, start berthd on a scratch root, make an image from Debian's
# busybox-static, load it, run containers from it, show them, stop berthd.
# Containers would outlive berthd; the demo removes its own before it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --bins -q
bin=target/release

work=$(mktemp -d /var/tmp/bd.XXXX)
export BERTH_SOCKET=$work/berthd.sock
"$bin/berthd" --root "$work/root" --state "$work/state" --socket "$BERTH_SOCKET" \
  --shim "$bin/berth-shim" --log warn 2>"$work/berthd.log" &
agent=$!
cleanup() {
  "$bin/berthctl" rm -f demo >/dev/null 2>&1 || true
  kill "$agent" 2>/dev/null || true
  wait "$agent" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do "$bin/berthctl" version >/dev/null 2>&1 && break; sleep 0.05; done

if [ -t 1 ]; then bold=$(printf "\033[1m"); off=$(printf "\033[0m"); else bold=; off=; fi
step() { printf "\n%s$ berthctl %s%s\n" "$bold" "$*" "$off"; "$bin/berthctl" "$@"; }

"$bin/mkimage" --format oci --name demo/busybox:latest "$work/busybox.tar" >/dev/null
step load -i "$work/busybox.tar"
step images
step run --name demo demo/busybox sh -c 'echo "hello from $(hostname), pid $$"; echo important > /foo'
step run --rm demo/busybox cat /foo || true
step ps -a
step commit -m "add /foo" demo demo/foo:1
step run --rm demo/foo:1 cat /foo
step history demo/foo:1
step run -d --name sleeper demo/busybox sleep 30
step ps
step exec sleeper ps
step cp sleeper:/etc/passwd "$work/passwd"
step stop -t 1 sleeper
step rm sleeper
step system df
