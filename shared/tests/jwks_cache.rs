//! The JWKS cache: refresh on an unknown `kid`, stale keys served for at most `max_stale` while
//! the identity provider is down, then fail closed. Time is tokio's paused clock; one test
//! fetches over real HTTP from a loopback server.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use vaultstream::identity::{AuthError, HttpJwks, JwksCache, JwksSource};

fn ec_jwk(kid: &str) -> Jwk {
    let key = PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap();
    let mut jwk =
        Jwk::from_encoding_key(&EncodingKey::from_ec_pem(&key.private_key_to_pem_pkcs8().unwrap()).unwrap(), Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

#[derive(Clone, Default)]
struct FakeIdp {
    keys: Arc<Mutex<Vec<Jwk>>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
    /// How long each answer takes (paused clock); `Duration::MAX` never answers.
    delay: Arc<Mutex<Duration>>,
}

#[async_trait]
impl JwksSource for FakeIdp {
    async fn fetch(&self) -> Result<JwkSet, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        if delay == Duration::MAX {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(delay).await;
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        Ok(JwkSet { keys: self.keys.lock().unwrap().clone() })
    }
}

fn cache(idp: &FakeIdp) -> JwksCache {
    let mut cache = JwksCache::new(Box::new(idp.clone()));
    cache.ttl = Duration::from_secs(600);
    cache.max_stale = Duration::from_secs(300);
    cache.min_refresh_interval = Duration::from_secs(10);
    cache
}

#[tokio::test(start_paused = true)]
async fn unknown_kid_refreshes_at_most_once_per_interval() {
    let idp = FakeIdp::default();
    idp.keys.lock().unwrap().push(ec_jwk("a"));
    let cache = cache(&idp);
    assert_eq!(cache.key("a").await.unwrap().algorithm, Algorithm::ES256);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // The IdP rotates in key b; a token with kid b triggers a refresh once the interval passed.
    idp.keys.lock().unwrap().push(ec_jwk("b"));
    assert!(matches!(cache.key("b").await, Err(AuthError::UnknownKey)), "within the refresh interval");
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(cache.key("b").await.is_ok());
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    // Junk kids do not hammer the IdP.
    for _ in 0..50 {
        assert!(matches!(cache.key("junk").await, Err(AuthError::UnknownKey)));
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn stale_keys_serve_for_five_minutes_then_fail_closed() {
    let idp = FakeIdp::default();
    idp.keys.lock().unwrap().push(ec_jwk("a"));
    let cache = cache(&idp);
    cache.key("a").await.unwrap();
    idp.down.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(600 + 299)).await;
    assert!(cache.key("a").await.is_ok(), "served stale within 5 minutes past the TTL");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(cache.key("a").await, Err(AuthError::Unavailable(_))), "fails closed after");
    idp.down.store(false, Ordering::SeqCst);
    assert!(cache.key("a").await.is_ok(), "recovers when the IdP is back");
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_idp_at_start_is_unavailable_not_unauthenticated() {
    let idp = FakeIdp::default();
    idp.down.store(true, Ordering::SeqCst);
    let err = cache(&idp).key("a").await.err().expect("no keys without the IdP");
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn symmetric_and_mislabelled_keys_are_never_used() {
    let idp = FakeIdp::default();
    let mut wrong_alg = ec_jwk("mislabelled");
    wrong_alg.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::RS256);
    let mut secret = Jwk::from_encoding_key(&EncodingKey::from_secret(b"a shared secret of some length.."), Algorithm::HS256).unwrap();
    secret.common.key_id = Some("oct".into());
    *idp.keys.lock().unwrap() = vec![wrong_alg, secret];
    let cache = cache(&idp);
    assert!(matches!(cache.key("mislabelled").await, Err(AuthError::UnknownKey)));
    assert!(matches!(cache.key("oct").await, Err(AuthError::UnknownKey)));
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_fetch() {
    let idp = FakeIdp::default();
    idp.keys.lock().unwrap().push(ec_jwk("a"));
    *idp.delay.lock().unwrap() = Duration::from_secs(1);
    let cache = Arc::new(cache(&idp));
    let callers: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn({
                let cache = cache.clone();
                async move { cache.key("a").await.map(|_| ()) }
            })
        })
        .collect();
    for caller in callers {
        assert!(caller.await.unwrap().is_ok());
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "one fetch for twenty callers");
}

/// An IdP that accepts the connection and never answers: nobody waits past the timeout, and a
/// caller whose keys are merely stale is served at once while the refresh hangs.
#[tokio::test(start_paused = true)]
async fn a_hung_idp_blocks_nobody_beyond_the_timeout() {
    let idp = FakeIdp::default();
    idp.keys.lock().unwrap().push(ec_jwk("a"));
    let cache = Arc::new(cache(&idp));
    cache.key("a").await.unwrap();
    *idp.delay.lock().unwrap() = Duration::MAX;
    tokio::time::advance(Duration::from_secs(601)).await;
    let hung = tokio::spawn({
        let cache = cache.clone();
        async move { cache.key("a").await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    assert!(cache.key("a").await.is_ok(), "stale keys serve while another caller's refresh hangs");
    assert_eq!(started.elapsed(), Duration::ZERO, "and without waiting for it");
    assert!(hung.await.unwrap().is_ok(), "the refreshing caller falls back to the stale keys after the timeout");
    // Past the stale window, the answer is a retryable failure after the timeout, not a hang.
    tokio::time::advance(Duration::from_secs(300)).await;
    let started = tokio::time::Instant::now();
    assert!(matches!(cache.key("a").await, Err(AuthError::Unavailable(_))));
    assert_eq!(started.elapsed(), cache.fetch_timeout);
}

#[tokio::test(start_paused = true)]
async fn encryption_keys_never_verify() {
    let idp = FakeIdp::default();
    let mut enc = ec_jwk("enc");
    enc.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    let mut sig = ec_jwk("sig");
    sig.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    *idp.keys.lock().unwrap() = vec![enc, sig];
    let cache = cache(&idp);
    assert!(matches!(cache.key("enc").await, Err(AuthError::UnknownKey)));
    assert!(cache.key("sig").await.is_ok());
}

#[test]
fn jwks_urls_must_be_https_off_loopback() {
    for refused in ["http://idp.example.com/.well-known/jwks.json", "ftp://idp.example.com/jwks", "file:///etc/jwks.json", "not a url"] {
        assert!(HttpJwks::new(refused).is_err(), "{refused} was accepted");
    }
    for accepted in
        ["https://idp.example.com/.well-known/jwks.json", "http://127.0.0.1:8080/jwks.json", "http://localhost/jwks", "http://[::1]/j"]
    {
        assert!(HttpJwks::new(accepted).is_ok(), "{accepted} was refused");
    }
}

#[tokio::test]
async fn fetches_over_http() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    let body = serde_json::to_string(&JwkSet { keys: vec![ec_jwk("http-key")] }).unwrap();
    std::thread::spawn(move || {
        if let Some(Ok(mut stream)) = listener.incoming().next() {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    let cache = JwksCache::new(Box::new(HttpJwks::new(url).unwrap()));
    assert!(cache.key("http-key").await.is_ok());
    let down = JwksCache::new(Box::new(HttpJwks::new("http://127.0.0.1:9/jwks.json").unwrap()));
    assert!(matches!(down.key("x").await, Err(AuthError::Unavailable(_))));
}
