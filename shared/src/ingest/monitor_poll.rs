//! Cloud bucket monitors, the poll: on a schedule, every monitored prefix is listed, and each
//! object version not seen before that is a media file is imported once through the import
//! queue; the import's fetcher then copies it from the customer's bucket with the monitor's access
//! ([`MonitoredObjects`]), and the file takes the one path every door ends in.
//!
//! - **Once per version.** An object is known by the SHA-256 of its key and version (the S3 ETag,
//!   the GCS generation): a listing's digests are looked up a hundred at a time, and each one never
//!   seen is claimed with a conditional write before anything is imported. An object overwritten
//!   with new content is a new version, and a new title.
//! - **What is taken.** Objects whose name has a media extension; a `NAME.json` beside
//!   `NAME.mp4` in the same listing page is its sidecar (title, description, …). Folder markers,
//!   empty objects and other files are passed over; an object larger than the upload limit is
//!   refused and recorded.
//! - **Bounded.** At most [`MAX_LISTED_PER_POLL`] objects are listed and [`MAX_IMPORTS_PER_POLL`]
//!   imported per monitor and poll. A poll that stops at its listing limit leaves a cursor (the
//!   last key it reached) and the next resumes after it, so a prefix of any size is covered; a
//!   poll that reaches the end clears it, and the next starts over (new objects sort anywhere). A
//!   poll that stops at its import limit keeps the cursor where it was: the next lists the same
//!   keys again, finds the imported ones claimed, and imports the rest.
//! - **Recorded.** What each poll found is kept on the monitor (`last_polled_at`, `last_error`,
//!   `last_refusal`, the counts `GET /v1/monitors` shows); refusals and new errors are in the ledger.

use crate::ingest::fair_share;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::Instrument;

use crate::access::{AccessError, RequestMeta};
use crate::audit::{AuditEvent, AuditSink, Decision};
use crate::ids::TenantId;
use crate::ingest::import::ImportService;
use crate::ingest::media_types;
use crate::ingest::ports::{BucketObject, CloudBuckets, FetchError, FetchedBody, ListedObject, Monitor, MonitorStore, MonitorStoreError};
use crate::ingest::upload::sha256_hex;
use crate::metadata::sidecar::{self, Sidecar};
use crate::metadata::{Metadata, MetadataProvider, Source};

/// Objects listed per monitor and poll (ten listing pages).
pub const MAX_LISTED_PER_POLL: usize = 10_000;
/// New objects imported per monitor and poll; the rest wait for the next poll.
pub const MAX_IMPORTS_PER_POLL: usize = 100;

/// What one poll of one monitor did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    pub listed: usize,
    pub imported: u32,
    pub refused: u32,
    pub error: Option<String>,
}

/// The digest an object version is claimed by.
pub fn object_digest(object: &ListedObject) -> String {
    sha256_hex(format!("{}\n{}", object.key, object.version).as_bytes())
}

/// The object's name without its folders and extension: its title when no sidecar gives one.
fn title_from_key(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let tidy: String = stem.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let tidy = tidy.split_whitespace().collect::<Vec<_>>().join(" ");
    let title: String = tidy.chars().take(crate::ingest::upload::MAX_TITLE_CHARS).collect();
    if title.is_empty() {
        "Untitled".into()
    } else {
        title
    }
}

/// `NAME.json` for `NAME.EXT`.
fn sidecar_key(key: &str) -> Option<String> {
    let (stem, ext) = key.rsplit_once('.')?;
    (!ext.contains('/') && !ext.eq_ignore_ascii_case("json")).then(|| format!("{stem}.json"))
}

pub struct MonitorPoller {
    pub monitors: Arc<dyn MonitorStore>,
    pub imports: ImportService,
    pub buckets: Arc<dyn CloudBuckets>,
    pub audit: Arc<dyn AuditSink>,
    /// The upload limit: a larger object is refused before it is queued.
    pub max_bytes: u64,
}

impl MonitorPoller {
    /// Polls every monitor once, as feeds are polled: [`fair_share::CONCURRENT_POLLS`] at a time and at most
    /// [`fair_share::CONCURRENT_POLLS_PER_TENANT`] of one tenant's; returns how many were polled.
    pub async fn poll_all(&self, run_id: &str) -> Result<usize, MonitorStoreError> {
        let monitors = self.monitors.all().await?;
        let count = monitors.len();
        fair_share::poll_each(
            monitors,
            |m| m.tenant.clone(),
            |monitor| async move {
                self.poll(monitor, run_id).await;
            },
        )
        .await;
        Ok(count)
    }

    pub async fn poll(&self, monitor: Monitor, run_id: &str) -> PollOutcome {
        let span = tracing::info_span!("monitor_poll", request_id = %run_id, tenant = %monitor.tenant, monitor_id = %monitor.monitor_id);
        self.poll_in_span(monitor, run_id).instrument(span).await
    }

    async fn poll_in_span(&self, mut monitor: Monitor, run_id: &str) -> PollOutcome {
        let mut outcome = PollOutcome::default();
        let previous_error = monitor.last_error.take();
        monitor.last_polled_at = Some(crate::clock::now_rfc3339());
        let resume = monitor.cursor.clone();
        let mut after = None;
        let mut last_key = None;
        let mut ended = false;
        'pages: loop {
            let page = match self.buckets.list(&monitor, after.take(), resume.as_deref()).await {
                Ok(page) => page,
                Err(e) => {
                    outcome.error = Some(match e {
                        FetchError::Refused(why) => why,
                        FetchError::Failed(why) => format!("listing the bucket failed: {why}"),
                    });
                    break;
                }
            };
            outcome.listed += page.objects.len();
            match self.import_page(&mut monitor, &page.objects, run_id, &mut outcome).await {
                Ok(()) => last_key = page.objects.last().map(|o| o.key.clone()).or(last_key),
                Err(Stop::Enough) => break 'pages,
                Err(Stop::Store(e)) => {
                    outcome.error = Some(format!("the monitor's records could not be read: {e}"));
                    break;
                }
            }
            match page.next {
                Some(next) if outcome.listed < MAX_LISTED_PER_POLL => after = Some(next),
                Some(_) => break,
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if outcome.error.is_none() && outcome.imported + outcome.refused < MAX_IMPORTS_PER_POLL as u32 {
            monitor.cursor = if ended { None } else { last_key.or(resume) };
        }
        monitor.imported += outcome.imported;
        monitor.refused += outcome.refused;
        monitor.last_error = outcome.error.clone();
        if outcome.error.is_some() && outcome.error != previous_error {
            let reason = format!("poll failed: {}", outcome.error.clone().unwrap_or_default());
            self.audit_decision(&monitor, "monitor.poll", Decision::Deny, reason, run_id).await;
        }
        tracing::info!(listed = outcome.listed, imported = outcome.imported, refused = outcome.refused, error = ?outcome.error, "monitor polled");
        match self.monitors.record_poll(&monitor).await {
            Ok(()) | Err(MonitorStoreError::Absent(_)) => {}
            Err(e) => tracing::warn!(error = %e, "could not record the poll"),
        }
        outcome
    }

    async fn import_page(
        &self,
        monitor: &mut Monitor,
        objects: &[ListedObject],
        run_id: &str,
        outcome: &mut PollOutcome,
    ) -> Result<(), Stop> {
        let names: HashSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        let media: Vec<(&ListedObject, String)> = objects
            .iter()
            .filter(|o| o.size > 0 && !o.key.ends_with('/') && media_types::for_file_name(&o.key).is_some())
            .map(|o| (o, object_digest(o)))
            .collect();
        let digests: Vec<String> = media.iter().map(|(_, d)| d.clone()).collect();
        let unclaimed: HashSet<String> = self.monitors.unclaimed(monitor, &digests).await.map_err(Stop::Store)?.into_iter().collect();
        let sidecars: HashMap<&str, &str> = objects.iter().map(|o| (o.key.as_str(), o.version.as_str())).collect();
        for (object, digest) in media.into_iter().filter(|(_, d)| unclaimed.contains(d)) {
            if outcome.imported + outcome.refused >= MAX_IMPORTS_PER_POLL as u32 {
                return Err(Stop::Enough);
            }
            match self.monitors.claim_object(monitor, &digest, &object.key).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Err(Stop::Store(e)),
            }
            let sidecar = match sidecar_key(&object.key).filter(|k| names.contains(k.as_str())) {
                Some(key) => self.read_sidecar(monitor, &key, sidecars.get(key.as_str()).copied().unwrap_or_default()).await,
                None => Metadata::default(),
            };
            let result = if object.size > self.max_bytes {
                Err(format!("{} bytes, more than the accepted {}; upload it in parts or raise the limit", object.size, self.max_bytes))
            } else {
                let described = describe(&object.key, sidecar);
                let found =
                    BucketObject { monitor_id: monitor.monitor_id.clone(), key: object.key.clone(), version: object.version.clone() };
                let meta = RequestMeta { request_id: run_id.to_string(), source_ip: None, now: crate::clock::now_seconds() };
                match self.imports.start_for_object(monitor, &digest, found, described, &meta).await {
                    Ok(grant) => Ok(grant.record.content_id.to_string()),
                    Err(AccessError::BadRequest(why)) => Err(why),
                    Err(e) => {
                        tracing::warn!(error = %e, "the import could not start; the object waits for the next poll");
                        if let Err(e) = self.monitors.release_object(monitor, &digest).await {
                            tracing::error!(error = %e, "could not give the claim back; the object is skipped");
                        }
                        continue;
                    }
                }
            };
            let settled = match &result {
                Ok(content_id) => {
                    outcome.imported += 1;
                    format!("imported as {content_id}")
                }
                Err(why) => {
                    outcome.refused += 1;
                    format!("refused: {why}")
                }
            };
            if let Err(e) = self.monitors.settle_object(monitor, &digest, &settled).await {
                tracing::warn!(error = %e, "could not record the object's outcome");
            }
            if let Err(why) = result {
                let shown: String = object.key.chars().take(200).collect();
                monitor.last_refusal = Some(format!("{shown:?}: {why}"));
                self.audit_decision(monitor, "monitor.object", Decision::Deny, format!("object {shown:?} refused: {why}"), run_id).await;
            }
        }
        Ok(())
    }

    /// A sidecar's metadata; one that cannot be read or is not JSON lends nothing.
    async fn read_sidecar(&self, monitor: &Monitor, key: &str, version: &str) -> Metadata {
        let read = async {
            let mut body: Box<dyn FetchedBody> = self.buckets.open(monitor, key, version).await.map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            while let Some(chunk) = body.chunk().await.map_err(|e| e.to_string())? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > sidecar::MAX_BYTES {
                    break;
                }
            }
            Ok::<_, String>(bytes)
        };
        match read.await {
            Ok(bytes) => {
                let provided = Sidecar { bytes }.provide();
                if !provided.ignored.is_empty() {
                    tracing::info!(sidecar = key, ignored = ?provided.ignored, "parts of the sidecar were ignored");
                }
                provided.metadata
            }
            Err(e) => {
                tracing::warn!(sidecar = key, error = %e, "the sidecar could not be read; the object is imported without it");
                Metadata::default()
            }
        }
    }

    async fn audit_decision(&self, monitor: &Monitor, action: &str, decision: Decision, reason: String, run_id: &str) {
        let event = AuditEvent {
            tenant: monitor.tenant.clone(),
            actor: "monitor_poll".into(),
            action: action.into(),
            resource: format!("monitor/{}", monitor.monitor_id),
            decision,
            reason,
            request_id: run_id.to_string(),
            source_ip: None,
        };
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "audit append failed");
        }
    }
}

/// The object's description: its sidecar's, and its name for a title when the sidecar has none.
fn describe(key: &str, sidecar: Metadata) -> crate::metadata::Described {
    let named = Metadata { title: Some(title_from_key(key)), ..Default::default() };
    if sidecar.title.is_some() {
        crate::metadata::merge([(Source::Sidecar, sidecar)])
    } else {
        crate::metadata::merge([(Source::Sidecar, sidecar), (Source::Request, named)])
    }
}

enum Stop {
    /// This poll has done its share.
    Enough,
    Store(MonitorStoreError),
}

/// What the import's fetcher reads a monitored object through: the monitor, looked up in the
/// message's tenant (so a message can name no other tenant's monitor), and its bucket access.
pub struct MonitoredObjects {
    pub monitors: Arc<dyn MonitorStore>,
    pub buckets: Arc<dyn CloudBuckets>,
}

impl MonitoredObjects {
    pub async fn open(&self, tenant: &TenantId, object: &BucketObject) -> Result<(Monitor, Box<dyn FetchedBody>), FetchError> {
        let monitor = match self.monitors.get(tenant, &object.monitor_id).await {
            Ok(Some(monitor)) => monitor,
            Ok(None) => {
                return Err(FetchError::Refused(format!(
                    "monitor {} was removed before its object was copied; add the monitor again to import it",
                    object.monitor_id
                )))
            }
            Err(e) => return Err(FetchError::Failed(e.to_string())),
        };
        let body = self.buckets.open(&monitor, &object.key, &object.version).await?;
        Ok((monitor, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_sidecars_come_from_the_key() {
        assert_eq!(title_from_key("incoming/2026/Launch day.mov"), "Launch day");
        assert_eq!(title_from_key("a/.mp4"), "Untitled");
        assert_eq!(title_from_key("a/b\u{7}c.mp4"), "b c");
        assert_eq!(sidecar_key("incoming/film.mp4").as_deref(), Some("incoming/film.json"));
        assert_eq!(sidecar_key("incoming/film.json"), None);
        assert_eq!(sidecar_key("in.coming/film"), None);
    }
}
