//! The identity provider's signing keys, cached. A token with an unknown `kid` triggers a
//! refresh (at most one per `min_refresh_interval`, so junk `kid`s cannot hammer the IdP). When
//! the IdP is unreachable, the last good key set keeps serving for up to `max_stale` past its
//! time to live, then verification fails closed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::identity::AuthError;

#[async_trait]
pub trait JwksSource: Send + Sync {
    async fn fetch(&self) -> Result<JwkSet, String>;
}

pub struct HttpJwks {
    client: reqwest::Client,
    url: String,
}

impl HttpJwks {
    /// Fails only when the TLS backend cannot start.
    pub fn new(url: impl Into<String>) -> Result<Self, String> {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(3)).build().map_err(|e| format!("cannot start an HTTPS client: {e}"))?;
        Ok(HttpJwks { client, url: url.into() })
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| format!("GET {}: {e}", self.url))?;
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
    state: Mutex<Option<Cached>>,
    last_attempt: Mutex<Option<Instant>>,
    pub ttl: Duration,
    pub max_stale: Duration,
    pub min_refresh_interval: Duration,
}

/// Pins each JWK to one algorithm: RSA keys verify RS256 only, P-256 keys ES256 only. A key
/// whose `alg` says otherwise, and symmetric keys, are skipped; that is what stops a public key
/// from ever being used as an HMAC secret.
fn usable(jwks: &JwkSet) -> HashMap<String, VerificationKey> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
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
            state: Mutex::new(None),
            last_attempt: Mutex::new(None),
            ttl: Duration::from_secs(600),
            max_stale: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(10),
        }
    }

    async fn refresh(&self, state: &mut Option<Cached>) -> Result<(), String> {
        *self.last_attempt.lock().await = Some(Instant::now());
        let jwks = self.source.fetch().await?;
        *state = Some(Cached { keys: usable(&jwks), fetched_at: Instant::now() });
        Ok(())
    }

    pub async fn key(&self, kid: &str) -> Result<VerificationKey, AuthError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let age = state.as_ref().map(|c| now.duration_since(c.fetched_at));
        if age.is_none_or(|age| age >= self.ttl) {
            if let Err(reason) = self.refresh(&mut state).await {
                let usable_stale = age.is_some_and(|age| age < self.ttl + self.max_stale);
                if !usable_stale {
                    *state = None;
                    return Err(AuthError::Unavailable(format!("the identity provider's keys cannot be fetched: {reason}")));
                }
                tracing::warn!(%reason, "JWKS refresh failed; serving cached keys");
            }
        }
        if let Some(key) = state.as_ref().and_then(|c| c.keys.get(kid)) {
            return Ok(key.clone());
        }
        let recently = self.last_attempt.lock().await.is_some_and(|t| now.duration_since(t) < self.min_refresh_interval);
        if !recently {
            if let Err(reason) = self.refresh(&mut state).await {
                tracing::warn!(%reason, "JWKS refresh for an unknown kid failed");
            }
        }
        state.as_ref().and_then(|c| c.keys.get(kid)).cloned().ok_or(AuthError::UnknownKey)
    }
}
