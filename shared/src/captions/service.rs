//! Attaching and removing a title's caption tracks. A sidecar is read and rewritten as clean
//! WebVTT before anything is stored; the file is content-addressed (`captions/{track}-{digest}.vtt`)
//! and published before the record names it, so a reader following the record always finds its
//! file; the record's track list changes only with a conditional write on its revision, so two
//! creators editing tracks at once cannot lose one another's change.

use std::sync::Arc;

use aws_lc_rs::digest;

use crate::access::{content_resource, record, AccessError, Decided, RequestMeta, INVALID_PART};
use crate::audit::AuditSink;
use crate::captions::track::{TrackRequest, TrackSettings, MAX_TRACKS};
use crate::captions::{CaptionStore, Captions};
use crate::catalog::{CaptionTrack, CatalogError, ContentCatalog, ContentRecord, ContentStatus, Expect, Patch};
use crate::ids::{ContentId, TrackName};
use crate::ladder::{Container, Profile};
use crate::principal::{Principal, Scope};

/// The largest sidecar accepted: a feature film's captions are about 100 KB.
pub const MAX_CAPTION_BYTES: usize = 1024 * 1024;
/// Concurrent edits are retried this often before the caller is asked to try again.
const MAX_ATTEMPTS: usize = 5;

pub struct CaptionService {
    pub catalog: Arc<dyn ContentCatalog>,
    pub store: Arc<dyn CaptionStore>,
    pub audit: Arc<dyn AuditSink>,
}

fn unavailable(e: impl std::fmt::Display) -> AccessError {
    AccessError::Unavailable(e.to_string())
}

fn may_write(principal: &Principal) -> Result<(), AccessError> {
    if principal.may(Scope::ContentWrite) {
        Ok(())
    } else {
        Err(AccessError::Forbidden("changing captions needs the content:write scope".into()))
    }
}

type Parsed<T> = Result<T, AccessError>;

/// The path's content id and track name, parsed, and the ledger resource they make.
fn target(content_id: &str, track: &str) -> (Parsed<ContentId>, Parsed<TrackName>, String) {
    let content = ContentId::parse(content_id).map_err(|e| AccessError::BadRequest(e.to_string()));
    let name = TrackName::parse(track).map_err(|e| AccessError::BadRequest(e.to_string()));
    let resource = resource(&content, &name);
    (content, name, resource)
}

fn resource(content: &Parsed<ContentId>, track: &Parsed<TrackName>) -> String {
    match track {
        Ok(t) if content.is_ok() => format!("{}/captions/{t}", content_resource(content)),
        _ => format!("{}/captions/{INVALID_PART}", content_resource(content)),
    }
}

/// The container a title's segments are in, which sets where its presentation starts.
fn container(record: &ContentRecord) -> Container {
    Profile::built_in(&record.profile).map(|p| p.container).unwrap_or_default()
}

impl CaptionService {
    /// Publishes `body` (SRT or WebVTT) as track `track` of the content, replacing a track of
    /// that name; returns the title's tracks.
    pub async fn put(
        &self,
        principal: &Principal,
        content_id: &str,
        track: &str,
        request: &TrackRequest,
        body: &[u8],
        meta: &RequestMeta,
    ) -> Result<Vec<CaptionTrack>, AccessError> {
        let (content, name, resource) = target(content_id, track);
        let outcome = async {
            may_write(principal)?;
            let (content, name) = (content?, name?);
            let settings = request.settle(&name)?;
            if body.len() > MAX_CAPTION_BYTES {
                return Err(AccessError::TooLarge(format!(
                    "the captions are {} bytes; the most a track may be is {MAX_CAPTION_BYTES}",
                    body.len()
                )));
            }
            let captions = Captions::parse(body).map_err(|e| AccessError::BadRequest(format!("captions: {e}")))?;
            let current = self.writable(principal, &content).await?;
            let webvtt = captions.to_webvtt(container(&current).presentation_start_90khz());
            let digest = hex::encode(&digest::digest(&digest::SHA256, webvtt.as_bytes()).as_ref()[..8]);
            let file = format!("captions/{name}-{digest}.vtt");
            self.store.put(&principal.tenant, &content, &file, &webvtt).await.map_err(unavailable)?;
            let published = CaptionTrack {
                track: name.clone(),
                language: settings.language.clone(),
                label: settings.label.clone(),
                default: settings.default,
                forced: settings.forced,
                file: file.clone(),
                format: captions.format,
                cues: captions.cues.len() as u32,
                end_seconds: captions.end_ms() as f64 / 1000.0,
            };
            let change = |tracks: &[CaptionTrack]| with_track(tracks, &published, &settings);
            let (before, after) = match self.change(principal, &content, current, change).await {
                Ok(done) => done,
                Err(e) => {
                    // Not named by any record: take it back (a same-digest file of the track stays).
                    if !self.named(principal, &content, &file).await {
                        let _ = self.store.delete(&principal.tenant, &content, &file).await;
                    }
                    return Err(e);
                }
            };
            self.retire(principal, &content, &before, &after).await;
            tracing::info!(track = %name, cues = published.cues, format = published.format.as_str(), "captions published");
            Ok(after)
        }
        .await;
        let decided = Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "captions.write", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    /// Removes track `track` and its file; returns the title's remaining tracks.
    pub async fn delete(
        &self,
        principal: &Principal,
        content_id: &str,
        track: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<CaptionTrack>, AccessError> {
        let (content, name, resource) = target(content_id, track);
        let outcome = async {
            may_write(principal)?;
            let (content, name) = (content?, name?);
            let current = self.writable(principal, &content).await?;
            let change = |tracks: &[CaptionTrack]| {
                if !tracks.iter().any(|t| t.track == name) {
                    return Err(AccessError::NotFound(format!("caption track {name} of content {content}")));
                }
                Ok(tracks.iter().filter(|t| t.track != name).cloned().collect())
            };
            let (before, after) = self.change(principal, &content, current, change).await?;
            self.retire(principal, &content, &before, &after).await;
            Ok(after)
        }
        .await;
        let decided = Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "captions.delete", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    /// The caller's own record, in a state that may still be played.
    async fn writable(&self, principal: &Principal, content: &ContentId) -> Result<ContentRecord, AccessError> {
        let stored = self.catalog.get(&principal.tenant, content).await.map_err(unavailable)?;
        let record = stored.filter(|r| r.tenant == principal.tenant).ok_or_else(|| AccessError::NotFound(format!("content {content}")))?;
        if matches!(record.status, ContentStatus::Failed | ContentStatus::FailedInvalid) {
            return Err(AccessError::WrongState(format!(
                "content {content} is {}; it will never play, so it takes no captions (upload the title again)",
                record.status
            )));
        }
        Ok(record)
    }

    /// Applies `change` to the track list with a conditional write on its revision, reading
    /// again and retrying when another edit got there first. Returns the lists before and after.
    async fn change(
        &self,
        principal: &Principal,
        content: &ContentId,
        mut current: ContentRecord,
        change: impl Fn(&[CaptionTrack]) -> Result<Vec<CaptionTrack>, AccessError>,
    ) -> Result<(Vec<CaptionTrack>, Vec<CaptionTrack>), AccessError> {
        for _ in 0..MAX_ATTEMPTS {
            let tracks = change(&current.captions)?;
            let expect = Expect { captions_revision: Some(current.captions_revision), ..Default::default() };
            let patch = Patch { captions: Some(tracks.clone()), ..Default::default() };
            match self.catalog.update(&principal.tenant, content, &expect, &patch).await {
                Ok(_) => return Ok((current.captions, tracks)),
                Err(CatalogError::Precondition(_)) => current = self.writable(principal, content).await?,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(AccessError::Unavailable(format!("the captions of content {content} kept changing; try again")))
    }

    async fn named(&self, principal: &Principal, content: &ContentId, file: &str) -> bool {
        match self.catalog.get(&principal.tenant, content).await {
            Ok(Some(r)) => r.captions.iter().any(|t| t.file == file),
            // When in doubt, keep the file: an orphan costs bytes, a missing one breaks playback.
            _ => true,
        }
    }

    /// Deletes the files no track names any more. A failure leaves an orphan, never a gap.
    async fn retire(&self, principal: &Principal, content: &ContentId, before: &[CaptionTrack], after: &[CaptionTrack]) {
        for old in before.iter().filter(|old| !after.iter().any(|t| t.file == old.file)) {
            if let Err(e) = self.store.delete(&principal.tenant, content, &old.file).await {
                tracing::warn!(error = %e, file = %old.file, "a replaced caption file could not be deleted");
            }
        }
    }
}

/// The track list with `published` in place of any track of its name, at most one default.
fn with_track(tracks: &[CaptionTrack], published: &CaptionTrack, settings: &TrackSettings) -> Result<Vec<CaptionTrack>, AccessError> {
    let mut out: Vec<CaptionTrack> = tracks.iter().filter(|t| t.track != published.track).cloned().collect();
    if out.len() >= MAX_TRACKS {
        return Err(AccessError::WrongState(format!(
            "the title already has {MAX_TRACKS} caption tracks, the most it may have; delete one first"
        )));
    }
    if settings.default {
        for t in &mut out {
            t.default = false;
        }
    }
    out.push(published.clone());
    out.sort_by(|a, b| a.track.cmp(&b.track));
    Ok(out)
}
