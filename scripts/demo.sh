#!/usr/bin/env bash
# The main job end to end: install what is missing, build (the same build the tests use), start
# the local stack, upload a generated clip through the API, wait for it to be transcoded and
# published, prove it plays, and keep serving the viewer page until Ctrl-C (`--exit` to stop
# after the proof). Arguments go to `vaultstream demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh demo
if [ -x .venv-moto/bin/python ]; then export VAULTSTREAM_PYTHON="$PWD/.venv-moto/bin/python"; fi
cargo build --workspace --bins --locked
exec "${CARGO_TARGET_DIR:-target}/debug/vaultstream" demo "$@"
