# The same outputs as the CDK stack (infra/contract.json lists them), in Terraform's snake_case.

output "api_url" {
  value = "https://api.${local.cdn}"
}

output "api_origin_dns_target" {
  description = "Point a CNAME api-origin.cdn.<domain> here: CloudFront reaches the API at that name"
  value       = aws_apigatewayv2_domain_name.origin.domain_name_configuration[0].target_domain_name
}

output "cdn_domain" {
  value = aws_cloudfront_distribution.cdn.domain_name
}

output "source_bucket" {
  value = aws_s3_bucket.source.bucket
}

output "origin_bucket" {
  value = aws_s3_bucket.origin.bucket
}

output "audit_archive_bucket" {
  value = aws_s3_bucket.audit_archive.bucket
}

output "content_table" {
  value = aws_dynamodb_table.content.name
}

output "tokens_table" {
  value = aws_dynamodb_table.tokens.name
}

output "feeds_table" {
  value = aws_dynamodb_table.feeds.name
}

output "audit_table" {
  value = aws_dynamodb_table.audit.name
}

output "audit_digest_key_id" {
  value = aws_kms_key.audit_digest.key_id
}

output "content_key_id" {
  value = aws_kms_key.content.key_id
}

output "cloud_front_signing_key_id" {
  value = aws_kms_key.signing.key_id
}

output "service_secret_arn" {
  value = aws_secretsmanager_secret.service.arn
}

output "ingest_queue_url" {
  value = aws_sqs_queue.ingest.url
}

output "ingest_dlq_url" {
  value = aws_sqs_queue.ingest_dlq.url
}

output "retry_queue_url" {
  value = aws_sqs_queue.retry.url
}

output "failures_dlq_url" {
  value = aws_sqs_queue.failures_dlq.url
}

output "import_queue_url" {
  value = aws_sqs_queue.import.url
}

output "import_dlq_url" {
  value = aws_sqs_queue.import_dlq.url
}

output "video_gpu_job_queue" {
  value = aws_batch_job_queue.all["video-gpu"].name
}

output "video_cpu_job_queue" {
  value = aws_batch_job_queue.all["video-cpu"].name
}

output "audio_job_queue" {
  value = aws_batch_job_queue.all["audio"].name
}

output "video_gpu_job_definition" {
  value = aws_batch_job_definition.all["video-gpu"].name
}

output "video_cpu_job_definition" {
  value = aws_batch_job_definition.all["video-cpu"].name
}

output "audio_job_definition" {
  value = aws_batch_job_definition.all["audio"].name
}

output "content_failed_bus" {
  value = aws_cloudwatch_event_bus.content_failed.name
}

output "tenant_host_store_arn" {
  description = "Key value store: tenant host label -> tenant id"
  value       = aws_cloudfront_key_value_store.tenant_hosts.arn
}

output "drop_zone_server_id" {
  value = aws_transfer_server.drop_zone.id
}
