//! The access rules with the in-memory adapters, for failures an emulator cannot produce on
//! demand: an audit ledger that is down (no grant off the books), KMS throttling or refusing, and
//! the HS256 path of the JWT verifier.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use vaultstream::access::key_delivery::{KeyBytes, KeyDeliveryService, PresentedSession, SessionProof};
use vaultstream::access::manifest::Requested;
use vaultstream::access::playback::authorize_playback;
use vaultstream::access::{AccessError, RequestMeta};
use vaultstream::catalog::ContentCatalog;
use vaultstream::catalog::{ContentRecord, ContentStatus};
use vaultstream::content_keys::{KeyVault, KeyVaultError, WrappedKey};
use vaultstream::identity::{AuthError, JwtSettings, JwtVerifier};
use vaultstream::ids::{ContentId, SessionId, TenantId};
use vaultstream::memory::{MemoryCatalog, MemoryKeyVault, MemoryLedger, MemorySessions};
use vaultstream::principal::{Credential, Principal, Scope};
use vaultstream::service_secret::ServiceSecret;
use vaultstream::session_token::{Delivery, TokenClaims, TokenKind, TokenSigner};
use vaultstream::KeyId;
use zeroize::Zeroizing;

fn ids() -> (TenantId, ContentId, SessionId) {
    (TenantId::parse("acme").unwrap(), ContentId::parse("c1").unwrap(), SessionId::parse("s1").unwrap())
}

fn record(status: ContentStatus) -> ContentRecord {
    let (tenant, content, _) = ids();
    let mut record = ContentRecord::new(tenant, content, status, "t");
    record.keys.insert(KeyId::for_period(0), WrappedKey::new(vec![1; 100]));
    record
}

/// Key delivery over in-memory adapters, with a stored key the vault can unwrap; a key token and
/// the session cookie of the same session.
struct Keys {
    service: KeyDeliveryService,
    token: String,
    cookie: String,
    key: Vec<u8>,
    tokens: Arc<TokenSigner>,
    catalog: Arc<MemoryCatalog>,
}

impl Keys {
    fn proof(&self) -> SessionProof<'_> {
        SessionProof::Cookie(&self.cookie)
    }
}

fn key_claims(kind: TokenKind, expires_at: u64) -> TokenClaims {
    let (tenant, content, session) = ids();
    let key_id = (kind == TokenKind::Key).then(|| KeyId::for_period(0));
    TokenClaims { kind, tenant, content, session, key_id, delivery: Delivery::Raw, expires_at }
}

async fn keys(vault: Arc<MemoryKeyVault>, ledger: Arc<MemoryLedger>) -> Keys {
    let secret = Arc::new(ServiceSecret::from_bytes(vec![5; 32]).unwrap());
    let tokens = Arc::new(TokenSigner::new(&secret));
    let (tenant, content, _) = ids();
    let (key, wrapped) = vault.generate(&tenant, &content).await.unwrap();
    let mut stored = record(ContentStatus::Ready);
    stored.keys.insert(KeyId::for_period(0), wrapped);
    let catalog = Arc::new(MemoryCatalog::with([stored]));
    let token = tokens.mint(&key_claims(TokenKind::Key, 2_000)).unwrap();
    let cookie = tokens.mint(&key_claims(TokenKind::Session, 2_000)).unwrap();
    let service = KeyDeliveryService {
        tokens: tokens.clone(),
        revocations: Arc::new(MemorySessions::new()),
        catalog: catalog.clone(),
        vault,
        audit: ledger,
        secret,
    };
    Keys { service, token, cookie, key: key.expose().to_vec(), tokens, catalog }
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: 1_000 }
}

#[tokio::test]
async fn no_key_leaves_when_its_grant_cannot_be_audited() {
    let ledger = Arc::new(MemoryLedger::new());
    let k = keys(Arc::new(MemoryKeyVault::new()), ledger.clone()).await;
    assert_eq!(k.service.deliver("c1", "k0", Some(&k.token), &k.proof(), &meta()).await.unwrap().as_bytes(), k.key.as_slice());
    ledger.set_down(true);
    let err = k.service.deliver("c1", "k0", Some(&k.token), &k.proof(), &meta()).await.unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(!err.public_message().contains("unreachable"), "details stay in the logs");
}

#[tokio::test]
async fn kms_failures_map_to_retry_or_internal_and_are_audited_as_denials() {
    let ledger = Arc::new(MemoryLedger::new());
    let vault = Arc::new(MemoryKeyVault::new());
    let k = keys(vault.clone(), ledger.clone()).await;
    vault.set_failure(Some(KeyVaultError::Unavailable("ThrottlingException".into())));
    assert_eq!(k.service.deliver("c1", "k0", Some(&k.token), &k.proof(), &meta()).await.unwrap_err().status(), 503);
    vault.set_failure(Some(KeyVaultError::Mismatch));
    assert_eq!(k.service.deliver("c1", "k0", Some(&k.token), &k.proof(), &meta()).await.unwrap_err().status(), 500);
    let records = ledger.records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.event.decision == vaultstream::audit::Decision::Deny && r.event.tenant.as_str() == "acme"));
}

async fn try_key(k: &Keys, proof: SessionProof<'_>) -> Result<KeyBytes, AccessError> {
    k.service.deliver("c1", "k0", Some(&k.token), &proof, &meta()).await
}

/// An attacker holding a leaked key URL (the token), but not the viewer's session.
#[tokio::test]
async fn a_key_token_alone_opens_nothing() {
    let ledger = Arc::new(MemoryLedger::new());
    let k = keys(Arc::new(MemoryKeyVault::new()), ledger.clone()).await;
    let err = try_key(&k, SessionProof::Missing).await.unwrap_err();
    assert_eq!(err.status(), 401);
    assert!(err.public_message().contains("VaultStream-Session cookie") && err.public_message().contains("Authorization"), "{err}");

    // The attacker's own valid session, as a bearer credential or as a cookie of its own.
    let (tenant, _, _) = ids();
    let own = PresentedSession { tenant: tenant.clone(), session: SessionId::parse("attacker").unwrap() };
    assert_eq!(try_key(&k, SessionProof::Bearer(own)).await.unwrap_err().status(), 403);
    let foreign_tenant = PresentedSession { tenant: TenantId::parse("globex").unwrap(), session: ids().2 };
    assert_eq!(try_key(&k, SessionProof::Bearer(foreign_tenant)).await.unwrap_err().status(), 403);
    let mut other = key_claims(TokenKind::Session, 2_000);
    other.session = SessionId::parse("attacker").unwrap();
    let cookie = k.tokens.mint(&other).unwrap();
    assert_eq!(try_key(&k, SessionProof::Cookie(&cookie)).await.unwrap_err().status(), 403);
    // The viewer's cookie for another title, an expired one, a forged one, a key token as cookie.
    let mut elsewhere = key_claims(TokenKind::Session, 2_000);
    elsewhere.content = ContentId::parse("c2").unwrap();
    let cookie = k.tokens.mint(&elsewhere).unwrap();
    assert_eq!(try_key(&k, SessionProof::Cookie(&cookie)).await.unwrap_err().status(), 403);
    let cookie = k.tokens.mint(&key_claims(TokenKind::Session, 1_000)).unwrap();
    let err = try_key(&k, SessionProof::Cookie(&cookie)).await.unwrap_err();
    assert_eq!((err.status(), err.public_message().contains("expired")), (401, true), "{err}");
    let forger = TokenSigner::new(&ServiceSecret::from_bytes(vec![6; 32]).unwrap());
    let cookie = forger.mint(&key_claims(TokenKind::Session, 2_000)).unwrap();
    assert_eq!(try_key(&k, SessionProof::Cookie(&cookie)).await.unwrap_err().status(), 401);
    assert_eq!(try_key(&k, SessionProof::Cookie(&k.token)).await.unwrap_err().status(), 401);
    // The session's own proof, either way.
    assert_eq!(try_key(&k, k.proof()).await.unwrap().as_bytes(), k.key.as_slice());
    let viewer = PresentedSession { tenant, session: ids().2 };
    assert_eq!(try_key(&k, SessionProof::Bearer(viewer)).await.unwrap().as_bytes(), k.key.as_slice());
    let records = ledger.records();
    assert_eq!(records.iter().filter(|r| r.event.decision == vaultstream::audit::Decision::Deny).count(), 8);
}

/// A title taken down after its playlist was served gives no more keys.
#[tokio::test]
async fn a_title_taken_down_gives_no_more_keys() {
    let k = keys(Arc::new(MemoryKeyVault::new()), Arc::new(MemoryLedger::new())).await;
    assert!(k.service.deliver("c1", "k0", Some(&k.token), &k.proof(), &meta()).await.is_ok());
    let (tenant, content, _) = ids();
    let mut taken_down = k.catalog.get(&tenant, &content).await.unwrap().unwrap();
    taken_down.status = ContentStatus::Failed;
    k.catalog.insert(taken_down);
    let err = k.service.deliver("c1", "k0", Some(&k.token), &k.proof(), &meta()).await.unwrap_err();
    assert_eq!(err.status(), 409, "{err}");
}

/// The ledger names only validated ids: hostile path text never reaches a record.
#[tokio::test]
async fn audit_resources_come_from_validated_ids_only() {
    let ledger = Arc::new(MemoryLedger::new());
    let k = keys(Arc::new(MemoryKeyVault::new()), ledger.clone()).await;
    for (content, key) in [("../../etc\npasswd", "k0"), ("c1", "k0/../../x\r\nforged: yes")] {
        let err = k.service.deliver(content, key, Some(&k.token), &k.proof(), &meta()).await.unwrap_err();
        assert_eq!(err.status(), 400);
    }
    let resources: Vec<String> = ledger.records().iter().map(|r| r.event.resource.clone()).collect();
    assert_eq!(resources, vec!["content/(invalid id)".to_string(), "content/c1/key/(invalid id)".to_string()]);
}

#[test]
fn content_authorization_rule() {
    let (tenant, content, session) = ids();
    let viewer = Principal {
        tenant: tenant.clone(),
        subject: "v".into(),
        session,
        scopes: Scope::parse_list("content:read"),
        credential: Credential::Jwt,
    };
    assert!(authorize_playback(&viewer, &content, Some(&record(ContentStatus::Ready))).is_ok());
    assert!(authorize_playback(&viewer, &content, Some(&record(ContentStatus::Partial))).is_ok());
    for status in [
        ContentStatus::AwaitingUpload,
        ContentStatus::Queued,
        ContentStatus::Processing,
        ContentStatus::Failed,
        ContentStatus::FailedInvalid,
    ] {
        assert!(matches!(authorize_playback(&viewer, &content, Some(&record(status))), Err(AccessError::Conflict(_))), "{status}");
    }
    let creator = Principal { scopes: Scope::parse_list("content:write"), ..viewer.clone() };
    assert!(matches!(authorize_playback(&creator, &content, Some(&record(ContentStatus::Ready))), Err(AccessError::Forbidden(_))));
    // A record of another tenant is treated as absent even if a store hands it over.
    let other = Principal { tenant: TenantId::parse("globex").unwrap(), ..viewer };
    assert!(matches!(authorize_playback(&other, &content, Some(&record(ContentStatus::Ready))), Err(AccessError::NotFound(_))));
}

#[tokio::test]
async fn hs256_when_configured_and_never_with_a_public_key_as_secret() {
    const SECRET: &[u8] = b"a-local-stack-secret-of-32-bytes!!";
    let settings = JwtSettings {
        issuer: "iss".into(),
        audience: "aud".into(),
        algorithms: vec![Algorithm::HS256],
        hs256_secret: Some(Zeroizing::new(SECRET.to_vec())),
        leeway_seconds: 60,
    };
    let verifier = JwtVerifier::new(settings, None).unwrap();
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let c = serde_json::json!({"iss": "iss", "aud": "aud", "sub": "dev", "tenant": "acme", "scope": "content:read", "sid": "s1", "iat": real, "exp": real + 60});
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &EncodingKey::from_secret(SECRET)).unwrap();
    assert_eq!(verifier.verify(&token, real).await.unwrap().tenant.as_str(), "acme");
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &c,
        &EncodingKey::from_secret(b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh..."),
    )
    .unwrap();
    assert_eq!(verifier.verify(&forged, real).await.unwrap_err(), AuthError::BadSignature);
    let rs_header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
    let rs = format!("{rs_header}.{}", token.split_once('.').unwrap().1);
    assert!(matches!(verifier.verify(&rs, real).await, Err(AuthError::AlgorithmNotAllowed(_))), "RS256 is not configured here");
    // A weak secret is a configuration error, not a silent downgrade.
    let weak = JwtSettings {
        issuer: "i".into(),
        audience: "a".into(),
        algorithms: vec![Algorithm::HS256],
        hs256_secret: Some(Zeroizing::new(b"short".to_vec())),
        leeway_seconds: 60,
    };
    assert!(JwtVerifier::new(weak, None).err().unwrap().contains("at least 32 bytes"));
}

/// Players never reload a VOD playlist, so a key period that starts long after the playlist was
/// served must still find its key token valid, for as long as the playback grant lasts.
#[tokio::test]
async fn a_key_period_late_in_a_long_title_still_plays() {
    use vaultstream::access::manifest::ManifestService;
    use vaultstream::catalog::{Publication, Rendition};
    use vaultstream::cdn::TenantHosts;
    use vaultstream::ids::{RenditionName, VersionId};
    use vaultstream::memory::MemoryPlaylists;
    use vaultstream::origin::PlaylistPath;

    let k = keys(Arc::new(MemoryKeyVault::new()), Arc::new(MemoryLedger::new())).await;
    let (tenant, content, _) = ids();
    let version = VersionId::parse("v1").unwrap();
    let mut stored = k.catalog.get(&tenant, &content).await.unwrap().unwrap();
    let rendition = Rendition {
        name: "360p".into(),
        width: Some(640),
        height: Some(360),
        bandwidth: 800_000,
        codecs: "avc1.64001e".into(),
        video_range: Some("SDR".into()),
        quality: None,
    };
    stored.publication = Some(Publication {
        version: version.clone(),
        renditions: vec![rendition],
        duration_seconds: None,
        poster: None,
        thumbnails: vec![],
        storyboard: None,
        cmaf: None,
    });
    k.catalog.insert(stored);
    let playlists = Arc::new(MemoryPlaylists::new());
    let media = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n\
                 #EXT-X-KEY:METHOD=AES-128,URI=\"key://k0\"\n#EXTINF:6.0,\nseg_00000.ts\n#EXT-X-ENDLIST\n";
    let name = RenditionName::parse("360p").unwrap();
    playlists.put(&tenant, &content, &version, &PlaylistPath::Media(name), media);
    let secret = ServiceSecret::from_bytes(vec![5; 32]).unwrap();
    let manifests = ManifestService {
        catalog: k.catalog.clone(),
        playlists,
        revocations: Arc::new(MemorySessions::new()),
        audit: Arc::new(MemoryLedger::new()),
        hosts: Arc::new(TenantHosts::new(&secret, "example.com")),
        tokens: k.tokens.clone(),
        api_base_url: "https://api.example.com".into(),
        licenses: Default::default(),
    };
    // A playback grant of 30 minutes, served at t = 1,000.
    let playback = k.tokens.mint(&TokenClaims { kind: TokenKind::Playback, key_id: None, ..key_claims(TokenKind::Key, 2_800) }).unwrap();
    let at = |now: u64| RequestMeta { request_id: "r".into(), source_ip: None, now };
    let text = manifests.serve("c1", Requested::Rendition("360p"), Some(&playback), &at(1_000)).await.unwrap();
    let key_token = text.split("?token=").nth(1).and_then(|t| t.split('"').next()).unwrap().to_string();
    let cookie = k.tokens.mint(&key_claims(TokenKind::Session, 2_800)).unwrap();
    // The key period begins 25 minutes in: long after the old five-minute key-token lifetime.
    let key = k.service.deliver("c1", "k0", Some(&key_token), &SessionProof::Cookie(&cookie), &at(2_500)).await.unwrap();
    assert_eq!(key.as_bytes(), k.key.as_slice());
    // And not beyond the grant itself.
    let err = k.service.deliver("c1", "k0", Some(&key_token), &SessionProof::Cookie(&cookie), &at(2_800)).await.unwrap_err();
    assert_eq!(err.status(), 401, "{err}");
}
