//! `dispatch`: the ingest and retry queues' consumer. S3 `ObjectCreated` notifications and retry
//! messages become Batch jobs; failures that can recur come back as `batchItemFailures`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use vaultstream::aws::{AwsFailureReports, BatchJobs, BatchTarget, S3SourceStore, SqsRedelivery};
use vaultstream::ingest::dispatch::DispatchService;
use vaultstream::ingest::ports::QueueMessage;
use vaultstream::ingest::queue_choice::QueueKind;

use crate::env::{ConfigError, Env};
use crate::wiring::{self, Aws};

pub struct Dispatch {
    pub service: DispatchService,
}

/// Each queue kind's Batch job queue and job definition, from `VAULTSTREAM_JOB_QUEUE_*` and
/// `VAULTSTREAM_JOB_DEFINITION_*`.
pub fn batch_targets(env: &Env) -> Result<HashMap<QueueKind, BatchTarget>, ConfigError> {
    let mut targets = HashMap::new();
    let variables = [
        (QueueKind::VideoGpu, "VAULTSTREAM_JOB_QUEUE_VIDEO_GPU", "VAULTSTREAM_JOB_DEFINITION_VIDEO_GPU"),
        (QueueKind::VideoCpu, "VAULTSTREAM_JOB_QUEUE_VIDEO_CPU", "VAULTSTREAM_JOB_DEFINITION_VIDEO_CPU"),
        (QueueKind::Audio, "VAULTSTREAM_JOB_QUEUE_AUDIO", "VAULTSTREAM_JOB_DEFINITION_AUDIO"),
    ];
    for (kind, queue, definition) in variables {
        targets.insert(kind, BatchTarget { job_queue: wiring::name(env, queue)?, job_definition: wiring::name(env, definition)? });
    }
    Ok(targets)
}

pub fn failure_reports(env: &Env, aws: &Aws) -> Result<Arc<AwsFailureReports>, ConfigError> {
    Ok(Arc::new(AwsFailureReports::new(
        aws.sqs().clone(),
        aws.events().clone(),
        wiring::name(env, "VAULTSTREAM_FAILURES_DLQ_URL")?,
        wiring::name(env, "VAULTSTREAM_CONTENT_FAILED_BUS")?,
    )))
}

/// An SQS record as the rules see it; records without an id cannot be reported and are skipped.
pub fn message(record: &aws_lambda_events::sqs::SqsMessage) -> Option<QueueMessage> {
    Some(QueueMessage {
        message_id: record.message_id.clone()?,
        receipt_handle: record.receipt_handle.clone().unwrap_or_default(),
        queue_arn: record.event_source_arn.clone().unwrap_or_default(),
        body: record.body.clone().unwrap_or_default(),
        receive_count: record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1),
    })
}

impl Dispatch {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let source_bucket = wiring::name(env, "VAULTSTREAM_SOURCE_BUCKET")?;
        let service = DispatchService {
            catalog: wiring::catalog(env, aws)?,
            sources: Arc::new(S3SourceStore::new(aws.s3().clone(), source_bucket.clone())),
            jobs: Arc::new(BatchJobs::new(aws.batch().clone(), batch_targets(env)?)),
            failures: failure_reports(env, aws)?,
            redelivery: Arc::new(SqsRedelivery::new(aws.sqs().clone())),
            audit: wiring::audit(env, aws)?,
            source_bucket,
        };
        Ok(Dispatch { service })
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let messages: Vec<QueueMessage> = event.records.iter().filter_map(message).collect();
        let failed = self.service.handle_batch(&messages).await;
        tracing::info!(records = event.records.len(), retried = failed.len(), "ingest batch handled");
        batch_response(failed)
    }
}

/// A partial batch response: the messages to deliver again.
pub fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
