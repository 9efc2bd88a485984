#!/usr/bin/env bash
# One tenant attacking, another's latency: the victim's feed poll and URL import, idle and while
# an attacker holds the doors with slowloris servers (100 slow feeds; 8 slow imports), in one
# run. Medians and the ratio attacked / idle (goal <= 1.5). ROUNDS=N (default 5); NO_ATTACK=1 for
# the control (the same rounds with no attacker: the emulator's drift between phases alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
if [ -x .venv-moto/bin/python ]; then export VAULTSTREAM_PYTHON="$PWD/.venv-moto/bin/python"; fi
# The stack as the tests run it (one build serves both).
cargo build -q --workspace --bins
mkdir -p bench/out
# Cargo's and the stack's chatter go to a file, shown when the run fails.
if ! cargo bench -q -p vaultstream-tests --profile dev --bench fairness 2>bench/out/fairness.stderr | grep -v '^$'; then
    echo "the fairness bench failed; the end of its output:" >&2
    tail -n 30 bench/out/fairness.stderr >&2
    exit 1
fi
