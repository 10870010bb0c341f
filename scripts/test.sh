#!/usr/bin/env bash
# Runs Berth's whole test suite: formatting, lints, unit tests and the integration tests that
# start the real server on a real PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where prereqs.sh puts the Python tools of the OpenAPI tests, and where those tests look.
export BERTH_PYTOOLS="${BERTH_PYTOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/pytools}"
# and the accessibility engine of the console test (the version prereqs.sh pins).
export BERTH_AXE="${BERTH_AXE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/axe-core-4.10.2.min.js}"
scripts/prereqs.sh --test
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
