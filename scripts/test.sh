#!/usr/bin/env bash
# The test suite: installs what is missing, then lint + unit + integration tests against a real
# etcd and a real nginx that the tests start themselves on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
