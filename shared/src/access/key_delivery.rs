//! Check three: the key token. Unwraps the content key through KMS with the encryption context
//! taken from the verified token, never from unsigned request parts.

use std::sync::Arc;

use crate::access::manifest::ensure_live_session;
use crate::access::{record, AccessError, Decided, RequestMeta, INVALID_PART, INVALID_RESOURCE};
use crate::audit::AuditSink;
use crate::catalog::ContentCatalog;
use crate::content_key::ContentKey;
use crate::content_keys::{KeyVault, KeyVaultError};
use crate::identity::SessionRevocations;
use crate::ids::{ContentId, SessionId, TenantId};
use crate::service_secret::ServiceSecret;
use crate::session_token::{Delivery, Expected, TokenClaims, TokenError, TokenKind, TokenSigner, SESSION_COOKIE};
use crate::session_wrap::{SessionKek, WRAPPED_LEN};
use crate::KeyId;

/// What goes back to the client.
pub enum KeyBytes {
    /// The 16 key bytes, for HLS players.
    Raw(ContentKey),
    /// AES-KW under the session's KEK, for SDK clients.
    Wrapped([u8; WRAPPED_LEN]),
}

impl KeyBytes {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            KeyBytes::Raw(key) => key.expose(),
            KeyBytes::Wrapped(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyBytes::Raw(_) => "KeyBytes::Raw(<redacted>)",
            KeyBytes::Wrapped(_) => "KeyBytes::Wrapped(<redacted>)",
        })
    }
}

/// A caller's own credential, authenticated by the handler: its tenant and session.
pub struct PresentedSession {
    pub tenant: TenantId,
    pub session: SessionId,
}

/// How a key request proves it comes from the session its key token was minted for. A key
/// token alone opens nothing: a leaked key URL is useless without the session.
pub enum SessionProof<'a> {
    /// An `Authorization` header the handler authenticated (SDK clients, players that add it).
    Bearer(PresentedSession),
    /// The `VaultStream-Session` cookie playback set (players that cannot add headers).
    Cookie(&'a str),
    Missing,
}

pub struct KeyDeliveryService {
    pub tokens: Arc<TokenSigner>,
    pub revocations: Arc<dyn SessionRevocations>,
    pub catalog: Arc<dyn ContentCatalog>,
    pub vault: Arc<dyn KeyVault>,
    pub audit: Arc<dyn AuditSink>,
    pub secret: Arc<ServiceSecret>,
}

impl KeyDeliveryService {
    pub async fn deliver(
        &self,
        content_id: &str,
        key_id: &str,
        token: Option<&str>,
        proof: &SessionProof<'_>,
        meta: &RequestMeta,
    ) -> Result<KeyBytes, AccessError> {
        let content = ContentId::parse(content_id).map_err(|e| AccessError::BadRequest(e.to_string()));
        let key = KeyId::try_from(key_id.to_string()).map_err(|e| AccessError::BadRequest(e.to_string()));
        let resource = match (&content, &key) {
            (Ok(c), Ok(k)) => format!("content/{c}/key/{k}"),
            (Ok(c), Err(_)) => format!("content/{c}/key/{INVALID_PART}"),
            (Err(_), _) => INVALID_RESOURCE.to_string(),
        };
        let opened = token.map(|t| self.tokens.open(t));
        let verified = match (content, key, &opened) {
            (Err(e), _, _) | (_, Err(e), _) => Err(e),
            (_, _, None) => {
                Err(AccessError::Unauthenticated("the key token is missing; key URLs come from the personalised playlist".into()))
            }
            (_, _, Some(Err(e))) => Err(AccessError::from(e.clone())),
            (Ok(content), Ok(key), Some(Ok(claims))) => {
                let expected = Expected { kind: TokenKind::Key, content: &content, key_id: Some(&key), session: None };
                claims
                    .check(expected, meta.now)
                    .map_err(AccessError::from)
                    .and_then(|()| self.check_proof(claims, proof, meta.now))
                    .map(|()| (claims.clone(), key))
            }
        };
        let (tenant, actor) = match &opened {
            Some(Ok(c)) => (c.tenant.clone(), c.session.to_string()),
            _ => (TenantId::unauthenticated(), "anonymous".to_string()),
        };
        tracing::Span::current().record("tenant", tenant.as_str());
        let outcome = match verified {
            Ok((claims, key)) => {
                async {
                    ensure_live_session(self.revocations.as_ref(), &claims.tenant, &claims.session).await?;
                    let record = self
                        .catalog
                        .get(&claims.tenant, &claims.content)
                        .await
                        .map_err(|e| AccessError::Unavailable(e.to_string()))?
                        .filter(|r| r.tenant == claims.tenant)
                        .ok_or_else(|| AccessError::NotFound(format!("content {}", claims.content)))?;
                    // A title taken down (or re-queued) since the playlist was served gives no more keys.
                    if !record.status.is_playable() {
                        return Err(AccessError::Conflict(format!("content {} is {} and cannot be played", claims.content, record.status)));
                    }
                    let wrapped =
                        record.keys.get(&key).ok_or_else(|| AccessError::NotFound(format!("key {key} of content {}", claims.content)))?;
                    let plain = self.vault.decrypt(&claims.tenant, &claims.content, wrapped).await.map_err(|e| match e {
                        KeyVaultError::Unavailable(m) => AccessError::Unavailable(m),
                        other => AccessError::Internal(other.to_string()),
                    })?;
                    Ok(match claims.delivery {
                        Delivery::Raw => KeyBytes::Raw(plain),
                        Delivery::Wrapped => KeyBytes::Wrapped(
                            SessionKek::derive(&self.secret, &claims.tenant, &claims.session, &claims.content)
                                .wrap(&plain)
                                .map_err(|e| AccessError::Internal(e.to_string()))?,
                        ),
                    })
                }
                .await
            }
            Err(e) => Err(e),
        };
        let decided = Decided { tenant, actor: &actor, action: "key.fetch", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    /// The request's proof of session must name the key token's tenant and session.
    fn check_proof(&self, claims: &TokenClaims, proof: &SessionProof<'_>, now: u64) -> Result<(), AccessError> {
        let other_session = || AccessError::Forbidden("the key token was issued for another session".into());
        match proof {
            SessionProof::Bearer(p) if p.tenant == claims.tenant && p.session == claims.session => Ok(()),
            SessionProof::Bearer(_) => Err(other_session()),
            SessionProof::Cookie(cookie) => {
                let expected =
                    Expected { kind: TokenKind::Session, content: &claims.content, key_id: None, session: Some(&claims.session) };
                match self.tokens.open(cookie).and_then(|c| c.check(expected, now).map(|()| c)) {
                    Ok(c) if c.tenant == claims.tenant => Ok(()),
                    Ok(_) | Err(TokenError::WrongSession) | Err(TokenError::WrongContent) => Err(other_session()),
                    Err(TokenError::Expired) => {
                        Err(AccessError::Unauthenticated(format!("the {SESSION_COOKIE} cookie expired; start playback again")))
                    }
                    Err(e) => {
                        Err(AccessError::Unauthenticated(format!("the {SESSION_COOKIE} cookie is not valid ({e}); start playback again")))
                    }
                }
            }
            SessionProof::Missing => Err(AccessError::Unauthenticated(format!(
                "a key request needs proof of the viewer's session: the Authorization header the API accepts, \
                 or the {SESSION_COOKIE} cookie the playback call set"
            ))),
        }
    }
}
