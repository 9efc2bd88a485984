//! Check two: may this principal play this content? Then hand out what playback needs: signed
//! cookies for the content's folder on the tenant's CDN host and a manifest URL carrying a
//! session-bound playback token.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::access::manifest::ensure_live_session;
use crate::access::{content_resource, record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::catalog::{ContentCatalog, ContentRecord};
use crate::cdn::{sign_cookies, Policy, PolicySigner, SignError, SignedCookies, TenantHosts};
use crate::drm::{DrmSystem, LicenseServers};
use crate::identity::SessionRevocations;
use crate::ids::ContentId;
use crate::principal::{Principal, Scope};
use crate::service_secret::ServiceSecret;
use crate::session_token::{Delivery, TokenClaims, TokenKind, TokenSigner, SESSION_COOKIE};
use crate::session_wrap::SessionKek;

/// The content authorization rule, on its own so it can be read and tested at a glance.
pub fn authorize_playback(principal: &Principal, content_id: &ContentId, record: Option<&ContentRecord>) -> Result<(), AccessError> {
    if !principal.may(Scope::ContentRead) {
        return Err(AccessError::Forbidden("playing content needs the content:read scope".into()));
    }
    // Records are looked up under the principal's tenant; the check is repeated so that a
    // catalog returning another tenant's record still cannot leak it.
    let record = record.filter(|r| r.tenant == principal.tenant).ok_or_else(|| AccessError::NotFound(format!("content {content_id}")))?;
    if !record.status.is_playable() {
        return Err(AccessError::Conflict(format!("content {content_id} is {} and cannot be played yet", record.status)));
    }
    Ok(())
}

#[derive(Debug)]
pub struct PlaybackGrant {
    pub manifest_url: String,
    /// Epoch seconds; the cookies and the playback token expire together.
    pub expires_at: u64,
    pub cookies: SignedCookies,
    /// Where the cookies belong: the tenant's CDN host and the content's folder.
    pub cookie_domain: String,
    pub cookie_path: String,
    /// Wrapped delivery only: the session's key-encryption key, base64.
    pub session_key: Option<String>,
    /// The session proof key requests may carry instead of `Authorization`, as a `Set-Cookie`
    /// value for the API host, scoped to this content's key path.
    pub session_cookie: String,
    /// The CMAF packaging's manifests and DRM configuration, where the title has one.
    pub cmaf: Option<CmafGrant>,
}

impl PlaybackGrant {
    /// Every session-proof `Set-Cookie` value: the key path's, and the licence path's where the
    /// title has a CMAF packaging (the same proof, for players that cannot add headers).
    pub fn session_cookies(&self) -> Vec<String> {
        let licence = self.cmaf.as_ref().map(|_| {
            let content = self.cookie_path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
            self.session_cookie.replacen(&format!("Path=/v1/keys/{content}/"), &format!("Path=/v1/licenses/{content}/"), 1)
        });
        std::iter::once(self.session_cookie.clone()).chain(licence).collect()
    }
}

/// What a player needs for the CMAF (`cbcs`) packaging: both manifests and where licences are.
#[derive(Debug, Clone, PartialEq)]
pub struct CmafGrant {
    /// HLS over the CMAF tracks (its media playlists name the key for EME: `org.w3.clearkey`).
    pub hls_url: String,
    pub dash_url: String,
    pub kid: String,
    /// ClearKey licence server (W3C EME JSON), session-bound like key URLs; `None` where a DRM
    /// vendor holds the key.
    pub clearkey_license_url: Option<String>,
    /// A vendor-keyed title's systems and the deployment's licence server of each (`None`
    /// where the deployment names none).
    pub systems: Vec<(DrmSystem, Option<String>)>,
    /// FairPlay's application certificate, where the title has FairPlay and the deployment names one.
    pub fairplay_certificate_url: Option<String>,
}

pub struct PlaybackService {
    pub catalog: Arc<dyn ContentCatalog>,
    /// Consulted on every grant: the authorizer's answer may be cached, a revocation is not.
    pub revocations: Arc<dyn SessionRevocations>,
    pub audit: Arc<dyn AuditSink>,
    pub signer: Arc<dyn PolicySigner>,
    pub hosts: Arc<TenantHosts>,
    pub tokens: Arc<TokenSigner>,
    pub secret: Arc<ServiceSecret>,
    /// `https://api.example.com`, no trailing slash.
    pub api_base_url: String,
    /// Lifetime of the cookies and the playback token, seconds.
    pub ttl_seconds: u64,
    /// The deployment's DRM vendor licence servers.
    pub licenses: LicenseServers,
}

impl From<SignError> for AccessError {
    fn from(e: SignError) -> Self {
        match e {
            SignError::Unavailable(m) => AccessError::Unavailable(m),
            other => AccessError::Internal(other.to_string()),
        }
    }
}

impl PlaybackService {
    pub async fn start(
        &self,
        principal: &Principal,
        content_id: &str,
        delivery: Delivery,
        meta: &RequestMeta,
    ) -> Result<PlaybackGrant, AccessError> {
        let resource = content_resource(&ContentId::parse(content_id));
        let outcome = self.decide(principal, content_id, delivery, meta).await;
        let decided = Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "content.playback", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn decide(
        &self,
        principal: &Principal,
        content_id: &str,
        delivery: Delivery,
        meta: &RequestMeta,
    ) -> Result<PlaybackGrant, AccessError> {
        let content = ContentId::parse(content_id).map_err(|e| AccessError::BadRequest(e.to_string()))?;
        ensure_live_session(self.revocations.as_ref(), &principal.tenant, &principal.session).await?;
        let stored = self.catalog.get(&principal.tenant, &content).await.map_err(|e| AccessError::Unavailable(e.to_string()))?;
        authorize_playback(principal, &content, stored.as_ref())?;

        let expires_at = meta.now + self.ttl_seconds;
        let base = self.hosts.content_base(&principal.tenant, &content);
        let policy = Policy { resource: format!("{base}*"), date_less_than: expires_at, date_greater_than: None, ip_address: None };
        let cookies = sign_cookies(self.signer.as_ref(), &policy).await?;
        let claims = TokenClaims {
            kind: TokenKind::Playback,
            tenant: principal.tenant.clone(),
            content: content.clone(),
            session: principal.session.clone(),
            key_id: None,
            delivery,
            expires_at,
        };
        let token = self.tokens.mint(&claims)?;
        let cmaf = match stored.as_ref().and_then(|r| r.publication.as_ref()).and_then(|p| p.cmaf.as_ref()) {
            Some(packaged) => {
                let systems: Vec<DrmSystem> = packaged.systems.iter().filter_map(|s| DrmSystem::parse(s)).collect();
                let clearkey_license_url = match packaged.vendor_keyed() {
                    true => None,
                    false => Some(crate::access::manifest::license_url(&self.tokens, &self.api_base_url, &claims)?),
                };
                Some(CmafGrant {
                    hls_url: format!("{}/v1/manifests/{content}/{}?token={token}", self.api_base_url, crate::cmaf::MASTER),
                    dash_url: format!("{}/v1/manifests/{content}/{}?token={token}", self.api_base_url, crate::cmaf::MPD),
                    kid: packaged.kid.clone(),
                    clearkey_license_url,
                    fairplay_certificate_url: self
                        .licenses
                        .fairplay_certificate_url
                        .clone()
                        .filter(|_| systems.contains(&DrmSystem::FairPlay)),
                    systems: systems.into_iter().map(|s| (s, self.licenses.url(s).map(str::to_string))).collect(),
                })
            }
            None => None,
        };
        let proof = self.tokens.mint(&TokenClaims { kind: TokenKind::Session, delivery: Delivery::Raw, ..claims })?;
        let session_key = (delivery == Delivery::Wrapped)
            .then(|| STANDARD.encode(SessionKek::derive(&self.secret, &principal.tenant, &principal.session, &content).expose()));
        Ok(PlaybackGrant {
            manifest_url: format!("{}/v1/manifests/{content}/master.m3u8?token={token}", self.api_base_url),
            expires_at,
            cookies,
            cookie_domain: self.hosts.host(&principal.tenant),
            cookie_path: format!("/{}/{content}/", principal.tenant),
            session_key,
            session_cookie: format!(
                "{SESSION_COOKIE}={proof}; Path=/v1/keys/{content}/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
                self.ttl_seconds
            ),
            cmaf,
        })
    }
}
