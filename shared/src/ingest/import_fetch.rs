//! Import from a URL, the fetch: the import queue's consumer streams each queued URL into its
//! content's source key, so the upload ends like any other (the S3 event, dispatch, the job).
//! The same consumer copies a bucket monitor's object (read with the monitor's access, only
//! through a monitor of the message's tenant) and moves a drop zone's file (only from that
//! tenant's folder, deleted once imported), with the same limits and checks.
//!
//! - The fetcher is the guarded client ([`crate::ingest::url_guard`]): no private, loopback or
//!   metadata address, on the first request or any redirect.
//! - Limits: at most `max_bytes` (counted as the bytes arrive, whatever `Content-Length` says)
//!   and `time_limit` for the whole transfer. A web page (an HTML login or error page served with
//!   a 200) is refused from its headers or first bytes, before anything is stored.
//! - Nothing half-written: bytes go up as a multipart upload of `part_size` parts (or one PUT
//!   when the file is smaller), aborted on any failure; the object appears only when complete.
//!   The record learns the file's size and type first, so dispatch checks the object against
//!   what arrived, as it checks an upload against its declaration.
//! - A refusal (forbidden address, 404, too large, not media) makes the content
//!   `FAILED_INVALID` with the reason; a failure that may clear (a 503, a broken connection) is
//!   tried again with the shared backoff, at most five times, then the content is `FAILED`.
//! - A message delivered twice, or after its import finished, does nothing twice: the record is
//!   no longer `AWAITING_UPLOAD`, or its source object already exists.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};
use tracing::Instrument;
use url::Url;

use crate::audit::{AuditEvent, AuditSink, Decision};
use crate::catalog::{CatalogError, ContentCatalog, ContentRecord, ContentStatus, Expect, Failure, Patch, SourceFile, UploadPlan};
use crate::ids::TenantId;
use crate::ingest::backoff::{self, MAX_ATTEMPTS};
use crate::ingest::dispatch::Handled;
use crate::ingest::media_types::{self, MediaType};
use crate::ingest::monitor_poll::MonitoredObjects;
use crate::ingest::ports::{
    BucketObject, CompletedPart, ContentFailed, DropBox, DroppedFile, FailureReports, FetchError, FetchedHead, Fetcher, ImportKind,
    ImportMessage, QueueMessage, Redelivery, SourceWriter,
};
use crate::ingest::rate_floor::{MinRate, RateFloor, TooSlow};
use crate::ingest::source_key::SourceKey;
use crate::ingest::upload::{UploadSettings, MAX_FILENAME_BYTES};
use crate::ingest::url_guard::shown;
use crate::metrics::tally::{self, Counted};

const MIB: u64 = 1024 * 1024;

/// The fetcher's limits, from configuration.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Largest file imported (the upload limit, `VAULTSTREAM_MAX_UPLOAD_BYTES`).
    pub max_bytes: u64,
    /// Bytes per multipart part (S3's minimum is 5 MiB), held in memory while sent.
    pub part_size: u64,
    /// The whole transfer, connection included (`VAULTSTREAM_IMPORT_TIME_LIMIT_SECONDS`).
    pub time_limit: Duration,
    /// The slowest a server may send once it has answered: below it, the import stops at the
    /// end of the window rather than holding its slot for the whole time limit.
    pub min_rate: MinRate,
}

impl ImportSettings {
    pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(840);
    pub const DEFAULT_PART_SIZE: u64 = 16 * MIB;

    pub fn new() -> Self {
        ImportSettings {
            max_bytes: UploadSettings::DEFAULT_MAX_BYTES,
            part_size: Self::DEFAULT_PART_SIZE,
            time_limit: Self::DEFAULT_TIME_LIMIT,
            min_rate: MinRate::DEFAULT,
        }
    }
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self::new()
    }
}

/// Why an import stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// The URL or what it answered will not do; trying again would not help.
    Refused(String),
    /// It may work later.
    Temporary(String),
    /// The record moved on meanwhile (another delivery finished it).
    Changed,
}

/// What arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Imported {
    size: u64,
    content_type: &'static str,
    parts: usize,
}

pub struct ImportWorker {
    pub catalog: Arc<dyn ContentCatalog>,
    pub sources: Arc<dyn SourceWriter>,
    pub fetcher: Arc<dyn Fetcher>,
    /// Reads a bucket monitor's objects with the monitor's access.
    pub objects: MonitoredObjects,
    /// The drop zones' files, moved into their source keys.
    pub drops: Arc<dyn DropBox>,
    pub failures: Arc<dyn FailureReports>,
    pub redelivery: Arc<dyn Redelivery>,
    pub audit: Arc<dyn AuditSink>,
    pub settings: ImportSettings,
}

/// The media type of what a response holds: its `Content-Type` when that is an accepted media
/// type, else its name's extension when it was sent as anything but text; a page is refused.
fn media_type(head: &FetchedHead, requested: &Url) -> Result<&'static MediaType, String> {
    let essence = head.content_type.as_deref().map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if let Some(media) = essence.as_deref().and_then(media_types::lookup) {
        return Ok(media);
    }
    if let Some(essence) = essence.as_deref().filter(|e| is_page(e)) {
        return Err(format!(
            "the URL answered with a {essence} document, not a media file (a login or error page?); give a direct link to the file"
        ));
    }
    [&head.final_url, requested].into_iter().find_map(|url| media_types::for_file_name(url.path())).ok_or_else(|| {
        format!(
            "cannot tell what kind of file the URL holds: it was served as {} and its name has no media extension; \
             serve it with a media Content-Type (one of {})",
            essence.as_deref().unwrap_or("no content type"),
            media_types::accepted_list()
        )
    })
}

fn is_page(essence: &str) -> bool {
    essence.starts_with("text/")
        || essence.ends_with("+xml")
        || ["application/json", "application/xml", "application/javascript"].contains(&essence)
}

/// The file's name as the record shows it: the URL's last path segment, decoded, if it makes a
/// plain file name.
fn file_name(url: &Url) -> String {
    let segment = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
    let decoded = percent_decode(segment);
    let plain = !decoded.is_empty()
        && decoded.len() <= MAX_FILENAME_BYTES
        && decoded != "."
        && decoded != ".."
        && !decoded.chars().any(|c| c.is_control() || c == '/' || c == '\\');
    if plain {
        decoded
    } else {
        "import".to_string()
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether a body starts like markup (what a server sends when the "file" is really a page),
/// decided on its first byte that is neither white space nor a byte-order mark, however the
/// body is cut into chunks: a server may send the white space alone first.
#[derive(Debug, Default)]
struct MarkupCheck {
    /// Bytes of the byte-order mark matched at the very start.
    bom: usize,
    /// A byte other than the byte-order mark's has been seen.
    past_bom: bool,
    decided: Option<bool>,
}

impl MarkupCheck {
    const BOM: &'static [u8] = b"\xEF\xBB\xBF";

    /// Feeds the next chunk: `Some(true)` once the body is known to start with `<`,
    /// `Some(false)` once it is known not to, `None` while only white space has come.
    fn feed(&mut self, chunk: &[u8]) -> Option<bool> {
        if self.decided.is_some() {
            return self.decided;
        }
        for &byte in chunk {
            if !self.past_bom && self.bom < Self::BOM.len() && byte == Self::BOM[self.bom] {
                self.bom += 1;
                continue;
            }
            if !self.past_bom && self.bom > 0 && self.bom < Self::BOM.len() {
                // A broken mark is binary, not text.
                self.decided = Some(false);
                return self.decided;
            }
            self.past_bom = true;
            if byte.is_ascii_whitespace() {
                continue;
            }
            self.decided = Some(byte == b'<');
            return self.decided;
        }
        None
    }
}

fn status_stop(status: u16) -> Option<Stop> {
    let reason = |what: &str| format!("the URL answered {status} {what}");
    Some(match status {
        200 => return None,
        401 | 403 => Stop::Refused(reason(
            "(it needs credentials, or its link has expired); give a link anyone may fetch, such as a fresh presigned URL",
        )),
        404 | 410 => Stop::Refused(reason("(there is no file there); check the link")),
        408 | 425 | 429 => Stop::Temporary(reason("(the server is busy)")),
        500..=599 => Stop::Temporary(reason("(a server error)")),
        _ => Stop::Refused(reason("instead of the file (200 OK); give a direct link to the file")),
    })
}

fn fetch_stop(e: FetchError) -> Stop {
    match e {
        FetchError::Refused(why) => Stop::Refused(why),
        FetchError::Failed(why) => Stop::Temporary(format!("fetching the file failed: {why}")),
    }
}

/// Where an import's file comes from.
#[derive(Clone, Copy)]
enum Origin<'a> {
    /// A URL, fetched by the guarded client.
    Url(&'a Url),
    /// A monitored bucket's object, read with the monitor's access.
    Object(&'a BucketObject),
    /// A file in the tenant's own drop zone.
    Dropped(&'a DroppedFile),
}

/// A multipart upload in progress, so it can be aborted whatever stops it.
#[derive(Default)]
struct Parts {
    upload_id: Option<String>,
    done: Vec<CompletedPart>,
}

impl ImportWorker {
    /// Handles a batch; returns the ids of messages to deliver again (`batchItemFailures`).
    pub async fn handle_batch(&self, messages: &[QueueMessage]) -> Vec<String> {
        crate::ingest::dispatch::retried(messages, |message| self.handle(message)).await
    }

    pub async fn handle(&self, message: &QueueMessage) -> Handled {
        let span = tracing::info_span!("import_fetch", request_id = %message.message_id, tenant = tracing::field::Empty, content_id = tracing::field::Empty);
        self.handle_in_span(message).instrument(span).await
    }

    async fn handle_in_span(&self, message: &QueueMessage) -> Handled {
        let import: ImportMessage = match serde_json::from_str(&message.body) {
            Ok(import) => import,
            Err(e) => {
                let reason = format!("ignored: not an import message ({e})");
                self.audit_decision(&TenantId::system(), "message", Decision::Deny, reason, message).await;
                return Handled::Done;
            }
        };
        tracing::Span::current().record("tenant", import.tenant.as_str()).record("content_id", import.content_id.as_str());
        let resource = format!("content/{}", import.content_id);
        let record = match self.catalog.get(&import.tenant, &import.content_id).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                let reason = "ignored: no content record of this tenant has this id".to_string();
                self.audit_decision(&import.tenant, &resource, Decision::Deny, reason, message).await;
                return Handled::Done;
            }
            Err(e) => return self.later(message, &e.to_string()).await,
        };
        if record.status != ContentStatus::AwaitingUpload || !matches!(record.upload, Some(UploadPlan::Import { .. })) {
            tracing::info!(status = %record.status, "the import was handled before; nothing to do");
            return Handled::Done;
        }
        let key = SourceKey::new(import.tenant.clone(), import.content_id.clone()).object_key();
        match self.sources.head(&key).await {
            Ok(Some(_)) => {
                tracing::info!("the file was imported by an earlier delivery; dispatch follows its event");
                return Handled::Done;
            }
            Ok(None) => {}
            Err(e) => return self.later(message, &e.to_string()).await,
        }
        let url = match Url::parse(&import.url) {
            Ok(url) => url,
            Err(e) => return self.refuse(message, &record, format!("the queued URL is not a URL ({e})")).await,
        };
        let source = match (import.kind, &import.object) {
            (ImportKind::UrlImport, None) => Origin::Url(&url),
            (ImportKind::BucketMonitor, Some(object)) => Origin::Object(object),
            (ImportKind::DropZone, None) => match &import.dropped {
                Some(dropped) if dropped.key.starts_with(&crate::ingest::drop_zone::drop_prefix(&import.tenant)) => {
                    Origin::Dropped(dropped)
                }
                _ => return self.refuse(message, &record, "the queued import names no file in the tenant's drop zone".into()).await,
            },
            _ => return self.refuse(message, &record, "the queued import names neither a URL nor an object".into()).await,
        };
        let origin = shown(&url);
        let mut parts = Parts::default();
        let outcome = self.transfer(&record, &key, &url, source, &mut parts).await;
        if outcome.is_err() {
            if let Some(upload_id) = &parts.upload_id {
                if let Err(e) = self.sources.abort_multipart(&key, upload_id).await {
                    // The bucket's lifecycle rule removes abandoned uploads after a day.
                    tracing::warn!(error = %e, "could not abort the partial upload");
                }
            }
        }
        match outcome {
            Ok(imported) => {
                tracing::info!(bytes = imported.size, parts = imported.parts, content_type = imported.content_type, "imported");
                if let Origin::Dropped(dropped) = source {
                    // Moved: the drop zone keeps only what is still to come in (or was refused).
                    if let Err(e) = self.drops.remove_dropped(&dropped.key).await {
                        tracing::warn!(error = %e, "could not remove the dropped file after its import");
                    }
                }
                let reason =
                    format!("imported {} bytes of {} from {origin} for {}", imported.size, imported.content_type, import.requested_by);
                self.audit_decision(&import.tenant, &resource, Decision::Allow, reason, message).await;
                Handled::Done
            }
            Err(Stop::Changed) => Handled::Done,
            Err(Stop::Refused(reason)) => self.refuse(message, &record, format!("{origin}: {reason}")).await,
            Err(Stop::Temporary(reason)) if message.receive_count >= MAX_ATTEMPTS => {
                self.give_up(message, &record, format!("{origin}: {reason} (after {MAX_ATTEMPTS} tries)")).await
            }
            Err(Stop::Temporary(reason)) => {
                let reason = format!("{origin}: {reason}");
                self.note_retry(message, &record, &reason).await;
                self.later(message, &reason).await
            }
        }
    }

    /// Streams the file into the source key (`url` names it: the link, or `s3://`/`gs://`).
    async fn transfer(
        &self,
        record: &ContentRecord,
        key: &str,
        url: &Url,
        source: Origin<'_>,
        parts: &mut Parts,
    ) -> Result<Imported, Stop> {
        let settings = &self.settings;
        let deadline = Instant::now() + settings.time_limit;
        let too_slow = || {
            Stop::Refused(format!(
                "the download did not finish within {} s, the import time limit; host the file where it downloads faster, or upload it",
                settings.time_limit.as_secs_f64()
            ))
        };
        let opened = async {
            match source {
                Origin::Url(url) => self.fetcher.get(url, &[]).await,
                Origin::Object(object) => self.objects.open(&record.tenant, object).await.map(|(_, body)| body),
                Origin::Dropped(dropped) => self.drops.open_dropped(&dropped.key, &dropped.etag).await,
            }
        };
        let mut body = timeout_at(deadline, opened).await.map_err(|_| too_slow())?.map_err(fetch_stop)?;
        let head = body.head().clone();
        if let Some(stop) = status_stop(head.status) {
            return Err(stop);
        }
        let too_large =
            || Stop::Refused(format!("the file is larger than the accepted {} bytes; import or upload a smaller file", settings.max_bytes));
        if head.content_length.is_some_and(|n| n > settings.max_bytes) {
            return Err(too_large());
        }
        let media = media_type(&head, url).map_err(Stop::Refused)?;
        let part_size = settings.part_size as usize;
        let mut buffer: Vec<u8> = Vec::with_capacity(head.content_length.map_or(part_size, |n| (n as usize).min(part_size)));
        let mut total = 0u64;
        let mut markup = MarkupCheck::default();
        let mut floor = RateFloor::start(settings.min_rate);
        let trickling = |TooSlow(got): TooSlow| {
            Stop::Refused(format!(
                "the server sent {got} bytes in {} s, less than the {} an import needs; host the file where it downloads faster, \
                 or upload it",
                settings.min_rate.window.as_secs_f64(),
                settings.min_rate.shown()
            ))
        };
        loop {
            // Each wait ends with the window too, so a silent server is cut off at its end.
            let chunk = match timeout_at(deadline.min(floor.window_end()), body.chunk()).await {
                Err(_) if Instant::now() >= deadline => return Err(too_slow()),
                Err(_) => {
                    floor.check().map_err(trickling)?;
                    continue;
                }
                Ok(Err(e)) => return Err(fetch_stop(e)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            floor.arrived(chunk.len() as u64).map_err(trickling)?;
            if markup.feed(&chunk) == Some(true) {
                return Err(Stop::Refused(
                    "the URL answered with a web page (its body is markup), not a media file; give a direct link to the file".into(),
                ));
            }
            total += chunk.len() as u64;
            if total > settings.max_bytes {
                return Err(too_large());
            }
            buffer.extend_from_slice(&chunk);
            while buffer.len() >= part_size {
                let rest = buffer.split_off(part_size);
                let part = std::mem::replace(&mut buffer, rest);
                self.send_part(key, media, parts, part).await?;
            }
        }
        if total == 0 {
            return Err(Stop::Refused("the URL answered with an empty file".into()));
        }
        // The record learns what arrived before the object exists: dispatch checks one against
        // the other, as it does for a creator's declaration.
        let source = SourceFile {
            filename: file_name(&head.final_url),
            content_type: media.content_type.to_string(),
            size_bytes: total,
            key: key.to_string(),
        };
        let expect = Expect::status(&[ContentStatus::AwaitingUpload]);
        let patch = Patch { source: Some(source), failure: Some(None), ..Default::default() };
        match self.catalog.update(&record.tenant, &record.content_id, &expect, &patch).await {
            Ok(_) => {}
            Err(CatalogError::Precondition(_)) => return Err(Stop::Changed),
            Err(e) => return Err(Stop::Temporary(e.to_string())),
        }
        let unavailable = |e: crate::ingest::ports::SourceError| Stop::Temporary(format!("storing the file failed: {e}"));
        if parts.upload_id.is_none() {
            self.sources.put_object(key, media.content_type, buffer).await.map_err(unavailable)?;
        } else {
            if !buffer.is_empty() {
                self.send_part(key, media, parts, buffer).await?;
            }
            let upload_id = parts.upload_id.clone().unwrap_or_default();
            self.sources.complete_multipart(key, &upload_id, &parts.done).await.map_err(unavailable)?;
            // Completed: nothing to abort any more.
            parts.upload_id = None;
        }
        Ok(Imported { size: total, content_type: media.content_type, parts: parts.done.len() })
    }

    async fn send_part(&self, key: &str, media: &MediaType, parts: &mut Parts, body: Vec<u8>) -> Result<(), Stop> {
        let unavailable = |e: crate::ingest::ports::SourceError| Stop::Temporary(format!("storing the file failed: {e}"));
        let upload_id = match &parts.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.sources.start_multipart(key, media.content_type).await.map_err(unavailable)?;
                parts.upload_id = Some(id.clone());
                id
            }
        };
        let part_number = parts.done.len() as u32 + 1;
        let etag = self.sources.upload_part(key, &upload_id, part_number, body).await.map_err(unavailable)?;
        parts.done.push(CompletedPart { part_number, etag });
        Ok(())
    }

    /// The URL will not do: the content is `FAILED_INVALID` with the reason, and the creator hears.
    async fn refuse(&self, message: &QueueMessage, record: &ContentRecord, reason: String) -> Handled {
        self.end(message, record, ContentStatus::FailedInvalid, Failure::new("import_refused", reason.clone())).await;
        self.audit_decision(
            &record.tenant,
            &format!("content/{}", record.content_id),
            Decision::Deny,
            format!("refused: {reason}"),
            message,
        )
        .await;
        Handled::Done
    }

    /// Attempts are exhausted: the content is `FAILED`, and operators hear too (the failures DLQ).
    async fn give_up(&self, message: &QueueMessage, record: &ContentRecord, reason: String) -> Handled {
        let failed = self.end(message, record, ContentStatus::Failed, Failure::new("import_failed", reason.clone())).await;
        match self.failures.dead_letter(&failed).await {
            Ok(()) => tally::count(Counted::DeadLetter),
            Err(e) => tracing::error!(error = %e, "could not dead-letter the failure"),
        }
        self.audit_decision(
            &record.tenant,
            &format!("content/{}", record.content_id),
            Decision::Deny,
            format!("failed: {reason}"),
            message,
        )
        .await;
        Handled::Done
    }

    async fn end(&self, message: &QueueMessage, record: &ContentRecord, status: ContentStatus, failure: Failure) -> ContentFailed {
        tracing::info!(status = %status, reason = %failure.message, "import ended without a file");
        let expect = Expect::status(&[ContentStatus::AwaitingUpload]);
        let patch = Patch { status: Some(status), failure: Some(Some(failure.clone())), ..Default::default() };
        if let Err(e) = self.catalog.update(&record.tenant, &record.content_id, &expect, &patch).await {
            tracing::error!(error = %e, "could not record the import's end");
        }
        let failed = ContentFailed {
            tenant: record.tenant.clone(),
            content_id: record.content_id.clone(),
            status: status.to_string(),
            reason: failure.message,
            job_id: None,
            attempts: message.receive_count,
        };
        if let Err(e) = self.failures.notify(&failed).await {
            tracing::error!(error = %e, "could not notify the creator");
        }
        failed
    }

    /// Shows the creator why the title still awaits its file while the import is retried.
    async fn note_retry(&self, message: &QueueMessage, record: &ContentRecord, reason: &str) {
        let wait = backoff::delay_after(message.receive_count).as_secs();
        let said = format!("{reason}; trying again in {wait} s (attempt {} of {MAX_ATTEMPTS})", message.receive_count);
        let patch = Patch { failure: Some(Some(Failure::new("import_retrying", said))), ..Default::default() };
        if let Err(e) =
            self.catalog.update(&record.tenant, &record.content_id, &Expect::status(&[ContentStatus::AwaitingUpload]), &patch).await
        {
            tracing::warn!(error = %e, "could not note the retry on the record");
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

    async fn audit_decision(&self, tenant: &TenantId, resource: &str, decision: Decision, reason: String, message: &QueueMessage) {
        let event = AuditEvent {
            tenant: tenant.clone(),
            actor: "import_fetch".into(),
            action: "content.import.fetch".into(),
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

#[cfg(test)]
mod tests {
    use super::MarkupCheck;

    fn decide(chunks: &[&[u8]]) -> Option<bool> {
        let mut check = MarkupCheck::default();
        chunks.iter().map(|c| check.feed(c)).find(Option::is_some).flatten()
    }

    #[test]
    fn markup_is_seen_however_the_body_is_chunked() {
        assert_eq!(decide(&[b"<html>"]), Some(true));
        assert_eq!(decide(&[b" \r\n", b"", b"\t <!doctype html>"]), Some(true));
        assert_eq!(decide(&[b"\xEF", b"\xBB\xBF", b"  ", b"<p>"]), Some(true), "a byte-order mark split across chunks");
        assert_eq!(decide(&[b"\x00\x00\x00\x18ftypisom"]), Some(false));
        assert_eq!(decide(&[b"  ", b"\x47\x40"]), Some(false));
        assert_eq!(decide(&[b"\xEF\xBB<"]), Some(false), "a broken mark is binary");
        assert_eq!(decide(&[b" ", b"\n"]), None, "white space alone decides nothing");
    }
}
