//! The identity provider's signing keys, cached. A token with an unknown `kid` triggers a
//! refresh (at most one per `min_refresh_interval`, so junk `kid`s cannot hammer the IdP). When
//! the IdP is unreachable, the last good key set keeps serving for up to `max_stale` past its
//! time to live, then verification fails closed.
//!
//! No lock is held across a fetch: readers copy the current key set out of a short critical
//! section, and one refresh runs at a time (single flight) under `fetch_timeout`. While it runs,
//! callers with a usable key set go on with it; only callers that have nothing usable wait, and
//! never longer than the timeout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::time::Instant;

use crate::identity::AuthError;

#[async_trait]
pub trait JwksSource: Send + Sync {
    async fn fetch(&self) -> Result<JwkSet, String>;
}

pub struct HttpJwks {
    /// Built on the first fetch: an instance that never needs the key set (cookie-only traffic)
    /// does not load the root certificates for it.
    client: crate::lazy_http::LazyClient,
    url: String,
}

impl HttpJwks {
    /// The URL must be `https`; plain `http` is accepted only on loopback (the local stack).
    /// Redirects are not followed: a key set is served where the IdP says, not elsewhere.
    pub fn new(url: impl Into<String>) -> Result<Self, String> {
        let url = url.into();
        let parsed = url::Url::parse(&url).map_err(|e| format!("{url} is not a URL: {e}"))?;
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => return Err(format!("the JWKS URL must use https (it uses {other}); http is accepted only on loopback")),
        }
        let client = crate::lazy_http::LazyClient::new(move || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .https_only(!loopback)
                .redirect(reqwest::redirect::Policy::none())
                .build()
        });
        Ok(HttpJwks { client, url })
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let response = self.client.get()?.get(&self.url).send().await.map_err(|e| format!("GET {}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("GET {}: HTTP {}", self.url, response.status()));
        }
        let bytes = response.bytes().await.map_err(|e| format!("GET {}: {e}", self.url))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a JWK set: {e}", self.url))
    }
}

pub struct FileJwks(pub PathBuf);

#[async_trait]
impl JwksSource for FileJwks {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let bytes = tokio::fs::read(&self.0).await.map_err(|e| format!("{}: {e}", self.0.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a JWK set: {e}", self.0.display()))
    }
}

/// A verification key with the one algorithm it may be used with.
#[derive(Clone)]
pub struct VerificationKey {
    pub algorithm: Algorithm,
    pub key: Arc<DecodingKey>,
}

struct Cached {
    keys: HashMap<String, VerificationKey>,
    fetched_at: Instant,
}

pub struct JwksCache {
    source: Box<dyn JwksSource>,
    /// Held only to copy the `Arc` out or swap a new one in, never across an `await`.
    current: RwLock<Option<Arc<Cached>>>,
    last_attempt: RwLock<Option<Instant>>,
    /// The single-flight token: whoever holds it is the one refresh in progress.
    refreshing: tokio::sync::Mutex<()>,
    pub ttl: Duration,
    pub max_stale: Duration,
    pub min_refresh_interval: Duration,
    /// The longest a caller waits for a refresh, its own or another's.
    pub fetch_timeout: Duration,
}

/// Pins each JWK to one algorithm: RSA keys verify RS256 only, P-256 keys ES256 only. A key
/// whose `alg` says otherwise, and symmetric keys, are skipped; that is what stops a public key
/// from ever being used as an HMAC secret.
fn usable(jwks: &JwkSet) -> HashMap<String, VerificationKey> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        // A key published for encryption (or anything but signatures) never verifies a token.
        if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
            continue;
        }
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
            _ => continue,
        };
        if let Some(declared) = jwk.common.key_algorithm {
            if Algorithm::try_from(declared).ok() != Some(algorithm) {
                continue;
            }
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, VerificationKey { algorithm, key: Arc::new(key) });
        }
    }
    keys
}

impl JwksCache {
    pub fn new(source: Box<dyn JwksSource>) -> Self {
        JwksCache {
            source,
            current: RwLock::new(None),
            last_attempt: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            ttl: Duration::from_secs(600),
            max_stale: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(4),
        }
    }

    fn snapshot(&self) -> Option<Arc<Cached>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fetches once for everyone who needs it: a caller that finds a refresh in flight waits for
    /// it and uses its result instead of fetching again. `newer_than`: the key set the caller saw,
    /// so a refresh that finished meanwhile counts.
    async fn refresh(&self, newer_than: Option<Instant>) -> Result<Arc<Cached>, String> {
        let flight = async {
            let _token = self.refreshing.lock().await;
            if let Some(current) = self.snapshot().filter(|c| newer_than.is_none_or(|seen| c.fetched_at > seen)) {
                return Ok(current);
            }
            *self.last_attempt.write().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            let jwks = self.source.fetch().await?;
            let fresh = Arc::new(Cached { keys: usable(&jwks), fetched_at: Instant::now() });
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh.clone());
            Ok(fresh)
        };
        tokio::time::timeout(self.fetch_timeout, flight)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", self.fetch_timeout.as_secs_f32())))
    }

    pub async fn key(&self, kid: &str) -> Result<VerificationKey, AuthError> {
        let now = Instant::now();
        let mut cached = self.snapshot();
        let age = cached.as_ref().map(|c| now.duration_since(c.fetched_at));
        let usable_stale = age.is_some_and(|age| age < self.ttl + self.max_stale);
        // Past its time to live but still usable while another caller refreshes: go on with it.
        let refresh_in_flight = self.refreshing.try_lock().is_err();
        if age.is_none_or(|age| age >= self.ttl) && !(usable_stale && refresh_in_flight) {
            match self.refresh(cached.as_ref().map(|c| c.fetched_at)).await {
                Ok(fresh) => cached = Some(fresh),
                Err(reason) => {
                    if !usable_stale {
                        *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
                        return Err(AuthError::Unavailable(format!("the identity provider's keys cannot be fetched: {reason}")));
                    }
                    tracing::warn!(%reason, "JWKS refresh failed; serving cached keys");
                }
            }
        }
        if let Some(key) = cached.as_ref().and_then(|c| c.keys.get(kid)) {
            return Ok(key.clone());
        }
        let last = *self.last_attempt.read().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| now.duration_since(t) >= self.min_refresh_interval) {
            match self.refresh(cached.as_ref().map(|c| c.fetched_at)).await {
                Ok(fresh) => cached = Some(fresh),
                Err(reason) => tracing::warn!(%reason, "JWKS refresh for an unknown kid failed"),
            }
        }
        cached.as_ref().and_then(|c| c.keys.get(kid)).cloned().ok_or(AuthError::UnknownKey)
    }
}
