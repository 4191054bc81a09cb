#!/usr/bin/env bash
# berth's test command (the README's second Quick start command, and what
# CI runs): format, lints, unit tests, then the integration tests that run
# the real binaries as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI fuzzes each parser for 30 s (docs/fuzzing.md); locally 3 s.
if [ "${CI:-}" = "true" ]; then
    export BERTH_FUZZ_SECS="${BERTH_FUZZ_SECS:-30}"
fi
bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items -q
echo "== build"
cargo build --workspace --bins
echo "== tests"
cargo test --workspace --no-fail-fast -- --test-threads 2
