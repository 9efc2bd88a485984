# The FTP drop zone: an AWS Transfer Family server (SFTP and FTPS) in the workers' VPC whose
# logins the ftp_auth function decides (a tenant's id and a write token), each session confined
# by that answer to drop/{tenant}/ of the source bucket; a finished upload's event goes to the
# drop_zone function, which makes it a title through the import queue.

locals {
  drop_zone = local.contract.drop_zone
}

data "aws_iam_policy_document" "transfer_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["transfer.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# What every Transfer session acts as, narrowed per login by ftp_auth's session policy.
resource "aws_iam_role" "drop_zone" {
  name               = "${var.prefix}-drop-zone"
  description        = "VaultStream drop zone sessions: drop/ of the source bucket, narrowed to one tenant per login"
  assume_role_policy = data.aws_iam_policy_document.transfer_assume.json
}

data "aws_iam_policy_document" "drop_zone" {
  dynamic "statement" {
    for_each = local.drop_zone.role_permissions
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
}

resource "aws_iam_role_policy" "drop_zone" {
  name   = "contract"
  role   = aws_iam_role.drop_zone.id
  policy = data.aws_iam_policy_document.drop_zone.json
}

resource "aws_security_group" "drop_zone" {
  name_prefix = "${var.prefix}-drop-zone-"
  vpc_id      = var.vpc_id
  description = "VaultStream drop zone: SFTP, FTPS control and passive ports from the client network"
  ingress {
    description = "SFTP"
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = [var.drop_zone_client_cidr]
  }
  ingress {
    description = "FTPS control"
    protocol    = "tcp"
    from_port   = 21
    to_port     = 21
    cidr_blocks = [var.drop_zone_client_cidr]
  }
  ingress {
    description = "FTPS passive data"
    protocol    = "tcp"
    from_port   = local.drop_zone.passive_ports[0]
    to_port     = local.drop_zone.passive_ports[1]
    cidr_blocks = [var.drop_zone_client_cidr]
  }
  egress {
    description = "HTTPS to AWS APIs"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
  # checkov:skip=CKV_AWS_382:The endpoint reaches AWS APIs over HTTPS only; the subnets' routing limits where.
}

resource "aws_cloudwatch_log_group" "drop_zone" {
  name              = "/aws/transfer/${var.prefix}-drop-zone"
  retention_in_days = 365
  # checkov:skip=CKV_AWS_158:Session logs hold user names, paths and sizes, never file contents or tokens; the AWS managed key encrypts them.
}

resource "aws_iam_role" "drop_zone_logging" {
  name_prefix        = "${var.prefix}-drop-zone-logs-"
  description        = "VaultStream drop zone: writes its session logs"
  assume_role_policy = data.aws_iam_policy_document.transfer_assume.json
}

data "aws_iam_policy_document" "drop_zone_logging" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.drop_zone.arn}:*"]
  }
}

resource "aws_iam_role_policy" "drop_zone_logging" {
  name   = "logs"
  role   = aws_iam_role.drop_zone_logging.id
  policy = data.aws_iam_policy_document.drop_zone_logging.json
}

resource "aws_transfer_server" "drop_zone" {
  protocols     = local.drop_zone.protocols
  domain        = "S3"
  endpoint_type = "VPC"
  endpoint_details {
    vpc_id             = var.vpc_id
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.drop_zone.id]
  }
  certificate                 = var.drop_zone_certificate_arn
  identity_provider_type      = "AWS_LAMBDA"
  function                    = aws_lambda_function.function[local.drop_zone.identity_provider].arn
  security_policy_name        = local.drop_zone.security_policy
  logging_role                = aws_iam_role.drop_zone_logging.arn
  structured_log_destinations = ["${aws_cloudwatch_log_group.drop_zone.arn}:*"]
  protocol_details {
    passive_ip                  = "AUTO"
    tls_session_resumption_mode = "ENFORCED"
  }
  tags = { Name = "${var.prefix}-drop-zone" }
}

resource "aws_lambda_permission" "ftp_auth" {
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function[local.drop_zone.identity_provider].function_name
  principal      = "transfer.amazonaws.com"
  source_arn     = aws_transfer_server.drop_zone.arn
  source_account = local.account
}

# A finished upload becomes a title; deliveries that keep failing land in the failures DLQ.
resource "aws_cloudwatch_event_rule" "drop_zone_uploads" {
  name        = "${var.prefix}-drop-zone-uploads"
  description = "VaultStream: a finished drop-zone upload becomes a title"
  event_pattern = jsonencode({
    source      = local.contract.event_sources.drop_zone.eventbridge.source
    detail-type = local.contract.event_sources.drop_zone.eventbridge["detail-type"]
    detail = {
      status-code = local.contract.event_sources.drop_zone.eventbridge["status-code"]
      server-id   = [aws_transfer_server.drop_zone.id]
    }
  })
}

resource "aws_cloudwatch_event_target" "drop_zone" {
  rule = aws_cloudwatch_event_rule.drop_zone_uploads.name
  arn  = aws_lambda_function.function["drop_zone"].arn
  retry_policy {
    maximum_retry_attempts       = 8
    maximum_event_age_in_seconds = 86400
  }
  dead_letter_config {
    arn = aws_sqs_queue.failures_dlq.arn
  }
}

resource "aws_lambda_permission" "drop_zone" {
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["drop_zone"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.drop_zone_uploads.arn
}
