//! Flow 2, dispatch: an uploaded object becomes a transcode job, once.
//!
//! For each `ObjectCreated` notification: the key must be `source/{tenant}/{content_id}/original`
//! of an existing record; the object must be what the creator declared (size and type), or the
//! content is `FAILED_INVALID` with the reason. The record moves `AWAITING_UPLOAD → QUEUED` with a
//! condition that no ETag was accepted before, claimed by this message: a duplicate event, the
//! second event of a multipart upload or a late one finds the record claimed and submits nothing.
//! Only a redelivery of the claiming message may resume a claim whose job was not submitted yet.
//! Batch failures are retried with exponential backoff (the message's next delivery postponed),
//! at most five attempts; then the content is `FAILED`, the message goes to the dead-letter queue
//! and the creator is notified. Every decision is audited.

use std::sync::Arc;

use tracing::Instrument;

use crate::audit::{AuditEvent, AuditSink, Decision};
use crate::catalog::{CatalogError, ContentCatalog, ContentRecord, ContentStatus, Expect, Failure, Patch};
use crate::ids::{ContentId, TenantId};
use crate::ingest::backoff::{self, MAX_ATTEMPTS};
use crate::ingest::messages::{self, IngestMessage, ObjectCreated};
use crate::ingest::ports::{
    ContentFailed, FailureReports, JobRequest, JobSubmitter, ObjectHead, QueueMessage, Redelivery, RetryMessage, SourceStore,
};
use crate::ingest::queue_choice::{self, QueueKind, SourceShape};
use crate::ingest::source_key::SourceKey;
use crate::ingest::{media_types, sniff};
use crate::metrics::tally::{self, Counted};

/// What became of a message: done (delete it), or try again later (report it as failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Done,
    TryAgain,
}

pub struct DispatchService {
    pub catalog: Arc<dyn ContentCatalog>,
    pub sources: Arc<dyn SourceStore>,
    pub jobs: Arc<dyn JobSubmitter>,
    pub failures: Arc<dyn FailureReports>,
    pub redelivery: Arc<dyn Redelivery>,
    pub audit: Arc<dyn AuditSink>,
    /// Notifications about any other bucket are ignored.
    pub source_bucket: String,
}

/// Whether the object is what the creator said they would upload.
pub fn check_declaration(record: &ContentRecord, head: &ObjectHead) -> Result<(), String> {
    let Some(declared) = &record.source else {
        return Err("the content record has no declared source".into());
    };
    if head.size != declared.size_bytes {
        return Err(format!(
            "the uploaded file has {} bytes, but {} were declared; upload the file you declared, or start a new upload",
            head.size, declared.size_bytes
        ));
    }
    let actual = head.content_type.as_deref().map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if actual.as_deref() != Some(declared.content_type.as_str()) {
        return Err(format!(
            "the uploaded file was sent as {}, but {} was declared; send the Content-Type header the upload response names",
            actual.as_deref().unwrap_or("no content type"),
            declared.content_type
        ));
    }
    Ok(())
}

/// The claim this message may make (first delivery) or resume (its own redelivery).
struct Claim {
    first: (Expect, Patch),
    resume: Expect,
}

fn object_claim(etag: &str, message_id: &str) -> Claim {
    Claim {
        first: (
            Expect { status_in: vec![ContentStatus::AwaitingUpload], source_etag: Some(None), ..Default::default() },
            Patch {
                status: Some(ContentStatus::Queued),
                source_etag: Some(etag.to_string()),
                dispatch_claim: Some(message_id.to_string()),
                attempts: Some(1),
                progress: Some(None),
                failure: Some(None),
                ..Default::default()
            },
        ),
        resume: Expect {
            status_in: vec![ContentStatus::Queued],
            source_etag: Some(Some(etag.to_string())),
            dispatch_claim: Some(Some(message_id.to_string())),
            job_id: Some(None),
            ..Default::default()
        },
    }
}

fn retry_claim(attempt: u32, message_id: &str) -> Claim {
    Claim {
        first: (
            Expect {
                status_in: vec![ContentStatus::Queued],
                attempts: Some(attempt.saturating_sub(1)),
                job_id: Some(None),
                ..Default::default()
            },
            Patch { attempts: Some(attempt), dispatch_claim: Some(message_id.to_string()), failure: Some(None), ..Default::default() },
        ),
        resume: Expect {
            status_in: vec![ContentStatus::Queued],
            attempts: Some(attempt),
            dispatch_claim: Some(Some(message_id.to_string())),
            job_id: Some(None),
            ..Default::default()
        },
    }
}

/// Handles each message of a batch in turn; returns the ids of those to deliver again (Lambda's
/// `batchItemFailures`).
pub async fn retried<'a, Fut>(messages: &'a [QueueMessage], handle: impl Fn(&'a QueueMessage) -> Fut) -> Vec<String>
where
    Fut: std::future::Future<Output = Handled>,
{
    let mut failed = Vec::new();
    for message in messages {
        if handle(message).await == Handled::TryAgain {
            failed.push(message.message_id.clone());
        }
    }
    failed
}

enum Step<T> {
    Go(T),
    Stop(Handled),
}

impl DispatchService {
    /// Handles a batch; returns the ids of messages to deliver again (`batchItemFailures`).
    pub async fn handle_batch(&self, messages: &[QueueMessage]) -> Vec<String> {
        retried(messages, |message| self.handle(message)).await
    }

    pub async fn handle(&self, message: &QueueMessage) -> Handled {
        let span = tracing::info_span!("dispatch", request_id = %message.message_id, tenant = tracing::field::Empty, content_id = tracing::field::Empty);
        self.handle_in_span(message).instrument(span).await
    }

    async fn handle_in_span(&self, message: &QueueMessage) -> Handled {
        match messages::parse(&message.body) {
            IngestMessage::TestEvent => {
                tracing::info!("S3 test event; nothing to do");
                Handled::Done
            }
            IngestMessage::Unreadable(reason) => {
                self.audit_decision(&TenantId::system(), "message", Decision::Deny, format!("ignored: {reason}"), message).await;
                Handled::Done
            }
            IngestMessage::Retry(retry) => self.retry(message, &retry).await,
            IngestMessage::Objects(objects) => {
                let mut outcome = Handled::Done;
                for object in objects {
                    let handled = match object {
                        Ok(object) => self.object_created(message, &object).await,
                        Err(reason) => {
                            self.audit_decision(&TenantId::system(), "message", Decision::Deny, format!("ignored: {reason}"), message)
                                .await;
                            Handled::Done
                        }
                    };
                    if handled == Handled::TryAgain {
                        outcome = Handled::TryAgain;
                    }
                }
                outcome
            }
        }
    }

    async fn object_created(&self, message: &QueueMessage, object: &ObjectCreated) -> Handled {
        if object.bucket != self.source_bucket {
            let reason = format!("ignored: a notification about bucket {:?}, not the source bucket", object.bucket);
            self.audit_decision(&TenantId::system(), "message", Decision::Deny, reason, message).await;
            return Handled::Done;
        }
        let key = match SourceKey::from_event_key(&object.encoded_key) {
            Ok(key) => key,
            Err(reason) => {
                self.audit_decision(&TenantId::system(), "source", Decision::Deny, format!("ignored: {reason}"), message).await;
                return Handled::Done;
            }
        };
        tracing::Span::current().record("tenant", key.tenant.as_str()).record("content_id", key.content.as_str());
        let resource = format!("content/{}", key.content);
        let head = match self.sources.head(&key.object_key()).await {
            Ok(Some(head)) => head,
            Ok(None) => {
                self.audit_decision(&key.tenant, &resource, Decision::Deny, "ignored: the object no longer exists".into(), message).await;
                return Handled::Done;
            }
            Err(e) => return self.later(message, &format!("HEAD {}: {e}", key.object_key())).await,
        };
        let record = match self.catalog.get(&key.tenant, &key.content).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                self.audit_decision(
                    &key.tenant,
                    &resource,
                    Decision::Deny,
                    "ignored: no content record of this tenant has this key".into(),
                    message,
                )
                .await;
                return Handled::Done;
            }
            Err(e) => return self.later(message, &e.to_string()).await,
        };
        if record.status == ContentStatus::AwaitingUpload {
            if let Err(reason) = check_declaration(&record, &head) {
                return self.refuse_upload(&key, &record, reason, message).await;
            }
        }
        let claimed = match self.claim(&key.tenant, &key.content, object_claim(&head.etag, &message.message_id), message).await {
            Step::Go(record) => record,
            Step::Stop(handled) => return handled,
        };
        let queue = self.choose_queue(&claimed, &key, &head).await;
        self.submit(message, claimed, queue).await
    }

    async fn retry(&self, message: &QueueMessage, retry: &RetryMessage) -> Handled {
        tracing::Span::current().record("tenant", retry.tenant.as_str()).record("content_id", retry.content_id.as_str());
        let claim = retry_claim(retry.attempt, &message.message_id);
        let claimed = match self.claim(&retry.tenant, &retry.content_id, claim, message).await {
            Step::Go(record) => record,
            Step::Stop(handled) => return handled,
        };
        let why = format!("attempt {} of {MAX_ATTEMPTS} after a temporary failure", retry.attempt);
        self.submit(message, claimed, (retry.queue, why)).await
    }

    async fn claim(&self, tenant: &TenantId, content: &ContentId, claim: Claim, message: &QueueMessage) -> Step<ContentRecord> {
        let resource = format!("content/{content}");
        let (expect, patch) = &claim.first;
        match self.catalog.update(tenant, content, expect, patch).await {
            Ok(record) => return Step::Go(record),
            Err(CatalogError::Precondition(_)) => {}
            Err(e) => return Step::Stop(self.later(message, &e.to_string()).await),
        }
        match self.catalog.update(tenant, content, &claim.resume, &Patch::default()).await {
            Ok(record) => {
                tracing::info!("resuming this message's own claim");
                Step::Go(record)
            }
            Err(CatalogError::Precondition(_)) => {
                let status = match self.catalog.get(tenant, content).await {
                    Ok(Some(r)) => r.status.to_string(),
                    Ok(None) => "absent".to_string(),
                    Err(_) => "unknown".to_string(),
                };
                let reason = format!("ignored: a duplicate or late event (the content is {status} and was claimed before)");
                self.audit_decision(tenant, &resource, Decision::Deny, reason, message).await;
                Step::Stop(Handled::Done)
            }
            Err(e) => Step::Stop(self.later(message, &e.to_string()).await),
        }
    }

    async fn choose_queue(&self, record: &ContentRecord, key: &SourceKey, head: &ObjectHead) -> (QueueKind, String) {
        let media = record.source.as_ref().and_then(|s| media_types::lookup(&s.content_type));
        let audio_only = media.is_some_and(|m| m.audio_only);
        let mut shape = SourceShape { audio_only, video_size: None };
        if !audio_only && media.is_some_and(|m| m.demuxer == "mov") {
            match sniff::video_size(self.sources.as_ref(), &key.object_key(), &head.etag, head.size).await {
                Ok(size) => shape.video_size = size,
                Err(e) => tracing::warn!(error = %e, "could not read the source's header; routing by profile only"),
            }
        }
        queue_choice::choose(&record.profile, shape)
    }

    async fn submit(&self, message: &QueueMessage, record: ContentRecord, (queue, why): (QueueKind, String)) -> Handled {
        let resource = format!("content/{}", record.content_id);
        let Some(source) = &record.source else {
            return self.give_up(message, &record, "the content record has no source object".into()).await;
        };
        let request = JobRequest {
            tenant: record.tenant.clone(),
            content: record.content_id.clone(),
            source_key: source.key.clone(),
            profile: record.profile.clone(),
            queue,
            attempt: record.attempts.max(1),
            trace_header: crate::traces::header_for(&tracing::Span::current()),
        };
        let job = match self.jobs.submit(&request).await {
            Ok(job) => job,
            Err(e) if message.receive_count >= MAX_ATTEMPTS => {
                return self
                    .give_up(message, &record, format!("the transcode job could not be submitted after {MAX_ATTEMPTS} tries: {}", e.0))
                    .await;
            }
            Err(e) => return self.later(message, &e.to_string()).await,
        };
        let expect = Expect {
            status_in: vec![ContentStatus::Queued],
            dispatch_claim: Some(Some(message.message_id.clone())),
            job_id: Some(None),
            ..Default::default()
        };
        let patch = Patch { job: Some(Some(job.clone())), ..Default::default() };
        if let Err(e) = self.catalog.update(&record.tenant, &record.content_id, &expect, &patch).await {
            // The job runs regardless; job_events matches its outcome by content, and a record
            // without the job id only loses the stale-event guard for this attempt.
            tracing::error!(error = %e, job_id = %job.id, "the submitted job could not be recorded");
        }
        let reason = format!("job {} on the {} queue (attempt {}): {why}", job.id, queue.as_str(), request.attempt);
        tracing::info!(job_id = %job.id, queue = queue.as_str(), attempt = request.attempt, "transcode job submitted");
        tally::count(Counted::JobSubmitted { queue: queue.as_str() });
        self.audit_decision(&record.tenant, &resource, Decision::Allow, reason, message).await;
        Handled::Done
    }

    async fn refuse_upload(&self, key: &SourceKey, record: &ContentRecord, reason: String, message: &QueueMessage) -> Handled {
        let resource = format!("content/{}", key.content);
        let expect = Expect::status(&[ContentStatus::AwaitingUpload]);
        let patch = Patch {
            status: Some(ContentStatus::FailedInvalid),
            failure: Some(Some(Failure::new("upload_mismatch", reason.clone()))),
            ..Default::default()
        };
        match self.catalog.update(&record.tenant, &record.content_id, &expect, &patch).await {
            Ok(_) | Err(CatalogError::Precondition(_)) => {
                tracing::info!(%reason, "upload refused");
                self.audit_decision(&key.tenant, &resource, Decision::Deny, format!("refused: {reason}"), message).await;
                Handled::Done
            }
            Err(e) => self.later(message, &e.to_string()).await,
        }
    }

    /// A failure that may clear up: deliver the message again after the backoff.
    async fn later(&self, message: &QueueMessage, reason: &str) -> Handled {
        let delay = backoff::delay_after(message.receive_count);
        tracing::warn!(%reason, receive_count = message.receive_count, retry_in_seconds = delay.as_secs(), "will try again");
        tally::count(Counted::Retry);
        if let Err(e) = self.redelivery.postpone(message, delay).await {
            tracing::warn!(error = %e, "could not postpone the message; it returns after the queue's visibility timeout");
        }
        Handled::TryAgain
    }

    /// Attempts are exhausted: the content fails, operators and the creator hear of it, and the
    /// message itself goes on to the queue's dead-letter queue.
    async fn give_up(&self, message: &QueueMessage, record: &ContentRecord, reason: String) -> Handled {
        let expect = Expect { status_in: vec![ContentStatus::Queued], job_id: Some(None), ..Default::default() };
        let patch = Patch {
            status: Some(ContentStatus::Failed),
            failure: Some(Some(Failure::new("dispatch_failed", reason.clone()))),
            ..Default::default()
        };
        if let Err(e) = self.catalog.update(&record.tenant, &record.content_id, &expect, &patch).await {
            tracing::error!(error = %e, "could not mark the content failed");
        }
        let failed = ContentFailed {
            tenant: record.tenant.clone(),
            content_id: record.content_id.clone(),
            status: ContentStatus::Failed.to_string(),
            reason: reason.clone(),
            job_id: None,
            attempts: record.attempts,
        };
        match self.failures.dead_letter(&failed).await {
            Ok(()) => tally::count(Counted::DeadLetter),
            Err(e) => tracing::error!(error = %e, "could not dead-letter the failure"),
        }
        if let Err(e) = self.failures.notify(&failed).await {
            tracing::error!(error = %e, "could not notify the creator");
        }
        let resource = format!("content/{}", record.content_id);
        self.audit_decision(&record.tenant, &resource, Decision::Deny, format!("failed: {reason}"), message).await;
        Handled::TryAgain
    }

    async fn audit_decision(&self, tenant: &TenantId, resource: &str, decision: Decision, reason: String, message: &QueueMessage) {
        let event = AuditEvent {
            tenant: tenant.clone(),
            actor: "dispatch".into(),
            action: "content.dispatch".into(),
            resource: resource.to_string(),
            decision,
            reason,
            request_id: message.message_id.clone(),
            source_ip: None,
        };
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "audit append failed");
        }
    }
}
