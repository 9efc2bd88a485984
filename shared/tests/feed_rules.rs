//! Feed import over the in-memory adapters and the real guarded fetcher, against a feed server on
//! 127.0.0.1: RSS 2.0 enclosures, Atom enclosure links and Media RSS content become imports with
//! the item's metadata, once each; an unchanged feed is a conditional GET answered 304; hostile
//! feeds (a billion-laughs DTD, a 10 MB title, an enclosure on the metadata service, a feed too
//! large) are refused with a recorded reason and import nothing. The whole door runs against the
//! local stack in `tests/tests/feed_import.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultstream::access::RequestMeta;
use vaultstream::audit::Decision;
use vaultstream::catalog::{ContentCatalog, ContentStatus, UploadPlan};
use vaultstream::ids::{SessionId, TenantId};
use vaultstream::ingest::feed_poll::FeedPoller;
use vaultstream::ingest::feeds::{FeedRequest, FeedService};
use vaultstream::ingest::import::ImportService;
use vaultstream::ingest::ports::{Feed, FeedStore};
use vaultstream::ingest::url_fetch::GuardedFetcher;
use vaultstream::ingest::url_guard::FetchPolicy;
use vaultstream::memory::{MemoryCatalog, MemoryFeeds, MemoryLedger, MemoryQueues};
use vaultstream::metadata::Source;
use vaultstream::principal::{Credential, Principal, Scope};

const LOCAL: FetchPolicy = FetchPolicy { allow_http: true, allow_loopback: true };

/// A feed server: each path's current document (replaceable), its ETag, and every request's
/// conditional header as received.
#[derive(Clone, Default)]
struct Feeds {
    /// path → (ETag, body).
    documents: Arc<Mutex<HashMap<String, Document>>>,
    /// (path, If-None-Match) of every request.
    conditionals: Arc<Mutex<Vec<Conditional>>>,
}

type Document = (String, Vec<u8>);
type Conditional = (String, Option<String>);

impl Feeds {
    fn publish(&self, path: &str, etag: &str, body: impl Into<Vec<u8>>) {
        self.documents.lock().unwrap().insert(path.to_string(), (etag.to_string(), body.into()));
    }

    async fn serve(&self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let feeds = self.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let feeds = feeds.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request).to_string();
                    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
                    let if_none_match =
                        text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("if-none-match:").map(|v| v.trim().to_string()));
                    feeds.conditionals.lock().unwrap().push((path.clone(), if_none_match.clone()));
                    let document = feeds.documents.lock().unwrap().get(&path).cloned();
                    let response = match document {
                        Some((etag, _)) if if_none_match.as_deref() == Some(etag.as_str()) => {
                            format!("HTTP/1.1 304 Not Modified\r\netag: {etag}\r\nconnection: close\r\n\r\n").into_bytes()
                        }
                        Some((etag, body)) => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\netag: {etag}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&body);
                            r
                        }
                        None => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
                    };
                    let _ = socket.write_all(&response).await;
                });
            }
        });
        port
    }
}

fn rss(items: &[(&str, &str, &str)]) -> String {
    let items: String = items
        .iter()
        .map(|(guid, title, enclosure)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title><description>About {title}</description>\
                 <pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate><enclosure url=\"{enclosure}\" type=\"video/mp4\" length=\"1000\"/></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Shows</title><link>http://example.com/</link>{items}</channel></rss>"
    )
}

struct World {
    feeds: Arc<MemoryFeeds>,
    catalog: Arc<MemoryCatalog>,
    queues: Arc<MemoryQueues>,
    ledger: Arc<MemoryLedger>,
}

impl World {
    fn new() -> Self {
        World {
            feeds: Arc::new(MemoryFeeds::new()),
            catalog: Arc::new(MemoryCatalog::new()),
            queues: Arc::new(MemoryQueues::new()),
            ledger: Arc::new(MemoryLedger::new()),
        }
    }

    fn service(&self, policy: FetchPolicy) -> FeedService {
        FeedService { store: self.feeds.clone(), audit: self.ledger.clone(), policy }
    }

    fn poller(&self, policy: FetchPolicy) -> FeedPoller {
        FeedPoller {
            feeds: self.feeds.clone(),
            imports: ImportService { catalog: self.catalog.clone(), queue: self.queues.clone(), audit: self.ledger.clone(), policy },
            fetcher: Arc::new(GuardedFetcher::new(policy, std::time::Duration::from_secs(2), std::time::Duration::from_secs(10))),
            audit: self.ledger.clone(),
        }
    }

    async fn subscribe(&self, url: &str) -> Feed {
        self.service(LOCAL).subscribe(&creator(), &FeedRequest { url: url.into(), profile: None }, &meta()).await.unwrap()
    }

    async fn feed(&self, feed: &Feed) -> Feed {
        self.feeds.list(&feed.tenant).await.unwrap().into_iter().find(|f| f.feed_id == feed.feed_id).unwrap()
    }

    /// The URLs queued for import so far.
    fn imported(&self) -> Vec<String> {
        self.queues.imports().into_iter().map(|m| m.url).collect()
    }
}

fn creator() -> Principal {
    Principal {
        tenant: TenantId::parse("acme").unwrap(),
        subject: "producer".into(),
        session: SessionId::parse("s1").unwrap(),
        scopes: Scope::parse_list("content:write content:read"),
        credential: Credential::Jwt,
    }
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: 1_000 }
}

#[tokio::test]
async fn new_items_are_imported_once_with_their_metadata_and_an_unchanged_feed_costs_a_304() {
    let server = Feeds::default();
    let port = server.serve().await;
    let origin = format!("http://127.0.0.1:{port}");
    server.publish("/shows.rss", "\"v1\"", rss(&[("ep-2", "Episode 2", "/media/ep2.mp4"), ("ep-1", "Episode 1", "/media/ep1.mp4")]));
    let world = World::new();
    let feed = world.subscribe(&format!("{origin}/shows.rss")).await;

    let poller = world.poller(LOCAL);
    let first = poller.poll(world.feed(&feed).await, "run-1").await;
    assert_eq!((first.imported, first.refused, first.error.clone()), (2, 0, None), "{first:?}");
    // Oldest first, relative enclosures resolved against the feed's address.
    assert_eq!(world.imported(), [format!("{origin}/media/ep1.mp4"), format!("{origin}/media/ep2.mp4")]);
    let message = world.queues.imports().remove(0);
    let record = world.catalog.get(&message.tenant, &message.content_id).await.unwrap().unwrap();
    assert_eq!((record.title.as_str(), record.status), ("Episode 1", ContentStatus::AwaitingUpload));
    assert!(matches!(record.upload, Some(UploadPlan::Import { .. })));
    let described = record.metadata.unwrap();
    assert_eq!(described.values.description.as_deref(), Some("About Episode 1"));
    assert_eq!(described.values.date.as_deref(), Some("2026-11-20T08:00:00+00:00"));
    assert_eq!(described.sources.get("title"), Some(&Source::Feed));
    assert_eq!(message.requested_by, format!("feed/{}", feed.feed_id));

    // Unchanged: the ETag goes back and the server answers 304; nothing is read or imported.
    let second = poller.poll(world.feed(&feed).await, "run-2").await;
    assert!(second.unchanged && second.imported == 0, "{second:?}");
    assert_eq!(server.conditionals.lock().unwrap().last().unwrap().1.as_deref(), Some("\"v1\""));

    // A new item beside the old ones: only it is imported, even when the ETag changes.
    server.publish(
        "/shows.rss",
        "\"v2\"",
        rss(&[("ep-3", "Episode 3", "/media/ep3.mp4"), ("ep-2", "Episode 2", "/media/ep2.mp4"), ("ep-1", "Episode 1", "/media/ep1.mp4")]),
    );
    let third = poller.poll(world.feed(&feed).await, "run-3").await;
    assert_eq!((third.imported, third.refused), (1, 0), "{third:?}");
    // A feed without validators is read whole each time; the items it already settled cost no
    // claim. And the claim decides: with that memory gone too, nothing is imported twice.
    let mut forgetful = world.feed(&feed).await;
    forgetful.etag = None;
    let claims = world.feeds.claims();
    assert_eq!(poller.poll(forgetful.clone(), "run-4").await.imported, 0);
    assert_eq!(world.feeds.claims(), claims, "settled items are remembered on the feed");
    forgetful.seen.clear();
    assert_eq!(poller.poll(forgetful, "run-5").await.imported, 0);
    assert_eq!(world.feeds.claims(), claims + 3);
    assert_eq!(world.imported().len(), 3);
    let shown = world.feed(&feed).await;
    assert_eq!((shown.imported, shown.refused, shown.last_error), (3, 0, None));
    assert!(shown.last_polled_at.is_some());
}

#[tokio::test]
async fn atom_enclosures_and_media_rss_content_are_read_too() {
    let server = Feeds::default();
    let port = server.serve().await;
    let origin = format!("http://127.0.0.1:{port}");
    server.publish(
        "/atom.xml",
        "\"a\"",
        format!(
            "<?xml version=\"1.0\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Atom shows</title><id>urn:shows</id>\
             <updated>2026-11-21T00:00:00Z</updated>\
             <entry><id>urn:show:1</id><title>Atom one</title><updated>2026-11-21T00:00:00Z</updated><summary>Summary</summary>\
             <link rel=\"alternate\" href=\"{origin}/page\"/><link rel=\"enclosure\" type=\"video/webm\" href=\"{origin}/a1.webm\"/></entry>\
             <entry><id>urn:show:2</id><title>No media</title><updated>2026-11-21T00:00:00Z</updated><link href=\"{origin}/text\"/></entry></feed>"
        ),
    );
    server.publish(
        "/mrss.xml",
        "\"m\"",
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel><title>M</title>\
             <item><guid>m-1</guid><title>Media one</title><media:content url=\"{origin}/m1.mp4\" type=\"video/mp4\"/></item>\
             <item><guid>m-2</guid><title>A picture</title><media:content url=\"{origin}/m2.jpg\" type=\"image/jpeg\"/></item>\
             </channel></rss>"
        ),
    );
    let world = World::new();
    let atom = world.subscribe(&format!("{origin}/atom.xml")).await;
    let mrss = world.subscribe(&format!("{origin}/mrss.xml")).await;
    let poller = world.poller(LOCAL);
    assert_eq!(poller.poll(world.feed(&atom).await, "r").await.imported, 1);
    assert_eq!(poller.poll(world.feed(&mrss).await, "r").await.imported, 1);
    assert_eq!(world.imported(), [format!("{origin}/a1.webm"), format!("{origin}/m1.mp4")], "items without media are left alone");
}

#[tokio::test]
async fn hostile_feeds_are_refused_with_a_recorded_reason_and_import_nothing() {
    let server = Feeds::default();
    let port = server.serve().await;
    let origin = format!("http://127.0.0.1:{port}");
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
                  <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>\
                  <rss version=\"2.0\"><channel><title>&lol3;</title><item><guid>x</guid><title>&lol3;</title>\
                  <enclosure url=\"http://127.0.0.1/x.mp4\" type=\"video/mp4\"/></item></channel></rss>";
    server.publish("/laughs.rss", "\"l\"", laughs);
    server.publish("/huge.rss", "\"h\"", rss(&[("big", &"T".repeat(10 * 1024 * 1024), "/big.mp4")]));
    server.publish(
        "/mixed.rss",
        "\"x\"",
        rss(&[
            ("long", &"L".repeat(1000), "/long.mp4"),
            ("meta", "Metadata service", "http://169.254.169.254/latest/meta-data/x.mp4"),
            ("spoof", "evil\u{202E}4pm.exe", "/spoof.mp4"),
            ("fine", "Fine", "/fine.mp4"),
        ]),
    );
    server.publish("/page.rss", "\"p\"", "<html><body>Not a feed</body></html>");
    let world = World::new();
    let poller = world.poller(LOCAL);

    let errors = [("/laughs.rss", "document type"), ("/huge.rss", "larger than"), ("/page.rss", "not an RSS, Atom or JSON feed")];
    for (path, expected) in errors {
        let feed = world.subscribe(&format!("{origin}{path}")).await;
        let started = std::time::Instant::now();
        let outcome = poller.poll(world.feed(&feed).await, "r").await;
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{path} took {:?}", started.elapsed());
        let error = outcome.error.unwrap_or_else(|| panic!("{path} was read"));
        assert!(error.contains(expected), "{path}: {error}");
        assert_eq!(world.feed(&feed).await.last_error.as_deref(), Some(error.as_str()), "{path}: shown on the feed");
        // The same error again is not written to the ledger twice.
        poller.poll(world.feed(&feed).await, "r2").await;
    }
    assert!(world.imported().is_empty());

    // Item by item: a 1000-character title, an enclosure on the metadata service, a title with a
    // direction override are refused; the fine one is imported.
    let mixed = world.subscribe(&format!("{origin}/mixed.rss")).await;
    let outcome = poller.poll(world.feed(&mixed).await, "r").await;
    assert_eq!((outcome.imported, outcome.refused), (1, 3), "{outcome:?}");
    assert_eq!(world.imported(), [format!("{origin}/fine.mp4")]);
    let last = world.feed(&mixed).await.last_refusal.unwrap();
    assert!(last.contains("long.mp4") && last.contains("title: must be at most 200"), "the latest refusal is on the feed: {last}");
    let items = world.feeds.items(&mixed);
    assert_eq!(items.iter().filter(|o| o.starts_with("refused: ")).count(), 3, "{items:?}");
    assert!(items.iter().any(|o| o.contains("169.254.169.254")), "{items:?}");
    // And they stay refused: a later poll (the validators forgotten) does not try them again.
    let mut again = world.feed(&mixed).await;
    again.etag = None;
    assert_eq!(poller.poll(again, "r").await.refused, 0);

    let denials: Vec<String> = world
        .ledger
        .records()
        .into_iter()
        .filter(|r| r.event.decision == Decision::Deny && r.event.action.starts_with("feed."))
        .map(|r| r.event.reason)
        .collect();
    assert_eq!(denials.len(), 3 + 3, "each feed error once, each refused item once: {denials:#?}");
}

#[tokio::test]
async fn an_item_with_no_guid_link_or_title_is_refused_once_not_at_every_poll() {
    let server = Feeds::default();
    let port = server.serve().await;
    let origin = format!("http://127.0.0.1:{port}");
    // feed-rs would give each of these a random id at every parse.
    let anonymous = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Shows</title>\
                     <item><description>No name</description><enclosure url=\"/anon.mp4\" type=\"video/mp4\"/></item>\
                     <item><enclosure url=\"/bare.mp4\" type=\"video/mp4\"/></item></channel></rss>";
    server.publish("/anon.rss", "\"a\"", anonymous);
    let world = World::new();
    let poller = world.poller(LOCAL);
    let feed = world.subscribe(&format!("{origin}/anon.rss")).await;
    let first = poller.poll(world.feed(&feed).await, "r1").await;
    assert_eq!((first.imported, first.refused), (0, 2), "{first:?}");
    for run in ["r2", "r3"] {
        let mut again = world.feed(&feed).await;
        again.etag = None;
        let outcome = poller.poll(again, run).await;
        assert_eq!((outcome.imported, outcome.refused, outcome.error), (0, 0, None), "{run}: refused again");
    }
    assert_eq!(world.feeds.items(&feed).len(), 2, "one claim per item: {:?}", world.feeds.items(&feed));
    let denials = world.ledger.records().into_iter().filter(|r| r.event.action == "feed.item").count();
    assert_eq!(denials, 2, "each refused once in the ledger");
    assert_eq!(world.feed(&feed).await.refused, 2);
}

#[tokio::test]
async fn one_tenants_stalled_feeds_do_not_hold_up_another_tenants_feed() {
    // A server that accepts and never answers: each of its feeds holds a fetch for 30 s.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stall_port = stall.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stall.accept().await {
            held.push(socket);
        }
    });
    let server = Feeds::default();
    let port = server.serve().await;
    server.publish("/victim.rss", "\"v\"", rss(&[("v1", "On time", "/on-time.mp4")]));
    let world = World::new();
    let abuser = Principal { tenant: TenantId::parse("abuser").unwrap(), ..creator() };
    for n in 0..20 {
        let request = FeedRequest { url: format!("http://127.0.0.1:{stall_port}/slow-{n}.rss"), profile: None };
        world.service(LOCAL).subscribe(&abuser, &request, &meta()).await.unwrap();
    }
    world.subscribe(&format!("http://127.0.0.1:{port}/victim.rss")).await;
    let poller = world.poller(LOCAL);
    let victim_queued = async {
        while world.imported().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        _ = victim_queued => {}
        _ = poller.poll_all("r1") => panic!("the poll ended before the victim's item was queued, or queued it only after the stalled feeds"),
    }
    assert_eq!(world.imported(), [format!("http://127.0.0.1:{port}/on-time.mp4")]);
    // It did not wait for any of them: none of the stalled feeds has finished its poll yet.
    let finished = world.feeds.list(&abuser.tenant).await.unwrap().into_iter().filter(|f| f.last_error.is_some()).count();
    assert_eq!(finished, 0, "the victim's feed waited for {finished} stalled feed(s)");
}

#[tokio::test]
async fn subscriptions_are_checked_and_belong_to_their_tenant() {
    let world = World::new();
    let service = world.service(FetchPolicy::default());
    let request = |url: &str| FeedRequest { url: url.into(), profile: None };
    for (url, expected) in
        [("http://shows.example.com/feed.rss", "only https"), ("https://169.254.169.254/feed", "link-local"), ("not a url", "not a URL")]
    {
        let err = service.subscribe(&creator(), &request(url), &meta()).await.unwrap_err();
        assert_eq!(err.status(), 400, "{url}");
        assert!(err.to_string().contains(expected), "{url}: {err}");
    }
    let feed = service.subscribe(&creator(), &request("https://shows.example.com/feed.rss"), &meta()).await.unwrap();
    assert_eq!(service.subscribe(&creator(), &request("https://shows.example.com/feed.rss"), &meta()).await.unwrap_err().status(), 409);
    let viewer = Principal { scopes: Scope::parse_list("content:read"), ..creator() };
    assert_eq!(service.subscribe(&viewer, &request("https://other.example.com/feed"), &meta()).await.unwrap_err().status(), 403);
    let stranger = Principal { tenant: TenantId::parse("globex").unwrap(), ..creator() };
    assert!(service.list(&stranger, &meta()).await.unwrap().is_empty());
    assert_eq!(service.remove(&stranger, feed.feed_id.as_str(), &meta()).await.unwrap_err().status(), 404);
    service.remove(&creator(), feed.feed_id.as_str(), &meta()).await.unwrap();
    assert!(service.list(&creator(), &meta()).await.unwrap().is_empty());
}
