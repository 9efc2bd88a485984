//! Transcode jobs submitted to AWS Batch: one job queue and job definition per queue kind.

use std::collections::HashMap;

use crate::catalog::JobRef;
use crate::ingest::ports::{JobRequest, JobSubmitter, SubmitError};
use crate::ingest::queue_choice::QueueKind;

/// A Batch job queue and the job definition its jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTarget {
    pub job_queue: String,
    pub job_definition: String,
}

pub struct BatchJobs {
    client: aws_sdk_batch::Client,
    targets: HashMap<QueueKind, BatchTarget>,
}

impl BatchJobs {
    pub fn new(client: aws_sdk_batch::Client, targets: HashMap<QueueKind, BatchTarget>) -> Self {
        BatchJobs { client, targets }
    }
}

#[async_trait::async_trait]
impl JobSubmitter for BatchJobs {
    async fn submit(&self, request: &JobRequest) -> Result<JobRef, SubmitError> {
        let target = self
            .targets
            .get(&request.queue)
            .ok_or_else(|| SubmitError(format!("no Batch job queue is configured for {}", request.queue.as_str())))?;
        let out = self
            .client
            .submit_job()
            .job_name(request.job_name())
            .job_queue(&target.job_queue)
            .job_definition(&target.job_definition)
            .set_parameters(Some(request.parameters().into_iter().collect()))
            .propagate_tags(true)
            .tags("vaultstream:tenant", request.tenant.as_str())
            .tags("vaultstream:content", request.content.as_str())
            .send()
            .await
            .map_err(|e| SubmitError(aws_sdk_batch::error::DisplayErrorContext(&e).to_string()))?;
        let id = out.job_id.ok_or_else(|| SubmitError("Batch returned no job id".into()))?;
        Ok(JobRef { id, queue: request.queue.as_str().to_string() })
    }
}
