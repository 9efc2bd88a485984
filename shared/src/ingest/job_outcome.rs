//! What a finished transcode job means for its content, from AWS Batch's "Batch Job State Change"
//! events. The transcoder publishes and sets `READY`/`PARTIAL` itself; here the failures are
//! decided: exit 65 (invalid input) is final, `FAILED_INVALID`; exit 75 and Spot reclaims are
//! temporary and retried through a delayed message to dispatch (30 s doubling, at most five
//! attempts in all); anything else, or a temporary failure on the last attempt, is `FAILED`, with
//! a dead letter for operators and a notification for the creator.
//!
//! Only the event of the job the record names is acted on, so a duplicate or stale event (an
//! earlier attempt's) changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::audit::{AuditEvent, AuditSink, Decision};
use crate::catalog::{CatalogError, ContentCatalog, ContentRecord, ContentStatus, Expect, Failure, Patch};
use crate::ids::{ContentId, TenantId};
use crate::ingest::backoff::{self, MAX_ATTEMPTS};
use crate::ingest::ports::{job_name, ContentFailed, FailureReports, RetryKind, RetryMessage, RetryQueue};
use crate::ingest::queue_choice::QueueKind;
use crate::metrics::tally::{self, Counted};

/// The exit codes of the transcoder's contract.
pub const EXIT_INVALID_INPUT: i32 = 65;
pub const EXIT_TEMPORARY: i32 = 75;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDetail {
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptDetail {
    #[serde(default)]
    pub container: Option<ContainerDetail>,
    #[serde(default)]
    pub status_reason: Option<String>,
}

/// The `detail` of a "Batch Job State Change" event: the fields these rules read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJobStateChange {
    pub job_id: String,
    #[serde(default)]
    pub job_name: String,
    #[serde(default)]
    pub job_queue: String,
    pub status: String,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub container: Option<ContainerDetail>,
    #[serde(default)]
    pub attempts: Vec<AttemptDetail>,
    /// Present on an array job's events (the parent's `size`, a child's `index`).
    #[serde(default)]
    pub array_properties: Option<serde_json::Value>,
}

/// How Batch says a job never ran because one it depends on failed (a chunked title's stitch,
/// when a chunk failed on every attempt).
pub const DEPENDENCY_FAILED: &str = "Dependent Job failed";

impl BatchJobStateChange {
    fn exit_code(&self) -> Option<i32> {
        self.container
            .as_ref()
            .and_then(|c| c.exit_code)
            .or_else(|| self.attempts.last().and_then(|a| a.container.as_ref()).and_then(|c| c.exit_code))
    }

    fn reason(&self) -> String {
        let reason = self.status_reason.clone().or_else(|| self.attempts.last().and_then(|a| a.status_reason.clone()));
        let container = self.container.as_ref().and_then(|c| c.reason.clone());
        match (reason, container) {
            (Some(r), Some(c)) => format!("{r} ({c})"),
            (Some(r), None) | (None, Some(r)) => r,
            (None, None) => "no reason given".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    /// Exit 65: the source is bad; never retried.
    InvalidInput(String),
    /// Exit 75 or a Spot reclaim: may succeed on another attempt.
    Temporary(String),
    Fatal(String),
    /// Not a final state: nothing to do.
    InProgress,
}

/// What a state change means.
pub fn classify(change: &BatchJobStateChange) -> JobOutcome {
    match change.status.as_str() {
        "SUCCEEDED" => JobOutcome::Succeeded,
        "FAILED" => {
            let reason = change.reason();
            let spot_reclaimed = reason.starts_with("Host EC2");
            if reason.starts_with(DEPENDENCY_FAILED) && change.exit_code().is_none() {
                // A chunk that failed for good: one that found the source invalid has already
                // ended the title FAILED_INVALID; any other is retried with the title, whose
                // finished chunks are kept.
                return JobOutcome::Temporary(format!("a chunk of the title failed on every attempt: {reason}"));
            }
            match change.exit_code() {
                Some(EXIT_INVALID_INPUT) => JobOutcome::InvalidInput(format!("the transcoder rejected the source (exit 65): {reason}")),
                Some(EXIT_TEMPORARY) => JobOutcome::Temporary(format!("the transcoder hit a temporary failure (exit 75): {reason}")),
                _ if spot_reclaimed => JobOutcome::Temporary(format!("the Spot instance running the job was reclaimed: {reason}")),
                Some(code) => JobOutcome::Fatal(format!("the transcode job failed with exit code {code}: {reason}")),
                None => JobOutcome::Fatal(format!("the transcode job failed: {reason}")),
            }
        }
        _ => JobOutcome::InProgress,
    }
}

pub struct JobEventsService {
    pub catalog: Arc<dyn ContentCatalog>,
    pub retries: Arc<dyn RetryQueue>,
    pub failures: Arc<dyn FailureReports>,
    pub audit: Arc<dyn AuditSink>,
}

/// Whether `change` is about the job currently responsible for `record`: the one it names, or,
/// when dispatch could not record the id, the job named for its current attempt (unless a retry
/// of that attempt was already scheduled, which leaves a `retrying` note and no job).
fn is_current_job(record: &ContentRecord, change: &BatchJobStateChange) -> bool {
    if !matches!(record.status, ContentStatus::Queued | ContentStatus::Processing) {
        return false;
    }
    match &record.job {
        Some(job) => job.id == change.job_id,
        None => {
            record.attempts > 0
                && record.failure.is_none()
                && change.job_name == job_name(&record.tenant, &record.content_id, record.attempts)
        }
    }
}

impl JobEventsService {
    /// Handles one event. An `Err` is a failure that may clear up (the caller lets EventBridge
    /// retry the delivery); everything else is decided and audited here.
    pub async fn handle(&self, change: &BatchJobStateChange, request_id: &str) -> Result<(), String> {
        let outcome = classify(change);
        // A chunked title's array and its children are followed by its stitch job, whose end
        // (or dependency failure) the record waits for; their own events decide nothing.
        if outcome == JobOutcome::InProgress || change.array_properties.is_some() {
            return Ok(());
        }
        tally::count(Counted::JobFinished { status: change.status.clone() });
        let ids = (change.parameters.get("tenant").map(TenantId::parse), change.parameters.get("content_id").map(ContentId::parse));
        let (tenant, content) = match ids {
            (Some(Ok(t)), Some(Ok(c))) => (t, c),
            _ => {
                let reason = format!("ignored: job {} carries no valid tenant and content_id parameters", change.job_id);
                self.audit_decision(&TenantId::system(), "job", Decision::Deny, reason, request_id).await;
                return Ok(());
            }
        };
        let record = match self.catalog.get(&tenant, &content).await.map_err(|e| e.to_string())? {
            Some(r) => r,
            None => {
                self.audit_decision(
                    &tenant,
                    &format!("content/{content}"),
                    Decision::Deny,
                    format!("ignored: job {} names no content record", change.job_id),
                    request_id,
                )
                .await;
                return Ok(());
            }
        };
        let resource = format!("content/{content}");
        if outcome == JobOutcome::Succeeded && record.status.is_playable() {
            let reason = format!("job {} published {}", change.job_id, record.status);
            self.audit_decision(&tenant, &resource, Decision::Allow, reason, request_id).await;
            return Ok(());
        }
        if !is_current_job(&record, change) {
            let reason = format!("ignored: a stale or duplicate event of job {} (the content is {})", change.job_id, record.status);
            self.audit_decision(&tenant, &resource, Decision::Deny, reason, request_id).await;
            return Ok(());
        }
        let current = Expect {
            status_in: vec![ContentStatus::Queued, ContentStatus::Processing],
            job_id: Some(record.job.as_ref().map(|j| j.id.clone())),
            ..Default::default()
        };
        match outcome {
            JobOutcome::InvalidInput(reason) => {
                let patch = Patch {
                    status: Some(ContentStatus::FailedInvalid),
                    failure: Some(Some(Failure::new("invalid_source", reason.clone()))),
                    progress: Some(None),
                    ..Default::default()
                };
                self.apply(&record, &current, &patch).await?;
                self.audit_decision(&tenant, &resource, Decision::Deny, format!("invalid_source: {reason}"), request_id).await;
            }
            JobOutcome::Temporary(reason) if record.attempts < MAX_ATTEMPTS => {
                let delay = backoff::delay_after(record.attempts);
                let queue = record
                    .job
                    .as_ref()
                    .and_then(|j| serde_json::from_value(serde_json::Value::from(j.queue.as_str())).ok())
                    .unwrap_or(QueueKind::VideoCpu);
                let message = RetryMessage {
                    kind: RetryKind::TranscodeRetry,
                    tenant: tenant.clone(),
                    content_id: content.clone(),
                    attempt: record.attempts + 1,
                    queue,
                };
                self.retries.schedule(&message, delay).await?;
                let note = format!("attempt {} of {MAX_ATTEMPTS} failed ({reason}); retrying in {} s", record.attempts, delay.as_secs());
                let patch = Patch {
                    status: Some(ContentStatus::Queued),
                    job: Some(None),
                    progress: Some(None),
                    failure: Some(Some(Failure::new("retrying", note.clone()))),
                    ..Default::default()
                };
                self.apply(&record, &current, &patch).await?;
                tally::count(Counted::Retry);
                self.audit_decision(&tenant, &resource, Decision::Deny, format!("retrying: {note}"), request_id).await;
            }
            JobOutcome::Temporary(reason) => {
                let reason = format!("{reason}; giving up after {MAX_ATTEMPTS} attempts");
                self.fail(&record, &current, change, "transcode_failed", reason, request_id).await?;
            }
            JobOutcome::Fatal(reason) => self.fail(&record, &current, change, "transcode_failed", reason, request_id).await?,
            JobOutcome::Succeeded => {
                let reason = "the transcode job ended without publishing anything".to_string();
                self.fail(&record, &current, change, "transcode_failed", reason, request_id).await?;
            }
            JobOutcome::InProgress => {}
        }
        Ok(())
    }

    async fn fail(
        &self,
        record: &ContentRecord,
        current: &Expect,
        change: &BatchJobStateChange,
        code: &str,
        reason: String,
        request_id: &str,
    ) -> Result<(), String> {
        // Operators and the creator hear of it first: if recording the state then fails, the
        // retried delivery tells them again rather than never.
        let failed = ContentFailed {
            tenant: record.tenant.clone(),
            content_id: record.content_id.clone(),
            status: ContentStatus::Failed.to_string(),
            reason: reason.clone(),
            job_id: Some(change.job_id.clone()),
            attempts: record.attempts,
        };
        self.failures.dead_letter(&failed).await?;
        tally::count(Counted::DeadLetter);
        self.failures.notify(&failed).await?;
        let patch = Patch {
            status: Some(ContentStatus::Failed),
            failure: Some(Some(Failure::new(code, reason.clone()))),
            progress: Some(None),
            ..Default::default()
        };
        self.apply(record, current, &patch).await?;
        self.audit_decision(
            &record.tenant,
            &format!("content/{}", record.content_id),
            Decision::Deny,
            format!("failed: {reason}"),
            request_id,
        )
        .await;
        Ok(())
    }

    async fn apply(&self, record: &ContentRecord, expect: &Expect, patch: &Patch) -> Result<(), String> {
        match self.catalog.update(&record.tenant, &record.content_id, expect, patch).await {
            Ok(_) => Ok(()),
            Err(CatalogError::Precondition(_)) => {
                tracing::info!("the record moved on meanwhile; nothing to change");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    async fn audit_decision(&self, tenant: &TenantId, resource: &str, decision: Decision, reason: String, request_id: &str) {
        let event = AuditEvent {
            tenant: tenant.clone(),
            actor: "job_events".into(),
            action: "content.transcode".into(),
            resource: resource.to_string(),
            decision,
            reason,
            request_id: request_id.to_string(),
            source_ip: None,
        };
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "audit append failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: &str, exit: Option<i32>, reason: &str) -> BatchJobStateChange {
        serde_json::from_value(serde_json::json!({
            "jobId": "j1", "jobName": "vs-acme-c1-a1", "jobQueue": "arn:q", "status": status, "statusReason": reason,
            "parameters": {"tenant": "acme", "content_id": "c1"}, "container": {"exitCode": exit}
        }))
        .unwrap()
    }

    #[test]
    fn exit_codes_and_spot_reclaims_are_classified() {
        assert_eq!(classify(&change("SUCCEEDED", Some(0), "")), JobOutcome::Succeeded);
        assert!(matches!(classify(&change("FAILED", Some(65), "Essential container in task exited")), JobOutcome::InvalidInput(_)));
        assert!(matches!(classify(&change("FAILED", Some(75), "Essential container in task exited")), JobOutcome::Temporary(_)));
        assert!(matches!(classify(&change("FAILED", None, "Host EC2 (instance i-0abc) terminated.")), JobOutcome::Temporary(_)));
        assert!(matches!(classify(&change("FAILED", Some(1), "Essential container in task exited")), JobOutcome::Fatal(_)));
        assert!(matches!(classify(&change("FAILED", None, "Job attempt duration exceeded timeout")), JobOutcome::Fatal(_)));
        assert_eq!(classify(&change("RUNNING", None, "")), JobOutcome::InProgress);
    }

    #[test]
    fn a_stitch_whose_chunks_failed_is_retried_and_array_events_are_left_alone() {
        let stitch: BatchJobStateChange = serde_json::from_value(serde_json::json!({
            "jobId": "s", "status": "FAILED", "statusReason": "Dependent Job failed", "parameters": {}
        }))
        .unwrap();
        assert!(matches!(classify(&stitch), JobOutcome::Temporary(_)));
        let child: BatchJobStateChange = serde_json::from_value(serde_json::json!({
            "jobId": "a:3", "status": "FAILED", "arrayProperties": {"index": 3}, "container": {"exitCode": 75}
        }))
        .unwrap();
        assert!(child.array_properties.is_some());
    }

    #[test]
    fn the_exit_code_may_come_from_the_last_attempt() {
        let c: BatchJobStateChange = serde_json::from_value(serde_json::json!({
            "jobId": "j", "status": "FAILED", "attempts": [{"container": {"exitCode": 65}, "statusReason": "Essential container in task exited"}]
        }))
        .unwrap();
        assert!(matches!(classify(&c), JobOutcome::InvalidInput(m) if m.contains("Essential container")));
    }
}
