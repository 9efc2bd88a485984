//! API tokens for machine clients: `vst_` followed by 32 random bytes (base64url). Only the
//! SHA-256 of a token is stored, with its tenant, subject, scopes and expiry; the token itself
//! is shown once, when it is created.
//!
//! DynamoDB layout (tokens table): `pk` = `TOKEN#{sha256 hex}`. Lookups happen before the
//! tenant is known, so this is the one table keyed by something other than the tenant.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::identity::AuthError;
use crate::ids::{SessionId, TenantId};
use crate::principal::{Credential, Principal, Scope};

pub const PREFIX: &str = "vst_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub tenant: TenantId,
    pub subject: String,
    pub scopes: BTreeSet<Scope>,
    /// Epoch seconds.
    pub expires_at: u64,
    pub revoked: bool,
}

/// A freshly minted token: the secret to hand over once, and its hash to store.
pub struct NewApiToken {
    pub secret: Zeroizing<String>,
    pub hash: String,
}

impl NewApiToken {
    pub fn generate() -> Result<Self, crate::Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(&mut *bytes).map_err(|e| crate::Error::Random(e.to_string()))?;
        let secret = Zeroizing::new(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(*bytes)));
        let hash = hash(&secret);
        Ok(NewApiToken { secret, hash })
    }
}

pub fn hash(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

#[async_trait]
pub trait ApiTokenStore: Send + Sync {
    async fn find(&self, hash: &str) -> Result<Option<ApiTokenRecord>, String>;
    async fn insert(&self, hash: &str, record: &ApiTokenRecord) -> Result<(), String>;
}

pub async fn authenticate(store: &dyn ApiTokenStore, token: &str, now: u64) -> Result<Principal, AuthError> {
    let body = &token[PREFIX.len()..];
    if body.len() != 43 || URL_SAFE_NO_PAD.decode(body).is_err() {
        return Err(AuthError::Malformed("an API token is vst_ followed by 43 base64url characters".into()));
    }
    let hash = hash(token);
    let record = store.find(&hash).await.map_err(AuthError::Unavailable)?.ok_or(AuthError::UnknownApiToken)?;
    if record.revoked {
        return Err(AuthError::UnknownApiToken);
    }
    if now >= record.expires_at {
        return Err(AuthError::Expired);
    }
    Ok(Principal {
        tenant: record.tenant,
        subject: record.subject,
        // A stable session per token, so session-bound tokens and revocation work the same way.
        session: SessionId::parse(format!("tok-{}", &hash[..24]))
            .map_err(|e| AuthError::Unavailable(format!("the token's session id: {e}")))?,
        scopes: record.scopes,
        credential: Credential::ApiToken,
    })
}
