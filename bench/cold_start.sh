#!/usr/bin/env bash
# Cold start of every Lambda function beside a hello-world lambda_runtime binary built with the
# same profile, in one run: by default `lambda`, the profile the packages are built with (a cold
# build of it takes about half an hour on two cores), or PROFILE=release. It times init (process
# start to the first runtime-API poll, no AWS reachable; medians and ratios to the hello-world)
# and each process's first and second request against moto (the first's excess is what init
# left for it).
# RUNS=N samples each (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
if [ -x .venv-moto/bin/python ]; then export VAULTSTREAM_PYTHON="$PWD/.venv-moto/bin/python"; fi
PROFILE="${PROFILE:-lambda}"
cargo build -q --profile "$PROFILE" -p vaultstream-functions --bins --example hello_lambda
# The measuring harness itself need not be optimised: it only starts processes and reads clocks.
BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE" cargo bench -q -p vaultstream-tests --profile dev --bench cold_start
