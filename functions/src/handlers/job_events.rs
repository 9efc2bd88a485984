//! `job_events`: AWS Batch "Batch Job State Change" events from EventBridge. Decides what a
//! finished transcode job means: retry with backoff, `FAILED_INVALID`, or `FAILED` with a dead
//! letter and a notification.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use tracing::Instrument;
use vaultstream::aws::SqsRetryQueue;
use vaultstream::ingest::job_outcome::{BatchJobStateChange, JobEventsService};

use crate::env::{ConfigError, Env};
use crate::handlers::dispatch::failure_reports;
use crate::wiring::{self, Aws};

pub const DETAIL_TYPE: &str = "Batch Job State Change";

pub struct JobEvents {
    pub service: JobEventsService,
}

/// Raised to the runtime so EventBridge delivers the event again.
#[derive(Debug, thiserror::Error)]
#[error("the job event could not be handled yet: {0}")]
pub struct TryAgain(String);

impl JobEvents {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let service = JobEventsService {
            catalog: wiring::catalog(env, aws)?,
            retries: Arc::new(SqsRetryQueue::new(aws.sqs().clone(), wiring::name(env, "VAULTSTREAM_RETRY_QUEUE_URL")?)),
            failures: failure_reports(env, aws)?,
            audit: wiring::audit(env, aws)?,
        };
        Ok(JobEvents { service })
    }

    pub async fn handle(&self, event: EventBridgeEvent<serde_json::Value>) -> Result<(), TryAgain> {
        let request_id = event.id.clone().unwrap_or_default();
        let span =
            tracing::info_span!("job_events", request_id = %request_id, tenant = tracing::field::Empty, content_id = tracing::field::Empty);
        async {
            if event.source != "aws.batch" || event.detail_type != DETAIL_TYPE {
                tracing::warn!(source = %event.source, detail_type = %event.detail_type, "not a Batch job state change; ignored");
                return Ok(());
            }
            let change: BatchJobStateChange = match serde_json::from_value(event.detail) {
                Ok(change) => change,
                Err(e) => {
                    tracing::error!(error = %e, "a Batch event whose detail does not parse; ignored");
                    return Ok(());
                }
            };
            let current = tracing::Span::current();
            current.record("tenant", change.parameters.get("tenant").map(String::as_str).unwrap_or("-"));
            current.record("content_id", change.parameters.get("content_id").map(String::as_str).unwrap_or("-"));
            match self.service.handle(&change, &request_id).await {
                Ok(()) => {
                    tracing::info!(job_id = %change.job_id, status = %change.status, "job event handled");
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(error = %e, job_id = %change.job_id, "job event not handled; EventBridge will deliver it again");
                    Err(TryAgain(e))
                }
            }
        }
        .instrument(span)
        .await
    }
}
