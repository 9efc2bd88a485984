#!/usr/bin/env bash
# The offline infrastructure checks (part of scripts/test.sh): CDK compile, assertion tests and
# synth with cdk-nag; cfn-lint on the template; Terraform format and parse; checkov on Terraform
# and the Batch Dockerfile; the CDK/Terraform/code parity test. Needs no AWS account or network
# beyond the package registries (npm, PyPI) it installs from.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools, pinned: infra/cdk/package-lock.json and infra/tests/requirements.txt.
if [ ! -x .venv-infra/bin/python ]; then python3 -m venv .venv-infra; fi
.venv-infra/bin/pip install --quiet --disable-pip-version-check -r infra/tests/requirements.txt
export PATH="$PWD/.venv-infra/bin:$PATH"
(cd infra/cdk && npm ci --no-audit --no-fund --loglevel=error)

# The functions' zips when `cargo lambda build` has run; otherwise stand-ins, since the template
# does not depend on the code inside them (the README's deploy section builds the real ones).
lambda_dir="$PWD/target/lambda"
functions=$(python -c 'import json; print(" ".join(json.load(open("infra/contract.json"))["functions"]))')
for f in $functions; do
    if [ ! -f "$lambda_dir/$f/bootstrap.zip" ]; then
        lambda_dir=$(mktemp -d)
        trap 'rm -rf "$lambda_dir"' EXIT
        for g in $functions; do mkdir -p "$lambda_dir/$g" && echo stand-in > "$lambda_dir/$g/bootstrap.zip"; done
        echo "check-infra: no cargo lambda output in target/lambda; synthesizing with stand-in zips"
        break
    fi
done

echo "== CDK: compile, assertion tests, synth with cdk-nag AwsSolutions"
export CDK_DISABLE_CLI_TELEMETRY=true
(
    cd infra/cdk
    npx tsc -p .
    node --test dist/test/
    rm -rf cdk.out
    npx cdk synth --quiet --no-notices -c lambdaDir="$lambda_dir"
)
template=infra/cdk/cdk.out/VaultStream.template.json
suppressed=$(grep -c ',"Suppressed",' infra/cdk/cdk.out/AwsSolutions-VaultStream-NagReport.csv || true)
echo "cdk-nag: 0 unsuppressed findings, $suppressed suppressed with a reason (infra/cdk/lib/nag.ts)"

echo "== cfn-lint"
cfn-lint --format parseable --non-zero-exit-code error "$template"
echo "cfn-lint: no errors"

echo "== Terraform: format and parse"
if command -v terraform >/dev/null; then
    terraform fmt -check -recursive infra/terraform
else
    python infra/tests/hcl_format.py infra/terraform/*.tf
fi
python -c 'import glob, hcl2; [hcl2.load(open(p)) for p in glob.glob("infra/terraform/*.tf")]'
echo "terraform: formatted, parses"

echo "== checkov (Terraform, Dockerfile)"
checkov --quiet --compact --skip-download --framework terraform -d infra/terraform
checkov --quiet --compact --skip-download --framework dockerfile -f batch-transcoder/Dockerfile
skips=$(grep -c 'checkov:skip=' infra/terraform/*.tf | awk -F: '{s += $2} END {print s}')
echo "checkov: no failed checks, $skips skips, each with its reason in the .tf file"

echo "== parity: CDK, Terraform and the code"
python infra/tests/parity.py "$template"
bash infra/tests/parity_selftest.sh "$template"
