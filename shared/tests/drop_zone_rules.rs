//! FTP drop zones over the in-memory adapters: who may log in (a token of the tenant named, with
//! `content:write`), what a finished upload becomes (one title per file version, the file moved
//! into its source key), and what is refused: a file reported by another tenant, one replaced
//! after its upload, a queued import naming another tenant's folder. The door runs end to end,
//! with Python's ftplib against the local stack's FTPS server, in `tests/tests/drop_zone.rs`.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use vaultstream::access::{AccessError, RequestMeta};
use vaultstream::audit::Decision;
use vaultstream::catalog::{ContentCatalog, ContentStatus};
use vaultstream::identity::{Authenticator, JwtSettings, JwtVerifier};
use vaultstream::ids::{ContentId, TenantId};
use vaultstream::ingest::dispatch::Handled;
use vaultstream::ingest::drop_zone::{self, DropService, Dropped};
use vaultstream::ingest::import::ImportService;
use vaultstream::ingest::import_fetch::{ImportSettings, ImportWorker};
use vaultstream::ingest::monitor_poll::MonitoredObjects;
use vaultstream::ingest::ports::{ImportMessage, QueueMessage};
use vaultstream::ingest::url_fetch::GuardedFetcher;
use vaultstream::ingest::url_guard::FetchPolicy;
use vaultstream::memory::{
    MemoryApiTokens, MemoryBuckets, MemoryCatalog, MemoryLedger, MemoryMonitors, MemoryQueues, MemorySessions, MemorySourceStore,
};
use zeroize::Zeroizing;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const STRICT: FetchPolicy = FetchPolicy { allow_http: false, allow_loopback: false };

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn token(tenant: &str, scope: &str) -> String {
    let claims = serde_json::json!({"iss": "iss", "aud": "aud", "sub": format!("{tenant}-uploader"), "tenant": tenant, "scope": scope,
                                    "sid": "s1", "iat": now(), "exp": now() + 600});
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap()
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: now() }
}

struct World {
    catalog: Arc<MemoryCatalog>,
    sources: Arc<MemorySourceStore>,
    queues: Arc<MemoryQueues>,
    ledger: Arc<MemoryLedger>,
    sessions: Arc<MemorySessions>,
}

impl World {
    fn new() -> Self {
        World {
            catalog: Arc::new(MemoryCatalog::new()),
            sources: Arc::new(MemorySourceStore::new()),
            queues: Arc::new(MemoryQueues::new()),
            ledger: Arc::new(MemoryLedger::new()),
            sessions: Arc::new(MemorySessions::new()),
        }
    }

    fn authenticator(&self) -> Authenticator {
        let settings = JwtSettings {
            issuer: "iss".into(),
            audience: "aud".into(),
            algorithms: vec![Algorithm::HS256],
            hs256_secret: Some(Zeroizing::new(SECRET.to_vec())),
            leeway_seconds: 60,
        };
        Authenticator {
            jwt: JwtVerifier::new(settings, None).unwrap(),
            api_tokens: Arc::new(MemoryApiTokens::new()),
            revocations: self.sessions.clone(),
        }
    }

    fn drops(&self) -> DropService {
        DropService {
            imports: ImportService {
                catalog: self.catalog.clone(),
                queue: self.queues.clone(),
                audit: self.ledger.clone(),
                policy: STRICT,
            },
            sources: self.sources.clone(),
            drops: self.sources.clone(),
            revocations: self.sessions.clone(),
            audit: self.ledger.clone(),
        }
    }

    fn worker(&self) -> ImportWorker {
        ImportWorker {
            catalog: self.catalog.clone(),
            sources: self.sources.clone(),
            fetcher: Arc::new(GuardedFetcher::new(STRICT, std::time::Duration::from_secs(1), std::time::Duration::from_secs(5))),
            objects: MonitoredObjects { monitors: Arc::new(MemoryMonitors::new()), buckets: Arc::new(MemoryBuckets::new()) },
            drops: self.sources.clone(),
            failures: self.queues.clone(),
            redelivery: self.queues.clone(),
            audit: self.ledger.clone(),
            settings: ImportSettings {
                max_bytes: 1 << 20,
                part_size: 16 * 1024,
                time_limit: std::time::Duration::from_secs(5),
                ..Default::default()
            },
        }
    }

    async fn finished(&self, key: &str, username: &str) -> Result<Dropped, AccessError> {
        self.drops().finished(key, username, now(), &meta()).await
    }

    fn queued(&self, content_id: &ContentId) -> QueueMessage {
        let message = self.queues.imports().into_iter().rfind(|m| m.content_id == *content_id).unwrap();
        delivery(&message)
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

fn media_bytes(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed) % 251) as u8 | 0x80).collect()
}

fn accepted(outcome: Result<Dropped, AccessError>) -> vaultstream::ingest::import::ImportGrant {
    match outcome {
        Ok(Dropped::Accepted(grant)) => *grant,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_login_takes_a_write_token_of_the_tenant_it_names() {
    let world = World::new();
    let auth = world.authenticator();
    let login = |user: &'static str, password: String| {
        let auth = &auth;
        let ledger = world.ledger.clone();
        async move { drop_zone::login(auth, ledger.as_ref(), user, &password, &meta()).await }
    };
    let user = login("acme", token("acme", "content:write")).await.unwrap();
    assert_eq!((user.tenant.as_str(), user.subject.as_str()), ("acme", "acme-uploader"));
    // The login holds the token's session and expiry, and is confined to the folder they name.
    assert_eq!(user.grant.session.as_str(), "s1");
    assert!((now() + 590..=now() + 600).contains(&user.grant.expires_at), "{:?}", user.grant);
    assert_eq!(user.folder(), format!("drop/acme/s1.{}/", user.grant.expires_at));

    let refused = |r: Result<drop_zone::DropUser, AccessError>| r.unwrap_err().to_string();
    assert!(refused(login("acme", token("globex", "content:write")).await).contains("belongs to another tenant than acme"));
    assert!(refused(login("acme", token("acme", "content:read")).await).contains("content:write"));
    assert!(refused(login("acme", "guess".into()).await).contains("not a valid token"));
    assert!(refused(login("../globex", token("globex", "content:write")).await).contains("tenant id"));

    let records = world.ledger.records();
    let allowed: Vec<_> = records.iter().filter(|r| r.event.decision == Decision::Allow).collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0].event.tenant.as_str(), "acme");
    let denied = records.iter().filter(|r| r.event.decision == Decision::Deny && r.event.tenant == TenantId::unauthenticated()).count();
    assert_eq!(denied, 4, "refused logins go to the ledger of unverified requests");
    assert!(records.iter().all(|r| !r.event.reason.contains("guess")), "the password is never recorded");
}

#[tokio::test]
async fn a_finished_upload_becomes_one_title_and_its_file_moves_into_the_source_key() {
    let world = World::new();
    let film = media_bytes(50_000, 1);
    world.sources.put("drop/acme/s1.4000000000/in/Launch day.mov", "application/octet-stream", film.clone());
    world.sources.put("drop/acme/s1.4000000000/in/checksums.md5", "text/plain", b"abc".to_vec());

    let grant = accepted(world.finished("drop/acme/s1.4000000000/in/Launch day.mov", "acme").await);
    assert_eq!(grant.record.title, "Launch day");
    assert_eq!(grant.url, "ftp://drop/acme/in/Launch%20day.mov");
    // The same upload reported again: the same title.
    let again = accepted(world.finished("drop/acme/s1.4000000000/in/Launch day.mov", "acme").await);
    assert_eq!((again.record.content_id.clone(), again.replayed), (grant.record.content_id.clone(), true));
    assert!(
        matches!(world.finished("drop/acme/s1.4000000000/in/checksums.md5", "acme").await, Ok(Dropped::Ignored(why)) if why.contains("not a media file"))
    );

    assert_eq!(world.worker().handle(&world.queued(&grant.record.content_id)).await, Handled::Done);
    let key = format!("source/acme/{}/original", grant.record.content_id);
    assert_eq!(world.sources.object(&key).as_deref(), Some(film.as_slice()), "moved whole");
    assert!(world.sources.object("drop/acme/s1.4000000000/in/Launch day.mov").is_none(), "and gone from the drop zone");
    assert!(world.sources.object("drop/acme/s1.4000000000/in/checksums.md5").is_some(), "what was not taken stays");
    let record = world.catalog.get(&grant.record.tenant, &grant.record.content_id).await.unwrap().unwrap();
    let source = record.source.unwrap();
    assert_eq!((source.filename.as_str(), source.content_type.as_str()), ("Launch day.mov", "video/quicktime"));

    // The same file dropped again once its title moved on: no second title, and the copy goes.
    world
        .catalog
        .update(
            &record.tenant,
            &record.content_id,
            &Default::default(),
            &vaultstream::catalog::Patch { status: Some(ContentStatus::Queued), ..Default::default() },
        )
        .await
        .unwrap();
    world.sources.put("drop/acme/s1.4000000000/in/Launch day.mov", "application/octet-stream", film.clone());
    let third = accepted(world.finished("drop/acme/s1.4000000000/in/Launch day.mov", "acme").await);
    assert_eq!((third.record.content_id, third.replayed), (grant.record.content_id.clone(), true));
    assert!(world.sources.object("drop/acme/s1.4000000000/in/Launch day.mov").is_none());
    assert_eq!(world.queues.imports().len(), 2, "queued again only while the title awaited its file");
}

#[tokio::test]
async fn uploads_outside_the_uploaders_folder_or_changed_since_are_refused() {
    let world = World::new();
    world.sources.put("drop/acme/s1.4000000000/a.mp4", "video/mp4", media_bytes(1000, 2));

    // Reported as globex's upload: refused and recorded, nothing queued.
    let refused = world.finished("drop/acme/s1.4000000000/a.mp4", "globex").await.unwrap_err();
    assert!(matches!(&refused, AccessError::Forbidden(why) if why.contains("may not write in acme's drop zone")), "{refused:?}");
    assert!(world.queues.imports().is_empty());
    for bad in [
        "source/acme/x/original",
        "drop/acme/s1.4000000000/../../globex/s1.4000000000/a.mp4",
        "drop/acme/s1.4000000000/",
        "drop/acme/a.mp4",
    ] {
        assert!(matches!(world.finished(bad, "acme").await, Err(AccessError::BadRequest(_))), "{bad}");
    }

    // Replaced after the upload finished: the version reported is not what is there.
    let grant = accepted(world.finished("drop/acme/s1.4000000000/a.mp4", "acme").await);
    world.sources.put("drop/acme/s1.4000000000/a.mp4", "video/mp4", media_bytes(2000, 3));
    world.worker().handle(&world.queued(&grant.record.content_id)).await;
    let record = world.catalog.get(&grant.record.tenant, &grant.record.content_id).await.unwrap().unwrap();
    assert_eq!(record.status, ContentStatus::FailedInvalid);
    assert!(record.failure.unwrap().message.contains("replaced after its upload finished"));
    assert!(world.sources.object("drop/acme/s1.4000000000/a.mp4").is_some(), "a refused file is left for its owner");

    // A queued import of globex that names acme's folder reads nothing.
    world.sources.put("drop/globex/s1.4000000000/b.mp4", "video/mp4", media_bytes(1000, 4));
    let theirs = accepted(world.finished("drop/globex/s1.4000000000/b.mp4", "globex").await);
    let mut message = world.queues.imports().into_iter().rfind(|m| m.content_id == theirs.record.content_id).unwrap();
    message.dropped = Some(vaultstream::ingest::ports::DroppedFile { key: "drop/acme/s1.4000000000/a.mp4".into(), etag: "x".into() });
    world.worker().handle(&delivery(&message)).await;
    let record = world.catalog.get(&theirs.record.tenant, &theirs.record.content_id).await.unwrap().unwrap();
    assert_eq!(record.status, ContentStatus::FailedInvalid);
    assert!(record.failure.unwrap().message.contains("no file in the tenant's drop zone"));
    assert!(world.sources.object("drop/acme/s1.4000000000/a.mp4").is_some());
}

#[tokio::test]
async fn an_upload_whose_session_ended_is_quarantined_and_recorded_never_imported_nor_deleted() {
    use vaultstream::identity::SessionRevocations;
    let world = World::new();
    let film = media_bytes(4000, 5);
    // A login whose token expired before the upload ended.
    let expired = format!("drop/acme/s2.{}/late.mp4", now() - 5);
    world.sources.put(&expired, "video/mp4", film.clone());
    // A login whose session was revoked (the token itself still valid).
    let revoked = "drop/acme/s3.4000000000/after-revoke.mp4";
    world.sources.put(revoked, "video/mp4", film.clone());
    world.sessions.revoke(&TenantId::parse("acme").unwrap(), &vaultstream::ids::SessionId::parse("s3").unwrap(), now()).await.unwrap();

    for (key, why) in [(expired.as_str(), "expired"), (revoked, "revoked")] {
        let outcome = world.finished(key, "acme").await;
        let Ok(Dropped::Quarantined { key: kept, reason }) = outcome else { panic!("{key}: {outcome:?}") };
        assert_eq!(kept, key.replacen("drop/", "quarantine/", 1));
        assert!(reason.contains(why) && reason.contains(&kept), "{reason}");
        assert_eq!(world.sources.object(&kept).as_deref(), Some(film.as_slice()), "kept whole in quarantine");
        assert!(world.sources.object(key).is_some(), "nothing is deleted");
    }
    assert!(world.queues.imports().is_empty(), "nothing was imported");
    assert!(world.catalog.list(&TenantId::parse("acme").unwrap(), 10, None).await.unwrap().items.is_empty(), "no title was made");
    let denials: Vec<String> = world
        .ledger
        .records()
        .into_iter()
        .filter(|r| r.event.action == "drop.upload" && r.event.decision == Decision::Deny)
        .map(|r| r.event.reason)
        .collect();
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert!(denials.iter().any(|r| r.contains("expired")) && denials.iter().any(|r| r.contains("revoked")), "{denials:?}");

    // The same session, still unrevoked and unexpired, delivers as before.
    world.sources.put("drop/acme/s1.4000000000/fine.mp4", "video/mp4", film);
    accepted(world.finished("drop/acme/s1.4000000000/fine.mp4", "acme").await);
}
