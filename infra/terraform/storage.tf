# Buckets: source (uploads), origin (encrypted HLS, CloudFront only), audit archive (Object Lock),
# and the access-log bucket the others log to. All private, versioned and TLS-only.

locals {
  buckets = {
    access_logs   = "${var.prefix}-access-logs-${local.account}-${local.region}"
    source        = "${var.prefix}-source-${local.account}-${local.region}"
    origin        = "${var.prefix}-origin-${local.account}-${local.region}"
    audit_archive = "${var.prefix}-audit-archive-${local.account}-${local.region}"
  }
  audit_retention_years = 7
  audit_cold_after_days = 90
}

resource "aws_s3_bucket" "access_logs" {
  bucket = local.buckets.access_logs
  # checkov:skip=CKV_AWS_18:This is the access-log destination of the other buckets; logging it to itself would loop.
  # checkov:skip=CKV_AWS_144:Access logs are operational data, not a record of truth; no cross-region copy.
  # checkov:skip=CKV_AWS_145:CloudFront standard logging cannot deliver to an SSE-KMS bucket; SSE-S3 is used.
  # checkov:skip=CKV2_AWS_62:Nothing consumes events from the log bucket.
}

resource "aws_s3_bucket" "source" {
  bucket = local.buckets.source
  # checkov:skip=CKV_AWS_144:Uploads are re-creatable by the creator; no cross-region copy.
  # checkov:skip=CKV_AWS_145:Uploads use SSE-S3 so that presigned PUTs need no KMS grant for creators.
}

resource "aws_s3_bucket" "origin" {
  bucket = local.buckets.origin
  # checkov:skip=CKV_AWS_144:The ladder can be re-transcoded from the source; no cross-region copy.
  # checkov:skip=CKV2_AWS_62:Publication is tracked in the content table, not by bucket events.
}

resource "aws_s3_bucket" "audit_archive" {
  bucket              = local.buckets.audit_archive
  object_lock_enabled = true
  # checkov:skip=CKV_AWS_144:Object Lock in compliance mode protects the archive; the ledger table itself has PITR.
  # checkov:skip=CKV_AWS_145:Firehose writes with SSE-S3; the records are hash-chained, and the lock keeps them.
  # checkov:skip=CKV2_AWS_62:Nothing consumes events from the archive.
}

locals {
  all_buckets = {
    access_logs   = aws_s3_bucket.access_logs
    source        = aws_s3_bucket.source
    origin        = aws_s3_bucket.origin
    audit_archive = aws_s3_bucket.audit_archive
  }
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each                = local.all_buckets
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "all" {
  for_each = local.all_buckets
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.all_buckets
  # checkov:skip=CKV2_AWS_65:Only the access-log bucket keeps ACLs: CloudFront standard logging delivers with them.
  bucket = each.value.id
  rule {
    # CloudFront standard logs are delivered with ACLs, so the log bucket keeps object writers.
    object_ownership = each.key == "access_logs" ? "ObjectWriter" : "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "logged" {
  for_each      = { for k, v in local.all_buckets : k => v if k != "access_logs" }
  bucket        = each.value.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "s3/${replace(each.key, "_", "-")}/"
}

resource "aws_s3_bucket_server_side_encryption_configuration" "all" {
  for_each = local.all_buckets
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = each.key == "origin" ? "aws:kms" : "AES256"
      kms_master_key_id = each.key == "origin" ? aws_kms_key.origin.arn : null
    }
    bucket_key_enabled = each.key == "origin"
  }
}

data "aws_iam_policy_document" "bucket" {
  for_each = local.all_buckets
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
  dynamic "statement" {
    for_each = each.key == "access_logs" ? [1] : []
    content {
      sid       = "CloudFrontAccessLogDelivery"
      actions   = ["s3:PutObject"]
      resources = ["${each.value.arn}/cloudfront/*"]
      principals {
        type        = "Service"
        identifiers = ["delivery.logs.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account]
      }
      condition {
        test     = "StringEquals"
        variable = "s3:x-amz-acl"
        values   = ["bucket-owner-full-control"]
      }
      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:delivery-source:${var.prefix}-cdn-access"]
      }
    }
  }
  dynamic "statement" {
    for_each = each.key == "origin" ? [1] : []
    content {
      sid       = "CloudFrontReadsSegments"
      actions   = ["s3:GetObject"]
      resources = ["${each.value.arn}/*"]
      principals {
        type        = "Service"
        identifiers = ["cloudfront.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "AWS:SourceArn"
        values   = [aws_cloudfront_distribution.cdn.arn]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "all" {
  for_each = local.all_buckets
  bucket   = each.value.id
  policy   = data.aws_iam_policy_document.bucket[each.key].json
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = 365
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

# Browsers PUT uploads (and their parts) to presigned URLs, or POST signed forms from a script;
# the ETag of each part is read.
resource "aws_s3_bucket_cors_configuration" "source" {
  bucket = aws_s3_bucket.source.id
  cors_rule {
    allowed_origins = [var.player_origin]
    allowed_methods = ["PUT", "POST"]
    allowed_headers = ["content-type", "content-length"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "source" {
  bucket = aws_s3_bucket.source.id
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
  # A chunked title's chunks are kept until its stitch has published, or its retries are over.
  rule {
    id     = "expire-chunks"
    status = "Enabled"
    filter {
      prefix = "chunks/"
    }
    expiration {
      days = local.contract.transcoder.chunking.expire_after_days
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "origin" {
  bucket = aws_s3_bucket.origin.id
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

# Cold storage after 90 days and no expiration rule: archived records are never deleted. Only the
# change records go cold; digests stay readable for `audit verify`.
resource "aws_s3_bucket_lifecycle_configuration" "audit_archive" {
  bucket = aws_s3_bucket.audit_archive.id
  rule {
    id     = "cold-after-90-days"
    status = "Enabled"
    filter {
      prefix = "ledger/"
    }
    transition {
      days          = local.audit_cold_after_days
      storage_class = "DEEP_ARCHIVE"
    }
  }
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

resource "aws_s3_bucket_object_lock_configuration" "audit_archive" {
  bucket = aws_s3_bucket.audit_archive.id
  rule {
    default_retention {
      mode  = "COMPLIANCE"
      years = local.audit_retention_years
    }
  }
}

# ObjectCreated:*, not only Put: a multipart upload completes as CompleteMultipartUpload.
resource "aws_s3_bucket_notification" "source" {
  bucket = aws_s3_bucket.source.id
  queue {
    queue_arn     = aws_sqs_queue.ingest.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "source/"
  }
  depends_on = [aws_sqs_queue_policy.all]
}
