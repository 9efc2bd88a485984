# Ingest (S3 ObjectCreated:* events, with its DLQ), retry (delayed redelivery), import (URL
# imports, with its DLQ) and the failures DLQ; dispatch consuming ingest and retry, import_fetch
# consuming import; the rule that hands Batch job state changes to
# job_events; the content-failed bus.

locals {
  max_receives        = 5
  retry_delay_seconds = 60
  queue_retention     = 14 * 24 * 3600
  # Six times import_fetch's timeout (900 s), as Lambda advises for SQS sources: a running
  # import is never handed out twice.
  import_visibility_seconds = 5400
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

# FIFO, one message group per tenant (the tenant is each message's group id): Lambda runs at
# most one import of a tenant at a time, so one tenant's slow downloads never hold another's.
resource "aws_sqs_queue" "import_dlq" {
  name                      = "${var.prefix}-import-dlq.fifo"
  fifo_queue                = true
  sqs_managed_sse_enabled   = true
  message_retention_seconds = local.queue_retention
}

resource "aws_sqs_queue" "import" {
  name                        = "${var.prefix}-import.fifo"
  fifo_queue                  = true
  content_based_deduplication = true
  sqs_managed_sse_enabled     = true
  message_retention_seconds   = local.queue_retention
  visibility_timeout_seconds  = local.import_visibility_seconds
  redrive_policy              = jsonencode({ deadLetterTargetArn = aws_sqs_queue.import_dlq.arn, maxReceiveCount = local.max_receives })
}

locals {
  queues = {
    ingest_dlq   = aws_sqs_queue.ingest_dlq
    ingest       = aws_sqs_queue.ingest
    failures_dlq = aws_sqs_queue.failures_dlq
    retry        = aws_sqs_queue.retry
    import_dlq   = aws_sqs_queue.import_dlq
    import       = aws_sqs_queue.import
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
        values   = [aws_cloudwatch_event_rule.batch_job_ended.arn, aws_cloudwatch_event_rule.drop_zone_uploads.arn]
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

# Finished transcode jobs of our queues go to job_events, which retries, fails or confirms their
# content. Deliveries that keep failing land in the failures DLQ, never lost.
resource "aws_cloudwatch_event_rule" "batch_job_ended" {
  name        = "${var.prefix}-batch-job-ended"
  description = "VaultStream transcode jobs that ended: to job_events"
  event_pattern = jsonencode({
    source      = local.contract.event_sources.job_events.eventbridge.source
    detail-type = local.contract.event_sources.job_events.eventbridge["detail-type"]
    detail = {
      status   = local.contract.event_sources.job_events.eventbridge.status
      jobQueue = [for q in aws_batch_job_queue.all : q.arn]
    }
  })
}

resource "aws_cloudwatch_event_target" "job_events" {
  rule = aws_cloudwatch_event_rule.batch_job_ended.name
  arn  = aws_lambda_function.function["job_events"].arn
  retry_policy {
    maximum_retry_attempts       = 8
    maximum_event_age_in_seconds = 86400
  }
  dead_letter_config {
    arn = aws_sqs_queue.failures_dlq.arn
  }
}

resource "aws_lambda_permission" "job_events" {
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["job_events"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.batch_job_ended.arn
}

# dispatch consumes ingest and retry, reporting partial batch failures; its role's contract policy
# holds the consume actions.
resource "aws_lambda_event_source_mapping" "dispatch" {
  for_each                = toset(local.contract.event_sources.dispatch.sqs)
  function_name           = aws_lambda_function.function["dispatch"].arn
  event_source_arn        = local.grantable[each.key].arns[0]
  batch_size              = local.contract.event_sources.dispatch.batch_size
  function_response_types = local.contract.event_sources.dispatch.report_batch_item_failures ? ["ReportBatchItemFailures"] : []
}

# import_fetch consumes the import queue one URL per invocation, at most maximum_concurrency
# downloads at once.
resource "aws_lambda_event_source_mapping" "import_fetch" {
  function_name           = aws_lambda_function.function["import_fetch"].arn
  event_source_arn        = local.grantable[local.contract.event_sources.import_fetch.sqs[0]].arns[0]
  batch_size              = local.contract.event_sources.import_fetch.batch_size
  function_response_types = local.contract.event_sources.import_fetch.report_batch_item_failures ? ["ReportBatchItemFailures"] : []
  scaling_config {
    maximum_concurrency = local.contract.event_sources.import_fetch.maximum_concurrency
  }
}

# Feeds are read on a schedule; each new media item is imported once.
resource "aws_cloudwatch_event_rule" "feed_poll" {
  name                = "${var.prefix}-feed-poll"
  description         = "VaultStream: read every subscribed feed, import new media items"
  schedule_expression = local.contract.event_sources.feed_poll.schedule
}

resource "aws_cloudwatch_event_target" "feed_poll" {
  rule = aws_cloudwatch_event_rule.feed_poll.name
  arn  = aws_lambda_function.function["feed_poll"].arn
  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 900
  }
}

resource "aws_lambda_permission" "feed_poll" {
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["feed_poll"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.feed_poll.arn
}

# The digest writer runs on a schedule (hourly, as CloudTrail digests do).
resource "aws_cloudwatch_event_rule" "audit_digest" {
  name                = "${var.prefix}-audit-digest"
  description         = "VaultStream: sign a digest of every audit chain head"
  schedule_expression = local.contract.event_sources.audit_digest.schedule
}

resource "aws_cloudwatch_event_target" "audit_digest" {
  rule = aws_cloudwatch_event_rule.audit_digest.name
  arn  = aws_lambda_function.function["audit_digest"].arn
  retry_policy {
    maximum_retry_attempts       = 2
    maximum_event_age_in_seconds = 3600
  }
}

resource "aws_lambda_permission" "audit_digest" {
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["audit_digest"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.audit_digest.arn
}

# Monitored buckets are listed on a schedule; each new object version is imported once.
resource "aws_cloudwatch_event_rule" "monitor_poll" {
  name                = "${var.prefix}-monitor-poll"
  description         = "VaultStream: list every monitored bucket prefix, import new objects"
  schedule_expression = local.contract.event_sources.monitor_poll.schedule
}

resource "aws_cloudwatch_event_target" "monitor_poll" {
  rule = aws_cloudwatch_event_rule.monitor_poll.name
  arn  = aws_lambda_function.function["monitor_poll"].arn
  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 900
  }
}

resource "aws_lambda_permission" "monitor_poll" {
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["monitor_poll"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.monitor_poll.arn
}
