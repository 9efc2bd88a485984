#!/bin/sh
# LocalStack runs this when it is ready to serve requests: provision VaultStream's resources with
# the project's own bootstrap (the same code path as the moto local stack and the tests).
# Every setting has a default for the container and can be overridden (the tests run this script
# against moto).
set -eu

export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://localhost:4566}"
# LocalStack requires credentials on every call; these are its documented test values.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"

bin="${VAULTSTREAM_BIN:-/opt/vaultstream/bin/vaultstream}"
outputs="${VAULTSTREAM_OUTPUTS:-/var/lib/vaultstream/vaultstream-outputs.json}"
if [ ! -x "$bin" ]; then
    echo "vaultstream bootstrap: $bin is missing; run 'cargo build --release -p vaultstream-cli' first" >&2
    exit 1
fi
mkdir -p "$(dirname "$outputs")"
# Write to a temporary file first so the healthcheck never sees half an outputs file.
"$bin" bootstrap --prefix "${VAULTSTREAM_PREFIX:-vaultstream-local}" --outputs "$outputs.tmp" >/dev/null
mv "$outputs.tmp" "$outputs"
echo "vaultstream bootstrap: outputs in $outputs"
