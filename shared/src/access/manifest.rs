//! Serving personalised playlists to the holder of a playback token, from the version the
//! content record names as published (so a rerun of the transcode switches viewers to a whole
//! new version, never a mix).

use std::sync::Arc;

use crate::access::personalize::SubtitleRendition;
use crate::access::{personalize, record, AccessError, Decided, RequestMeta, INVALID_PART, INVALID_RESOURCE};
use crate::audit::AuditSink;
use crate::catalog::{ContentCatalog, ContentRecord, Publication};
use crate::cdn::TenantHosts;
use crate::cenc::CMAF_KEY_ID;
use crate::cmaf::{self, KeyFormat};
use crate::drm::LicenseServers;
use crate::identity::SessionRevocations;
use crate::ids::{ContentId, RenditionName, SessionId, TenantId, TrackName};
use crate::origin::{CmafTrack, PlaylistPath, PlaylistStore, Published};
use crate::session_token::{Expected, TokenClaims, TokenError, TokenKind, TokenSigner};
use crate::KeyId;

pub struct ManifestService {
    pub catalog: Arc<dyn ContentCatalog>,
    pub playlists: Arc<dyn PlaylistStore>,
    pub revocations: Arc<dyn SessionRevocations>,
    pub audit: Arc<dyn AuditSink>,
    pub hosts: Arc<TenantHosts>,
    pub tokens: Arc<TokenSigner>,
    pub api_base_url: String,
    /// The deployment's DRM vendor licence servers, named in the MPDs of vendor-keyed titles.
    pub licenses: LicenseServers,
}

impl From<TokenError> for AccessError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Encoding(m) => AccessError::Internal(m),
            TokenError::Malformed | TokenError::BadSignature | TokenError::Expired => {
                AccessError::Unauthenticated(format!("{e}; start playback again"))
            }
            other => AccessError::Forbidden(other.to_string()),
        }
    }
}

pub(crate) async fn ensure_live_session(
    revocations: &dyn SessionRevocations,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<(), AccessError> {
    match revocations.is_revoked(tenant, session).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(AccessError::Unauthenticated("the session was revoked".into())),
        Err(e) => Err(AccessError::Unavailable(e)),
    }
}

/// Which playlist a manifest URL asks for, as path text not yet validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested<'a> {
    Master,
    /// A rendition's media playlist (`720p`).
    Rendition(&'a str),
    /// A video rendition's I-frame playlist (`720p`).
    IFrames(&'a str),
    /// A caption track's media playlist (`en`).
    Captions(&'a str),
    /// The CMAF packaging's HLS master; its playlists name keys as `format` asks.
    CmafMaster(KeyFormat),
    /// A rendition's CMAF media playlist (`720p`, `video.m3u8`).
    CmafMedia(&'a str, &'a str, KeyFormat),
    /// The CMAF packaging's DASH MPD.
    Mpd,
}

impl Requested<'_> {
    /// What the answer is: an HLS playlist or a DASH MPD.
    pub fn content_type(&self) -> &'static str {
        match self {
            Requested::Mpd => "application/dash+xml",
            _ => "application/vnd.apple.mpegurl",
        }
    }
}

impl Requested<'_> {
    /// The ledger names only what validated: raw path text never reaches a record.
    fn resource(&self, content: &Result<ContentId, AccessError>) -> String {
        let Ok(c) = content else { return INVALID_RESOURCE.to_string() };
        match self {
            Requested::Master => format!("content/{c}/master.m3u8"),
            Requested::Rendition(r) => match RenditionName::parse(*r) {
                Ok(r) => format!("content/{c}/{r}/index.m3u8"),
                Err(_) => format!("content/{c}/{INVALID_PART}"),
            },
            Requested::IFrames(r) => match RenditionName::parse(*r) {
                Ok(r) => format!("content/{c}/{r}/iframes.m3u8"),
                Err(_) => format!("content/{c}/{INVALID_PART}"),
            },
            Requested::Captions(t) => match TrackName::parse(*t) {
                Ok(t) => format!("content/{c}/captions/{t}/index.m3u8"),
                Err(_) => format!("content/{c}/captions/{INVALID_PART}"),
            },
            Requested::CmafMaster(_) => format!("content/{c}/{}", cmaf::MASTER),
            Requested::CmafMedia(r, file, _) => match (RenditionName::parse(*r), CmafTrack::parse(file)) {
                (Ok(r), Some(t)) => format!("content/{c}/{r}/{}", t.playlist()),
                _ => format!("content/{c}/{INVALID_PART}"),
            },
            Requested::Mpd => format!("content/{c}/{}", cmaf::MPD),
        }
    }
}

impl ManifestService {
    pub async fn serve(
        &self,
        content_id: &str,
        requested: Requested<'_>,
        token: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<String, AccessError> {
        let content = ContentId::parse(content_id).map_err(|e| AccessError::BadRequest(e.to_string()));
        let resource = requested.resource(&content);
        let opened = token.map(|t| self.tokens.open(t));
        let verified = match (&content, &opened) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), None) => {
                Err(AccessError::Unauthenticated("the playback token is missing; use the manifest_url from the playback call".into()))
            }
            (Ok(_), Some(Err(e))) => Err(AccessError::from(e.clone())),
            (Ok(content), Some(Ok(claims))) => claims
                .check(Expected { kind: TokenKind::Playback, content, key_id: None, session: None }, meta.now)
                .map(|()| claims.clone())
                .map_err(AccessError::from),
        };
        // A refusal goes to the ledger of the tenant whose token it was; with no genuine token
        // there is no tenant, and it goes to the unauthenticated ledger.
        let (tenant, actor) = match &opened {
            Some(Ok(c)) => (c.tenant.clone(), c.session.to_string()),
            _ => (TenantId::unauthenticated(), "anonymous".to_string()),
        };
        tracing::Span::current().record("tenant", tenant.as_str());
        let outcome = match verified {
            Ok(claims) => self.render(&claims, requested, token.unwrap_or_default()).await,
            Err(e) => Err(e),
        };
        let decided = Decided { tenant, actor: &actor, action: "manifest.read", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn render(&self, claims: &TokenClaims, requested: Requested<'_>, token: &str) -> Result<String, AccessError> {
        let path = match requested {
            Requested::Master => PlaylistPath::Master,
            Requested::Rendition(r) => PlaylistPath::Media(RenditionName::parse(r).map_err(|e| AccessError::BadRequest(e.to_string()))?),
            Requested::IFrames(r) => PlaylistPath::IFrames(RenditionName::parse(r).map_err(|e| AccessError::BadRequest(e.to_string()))?),
            Requested::Captions(t) => {
                let track = TrackName::parse(t).map_err(|e| AccessError::BadRequest(e.to_string()))?;
                return self.render_captions(claims, &track).await;
            }
            Requested::CmafMaster(_) => PlaylistPath::CmafMaster,
            Requested::CmafMedia(r, file, _) => PlaylistPath::CmafMedia(
                RenditionName::parse(r).map_err(|e| AccessError::BadRequest(e.to_string()))?,
                CmafTrack::parse(file).ok_or_else(|| AccessError::NotFound(format!("CMAF playlist {file}")))?,
            ),
            Requested::Mpd => PlaylistPath::Mpd,
        };
        let content = &claims.content;
        let stored = self.playable(claims).await?;
        let publication = published_version(&stored)?;
        let published = Published { tenant: &claims.tenant, content, version: &publication.version };
        let text = self
            .playlists
            .get(&published, &path)
            .await
            .map_err(|e| AccessError::Unavailable(e.to_string()))?
            .ok_or_else(|| AccessError::NotFound(format!("playlist {} of content {content}", path.relative())))?;
        let manifests = format!("{}/v1/manifests/{content}", self.api_base_url);
        let version_base = format!("{}{}/", self.hosts.content_base(&claims.tenant, content), publication.version);
        match path {
            PlaylistPath::CmafMaster => {
                let format = match requested {
                    Requested::CmafMaster(f) => f,
                    _ => KeyFormat::default(),
                };
                let subtitles = self.subtitles(&stored, &manifests, token);
                cmaf::personalize_master(
                    &text,
                    |r, p| format!("{manifests}/{r}/{p}?token={token}&keyformat={}", format.as_str()),
                    &subtitles,
                )
            }
            PlaylistPath::CmafMedia(r, _) => {
                let format = match requested {
                    Requested::CmafMedia(_, _, f) => f,
                    _ => KeyFormat::default(),
                };
                if format == KeyFormat::Identity && publication.cmaf.as_ref().is_some_and(|c| c.vendor_keyed()) {
                    return Err(AccessError::Conflict(format!(
                        "content {content}'s key is held by its DRM vendor, so there is no identity key: \
                         ask without keyformat=identity and play through the vendor's licence servers"
                    )));
                }
                let key_url = self.key_url(claims, &cmaf_key_id()?)?;
                cmaf::personalize_media(&text, &format!("{version_base}{r}/"), &key_url, format)
            }
            PlaylistPath::Mpd => {
                let texts: Vec<cmaf::TextTrack> = stored
                    .captions
                    .iter()
                    .map(|t| cmaf::TextTrack {
                        id: t.track.to_string(),
                        language: t.language.clone(),
                        label: t.label.clone(),
                        url: format!("{}{}", self.hosts.content_base(&claims.tenant, content), t.file),
                    })
                    .collect();
                cmaf::personalize_mpd(&text, &version_base, &self.license_url(claims)?, &self.licenses, &texts)
            }
            PlaylistPath::Master => {
                let subtitles = self.subtitles(&stored, &manifests, token);
                personalize::master(&text, |p| format!("{manifests}/{}?token={token}", p.relative()), &subtitles)
            }
            PlaylistPath::Media(r) | PlaylistPath::IFrames(r) => {
                let cdn = format!("{}{}/{r}/", self.hosts.content_base(&claims.tenant, content), publication.version);
                // Key tokens live as long as the playback grant: players do not reload a VOD
                // playlist, so a key period that starts an hour in must still find its token
                // valid. What keeps a leaked key URL useless is the session proof it needs.
                personalize::media(&text, &cdn, |key_id| self.key_url(claims, key_id))
            }
        }
    }

    /// The title's caption tracks as subtitle renditions, their playlists signed for this session.
    fn subtitles(&self, stored: &ContentRecord, manifests: &str, token: &str) -> Vec<SubtitleRendition> {
        stored
            .captions
            .iter()
            .map(|t| SubtitleRendition {
                name: t.label.clone(),
                language: t.language.clone(),
                default: t.default,
                forced: t.forced,
                uri: format!("{manifests}/captions/{}/index.m3u8?token={token}", t.track),
            })
            .collect()
    }

    /// A signed, session-bound key URL (the key token lives as long as the playback grant).
    fn key_url(&self, claims: &TokenClaims, key_id: &KeyId) -> Result<String, AccessError> {
        let key_token = self.tokens.mint(&TokenClaims { kind: TokenKind::Key, key_id: Some(key_id.clone()), ..claims.clone() })?;
        Ok(format!("{}/v1/keys/{}/{key_id}?token={key_token}", self.api_base_url, claims.content))
    }

    /// The ClearKey licence URL for this session: a key token for the CMAF key `c0`.
    fn license_url(&self, claims: &TokenClaims) -> Result<String, AccessError> {
        license_url(&self.tokens, &self.api_base_url, claims)
    }

    /// The session is live and the token's content is the caller tenant's and playable.
    async fn playable(&self, claims: &TokenClaims) -> Result<ContentRecord, AccessError> {
        ensure_live_session(self.revocations.as_ref(), &claims.tenant, &claims.session).await?;
        let content = &claims.content;
        let stored = self.catalog.get(&claims.tenant, content).await.map_err(|e| AccessError::Unavailable(e.to_string()))?;
        let stored = stored.filter(|r| r.tenant == claims.tenant).ok_or_else(|| AccessError::NotFound(format!("content {content}")))?;
        if !stored.status.is_playable() {
            return Err(AccessError::Conflict(format!("content {content} is {} and cannot be played", stored.status)));
        }
        Ok(stored)
    }

    /// A caption track's playlist: its WebVTT file on the CDN, as long as the title.
    async fn render_captions(&self, claims: &TokenClaims, track: &TrackName) -> Result<String, AccessError> {
        let stored = self.playable(claims).await?;
        let publication = published_version(&stored)?;
        let content = &claims.content;
        let caption = stored
            .captions
            .iter()
            .find(|t| t.track == *track)
            .ok_or_else(|| AccessError::NotFound(format!("caption track {track} of content {content}")))?;
        let duration = publication.duration_seconds.unwrap_or(0.0).max(caption.end_seconds);
        personalize::subtitles(&format!("{}{}", self.hosts.content_base(&claims.tenant, content), caption.file), duration)
    }
}

fn cmaf_key_id() -> Result<KeyId, AccessError> {
    KeyId::try_from(CMAF_KEY_ID.to_string()).map_err(|e| AccessError::Internal(e.to_string()))
}

/// `{api}/v1/licenses/{content}/clearkey?token=…`: the ClearKey licence server for a playback
/// grant's session (the token is a key token for `c0`; the request still needs the session).
pub fn license_url(tokens: &TokenSigner, api_base_url: &str, claims: &TokenClaims) -> Result<String, AccessError> {
    let token = tokens.mint(&TokenClaims { kind: TokenKind::Key, key_id: Some(cmaf_key_id()?), ..claims.clone() })?;
    Ok(format!("{api_base_url}/v1/licenses/{}/clearkey?token={token}", claims.content))
}

fn published_version(stored: &ContentRecord) -> Result<&Publication, AccessError> {
    stored
        .publication
        .as_ref()
        .ok_or_else(|| AccessError::Internal(format!("content {} is {} but names no published version", stored.content_id, stored.status)))
}
