# One Lambda per binary of functions/: provided.al2023 on arm64 from `cargo lambda build`, JSON
# logs to its own log group, X-Ray active, and a role with exactly the contract's permissions.

locals {
  context_conditions = concat(
    [{ test = "ForAllValues:StringEquals", variable = "kms:EncryptionContextKeys", values = local.context_keys }],
    [for k in local.context_keys : { test = "Null", variable = "kms:EncryptionContext:${k}", values = ["false"] }]
  )
  via_s3_conditions = [{ test = "StringEquals", variable = "kms:ViaService", values = ["s3.${local.region}.amazonaws.com"] }]
  # A transcode job's tenant session: the tag its role's policies are bounded by (an IAM policy
  # variable, so `$${...}` keeps Terraform from interpolating it).
  tenant_tag            = local.contract.transcoder.tenant_session_tag
  tenant                = "$${aws:PrincipalTag/${local.tenant_tag}}"
  tenant_key_conditions = concat(local.context_conditions, [{ test = "StringEquals", variable = "kms:EncryptionContext:${local.tenant_tag}", values = [local.tenant] }])

  # A chunked title's job queues and chunk and stitch definitions, per video kind.
  chunked_job_arns = flatten([for k in local.contract.transcoder.chunking.kinds : concat(
    ["arn:${local.partition}:batch:${local.region}:${local.account}:job-queue/${var.prefix}-${k}"],
    [for j in ["chunk", "stitch"] : "arn:${local.partition}:batch:${local.region}:${local.account}:job-definition/${var.prefix}-${k}-${j}:*"]
  )])

  # What each contract resource name means here (the CDK stack has the same map). Caption files
  # sit beside a title's versions: {tenant}/{content_id}/captions/{file}.
  grantable = {
    source_bucket        = { arns = ["${aws_s3_bucket.source.arn}/source/*"], conditions = [] }
    origin_bucket        = { arns = ["${aws_s3_bucket.origin.arn}/*"], conditions = [] }
    origin_captions      = { arns = ["${aws_s3_bucket.origin.arn}/*/*/captions/*"], conditions = [] }
    content_table        = { arns = [aws_dynamodb_table.content.arn], conditions = [] }
    tokens_table         = { arns = [aws_dynamodb_table.tokens.arn], conditions = [] }
    feeds_table          = { arns = [aws_dynamodb_table.feeds.arn], conditions = [] }
    feeds_subscriptions  = { arns = ["${aws_dynamodb_table.feeds.arn}/index/subscriptions"], conditions = [] }
    audit_table          = { arns = [aws_dynamodb_table.audit.arn], conditions = [] }
    content_key          = { arns = [aws_kms_key.content.arn], conditions = local.context_conditions }
    origin_key           = { arns = [aws_kms_key.origin.arn], conditions = local.via_s3_conditions }
    signing_key          = { arns = [aws_kms_key.signing.arn], conditions = [] }
    service_secret       = { arns = [aws_secretsmanager_secret.service.arn], conditions = [] }
    ingest_queue         = { arns = [aws_sqs_queue.ingest.arn], conditions = [] }
    retry_queue          = { arns = [aws_sqs_queue.retry.arn], conditions = [] }
    import_queue         = { arns = [aws_sqs_queue.import.arn], conditions = [] }
    failures_dlq         = { arns = [aws_sqs_queue.failures_dlq.arn], conditions = [] }
    content_failed_bus   = { arns = [aws_cloudwatch_event_bus.content_failed.arn], conditions = [] }
    audit_heads          = { arns = ["${aws_dynamodb_table.audit.arn}/index/heads"], conditions = [] }
    audit_digests        = { arns = ["${aws_s3_bucket.audit_archive.arn}/audit-digests/*"], conditions = [] }
    audit_archive        = { arns = [aws_s3_bucket.audit_archive.arn], conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["audit-digests/*"] }] }
    audit_digest_key     = { arns = [aws_kms_key.audit_digest.arn], conditions = [] }
    origin_verify_secret = { arns = [aws_secretsmanager_secret.origin_verify.arn], conditions = [] }
    # GCS monitors' service account keys, each named {prefix}/monitors/{tenant}/{monitor}.
    monitor_secrets = { arns = ["arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${var.prefix}/monitors/*"], conditions = [] }
    # S3 monitors read through roles in customers' accounts (each with its external id); never a
    # role of this account.
    # What no monitor session or import may read: every bucket of the deployment, and those it
    # serves or keeps rather than takes in.
    platform_buckets    = { arns = flatten([for b in [aws_s3_bucket.source, aws_s3_bucket.origin, aws_s3_bucket.audit_archive, aws_s3_bucket.access_logs] : [b.arn, "${b.arn}/*"]]), conditions = [] }
    served_buckets      = { arns = flatten([for b in [aws_s3_bucket.origin, aws_s3_bucket.audit_archive, aws_s3_bucket.access_logs] : [b.arn, "${b.arn}/*"]]), conditions = [] }
    source_drop         = { arns = ["${aws_s3_bucket.source.arn}/drop/*"], conditions = [] }
    source_quarantine   = { arns = ["${aws_s3_bucket.source.arn}/quarantine/*"], conditions = [] }
    source_drop_listing = { arns = [aws_s3_bucket.source.arn], conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["drop/*"] }] }
    customer_roles      = { arns = ["arn:${local.partition}:iam::*:role/*"], conditions = [{ test = "StringNotEquals", variable = "aws:ResourceAccount", values = [local.account] }] }
    tenant_role         = { arns = [aws_iam_role.transcoder_tenant.arn], conditions = [] }
    speke_api           = { arns = [var.speke_api_arn], conditions = [] }
    tenant_sources      = { arns = ["${aws_s3_bucket.source.arn}/source/${local.tenant}/*"], conditions = [] }
    tenant_origin       = { arns = ["${aws_s3_bucket.origin.arn}/${local.tenant}/*"], conditions = [] }
    tenant_content      = { arns = [aws_dynamodb_table.content.arn], conditions = [{ test = "ForAllValues:StringEquals", variable = "dynamodb:LeadingKeys", values = ["TENANT#${local.tenant}"] }] }
    tenant_ledger       = { arns = [aws_dynamodb_table.audit.arn], conditions = [{ test = "ForAllValues:StringLike", variable = "dynamodb:LeadingKeys", values = ["${local.tenant}#*"] }] }
    tenant_content_key  = { arns = [aws_kms_key.content.arn], conditions = local.tenant_key_conditions }
    tenant_chunks       = { arns = ["${aws_s3_bucket.source.arn}/chunks/${local.tenant}/*"], conditions = [] }
    # Listing its own chunks: a missing chunk.json is then a 404, not an AccessDenied.
    tenant_chunks_listing = { arns = [aws_s3_bucket.source.arn], conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["chunks/${local.tenant}/*"] }] }
    # A tenant session submits a chunked title's jobs only tagged with its own tenant.
    tenant_chunk_jobs = { arns = local.chunked_job_arns, conditions = [{ test = "StringEquals", variable = "aws:RequestTag/vaultstream:tenant", values = [local.tenant] }] }
    # Named before they exist: the job queues and definitions are created with the transcoder.
    job_queues      = { arns = [for k in keys(local.job_queues) : "arn:${local.partition}:batch:${local.region}:${local.account}:job-queue/${var.prefix}-${k}"], conditions = [] }
    job_definitions = { arns = [for k in keys(local.job_definitions) : "arn:${local.partition}:batch:${local.region}:${local.account}:job-definition/${var.prefix}-${k}:*"], conditions = [] }
  }

  # Every variable a function may read; each function gets the ones its contract lists.
  function_env = {
    VAULTSTREAM_CONTENT_TABLE            = aws_dynamodb_table.content.name
    VAULTSTREAM_TOKENS_TABLE             = aws_dynamodb_table.tokens.name
    VAULTSTREAM_FEEDS_TABLE              = aws_dynamodb_table.feeds.name
    VAULTSTREAM_MONITOR_SECRET_PREFIX    = "${var.prefix}/monitors/"
    VAULTSTREAM_DROP_ROLE_ARN            = aws_iam_role.drop_zone.arn
    VAULTSTREAM_AUDIT_TABLE              = aws_dynamodb_table.audit.name
    VAULTSTREAM_AUDIT_SHARDS             = "4"
    VAULTSTREAM_AUDIT_ARCHIVE_BUCKET     = aws_s3_bucket.audit_archive.bucket
    VAULTSTREAM_AUDIT_DIGEST_KEY_ID      = aws_kms_key.audit_digest.arn
    VAULTSTREAM_ORIGIN_BUCKET            = aws_s3_bucket.origin.bucket
    VAULTSTREAM_SERVICE_SECRET_ARN       = aws_secretsmanager_secret.service.arn
    VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN = aws_secretsmanager_secret.origin_verify.arn
    # Manifest and key URLs go through CloudFront (api.cdn.<domain>), never cached there.
    VAULTSTREAM_API_BASE_URL              = "https://api.${local.cdn}"
    VAULTSTREAM_CDN_DOMAIN                = var.domain_name
    VAULTSTREAM_PLAYBACK_TTL_SECONDS      = "1800"
    VAULTSTREAM_JWT_ISSUER                = var.jwt_issuer
    VAULTSTREAM_JWT_AUDIENCE              = var.jwt_audience
    VAULTSTREAM_JWT_ALGORITHMS            = "RS256,ES256"
    VAULTSTREAM_JWKS_URL                  = var.jwks_url
    VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID     = aws_kms_key.signing.arn
    VAULTSTREAM_CLOUDFRONT_HASH_ALGORITHM = "SHA256"
    VAULTSTREAM_CLOUDFRONT_KEY_PAIR_ID    = aws_cloudfront_public_key.signing.id
    VAULTSTREAM_SOURCE_BUCKET             = aws_s3_bucket.source.bucket
    # What no tenant's bucket monitor may read.
    VAULTSTREAM_PLATFORM_BUCKETS          = join(",", [aws_s3_bucket.source.bucket, aws_s3_bucket.origin.bucket, aws_s3_bucket.audit_archive.bucket, aws_s3_bucket.access_logs.bucket])
    VAULTSTREAM_PLATFORM_ACCOUNT          = local.account
    VAULTSTREAM_MAX_UPLOAD_BYTES          = var.max_upload_bytes
    VAULTSTREAM_MULTIPART_THRESHOLD_BYTES = "104857600"
    VAULTSTREAM_RETRY_QUEUE_URL           = aws_sqs_queue.retry.url
    VAULTSTREAM_IMPORT_QUEUE_URL          = aws_sqs_queue.import.url
    # import_fetch's timeout is 900 s: the transfer stops in time to record why.
    VAULTSTREAM_IMPORT_TIME_LIMIT_SECONDS    = "840"
    VAULTSTREAM_FAILURES_DLQ_URL             = aws_sqs_queue.failures_dlq.url
    VAULTSTREAM_CONTENT_FAILED_BUS           = aws_cloudwatch_event_bus.content_failed.name
    VAULTSTREAM_JOB_QUEUE_VIDEO_GPU          = "${var.prefix}-video-gpu"
    VAULTSTREAM_JOB_QUEUE_VIDEO_CPU          = "${var.prefix}-video-cpu"
    VAULTSTREAM_JOB_QUEUE_AUDIO              = "${var.prefix}-audio"
    VAULTSTREAM_JOB_DEFINITION_VIDEO_GPU     = "${var.prefix}-video-gpu"
    VAULTSTREAM_JOB_DEFINITION_VIDEO_CPU     = "${var.prefix}-video-cpu"
    VAULTSTREAM_JOB_DEFINITION_AUDIO         = "${var.prefix}-audio"
    VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL     = var.widevine_license_url
    VAULTSTREAM_DRM_PLAYREADY_LICENSE_URL    = var.playready_license_url
    VAULTSTREAM_DRM_FAIRPLAY_LICENSE_URL     = var.fairplay_license_url
    VAULTSTREAM_DRM_FAIRPLAY_CERTIFICATE_URL = var.fairplay_certificate_url
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.contract.functions
  name              = "/aws/lambda/${var.prefix}-${replace(each.key, "_", "-")}"
  retention_in_days = 365
  # checkov:skip=CKV_AWS_158:Logs carry no keys or tokens (tested); the AWS managed key encrypts them.
}

resource "aws_iam_role" "function" {
  for_each           = local.contract.functions
  name_prefix        = "${var.prefix}-${replace(each.key, "_", "-")}-"
  description        = "VaultStream ${each.key}: only what infra/contract.json grants it"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "function" {
  for_each = local.contract.functions
  dynamic "statement" {
    for_each = each.value.permissions
    content {
      sid       = join("", [for part in split("_", statement.key) : title(part)])
      actions   = statement.value
      resources = local.grantable[statement.key].arns
      dynamic "condition" {
        for_each = local.grantable[statement.key].conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
  # Explicit denials, which no grant can override.
  dynamic "statement" {
    for_each = lookup(each.value, "denied", {})
    content {
      sid       = "Deny${join("", [for part in split("_", statement.key) : title(part)])}"
      effect    = "Deny"
      actions   = statement.value
      resources = local.grantable[statement.key].arns
    }
  }
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }
  # X-Ray has no resource-level permissions for these actions.
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.contract.functions
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

resource "aws_lambda_function" "function" {
  for_each         = local.contract.functions
  function_name    = "${var.prefix}-${replace(each.key, "_", "-")}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  handler          = "bootstrap"
  filename         = "${var.lambda_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_dir}/${each.key}/bootstrap.zip")
  memory_size      = each.value.memory_mb
  timeout          = each.value.timeout_s
  environment {
    variables = { for name in each.value.env : name => local.function_env[name] }
  }
  tracing_config {
    mode = "Active"
  }
  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.function[each.key].name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }
  depends_on = [aws_iam_role_policy.function]
  # checkov:skip=CKV_AWS_116:API Gateway invokes these synchronously; a failed request is answered, not queued.
  # checkov:skip=CKV_AWS_117:The functions call only AWS APIs and the IdP's JWKS over TLS; a VPC would add NAT cost and cold-start latency to every playback.
  # checkov:skip=CKV_AWS_173:The variables are names and ARNs, no secrets (the service secret is read from Secrets Manager).
  # checkov:skip=CKV_AWS_115:Concurrency is bounded by the API's throttling; a reserved limit would starve key delivery during a premiere.
  # checkov:skip=CKV_AWS_272:Code signing is left to the deploy pipeline (cargo lambda build output); see README.
}
