//! What creators and viewers see of their titles: `GET /v1/content/{id}` and the tenant's list,
//! newest first, paged with an opaque cursor. Lookups are keyed by the caller's tenant, and a
//! cursor carries only a content id, so no request can reach another tenant's titles.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::catalog::{CaptionTrack, ContentCatalog, ContentRecord, ContentStatus, Failure, JobFigures, Rendition};
use crate::ids::ContentId;
use crate::principal::{Principal, Scope};

pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;

/// One title as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentView {
    pub content_id: String,
    pub status: ContentStatus,
    pub title: String,
    pub created_at: String,
    pub profile: String,
    /// Percent transcoded: 0 until a job runs, 100 once published.
    pub progress: f64,
    pub renditions: Vec<Rendition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Relative to the content's folder on its CDN host (fetched with the playback cookies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poster: Option<String>,
    /// The trick-play WebVTT track (cues into thumbnail sprite sheets), relative like `poster`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storyboard: Option<String>,
    /// Caption tracks, whatever the status (they may be attached before publication); each
    /// `file` is relative to the content's folder, like `poster`.
    pub captions: Vec<CaptionTrack>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<JobFigures>,
    /// The merged description, and which provider each field came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::metadata::Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_sources: Option<std::collections::BTreeMap<String, crate::metadata::Source>>,
    /// Where an imported title is fetched from (scheme, host and path; never the query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportView {
    pub url: String,
}

pub fn view(record: &ContentRecord) -> ContentView {
    let publication = record.publication.as_ref().filter(|_| record.status.is_playable());
    ContentView {
        content_id: record.content_id.to_string(),
        status: record.status,
        title: record.title.clone(),
        created_at: record.created_at.clone(),
        profile: record.profile.clone(),
        progress: if record.status.is_playable() { 100.0 } else { record.progress.unwrap_or(0.0) },
        renditions: publication.map(|p| p.renditions.clone()).unwrap_or_default(),
        failure: record.failure.clone(),
        duration_seconds: publication.and_then(|p| p.duration_seconds),
        poster: publication.and_then(|p| p.poster.as_ref().map(|poster| format!("{}/{poster}", p.version))),
        storyboard: publication.and_then(|p| p.storyboard.as_ref().map(|track| format!("{}/{track}", p.version))),
        captions: record.captions.clone(),
        attempts: record.attempts,
        figures: record.figures.clone(),
        metadata: record.metadata.as_ref().map(|d| d.values.clone()),
        metadata_sources: record.metadata.as_ref().map(|d| d.sources.clone()),
        import: match &record.upload {
            Some(crate::catalog::UploadPlan::Import { url }) => Some(ImportView { url: url.clone() }),
            _ => None,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListView {
    pub items: Vec<ContentView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    after: ContentId,
}

pub fn encode_cursor(after: &ContentId) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Cursor { after: after.clone() }).unwrap_or_default())
}

pub fn decode_cursor(text: &str) -> Result<ContentId, AccessError> {
    let invalid =
        || AccessError::BadRequest("cursor: not a cursor this API returned; pass next_cursor from the previous page as it is".into());
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    serde_json::from_slice::<Cursor>(&bytes).map(|c| c.after).map_err(|_| invalid())
}

pub fn parse_limit(text: Option<&str>) -> Result<u32, AccessError> {
    match text {
        None => Ok(DEFAULT_PAGE),
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(AccessError::BadRequest(format!("limit: {t:?} is not a whole number from 1 to {MAX_PAGE}"))),
        },
    }
}

pub struct ContentQueries {
    pub catalog: Arc<dyn ContentCatalog>,
    pub audit: Arc<dyn AuditSink>,
}

fn may_see(principal: &Principal) -> Result<(), AccessError> {
    if principal.may(Scope::ContentRead) || principal.may(Scope::ContentWrite) {
        Ok(())
    } else {
        Err(AccessError::Forbidden("reading content needs the content:read or content:write scope".into()))
    }
}

impl ContentQueries {
    pub async fn get(&self, principal: &Principal, content_id: &str, meta: &RequestMeta) -> Result<ContentView, AccessError> {
        let outcome = async {
            may_see(principal)?;
            let content = ContentId::parse(content_id).map_err(|e| AccessError::BadRequest(e.to_string()))?;
            let stored = self.catalog.get(&principal.tenant, &content).await.map_err(|e| AccessError::Unavailable(e.to_string()))?;
            stored
                .filter(|r| r.tenant == principal.tenant)
                .map(|r| view(&r))
                .ok_or_else(|| AccessError::NotFound(format!("content {content}")))
        }
        .await;
        let decided = Decided {
            tenant: principal.tenant.clone(),
            actor: &principal.subject,
            action: "content.read",
            resource: format!("content/{content_id}"),
        };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    pub async fn list(
        &self,
        principal: &Principal,
        limit: Option<&str>,
        cursor: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<ListView, AccessError> {
        let outcome = async {
            may_see(principal)?;
            let limit = parse_limit(limit)?;
            let after = cursor.map(decode_cursor).transpose()?;
            let page =
                self.catalog.list(&principal.tenant, limit, after.as_ref()).await.map_err(|e| AccessError::Unavailable(e.to_string()))?;
            let items = page.items.iter().filter(|r| r.tenant == principal.tenant).map(view).collect();
            Ok(ListView { items, next_cursor: page.next_after.as_ref().map(encode_cursor) })
        }
        .await;
        let decided =
            Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "content.list", resource: "content".into() };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let id = ContentId::parse("0192f0c4a1b27c3d8e9f001122334455").unwrap();
        assert_eq!(decode_cursor(&encode_cursor(&id)).unwrap(), id);
        for junk in ["", "x", "e30", &URL_SAFE_NO_PAD.encode(br#"{"after":"../other"}"#)] {
            assert_eq!(decode_cursor(junk).unwrap_err().status(), 400, "{junk}");
        }
        assert_eq!(parse_limit(None).unwrap(), 20);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten"] {
            assert!(parse_limit(Some(bad)).is_err());
        }
    }
}
