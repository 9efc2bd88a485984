//! Cloud bucket monitors over the in-memory adapters: who may connect a bucket and with what, what
//! a poll imports (once per object version, with its sidecar's metadata), what it passes over or
//! refuses, and how the import's fetcher copies an object only from the monitor of the message's
//! own tenant. The door runs against moto and the GCS emulator in `tests/tests/bucket_monitor.rs`.

use std::sync::Arc;

use vaultstream::access::{AccessError, RequestMeta};
use vaultstream::audit::Decision;
use vaultstream::catalog::{ContentCatalog, ContentStatus};
use vaultstream::ids::{SessionId, TenantId};
use vaultstream::ingest::dispatch::Handled;
use vaultstream::ingest::import::ImportService;
use vaultstream::ingest::import_fetch::{ImportSettings, ImportWorker};
use vaultstream::ingest::monitor_poll::{MonitorPoller, MonitoredObjects};
use vaultstream::ingest::monitors::{self, MonitorRequest, MonitorService};
use vaultstream::ingest::ports::{BucketAccess, ImportMessage, Monitor, MonitorStore, QueueMessage};
use vaultstream::ingest::url_fetch::GuardedFetcher;
use vaultstream::ingest::url_guard::FetchPolicy;
use vaultstream::memory::{MemoryBuckets, MemoryCatalog, MemoryLedger, MemoryMonitors, MemoryQueues, MemorySecrets, MemorySourceStore};
use vaultstream::metadata::Source;
use vaultstream::principal::{Credential, Principal, Scope};

const STRICT: FetchPolicy = FetchPolicy { allow_http: false, allow_loopback: false };
const MAX_BYTES: u64 = 64 * 1024;

const SERVICE_ACCOUNT: &str = r#"{"type":"service_account","project_id":"studio","client_email":"sync@studio.iam.gserviceaccount.com",
 "private_key":"-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n"}"#;

struct World {
    catalog: Arc<MemoryCatalog>,
    sources: Arc<MemorySourceStore>,
    queues: Arc<MemoryQueues>,
    ledger: Arc<MemoryLedger>,
    monitors: Arc<MemoryMonitors>,
    buckets: Arc<MemoryBuckets>,
    secrets: Arc<MemorySecrets>,
}

impl World {
    fn new() -> Self {
        World {
            catalog: Arc::new(MemoryCatalog::new()),
            sources: Arc::new(MemorySourceStore::new()),
            queues: Arc::new(MemoryQueues::new()),
            ledger: Arc::new(MemoryLedger::new()),
            monitors: Arc::new(MemoryMonitors::new()),
            buckets: Arc::new(MemoryBuckets::new()),
            secrets: Arc::new(MemorySecrets::default()),
        }
    }

    fn service(&self) -> MonitorService {
        MonitorService {
            store: self.monitors.clone(),
            secrets: self.secrets.clone(),
            audit: self.ledger.clone(),
            region: "us-east-1".into(),
            platform: vaultstream::ingest::monitors::PlatformBuckets::parse("vs-source,vs-origin,vs-audit", Some("123456789012")),
        }
    }

    fn poller(&self) -> MonitorPoller {
        MonitorPoller {
            monitors: self.monitors.clone(),
            imports: ImportService {
                catalog: self.catalog.clone(),
                queue: self.queues.clone(),
                audit: self.ledger.clone(),
                policy: STRICT,
            },
            buckets: self.buckets.clone(),
            audit: self.ledger.clone(),
            max_bytes: MAX_BYTES,
        }
    }

    fn worker(&self) -> ImportWorker {
        ImportWorker {
            catalog: self.catalog.clone(),
            sources: self.sources.clone(),
            fetcher: Arc::new(GuardedFetcher::new(STRICT, std::time::Duration::from_secs(1), std::time::Duration::from_secs(5))),
            objects: MonitoredObjects { monitors: self.monitors.clone(), buckets: self.buckets.clone() },
            drops: self.sources.clone(),
            failures: self.queues.clone(),
            redelivery: self.queues.clone(),
            audit: self.ledger.clone(),
            settings: ImportSettings {
                max_bytes: MAX_BYTES,
                part_size: 16 * 1024,
                time_limit: std::time::Duration::from_secs(5),
                ..Default::default()
            },
        }
    }

    async fn s3_monitor(&self, who: &Principal, prefix: &str) -> Monitor {
        let request = s3_request("media-in", prefix);
        self.service().create(who, &request, &meta()).await.unwrap()
    }

    async fn monitor(&self, monitor: &Monitor) -> Monitor {
        self.monitors.get(&monitor.tenant, &monitor.monitor_id).await.unwrap().unwrap()
    }

    /// Delivers every queued import to the fetcher; returns the content ids, in queue order.
    async fn fetch_all(&self) -> Vec<String> {
        let mut done = Vec::new();
        for message in self.queues.imports() {
            if done.contains(&message.content_id.to_string()) {
                continue;
            }
            assert_eq!(self.worker().handle(&delivery(&message)).await, Handled::Done);
            done.push(message.content_id.to_string());
        }
        done
    }
}

fn principal(tenant: &str, scopes: &str) -> Principal {
    Principal {
        tenant: TenantId::parse(tenant).unwrap(),
        subject: format!("{tenant}-admin"),
        session: SessionId::parse("s1").unwrap(),
        scopes: Scope::parse_list(scopes),
        credential: Credential::Jwt,
    }
}

fn admin() -> Principal {
    principal("acme", "admin content:write")
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: 1_000 }
}

fn s3_request(bucket: &str, prefix: &str) -> MonitorRequest {
    MonitorRequest {
        provider: "s3".into(),
        bucket: bucket.into(),
        prefix: prefix.into(),
        role_arn: Some("arn:aws:iam::210987654321:role/VaultStreamRead".into()),
        region: Some("eu-west-1".into()),
        service_account_key: None,
        profile: None,
    }
}

fn delivery(message: &ImportMessage) -> QueueMessage {
    QueueMessage {
        message_id: format!("m-{}", message.content_id),
        receipt_handle: "h".into(),
        queue_arn: "arn:aws:sqs:us-east-1:000000000000:import".into(),
        body: serde_json::to_string(message).unwrap(),
        receive_count: 1,
    }
}

/// Bytes that are not markup, as a media file's are.
fn media_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed as usize) % 251) as u8 | 0x80).collect()
}

#[tokio::test]
async fn connecting_a_bucket_takes_an_administrator_and_a_well_formed_request() {
    let world = World::new();
    let service = world.service();
    let refused = |outcome: Result<Monitor, AccessError>| outcome.unwrap_err().to_string();

    let creator = principal("acme", "content:write");
    assert!(refused(service.create(&creator, &s3_request("media-in", ""), &meta()).await).contains("admin scope"));
    let cases = [
        (MonitorRequest { provider: "azure".into(), ..s3_request("media-in", "") }, "provider: \"azure\""),
        (s3_request("Media_In", ""), "not an S3 bucket name"),
        (MonitorRequest { role_arn: None, ..s3_request("media-in", "") }, "role_arn: an s3 monitor needs"),
        (MonitorRequest { role_arn: Some("arn:aws:iam::123:role/x".into()), ..s3_request("media-in", "") }, "not an IAM role ARN"),
        (MonitorRequest { region: Some("moon-1".into()), ..s3_request("media-in", "") }, "region:"),
        (s3_request("media-in", "a\u{0}b"), "control characters"),
        (MonitorRequest { profile: Some("fast".into()), ..s3_request("media-in", "") }, "profile: \"fast\""),
        // The deployment's own buckets, whatever prefix (another tenant's), and its own account.
        (s3_request("vs-source", "source/globex/"), "belongs to this VaultStream deployment"),
        (s3_request("vs-origin", "globex/"), "belongs to this VaultStream deployment"),
        (
            MonitorRequest { role_arn: Some("arn:aws:iam::123456789012:role/Anything".into()), ..s3_request("media-in", "") },
            "VaultStream's own account",
        ),
        (
            MonitorRequest { provider: "gcs".into(), role_arn: None, region: None, ..s3_request("studio-masters", "") },
            "service_account_key: a gcs monitor needs",
        ),
        (
            MonitorRequest {
                provider: "gcs".into(),
                role_arn: None,
                region: None,
                service_account_key: Some(serde_json::json!({"type": "service_account", "client_email": "x"})),
                ..s3_request("studio-masters", "")
            },
            "not a service account key",
        ),
    ];
    for (request, expected) in cases {
        let message = refused(service.create(&admin(), &request, &meta()).await);
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert!(world.monitors.all().await.unwrap().is_empty());
    let platform_refusals = world
        .ledger
        .records()
        .into_iter()
        .filter(|r| r.event.action == "monitor.create" && r.event.decision == Decision::Deny)
        .filter(|r| r.event.reason.contains("VaultStream deployment") || r.event.reason.contains("own account"))
        .count();
    assert_eq!(platform_refusals, 3, "each refusal is audited with its reason");

    // An S3 monitor: VaultStream picks the external id the role must require.
    let first = world.s3_monitor(&admin(), "incoming/").await;
    let second = world.s3_monitor(&admin(), "archive/").await;
    let external_ids: Vec<String> = [&first, &second]
        .iter()
        .map(|m| match &m.access {
            BucketAccess::S3 { external_id, region, .. } => {
                assert_eq!(region, "eu-west-1");
                external_id.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(external_ids[0].len(), 32);
    assert_ne!(external_ids[0], external_ids[1], "one external id per monitor");
    assert!(refused(service.create(&admin(), &s3_request("media-in", "incoming/"), &meta()).await).contains("already monitors"));

    // A GCS monitor: its key goes to the secret store and is never shown again.
    let gcs = MonitorRequest {
        provider: "gcs".into(),
        role_arn: None,
        region: None,
        service_account_key: Some(serde_json::from_str(SERVICE_ACCOUNT).unwrap()),
        ..s3_request("studio-masters", "")
    };
    let monitor = service.create(&admin(), &gcs, &meta()).await.unwrap();
    let shown = serde_json::to_string(&monitors::view(&monitor)).unwrap();
    assert!(shown.contains("sync@studio.iam.gserviceaccount.com") && !shown.contains("MIIsecret"), "{shown}");
    let secret_id = match &monitor.access {
        BucketAccess::Gcs { secret_id, .. } => secret_id.clone(),
        other => panic!("{other:?}"),
    };
    assert!(world.secrets.secrets.lock().unwrap()[&secret_id].contains("MIIsecret"));
    assert!(secret_id.contains(&format!("acme/{}", monitor.monitor_id)), "named by VaultStream: {secret_id}");

    // Another tenant sees none of them and cannot remove them; removing deletes the key.
    let other = principal("globex", "admin");
    assert!(service.list(&other, &meta()).await.unwrap().is_empty());
    let id = monitor.monitor_id.to_string();
    assert!(matches!(service.remove(&other, &id, &meta()).await, Err(AccessError::NotFound(_))));
    service.remove(&admin(), &id, &meta()).await.unwrap();
    assert!(world.secrets.secrets.lock().unwrap().is_empty());
    assert_eq!(service.list(&admin(), &meta()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn each_new_object_version_is_imported_once_with_its_sidecar() {
    let world = World::new();
    let film = media_bytes(40_000, 1);
    world.buckets.put("media-in", "incoming/launch.mp4", &film);
    world.buckets.put("media-in", "incoming/launch.json", br#"{"title":"Launch day","artist":"Ada"}"#);
    world.buckets.put("media-in", "incoming/Second take.mov", &media_bytes(2_000, 2));
    world.buckets.put("media-in", "incoming/notes.txt", b"not media");
    world.buckets.put("media-in", "incoming/empty.mp4", b"");
    world.buckets.put("media-in", "incoming/huge.mp4", &media_bytes(MAX_BYTES as usize + 1, 3));
    world.buckets.put("media-in", "elsewhere/other.mp4", &media_bytes(1_000, 4));
    let monitor = world.s3_monitor(&admin(), "incoming/").await;

    let outcome = world.poller().poll(monitor.clone(), "run-1").await;
    assert_eq!((outcome.listed, outcome.imported, outcome.refused, outcome.error), (6, 2, 1, None));
    let content = world.fetch_all().await;
    assert_eq!(content.len(), 2);
    let mut titles = Vec::new();
    for id in &content {
        let record = world.catalog.get(&monitor.tenant, &vaultstream::ids::ContentId::parse(id).unwrap()).await.unwrap().unwrap();
        let key = format!("source/acme/{id}/original");
        let described = record.metadata.clone().unwrap();
        titles.push(described.values.title.clone().unwrap());
        if described.values.title.as_deref() == Some("Launch day") {
            assert_eq!(world.sources.object(&key).as_deref(), Some(film.as_slice()), "copied whole");
            assert_eq!(described.values.artist.as_deref(), Some("Ada"));
            assert_eq!(described.sources.get("title"), Some(&Source::Sidecar));
            let source = record.source.unwrap();
            assert_eq!((source.filename.as_str(), source.content_type.as_str()), ("launch.mp4", "video/mp4"));
        } else {
            assert_eq!(described.sources.get("title"), Some(&Source::Request), "the object's name");
            assert!(world.sources.object(&key).is_some());
        }
        assert_eq!(record.profile, "default");
    }
    titles.sort();
    assert_eq!(titles, ["Launch day", "Second take"]);
    let seen = world.monitor(&monitor).await;
    assert_eq!((seen.imported, seen.refused), (2, 1));
    assert!(seen.last_refusal.as_deref().unwrap().contains("huge.mp4") && seen.last_refusal.as_deref().unwrap().contains("more than"));

    // The next poll finds nothing new, and claims nothing.
    let claims = world.monitors.claims();
    let again = world.poller().poll(world.monitor(&monitor).await, "run-2").await;
    assert_eq!((again.imported, again.refused), (0, 0));
    assert_eq!(world.monitors.claims(), claims);

    // An object overwritten with new content is a new version, and a new title.
    world.buckets.put("media-in", "incoming/Second take.mov", &media_bytes(3_000, 5));
    let changed = world.poller().poll(world.monitor(&monitor).await, "run-3").await;
    assert_eq!(changed.imported, 1);
    assert_eq!(world.fetch_all().await.len(), 3);
    let refusals: Vec<String> =
        world.ledger.records().into_iter().filter(|r| r.event.action == "monitor.object").map(|r| r.event.reason).collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
}

#[tokio::test]
async fn a_large_listing_is_read_page_by_page_and_a_denied_bucket_is_recorded_once() {
    let world = World::new();
    let mut buckets = MemoryBuckets::new();
    buckets.page_size = 2;
    let world = World { buckets: Arc::new(buckets), ..world };
    for n in 0..5 {
        world.buckets.put("media-in", &format!("in/clip-{n}.mp4"), &media_bytes(100, n));
    }
    let monitor = world.s3_monitor(&admin(), "in/").await;
    let outcome = world.poller().poll(monitor.clone(), "run-1").await;
    assert_eq!((outcome.listed, outcome.imported), (5, 5));

    world.buckets.deny("media-in");
    for run in ["run-2", "run-3"] {
        let denied = world.poller().poll(world.monitor(&monitor).await, run).await;
        assert!(denied.error.as_deref().unwrap().contains("denied"), "{denied:?}");
    }
    assert!(world.monitor(&monitor).await.last_error.unwrap().contains("denied"));
    let polls =
        world.ledger.records().into_iter().filter(|r| r.event.action == "monitor.poll" && r.event.decision == Decision::Deny).count();
    assert_eq!(polls, 1, "the same error is in the ledger once");
}

#[tokio::test]
async fn the_fetcher_copies_only_what_was_claimed_from_the_messages_own_tenant() {
    let world = World::new();
    world.buckets.put("media-in", "in/a.mp4", &media_bytes(500, 1));
    world.buckets.put("media-in", "in/b.mp4", &media_bytes(500, 2));
    let monitor = world.s3_monitor(&admin(), "in/").await;
    world.poller().poll(monitor.clone(), "run-1").await;
    let queued = world.queues.imports();
    assert_eq!(queued.len(), 2);

    // Another tenant's message naming this monitor reads nothing.
    let mut forged = queued[0].clone();
    forged.tenant = TenantId::parse("globex").unwrap();
    assert_eq!(world.worker().handle(&delivery(&forged)).await, Handled::Done);
    assert!(world.sources.object(&format!("source/acme/{}/original", forged.content_id)).is_none());
    assert!(world.sources.object(&format!("source/globex/{}/original", forged.content_id)).is_none());

    // An object changed between the poll and the copy is refused; its new version comes next poll.
    world.buckets.put("media-in", "in/a.mp4", &media_bytes(600, 9));
    let first = queued.iter().find(|m| m.url.ends_with("a.mp4")).unwrap();
    world.worker().handle(&delivery(first)).await;
    let record = world.catalog.get(&first.tenant, &first.content_id).await.unwrap().unwrap();
    assert_eq!(record.status, ContentStatus::FailedInvalid);
    let failure = record.failure.unwrap();
    assert!(failure.message.starts_with("s3://media-in/in/a.mp4: ") && failure.message.contains("changed"), "{failure:?}");

    // A monitor removed before the copy: refused, with what to do.
    world.service().remove(&admin(), monitor.monitor_id.as_str(), &meta()).await.unwrap();
    let second = queued.iter().find(|m| m.url.ends_with("b.mp4")).unwrap();
    world.worker().handle(&delivery(second)).await;
    let record = world.catalog.get(&second.tenant, &second.content_id).await.unwrap().unwrap();
    assert_eq!(record.status, ContentStatus::FailedInvalid);
    assert!(record.failure.unwrap().message.contains("was removed"));
}

#[tokio::test]
async fn a_prefix_larger_than_one_polls_listing_is_covered_by_the_next_polls() {
    let world = World::new();
    for n in 0..10_000 {
        world.buckets.put("media-in", &format!("in/a/{n:05}.txt"), b"a note");
    }
    world.buckets.put("media-in", "in/b/late.mp4", &media_bytes(500, 7));
    let monitor = world.s3_monitor(&admin(), "in/").await;

    let first = world.poller().poll(monitor.clone(), "run-1").await;
    assert_eq!((first.listed, first.imported), (10_000, 0), "the listing limit stops the first poll");
    assert_eq!(world.monitor(&monitor).await.cursor.as_deref(), Some("in/a/09999.txt"));
    let second = world.poller().poll(world.monitor(&monitor).await, "run-2").await;
    assert_eq!((second.listed, second.imported), (1, 1), "the next resumes where it stopped");
    assert_eq!(world.monitor(&monitor).await.cursor, None, "a listing that reached the end starts over next time");
    let third = world.poller().poll(world.monitor(&monitor).await, "run-3").await;
    assert_eq!((third.listed, third.imported), (10_000, 0));
}
