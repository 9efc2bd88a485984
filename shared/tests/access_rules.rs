//! The access rules with the in-memory adapters, for failures an emulator cannot produce on
//! demand: an audit ledger that is down (no grant off the books), KMS throttling or refusing, and
//! the HS256 path of the JWT verifier.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use vaultstream::access::key_delivery::KeyDeliveryService;
use vaultstream::access::playback::authorize_playback;
use vaultstream::access::{AccessError, RequestMeta};
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

/// Key delivery over in-memory adapters, with a stored key the vault can unwrap; and a key token.
async fn service(vault: Arc<MemoryKeyVault>, ledger: Arc<MemoryLedger>) -> (KeyDeliveryService, String, Vec<u8>) {
    let secret = Arc::new(ServiceSecret::from_bytes(vec![5; 32]).unwrap());
    let tokens = Arc::new(TokenSigner::new(&secret));
    let (tenant, content, session) = ids();
    let (key, wrapped) = vault.generate(&tenant, &content).await.unwrap();
    let mut stored = record(ContentStatus::Ready);
    stored.keys.insert(KeyId::for_period(0), wrapped);
    let token = tokens
        .mint(&TokenClaims {
            kind: TokenKind::Key,
            tenant,
            content,
            session,
            key_id: Some(KeyId::for_period(0)),
            delivery: Delivery::Raw,
            expires_at: 2_000,
        })
        .unwrap();
    let service = KeyDeliveryService {
        tokens,
        revocations: Arc::new(MemorySessions::new()),
        catalog: Arc::new(MemoryCatalog::with([stored])),
        vault,
        audit: ledger,
        secret,
    };
    (service, token, key.expose().to_vec())
}

fn meta() -> RequestMeta {
    RequestMeta { request_id: "r1".into(), source_ip: None, now: 1_000 }
}

#[tokio::test]
async fn no_key_leaves_when_its_grant_cannot_be_audited() {
    let ledger = Arc::new(MemoryLedger::new());
    let (service, token, key) = service(Arc::new(MemoryKeyVault::new()), ledger.clone()).await;
    assert_eq!(service.deliver("c1", "k0", Some(&token), None, &meta()).await.unwrap().as_bytes(), key.as_slice());
    ledger.set_down(true);
    let err = service.deliver("c1", "k0", Some(&token), None, &meta()).await.unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(!err.public_message().contains("unreachable"), "details stay in the logs");
}

#[tokio::test]
async fn kms_failures_map_to_retry_or_internal_and_are_audited_as_denials() {
    let ledger = Arc::new(MemoryLedger::new());
    let vault = Arc::new(MemoryKeyVault::new());
    let (service, token, _) = service(vault.clone(), ledger.clone()).await;
    vault.set_failure(Some(KeyVaultError::Unavailable("ThrottlingException".into())));
    assert_eq!(service.deliver("c1", "k0", Some(&token), None, &meta()).await.unwrap_err().status(), 503);
    vault.set_failure(Some(KeyVaultError::Mismatch));
    assert_eq!(service.deliver("c1", "k0", Some(&token), None, &meta()).await.unwrap_err().status(), 500);
    let records = ledger.records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.event.decision == vaultstream::audit::Decision::Deny && r.event.tenant.as_str() == "acme"));
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
