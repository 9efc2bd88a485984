#!/usr/bin/env bash
# The whole test suite, from a fresh machine with only Rust on it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# The integration tests start moto with this Python (the venv when install-deps made one).
if [ -x .venv-moto/bin/python ]; then export VAULTSTREAM_PYTHON="$PWD/.venv-moto/bin/python"; fi

# Formatting first: it fails in a second, before anything compiles.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo fmt --all --check

# The cross-crate end-to-end tests run the built binaries, so build them first.
cargo build --workspace --bins --locked
cargo clippy --workspace --all-targets --locked -- -D warnings

# CDK, Terraform, checkov, cfn-lint and their parity, offline.
bash scripts/check-infra.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ {p += $4; f += $6} END {printf "%d passed, %d failed\n", p, f}' "$log"
exit "$status"
