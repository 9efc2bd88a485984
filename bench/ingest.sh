#!/usr/bin/env bash
# The ingest path's figures, each beside its reference in one run:
#   1. Dispatch handler time per event, in process (in-memory adapters), against parsing the same
#      SQS + S3 event and nothing else.
#   2. Upload to READY for a generated 1080p30 clip over moto, split into queue, dispatch,
#      transcode and publish, against `vaultstream-transcode local` on the same clip; the
#      orchestration overhead as a ratio of the transcode (goal <= 0.10).
# Usage: bench/ingest.sh [SECONDS] [ROUNDS]   (default 20 s, 1 round)
# Ratios are what to compare across machines; the absolute times are this machine's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
if [ -x .venv-moto/bin/python ]; then export VAULTSTREAM_PYTHON="$PWD/.venv-moto/bin/python"; fi
mkdir -p bench/out

echo "== Dispatch, in process"
ITERATIONS=${ITERATIONS:-20000} cargo bench -q -p vaultstream-functions --bench dispatch_handler 2>/dev/null | grep -v '^$' | tee bench/out/dispatch.txt

echo "== Upload to READY through moto"
# The bench runs the release binaries, as a deployment does.
cargo build -q --release --workspace --bins --locked
CLIP_SECONDS=${1:-20} ROUNDS=${2:-1} cargo bench -q -p vaultstream-tests --bench ingest_latency 2>/dev/null | grep -v '^$' | tee bench/out/ingest.txt
