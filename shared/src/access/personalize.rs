//! Personalised playlists. The origin's playlists name keys as `key://{key_id}`; here each key
//! URI becomes a signed, session-bound key URL, variant URIs become manifest URLs carrying the
//! playback token, and segment and init URIs become absolute CDN URLs (fetched with cookies).

use m3u8_rs::{AlternativeMedia, AlternativeMediaType, MediaPlaylist, MediaPlaylistType, MediaSegment, Playlist};

use crate::access::AccessError;
use crate::origin::PlaylistPath;
use crate::KeyId;

pub const KEY_URI_SCHEME: &str = "key://";

fn parse(text: &str) -> Result<Playlist, AccessError> {
    m3u8_rs::parse_playlist_res(text.as_bytes()).map_err(|_| AccessError::Internal("a stored playlist does not parse".into()))
}

fn render(playlist: &Playlist) -> Result<String, AccessError> {
    let mut out = Vec::new();
    match playlist {
        Playlist::MasterPlaylist(p) => p.write_to(&mut out),
        Playlist::MediaPlaylist(p) => p.write_to(&mut out),
    }
    .map_err(|e| AccessError::Internal(format!("playlist rendering failed: {e}")))?;
    String::from_utf8(out).map_err(|_| AccessError::Internal("playlist rendering produced non-UTF-8".into()))
}

/// The rendition playlist a variant URI names (`720p/index.m3u8`, `720p/iframes.m3u8`); anything
/// else is refused so a stored playlist cannot point viewers elsewhere.
fn variant_playlist(uri: &str) -> Result<PlaylistPath, AccessError> {
    PlaylistPath::of_rendition(uri)
        .ok_or_else(|| AccessError::Internal(format!("the master playlist names an unexpected variant URI {uri:?}")))
}

/// The group every variant names for its subtitles.
pub const SUBTITLES_GROUP: &str = "subs";

/// A caption track as the master lists it; `uri` is its personalised playlist URL.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtitleRendition {
    pub name: String,
    pub language: String,
    pub default: bool,
    pub forced: bool,
    pub uri: String,
}

/// `variant_url(playlist)` gives the manifest URL of a rendition's playlist; `subtitles`
/// become `EXT-X-MEDIA TYPE=SUBTITLES` renditions that every variant names.
pub fn master(text: &str, variant_url: impl Fn(&PlaylistPath) -> String, subtitles: &[SubtitleRendition]) -> Result<String, AccessError> {
    let mut playlist = parse(text)?;
    let Playlist::MasterPlaylist(master) = &mut playlist else {
        return Err(AccessError::Internal("master.m3u8 is a media playlist".into()));
    };
    for variant in &mut master.variants {
        variant.uri = variant_url(&variant_playlist(&variant.uri)?);
    }
    for alternative in &mut master.alternatives {
        if let Some(uri) = &alternative.uri {
            alternative.uri = Some(variant_url(&variant_playlist(uri)?));
        }
    }
    if !subtitles.is_empty() {
        // The origin's master names no subtitles: captions are the title's, not the version's.
        master.alternatives.retain(|a| a.media_type != AlternativeMediaType::Subtitles);
        let mut names: Vec<String> = Vec::new();
        for track in subtitles {
            // NAME must be unique within a group; two tracks may share a label.
            let mut name = track.name.clone();
            let mut n = 2;
            while names.contains(&name) {
                name = format!("{} ({n})", track.name);
                n += 1;
            }
            names.push(name.clone());
            master.alternatives.push(AlternativeMedia {
                media_type: AlternativeMediaType::Subtitles,
                uri: Some(track.uri.clone()),
                group_id: SUBTITLES_GROUP.into(),
                language: Some(track.language.clone()),
                name,
                default: track.default,
                // A forced track must be selectable automatically (RFC 8216 4.3.4.1).
                autoselect: true,
                forced: track.forced,
                ..Default::default()
            });
        }
        for variant in master.variants.iter_mut().filter(|v| !v.is_i_frame) {
            variant.subtitles = Some(SUBTITLES_GROUP.into());
        }
    }
    render(&playlist)
}

/// A caption track's media playlist: one segment, the whole WebVTT file at `file_url`.
pub fn subtitles(file_url: &str, duration_seconds: f64) -> Result<String, AccessError> {
    let duration = duration_seconds.max(0.001);
    let playlist = Playlist::MediaPlaylist(MediaPlaylist {
        version: Some(3),
        target_duration: duration.ceil() as u64,
        playlist_type: Some(MediaPlaylistType::Vod),
        end_list: true,
        segments: vec![MediaSegment { uri: file_url.to_string(), duration: duration as f32, ..Default::default() }],
        ..Default::default()
    });
    render(&playlist)
}

/// `key_url(key_id)` gives a signed key URL; `cdn_base` is the rendition's folder on the CDN,
/// ending in `/`.
pub fn media(text: &str, cdn_base: &str, mut key_url: impl FnMut(&KeyId) -> Result<String, AccessError>) -> Result<String, AccessError> {
    let mut playlist = parse(text)?;
    let Playlist::MediaPlaylist(media) = &mut playlist else {
        return Err(AccessError::Internal("index.m3u8 is a master playlist".into()));
    };
    let relative = |uri: &str| -> Result<String, AccessError> {
        let ok = !uri.is_empty() && !uri.contains("..") && !uri.contains("://") && !uri.starts_with('/') && !uri.contains('?');
        if ok {
            Ok(format!("{cdn_base}{uri}"))
        } else {
            Err(AccessError::Internal(format!("a media playlist names an unexpected URI {uri:?}")))
        }
    };
    for segment in &mut media.segments {
        segment.uri = relative(&segment.uri)?;
        if let Some(map) = &mut segment.map {
            map.uri = relative(&map.uri)?;
        }
        if let Some(key) = &mut segment.key {
            if let Some(uri) = &key.uri {
                let id = uri
                    .strip_prefix(KEY_URI_SCHEME)
                    .and_then(|id| KeyId::try_from(id.to_string()).ok())
                    .ok_or_else(|| AccessError::Internal(format!("a media playlist names key URI {uri:?}, not key://<key_id>")))?;
                key.uri = Some(key_url(&id)?);
            }
        }
    }
    render(&playlist)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\n360p/index.m3u8\n";
    const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-KEY:METHOD=AES-128,URI=\"key://k0\",IV=0x00000000000000000000000000000001\n#EXTINF:6.0,\nseg_00000.ts\n#EXT-X-KEY:METHOD=AES-128,URI=\"key://k1\",IV=0x00000000000000000000000000000002\n#EXTINF:4.0,\nseg_00001.ts\n#EXT-X-ENDLIST\n";

    #[test]
    fn master_variants_become_manifest_urls() {
        let out = master(MASTER, |p| format!("https://api/v1/manifests/c1/{}?token=T", p.relative()), &[]).unwrap();
        assert!(out.contains("\nhttps://api/v1/manifests/c1/360p/index.m3u8?token=T\n"), "{out}");
        assert!(out.contains("CODECS=\"avc1.64001e,mp4a.40.2\""));
        assert!(!out.contains("SUBTITLES"));
        assert!(master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttps://evil/x.m3u8\n", |_| String::new(), &[]).is_err());
    }

    #[test]
    fn iframe_variants_become_manifest_urls() {
        let text = format!("{MASTER}#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,CODECS=\"avc1.64001e\",URI=\"360p/iframes.m3u8\"\n");
        let out = master(&text, |p| format!("https://api/v1/manifests/c1/{}?token=T", p.relative()), &[]).unwrap();
        assert!(out.contains("URI=\"https://api/v1/manifests/c1/360p/iframes.m3u8?token=T\""), "{out}");
        let elsewhere = text.replace("360p/iframes.m3u8", "https://evil/iframes.m3u8");
        assert!(master(&elsewhere, |_| String::new(), &[]).is_err());
    }

    #[test]
    fn caption_tracks_become_subtitle_renditions() {
        let track = |name: &str, language: &str, default: bool| SubtitleRendition {
            name: name.into(),
            language: language.into(),
            default,
            forced: false,
            uri: format!("https://api/v1/manifests/c1/captions/{language}/index.m3u8?token=T"),
        };
        let tracks = [track("Deutsch", "de", true), track("English", "en", false), track("English", "en-GB", false)];
        let out = master(MASTER, |p| format!("https://api/{}", p.relative()), &tracks).unwrap();
        let parsed = m3u8_rs::parse_master_playlist_res(out.as_bytes()).unwrap();
        let names: Vec<&str> = parsed.alternatives.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Deutsch", "English", "English (2)"]);
        assert!(parsed
            .alternatives
            .iter()
            .all(|a| a.media_type == AlternativeMediaType::Subtitles && a.group_id == "subs" && a.autoselect));
        assert!(parsed.alternatives[0].default && !parsed.alternatives[1].default);
        assert_eq!(parsed.alternatives[1].uri.as_deref(), Some("https://api/v1/manifests/c1/captions/en/index.m3u8?token=T"));
        assert_eq!(parsed.variants[0].subtitles.as_deref(), Some("subs"));
        assert!(out.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"https://api/v1/manifests/c1/captions/de/index.m3u8?token=T\",GROUP-ID=\"subs\",LANGUAGE=\"de\",NAME=\"Deutsch\",DEFAULT=YES,AUTOSELECT=YES"), "{out}");
    }

    #[test]
    fn a_subtitle_playlist_is_one_whole_file() {
        let out = subtitles("https://h.cdn/acme/c1/captions/en-0a1b.vtt", 93.5).unwrap();
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:94\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:93.5,\nhttps://h.cdn/acme/c1/captions/en-0a1b.vtt\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn media_keys_and_segments_are_rewritten() {
        let mut seen = Vec::new();
        let out = media(MEDIA, "https://h.cdn.example.com/acme/c1/360p/", |k| {
            seen.push(k.to_string());
            Ok(format!("https://api/v1/keys/c1/{k}?token=K"))
        })
        .unwrap();
        assert_eq!(seen, ["k0", "k1"]);
        assert!(out.contains("URI=\"https://api/v1/keys/c1/k0?token=K\",IV=0x00000000000000000000000000000001"), "{out}");
        assert!(out.contains("\nhttps://h.cdn.example.com/acme/c1/360p/seg_00001.ts\n"));
        assert!(!out.contains("key://"));
        assert!(out.contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn unexpected_uris_are_refused() {
        let bad_key = MEDIA.replace("key://k0", "https://evil/key");
        assert!(media(&bad_key, "https://cdn/", |_| Ok(String::new())).is_err());
        let escape = MEDIA.replace("seg_00000.ts", "../../other/seg.ts");
        assert!(media(&escape, "https://cdn/", |_| Ok(String::new())).is_err());
    }
}
