#!/usr/bin/env bash
# berth's test command (the README's second Quick start command, and what
# CI runs): format, lints, unit tests, then the integration tests that run
# the real binaries as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI fuzzes each parser for 30 s (docs/fuzzing.md); locally 3 s.
# CI's inputs come from one fixed seed, so that a run cannot fail on a
# sequence nobody has seen pass; random seeds are for local runs, where a
# finding can be fixed and its input added to the corpus.
if [ "${CI:-}" = "true" ]; then
    export BERTH_FUZZ_SECS="${BERTH_FUZZ_SECS:-30}"
    export BERTH_FUZZ_SEED="${BERTH_FUZZ_SEED:-0xbe27}"
fi
bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== licences of every dependency (cargo deny's licence check, offline)"
python3 scripts/check-licenses.py
echo "== no yanked crate (crates.io's index)"
python3 scripts/check-yanked.py
echo "== cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items -q
echo "== build"
cargo build --workspace --bins
echo "== tests"
cargo test --workspace --no-fail-fast -- --test-threads 2
