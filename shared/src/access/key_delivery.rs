//! Check three: the key token. Unwraps the content key through KMS with the encryption context
//! taken from the verified token, never from unsigned request parts.

use std::sync::Arc;

use crate::access::manifest::ensure_live_session;
use crate::access::{record, AccessError, Decided, RequestMeta, INVALID_PART, INVALID_RESOURCE};
use crate::audit::AuditSink;
use crate::catalog::{ContentCatalog, ContentRecord};
use crate::cenc::{ClearKeyLicense, ClearKeyRequest, Kid, CMAF_KEY_ID};
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
    /// `GET /v1/keys/{content}/{key_id}`: the key bytes an HLS player (raw) or an SDK client
    /// (wrapped under the session's KEK) asked for.
    pub async fn deliver(
        &self,
        content_id: &str,
        key_id: &str,
        token: Option<&str>,
        proof: &SessionProof<'_>,
        meta: &RequestMeta,
    ) -> Result<KeyBytes, AccessError> {
        self.unlock(
            "key.fetch",
            content_id,
            key_id,
            token,
            proof,
            meta,
            |_, _| Ok(()),
            |claims, (), plain| {
                Ok(match claims.delivery {
                    Delivery::Raw => KeyBytes::Raw(plain),
                    Delivery::Wrapped => KeyBytes::Wrapped(
                        SessionKek::derive(&self.secret, &claims.tenant, &claims.session, &claims.content)
                            .wrap(&plain)
                            .map_err(|e| AccessError::Internal(e.to_string()))?,
                    ),
                })
            },
        )
        .await
    }

    /// `POST /v1/licenses/{content}/clearkey`: a W3C ClearKey licence for the CMAF key, after
    /// the same checks as a key (token, session proof, live session, the tenant's playable
    /// title). Every KID asked for must be this title's (derived, never taken on trust).
    pub async fn license(
        &self,
        content_id: &str,
        token: Option<&str>,
        proof: &SessionProof<'_>,
        body: &[u8],
        meta: &RequestMeta,
    ) -> Result<ClearKeyLicense, AccessError> {
        let request: Result<ClearKeyRequest, AccessError> = serde_json::from_slice(body).map_err(|e| {
            AccessError::BadRequest(format!(
                "a ClearKey licence request is the JSON a ClearKey CDM sends, {{\"kids\": [\"<base64url KID>\"], \"type\": \"temporary\"}}: {e}"
            ))
        });
        let kids = match &request {
            Ok(r) if r.kids.is_empty() || r.kids.len() > 16 => {
                Err(AccessError::BadRequest("a ClearKey licence request names 1 to 16 KIDs".into()))
            }
            Ok(r) => r
                .kids
                .iter()
                .map(|k| {
                    Kid::parse_base64url(k).ok_or_else(|| AccessError::BadRequest(format!("{k:?} is not a KID (16 bytes, base64url)")))
                })
                .collect::<Result<Vec<Kid>, AccessError>>(),
            Err(e) => Err(e.clone()),
        };
        let session_type = request.as_ref().ok().and_then(|r| r.session_type.clone()).unwrap_or_else(|| "temporary".into());
        self.unlock(
            "license.issue",
            content_id,
            CMAF_KEY_ID,
            token,
            proof,
            meta,
            |claims, record| {
                let kids = kids.clone()?;
                // The KID the transcoder wrote into this title's `tenc`, as the catalog records it.
                let ours = record
                    .publication
                    .as_ref()
                    .and_then(|p| p.cmaf.as_ref())
                    .and_then(|c| Kid::parse_uuid(&c.kid))
                    .ok_or_else(|| AccessError::NotFound(format!("content {} has no CMAF packaging to license", claims.content)))?;
                match kids.iter().find(|k| **k != ours) {
                    Some(other) => Err(AccessError::NotFound(format!("KID {other} is not a key of content {}", claims.content))),
                    None => Ok(ours),
                }
            },
            |_, kid, plain| Ok(ClearKeyLicense { keys: vec![ClearKeyLicense::key(&kid, &plain)], session_type }),
        )
        .await
    }

    /// The checks every key request passes, then the key unwrapped through KMS; `check` runs on
    /// the verified token and the title's record before KMS is asked, `finish` on the plaintext
    /// key. Audited as `action`, success or refusal.
    #[allow(clippy::too_many_arguments)]
    async fn unlock<C, T>(
        &self,
        action: &'static str,
        content_id: &str,
        key_id: &str,
        token: Option<&str>,
        proof: &SessionProof<'_>,
        meta: &RequestMeta,
        check: impl FnOnce(&TokenClaims, &ContentRecord) -> Result<C, AccessError>,
        finish: impl FnOnce(&TokenClaims, C, ContentKey) -> Result<T, AccessError>,
    ) -> Result<T, AccessError> {
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
                    let vendor_keyed = record.publication.as_ref().and_then(|p| p.cmaf.as_ref()).is_some_and(|c| c.vendor_keyed());
                    if vendor_keyed && key.as_str() == CMAF_KEY_ID {
                        return Err(AccessError::Conflict(format!(
                            "content {}'s CMAF key is held by its DRM vendor: VaultStream gives neither the key nor a ClearKey \
                             licence for it; play through the licence servers the playback answer names",
                            claims.content
                        )));
                    }
                    let checked = check(&claims, &record)?;
                    let wrapped =
                        record.keys.get(&key).ok_or_else(|| AccessError::NotFound(format!("key {key} of content {}", claims.content)))?;
                    let plain = self.vault.decrypt(&claims.tenant, &claims.content, wrapped).await.map_err(|e| match e {
                        KeyVaultError::Unavailable(m) => AccessError::Unavailable(m),
                        other => AccessError::Internal(other.to_string()),
                    })?;
                    finish(&claims, checked, plain)
                }
                .await
            }
            Err(e) => Err(e),
        };
        let decided = Decided { tenant, actor: &actor, action, resource };
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
