# Tables key on pk + sk strings, on demand, with point-in-time recovery. The audit ledger is
# append-only: deletion protection, and a resource policy denying every rewrite to every
# principal; its changes stream through Kinesis and Firehose into the Object Lock archive.

locals {
  tables = {
    content = "${var.prefix}-content"
    tokens  = "${var.prefix}-tokens"
    audit   = "${var.prefix}-audit"
    feeds   = "${var.prefix}-feeds"
  }
}

resource "aws_dynamodb_table" "content" {
  name         = local.tables.content
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"
  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
  # Idempotency keys expire through the TTL; content records carry no expires_at.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  # checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key; items hold only KMS-wrapped content keys.
}

resource "aws_dynamodb_table" "tokens" {
  name         = local.tables.tokens
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"
  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
  # checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key; API tokens are stored only as SHA-256.
}

# Feed subscriptions and the items seen in them; only subscriptions carry `subscription`, the key
# of the sparse index the poller scans.
resource "aws_dynamodb_table" "feeds" {
  name         = local.tables.feeds
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"
  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "subscription"
    type = "S"
  }
  global_secondary_index {
    name            = "subscriptions"
    hash_key        = "subscription"
    projection_type = "ALL"
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
  # checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key; feeds hold subscription URLs and item GUIDs, no secrets of ours.
}

resource "aws_dynamodb_table" "audit" {
  name                        = local.tables.audit
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true
  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "head_slot"
    type = "S"
  }
  # Sparse: only chain heads carry head_slot, so the digest writer reads a day's heads without
  # scanning records (vaultstream::audit::ledger::HEAD_INDEX).
  global_secondary_index {
    name            = "heads"
    hash_key        = "head_slot"
    range_key       = "pk"
    projection_type = "ALL"
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
  lifecycle {
    prevent_destroy = true
  }
  # checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key; records are hash-chained and hold no secrets.
}

data "aws_iam_policy_document" "ledger" {
  statement {
    sid       = "LedgerIsAppendOnly"
    effect    = "Deny"
    actions   = local.contract.ledger_denied_actions
    resources = [aws_dynamodb_table.audit.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
  }
  # Only the roles the contract lets append may put a ledger item at all: no administrator and
  # no other role writes a record (the statement above already forbids every rewrite).
  statement {
    sid       = "OnlyLedgerWritersAppend"
    effect    = "Deny"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.audit.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = local.ledger_writers
    }
  }
}

locals {
  ledger_writers = concat(
    [for name, fn in local.contract.functions : aws_iam_role.function[name].arn if contains(lookup(fn.permissions, "audit_table", []), "dynamodb:PutItem")],
    contains(lookup(local.contract.transcoder.tenant_permissions, "tenant_ledger", []), "dynamodb:PutItem") ? [aws_iam_role.transcoder_tenant.arn] : [],
  )
}

resource "aws_dynamodb_resource_policy" "ledger" {
  resource_arn = aws_dynamodb_table.audit.arn
  policy       = data.aws_iam_policy_document.ledger.json
}

resource "aws_kinesis_stream" "audit_changes" {
  name             = "${var.prefix}-audit-changes"
  encryption_type  = "KMS"
  kms_key_id       = "alias/aws/kinesis"
  retention_period = 24
  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

resource "aws_dynamodb_kinesis_streaming_destination" "audit" {
  table_name = aws_dynamodb_table.audit.name
  stream_arn = aws_kinesis_stream.audit_changes.arn
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "archive_delivery" {
  name_prefix        = "${var.prefix}-archive-"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
}

data "aws_iam_policy_document" "archive_delivery" {
  statement {
    sid       = "ReadLedgerChanges"
    actions   = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.audit_changes.arn]
  }
  statement {
    sid       = "WriteArchive"
    actions   = ["s3:PutObject", "s3:GetBucketLocation", "s3:ListBucket", "s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.audit_archive.arn, "${aws_s3_bucket.audit_archive.arn}/ledger/*"]
  }
}

resource "aws_iam_role_policy" "archive_delivery" {
  role   = aws_iam_role.archive_delivery.id
  policy = data.aws_iam_policy_document.archive_delivery.json
}

resource "aws_kinesis_firehose_delivery_stream" "audit_archive" {
  name        = "${var.prefix}-audit-archive"
  destination = "extended_s3"
  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.audit_changes.arn
    role_arn           = aws_iam_role.archive_delivery.arn
  }
  extended_s3_configuration {
    bucket_arn          = aws_s3_bucket.audit_archive.arn
    role_arn            = aws_iam_role.archive_delivery.arn
    prefix              = "ledger/!{timestamp:yyyy/MM/dd}/"
    error_output_prefix = "ledger-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
    buffering_interval  = 300
    buffering_size      = 64
    compression_format  = "GZIP"
  }
  # checkov:skip=CKV_AWS_240:Firehose server-side encryption exists only for Direct PUT sources; this stream reads the KMS-encrypted ledger change stream.
  # checkov:skip=CKV_AWS_241:As above: no SSE setting applies to a Kinesis-sourced delivery stream.
}
