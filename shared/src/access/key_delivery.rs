//! Check three: the key token. Unwraps the content key through KMS with the encryption context
//! taken from the verified token, never from unsigned request parts.

use std::sync::Arc;

use crate::access::manifest::ensure_live_session;
use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::catalog::ContentCatalog;
use crate::content_key::ContentKey;
use crate::content_keys::{KeyVault, KeyVaultError};
use crate::identity::SessionRevocations;
use crate::ids::{ContentId, SessionId, TenantId};
use crate::service_secret::ServiceSecret;
use crate::session_token::{Delivery, Expected, TokenKind, TokenSigner};
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

/// A caller that also presented its own credential (SDK clients): the token must belong to it.
pub struct PresentedSession {
    pub tenant: TenantId,
    pub session: SessionId,
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
        presented: Option<&PresentedSession>,
        meta: &RequestMeta,
    ) -> Result<KeyBytes, AccessError> {
        let resource = format!("content/{content_id}/key/{key_id}");
        let content = ContentId::parse(content_id).map_err(|e| AccessError::BadRequest(e.to_string()));
        let key = KeyId::try_from(key_id.to_string()).map_err(|e| AccessError::BadRequest(e.to_string()));
        let opened = token.map(|t| self.tokens.open(t));
        let verified = match (content, key, &opened) {
            (Err(e), _, _) | (_, Err(e), _) => Err(e),
            (_, _, None) => {
                Err(AccessError::Unauthenticated("the key token is missing; key URLs come from the personalised playlist".into()))
            }
            (_, _, Some(Err(e))) => Err(AccessError::from(e.clone())),
            (Ok(content), Ok(key), Some(Ok(claims))) => {
                let expected =
                    Expected { kind: TokenKind::Key, content: &content, key_id: Some(&key), session: presented.map(|p| &p.session) };
                claims.check(expected, meta.now).map_err(AccessError::from).and_then(|()| match presented {
                    Some(p) if p.tenant != claims.tenant => Err(AccessError::Forbidden("the token was issued for another session".into())),
                    _ => Ok((claims.clone(), key)),
                })
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
                    ensure_live_session(self.revocations.as_ref(), &claims).await?;
                    let record =
                        self.catalog.get(&claims.tenant, &claims.content).await.map_err(|e| AccessError::Unavailable(e.to_string()))?;
                    let wrapped = record
                        .as_ref()
                        .and_then(|r| r.keys.get(&key))
                        .ok_or_else(|| AccessError::NotFound(format!("key {key} of content {}", claims.content)))?;
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
}
