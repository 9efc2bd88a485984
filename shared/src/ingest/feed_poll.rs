//! Feed import, the poll: on a schedule, every subscribed feed is fetched (conditionally: the
//! last answer's `ETag` and `Last-Modified` go back as `If-None-Match` / `If-Modified-Since`, so
//! an unchanged feed costs a 304), parsed (RSS 2.0, Atom, Media RSS, with `feed-rs`), and each
//! item not seen before that carries a video or audio enclosure is imported through the URL
//! import ([`crate::ingest::import`]) with the item's title, description and date as its
//! metadata (source `feed`).
//!
//! - **Once per item.** An item is claimed by the SHA-256 of its GUID (Atom `id`, RSS `guid`,
//!   what feed-rs derives from its link or title, or, for an item with none of those, a digest of
//!   its enclosure URL and its content) with a conditional write before anything is imported:
//!   the same item in a later poll, or in two overlapping polls, is imported once.
//! - **Feeds are hostile documents.** The feed is fetched by the guarded client (no private or
//!   metadata address, on the feed or any enclosure); at most [`MAX_FEED_BYTES`] are read, within
//!   [`FEED_TIME_LIMIT`]; a document type declaration is refused before parsing, since its
//!   entities can expand into gigabytes (the billion laughs); an item whose title fails the
//!   checks (over 200 characters, control characters, direction overrides) is refused alone.
//! - **Recorded.** What each poll found is kept on the feed (`last_polled_at`, `last_error`, the
//!   counts `GET /v1/feeds` shows); every refused item, and every new poll error, is in the ledger.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};
use tracing::Instrument;
use url::Url;

use crate::access::{AccessError, RequestMeta};
use crate::audit::{AuditEvent, AuditSink, Decision};
use crate::ingest::fair_share;
use crate::ingest::import::ImportService;
use crate::ingest::media_types;
use crate::ingest::ports::{Feed, FeedStore, FeedStoreError, FetchError, Fetcher};
use crate::ingest::rate_floor::{MinRate, RateFloor, TooSlow};
use crate::ingest::upload::sha256_hex;
use crate::ingest::url_guard::shown;
use crate::metadata::feed::FeedItem;

/// The largest feed read (a feed of a few hundred items is well under 1 MiB).
pub const MAX_FEED_BYTES: usize = 5 * 1024 * 1024;
/// A whole feed fetch, connection included.
pub const FEED_TIME_LIMIT: Duration = Duration::from_secs(30);
/// The slowest a feed may arrive: a feed of a few KiB that trickles is cut off after one window.
pub const FEED_MIN_RATE: MinRate = MinRate { min_bytes: 4 * 1024, window: Duration::from_secs(5) };

/// New items imported per feed and poll; the rest wait for the next poll.
pub const MAX_ITEMS_PER_POLL: usize = 50;
/// Settled items a feed remembers between polls (a feed lists its latest few dozen).
pub const MAX_SEEN: usize = 500;

/// A new item worth importing: its GUID, its media enclosure, and what it says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub guid: String,
    pub media: Url,
    pub item: FeedItem,
}

/// What a fetch of a feed gave.
enum Fetched {
    NotModified,
    Body { bytes: Vec<u8>, etag: Option<String>, last_modified: Option<String> },
}

/// What one poll of one feed did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    pub imported: u32,
    pub refused: u32,
    pub unchanged: bool,
    pub error: Option<String>,
}

/// Whether the document declares a document type (and so may declare entities): what comes
/// before the root element, past processing instructions and comments, is a `<!DOCTYPE`.
fn declares_dtd(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        let Some(start) = rest.iter().position(|b| *b == b'<') else { return false };
        rest = &rest[start..];
        let closing: &[u8] = if rest.starts_with(b"<?") {
            b"?>"
        } else if rest.starts_with(b"<!--") {
            b"-->"
        } else {
            return rest.get(..9).is_some_and(|tag| tag.eq_ignore_ascii_case(b"<!DOCTYPE")) || rest.starts_with(b"<!ENTITY");
        };
        match rest.windows(closing.len()).position(|w| w == closing) {
            Some(end) => rest = &rest[end + closing.len()..],
            None => return false,
        }
    }
}

fn is_media_type(essence: &str) -> bool {
    let essence = essence.to_ascii_lowercase();
    essence.starts_with("video/") || essence.starts_with("audio/") || media_types::lookup(&essence).is_some()
}

/// The items of a feed that carry a media file, oldest first (feeds list newest first).
pub fn entries(bytes: &[u8], feed_url: &Url) -> Result<Vec<FeedEntry>, String> {
    if declares_dtd(bytes) {
        return Err("the feed declares a document type (<!DOCTYPE> or <!ENTITY>), whose entities can expand without bound \
                    (the billion laughs); VaultStream reads feeds without one"
            .into());
    }
    // Relative links (enclosures, Atom hrefs) resolve against the feed's own address. An item
    // with neither a GUID nor a link nor a title would get a random id from feed-rs, a new one
    // at every parse: it gets none here, and a stable one from its content below.
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        .id_generator(|links, title, uri| match (links.first(), title, uri) {
            (None, None, _) | (None, _, None) => String::new(),
            _ => feed_rs::parser::generate_id(links, title, uri),
        })
        .build();
    let feed = parser.parse(bytes).map_err(|e| format!("not an RSS, Atom or JSON feed: {e}"))?;
    let mut found = Vec::new();
    for entry in feed.entries.iter().rev() {
        // RSS enclosures and Media RSS content are media objects; Atom enclosures are links.
        let from_media = entry.media.iter().flat_map(|m| m.content.iter()).find_map(|c| {
            let typed = c.content_type.as_ref().map(|t| is_media_type(t.as_ref()));
            let url = c.url.as_ref()?;
            let by_name = media_types::for_file_name(url.path()).is_some();
            (typed.unwrap_or(by_name)).then(|| url.to_string())
        });
        let from_links = || {
            entry.links.iter().find_map(|l| {
                let enclosure = l.rel.as_deref() == Some("enclosure");
                let typed = l.media_type.as_deref().map(is_media_type).unwrap_or_else(|| media_types::for_file_name(&l.href).is_some());
                (enclosure && typed).then(|| l.href.clone())
            })
        };
        let Some(link) = from_media.or_else(from_links) else { continue };
        let Ok(media) = feed_url.join(&link) else { continue };
        let media_object = entry.media.first();
        let item = FeedItem {
            title: entry
                .title
                .as_ref()
                .map(|t| t.content.clone())
                .or_else(|| media_object.and_then(|m| m.title.as_ref()).map(|t| t.content.clone())),
            description: entry
                .summary
                .as_ref()
                .map(|t| t.content.clone())
                .or_else(|| media_object.and_then(|m| m.description.as_ref()).map(|t| t.content.clone())),
            published: entry.published.or(entry.updated).map(|d| d.to_rfc3339()),
        };
        let guid = if entry.id.is_empty() { derived_guid(&media, &item) } else { entry.id.clone() };
        found.push(FeedEntry { guid, media, item });
    }
    Ok(found)
}

/// The identity of an item that names none: a digest of its enclosure and what it says of
/// itself, the same at every poll while the item is unchanged.
fn derived_guid(media: &Url, item: &FeedItem) -> String {
    let canonical = serde_json::json!([media.as_str(), item.title, item.description, item.published]).to_string();
    format!("derived:{}", sha256_hex(canonical.as_bytes()))
}

pub struct FeedPoller {
    pub feeds: Arc<dyn FeedStore>,
    pub imports: ImportService,
    pub fetcher: Arc<dyn Fetcher>,
    pub audit: Arc<dyn AuditSink>,
}

impl FeedPoller {
    /// Polls every feed once, [`fair_share::CONCURRENT_POLLS`] at a time and at most
    /// [`fair_share::CONCURRENT_POLLS_PER_TENANT`] of one tenant's; returns how many were polled.
    pub async fn poll_all(&self, run_id: &str) -> Result<usize, FeedStoreError> {
        let feeds = self.feeds.all().await?;
        let count = feeds.len();
        fair_share::poll_each(
            feeds,
            |f| f.tenant.clone(),
            |feed| async move {
                self.poll(feed, run_id).await;
            },
        )
        .await;
        Ok(count)
    }

    pub async fn poll(&self, feed: Feed, run_id: &str) -> PollOutcome {
        let span = tracing::info_span!("feed_poll", request_id = %run_id, tenant = %feed.tenant, feed_id = %feed.feed_id);
        self.poll_in_span(feed, run_id).instrument(span).await
    }

    async fn poll_in_span(&self, mut feed: Feed, run_id: &str) -> PollOutcome {
        let mut outcome = PollOutcome::default();
        let previous_error = feed.last_error.take();
        feed.last_polled_at = Some(crate::clock::now_rfc3339());
        let read = match Url::parse(&feed.url) {
            Ok(url) => self.read(&feed, &url).await.and_then(|fetched| match fetched {
                Fetched::NotModified => Ok(None),
                Fetched::Body { bytes, etag, last_modified } => Ok(Some((entries(&bytes, &url)?, etag, last_modified))),
            }),
            Err(e) => Err(format!("the feed URL is not a URL ({e})")),
        };
        match read {
            Err(why) => outcome.error = Some(why),
            Ok(None) => outcome.unchanged = true,
            Ok(Some((items, etag, last_modified))) => {
                if self.import_items(&mut feed, items, run_id, &mut outcome).await {
                    feed.etag = etag;
                    feed.last_modified = last_modified;
                }
            }
        }
        feed.imported += outcome.imported;
        feed.refused += outcome.refused;
        feed.last_error = outcome.error.clone();
        if outcome.error.is_some() && outcome.error != previous_error {
            let reason = format!("poll failed: {}", outcome.error.clone().unwrap_or_default());
            self.audit_decision(&feed, "feed.poll", Decision::Deny, reason, run_id).await;
        }
        tracing::info!(imported = outcome.imported, refused = outcome.refused, unchanged = outcome.unchanged, error = ?outcome.error, "feed polled");
        match self.feeds.record_poll(&feed).await {
            Ok(()) | Err(FeedStoreError::Absent(_)) => {}
            Err(e) => tracing::warn!(error = %e, "could not record the poll"),
        }
        outcome
    }

    /// Imports the items not seen before, up to [`MAX_ITEMS_PER_POLL`]; false when some are left
    /// for the next poll (which must then not be answered 304). Remembers what is settled.
    async fn import_items(&self, feed: &mut Feed, items: Vec<FeedEntry>, run_id: &str, outcome: &mut PollOutcome) -> bool {
        let known: std::collections::HashSet<String> = std::mem::take(&mut feed.seen).into_iter().collect();
        let mut settled = Vec::new();
        let mut complete = true;
        let mut taken = 0;
        for entry in items {
            let item = sha256_hex(entry.guid.as_bytes());
            if known.contains(&item) {
                settled.push(item);
                continue;
            }
            let imported = self.import(feed, &item, &entry, run_id).await;
            match imported {
                Imported::New => outcome.imported += 1,
                Imported::Refused => outcome.refused += 1,
                Imported::Seen => {
                    settled.push(item);
                    continue;
                }
                // The store or the import could not be reached: this item and the rest wait.
                Imported::Later => {
                    complete = false;
                    break;
                }
            }
            settled.push(item);
            taken += 1;
            if taken >= MAX_ITEMS_PER_POLL {
                complete = false;
                break;
            }
        }
        // The newest last, as the feed lists them oldest first here.
        let keep = settled.len().saturating_sub(MAX_SEEN);
        feed.seen = settled.split_off(keep);
        complete
    }

    /// The feed's body, or that it has not changed, or why not.
    async fn read(&self, feed: &Feed, url: &Url) -> Result<Fetched, String> {
        let mut headers = vec![("accept", "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5".to_string())];
        if let Some(etag) = &feed.etag {
            headers.push(("if-none-match", etag.clone()));
        }
        if let Some(modified) = &feed.last_modified {
            headers.push(("if-modified-since", modified.clone()));
        }
        let deadline = Instant::now() + FEED_TIME_LIMIT;
        let too_slow = || format!("the feed did not arrive within {} s", FEED_TIME_LIMIT.as_secs());
        let failed = |e: FetchError| match e {
            FetchError::Refused(why) => why,
            FetchError::Failed(why) => format!("fetching the feed failed: {why}"),
        };
        let mut body = timeout_at(deadline, self.fetcher.get(url, &headers)).await.map_err(|_| too_slow())?.map_err(failed)?;
        let head = body.head().clone();
        match head.status {
            200 => {}
            304 => return Ok(Fetched::NotModified),
            status => return Err(format!("the feed answered {status} instead of 200 OK")),
        }
        if head.content_length.is_some_and(|n| n > MAX_FEED_BYTES as u64) {
            return Err(format!("the feed is larger than {MAX_FEED_BYTES} bytes, more than any feed VaultStream reads"));
        }
        let mut bytes = Vec::new();
        let mut floor = RateFloor::start(FEED_MIN_RATE);
        let trickling = |TooSlow(got): TooSlow| {
            format!(
                "the feed server sent {got} bytes in {} s, less than the {} a feed needs",
                FEED_MIN_RATE.window.as_secs(),
                FEED_MIN_RATE.shown()
            )
        };
        loop {
            let next = match timeout_at(deadline.min(floor.window_end()), body.chunk()).await {
                Err(_) if Instant::now() >= deadline => return Err(too_slow()),
                Err(_) => {
                    floor.check().map_err(trickling)?;
                    continue;
                }
                Ok(next) => next.map_err(failed)?,
            };
            if let Some(chunk) = &next {
                floor.arrived(chunk.len() as u64).map_err(trickling)?;
            }
            match next {
                None => break,
                Some(chunk) => {
                    if bytes.len() + chunk.len() > MAX_FEED_BYTES {
                        return Err(format!("the feed is larger than {MAX_FEED_BYTES} bytes, more than any feed VaultStream reads"));
                    }
                    bytes.extend_from_slice(&chunk);
                }
            }
        }
        Ok(Fetched::Body { bytes, etag: head.etag, last_modified: head.last_modified })
    }

    async fn import(&self, feed: &mut Feed, item: &str, entry: &FeedEntry, run_id: &str) -> Imported {
        match self.feeds.claim_item(feed, item, &entry.guid).await {
            Ok(true) => {}
            Ok(false) => return Imported::Seen,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim an item; it waits for the next poll");
                return Imported::Later;
            }
        }
        let outcome = match entry.item.checked() {
            Err(why) => Err(why),
            Ok((metadata, _ignored)) => {
                let meta = RequestMeta { request_id: run_id.to_string(), source_ip: None, now: crate::clock::now_seconds() };
                match self.imports.start_for_feed(feed, item, &entry.media, metadata, &meta).await {
                    Ok(grant) => Ok(grant.record.content_id.to_string()),
                    Err(AccessError::BadRequest(why)) => Err(why),
                    Err(e) => {
                        tracing::warn!(error = %e, "the import could not start; the item waits for the next poll");
                        if let Err(e) = self.feeds.release_item(feed, item).await {
                            tracing::error!(error = %e, "could not give the claim back; the item is skipped");
                        }
                        return Imported::Later;
                    }
                }
            }
        };
        let (settled, imported) = match &outcome {
            Ok(content_id) => (format!("imported as {content_id}"), Imported::New),
            Err(why) => (format!("refused: {why}"), Imported::Refused),
        };
        if let Err(e) = self.feeds.settle_item(feed, item, &settled).await {
            tracing::warn!(error = %e, "could not record the item's outcome");
        }
        if let Err(why) = outcome {
            let title = entry.item.title.as_deref().unwrap_or("").chars().take(80).collect::<String>();
            feed.last_refusal = Some(format!("item {title:?} ({}): {why}", shown(&entry.media)));
            let reason = format!("item {:?} ({}) refused: {why}", entry.guid.chars().take(200).collect::<String>(), shown(&entry.media));
            self.audit_decision(feed, "feed.item", Decision::Deny, reason, run_id).await;
        }
        imported
    }

    async fn audit_decision(&self, feed: &Feed, action: &str, decision: Decision, reason: String, run_id: &str) {
        let event = AuditEvent {
            tenant: feed.tenant.clone(),
            actor: "feed_poll".into(),
            action: action.into(),
            resource: format!("feed/{}", feed.feed_id),
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

/// What became of one item.
enum Imported {
    New,
    Refused,
    Seen,
    Later,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_type_is_seen_in_the_prolog() {
        assert!(declares_dtd(b"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">]><rss/>"));
        assert!(declares_dtd(b"<!doctype rss><rss/>"));
        assert!(declares_dtd(b"<?xml version=\"1.0\"?><!-- a <comment> --><!DOCTYPE x><rss/>"));
        assert!(!declares_dtd(b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel/></rss>"));
        // After the root element a DOCTYPE is no declaration (and the parser refuses it anyway).
        assert!(!declares_dtd(b"<rss><description>&lt;!DOCTYPE&gt; <![CDATA[<!DOCTYPE]]></description></rss>"));
    }
}
