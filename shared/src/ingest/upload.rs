//! Flow 1, the upload: a creator declares a title and its file, and gets a place to put it. The
//! declaration is checked before anything is created (size, type, names, profile); the content
//! record starts `AWAITING_UPLOAD`; the client gets a presigned PUT whose signature binds the
//! declared type and length, or above a threshold a multipart upload with a presigned URL per
//! part, completed through [`UploadService::complete`]. A client that asks for it gets instead a
//! signed form (S3 POST Object) a plain HTML page can submit, with the same bindings.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::catalog::{CatalogError, ContentCatalog, ContentRecord, ContentStatus, Created, IdempotencyClaim, SourceFile, UploadPlan};
use crate::ids::ContentId;
use crate::ingest::media_types;
use crate::ingest::ports::{CompletedPart, PresignedRequest, SourceError, SourceStore};
use crate::ingest::post_policy::PresignedPost;
use crate::ingest::source_key::SourceKey;
use crate::ladder;
use crate::principal::{Principal, Scope};

const MIB: u64 = 1024 * 1024;
/// S3 allows at most this many parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_FILENAME_BYTES: usize = 255;
/// S3 takes at most 5 GiB in one POST Object.
pub const MAX_FORM_BYTES: u64 = 5 * 1024 * MIB;

/// Limits and shapes of uploads, from configuration.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Largest accepted source (`VAULTSTREAM_MAX_UPLOAD_BYTES`, default 50 GiB).
    pub max_bytes: u64,
    /// Sources at least this large upload in parts (`VAULTSTREAM_MULTIPART_THRESHOLD_BYTES`, 100 MiB).
    pub multipart_threshold: u64,
    /// Smallest part (S3's minimum is 5 MiB; 16 MiB keeps part counts low).
    pub min_part_size: u64,
    /// How long upload URLs stay valid.
    pub url_ttl: Duration,
    /// `https://api.example.com`, no trailing slash: where `complete_url` points.
    pub api_base_url: String,
}

impl UploadSettings {
    pub const DEFAULT_MAX_BYTES: u64 = 50 * 1024 * MIB;
    pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 100 * MIB;

    pub fn new(api_base_url: impl Into<String>) -> Self {
        UploadSettings {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            multipart_threshold: Self::DEFAULT_MULTIPART_THRESHOLD,
            min_part_size: 16 * MIB,
            url_ttl: Duration::from_secs(3600),
            api_base_url: api_base_url.into(),
        }
    }
}

/// `POST /v1/content/upload`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    pub title: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// A built-in profile (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// How the client will send the file (`PUT` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_method: Option<UploadMethod>,
    /// What describes the title besides its `title`: description, artist, date, language,
    /// creation time. Outranks the file's own tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::metadata::Metadata>,
}

/// What the client asks to upload with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UploadMethod {
    /// A presigned PUT, or from the multipart threshold a multipart upload.
    Put,
    /// A signed form (`multipart/form-data`), in one request, at most [`MAX_FORM_BYTES`].
    Post,
}

/// `POST /v1/content/{id}/upload/complete`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub upload_id: String,
    pub parts: Vec<CompletedPart>,
}

/// How to split `size` bytes: one PUT, or parts of `part_size` (whole MiB) of which there are
/// `parts`, the last one shorter.
pub fn plan_upload(size: u64, settings: &UploadSettings) -> Option<(u64, u32)> {
    if size < settings.multipart_threshold {
        return None;
    }
    let needed = size.div_ceil(MAX_PARTS);
    let part_size = needed.max(settings.min_part_size).div_ceil(MIB) * MIB;
    Some((part_size, size.div_ceil(part_size) as u32))
}

fn bad(message: impl Into<String>) -> AccessError {
    AccessError::BadRequest(message.into())
}

/// Checks a declaration; the error says which field is wrong and how.
pub fn validate(request: &UploadRequest, settings: &UploadSettings) -> Result<Validated, AccessError> {
    let title = request.title.trim();
    if title.is_empty() {
        return Err(bad("title: must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(bad(format!("title: must be at most {MAX_TITLE_CHARS} characters")));
    }
    if title.chars().any(char::is_control) {
        return Err(bad("title: must not contain control characters"));
    }
    let name = &request.filename;
    if name.trim().is_empty() || name.len() > MAX_FILENAME_BYTES {
        return Err(bad(format!("filename: must be 1 to {MAX_FILENAME_BYTES} bytes")));
    }
    if name.chars().any(|c| c.is_control() || c == '/' || c == '\\') || name == "." || name == ".." {
        return Err(bad("filename: must be a plain file name (no path separators or control characters)"));
    }
    let media = media_types::lookup(&request.content_type).ok_or_else(|| {
        AccessError::UnsupportedMediaType(format!(
            "content_type {:?} is not a video or audio type VaultStream transcodes; use one of {}",
            request.content_type,
            media_types::accepted_list()
        ))
    })?;
    if let Some((_, extension)) = name.rsplit_once('.') {
        let extension = extension.to_ascii_lowercase();
        if !media.extensions.contains(&extension.as_str()) {
            return Err(bad(format!(
                "filename: .{extension} does not match content_type {} (expected .{})",
                media.content_type,
                media.extensions.join(", .")
            )));
        }
    }
    if request.size_bytes == 0 {
        return Err(bad("size_bytes: must be the file's size in bytes, more than 0"));
    }
    if request.size_bytes > settings.max_bytes {
        return Err(AccessError::TooLarge(format!(
            "size_bytes: {} is larger than the accepted {} bytes",
            request.size_bytes, settings.max_bytes
        )));
    }
    if request.upload_method == Some(UploadMethod::Post) && request.size_bytes > MAX_FORM_BYTES {
        return Err(AccessError::TooLarge(format!(
            "size_bytes: a form upload (upload_method POST) takes at most {MAX_FORM_BYTES} bytes, S3's limit for one POST; \
             leave out upload_method to upload in parts"
        )));
    }
    let metadata = crate::metadata::request::RequestMetadata { title, metadata: request.metadata.as_ref() }.checked().map_err(bad)?;
    if let Some(profile) = &request.profile {
        if ladder::Profile::built_in(profile).is_none() {
            return Err(bad(format!("profile: {profile:?} is not one of {}", ladder::BUILT_IN_PROFILES.join(", "))));
        }
    }
    Ok(Validated { media, metadata })
}

/// A declaration that passed [`validate`]: its media type, and its metadata as checked.
#[derive(Debug)]
pub struct Validated {
    pub media: &'static media_types::MediaType,
    pub metadata: crate::metadata::Metadata,
}

/// Where and how the client uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadInstructions {
    Put { request: PresignedRequest, expires_at: u64 },
    Post { form: PresignedPost, expires_at: u64 },
    Multipart { upload_id: String, part_size: u64, parts: Vec<(u32, String)>, complete_url: String, expires_at: u64 },
}

#[derive(Debug, Clone)]
pub struct UploadGrant {
    pub record: ContentRecord,
    pub upload: UploadInstructions,
    /// True when an earlier request with the same idempotency key created this content.
    pub replayed: bool,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// The claim an `Idempotency-Key` header makes for `request` (its canonical JSON), if it has one.
pub(crate) fn idempotency_claim(key: Option<&str>, request: &impl Serialize) -> Result<Option<IdempotencyClaim>, AccessError> {
    let Some(key) = key else { return Ok(None) };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("Idempotency-Key: must be 1 to 255 visible ASCII characters"));
    }
    let canonical = serde_json::to_vec(request).map_err(|e| AccessError::Internal(e.to_string()))?;
    Ok(Some(IdempotencyClaim { key_hash: sha256_hex(key.as_bytes()), request_hash: sha256_hex(&canonical) }))
}

/// A new time-ordered content id (UUIDv7, 32 hex digits): sorting ids sorts by creation.
pub fn new_content_id() -> Result<ContentId, crate::ids::InvalidId> {
    ContentId::parse(uuid::Uuid::now_v7().simple().to_string())
}

fn catalog_error(e: CatalogError) -> AccessError {
    match e {
        CatalogError::IdempotencyConflict => AccessError::IdempotencyConflict(
            "this Idempotency-Key was already used with a different request; use a new key for a new upload".into(),
        ),
        CatalogError::Precondition(id) => AccessError::WrongState(format!("content {id} changed meanwhile; fetch it and try again")),
        other => AccessError::Unavailable(other.to_string()),
    }
}

fn source_error(e: SourceError) -> AccessError {
    match e {
        SourceError::Rejected(m) => AccessError::BadRequest(format!("the upload could not be completed: {m}")),
        SourceError::Changed => AccessError::WrongState("the uploaded object changed; upload again".into()),
        SourceError::Unavailable(m) => AccessError::Unavailable(m),
    }
}

pub struct UploadService {
    pub catalog: Arc<dyn ContentCatalog>,
    pub sources: Arc<dyn SourceStore>,
    pub audit: Arc<dyn AuditSink>,
    pub settings: UploadSettings,
}

impl UploadService {
    /// `POST /v1/content/upload`. `idempotency_key` is the raw `Idempotency-Key` header.
    pub async fn start(
        &self,
        principal: &Principal,
        request: &UploadRequest,
        idempotency_key: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<UploadGrant, AccessError> {
        let outcome = self.decide_start(principal, request, idempotency_key, meta).await;
        let resource = match &outcome {
            Ok(grant) => format!("content/{}", grant.record.content_id),
            Err(_) => "content/new".to_string(),
        };
        let decided = Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "content.upload", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn decide_start(
        &self,
        principal: &Principal,
        request: &UploadRequest,
        idempotency_key: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<UploadGrant, AccessError> {
        if !principal.may(Scope::ContentWrite) {
            return Err(AccessError::Forbidden("uploading content needs the content:write scope".into()));
        }
        let claim = idempotency_claim(idempotency_key, request)?;
        let Validated { media, metadata } = validate(request, &self.settings)?;
        let content_id = new_content_id().map_err(|e| AccessError::Internal(e.to_string()))?;
        let key = SourceKey::new(principal.tenant.clone(), content_id.clone()).object_key();
        let form = request.upload_method == Some(UploadMethod::Post);
        let upload = match plan_upload(request.size_bytes, &self.settings) {
            _ if form => UploadPlan::Post,
            None => UploadPlan::Put,
            Some((part_size, parts)) => {
                let upload_id = self.sources.start_multipart(&key, media.content_type).await.map_err(source_error)?;
                UploadPlan::Multipart { upload_id, part_size, parts }
            }
        };
        let mut record = ContentRecord::new(principal.tenant.clone(), content_id, ContentStatus::AwaitingUpload, request.title.trim());
        record.created_at = crate::clock::now_rfc3339();
        record.profile = request.profile.clone().unwrap_or_else(|| "default".into());
        record.source = Some(SourceFile {
            filename: request.filename.clone(),
            content_type: media.content_type.to_string(),
            size_bytes: request.size_bytes,
            key,
        });
        record.upload = Some(upload);
        record.metadata = Some(crate::metadata::Described::from_request(metadata));
        let (record, replayed) = match self.catalog.create(&record, claim.as_ref()).await.map_err(catalog_error)? {
            Created::New => (record, false),
            Created::Existing(earlier) => {
                // An orphaned multipart upload of ours (if we started one) is aborted by the
                // source bucket's lifecycle rule.
                if earlier.status != ContentStatus::AwaitingUpload {
                    return Err(AccessError::WrongState(format!(
                        "content {} was already uploaded with this Idempotency-Key (status {}); follow it with GET /v1/content/{}",
                        earlier.content_id, earlier.status, earlier.content_id
                    )));
                }
                (*earlier, true)
            }
        };
        let upload = self.instructions(&record, meta.now).await?;
        Ok(UploadGrant { record, upload, replayed })
    }

    async fn instructions(&self, record: &ContentRecord, now: u64) -> Result<UploadInstructions, AccessError> {
        let source = record.source.as_ref().ok_or_else(|| AccessError::Internal("an upload record without its source".into()))?;
        let expires_at = now + self.settings.url_ttl.as_secs();
        match &record.upload {
            Some(UploadPlan::Multipart { upload_id, part_size, parts }) => {
                let mut urls = Vec::with_capacity(*parts as usize);
                for part in 1..=*parts {
                    urls.push((
                        part,
                        self.sources.presign_part(&source.key, upload_id, part, self.settings.url_ttl).await.map_err(source_error)?,
                    ));
                }
                Ok(UploadInstructions::Multipart {
                    upload_id: upload_id.clone(),
                    part_size: *part_size,
                    parts: urls,
                    complete_url: format!("{}/v1/content/{}/upload/complete", self.settings.api_base_url, record.content_id),
                    expires_at,
                })
            }
            Some(UploadPlan::Post) => {
                let form = self
                    .sources
                    .presign_post(&source.key, &source.content_type, source.size_bytes, self.settings.url_ttl)
                    .await
                    .map_err(source_error)?;
                Ok(UploadInstructions::Post { form, expires_at })
            }
            _ => {
                let request = self
                    .sources
                    .presign_put(&source.key, &source.content_type, source.size_bytes, self.settings.url_ttl)
                    .await
                    .map_err(source_error)?;
                Ok(UploadInstructions::Put { request, expires_at })
            }
        }
    }

    /// `POST /v1/content/{content_id}/upload/complete`.
    pub async fn complete(
        &self,
        principal: &Principal,
        content_id: &str,
        request: &CompleteRequest,
        meta: &RequestMeta,
    ) -> Result<ContentRecord, AccessError> {
        let outcome = self.decide_complete(principal, content_id, request).await;
        let decided = Decided {
            tenant: principal.tenant.clone(),
            actor: &principal.subject,
            action: "content.upload.complete",
            resource: format!("content/{content_id}"),
        };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn decide_complete(
        &self,
        principal: &Principal,
        content_id: &str,
        request: &CompleteRequest,
    ) -> Result<ContentRecord, AccessError> {
        if !principal.may(Scope::ContentWrite) {
            return Err(AccessError::Forbidden("completing an upload needs the content:write scope".into()));
        }
        let content = ContentId::parse(content_id).map_err(|e| bad(e.to_string()))?;
        let stored = self.catalog.get(&principal.tenant, &content).await.map_err(catalog_error)?;
        let stored = stored.filter(|r| r.tenant == principal.tenant).ok_or_else(|| AccessError::NotFound(format!("content {content}")))?;
        if stored.status != ContentStatus::AwaitingUpload {
            return Err(AccessError::WrongState(format!("content {content} is {}, not awaiting its upload", stored.status)));
        }
        let (Some(UploadPlan::Multipart { upload_id, parts, .. }), Some(source)) = (&stored.upload, &stored.source) else {
            return Err(AccessError::WrongState(format!("content {content} is uploaded in one request; there is nothing to complete")));
        };
        if &request.upload_id != upload_id {
            return Err(bad(format!("upload_id: does not match the upload of content {content}")));
        }
        if request.parts.len() != *parts as usize {
            return Err(bad(format!("parts: expected {parts} parts, got {}", request.parts.len())));
        }
        for (index, part) in request.parts.iter().enumerate() {
            if part.part_number as usize != index + 1 {
                return Err(bad(format!("parts[{index}].part_number: expected {}, in ascending order", index + 1)));
            }
            if part.etag.trim().is_empty() || part.etag.len() > 128 {
                return Err(bad(format!("parts[{index}].etag: must be the ETag S3 returned for the part")));
            }
        }
        self.sources.complete_multipart(&source.key, upload_id, &request.parts).await.map_err(source_error)?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: &str, filename: &str, size: u64) -> UploadRequest {
        UploadRequest {
            title: "Film".into(),
            filename: filename.into(),
            content_type: content_type.into(),
            size_bytes: size,
            profile: None,
            upload_method: None,
            metadata: None,
        }
    }

    #[test]
    fn declarations_are_checked_field_by_field() {
        let settings = UploadSettings { max_bytes: 1000, ..UploadSettings::new("https://api") };
        assert!(validate(&request("video/mp4", "a.mp4", 10), &settings).is_ok());
        assert!(validate(&request("video/mp4", "no-extension", 10), &settings).is_ok());
        let status = |r: UploadRequest| validate(&r, &settings).unwrap_err().status();
        assert_eq!(status(request("video/mp4", "a.mp4", 1001)), 413);
        assert_eq!(status(request("text/html", "a.html", 10)), 415);
        assert_eq!(status(request("video/mp4", "a.avi", 10)), 400);
        assert_eq!(status(request("video/mp4", "../a.mp4", 10)), 400);
        assert_eq!(status(request("video/mp4", "a.mp4", 0)), 400);
        assert_eq!(status(UploadRequest { title: " ".into(), ..request("video/mp4", "a.mp4", 10) }), 400);
        assert_eq!(status(UploadRequest { title: "a\u{7}".into(), ..request("video/mp4", "a.mp4", 10) }), 400);
        assert_eq!(status(UploadRequest { profile: Some("fast".into()), ..request("video/mp4", "a.mp4", 10) }), 400);
        let form = |size| UploadRequest { upload_method: Some(UploadMethod::Post), ..request("video/mp4", "a.mp4", size) };
        let large = UploadSettings { max_bytes: 6 * 1024 * MIB, ..UploadSettings::new("https://api") };
        assert!(validate(&form(MAX_FORM_BYTES), &large).is_ok());
        let err = validate(&form(MAX_FORM_BYTES + 1), &large).unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(err.to_string().contains("leave out upload_method"), "{err}");
        let described = |m: serde_json::Value| UploadRequest {
            metadata: Some(serde_json::from_value(m).unwrap()),
            ..request("video/mp4", "a.mp4", 10)
        };
        assert!(validate(&described(serde_json::json!({"language": "pt-BR", "date": "2024-05"})), &settings).is_ok());
        let err = validate(&described(serde_json::json!({"language": "Portuguese"})), &settings).unwrap_err();
        assert!(err.status() == 400 && err.to_string().contains("metadata.language"), "{err}");
        let err = validate(&request("video/mp4", "a.mkv", 10), &settings).unwrap_err().to_string();
        assert!(err.contains("filename") && err.contains(".mp4"), "{err}");
    }

    #[test]
    fn large_sources_upload_in_whole_mib_parts_within_s3_limits() {
        let settings = UploadSettings::new("https://api");
        assert_eq!(plan_upload(99 * MIB, &settings), None);
        assert_eq!(plan_upload(100 * MIB, &settings), Some((16 * MIB, 7)));
        let (part, parts) = plan_upload(settings.max_bytes, &settings).unwrap();
        assert!(u64::from(parts) <= MAX_PARTS && part % MIB == 0 && part * u64::from(parts) >= settings.max_bytes);
    }

    #[test]
    fn content_ids_sort_by_creation() {
        let a = new_content_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_content_id().unwrap();
        assert!(a < b);
    }
}
