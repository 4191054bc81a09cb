#!/usr/bin/env bash
# Installs what berth's build, demo and tests need on a fresh Debian 12
# machine: busybox-static (the test and demo images are made from it),
# skopeo and umoci (the interoperability tests read and write with them),
# tmux (the interactive tests drive a real terminal with it), python3-grpcio
# (a stock gRPC client talks to berthd in the tests), for the
# registry tests the CNCF distribution registry (Debian's docker-registry),
# openssl (a throw-away CA) and htpasswd from apache2-utils (bcrypt users),
# and libseccomp-dev and pkg-config (the shim compiles seccomp profiles with
# libseccomp, as other runtimes do; the library itself, libseccomp2, is part
# of every Debian system), and tini (its static build is `run --init`'s
# init).
# Idempotent; needs root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
command -v mountpoint >/dev/null || need+=(util-linux)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v tmux >/dev/null || need+=(tmux)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v openssl >/dev/null || need+=(openssl)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)  # the tests' token server
# A stock gRPC client for the interoperability tests (Debian's python3).
/usr/bin/python3 -c 'import grpc' 2>/dev/null || need+=(python3-grpcio)
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
# `run --init` gives containers Debian's static tini.
[ -x /usr/bin/tini-static ] || need+=(tini)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

# overlayfs is a module on some kernels.
grep -qw overlay /proc/filesystems || modprobe overlay || true
