//! Import from a URL, the request side: `POST /v1/content/import {"url","title",…}` creates a
//! content record in `AWAITING_UPLOAD` whose upload is the platform's own, and queues the URL for
//! the fetcher ([`crate::ingest::import_fetch`]), which streams it into the source key. From
//! there the file takes the one path every door ends in: the S3 event, dispatch, the transcode.
//!
//! The URL is checked here as far as it can be without fetching (scheme, credentials, a literal
//! forbidden address), so an obvious mistake is a 400 at once; the fetcher checks every address
//! it resolves and every redirect again, and that is what keeps the fetch safe.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::catalog::{CatalogError, ContentCatalog, ContentRecord, ContentStatus, Created, IdempotencyClaim, UploadPlan};
use crate::ids::TenantId;
use crate::ingest::ports::{BucketObject, DroppedFile, Feed, ImportKind, ImportMessage, ImportQueue, Monitor};
use crate::ingest::upload::{idempotency_claim, new_content_id, sha256_hex, MAX_TITLE_CHARS};
use crate::ingest::url_guard::{self, shown, FetchPolicy};
use crate::ladder;
use crate::metadata::{Metadata, Source};
use crate::principal::{Principal, Scope};

/// Longer URLs are refused (presigned links run to about 1,500 bytes).
pub const MAX_URL_BYTES: usize = 4096;

/// `POST /v1/content/import`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub url: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::metadata::Metadata>,
}

fn bad(message: impl Into<String>) -> AccessError {
    AccessError::BadRequest(message.into())
}

/// A checked import: the parsed URL and the request's metadata.
#[derive(Debug)]
pub struct ValidatedImport {
    pub url: Url,
    pub metadata: crate::metadata::Metadata,
}

/// Checks an import request; the error names the field.
pub fn validate(request: &ImportRequest, policy: FetchPolicy) -> Result<ValidatedImport, AccessError> {
    if request.url.len() > MAX_URL_BYTES {
        return Err(bad(format!("url: must be at most {MAX_URL_BYTES} bytes")));
    }
    let url =
        Url::parse(request.url.trim()).map_err(|e| bad(format!("url: not a URL ({e}); give an absolute https:// link to the file")))?;
    url_guard::check_url(&url, policy).map_err(|refused| bad(format!("url: {refused}")))?;
    let title = request.title.trim();
    if title.is_empty() {
        return Err(bad("title: must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(bad(format!("title: must be at most {MAX_TITLE_CHARS} characters")));
    }
    let metadata = crate::metadata::request::RequestMetadata { title, metadata: request.metadata.as_ref() }.checked().map_err(bad)?;
    if let Some(profile) = &request.profile {
        if ladder::Profile::built_in(profile).is_none() {
            return Err(bad(format!("profile: {profile:?} is not one of {}", ladder::BUILT_IN_PROFILES.join(", "))));
        }
    }
    Ok(ValidatedImport { url, metadata })
}

/// What an accepted import becomes: a record for `tenant` and a queued URL.
struct Accepted<'a> {
    tenant: &'a TenantId,
    requested_by: &'a str,
    url: Url,
    title: &'a str,
    profile: String,
    described: crate::metadata::Described,
    /// A monitored bucket's object, read with the monitor's access instead of fetched.
    object: Option<BucketObject>,
    /// A drop zone's file, moved from the drop zone instead of fetched.
    dropped: Option<DroppedFile>,
}

/// An accepted import.
#[derive(Debug, Clone)]
pub struct ImportGrant {
    pub record: ContentRecord,
    /// The URL as [`shown`].
    pub url: String,
    pub replayed: bool,
}

pub struct ImportService {
    pub catalog: Arc<dyn ContentCatalog>,
    pub queue: Arc<dyn ImportQueue>,
    pub audit: Arc<dyn AuditSink>,
    pub policy: FetchPolicy,
}

impl ImportService {
    /// `POST /v1/content/import`. `idempotency_key` is the raw `Idempotency-Key` header.
    pub async fn start(
        &self,
        principal: &Principal,
        request: &ImportRequest,
        idempotency_key: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<ImportGrant, AccessError> {
        let outcome = self.decide(principal, request, idempotency_key).await;
        let resource = match &outcome {
            Ok(grant) => format!("content/{}", grant.record.content_id),
            Err(_) => "content/new".to_string(),
        };
        let decided = Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "content.import", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn decide(
        &self,
        principal: &Principal,
        request: &ImportRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ImportGrant, AccessError> {
        if !principal.may(Scope::ContentWrite) {
            return Err(AccessError::Forbidden("importing content needs the content:write scope".into()));
        }
        let claim = idempotency_claim(idempotency_key, request)?;
        let ValidatedImport { url, metadata } = validate(request, self.policy)?;
        let profile = request.profile.clone().unwrap_or_else(|| "default".into());
        let described = crate::metadata::Described::from_request(metadata);
        let import = Accepted {
            tenant: &principal.tenant,
            requested_by: &principal.subject,
            url,
            title: request.title.trim(),
            profile,
            described,
            object: None,
            dropped: None,
        };
        self.create_and_queue(import, claim.as_ref()).await
    }

    /// An import for a feed item (`item`: its GUID's digest): the feed's tenant (the subscriber's,
    /// when it subscribed), the item's enclosure and its metadata (source `feed`). Idempotent per
    /// item for a day, as a client's `Idempotency-Key` is: a retry after a failed queueing finds
    /// the title it created. Audited as `content.import` by the feed.
    pub async fn start_for_feed(
        &self,
        feed: &Feed,
        item: &str,
        url: &Url,
        metadata: Metadata,
        meta: &RequestMeta,
    ) -> Result<ImportGrant, AccessError> {
        let actor = format!("feed/{}", feed.feed_id);
        let outcome = async {
            url_guard::check_url(url, self.policy).map_err(|refused| bad(format!("the enclosure: {refused}")))?;
            let title = metadata.title.clone().ok_or_else(|| bad("the item has no title"))?;
            let described = crate::metadata::merge([(Source::Feed, metadata)]);
            let import = Accepted {
                tenant: &feed.tenant,
                requested_by: &actor,
                url: url.clone(),
                title: &title,
                profile: feed.profile.clone(),
                described,
                object: None,
                dropped: None,
            };
            let claim = IdempotencyClaim {
                key_hash: sha256_hex(format!("feed/{}/{item}", feed.feed_id).as_bytes()),
                request_hash: sha256_hex(url.as_str().as_bytes()),
            };
            self.create_and_queue(import, Some(&claim)).await
        }
        .await;
        let resource = match &outcome {
            Ok(grant) => format!("content/{}", grant.record.content_id),
            Err(_) => "content/new".to_string(),
        };
        let decided = Decided { tenant: feed.tenant.clone(), actor: &actor, action: "content.import", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    /// An import for an object a bucket monitor found (`digest`: of its key and version): the
    /// monitor's tenant and profile, the metadata its name and sidecar lend. Idempotent per object
    /// version for a day, like a feed item. Audited as `content.import` by the monitor.
    pub async fn start_for_object(
        &self,
        monitor: &Monitor,
        digest: &str,
        object: BucketObject,
        described: crate::metadata::Described,
        meta: &RequestMeta,
    ) -> Result<ImportGrant, AccessError> {
        let actor = format!("monitor/{}", monitor.monitor_id);
        let outcome = async {
            let url = monitor.object_url(&object.key).map_err(bad)?;
            let title = described.values.title.clone().ok_or_else(|| bad("the object has no title"))?;
            let claim = IdempotencyClaim {
                key_hash: sha256_hex(format!("monitor/{}/{digest}", monitor.monitor_id).as_bytes()),
                request_hash: sha256_hex(url.as_str().as_bytes()),
            };
            let import = Accepted {
                tenant: &monitor.tenant,
                requested_by: &actor,
                url,
                title: &title,
                profile: monitor.profile.clone(),
                described,
                object: Some(object),
                dropped: None,
            };
            self.create_and_queue(import, Some(&claim)).await
        }
        .await;
        let resource = match &outcome {
            Ok(grant) => format!("content/{}", grant.record.content_id),
            Err(_) => "content/new".to_string(),
        };
        let decided = Decided { tenant: monitor.tenant.clone(), actor: &actor, action: "content.import", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    /// An import for a file dropped in `tenant`'s drop zone (`path`: within its folder), idempotent
    /// per file version by `claim`. Audited as `content.import` by the drop zone.
    pub async fn start_for_drop(
        &self,
        tenant: &TenantId,
        path: &str,
        dropped: DroppedFile,
        described: crate::metadata::Described,
        claim: &IdempotencyClaim,
        meta: &RequestMeta,
    ) -> Result<ImportGrant, AccessError> {
        let actor = "drop_zone".to_string();
        let outcome = async {
            let mut url = Url::parse("ftp://drop/").map_err(|e| AccessError::Internal(e.to_string()))?;
            url.path_segments_mut()
                .map_err(|_| AccessError::Internal("ftp URL without a path".into()))?
                .pop_if_empty()
                .push(tenant.as_str())
                .extend(path.split('/'));
            let title = described.values.title.clone().ok_or_else(|| bad("the file has no title"))?;
            let import = Accepted {
                tenant,
                requested_by: &actor,
                url,
                title: &title,
                profile: "default".into(),
                described,
                object: None,
                dropped: Some(dropped),
            };
            self.create_and_queue(import, Some(claim)).await
        }
        .await;
        let resource = match &outcome {
            Ok(grant) => format!("content/{}", grant.record.content_id),
            Err(_) => "content/new".to_string(),
        };
        let decided = Decided { tenant: tenant.clone(), actor: &actor, action: "content.import", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn create_and_queue(&self, import: Accepted<'_>, claim: Option<&IdempotencyClaim>) -> Result<ImportGrant, AccessError> {
        let Accepted { tenant, requested_by, url, title, profile, described, object, dropped } = import;
        let content_id = new_content_id().map_err(|e| AccessError::Internal(e.to_string()))?;
        let mut record = ContentRecord::new(tenant.clone(), content_id, ContentStatus::AwaitingUpload, title);
        record.created_at = crate::clock::now_rfc3339();
        record.profile = profile;
        record.upload = Some(UploadPlan::Import { url: shown(&url) });
        record.metadata = Some(described);
        let created = self.catalog.create(&record, claim).await.map_err(|e| match e {
            CatalogError::IdempotencyConflict => AccessError::IdempotencyConflict(
                "this Idempotency-Key was already used with a different request; use a new key for a new import".into(),
            ),
            other => AccessError::Unavailable(other.to_string()),
        })?;
        let (record, replayed) = match created {
            Created::New => (record, false),
            // The same request again. Still awaiting its file, it is queued once more: the first
            // answer may have been lost because queueing failed. The fetcher does nothing twice
            // (a finished import is skipped; two at once write the same object, and dispatch
            // takes the first event only).
            Created::Existing(earlier) if earlier.status == ContentStatus::AwaitingUpload => (*earlier, true),
            Created::Existing(earlier) => return Ok(ImportGrant { url: shown(&url), record: *earlier, replayed: true }),
        };
        let message = ImportMessage {
            kind: match (&object, &dropped) {
                (Some(_), _) => ImportKind::BucketMonitor,
                (None, Some(_)) => ImportKind::DropZone,
                (None, None) => ImportKind::UrlImport,
            },
            tenant: record.tenant.clone(),
            content_id: record.content_id.clone(),
            url: url.to_string(),
            requested_by: requested_by.to_string(),
            object,
            dropped,
        };
        // Not queued, not accepted: the record stays AWAITING_UPLOAD with nothing behind it, and
        // the client's retry with its Idempotency-Key finds it and queues it.
        self.queue.enqueue(&message).await.map_err(|e| AccessError::Unavailable(format!("the import could not be queued: {e}")))?;
        Ok(ImportGrant { url: shown(&url), record, replayed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: FetchPolicy = FetchPolicy { allow_http: false, allow_loopback: false };

    fn request(url: &str) -> ImportRequest {
        ImportRequest { url: url.into(), title: "Film".into(), profile: None, metadata: None }
    }

    #[test]
    fn import_requests_are_checked_before_anything_is_fetched() {
        assert!(validate(&request("https://media.example.com/film.mp4"), STRICT).is_ok());
        let refused = |r: ImportRequest| validate(&r, STRICT).unwrap_err().to_string();
        assert!(refused(request("not a url")).contains("url: not a URL"));
        assert!(refused(request("http://media.example.com/film.mp4")).contains("only https"));
        assert!(refused(request("https://169.254.169.254/latest/meta-data/")).contains("link-local"));
        assert!(refused(request("https://[::1]/film.mp4")).contains("loopback"));
        assert!(refused(request("file:///etc/passwd")).contains("only https"));
        assert!(refused(request(&format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES)))).contains("at most"));
        assert!(refused(ImportRequest { title: " ".into(), ..request("https://example.com/a.mp4") }).contains("title"));
        assert!(refused(ImportRequest { profile: Some("fast".into()), ..request("https://example.com/a.mp4") }).contains("profile"));
    }

    #[test]
    fn what_is_shown_of_a_url_leaves_its_token_out() {
        let url = Url::parse("https://cdn.example.com/a/film.mp4?X-Amz-Signature=secret&token=t#frag").unwrap();
        assert_eq!(shown(&url), "https://cdn.example.com/a/film.mp4");
    }
}
