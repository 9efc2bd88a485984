#!/usr/bin/env bash
# The main job end to end: install what is missing, build, transcode a generated clip into an
# encrypted HLS ladder, verify it plays, and print where the output is.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --release --workspace --bins --locked
exec target/release/vaultstream demo "$@"
