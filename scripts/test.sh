#!/usr/bin/env bash
# The test suite: formatting, lints, and every test (as root: they use namespaces, mounts and
# cgroups on the real kernel, each test isolated in its own temp dirs and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast -- --test-threads="${BERTH_TEST_THREADS:-4}"
