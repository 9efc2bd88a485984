//! Content records and the port that stores them. A record is the one place a title's state
//! lives: what the creator declared, where its upload is, which job works on it, what was
//! published, and the KMS ciphertext of its keys (never the keys themselves).
//!
//! Every lookup is keyed by the caller's own tenant, so another tenant's content is simply absent.
//! Changes are conditional ([`Expect`] + [`Patch`]): the rules in [`crate::ingest`] name each
//! transition as the state it expects and what it sets, and the adapters apply that atomically,
//! so a duplicate event, a stale job or a rerun can never move a record backwards.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::captions::CaptionFormat;
use crate::content_keys::WrappedKey;
use crate::ids::{ContentId, TenantId, TrackName, VersionId};
use crate::KeyId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContentStatus {
    AwaitingUpload,
    Queued,
    Processing,
    Ready,
    Partial,
    Failed,
    FailedInvalid,
}

impl ContentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentStatus::AwaitingUpload => "AWAITING_UPLOAD",
            ContentStatus::Queued => "QUEUED",
            ContentStatus::Processing => "PROCESSING",
            ContentStatus::Ready => "READY",
            ContentStatus::Partial => "PARTIAL",
            ContentStatus::Failed => "FAILED",
            ContentStatus::FailedInvalid => "FAILED_INVALID",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::from(text)).ok()
    }

    /// Only published content can be played; `PARTIAL` published what succeeded.
    pub fn is_playable(self) -> bool {
        matches!(self, ContentStatus::Ready | ContentStatus::Partial)
    }

    /// Nothing moves a record out of these states (a new upload is a new content item).
    pub fn is_final(self) -> bool {
        matches!(self, ContentStatus::Ready | ContentStatus::Partial | ContentStatus::Failed | ContentStatus::FailedInvalid)
    }
}

impl fmt::Display for ContentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the creator declared before uploading, and where the upload goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// `source/{tenant}/{content_id}/original` in the source bucket.
    pub key: String,
}

/// How the source is being uploaded: one presigned PUT, a form POST, or a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UploadPlan {
    Put,
    Post,
    Multipart {
        upload_id: String,
        part_size: u64,
        parts: u32,
    },
    /// Fetched from a URL by the platform (`url`: scheme, host and path; never its query).
    Import {
        url: String,
    },
}

/// The Batch job currently responsible for the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    pub id: String,
    pub queue: String,
}

/// A published rendition, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    pub bandwidth: u64,
    pub codecs: String,
    /// `SDR`, `PQ` or `HLG`, for video rungs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<RenditionQuality>,
}

/// A rung's measured quality: PSNR and SSIM of sampled frames, decoded from the rung itself,
/// against the picture its encoder was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionQuality {
    /// Mean over the sampled frames (identical frames count as 100 dB).
    pub psnr_db: f64,
    pub ssim: f64,
    pub frames_sampled: u32,
    /// Why the rung falls short of its profile's `quality_floor`, where it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below_floor: Option<String>,
}

/// A caption track. Captions belong to the title, not to one published version: they are
/// published beside the versions (`{tenant}/{content_id}/captions/`), so a creator may add them
/// before the upload finishes, after publication, or between two runs of the transcode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionTrack {
    pub track: TrackName,
    /// BCP 47 (`en`, `pt-BR`).
    pub language: String,
    /// What players show in their captions menu.
    pub label: String,
    /// Selected when the viewer has not chosen (at most one track is).
    pub default: bool,
    /// Shown even with captions off (foreign-language dialogue, signs).
    pub forced: bool,
    /// The published WebVTT, relative to the content's folder: `captions/{track}-{digest}.vtt`.
    pub file: String,
    /// What the creator sent.
    pub format: CaptionFormat,
    pub cues: u32,
    /// When the last cue ends.
    pub end_seconds: f64,
}

/// Why content could not be published, in words the creator can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Failure { code: code.to_string(), message: message.into() }
    }
}

/// What one transcode job cost: wall and CPU time, how fast, with what, how much it wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFigures {
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub realtime_factor: Option<f64>,
    pub encoder: String,
    pub output_bytes: u64,
    /// CPU seconds times the configured price per vCPU-second, in US dollars.
    pub estimated_cost_usd: f64,
    /// A chunked title's chunks and stitch (`wall_seconds` is then the stitch's, `cpu_seconds`
    /// and the cost every job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunked: Option<crate::chunking::ChunkedFigures>,
}

/// Where the published files are: `{tenant}/{content_id}/{version}/` in the origin bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub version: VersionId,
    pub renditions: Vec<Rendition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Relative to the version folder (`poster.jpg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Option<String>,
    #[serde(default)]
    pub thumbnails: Vec<String>,
    /// The trick-play track (`thumbnails/storyboard.vtt`), relative to the version folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storyboard: Option<String>,
    /// The CMAF packaging (`cbcs`), where the profile made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmaf: Option<CmafPublication>,
}

/// What a published CMAF packaging needs known beside its files: the KID its key has (derived,
/// recorded so an operator can match a DRM vendor's licence logs to a title).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmafPublication {
    pub kid: String,
    pub scheme: String,
    /// The DRM systems a vendor's key provider signalled (`widevine`, `playready`, `fairplay`);
    /// empty when VaultStream holds the key and the title is signalled for ClearKey.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub systems: Vec<String>,
}

impl CmafPublication {
    /// Whether a DRM vendor holds the key: VaultStream then serves neither the raw key nor a
    /// ClearKey licence for it.
    pub fn vendor_keyed(&self) -> bool {
        !self.systems.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContentRecord {
    pub tenant: TenantId,
    pub content_id: ContentId,
    pub status: ContentStatus,
    pub title: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The encoding profile (`default`, `hevc-4k`, `av1-archive`).
    pub profile: String,
    pub source: Option<SourceFile>,
    pub upload: Option<UploadPlan>,
    /// The ETag of the uploaded object dispatch accepted; the transcoder reads exactly that object.
    pub source_etag: Option<String>,
    /// The SQS message that claimed the dispatch, so its redelivery (and only it) may resume.
    pub dispatch_claim: Option<String>,
    pub job: Option<JobRef>,
    /// Transcode attempts started so far (resubmissions included).
    pub attempts: u32,
    /// Percent of the source transcoded by the running job.
    pub progress: Option<f64>,
    pub publication: Option<Publication>,
    pub failure: Option<Failure>,
    pub figures: Option<JobFigures>,
    /// KMS ciphertext blobs, bound to `{tenant, content_id}` by the encryption context.
    pub keys: BTreeMap<KeyId, WrappedKey>,
    pub captions: Vec<CaptionTrack>,
    /// Counts changes to `captions`, so concurrent edits cannot lose one another.
    pub captions_revision: u32,
    /// Description merged from the request and, once transcoded, the file's tags.
    pub metadata: Option<crate::metadata::Described>,
}

impl ContentRecord {
    /// A record with only its identity, status and title set.
    pub fn new(tenant: TenantId, content_id: ContentId, status: ContentStatus, title: impl Into<String>) -> Self {
        ContentRecord {
            tenant,
            content_id,
            status,
            title: title.into(),
            created_at: String::new(),
            profile: "default".into(),
            source: None,
            upload: None,
            source_etag: None,
            dispatch_claim: None,
            job: None,
            attempts: 0,
            progress: None,
            publication: None,
            failure: None,
            figures: None,
            keys: BTreeMap::new(),
            captions: Vec::new(),
            captions_revision: 0,
            metadata: None,
        }
    }
}

/// What a conditional change expects to find. Every field left `None` is not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    /// The record's status is one of these (when not empty).
    pub status_in: Vec<ContentStatus>,
    /// `Some(None)`: no ETag recorded yet; `Some(Some(e))`: exactly `e`.
    pub source_etag: Option<Option<String>>,
    pub dispatch_claim: Option<Option<String>>,
    /// `Some(None)`: no job recorded; `Some(Some(id))`: that job.
    pub job_id: Option<Option<String>>,
    pub attempts: Option<u32>,
    pub captions_revision: Option<u32>,
}

impl Expect {
    pub fn status(statuses: &[ContentStatus]) -> Self {
        Expect { status_in: statuses.to_vec(), ..Default::default() }
    }

    /// Whether `record` satisfies every expectation (what the adapters' conditions express).
    pub fn holds_for(&self, record: &ContentRecord) -> bool {
        (self.status_in.is_empty() || self.status_in.contains(&record.status))
            && self.source_etag.as_ref().is_none_or(|e| *e == record.source_etag)
            && self.dispatch_claim.as_ref().is_none_or(|c| *c == record.dispatch_claim)
            && self.job_id.as_ref().is_none_or(|j| j.as_deref() == record.job.as_ref().map(|j| j.id.as_str()))
            && self.attempts.is_none_or(|a| a == record.attempts)
            && self.captions_revision.is_none_or(|r| r == record.captions_revision)
    }
}

/// What a change sets. `None` leaves a field alone; for optional fields `Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    pub status: Option<ContentStatus>,
    /// What arrived, where the platform fetched the file itself (URL import).
    pub source: Option<SourceFile>,
    pub source_etag: Option<String>,
    pub dispatch_claim: Option<String>,
    pub job: Option<Option<JobRef>>,
    pub attempts: Option<u32>,
    pub progress: Option<Option<f64>>,
    pub publication: Option<Publication>,
    pub failure: Option<Option<Failure>>,
    pub figures: Option<JobFigures>,
    /// Replaces the caption tracks and counts one more revision.
    pub captions: Option<Vec<CaptionTrack>>,
    pub metadata: Option<crate::metadata::Described>,
}

impl Patch {
    /// Applies the change to an in-memory copy (what the adapters' update expressions do).
    pub fn apply_to(&self, record: &mut ContentRecord) {
        if let Some(s) = self.status {
            record.status = s;
        }
        if let Some(s) = &self.source {
            record.source = Some(s.clone());
        }
        if let Some(e) = &self.source_etag {
            record.source_etag = Some(e.clone());
        }
        if let Some(c) = &self.dispatch_claim {
            record.dispatch_claim = Some(c.clone());
        }
        if let Some(j) = &self.job {
            record.job = j.clone();
        }
        if let Some(a) = self.attempts {
            record.attempts = a;
        }
        if let Some(p) = self.progress {
            record.progress = p;
        }
        if let Some(p) = &self.publication {
            record.publication = Some(p.clone());
        }
        if let Some(f) = &self.failure {
            record.failure = f.clone();
        }
        if let Some(f) = &self.figures {
            record.figures = Some(f.clone());
        }
        if let Some(c) = &self.captions {
            record.captions = c.clone();
            record.captions_revision += 1;
        }
        if let Some(m) = &self.metadata {
            record.metadata = Some(m.clone());
        }
    }
}

/// An idempotent create: the same key with the same request finds the content it made before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// SHA-256 (hex) of the client's `Idempotency-Key`.
    pub key_hash: String,
    /// SHA-256 (hex) of the request body it came with.
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New,
    /// The key was used before with the same request: this is the content it created.
    Existing(Box<ContentRecord>),
}

/// One page of a tenant's titles, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<ContentRecord>,
    /// Where the next page starts (the last item's id), when there may be more.
    pub next_after: Option<ContentId>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the content catalog is unavailable: {0}")]
    Unavailable(String),
    #[error("content {0} already exists")]
    AlreadyExists(ContentId),
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyConflict,
    /// The record is absent or not in the state the change expected.
    #[error("content {0} is not in the expected state")]
    Precondition(ContentId),
    #[error("stored content record is unreadable: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait ContentCatalog: Send + Sync {
    async fn get(&self, tenant: &TenantId, content: &ContentId) -> Result<Option<ContentRecord>, CatalogError>;
    /// Creates a record; never overwrites one. With a claim, creates it only if the key is new.
    async fn create(&self, record: &ContentRecord, idempotency: Option<&IdempotencyClaim>) -> Result<Created, CatalogError>;
    /// The tenant's titles, newest first, starting after `after`.
    async fn list(&self, tenant: &TenantId, limit: u32, after: Option<&ContentId>) -> Result<Page, CatalogError>;
    /// Applies `patch` if the record exists and `expect` holds, atomically; returns the result.
    async fn update(&self, tenant: &TenantId, content: &ContentId, expect: &Expect, patch: &Patch) -> Result<ContentRecord, CatalogError>;
    /// Stores a key's blob unless one is already stored under that id; returns the stored blob,
    /// so concurrent runs of a transcode all end up with the same key.
    async fn put_key_if_absent(
        &self,
        tenant: &TenantId,
        content: &ContentId,
        key_id: &KeyId,
        wrapped: &WrappedKey,
    ) -> Result<WrappedKey, CatalogError>;
}
