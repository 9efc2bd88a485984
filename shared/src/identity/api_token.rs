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

use crate::identity::{AuthError, SessionRevocations};
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
    /// Marks the token revoked; `false` when there is no such token.
    async fn set_revoked(&self, hash: &str) -> Result<bool, String>;
}

/// The one session an API token acts as, so session-bound tokens and revocation treat machine
/// clients like signed-in viewers.
pub fn session_of(hash: &str) -> Result<SessionId, String> {
    let prefix = hash.get(..24).ok_or("an API token hash is 64 hex digits")?;
    SessionId::parse(format!("tok-{prefix}")).map_err(|e| format!("the token's session id: {e}"))
}

/// Revokes an API token and the session it acts as: the token stops authenticating, and the
/// playback and key tokens already minted for its session stop working at once. The session goes
/// first, so a failure half way leaves nothing usable; running it again is harmless. Answers the
/// token's tenant, or `None` when no token has this hash.
pub async fn revoke(
    store: &dyn ApiTokenStore,
    revocations: &dyn SessionRevocations,
    hash: &str,
    now: u64,
) -> Result<Option<TenantId>, String> {
    let Some(record) = store.find(hash).await? else { return Ok(None) };
    revocations.revoke(&record.tenant, &session_of(hash)?, now).await?;
    store.set_revoked(hash).await?;
    Ok(Some(record.tenant))
}

pub async fn authenticate(store: &dyn ApiTokenStore, token: &str, now: u64) -> Result<Principal, AuthError> {
    authenticate_until(store, token, now).await.map(|(principal, _)| principal)
}

/// [`authenticate`], and when the token expires (Unix seconds).
pub async fn authenticate_until(store: &dyn ApiTokenStore, token: &str, now: u64) -> Result<(Principal, u64), AuthError> {
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
    let principal = Principal {
        tenant: record.tenant,
        subject: record.subject,
        session: session_of(&hash).map_err(AuthError::Unavailable)?,
        scopes: record.scopes,
        credential: Credential::ApiToken,
    };
    Ok((principal, record.expires_at))
}
