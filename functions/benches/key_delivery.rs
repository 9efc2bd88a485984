//! Key-delivery handler time in process, AWS calls stubbed by in-memory ports (catalog, KMS,
//! revocations, and an audit sink that still hashes and chains every record). Prints p50/p99
//! over many requests beside the reference: a handler that only builds the same 16-byte
//! `no-store` response. Goal: p99 ≤ 1 ms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use hdrhistogram::Histogram;
use lambda_http::{Body, Request, Response};
use vaultstream::access::key_delivery::KeyDeliveryService;
use vaultstream::audit::{AuditError, AuditEvent, AuditRecord, AuditSink, ChainId};
use vaultstream::catalog::{CatalogError, ContentCatalog, ContentRecord, ContentStatus};
use vaultstream::content_keys::{KeyVault, KeyVaultError, WrappedKey};
use vaultstream::identity::SessionRevocations;
use vaultstream::ids::{ContentId, SessionId, TenantId};
use vaultstream::service_secret::ServiceSecret;
use vaultstream::session_token::{Delivery, TokenClaims, TokenKind, TokenSigner};
use vaultstream::{ContentKey, KeyId};
use vaultstream_functions::runtime::HttpFunction;
use vaultstream_functions::handlers::key_delivery::KeyDelivery;

struct Catalog(ContentRecord);
#[async_trait]
impl ContentCatalog for Catalog {
    async fn get(&self, _: &TenantId, _: &ContentId) -> Result<Option<ContentRecord>, CatalogError> {
        Ok(Some(self.0.clone()))
    }
    async fn create(&self, _: &ContentRecord) -> Result<(), CatalogError> {
        Ok(())
    }
}

struct Vault;
#[async_trait]
impl KeyVault for Vault {
    async fn generate(&self, _: &TenantId, _: &ContentId) -> Result<(ContentKey, WrappedKey), KeyVaultError> {
        unreachable!()
    }
    async fn decrypt(&self, _: &TenantId, _: &ContentId, _: &WrappedKey) -> Result<ContentKey, KeyVaultError> {
        Ok(ContentKey::from_bytes([7; 16]))
    }
}

struct Live;
#[async_trait]
impl SessionRevocations for Live {
    async fn is_revoked(&self, _: &TenantId, _: &SessionId) -> Result<bool, String> {
        Ok(false)
    }
    async fn revoke(&self, _: &TenantId, _: &SessionId, _: u64) -> Result<(), String> {
        Ok(())
    }
}

/// Chains records in memory exactly as the ledger does, minus the network.
#[derive(Default)]
struct MemoryLedger(Mutex<HashMap<String, (u64, String)>>);
#[async_trait]
impl AuditSink for MemoryLedger {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let (time, day) = vaultstream::audit::ledger::now_rfc3339_millis();
        let chain = ChainId { tenant: event.tenant.clone(), day, shard: 0 };
        let mut heads = self.0.lock().unwrap();
        let head = heads.entry(chain.to_string()).or_insert_with(|| (0, chain.genesis_hash()));
        let record = AuditRecord::new(chain, head.0 + 1, time, event, head.1.clone());
        *head = (record.seq, record.hash.clone());
        Ok(record)
    }
}

fn request(token: &str) -> Request {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "GET /v1/keys/{content_id}/{key_id}", "rawPath": "/v1/keys/movie1/k0", "rawQueryString": format!("token={token}"),
        "headers": {"host": "api.example.com"}, "queryStringParameters": {"token": token},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "GET", "path": "/v1/keys/movie1/k0", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "t", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn reference(_request: Request) -> Response<Body> {
    vaultstream_functions::http::private(200, "application/octet-stream").body(Body::Binary(vec![7; 16])).unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let secret = Arc::new(ServiceSecret::from_bytes(vec![1; 32]).unwrap());
    let tokens = Arc::new(TokenSigner::new(&secret));
    let tenant = TenantId::parse("acme").unwrap();
    let content = ContentId::parse("movie1").unwrap();
    let record = ContentRecord { tenant: tenant.clone(), content_id: content.clone(), status: ContentStatus::Ready, title: "m".into(), keys: [(KeyId::for_period(0), WrappedKey::new(vec![9; 184]))].into() };
    let service = KeyDeliveryService {
        tokens: tokens.clone(),
        revocations: Arc::new(Live),
        catalog: Arc::new(Catalog(record)),
        vault: Arc::new(Vault),
        audit: Arc::new(MemoryLedger::default()),
        secret,
    };
    let handler = KeyDelivery { service, authenticator: None };
    let expires_at = vaultstream_functions::http::now() + 3600;
    let token = tokens.mint(&TokenClaims { kind: TokenKind::Key, tenant, content, session: SessionId::parse("s1").unwrap(), key_id: Some(KeyId::for_period(0)), delivery: Delivery::Raw, expires_at });
    let iterations: usize = std::env::var("ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);

    let (mut ours, mut theirs) = (Histogram::<u64>::new(3).unwrap(), Histogram::<u64>::new(3).unwrap());
    for i in 0..iterations + 1_000 {
        // Alternate the two so machine noise lands on both alike; the first 1,000 warm up.
        let r = request(&token);
        let start = Instant::now();
        let response = rt.block_on(handler.handle(r));
        let ns = start.elapsed().as_nanos() as u64;
        assert_eq!(response.status(), 200);
        let r = request(&token);
        let start = Instant::now();
        let response = reference(r);
        let ref_ns = start.elapsed().as_nanos() as u64;
        assert_eq!(response.status(), 200);
        if i >= 1_000 {
            ours.record(ns).unwrap();
            theirs.record(ref_ns).unwrap();
        }
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!("key_delivery handler: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {iterations} requests", us(&ours, 0.5), us(&ours, 0.99), ours.max() as f64 / 1000.0);
    println!("reference (response only): p50 {:.1} µs, p99 {:.1} µs", us(&theirs, 0.5), us(&theirs, 0.99));
    println!("RESULT key_delivery_p99_us={:.1} reference_p99_us={:.1} goal_p99_us=1000 meets_goal={}", us(&ours, 0.99), us(&theirs, 0.99), us(&ours, 0.99) <= 1000.0);
}
