//! Key-delivery handler time in process, AWS calls replaced by the in-memory adapters (catalog,
//! key vault, revocations, and a ledger that still hashes and chains every record). Every request
//! proves its session, as production requires: the session cookie (browsers), or a bearer JWT
//! (HS256 here). Prints p50/p99 over many requests beside the reference: a handler that only
//! builds the same 16-byte `no-store` response. Goal: p99 ≤ 1 ms.
//!
//! It also times the cookie case with the telemetry every deployed invocation carries (the
//! invocation span around the handler in a sampled X-Ray trace, so every span is exported to a
//! local daemon address; JSON log lines formatted; the domain events counted; the EMF lines
//! written) against the same handler with the logs alone. Goal: ratio ≤ 1.05. And the same for an
//! unsampled invocation (`Sampled=0`, most of them under X-Ray's default rule of one a second and
//! 5 % beyond): no span is recorded or exported, the rest is the same.

use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use lambda_http::{Body, Request, Response};
use vaultstream::access::key_delivery::KeyDeliveryService;
use vaultstream::catalog::{ContentRecord, ContentStatus};
use vaultstream::content_keys::KeyVault;
use vaultstream::identity::{Authenticator, JwtSettings, JwtVerifier};
use vaultstream::ids::{ContentId, SessionId, TenantId};
use vaultstream::memory::{MemoryApiTokens, MemoryCatalog, MemoryKeyVault, MemoryLedger, MemorySessions};
use vaultstream::service_secret::ServiceSecret;
use vaultstream::session_token::{Delivery, TokenClaims, TokenKind, TokenSigner, SESSION_COOKIE};
use vaultstream::KeyId;
use vaultstream_functions::handlers::key_delivery::KeyDelivery;
use vaultstream_functions::metrics::Outcome;
use vaultstream_functions::runtime::{observe, HttpFunction};

/// One invocation as the runtime wraps it (span, tally, RED and domain EMF lines into a sink
/// instead of stdout); its time in ns.
async fn with_telemetry(handler: &KeyDelivery, r: Request, context: &lambda_runtime::Context) -> u64 {
    let start = Instant::now();
    let status = |response: &Response<Body>| Outcome::Http(response.status().as_u16());
    let response = observe("key_delivery", context, false, handler.handle(r), status, &mut std::io::sink()).await;
    assert_eq!(response.status(), 200);
    start.elapsed().as_nanos() as u64
}

fn request(token: &str, proof: &Proof) -> Request {
    let mut headers = serde_json::json!({"host": "api.example.com"});
    let mut cookies = Vec::new();
    match proof {
        Proof::Cookie(value) => cookies.push(format!("{SESSION_COOKIE}={value}")),
        Proof::Bearer(jwt) => headers["authorization"] = format!("Bearer {jwt}").into(),
    }
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "GET /v1/keys/{content_id}/{key_id}", "rawPath": "/v1/keys/movie1/k0", "rawQueryString": format!("token={token}"),
        "headers": headers, "cookies": cookies, "queryStringParameters": {"token": token},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "GET", "path": "/v1/keys/movie1/k0", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "t", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

enum Proof {
    Cookie(String),
    Bearer(String),
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
    let vault = Arc::new(MemoryKeyVault::new());
    let (_, wrapped) = rt.block_on(vault.generate(&tenant, &content)).unwrap();
    let mut record = ContentRecord::new(tenant.clone(), content.clone(), ContentStatus::Ready, "m");
    record.keys.insert(KeyId::for_period(0), wrapped);
    let revocations = Arc::new(MemorySessions::new());
    let service = KeyDeliveryService {
        tokens: tokens.clone(),
        revocations: revocations.clone(),
        catalog: Arc::new(MemoryCatalog::with([record])),
        vault,
        audit: Arc::new(MemoryLedger::new()),
        secret,
    };
    const JWT_SECRET: &[u8] = b"a-bench-hs256-secret-of-32-bytes!!";
    let settings = JwtSettings {
        issuer: "iss".into(),
        audience: "aud".into(),
        algorithms: vec![jsonwebtoken::Algorithm::HS256],
        hs256_secret: Some(zeroize::Zeroizing::new(JWT_SECRET.to_vec())),
        leeway_seconds: 60,
    };
    let authenticator =
        Authenticator { jwt: JwtVerifier::new(settings, None).unwrap(), api_tokens: Arc::new(MemoryApiTokens::new()), revocations };
    let handler = KeyDelivery { service, authenticator };
    let now = vaultstream_functions::http::now();
    let claims = TokenClaims {
        kind: TokenKind::Key,
        tenant,
        content,
        session: SessionId::parse("s1").unwrap(),
        key_id: Some(KeyId::for_period(0)),
        delivery: Delivery::Raw,
        expires_at: now + 3600,
    };
    let token = tokens.mint(&claims).unwrap();
    let cookie = tokens.mint(&TokenClaims { kind: TokenKind::Session, key_id: None, ..claims }).unwrap();
    let jwt_claims = serde_json::json!({"iss": "iss", "aud": "aud", "sub": "v", "tenant": "acme", "scope": "content:read", "sid": "s1", "iat": now, "exp": now + 3600});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &jwt_claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET),
    )
    .unwrap();
    let iterations: usize = std::env::var("ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);

    // Log lines are formatted as in Lambda (JSON, span list), into a sink instead of stdout, and
    // spans go to an X-Ray daemon address (a socket here, drained by a thread) as in Lambda.
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = daemon.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while daemon.recv(&mut buf).is_ok() {}
    });
    // The subscriber every function installs, its log lines going to a sink instead of stdout.
    vaultstream_functions::logging::install("key_delivery", tracing_subscriber::EnvFilter::new("info"), std::io::sink, address);
    let mut context = lambda_runtime::Context::default();
    context.request_id = "bench".into();
    // A sampled trace of now (X-Ray drops ids older than 30 days), so every span is exported.
    let root = format!("1-{:08x}-0123456789abcdef01234567", vaultstream::clock::now_seconds());
    context.xray_trace_id = Some(format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1"));
    let mut unsampled_context = context.clone();
    unsampled_context.xray_trace_id = Some(format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=0"));
    let mut bare = Histogram::<u64>::new(3).unwrap();
    let mut observed = Histogram::<u64>::new(3).unwrap();
    let mut unsampled = Histogram::<u64>::new(3).unwrap();
    let proofs = [("session cookie", Proof::Cookie(cookie)), ("bearer JWT", Proof::Bearer(jwt))];
    let mut ours: Vec<Histogram<u64>> = proofs.iter().map(|_| Histogram::new(3).unwrap()).collect();
    let mut theirs = Histogram::<u64>::new(3).unwrap();
    for i in 0..iterations + 1_000 {
        // Interleave all of them so machine noise lands on each alike; the first 1,000 warm up.
        for (n, (_, proof)) in proofs.iter().enumerate() {
            let r = request(&token, proof);
            let start = Instant::now();
            let response = rt.block_on(handler.handle(r));
            let ns = start.elapsed().as_nanos() as u64;
            assert_eq!(response.status(), 200);
            if i >= 1_000 {
                ours[n].record(ns).unwrap();
            }
        }
        let r = request(&token, &proofs[0].1);
        let start = Instant::now();
        let response = rt.block_on(handler.handle(r));
        let bare_ns = start.elapsed().as_nanos() as u64;
        assert_eq!(response.status(), 200);
        let observed_ns = rt.block_on(with_telemetry(&handler, request(&token, &proofs[0].1), &context));
        let unsampled_ns = rt.block_on(with_telemetry(&handler, request(&token, &proofs[0].1), &unsampled_context));
        if i >= 1_000 {
            bare.record(bare_ns).unwrap();
            observed.record(observed_ns).unwrap();
            unsampled.record(unsampled_ns).unwrap();
        }
        let r = request(&token, &proofs[0].1);
        let start = Instant::now();
        let response = reference(r);
        let ref_ns = start.elapsed().as_nanos() as u64;
        assert_eq!(response.status(), 200);
        if i >= 1_000 {
            theirs.record(ref_ns).unwrap();
        }
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    for ((name, _), h) in proofs.iter().zip(&ours) {
        println!(
            "key_delivery handler, {name}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {iterations} requests",
            us(h, 0.5),
            us(h, 0.99),
            h.max() as f64 / 1000.0
        );
    }
    println!("reference (response only): p50 {:.1} µs, p99 {:.1} µs", us(&theirs, 0.5), us(&theirs, 0.99));
    println!(
        "telemetry, session cookie: handler with logs p50 {:.1} µs p99 {:.1} µs; with span and EMF line p50 {:.1} µs p99 {:.1} µs",
        us(&bare, 0.5),
        us(&bare, 0.99),
        us(&observed, 0.5),
        us(&observed, 0.99)
    );
    println!("telemetry, session cookie, unsampled trace: p50 {:.1} µs p99 {:.1} µs", us(&unsampled, 0.5), us(&unsampled, 0.99));
    println!(
        "RESULT telemetry_ratio_p50={:.3} telemetry_ratio_p99={:.3} unsampled_ratio_p50={:.3} unsampled_ratio_p99={:.3} goal_ratio=1.05",
        us(&observed, 0.5) / us(&bare, 0.5),
        us(&observed, 0.99) / us(&bare, 0.99),
        us(&unsampled, 0.5) / us(&bare, 0.5),
        us(&unsampled, 0.99) / us(&bare, 0.99)
    );
    let worst = ours.iter().map(|h| us(h, 0.99)).fold(0.0, f64::max);
    println!(
        "RESULT key_delivery_cookie_p99_us={:.1} key_delivery_bearer_p99_us={:.1} reference_p99_us={:.1} goal_p99_us=1000 meets_goal={}",
        us(&ours[0], 0.99),
        us(&ours[1], 0.99),
        us(&theirs, 0.99),
        worst <= 1000.0
    );
}
