//! Import from a URL over the in-memory adapters and the real guarded fetcher, against HTTP
//! servers on 127.0.0.1: what is imported, what is refused and why, what is retried, and that a
//! refused or broken transfer leaves nothing in the source bucket. The whole door runs against
//! the local stack in `tests/tests/url_import.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultstream::access::RequestMeta;
use vaultstream::audit::Decision;
use vaultstream::catalog::{ContentCatalog, ContentRecord, ContentStatus, UploadPlan};
use vaultstream::ids::{SessionId, TenantId};
use vaultstream::ingest::dispatch::{DispatchService, Handled};
use vaultstream::ingest::import::{ImportRequest, ImportService};
use vaultstream::ingest::import_fetch::{ImportSettings, ImportWorker};
use vaultstream::ingest::ports::{ImportMessage, QueueMessage, SourceStore};
use vaultstream::ingest::rate_floor::MinRate;
use vaultstream::ingest::url_fetch::GuardedFetcher;
use vaultstream::ingest::url_guard::FetchPolicy;
use vaultstream::memory::{MemoryCatalog, MemoryJobs, MemoryLedger, MemoryQueues, MemorySourceStore};
use vaultstream::principal::{Credential, Principal, Scope};

const LOCAL: FetchPolicy = FetchPolicy { allow_http: true, allow_loopback: true };
/// A deployment's policy, but for plain http (the test servers have no certificates).
const DEPLOYED: FetchPolicy = FetchPolicy { allow_http: true, allow_loopback: false };
const PART: u64 = 64 * 1024;

/// How the test server answers a path.
#[derive(Clone)]
enum Answer {
    File {
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// Claims `declared` bytes, sends `sent`, then stalls.
    Stall {
        declared: usize,
        sent: usize,
    },
    /// No length: streams `total` bytes and closes.
    Unsized {
        total: usize,
    },
    /// `Transfer-Encoding: chunked`, one chunk at a time with a pause between (so the client
    /// reads them apart).
    Chunked {
        chunks: Vec<Vec<u8>>,
    },
    /// Sends `every` bytes a second, at most `total`: a slowloris.
    Trickle {
        total: usize,
        every: usize,
    },
    Status(u16),
    Redirect(String),
}

/// An HTTP/1.1 server on 127.0.0.1 with one answer per path; it counts requests per path.
struct Origin {
    port: u16,
    hits: Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

impl Origin {
    async fn start(routes: Vec<(&str, Answer)>) -> Origin {
        let routes: Arc<HashMap<String, Answer>> = Arc::new(routes.into_iter().map(|(p, a)| (p.to_string(), a)).collect());
        let hits = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counted = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (routes, hits) = (Arc::clone(&routes), Arc::clone(&counted));
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request).lines().next().unwrap_or("").to_string();
                    let path = line.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
                    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let answer = routes.get(&path).cloned().unwrap_or(Answer::Status(404));
                    let _ = respond(&mut socket, answer).await;
                });
            }
        });
        Origin { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn respond(socket: &mut tokio::net::TcpStream, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::File { content_type, body } => {
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body).await
        }
        Answer::Stall { declared, sent } => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n");
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&vec![0u8; sent]).await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }
        Answer::Unsized { total } => {
            socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\nconnection: close\r\n\r\n").await?;
            let block = vec![7u8; 16 * 1024];
            let mut left = total;
            while left > 0 {
                let n = left.min(block.len());
                socket.write_all(&block[..n]).await?;
                left -= n;
            }
            Ok(())
        }
        Answer::Chunked { chunks } => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
                .await?;
            for chunk in chunks {
                socket.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                socket.write_all(&chunk).await?;
                socket.write_all(b"\r\n").await?;
                socket.flush().await?;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            socket.write_all(b"0\r\n\r\n").await
        }
        Answer::Trickle { total, every } => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {total}\r\nconnection: close\r\n\r\n");
            socket.write_all(head.as_bytes()).await?;
            let mut sent = 0;
            while sent < total {
                let n = every.min(total - sent);
                socket.write_all(&media_bytes(n)).await?;
                socket.flush().await?;
                sent += n;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        }
        Answer::Status(code) => {
            let head = format!("HTTP/1.1 {code} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            socket.write_all(head.as_bytes()).await
        }
        Answer::Redirect(to) => {
            let head = format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            socket.write_all(head.as_bytes()).await
        }
    }
}

/// Bytes that are not markup, as a media file's are.
fn media_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8 | 0x80).collect()
}

struct World {
    catalog: Arc<MemoryCatalog>,
    sources: Arc<MemorySourceStore>,
    queues: Arc<MemoryQueues>,
    ledger: Arc<MemoryLedger>,
    jobs: Arc<MemoryJobs>,
}

impl World {
    fn new() -> Self {
        World {
            catalog: Arc::new(MemoryCatalog::new()),
            sources: Arc::new(MemorySourceStore::new()),
            queues: Arc::new(MemoryQueues::new()),
            ledger: Arc::new(MemoryLedger::new()),
            jobs: Arc::new(MemoryJobs::new()),
        }
    }

    fn imports(&self, policy: FetchPolicy) -> ImportService {
        ImportService { catalog: self.catalog.clone(), queue: self.queues.clone(), audit: self.ledger.clone(), policy }
    }

    fn worker(&self, policy: FetchPolicy, settings: ImportSettings) -> ImportWorker {
        ImportWorker {
            catalog: self.catalog.clone(),
            sources: self.sources.clone(),
            fetcher: Arc::new(GuardedFetcher::new(policy, Duration::from_secs(2), Duration::from_secs(20))),
            objects: vaultstream::ingest::monitor_poll::MonitoredObjects {
                monitors: Arc::new(vaultstream::memory::MemoryMonitors::new()),
                buckets: Arc::new(vaultstream::memory::MemoryBuckets::new()),
            },
            drops: self.sources.clone(),
            failures: self.queues.clone(),
            redelivery: self.queues.clone(),
            audit: self.ledger.clone(),
            settings,
        }
    }

    fn dispatch(&self) -> DispatchService {
        DispatchService {
            catalog: self.catalog.clone(),
            sources: self.sources.clone(),
            jobs: self.jobs.clone(),
            failures: self.queues.clone(),
            redelivery: self.queues.clone(),
            audit: self.ledger.clone(),
            source_bucket: "src".into(),
        }
    }

    /// Accepts an import of `url` and returns its record and the queued message.
    async fn import(&self, url: &str) -> (ContentRecord, QueueMessage) {
        let request = ImportRequest { url: url.into(), title: "Imported".into(), profile: None, metadata: None };
        let grant = self.imports(LOCAL).start(&creator(), &request, None, &meta()).await.unwrap();
        let queued: Vec<ImportMessage> = self.queues.imports();
        let message = queued.iter().rfind(|m| m.content_id == grant.record.content_id).cloned().unwrap();
        (grant.record, delivery(&message, 1))
    }

    async fn record(&self, record: &ContentRecord) -> ContentRecord {
        self.catalog.get(&record.tenant, &record.content_id).await.unwrap().unwrap()
    }

    async fn stored(&self, record: &ContentRecord) -> Option<u64> {
        self.sources.head(&format!("source/acme/{}/original", record.content_id)).await.unwrap().map(|h| h.size)
    }
}

fn settings() -> ImportSettings {
    ImportSettings { max_bytes: 1024 * 1024, part_size: PART, time_limit: Duration::from_secs(10), ..Default::default() }
}

fn creator() -> Principal {
    Principal {
        tenant: TenantId::parse("acme").unwrap(),
        subject: "creator".into(),
        session: SessionId::parse("s1").unwrap(),
        scopes: Scope::parse_list("content:write content:read"),
        credential: Credential::Jwt,
    }
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: 1_000 }
}

fn delivery(message: &ImportMessage, receive_count: u32) -> QueueMessage {
    QueueMessage {
        message_id: format!("m-{}-{receive_count}", message.content_id),
        receipt_handle: "h".into(),
        queue_arn: "arn:aws:sqs:us-east-1:000000000000:import".into(),
        body: serde_json::to_string(message).unwrap(),
        receive_count,
    }
}

fn notification(key: &str) -> QueueMessage {
    let body = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-22T00:00:00.000Z",
        "eventName": "ObjectCreated:CompleteMultipartUpload", "userIdentity": {"principalId": "x"}, "requestParameters": {},
        "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "ingest", "bucket": {"name": "src", "arn": "arn:aws:s3:::src"},
        "object": {"key": key, "size": 1, "eTag": "e", "sequencer": "1"}}
    }]});
    QueueMessage {
        message_id: "s3-event".into(),
        receipt_handle: "h".into(),
        queue_arn: "q".into(),
        body: body.to_string(),
        receive_count: 1,
    }
}

#[tokio::test]
async fn a_url_is_streamed_into_the_source_key_in_parts_and_dispatched_once() {
    let film = media_bytes(3 * PART as usize + 1234);
    let origin =
        Origin::start(vec![("/films/launch%20day.mp4", Answer::File { content_type: "application/octet-stream", body: film.clone() })])
            .await;
    let world = World::new();
    let (record, message) = world.import(&format!("{}?token=secret", origin.url("/films/launch%20day.mp4"))).await;
    assert_eq!(record.status, ContentStatus::AwaitingUpload);
    assert_eq!(
        record.upload,
        Some(UploadPlan::Import { url: origin.url("/films/launch%20day.mp4") }),
        "the token is not kept on the record"
    );

    // As after an earlier attempt that failed: the creator was told why it waits.
    let noted = vaultstream::catalog::Patch {
        failure: Some(Some(vaultstream::catalog::Failure::new("import_retrying", "503; trying again"))),
        ..Default::default()
    };
    world.catalog.update(&record.tenant, &record.content_id, &Default::default(), &noted).await.unwrap();
    let worker = world.worker(LOCAL, settings());
    assert_eq!(worker.handle(&message).await, Handled::Done);
    let key = format!("source/acme/{}/original", record.content_id);
    assert_eq!(world.sources.object(&key).as_deref(), Some(film.as_slice()), "the file arrived whole, from 4 parts");
    assert_eq!(world.sources.open_uploads(), 0);
    let imported = world.record(&record).await;
    assert_eq!(imported.failure, None, "what the last attempt said no longer holds");
    let source = imported.source.clone().unwrap();
    assert_eq!(
        (source.filename.as_str(), source.content_type.as_str(), source.size_bytes),
        ("launch day.mp4", "video/mp4", film.len() as u64)
    );

    // The S3 event takes it from there, as for any upload.
    assert_eq!(world.dispatch().handle(&notification(&key)).await, Handled::Done);
    assert_eq!(world.record(&record).await.status, ContentStatus::Queued);
    assert_eq!(world.jobs.submitted().len(), 1);

    // The same message again, or after the import: nothing is fetched or stored twice.
    assert_eq!(worker.handle(&message).await, Handled::Done);
    assert_eq!(origin.hits("/films/launch%20day.mp4"), 1);
    let granted: Vec<String> =
        world.ledger.records().into_iter().filter(|r| r.event.action == "content.import.fetch").map(|r| r.event.reason).collect();
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert!(granted[0].starts_with(&format!("imported {} bytes of video/mp4 from http://127.0.0.1", film.len())), "{granted:?}");
    assert!(!granted[0].contains("secret"), "the URL's token stays out of the ledger: {granted:?}");
}

#[tokio::test]
async fn a_small_file_is_one_put() {
    let clip = media_bytes(1000);
    let origin = Origin::start(vec![("/clip", Answer::File { content_type: "video/webm", body: clip.clone() })]).await;
    let world = World::new();
    let (record, message) = world.import(&origin.url("/clip")).await;
    assert_eq!(world.worker(LOCAL, settings()).handle(&message).await, Handled::Done);
    assert_eq!(world.stored(&record).await, Some(1000));
    let source = world.record(&record).await.source.unwrap();
    assert_eq!((source.filename.as_str(), source.content_type.as_str()), ("clip", "video/webm"));
}

/// Runs one import of `path` and returns the record's status and failure message.
async fn outcome(
    world: &World,
    origin: &Origin,
    path: &str,
    policy: FetchPolicy,
    settings: ImportSettings,
) -> (ContentStatus, String, Handled) {
    let (record, message) = world.import(&origin.url(path)).await;
    let handled = world.worker(policy, settings).handle(&message).await;
    let after = world.record(&record).await;
    assert_eq!(world.stored(&record).await, None, "{path}: nothing may be stored");
    assert_eq!(world.sources.open_uploads(), 0, "{path}: no partial upload may be left");
    (after.status, after.failure.map(|f| format!("{}: {}", f.code, f.message)).unwrap_or_default(), handled)
}

#[tokio::test]
async fn hostile_and_broken_urls_are_refused_with_a_reason_and_store_nothing() {
    let origin = Origin::start(vec![
        ("/film.mp4", Answer::File { content_type: "video/mp4", body: media_bytes(5000) }),
        ("/login.mp4", Answer::File { content_type: "text/html; charset=utf-8", body: b"<html>sign in</html>".to_vec() }),
        ("/disguised.mp4", Answer::File { content_type: "application/octet-stream", body: b"\n <!doctype html><p>expired</p>".to_vec() }),
        // White space alone in the first chunk, the page in the second.
        ("/split-page.mp4", Answer::Chunked { chunks: vec![b"\xEF\xBB\xBF \r\n\t".to_vec(), b"  <html><p>sign in</p></html>".to_vec()] }),
        ("/mystery", Answer::File { content_type: "application/octet-stream", body: media_bytes(100) }),
        ("/huge.mp4", Answer::File { content_type: "video/mp4", body: media_bytes(2 * 1024 * 1024) }),
        ("/endless.mp4", Answer::Unsized { total: 3 * 1024 * 1024 }),
        ("/slow.mp4", Answer::Stall { declared: 4 * PART as usize, sent: PART as usize + 10 }),
        // 2 KiB a second: a slowloris, under the floor long before the time limit.
        ("/trickle.mp4", Answer::Trickle { total: 512 * 1024, every: 2048 }),
        ("/to-metadata", Answer::Redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/".into())),
        ("/to-private", Answer::Redirect("http://10.0.0.8/film.mp4".into())),
        ("/forbidden.mp4", Answer::Status(403)),
    ])
    .await;
    let world = World::new();
    let refused = |(status, why, handled): (ContentStatus, String, Handled), expected: &str| {
        assert_eq!((status, handled), (ContentStatus::FailedInvalid, Handled::Done), "{why}");
        assert!(why.starts_with("import_refused: ") && why.contains(expected), "expected {expected:?} in {why:?}");
    };
    refused(outcome(&world, &origin, "/login.mp4", LOCAL, settings()).await, "text/html document");
    refused(outcome(&world, &origin, "/disguised.mp4", LOCAL, settings()).await, "web page");
    refused(outcome(&world, &origin, "/split-page.mp4", LOCAL, settings()).await, "web page");
    refused(outcome(&world, &origin, "/mystery", LOCAL, settings()).await, "cannot tell what kind of file");
    refused(outcome(&world, &origin, "/huge.mp4", LOCAL, settings()).await, "larger than the accepted 1048576 bytes");
    refused(outcome(&world, &origin, "/endless.mp4", LOCAL, settings()).await, "larger than the accepted");
    let hurried = ImportSettings { time_limit: Duration::from_millis(800), ..settings() };
    refused(outcome(&world, &origin, "/slow.mp4", LOCAL, hurried).await, "did not finish within 0.8 s");
    let floored = ImportSettings { min_rate: MinRate { min_bytes: 16 * 1024, window: Duration::from_secs(2) }, ..settings() };
    let started = std::time::Instant::now();
    refused(outcome(&world, &origin, "/trickle.mp4", LOCAL, floored.clone()).await, "less than the 16384 bytes in 2 s an import needs");
    assert!(started.elapsed() < floored.time_limit, "cut at the end of its first window, not at the time limit: {:?}", started.elapsed());
    refused(outcome(&world, &origin, "/to-metadata", LOCAL, settings()).await, "169.254.169.254");
    refused(outcome(&world, &origin, "/to-private", LOCAL, settings()).await, "10.0.0.8");
    refused(outcome(&world, &origin, "/forbidden.mp4", LOCAL, settings()).await, "403");
    refused(outcome(&world, &origin, "/absent.mp4", LOCAL, settings()).await, "404");

    // Outside local mode, a name that resolves to loopback is refused after resolution.
    let (record, _) = world.import(&origin.url("/film.mp4")).await;
    let by_name = ImportMessage {
        kind: vaultstream::ingest::ports::ImportKind::UrlImport,
        tenant: record.tenant.clone(),
        content_id: record.content_id.clone(),
        url: format!("http://localhost:{}/film.mp4", origin.port),
        requested_by: "creator".into(),
        object: None,
        dropped: None,
    };
    assert_eq!(world.worker(DEPLOYED, settings()).handle(&delivery(&by_name, 1)).await, Handled::Done);
    let failure = world.record(&record).await.failure.unwrap();
    assert!(failure.message.contains("resolves to 127.0.0.1") || failure.message.contains("resolves to ::1"), "{failure:?}");
    assert_eq!(origin.hits("/film.mp4"), 0, "the forbidden server was never reached");

    // Every refusal is in the ledger, and the creator heard of each.
    let denials = world.ledger.records().into_iter().filter(|r| r.event.decision == Decision::Deny).count();
    assert_eq!(denials, 13);
    assert_eq!(world.queues.notifications().len(), 13);
    assert!(world.queues.dead_letters().is_empty(), "refusals are the creator's to fix, not operators'");
}

#[tokio::test]
async fn a_server_error_is_tried_again_and_given_up_after_five_attempts() {
    let origin = Origin::start(vec![("/busy.mp4", Answer::Status(503))]).await;
    let world = World::new();
    let (record, message) = world.import(&origin.url("/busy.mp4")).await;
    let worker = world.worker(LOCAL, settings());
    assert_eq!(worker.handle(&message).await, Handled::TryAgain);
    let waiting = world.record(&record).await;
    assert_eq!(waiting.status, ContentStatus::AwaitingUpload);
    let why = waiting.failure.expect("the creator sees why the title waits");
    assert_eq!(why.code, "import_retrying");
    assert!(why.message.contains("503") && why.message.contains("trying again in 30 s (attempt 1 of 5)"), "{why:?}");
    assert_eq!(world.queues.postponed().last().map(|(_, delay)| delay.as_secs()), Some(30));

    let last = QueueMessage { receive_count: 5, ..message };
    assert_eq!(worker.handle(&last).await, Handled::Done);
    let failed = world.record(&record).await;
    assert_eq!(failed.status, ContentStatus::Failed);
    let failure = failed.failure.unwrap();
    assert!(failure.code == "import_failed" && failure.message.contains("503"), "{failure:?}");
    assert_eq!(world.queues.dead_letters().len(), 1);
}

#[tokio::test]
async fn imports_are_refused_at_once_when_the_url_is_plainly_forbidden() {
    let world = World::new();
    let request = |url: &str| ImportRequest { url: url.into(), title: "T".into(), profile: None, metadata: None };
    let strict = world.imports(FetchPolicy::default());
    for (url, expected) in [
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://cdn.example.com/a.mp4", "only https"),
        ("https://user:pw@cdn.example.com/a.mp4", "credentials"),
    ] {
        let err = strict.start(&creator(), &request(url), None, &meta()).await.unwrap_err();
        assert_eq!(err.status(), 400, "{url}");
        assert!(err.to_string().contains(expected), "{url}: {err}");
    }
    assert!(world.queues.imports().is_empty(), "nothing was queued");
    let viewer = Principal { scopes: Scope::parse_list("content:read"), ..creator() };
    assert_eq!(strict.start(&viewer, &request("https://cdn.example.com/a.mp4"), None, &meta()).await.unwrap_err().status(), 403);

    // The same Idempotency-Key finds the same import. While it awaits its file it is queued
    // again (the first answer may have been lost to a queue failure); once the file is in, the
    // replay queues nothing.
    let first = strict.start(&creator(), &request("https://cdn.example.com/a.mp4"), Some("k1"), &meta()).await.unwrap();
    let again = strict.start(&creator(), &request("https://cdn.example.com/a.mp4"), Some("k1"), &meta()).await.unwrap();
    assert!(again.replayed && again.record.content_id == first.record.content_id);
    assert_eq!(world.queues.imports().len(), 2);
    let queued = vaultstream::catalog::Patch { status: Some(ContentStatus::Queued), ..Default::default() };
    world.catalog.update(&first.record.tenant, &first.record.content_id, &Default::default(), &queued).await.unwrap();
    let later = strict.start(&creator(), &request("https://cdn.example.com/a.mp4"), Some("k1"), &meta()).await.unwrap();
    assert_eq!((later.record.status, later.replayed), (ContentStatus::Queued, true));
    assert_eq!(world.queues.imports().len(), 2);
    let other = ImportRequest { title: "Other".into(), ..request("https://cdn.example.com/a.mp4") };
    assert_eq!(strict.start(&creator(), &other, Some("k1"), &meta()).await.unwrap_err().status(), 409);
}
