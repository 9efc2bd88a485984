//! What the ingest rules need from the outside world, as small traits. The AWS adapters are in
//! [`crate::aws`] (S3, Batch, SQS, EventBridge), the in-memory ones in [`crate::memory`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::JobRef;
use crate::ids::{ContentId, FeedId, MonitorId, TenantId};
use crate::ingest::post_policy::PresignedPost;
use crate::ingest::queue_choice::QueueKind;

/// A presigned request the client sends as it is: the URL, and the headers the signature binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedRequest {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// What a HEAD of a source object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// Quoted, as S3 sends it.
    pub etag: String,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the source bucket is unavailable: {0}")]
    Unavailable(String),
    /// S3 refused what the client sent (an unknown upload, a wrong part ETag, a part too small).
    #[error("{0}")]
    Rejected(String),
    /// The object is no longer the one expected (its ETag changed).
    #[error("the source object changed since it was accepted")]
    Changed,
}

/// The source bucket: presigned uploads in, objects out.
#[async_trait]
pub trait SourceStore: Send + Sync {
    /// A PUT whose signature binds the content type and length.
    async fn presign_put(&self, key: &str, content_type: &str, size: u64, ttl: Duration) -> Result<PresignedRequest, SourceError>;
    /// A form for a browser upload (POST Object) whose signed policy fixes the key, the content
    /// type and the length.
    async fn presign_post(&self, key: &str, content_type: &str, size: u64, ttl: Duration) -> Result<PresignedPost, SourceError>;
    async fn start_multipart(&self, key: &str, content_type: &str) -> Result<String, SourceError>;
    async fn presign_part(&self, key: &str, upload_id: &str, part_number: u32, ttl: Duration) -> Result<String, SourceError>;
    /// Completes a multipart upload; returns the object's ETag.
    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> Result<String, SourceError>;
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, SourceError>;
    /// Up to `len` bytes from `start` of the object, only while its ETag is still `etag`.
    async fn read_range(&self, key: &str, etag: &str, start: u64, len: u64) -> Result<Vec<u8>, SourceError>;
}

/// A transcode job to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub tenant: TenantId,
    pub content: ContentId,
    pub source_key: String,
    pub profile: String,
    pub queue: QueueKind,
    pub attempt: u32,
    /// The X-Ray trace the job continues (`Root=…;Parent=…;Sampled=…`), when dispatch runs in one.
    pub trace_header: Option<String>,
}

/// The Batch job name of one attempt at one content item. Batch allows letters, digits, `-` and
/// `_`, 128 at most (ids are 64 at most each).
pub fn job_name(tenant: &TenantId, content: &ContentId, attempt: u32) -> String {
    format!("vs-{tenant}-{content}-a{attempt}").chars().take(128).collect()
}

impl JobRequest {
    pub fn job_name(&self) -> String {
        job_name(&self.tenant, &self.content, self.attempt)
    }

    /// The job definition's parameters (`Ref::tenant` and friends in its command).
    pub fn parameters(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("tenant".to_string(), self.tenant.to_string()),
            ("content_id".to_string(), self.content.to_string()),
            ("source_key".to_string(), self.source_key.clone()),
            ("profile".to_string(), self.profile.clone()),
            ("trace_header".to_string(), self.trace_header.clone().unwrap_or_else(|| "none".to_string())),
        ])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the job could not be submitted: {0}")]
pub struct SubmitError(pub String);

#[async_trait]
pub trait JobSubmitter: Send + Sync {
    async fn submit(&self, request: &JobRequest) -> Result<JobRef, SubmitError>;
}

/// Asks dispatch to submit the next attempt of a transcode, later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryMessage {
    pub kind: RetryKind,
    pub tenant: TenantId,
    pub content_id: ContentId,
    /// The attempt this message starts (2 for the first retry).
    pub attempt: u32,
    pub queue: QueueKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryKind {
    TranscodeRetry,
}

#[async_trait]
pub trait RetryQueue: Send + Sync {
    async fn schedule(&self, message: &RetryMessage, delay: Duration) -> Result<(), String>;
}

/// Content that will not be published, as the dead-letter queue and the creator hear of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentFailed {
    pub tenant: TenantId,
    pub content_id: ContentId,
    pub status: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub attempts: u32,
}

#[async_trait]
pub trait FailureReports: Send + Sync {
    /// Keeps the failure for operators (the failures dead-letter queue).
    async fn dead_letter(&self, failed: &ContentFailed) -> Result<(), String>;
    /// Tells the creator (the `vaultstream.content.failed` event).
    async fn notify(&self, failed: &ContentFailed) -> Result<(), String>;
}

/// A queue message being handled, as the Lambda SQS event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub queue_arn: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// Postpones a message's next delivery (exponential backoff for failures that can recur).
#[async_trait]
pub trait Redelivery: Send + Sync {
    async fn postpone(&self, message: &QueueMessage, delay: Duration) -> Result<(), String>;
}

/// Writes into the source bucket for the platform's own doors (URL import): whole objects, or
/// parts of a multipart upload it started through [`SourceStore::start_multipart`].
#[async_trait]
pub trait SourceWriter: SourceStore {
    /// Stores a whole object; returns its ETag.
    async fn put_object(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<String, SourceError>;
    /// Stores one part; returns its ETag for [`SourceStore::complete_multipart`].
    async fn upload_part(&self, key: &str, upload_id: &str, part_number: u32, body: Vec<u8>) -> Result<String, SourceError>;
    /// Discards a multipart upload and the parts stored so far.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), SourceError>;
}

/// A URL import waiting for the fetcher, as the import queue carries it. The URL is the only
/// place the full link (with any token in its query) is kept; records and logs show its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportMessage {
    pub kind: ImportKind,
    pub tenant: TenantId,
    pub content_id: ContentId,
    pub url: String,
    /// Who asked: the principal's subject, for the ledger.
    pub requested_by: String,
    /// For a bucket monitor's import, the object to copy (`url` then only names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<BucketObject>,
    /// For a drop zone's upload, the file to move into the source key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<DroppedFile>,
}

/// A file uploaded to a drop zone (`drop/{tenant}/…` in the source bucket), at the version
/// (ETag, unquoted) that was reported finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedFile {
    pub key: String,
    pub etag: String,
}

/// Files in the drop zones of the source bucket, read once and removed after their import.
#[async_trait]
pub trait DropBox: Send + Sync {
    /// The file, only while it is at `etag`.
    async fn open_dropped(&self, key: &str, etag: &str) -> Result<Box<dyn FetchedBody>, FetchError>;
    async fn remove_dropped(&self, key: &str) -> Result<(), SourceError>;
    /// Copies the file (only while it is at `etag`) to `to`, tagged with why; the original is
    /// left as it is.
    async fn quarantine_dropped(&self, key: &str, etag: &str, to: &str, reason: &str) -> Result<(), SourceError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    UrlImport,
    BucketMonitor,
    DropZone,
}

/// One version of one object in a monitored bucket: the S3 ETag or the GCS generation it had
/// when the poll saw it, so the copy is of exactly what was claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketObject {
    pub monitor_id: MonitorId,
    pub key: String,
    pub version: String,
}

#[async_trait]
pub trait ImportQueue: Send + Sync {
    async fn enqueue(&self, message: &ImportMessage) -> Result<(), String>;
}

/// Why a fetch did not even produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL guard refused it (a forbidden address, scheme or redirect): never retried.
    #[error("{0}")]
    Refused(String),
    /// The connection failed or broke off, or timed out: may work later.
    #[error("{0}")]
    Failed(String),
}

/// What a response said before its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedHead {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    /// Where the body came from, after redirects.
    pub final_url: url::Url,
    /// The validators a conditional request sends back.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A response body, read a chunk at a time so nothing holds a whole file.
#[async_trait]
pub trait FetchedBody: Send {
    fn head(&self) -> &FetchedHead;
    /// The next chunk; `None` at the end.
    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError>;
}

/// Fetches untrusted URLs (the guarded client in [`crate::ingest::url_guard`]).
#[async_trait]
pub trait Fetcher: Send + Sync {
    /// A GET with these request headers (`if-none-match`, `accept`, …).
    async fn get(&self, url: &url::Url, headers: &[(&'static str, String)]) -> Result<Box<dyn FetchedBody>, FetchError>;
}

/// A tenant's feed subscription: polled on a schedule, each new media item imported once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub tenant: TenantId,
    pub feed_id: FeedId,
    /// As given (its query may hold a token); shown without the query.
    pub url: String,
    pub profile: String,
    pub created_at: String,
    /// The subscriber's subject, for the ledger.
    pub created_by: String,
    /// The last answer's validators, sent back as `If-None-Match` / `If-Modified-Since`.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_polled_at: Option<String>,
    /// Why the last poll read nothing (the feed refused, unreachable, not a feed).
    pub last_error: Option<String>,
    /// The latest item refused, and why.
    pub last_refusal: Option<String>,
    /// Digests of the items the last read of the feed held that were already settled (imported
    /// or refused): a cache that spares their claims when a feed sends no validators. The claim
    /// stays what decides.
    pub seen: Vec<String>,
    /// Items imported and items refused, over the feed's life.
    pub imported: u32,
    pub refused: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedStoreError {
    #[error("the feed store is unavailable: {0}")]
    Unavailable(String),
    /// The feed is gone (unsubscribed meanwhile).
    #[error("feed {0} does not exist")]
    Absent(FeedId),
}

/// Subscriptions, and the items of each feed already seen.
#[async_trait]
pub trait FeedStore: Send + Sync {
    async fn create(&self, feed: &Feed) -> Result<(), FeedStoreError>;
    /// A tenant's feeds, oldest first.
    async fn list(&self, tenant: &TenantId) -> Result<Vec<Feed>, FeedStoreError>;
    /// Removes a subscription; false when there was none. Items already imported stay.
    async fn remove(&self, tenant: &TenantId, feed: &FeedId) -> Result<bool, FeedStoreError>;
    /// Every tenant's feeds, for the poller.
    async fn all(&self) -> Result<Vec<Feed>, FeedStoreError>;
    /// Saves what a poll learnt (validators, times, counts, error), only while the feed exists.
    async fn record_poll(&self, feed: &Feed) -> Result<(), FeedStoreError>;
    /// Claims an item by its GUID's digest: true the first time, false ever after.
    async fn claim_item(&self, feed: &Feed, item: &str, guid: &str) -> Result<bool, FeedStoreError>;
    /// What became of a claimed item: `imported as …` or `refused: …`.
    async fn settle_item(&self, feed: &Feed, item: &str, outcome: &str) -> Result<(), FeedStoreError>;
    /// Gives a claim back (its import could not even start), so the next poll tries again.
    async fn release_item(&self, feed: &Feed, item: &str) -> Result<(), FeedStoreError>;
}

/// Where a monitored bucket lives, and how VaultStream may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketAccess {
    /// A customer's S3 bucket, read through their role, assumed with the external id VaultStream
    /// chose for this monitor (so no other customer can name that role and get in).
    S3 { region: String, role_arn: String, external_id: String },
    /// A Google Cloud Storage bucket, read with a service account whose key is kept in Secrets
    /// Manager (`secret_id`); `client_email` is what the API shows of it.
    Gcs { secret_id: String, client_email: String },
}

impl BucketAccess {
    pub fn provider(&self) -> &'static str {
        match self {
            BucketAccess::S3 { .. } => "s3",
            BucketAccess::Gcs { .. } => "gcs",
        }
    }
}

/// A tenant's watch over a cloud bucket: every new object under `prefix` is copied in once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    pub tenant: TenantId,
    pub monitor_id: MonitorId,
    pub access: BucketAccess,
    pub bucket: String,
    pub prefix: String,
    pub profile: String,
    pub created_at: String,
    pub created_by: String,
    pub last_polled_at: Option<String>,
    /// Why the last poll could not list the bucket (a role not yet trusting us, a bucket gone).
    pub last_error: Option<String>,
    /// The latest object refused, and why.
    pub last_refusal: Option<String>,
    /// Where the next poll resumes listing: the last key a poll reached when it stopped at its
    /// listing limit; `None` once a listing reached the end (the next starts over).
    pub cursor: Option<String>,
    pub imported: u32,
    pub refused: u32,
}

impl Monitor {
    /// `s3://bucket/key` or `gs://bucket/key`: how records, logs and the ledger name an object.
    pub fn object_url(&self, key: &str) -> Result<url::Url, String> {
        let scheme = match self.access {
            BucketAccess::S3 { .. } => "s3",
            BucketAccess::Gcs { .. } => "gs",
        };
        let mut url = url::Url::parse(&format!("{scheme}://{}/", self.bucket)).map_err(|e| format!("bucket {:?}: {e}", self.bucket))?;
        url.path_segments_mut().map_err(|_| "the bucket URL has no path".to_string())?.pop_if_empty().extend(key.split('/'));
        Ok(url)
    }
}

/// An object a listing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    /// The S3 ETag (without quotes) or the GCS generation.
    pub version: String,
    pub size: u64,
}

/// A page of a listing, and where the next one starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPage {
    pub objects: Vec<ListedObject>,
    pub next: Option<String>,
}

/// Customers' buckets, read with the access each monitor was given (S3 through an assumed
/// role, GCS with a service account). Errors are [`FetchError::Refused`] when the customer must
/// act (access denied, no such bucket or object, the object changed) and
/// [`FetchError::Failed`] when trying later may help.
#[async_trait]
pub trait CloudBuckets: Send + Sync {
    /// A page of the monitor's prefix: the one `page` (a previous page's `next`) names, else the
    /// first after the key `start_after` (or the first of all).
    async fn list(&self, monitor: &Monitor, page: Option<String>, start_after: Option<&str>) -> Result<ObjectPage, FetchError>;
    /// The object's body, only if it is still at `version`.
    async fn open(&self, monitor: &Monitor, key: &str, version: &str) -> Result<Box<dyn FetchedBody>, FetchError>;
}

/// Keeps service-account keys out of tables: each lives in Secrets Manager under a name
/// VaultStream chooses from the tenant and monitor, never one the request names.
#[async_trait]
pub trait MonitorSecrets: Send + Sync {
    /// Stores the key; returns its id.
    async fn store(&self, tenant: &TenantId, monitor: &MonitorId, key_json: &str) -> Result<String, String>;
    async fn remove(&self, secret_id: &str) -> Result<(), String>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorStoreError {
    #[error("the monitor store is unavailable: {0}")]
    Unavailable(String),
    #[error("monitor {0} does not exist")]
    Absent(MonitorId),
}

/// Monitors, and the object versions each has claimed.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    async fn create(&self, monitor: &Monitor) -> Result<(), MonitorStoreError>;
    /// A tenant's monitors, oldest first.
    async fn list(&self, tenant: &TenantId) -> Result<Vec<Monitor>, MonitorStoreError>;
    async fn get(&self, tenant: &TenantId, monitor: &MonitorId) -> Result<Option<Monitor>, MonitorStoreError>;
    /// Removes a monitor and returns it; titles already imported stay.
    async fn remove(&self, tenant: &TenantId, monitor: &MonitorId) -> Result<Option<Monitor>, MonitorStoreError>;
    /// Every tenant's monitors, for the poller.
    async fn all(&self) -> Result<Vec<Monitor>, MonitorStoreError>;
    /// Saves what a poll learnt, only while the monitor exists.
    async fn record_poll(&self, monitor: &Monitor) -> Result<(), MonitorStoreError>;
    /// Of these object digests, those never claimed (one read per hundred, not a write each).
    async fn unclaimed(&self, monitor: &Monitor, digests: &[String]) -> Result<Vec<String>, MonitorStoreError>;
    /// Claims an object version by its digest: true the first time, false ever after.
    async fn claim_object(&self, monitor: &Monitor, digest: &str, key: &str) -> Result<bool, MonitorStoreError>;
    /// What became of a claimed object: `imported as …` or `refused: …`.
    async fn settle_object(&self, monitor: &Monitor, digest: &str, outcome: &str) -> Result<(), MonitorStoreError>;
    /// Gives a claim back (its import could not even start), so the next poll tries again.
    async fn release_object(&self, monitor: &Monitor, digest: &str) -> Result<(), MonitorStoreError>;
}
