#!/usr/bin/env bash
# The parity test must fail when Terraform drops a resource, a permission or a ledger protection:
# each case breaks a copy of infra/terraform and expects parity.py to name the difference.
set -euo pipefail
template=$1
here=$(cd "$(dirname "$0")" && pwd)
expect_failure() {  # NAME SED_SCRIPT FILE EXPECTED_TEXT
    local dir; dir=$(mktemp -d)
    cp "$here"/../terraform/*.tf "$dir"/
    sed -i "$2" "$dir/$3"
    if out=$(PARITY_TERRAFORM_DIR="$dir" python "$here/parity.py" "$template"); then
        echo "parity self-test '$1': parity.py passed a broken Terraform"; exit 1
    fi
    grep -qF "$4" <<<"$out" || { echo "parity self-test '$1': expected '$4' in:"; echo "$out"; exit 1; }
    rm -rf "$dir"
}
expect_failure "ledger deletion protection" 's/deletion_protection_enabled = true/deletion_protection_enabled = false/' tables.tf "lacks deletion protection"
expect_failure "ledger resource policy" 's/resource "aws_dynamodb_resource_policy" "ledger"/resource "null_resource" "ledger"/' tables.tf "has no resource policy"
expect_failure "a queue" '/^resource "aws_sqs_queue" "failures_dlq" {/,/^}/d' queues.tf "AWS::SQS::Queue"
expect_failure "a function permission" 's/    signing_key          = /    signing_keys         = /' functions.tf "Terraform has no ARN for signing_key"
expect_failure "a ledger rewrite grant" 's/"xray:PutTelemetryRecords"\]/"xray:PutTelemetryRecords", "dynamodb:UpdateItem"]/' functions.tf "grants a ledger rewrite"
expect_failure "an output" 's/^output "audit_table"/output "audit_table_name"/' outputs.tf "lacks output audit_table"
expect_failure "a flag the transcoder lacks" 's/command    = each.value.job == "run" ? local.contract.transcoder.command : local.chunking.jobs\[each.value.job\].command/command    = ["run", "--tenant", "Ref::tenant", "--content", "Ref::content_id"]/' batch.tf "a flag \`vaultstream-transcode run\` lacks"
expect_failure "a variable the transcoder does not read" 's/VAULTSTREAM_AUDIT_SHARDS          = "4"/VAULTSTREAM_AUDIT_SHARD_COUNT     = "4"/' batch.tf "which the transcoder does not read"
expect_failure "the job-events target" 's/arn  = aws_lambda_function.function\["job_events"\].arn/arn  = aws_sqs_queue.failures_dlq.arn/' queues.tf "job_events as the rule's target"
expect_failure "IMDSv1 on the workers" 's/http_tokens                 = "required"/http_tokens                 = "optional"/' batch.tf "allows IMDSv1 or more than one hop"
expect_failure "a container one hop from IMDS" 's/http_put_response_hop_limit = 1/http_put_response_hop_limit = 2/' batch.tf "allows IMDSv1 or more than one hop"
expect_failure "a secret in the state" 's/secret_string_wo         = /secret_string            = /' keys.tf "keeps it in the state"
expect_failure "another signer of digests" 's/identifiers = \[aws_iam_role.function\["audit_digest"\].arn\]/identifiers = [aws_iam_role.function["playback"].arn]/' keys.tf "only audit_digest may sign"
expect_failure "digests that go cold" 's/      prefix = "ledger\/"/      prefix = ""/' storage.tf "digests must stay readable"
expect_failure "no heads index" 's/name            = "heads"/name            = "chain-heads"/' tables.tf "lacks the sparse heads index"
expect_failure "logged query strings" 's/record_fields            = local.contract.cdn_access_log_fields/record_fields            = ["date", "cs-uri-query"]/' delivery.tf "log delivery fields are not the contract's"
expect_failure "legacy CloudFront logging" 's/^  web_acl_id      = aws_wafv2_web_acl.cdn.arn/  web_acl_id      = aws_wafv2_web_acl.cdn.arn\n  logging_config {\n    bucket = "logs.s3.amazonaws.com"\n  }/' delivery.tf "legacy logging, which logs query strings"
expect_failure "anyone may append" 's/      values   = local.ledger_writers/      values   = ["*"]/' tables.tf "Terraform ledger policy must deny PutItem to all but"
expect_failure "a job reaching every tenant's sources" 's|/source/${local.tenant}/\*"|/source/*"|' functions.tf "Terraform grant tenant_sources of the tenant role is not bounded by the tenant tag"
expect_failure "the API around CloudFront" 's/disable_execute_api_endpoint = true/disable_execute_api_endpoint = false/' api.tf "Terraform leaves the API's execute-api endpoint on"
expect_failure "an API route CloudFront cannot pass" 's|"/v1/content\*"    = \["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"\]|"/v1/content*"    = ["GET", "HEAD", "OPTIONS"]|' delivery.tf "no API behaviour for POST /v1/content/upload"
expect_failure "alarms nobody hears" 's/  alarm_actions       = \[var.alarm_topic_arn\]/  alarm_actions       = []/' observability.tf "Terraform does not build its alarm actions from the contract"
expect_failure "a dashboard of its own" 's/  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })/  dashboard_body = jsonencode({ widgets = [] })/' observability.tf "Terraform does not build its dashboard body from the contract"
expect_failure "denials that allow" 's/      effect    = "Deny"/      effect    = "Allow"/' functions.tf "do not render the contract's denials as Deny statements"
expect_failure "a denial with no ARN" 's/    served_buckets      = /    served_bucket       = /' functions.tf "Terraform has no ARN for served_buckets"
expect_failure "a shared import pool" '/^resource "aws_sqs_queue" "import" {/,/^}/s/fifo_queue                  = true/fifo_queue                  = false/' queues.tf "Terraform's queue import must be FIFO"
expect_failure "a vendor's licence server nobody names" 's/VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL     = var.widevine_license_url/VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL     = ""/' functions.tf "Terraform's function_env does not set VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL = var.widevine_license_url"
expect_failure "a key provider the jobs never ask" 's/VAULTSTREAM_SPEKE_URL             = var.speke_url/VAULTSTREAM_SPEKE_URL             = ""/' batch.tf "do not set VAULTSTREAM_SPEKE_URL = var.speke_url"
expect_failure "another default key provider auth" '/^variable "speke_auth"/,/^}/s/default     = "sigv4"/default     = "none"/' variables.tf "Terraform variable speke_auth is missing or its default is not 'sigv4'"
expect_failure "any SPEKE API" 's/speke_api           = { arns = \[var.speke_api_arn\]/speke_api           = { arns = ["*"]/' functions.tf "Terraform's speke_api grant is not on var.speke_api_arn"
expect_failure "chunks Batch retries without end" 's/attempts = each.value.job == "run" ? 1 : local.chunking.jobs\[each.value.job\].retry.attempts/attempts = each.value.job == "run" ? 1 : 10/' batch.tf "does not take the chunk and stitch jobs' attempts from the contract"
expect_failure "a job reaching every tenant's chunks" 's|/chunks/${local.tenant}/\*"|/chunks/*"|' functions.tf "Terraform grant tenant_chunks of the tenant role is not bounded by the tenant tag"
expect_failure "chunks kept for ever" 's/days = local.contract.transcoder.chunking.expire_after_days/days = 3650/' storage.tf "does not take the chunks' expiry from the contract"
echo "parity self-test: 33 broken copies of Terraform refused"
