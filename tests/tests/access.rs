//! The access path end to end against moto in server mode: JWT → authorizer → playback →
//! personalised playlists → key delivery → the 16 bytes that decrypt a segment the transcoder
//! made. Plus every way in that must stay shut, and the audit ledger that records it all.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use vaultstream::audit::Decision;
use vaultstream::aws::{DynamoApiTokens, DynamoCatalog, DynamoSessions};
use vaultstream::catalog::{ContentCatalog, ContentRecord, ContentStatus};
use vaultstream::identity::{ApiTokenRecord, ApiTokenStore, NewApiToken, SessionRevocations};
use vaultstream::ids::{ContentId, SessionId, TenantId};
use vaultstream::principal::Scope;
use vaultstream::session_wrap::SessionKek;
use vaultstream_functions::handlers::playback::Playback;
use vaultstream_functions::runtime::HttpFunction;
use vaultstream_tests::flow::*;
use vaultstream_tests::stack::{authorizer_event, claims, http_event, now, Stack};

#[tokio::test]
async fn jwt_to_key_bytes_that_decrypt_a_transcoded_segment() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let published = publish(&stack, "acme", "movie1").await;
    let jwt = stack.jwt(Algorithm::RS256, &claims("acme", "viewer-1", "content:read", "sess-1"));
    let seen = play(&f, &jwt, "movie1").await;

    assert_eq!(hex::encode(&seen.key), published.key_hex, "key delivery returns the content key");
    // The media playlist points segments at the tenant's CDN host and keys at signed key URLs.
    // Segments are those of the version the record names as published.
    assert!(seen.media.contains(".cdn.vaultstream.test/acme/movie1/v1/"), "{}", seen.media);
    assert!(!seen.media.contains("key://"));
    assert!(seen.master.contains("/v1/manifests/movie1/"));
    // Decrypt the first segment of the rendition the playlist names, with the delivered key and
    // the playlist's IV, and find MPEG-TS inside.
    let line = seen.media.lines().find(|l| l.starts_with("#EXT-X-KEY")).unwrap();
    let iv_hex = line.split("IV=0x").nth(1).unwrap().split(',').next().unwrap();
    let segment_url = seen.media.lines().find(|l| l.starts_with("https://") && l.ends_with(".ts")).unwrap();
    let relative = segment_url.split("/acme/movie1/v1/").nth(1).unwrap();
    let encrypted = std::fs::read(published.out.path().join("hls").join(relative)).unwrap();
    let key = vaultstream::ContentKey::from_bytes(seen.key.clone().try_into().unwrap());
    let iv = vaultstream::segment_cipher::Iv(hex::decode(iv_hex).unwrap().try_into().unwrap());
    let plain = vaultstream::segment_cipher::decrypt_segment(&key, &iv, &encrypted).expect("the delivered key decrypts the segment");
    assert_eq!(plain[0], 0x47, "decrypted segment is MPEG-TS");

    // The cookies are a custom policy over the content's folder, signed by the CloudFront key.
    let cookies = &seen.playback["cookies"];
    let policy = vaultstream::cdn::cloudfront_base64_decode(cookies["CloudFront-Policy"].as_str().unwrap()).unwrap();
    let policy_text = String::from_utf8(policy.clone()).unwrap();
    assert!(policy_text.contains(".cdn.vaultstream.test/acme/movie1/*"), "{policy_text}");
    let signature = vaultstream::cdn::cloudfront_base64_decode(cookies["CloudFront-Signature"].as_str().unwrap()).unwrap();
    let public = openssl::pkey::PKey::public_key_from_pem(&stack.cloudfront_public_pem).unwrap();
    let mut verifier = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha1(), &public).unwrap();
    assert!(verifier.verify_oneshot(&signature, &policy).unwrap(), "cookie signature verifies with the CloudFront public key");
    assert_eq!(cookies["CloudFront-Key-Pair-Id"], "K2JCJMDEHXQW5F");

    // Every step is in the tenant's ledger, as grants, and the chain verifies.
    let records = ledger(&stack, "acme").await;
    let actions: Vec<_> = records.iter().map(|r| (r.event.action.as_str(), r.event.decision)).collect();
    assert_eq!(
        actions,
        [
            ("session.authorize", Decision::Allow),
            ("content.playback", Decision::Allow),
            ("manifest.read", Decision::Allow),
            ("manifest.read", Decision::Allow),
            ("key.fetch", Decision::Allow)
        ]
    );
    assert!(records.iter().all(|r| r.event.source_ip.as_deref() == Some("203.0.113.7")));
    let (_, day) = vaultstream::audit::ledger::now_rfc3339_millis();
    let reports =
        vaultstream::aws::ledger::verify_day(stack.aws.dynamodb(), &stack.audit_table, &TenantId::parse("acme").unwrap(), &day, 1)
            .await
            .unwrap();
    assert!(reports[0].is_intact(), "{:?}", reports[0].problem);
    assert_eq!(reports[0].records, 5);
}

#[tokio::test]
async fn es256_jwts_and_api_tokens_are_accepted() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let es = stack.jwt(Algorithm::ES256, &claims("acme", "viewer-2", "content:read", "sess-2"));
    let ctx = authorize(&f, &es).await.expect("ES256 accepted");
    assert_eq!(ctx["tenant"], "acme");
    assert_eq!(ctx["sid"], "sess-2");

    let store = DynamoApiTokens::new(stack.aws.dynamodb().clone(), &stack.tokens_table);
    let token = NewApiToken::generate().unwrap();
    let record = ApiTokenRecord {
        tenant: TenantId::parse("acme").unwrap(),
        subject: "ci-bot".into(),
        scopes: [Scope::ContentRead].into(),
        expires_at: now() + 60,
        revoked: false,
    };
    store.insert(&token.hash, &record).await.unwrap();
    let ctx = authorize(&f, &token.secret).await.expect("API token accepted");
    assert_eq!(ctx["sub"], "ci-bot");
    assert_eq!(ctx["credential"], "api_token");
    // Only the hash is stored.
    let scan = stack.aws.dynamodb().scan().table_name(&stack.tokens_table).send().await.unwrap();
    assert!(!format!("{:?}", scan.items).contains(token.secret.as_str()));

    let expired = NewApiToken::generate().unwrap();
    store.insert(&expired.hash, &ApiTokenRecord { expires_at: now() - 1, ..record.clone() }).await.unwrap();
    assert!(authorize(&f, &expired.secret).await.is_none());
    let revoked = NewApiToken::generate().unwrap();
    store.insert(&revoked.hash, &ApiTokenRecord { revoked: true, ..record }).await.unwrap();
    assert!(authorize(&f, &revoked.secret).await.is_none());
    assert!(authorize(&f, &format!("vst_{}", "A".repeat(43))).await.is_none(), "unknown API token");
}

/// An operator revokes a machine client's API token with the CLI: the token stops
/// authenticating, and what its session already holds (playlists, key URLs, the session cookie)
/// stops working at once, not when it expires.
#[tokio::test]
async fn revoking_an_api_token_revokes_its_session() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let _film = publish(&stack, "acme", "bot-film").await;
    let store = DynamoApiTokens::new(stack.aws.dynamodb().clone(), &stack.tokens_table);
    let token = NewApiToken::generate().unwrap();
    let record = ApiTokenRecord {
        tenant: TenantId::parse("acme").unwrap(),
        subject: "ingest-bot".into(),
        scopes: [Scope::ContentRead].into(),
        expires_at: now() + 3600,
        revoked: false,
    };
    store.insert(&token.hash, &record).await.unwrap();
    let seen = play(&f, &token.secret, "bot-film").await;
    let revoke = |hash: &str| vaultstream_tests::moto::operator_cli(&["token", "revoke", "--sha256", hash, "--table", &stack.tokens_table]);
    let out = revoke(&token.hash);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked the API token of tenant acme"));
    assert!(authorize(&f, &token.secret).await.is_none(), "the revoked token still authenticates");
    assert_eq!(get(&f, &seen.key_url, &[("cookie", &seen.session_cookie)]).await.status(), 401);
    assert_eq!(get(&f, seen.playback["manifest_url"].as_str().unwrap(), &[]).await.status(), 401);
    assert!(store.find(&token.hash).await.unwrap().unwrap().revoked);
    // An unknown hash and a malformed one are usage errors that say so.
    let out = revoke(&"0".repeat(64));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API token has that SHA-256"));
    assert_eq!(revoke("not-hex").status.code(), Some(2));
}

#[tokio::test]
async fn bad_jwts_are_refused_and_audited() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let good = claims("acme", "mallory", "content:read", "sess-m");
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let now = now();
    let mut cases: Vec<(&str, String)> = vec![
        ("expired", stack.jwt(Algorithm::RS256, &with(json!({"exp": now - 120, "iat": now - 720})))),
        ("not yet valid", stack.jwt(Algorithm::RS256, &with(json!({"nbf": now + 600, "exp": now + 1200})))),
        ("issued in the future", stack.jwt(Algorithm::RS256, &with(json!({"iat": now + 600})))),
        ("wrong audience", stack.jwt(Algorithm::RS256, &with(json!({"aud": "another-api"})))),
        ("wrong issuer", stack.jwt(Algorithm::RS256, &with(json!({"iss": "https://evil.example/"})))),
        ("no tenant", stack.jwt(Algorithm::RS256, &with(json!({"tenant": null})))),
        ("tenant with a path", stack.jwt(Algorithm::RS256, &with(json!({"tenant": "../acme"})))),
        ("no session", stack.jwt(Algorithm::RS256, &with(json!({"sid": null})))),
        ("HS256 not configured", stack.jwt(Algorithm::HS256, &good)),
    ];
    // alg none: header and payload, empty signature.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(good.to_string());
    cases.push(("alg none", format!("{none_header}.{payload}.")));
    // HS/RS confusion: HS256 signed with the RSA public key as the HMAC secret, naming its kid.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(vaultstream_tests::stack::RSA_KID.into());
    cases.push(("HS/RS confusion", jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(&stack.rsa_jwt_public_pem)).unwrap()));
    // An RS256 header over an ES256 key id.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(vaultstream_tests::stack::EC_KID.into());
    cases.push((
        "algorithm not the key's",
        jsonwebtoken::encode(&header, &good, &EncodingKey::from_rsa_pem(&stack.rsa_jwt_pem).unwrap()).unwrap(),
    ));
    // Tampered payload: promote to admin, keep the signature.
    let genuine = stack.jwt(Algorithm::RS256, &good);
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(with(json!({"scope": "admin", "tenant": "globex"})).to_string());
    cases.push(("tampered", format!("{}.{forged}.{}", parts[0], parts[2])));
    cases.push(("garbage", "not-a-jwt".into()));

    for (name, token) in &cases {
        assert!(authorize(&f, token).await.is_none(), "{name}: a bad token was accepted");
    }
    let out = f.authorizer.handle(authorizer_event("GET /v1/content/{content_id}", None)).await.unwrap();
    assert!(!out.is_authorized, "no credential");
    assert!(authorize(&f, &genuine).await.is_some(), "the genuine token still works");

    let denials = ledger(&stack, "_unauthenticated").await;
    assert_eq!(denials.len(), cases.len() + 1, "every refusal is audited");
    assert!(denials.iter().all(|r| r.event.decision == Decision::Deny && r.event.action == "session.authorize"));
    let reasons: Vec<_> = denials.iter().map(|r| r.event.reason.clone()).collect();
    assert!(reasons.iter().any(|r| r.contains("expired")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("audience")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("not accepted")), "{reasons:?}");
}

#[tokio::test]
async fn tenants_cannot_reach_each_other() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let _a = publish(&stack, "acme", "secret-film").await;
    let _b = publish(&stack, "globex", "own-film").await;

    let a_viewer = stack.jwt(Algorithm::RS256, &claims("acme", "alice", "content:read", "sess-a"));
    let a_seen = play(&f, &a_viewer, "secret-film").await;
    let b_viewer = stack.jwt(Algorithm::RS256, &claims("globex", "bob", "content:read", "sess-b"));
    let b_creator = stack.jwt(Algorithm::RS256, &claims("globex", "carol", "content:write", "sess-c"));
    let b_seen = play(&f, &b_viewer, "own-film").await;

    // Playback of A's content: absent for B's viewer, forbidden for B's creator (no content:read).
    let ctx = authorize(&f, &b_viewer).await.unwrap();
    let r = start_playback(&f, &ctx, "secret-film", None).await;
    assert_eq!((r.status().as_u16(), error_code(&r)), (404, "not_found".into()));
    assert!(!body_text(&r).contains("acme"));
    let ctx = authorize(&f, &b_creator).await.unwrap();
    let r = start_playback(&f, &ctx, "secret-film", None).await;
    assert_eq!(r.status(), 403);
    // A forged authorizer context can only come from API Gateway; a missing one fails closed.
    let r = f.playback.handle(http_event("POST", "/v1/content/secret-film/playback", &[], &[], None, None)).await;
    assert_eq!(r.status(), 401);

    // B's playback token against A's manifests, and B's key token against A's keys.
    let b_token = b_seen.playback["manifest_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
    for path in ["/v1/manifests/secret-film/master.m3u8", "/v1/manifests/secret-film/360p/index.m3u8"] {
        let r = f.manifest.handle(http_event("GET", path, &[("token", &b_token)], &[], None, None)).await;
        assert_eq!(r.status(), 403, "{path}: {}", body_text(&r));
    }
    let b_key_token = b_seen.key_url.split("token=").nth(1).unwrap();
    let r = f.keys.handle(http_event("GET", "/v1/keys/secret-film/k0", &[("token", b_key_token)], &[], None, None)).await;
    assert_eq!(r.status(), 403);
    // A's key URL presented together with B's credentials: the token is not B's session.
    let r = get(&f, &a_seen.key_url, &[("authorization", &format!("Bearer {b_viewer}"))]).await;
    assert_eq!(r.status(), 403, "{}", body_text(&r));
    // No token at all.
    let r = f.keys.handle(http_event("GET", "/v1/keys/secret-film/k0", &[], &[], None, None)).await;
    assert_eq!((r.status().as_u16(), error_code(&r)), (401, "unauthenticated".into()));

    let b_records = ledger(&stack, "globex").await;
    let b_denials: Vec<_> = b_records
        .iter()
        .filter(|r| r.event.decision == Decision::Deny)
        .map(|r| (r.event.action.as_str(), r.event.resource.as_str()))
        .collect();
    assert!(b_denials.contains(&("content.playback", "content/secret-film")), "{b_denials:?}");
    assert_eq!(b_denials.iter().filter(|(a, _)| *a == "content.playback").count(), 2);
    assert_eq!(b_denials.iter().filter(|(a, _)| *a == "manifest.read").count(), 2);
    assert_eq!(b_denials.iter().filter(|(a, _)| *a == "key.fetch").count(), 1);
    // A's key token presented with B's credentials is recorded where the token belongs: in A's
    // ledger, so tenant A sees the attempt on its session.
    let a_denials: Vec<_> = ledger(&stack, "acme").await.into_iter().filter(|r| r.event.decision == Decision::Deny).collect();
    assert_eq!(a_denials.len(), 1);
    assert_eq!(a_denials[0].event.action, "key.fetch");
    assert!(a_denials[0].event.reason.contains("another session"), "{}", a_denials[0].event.reason);
}

#[tokio::test]
async fn key_tokens_are_bound_to_content_key_session_and_time() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let _one = publish(&stack, "acme", "one").await;
    let _two = publish(&stack, "acme", "two").await;
    let jwt = stack.jwt(Algorithm::RS256, &claims("acme", "v", "content:read", "sess-k"));
    let seen = play(&f, &jwt, "one").await;
    let token = seen.key_url.split("token=").nth(1).unwrap().to_string();

    let cases = [
        ("/v1/keys/two/k0", 403, "another content item"),
        ("/v1/keys/one/k1", 403, "another key id"),
        ("/v1/keys/one/..%2Fk0", 400, "a path-escaping key id"),
    ];
    for (path, status, what) in cases {
        let r = f.keys.handle(http_event("GET", path, &[("token", &token)], &[], None, None)).await;
        assert_eq!(r.status().as_u16(), status, "{what}: {}", body_text(&r));
    }
    // Another session's credentials with this session's key token.
    let other = stack.jwt(Algorithm::RS256, &claims("acme", "v", "content:read", "sess-other"));
    let r = get(&f, &seen.key_url, &[("authorization", &format!("Bearer {other}"))]).await;
    assert_eq!(r.status(), 403);
    // The playback token is not a key token, and a key token is not a playback token.
    let playback_token = seen.playback["manifest_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
    let r = f.keys.handle(http_event("GET", "/v1/keys/one/k0", &[("token", &playback_token)], &[], None, None)).await;
    assert_eq!(r.status(), 403);
    let r = f.manifest.handle(http_event("GET", "/v1/manifests/one/master.m3u8", &[("token", &token)], &[], None, None)).await;
    assert_eq!(r.status(), 403);
    // A flipped bit in the MAC.
    let mut bad = token.clone().into_bytes();
    let last = bad.len() - 2;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let r = f.keys.handle(http_event("GET", "/v1/keys/one/k0", &[("token", std::str::from_utf8(&bad).unwrap())], &[], None, None)).await;
    assert_eq!(r.status(), 401);
    // A leaked key URL alone opens nothing: the session's proof must come with it.
    let r = get(&f, &seen.key_url, &[]).await;
    assert_eq!(r.status(), 401, "{}", body_text(&r));
    assert!(body_text(&r).contains("VaultStream-Session"), "{}", body_text(&r));
    // Expired: key tokens live as long as the playback grant, here five seconds (the playlists
    // are fetched well within it; a shorter grant could lapse before them on a loaded machine).
    let brief = Playback::from_env(&stack.env().with("VAULTSTREAM_PLAYBACK_TTL_SECONDS", "5"), &stack.aws).await.unwrap();
    let ctx = serde_json::to_value(authorize(&f, &jwt).await.unwrap()).unwrap();
    let grant = brief.handle(http_event("POST", "/v1/content/one/playback", &[], &[], Some(&ctx), None)).await;
    let brief_cookie = session_cookie(&grant, "one");
    let grant: Value = serde_json::from_str(&body_text(&grant)).unwrap();
    let master = body_text(&get(&f, grant["manifest_url"].as_str().unwrap(), &[]).await);
    let variant = master.lines().find(|l| l.starts_with("https://")).unwrap();
    let media = body_text(&get(&f, variant, &[]).await);
    let stale_key_url = media.lines().find_map(|l| l.split("URI=\"").nth(1)).and_then(|r| r.split('"').next()).unwrap().to_string();
    assert_eq!(get(&f, &stale_key_url, &[("cookie", &brief_cookie)]).await.status(), 200, "within the grant");
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let r = get(&f, &stale_key_url, &[("cookie", &brief_cookie)]).await;
    assert_eq!(r.status(), 401, "{}", body_text(&r));
    assert!(body_text(&r).contains("expired"));
    // A revoked session loses its keys and playlists at once, and gets no new grant: not from the
    // authorizer, and not from playback even with an authorizer answer cached from before.
    let sessions = DynamoSessions::new(stack.aws.dynamodb().clone(), &stack.tokens_table);
    let cached = authorize(&f, &jwt).await.unwrap();
    assert_eq!(get(&f, &seen.key_url, &[("cookie", &seen.session_cookie)]).await.status(), 200);
    sessions.revoke(&TenantId::parse("acme").unwrap(), &SessionId::parse("sess-k").unwrap(), now()).await.unwrap();
    assert_eq!(get(&f, &seen.key_url, &[("cookie", &seen.session_cookie)]).await.status(), 401);
    assert_eq!(get(&f, &seen.key_url, &[("authorization", &format!("Bearer {jwt}"))]).await.status(), 401);
    assert_eq!(get(&f, seen.playback["manifest_url"].as_str().unwrap(), &[]).await.status(), 401);
    assert!(authorize(&f, &jwt).await.is_none(), "the authorizer let a revoked session through");
    let r = start_playback(&f, &cached, "one", None).await;
    assert_eq!(r.status(), 401, "{}", body_text(&r));
    assert!(body_text(&r).contains("revoked"), "{}", body_text(&r));
}

#[tokio::test]
async fn wrapped_delivery_for_sdk_clients() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let published = publish(&stack, "acme", "sdk-film").await;
    let jwt = stack.jwt(Algorithm::ES256, &claims("acme", "sdk", "content:read", "sess-w"));
    let ctx = authorize(&f, &jwt).await.unwrap();
    let r = start_playback(&f, &ctx, "sdk-film", Some(r#"{"delivery":"wrapped"}"#)).await;
    assert_eq!(r.status(), 200, "{}", body_text(&r));
    let grant: Value = serde_json::from_str(&body_text(&r)).unwrap();
    let kek = SessionKek::from_bytes(STANDARD.decode(grant["session_key"].as_str().unwrap()).unwrap().try_into().unwrap());
    let master = body_text(&get(&f, grant["manifest_url"].as_str().unwrap(), &[]).await);
    let variant = master.lines().find(|l| l.starts_with("https://")).unwrap();
    let media = body_text(&get(&f, variant, &[]).await);
    let key_url = media.lines().find_map(|l| l.split("URI=\"").nth(1)).and_then(|r| r.split('"').next()).unwrap().to_string();
    // An SDK client proves its session with its own credential.
    let wrapped = body_bytes(&get(&f, &key_url, &[("authorization", &format!("Bearer {jwt}"))]).await);
    assert_eq!(wrapped.len(), 24);
    assert_ne!(hex::encode(&wrapped[..16]), published.key_hex);
    assert_eq!(hex::encode(kek.open(&wrapped).unwrap().expose()), published.key_hex);
    let r = start_playback(&f, &ctx, "sdk-film", Some(r#"{"delivery":"smoke-signals"}"#)).await;
    assert_eq!((r.status().as_u16(), error_code(&r)), (400, "invalid_request".into()));
}

#[tokio::test]
async fn unplayable_content_is_a_conflict() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let catalog = DynamoCatalog::new(stack.aws.dynamodb().clone(), &stack.content_table);
    let record = ContentRecord::new(TenantId::parse("acme").unwrap(), ContentId::parse("pending").unwrap(), ContentStatus::Processing, "t");
    catalog.create(&record, None).await.unwrap();
    let ctx = authorize(&f, &stack.jwt(Algorithm::RS256, &claims("acme", "v", "content:read", "s1"))).await.unwrap();
    let r = start_playback(&f, &ctx, "pending", None).await;
    assert_eq!((r.status().as_u16(), error_code(&r)), (409, "not_playable".into()));
    assert!(body_text(&r).contains("PROCESSING"));
    let r = start_playback(&f, &ctx, "a/b", None).await;
    assert_eq!(r.status(), 404, "a path that is not a route");
    let r = start_playback(&f, &ctx, "bad..id", None).await;
    assert_eq!(r.status(), 400);
}

/// A request that goes around CloudFront (straight to the API's custom domain) lacks the header
/// CloudFront adds from the origin-verify secret, and is refused before any handler runs.
#[tokio::test]
async fn requests_around_the_cdn_are_refused_before_any_handler() {
    use vaultstream_functions::origin_verify::{OriginVerify, HEADER};
    let stack = Stack::provision().await;
    let value = "cdn-only-".repeat(6);
    let secret =
        stack.aws.secrets().create_secret().name(format!("origin-verify-{}", stack.suffix)).secret_string(&value).send().await.unwrap();
    let env = vaultstream_functions::env::Env::from_pairs([("VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN", secret.arn().unwrap())]);
    let check = OriginVerify::from_env(&env, &stack.aws).await.unwrap().expect("configured");
    let request = |header: Option<&str>| {
        let mut builder = lambda_http::http::Request::builder().uri("https://api-origin.cdn.example.com/v1/content");
        if let Some(h) = header {
            builder = builder.header(HEADER, h);
        }
        builder.body(lambda_http::Body::Empty).unwrap()
    };
    assert!(check.refuse(&request(Some(&value))).is_none(), "CloudFront's requests go on");
    for forged in [None, Some("guess"), Some(&value[1..])] {
        assert_eq!(check.refuse(&request(forged)).expect("refused").status(), 403, "{forged:?}");
    }
    // Unset, the check is off (the local stack's gateway is reached directly); a secret that
    // cannot be read stops the function at start, naming the variable.
    let none = vaultstream_functions::env::Env::from_pairs([("OTHER", "x")]);
    assert!(OriginVerify::from_env(&none, &stack.aws).await.unwrap().is_none());
    let missing = vaultstream_functions::env::Env::from_pairs([(
        "VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
    )]);
    let err = OriginVerify::from_env(&missing, &stack.aws).await.err().expect("refused");
    assert!(err.to_string().contains("VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN"), "{err}");
}

/// ClearKey licences for the CMAF packaging pass the same checks as keys: the viewer's session
/// (revocation ends it), the token's title, the caller's tenant and a KID of this title. Each
/// answer, granted or refused, is in the tenant's ledger.
#[tokio::test]
async fn clearkey_licences_need_the_session_the_title_and_the_tenant() {
    let stack = Stack::provision().await;
    let f = functions(&stack).await;
    let published = publish(&stack, "acme", "movie1").await;
    publish(&stack, "acme", "movie2").await;
    let jwt = stack.jwt(Algorithm::RS256, &claims("acme", "viewer-l", "content:read", "sess-l"));
    let seen = play(&f, &jwt, "movie1").await;
    let license_url = seen.playback["drm"]["clearkey"]["license_url"].as_str().expect("playback names the licence server").to_string();
    assert_eq!(seen.playback["drm"]["kid"], published.kid.as_str());
    assert!(seen.playback["dash_url"].as_str().unwrap().contains("/v1/manifests/movie1/manifest.mpd?token="), "{}", seen.playback);
    let kid = URL_SAFE_NO_PAD.encode(uuid::Uuid::parse_str(&published.kid).unwrap().as_bytes());
    let request = json!({"kids": [kid], "type": "temporary"}).to_string();
    let bearer = format!("Bearer {jwt}");

    let granted = post_license(&f, &license_url, &[("authorization", &bearer)], &request).await;
    assert_eq!(granted.status(), 200, "{}", body_text(&granted));
    assert_eq!(granted.headers()["cache-control"], "private, no-store");
    let license: Value = serde_json::from_str(&body_text(&granted)).unwrap();
    assert_eq!(license["keys"][0]["kid"], kid.as_str());
    assert_eq!(license["keys"][0]["kty"], "oct");
    assert_eq!(hex::encode(URL_SAFE_NO_PAD.decode(license["keys"][0]["k"].as_str().unwrap()).unwrap()), published.cmaf_key_hex);
    assert_ne!(published.cmaf_key_hex, published.key_hex, "the CMAF key is not the AES-128 ladder's");

    // The session cookie playback set for the licence path proves the session as well.
    let licence_cookie = playback_cookie_for(&f, &jwt, "movie1", "/v1/licenses/movie1/").await;
    let by_cookie = post_license(&f, &license_url, &[("cookie", &licence_cookie)], &request).await;
    assert_eq!(by_cookie.status(), 200, "{}", body_text(&by_cookie));

    // No session proof: 401. The licence URL of another title, or another tenant's viewer: 403.
    let bare = post_license(&f, &license_url, &[], &request).await;
    assert_eq!((bare.status().as_u16(), error_code(&bare)), (401, "unauthenticated".into()), "{}", body_text(&bare));
    let other_title = license_url.replace("/licenses/movie1/", "/licenses/movie2/");
    assert_eq!(post_license(&f, &other_title, &[("authorization", &bearer)], &request).await.status(), 403);
    let rival = stack.jwt(Algorithm::RS256, &claims("globex", "viewer-g", "content:read", "sess-g"));
    assert_eq!(post_license(&f, &license_url, &[("authorization", &format!("Bearer {rival}"))], &request).await.status(), 403);
    // A KID that is not this title's: 404; a body that is not a licence request: 400, saying what is.
    let foreign = json!({"kids": [URL_SAFE_NO_PAD.encode([7u8; 16])]}).to_string();
    assert_eq!(post_license(&f, &license_url, &[("authorization", &bearer)], &foreign).await.status(), 404);
    let garbled = post_license(&f, &license_url, &[("authorization", &bearer)], "kids=1").await;
    assert_eq!(garbled.status(), 400);
    assert!(body_text(&garbled).contains("\\\"kids\\\""), "{}", body_text(&garbled));
    // A revoked session gets no more licences.
    let sessions = DynamoSessions::new(stack.aws.dynamodb().clone(), &stack.tokens_table);
    sessions.revoke(&TenantId::parse("acme").unwrap(), &SessionId::parse("sess-l").unwrap(), now()).await.unwrap();
    let revoked = post_license(&f, &license_url, &[("authorization", &bearer)], &request).await;
    assert_eq!(revoked.status(), 401, "{}", body_text(&revoked));
    let revoked = post_license(&f, &license_url, &[("cookie", &licence_cookie)], &request).await;
    assert_eq!(revoked.status(), 401, "{}", body_text(&revoked));

    let decisions: Vec<(String, Decision)> = ledger(&stack, "acme")
        .await
        .into_iter()
        .filter(|r| r.event.action == "license.issue")
        .map(|r| (r.event.resource, r.event.decision))
        .collect();
    let allowed = decisions.iter().filter(|(_, d)| *d == Decision::Allow).count();
    let denied = decisions.iter().filter(|(_, d)| *d == Decision::Deny).count();
    // Two grants and six refusals, each under the tenant whose token it was (the rival's too);
    // the revoked session's bearer is refused by authentication before the licence service,
    // its cookie by the licence service.
    assert_eq!((allowed, denied), (2, 6), "{decisions:?}");
    assert!(decisions.iter().all(|(r, _)| r.starts_with("content/movie")), "{decisions:?}");
}

/// A title whose CMAF key a DRM vendor's SPEKE key provider holds: playback names the licence
/// server the deployment configured for each of its systems and no ClearKey one; the MPD names
/// them; VaultStream gives neither the key nor a ClearKey licence for it (409, audited), and the
/// ladder's AES-128 keys still play.
#[tokio::test]
async fn a_vendor_keyed_title_names_the_vendors_licence_servers_and_gets_no_clearkey() {
    let stack = Stack::provision().await;
    let dir = tempfile::tempdir().unwrap();
    let vendor = vaultstream_tests::speke::KeyProvider::start(dir.path());
    let widevine = "https://widevine.vendor.example/proxy?customer=acme&x=1";
    let env = stack
        .env()
        .with("VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL", widevine)
        .with("VAULTSTREAM_DRM_FAIRPLAY_LICENSE_URL", "https://fairplay.vendor.example/ksm")
        .with("VAULTSTREAM_DRM_FAIRPLAY_CERTIFICATE_URL", "https://fairplay.vendor.example/cert.der");
    let f = functions_with(&stack, env).await;
    let published = publish_keyed(&stack, "acme", "vendor1", Some(&vendor.url)).await;
    let jwt = stack.jwt(Algorithm::RS256, &claims("acme", "viewer-v", "content:read", "sess-v"));
    let seen = play(&f, &jwt, "vendor1").await;
    assert_eq!(seen.key.len(), 16, "the AES-128 ladder plays as before");

    let drm = &seen.playback["drm"];
    assert_eq!(drm["kid"], published.kid.as_str());
    assert_eq!(drm["clearkey"], Value::Null, "no ClearKey for a key VaultStream does not hold: {drm}");
    assert_eq!(drm["systems"]["widevine"]["license_url"], widevine, "{drm}");
    assert_eq!(drm["systems"]["playready"]["license_url"], Value::Null, "the deployment names no PlayReady server: {drm}");
    assert_eq!(drm["systems"]["fairplay"]["certificate_url"], "https://fairplay.vendor.example/cert.der", "{drm}");

    let mpd = body_text(&get(&f, seen.playback["dash_url"].as_str().unwrap(), &[]).await);
    assert!(mpd.contains("licenseType=\"EME-1.0\">https://widevine.vendor.example/proxy?customer=acme&amp;x=1</dashif:Laurl>"), "{mpd}");
    assert!(!mpd.contains("e2719d58") && !mpd.contains("/v1/licenses/"), "{mpd}");
    let cmaf = body_text(&get(&f, seen.playback["cmaf_manifest_url"].as_str().unwrap(), &[]).await);
    let video = cmaf.lines().find(|l| l.contains("/video.m3u8?")).expect("a CMAF variant").to_string();
    let media = body_text(&get(&f, &video, &[]).await);
    assert!(media.contains("KEYFORMAT=\"com.apple.streamingkeydelivery\"") && !media.contains("org.w3.clearkey"), "{media}");
    let identity = get(&f, &video.replace("keyformat=clearkey", "keyformat=identity"), &[]).await;
    assert_eq!(identity.status(), 409, "{}", body_text(&identity));
    assert!(body_text(&identity).contains("held by its DRM vendor"), "{}", body_text(&identity));

    // Neither the raw key nor a ClearKey licence, even with a valid c0 key token of this session
    // (as one minted before the title was re-transcoded with a vendor would be) and its proof.
    let signer = vaultstream::session_token::TokenSigner::new(
        &vaultstream::service_secret::ServiceSecret::from_hex(&stack.service_secret_hex).unwrap(),
    );
    let mut c0 = signer.open(seen.key_url.split("token=").nth(1).unwrap()).unwrap();
    c0.key_id = Some(vaultstream::KeyId::try_from("c0".to_string()).unwrap());
    let c0_token = signer.mint(&c0).unwrap();
    let licence_cookie = playback_cookie_for(&f, &jwt, "vendor1", "/v1/licenses/vendor1/").await;
    let licence_url = format!("https://api.vaultstream.test/v1/licenses/vendor1/clearkey?token={c0_token}");
    let kid = URL_SAFE_NO_PAD.encode(uuid::Uuid::parse_str(&published.kid).unwrap().as_bytes());
    let refused = post_license(&f, &licence_url, &[("cookie", &licence_cookie)], &json!({"kids": [kid]}).to_string()).await;
    assert_eq!(refused.status(), 409, "{}", body_text(&refused));
    assert!(body_text(&refused).contains("held by its DRM vendor"), "{}", body_text(&refused));
    let raw =
        get(&f, &format!("https://api.vaultstream.test/v1/keys/vendor1/c0?token={c0_token}"), &[("cookie", &seen.session_cookie)]).await;
    assert_eq!(raw.status(), 409, "{}", body_text(&raw));
    let refusals = ledger(&stack, "acme")
        .await
        .into_iter()
        .filter(|r| r.event.resource == "content/vendor1/key/c0" && r.event.decision == Decision::Deny)
        .count();
    assert_eq!(refusals, 2, "both refusals are in the ledger");
    assert_eq!(vendor.key(&published.kid).len(), 32, "the vendor gave the title's KID its key");
}

/// The `VaultStream-Session` cookie a fresh playback sets for `path`, as `name=value`.
async fn playback_cookie_for(f: &Functions, jwt: &str, content: &str, path: &str) -> String {
    let context = authorize(f, jwt).await.expect("the viewer's JWT is accepted");
    let response = start_playback(f, &context, content, None).await;
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("VaultStream-Session=") && v.split("; ").any(|a| a == format!("Path={path}")))
        .unwrap_or_else(|| panic!("playback sets a session cookie for {path}"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}
