//! Published HLS in the origin bucket. Each transcode publishes a complete new version under
//! `{tenant}/{content_id}/{version}/` and only then names it in the content record, so a reader
//! following the record always finds a whole set and a rerun never mixes versions. The manifest
//! function reads playlists to personalise them; segments are never read here (viewers fetch them
//! from the CDN with signed cookies).

use async_trait::async_trait;

use crate::ids::{ContentId, RenditionName, TenantId, VersionId};

/// One published version of a content item.
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    pub tenant: &'a TenantId,
    pub content: &'a ContentId,
    pub version: &'a VersionId,
}

impl Published<'_> {
    /// `{tenant}/{content_id}/{version}/`: where every file of this version lives.
    pub fn prefix(&self) -> String {
        format!("{}/{}/{}/", self.tenant, self.content, self.version)
    }
}

/// Which playlist of a content item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistPath {
    Master,
    Media(RenditionName),
    /// A video rendition's trick-play playlist (`EXT-X-I-FRAMES-ONLY`).
    IFrames(RenditionName),
    /// The CMAF packaging's HLS master (`cmaf.m3u8`).
    CmafMaster,
    /// A rendition's CMAF media playlist: its video or its audio track.
    CmafMedia(RenditionName, CmafTrack),
    /// The CMAF packaging's DASH MPD (`manifest.mpd`).
    Mpd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmafTrack {
    Video,
    Audio,
}

impl CmafTrack {
    pub fn playlist(&self) -> &'static str {
        match self {
            CmafTrack::Video => crate::cmaf::VIDEO_PLAYLIST,
            CmafTrack::Audio => crate::cmaf::AUDIO_PLAYLIST,
        }
    }

    pub fn parse(file: &str) -> Option<CmafTrack> {
        [CmafTrack::Video, CmafTrack::Audio].into_iter().find(|t| t.playlist() == file)
    }
}

impl PlaylistPath {
    pub fn relative(&self) -> String {
        match self {
            PlaylistPath::Master => "master.m3u8".into(),
            PlaylistPath::Media(r) => format!("{r}/index.m3u8"),
            PlaylistPath::IFrames(r) => format!("{r}/iframes.m3u8"),
            PlaylistPath::CmafMaster => crate::cmaf::MASTER.into(),
            PlaylistPath::CmafMedia(r, track) => format!("{r}/{}", track.playlist()),
            PlaylistPath::Mpd => crate::cmaf::MPD.into(),
        }
    }

    /// The rendition playlist a relative URI names (`720p/index.m3u8`, `720p/iframes.m3u8`).
    pub fn of_rendition(relative: &str) -> Option<PlaylistPath> {
        let (name, file) = relative.split_once('/')?;
        let name = RenditionName::parse(name).ok()?;
        match file {
            "index.m3u8" => Some(PlaylistPath::Media(name)),
            "iframes.m3u8" => Some(PlaylistPath::IFrames(name)),
            _ => None,
        }
    }

    /// The rendition whose folder holds the playlist's segments.
    pub fn rendition(&self) -> Option<&RenditionName> {
        match self {
            PlaylistPath::Master | PlaylistPath::CmafMaster | PlaylistPath::Mpd => None,
            PlaylistPath::Media(r) | PlaylistPath::IFrames(r) | PlaylistPath::CmafMedia(r, _) => Some(r),
        }
    }

    pub fn object_key(&self, published: &Published<'_>) -> String {
        format!("{}{}", published.prefix(), self.relative())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("the origin bucket is unavailable: {0}")]
    Unavailable(String),
    #[error("the stored playlist is not UTF-8")]
    NotText,
}

#[async_trait]
pub trait PlaylistStore: Send + Sync {
    async fn get(&self, published: &Published<'_>, path: &PlaylistPath) -> Result<Option<String>, OriginError>;
}
