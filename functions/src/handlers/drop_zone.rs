//! `drop_zone`: Transfer Family's `SFTP/FTPS Server File Upload Completed` events (EventBridge).
//! A finished upload into `drop/{tenant}/` of the source bucket becomes a title through the
//! import queue; `import_fetch` moves the file into its source key.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use tracing::Instrument;
use vaultstream::access::{AccessError, RequestMeta};
use vaultstream::aws::{S3SourceStore, SqsImportQueue};
use vaultstream::ingest::drop_zone::{DropService, Dropped};
use vaultstream::ingest::import::ImportService;

use crate::env::{ConfigError, Env};
use crate::handlers::import_fetch::fetch_policy;
use crate::wiring::{self, Aws};

/// The detail types this function takes.
pub const DETAIL_TYPES: [&str; 2] = ["SFTP Server File Upload Completed", "FTPS Server File Upload Completed"];

/// The fields of the event's `detail` this function reads.
#[derive(Debug, Deserialize)]
pub struct UploadCompleted {
    /// `/{bucket}/{key}`.
    #[serde(rename = "file-path")]
    pub file_path: String,
    pub username: String,
    #[serde(rename = "status-code", default)]
    pub status_code: String,
}

/// Raised to the runtime so EventBridge delivers the event again.
#[derive(Debug, thiserror::Error)]
#[error("the upload could not be taken in yet: {0}")]
pub struct TryAgain(String);

pub struct DropZone {
    pub service: DropService,
    pub bucket: String,
}

impl DropZone {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let bucket = wiring::name(env, "VAULTSTREAM_SOURCE_BUCKET")?;
        let audit = wiring::audit(env, aws)?;
        let sources = Arc::new(S3SourceStore::new(aws.s3().clone(), bucket.clone()));
        let service = DropService {
            imports: ImportService {
                catalog: wiring::catalog(env, aws)?,
                queue: Arc::new(SqsImportQueue::new(aws.sqs().clone(), wiring::name(env, "VAULTSTREAM_IMPORT_QUEUE_URL")?)),
                audit: audit.clone(),
                policy: fetch_policy(env)?,
            },
            sources: sources.clone(),
            drops: sources,
            revocations: wiring::sessions(env, aws)?,
            audit,
        };
        Ok(DropZone { service, bucket })
    }

    pub async fn handle(&self, event: EventBridgeEvent<serde_json::Value>) -> Result<Option<String>, TryAgain> {
        let request_id = event.id.clone().unwrap_or_default();
        let span =
            tracing::info_span!("drop_zone", request_id = %request_id, tenant = tracing::field::Empty, content_id = tracing::field::Empty);
        async {
            if !DETAIL_TYPES.contains(&event.detail_type.as_str()) {
                tracing::info!(detail_type = %event.detail_type, "ignored: not a finished upload");
                return Ok(None);
            }
            let upload: UploadCompleted = match serde_json::from_value(event.detail.clone()) {
                Ok(upload) => upload,
                Err(e) => {
                    tracing::warn!(error = %e, "ignored: the event's detail is not an upload");
                    return Ok(None);
                }
            };
            if upload.status_code != "COMPLETED" {
                tracing::info!(status = %upload.status_code, "ignored: the upload did not complete");
                return Ok(None);
            }
            let Some(key) = upload.file_path.strip_prefix(&format!("/{}/", self.bucket)) else {
                tracing::warn!(path = %upload.file_path, "ignored: not a file of the source bucket");
                return Ok(None);
            };
            tracing::Span::current().record("tenant", upload.username.as_str());
            let meta = RequestMeta { request_id: request_id.clone(), source_ip: None, now: vaultstream::clock::now_seconds() };
            // The upload ended when Transfer said so; the event may arrive (or come again) later.
            let ended_at = event.time.map_or(meta.now, |t| t.timestamp().max(0) as u64);
            match self.service.finished(key, &upload.username, ended_at, &meta).await {
                Ok(Dropped::Accepted(grant)) => {
                    tracing::Span::current().record("content_id", grant.record.content_id.as_str());
                    tracing::info!(replayed = grant.replayed, "dropped file accepted");
                    Ok(Some(grant.record.content_id.to_string()))
                }
                Ok(Dropped::Ignored(why)) => {
                    tracing::info!(%why, "dropped file left alone");
                    Ok(None)
                }
                Ok(Dropped::Quarantined { key, reason }) => {
                    tracing::warn!(%reason, quarantined_at = %key, "dropped file quarantined");
                    Ok(None)
                }
                Err(e @ (AccessError::Unavailable(_) | AccessError::Internal(_))) => Err(TryAgain(e.to_string())),
                Err(e) => {
                    tracing::warn!(reason = %e, "dropped file refused");
                    Ok(None)
                }
            }
        }
        .instrument(span)
        .await
    }
}
