#!/usr/bin/env bash
# The whole test suite, from a fresh machine with only Rust on it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# The cross-crate end-to-end tests run the built binaries, so build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-fail-fast
