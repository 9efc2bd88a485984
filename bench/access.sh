#!/usr/bin/env bash
# The access path's figures, each beside its reference in one run:
#   1. JWT verification per second (RS256/ES256/HS256): VaultStream's verifier against a bare
#      jsonwebtoken::decode with the key in hand (Criterion).
#   2. Key-delivery handler p99 in process, AWS stubbed, against a response-only handler; and
#      telemetry's cost per invocation, in process and with the AWS calls over the wire (moto).
#   3. Audit append through moto: chained (TransactWriteItems) against a plain PutItem.
# Ratios are what to compare across machines; the absolute times are this machine's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
if [ -x .venv-moto/bin/python ]; then export VAULTSTREAM_PYTHON="$PWD/.venv-moto/bin/python"; fi

echo "== JWT verification (Criterion)"
cargo bench -q -p vaultstream --bench jwt_verify -- --warm-up-time 1 --measurement-time 4 >/dev/null 2>&1
for alg in RS256 ES256 HS256; do
  python3 - "$alg" <<'PY'
import json, sys
alg = sys.argv[1]
def mean(who):
    return json.load(open(f"target/criterion/jwt_verify/{alg}_{who}/new/estimates.json"))["mean"]["point_estimate"]
ours, ref = mean("vaultstream"), mean("jsonwebtoken")
print(f"{alg}: {1e9/ours:,.0f} verifications/s (reference {1e9/ref:,.0f}/s), time ratio {ours/ref:.3f}")
PY
done

echo "== Key delivery, in process"
ITERATIONS=${ITERATIONS:-20000} cargo bench -q -p vaultstream-functions --bench key_delivery 2>/dev/null | grep -v '^$'

echo "== Key delivery over the wire (moto): the handler bare and as the runtime wraps it"
# The harness and the handler in the dev profile the tests share (the binaries it needs included):
# telemetry's code unoptimised, so its share is if anything overstated.
cargo build -q --workspace --bins
RUNS=${WIRE_RUNS:-150} cargo bench -q -p vaultstream-tests --profile dev --bench telemetry_wire 2>/dev/null | grep -v '^$'

echo "== Audit append through moto"
ITERATIONS=${AUDIT_ITERATIONS:-200} cargo bench -q -p vaultstream-tests --bench audit_append 2>/dev/null | grep -v '^$'
