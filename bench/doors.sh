#!/usr/bin/env bash
# Time from a file landing in each ingest door to its title being QUEUED, on the local stack, in
# one run: presigned PUT (the reference), form POST, multipart, watch folder, URL import, feed,
# S3 and GCS bucket monitors, the FTPS drop zone.
# Medians and each door's ratio to the PUT. ROUNDS=N files per door (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
if [ -x .venv-moto/bin/python ]; then export VAULTSTREAM_PYTHON="$PWD/.venv-moto/bin/python"; fi
# The stack and the agent as the tests run them (one build serves both).
cargo build -q --workspace --bins
cargo bench -q -p vaultstream-tests --profile dev --bench doors 2>/dev/null | grep -v '^$'
