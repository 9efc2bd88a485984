# Ingest (S3 ObjectCreated:* events, with its DLQ), retry (delayed redelivery) and the failures
# DLQ; an EventBridge rule for Batch job state changes and the content-failed bus.

locals {
  max_receives        = 5
  retry_delay_seconds = 60
  queue_retention     = 14 * 24 * 3600
}

resource "aws_sqs_queue" "ingest_dlq" {
  name                      = "${var.prefix}-ingest-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = local.queue_retention
}

resource "aws_sqs_queue" "ingest" {
  name                       = "${var.prefix}-ingest"
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = local.queue_retention
  visibility_timeout_seconds = 300
  redrive_policy             = jsonencode({ deadLetterTargetArn = aws_sqs_queue.ingest_dlq.arn, maxReceiveCount = local.max_receives })
}

resource "aws_sqs_queue" "failures_dlq" {
  name                      = "${var.prefix}-failures-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = local.queue_retention
}

resource "aws_sqs_queue" "retry" {
  name                       = "${var.prefix}-retry"
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = local.queue_retention
  delay_seconds              = local.retry_delay_seconds
  visibility_timeout_seconds = 300
  redrive_policy             = jsonencode({ deadLetterTargetArn = aws_sqs_queue.failures_dlq.arn, maxReceiveCount = local.max_receives })
}

locals {
  queues = {
    ingest_dlq   = aws_sqs_queue.ingest_dlq
    ingest       = aws_sqs_queue.ingest
    failures_dlq = aws_sqs_queue.failures_dlq
    retry        = aws_sqs_queue.retry
  }
}

data "aws_iam_policy_document" "queue" {
  for_each = local.queues
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value.arn]
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
    for_each = each.key == "ingest" ? [1] : []
    content {
      sid       = "SourceBucketEvents"
      actions   = ["sqs:SendMessage"]
      resources = [each.value.arn]
      principals {
        type        = "Service"
        identifiers = ["s3.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = ["arn:${local.partition}:s3:::${local.buckets.source}"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account]
      }
    }
  }
  dynamic "statement" {
    for_each = each.key == "failures_dlq" ? [1] : []
    content {
      sid       = "BatchJobFailures"
      actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
      resources = [each.value.arn]
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [aws_cloudwatch_event_rule.batch_job_failed.arn]
      }
    }
  }
}

resource "aws_sqs_queue_policy" "all" {
  for_each  = local.queues
  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.queue[each.key].json
}

# Consumers (the creator notifier, operators' alarms) subscribe to this bus.
resource "aws_cloudwatch_event_bus" "content_failed" {
  name = "${var.prefix}.content.failed"
}

resource "aws_cloudwatch_event_rule" "batch_job_failed" {
  name        = "${var.prefix}-batch-job-failed"
  description = "VaultStream transcode jobs that failed"
  event_pattern = jsonencode({
    source      = ["aws.batch"]
    detail-type = ["Batch Job State Change"]
    detail = {
      status   = ["FAILED"]
      jobQueue = [for q in aws_batch_job_queue.all : q.arn]
    }
  })
}

resource "aws_cloudwatch_event_target" "failures_dlq" {
  rule = aws_cloudwatch_event_rule.batch_job_failed.name
  arn  = aws_sqs_queue.failures_dlq.arn
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "events_to_bus" {
  name_prefix        = "${var.prefix}-events-"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
}

resource "aws_iam_role_policy" "events_to_bus" {
  role = aws_iam_role.events_to_bus.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Sid = "PutToContentFailed", Effect = "Allow", Action = ["events:PutEvents"], Resource = [aws_cloudwatch_event_bus.content_failed.arn] }]
  })
}

resource "aws_cloudwatch_event_target" "content_failed_bus" {
  rule     = aws_cloudwatch_event_rule.batch_job_failed.name
  arn      = aws_cloudwatch_event_bus.content_failed.arn
  role_arn = aws_iam_role.events_to_bus.arn
}
