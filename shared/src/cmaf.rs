//! The CMAF packaging's manifests: one set of `cbcs` fragments behind an HLS master and media
//! playlists (`EXT-X-MAP`, `SAMPLE-AES`) and a DASH MPD (`SegmentTemplate` + `SegmentTimeline`).
//! The transcoder renders the origin forms; the manifest function personalises them for one
//! viewer (CDN base, key and licence URLs, caption tracks), as it does the AES-128 ladder's.
//!
//! The origin's media playlists name the key as `key://c0` (the `identity` key format, whose
//! URI gives the raw key: Shaka Player uses it with the ClearKey CDM) and carry a second
//! `EXT-X-KEY` with `KEYFORMAT="org.w3.clearkey"` and the KID as a data URI (hls.js asks the
//! licence server for it through EME). m3u8-rs models one key per segment, so these playlists
//! are written and rewritten line by line.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::access::personalize::{SubtitleRendition, KEY_URI_SCHEME};
use crate::access::AccessError;
use crate::cenc::{Kid, CMAF_KEY_ID};
use crate::drm::{LicenseServers, Signaling};

pub const MASTER: &str = "cmaf.m3u8";
pub const MPD: &str = "manifest.mpd";
/// Media playlists in a rendition's folder.
pub const VIDEO_PLAYLIST: &str = "video.m3u8";
pub const AUDIO_PLAYLIST: &str = "audio.m3u8";

#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    pub uri: String,
    pub start: u64,
    pub duration: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub init: String,
    pub timescale: u32,
    pub codec: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub fragments: Vec<Fragment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub name: String,
    pub resolution: Option<(u32, u32)>,
    /// `num/den`.
    pub frame_rate: Option<(u32, u32)>,
    pub video: Option<Track>,
    pub audio: Option<Track>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Title {
    pub kid: Kid,
    pub renditions: Vec<Rendition>,
    /// `None`: VaultStream holds the key, and the title is signalled for ClearKey (and the
    /// `identity` key). `Some`: a DRM vendor's key provider holds it, and the title is signalled
    /// for each of its systems alone.
    pub vendor: Option<Vec<Signaling>>,
}

fn seconds(track: &Track, ticks: u64) -> f64 {
    ticks as f64 / f64::from(track.timescale.max(1))
}

/// A track's media playlist; URIs relative to its rendition's folder. `key_uri` is what the
/// `identity` key names: `key://c0` at the origin (the manifest function signs it), a key file
/// or a key server's URL for `vaultstream-transcode local`. A vendor's title names its
/// systems' keys instead, as its key provider gave them.
pub fn media_playlist(track: &Track, title: &Title, key_uri: &str) -> String {
    let target = track.fragments.iter().map(|f| seconds(track, f.duration).round() as u64).max().unwrap_or(1).max(1);
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0");
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS");
    match &title.vendor {
        None => {
            let _ = writeln!(out, "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"{key_uri}\",KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"");
            let _ = writeln!(
                out,
                "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,{}\",KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\"",
                STANDARD.encode(title.kid.as_bytes())
            );
        }
        Some(systems) => {
            for line in systems.iter().flat_map(|s| s.media_lines(&title.kid)) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", track.init);
    for f in &track.fragments {
        let _ = writeln!(out, "#EXTINF:{:.5},\n{}", seconds(track, f.duration), f.uri);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

fn audio_group(rendition: &Rendition) -> String {
    format!("audio-{}", rendition.name)
}

/// The HLS master over the CMAF tracks: each video rung with its own audio group.
pub fn master_playlist(title: &Title) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for line in title.vendor.iter().flatten().flat_map(|s| s.hls_master.iter()) {
        let _ = writeln!(out, "{line}");
    }
    for r in &title.renditions {
        if let (Some(_), Some(_)) = (&r.audio, &r.video) {
            let _ = writeln!(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{}\",NAME=\"{}\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"{}/{AUDIO_PLAYLIST}\"",
                audio_group(r),
                r.name,
                r.name
            );
        }
    }
    for r in &title.renditions {
        let audio = r.audio.as_ref();
        let (bandwidth, average, codecs, uri) = match &r.video {
            Some(v) => (
                v.bandwidth + audio.map_or(0, |a| a.bandwidth),
                v.average_bandwidth + audio.map_or(0, |a| a.average_bandwidth),
                [Some(v.codec.as_str()), audio.map(|a| a.codec.as_str())].into_iter().flatten().collect::<Vec<_>>().join(","),
                format!("{}/{VIDEO_PLAYLIST}", r.name),
            ),
            None => match audio {
                Some(a) => (a.bandwidth, a.average_bandwidth, a.codec.clone(), format!("{}/{AUDIO_PLAYLIST}", r.name)),
                None => continue,
            },
        };
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={average},CODECS=\"{codecs}\"");
        if let Some((w, h)) = r.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some((n, d)) = r.frame_rate {
            let _ = write!(out, ",FRAME-RATE={:.3}", f64::from(n) / f64::from(d.max(1)));
        }
        if r.video.is_some() && audio.is_some() {
            let _ = write!(out, ",AUDIO=\"{}\"", audio_group(r));
        }
        let _ = writeln!(out, "\n{uri}");
    }
    out
}

/// `PT12.345S`.
fn duration(seconds: f64) -> String {
    format!("PT{seconds:.3}S")
}

fn timeline(out: &mut String, track: &Track) {
    out.push_str("<SegmentTimeline>");
    let mut i = 0;
    while i < track.fragments.len() {
        let f = &track.fragments[i];
        let mut repeat = 0;
        while i + repeat + 1 < track.fragments.len() {
            let next = &track.fragments[i + repeat + 1];
            let previous = &track.fragments[i + repeat];
            if next.duration == f.duration && next.start == previous.start + previous.duration {
                repeat += 1;
            } else {
                break;
            }
        }
        let _ = write!(out, "<S t=\"{}\" d=\"{}\"", f.start, f.duration);
        if repeat > 0 {
            let _ = write!(out, " r=\"{repeat}\"");
        }
        out.push_str("/>");
        i += repeat + 1;
    }
    out.push_str("</SegmentTimeline>");
}

fn segment_template(out: &mut String, rendition: &str, track: &Track) {
    // Fragments are numbered from 0 in one folder per rendition: `cmaf/v_00000.m4s`.
    let media = track.fragments.first().map(|f| f.uri.as_str()).unwrap_or_default();
    let (folder, name) = media.rsplit_once('/').unwrap_or(("", media));
    let prefix = name.split('_').next().unwrap_or_default();
    let folder = if folder.is_empty() { String::new() } else { format!("{folder}/") };
    let _ = write!(
        out,
        "<SegmentTemplate timescale=\"{}\" initialization=\"{rendition}/{}\" media=\"{rendition}/{folder}{prefix}_$Number%05d$.m4s\" startNumber=\"0\">",
        track.timescale, track.init
    );
    timeline(out, track);
    out.push_str("</SegmentTemplate>");
}

fn protection(out: &mut String, title: &Title) {
    let _ = write!(
        out,
        "<ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"cbcs\" cenc:default_KID=\"{}\"/>",
        title.kid.uuid()
    );
    let Some(systems) = &title.vendor else {
        // ClearKey as DASH-IF names it (Shaka Player and dash.js both map it to org.w3.clearkey;
        // dash.js builds its `keyids` init data from the default KID only under this id), with no
        // `cenc:pssh`: the init segments carry the W3C ClearKey pssh.
        let _ = write!(out, "{DASHIF_CLEARKEY_ELEMENT}/>");
        return;
    };
    // Each vendor system with its pssh (FairPlay has none in DASH); the manifest function puts
    // the deployment's licence URL where the mark is.
    for s in systems {
        let Some(pssh) = &s.pssh else { continue };
        let _ = write!(
            out,
            "<ContentProtection schemeIdUri=\"urn:uuid:{}\" value=\"{}\">{}<cenc:pssh>{}</cenc:pssh></ContentProtection>",
            s.system.system_id(),
            s.system.dash_value(),
            license_mark(s.system),
            STANDARD.encode(pssh)
        );
    }
}

fn license_mark(system: crate::drm::DrmSystem) -> String {
    format!("<!--laurl:{}-->", system.name())
}

fn laurl(url: &str) -> String {
    format!("<dashif:Laurl xmlns:dashif=\"https://dashif.org/CPS\" licenseType=\"EME-1.0\">{}</dashif:Laurl>", xml_escape(url))
}

const DASHIF_CLEARKEY_ELEMENT: &str =
    "<ContentProtection schemeIdUri=\"urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e\" value=\"ClearKey1.0\"";
/// The ClearKey `pssh` box (version 1, one KID), as init segments carry it.
pub fn clearkey_pssh(kid: &Kid) -> Vec<u8> {
    crate::cenc::pssh_box(&crate::cenc::CLEARKEY_SYSTEM_ID, &[kid], &[])
}

/// Where the manifest function adds what is the viewer's (BaseURL, captions).
const BASE_URL_MARK: &str = "<!--base-url-->";
const TEXT_MARK: &str = "<!--text-->";

/// The DASH MPD over the same fragments: one video adaptation set (a representation per rung),
/// one audio adaptation set (each rung's audio), `static` (on demand).
pub fn mpd(title: &Title) -> String {
    let total = title
        .renditions
        .iter()
        .flat_map(|r| r.video.iter().chain(r.audio.iter()))
        .map(|t| seconds(t, t.fragments.iter().map(|f| f.duration).sum()))
        .fold(0.0, f64::max);
    let max_segment = title
        .renditions
        .iter()
        .flat_map(|r| r.video.iter().chain(r.audio.iter()))
        .flat_map(|t| t.fragments.iter().map(move |f| seconds(t, f.duration)))
        .fold(1.0, f64::max);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:cenc=\"urn:mpeg:cenc:2013\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" type=\"static\" \
         mediaPresentationDuration=\"{}\" minBufferTime=\"{}\">{BASE_URL_MARK}<Period id=\"0\" start=\"PT0S\">",
        duration(total),
        duration(max_segment.ceil())
    );
    let videos: Vec<(&Rendition, &Track)> = title.renditions.iter().filter_map(|r| r.video.as_ref().map(|v| (r, v))).collect();
    if !videos.is_empty() {
        out.push_str("<AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">");
        protection(&mut out, title);
        for (r, v) in videos {
            let _ = write!(out, "<Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\"", r.name, v.bandwidth, v.codec);
            if let Some((w, h)) = r.resolution {
                let _ = write!(out, " width=\"{w}\" height=\"{h}\"");
            }
            if let Some((n, d)) = r.frame_rate {
                let _ = write!(out, " frameRate=\"{n}/{d}\"");
            }
            out.push('>');
            segment_template(&mut out, &r.name, v);
            out.push_str("</Representation>");
        }
        out.push_str("</AdaptationSet>");
    }
    let audios: Vec<(&Rendition, &Track)> = title.renditions.iter().filter_map(|r| r.audio.as_ref().map(|a| (r, a))).collect();
    if !audios.is_empty() {
        out.push_str("<AdaptationSet id=\"1\" contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">");
        protection(&mut out, title);
        for (r, a) in audios {
            let _ = write!(
                out,
                "<Representation id=\"{}-audio\" bandwidth=\"{}\" codecs=\"{}\" audioSamplingRate=\"{}\">",
                r.name, a.bandwidth, a.codec, a.timescale
            );
            out.push_str("<AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"2\"/>");
            segment_template(&mut out, &r.name, a);
            out.push_str("</Representation>");
        }
        out.push_str("</AdaptationSet>");
    }
    let _ = writeln!(out, "{TEXT_MARK}</Period></MPD>");
    out
}

/// A caption track as the personalised MPD lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTrack {
    pub id: String,
    pub language: String,
    pub label: String,
    /// The WebVTT file's URL on the CDN.
    pub url: String,
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// The viewer's MPD: relative URLs resolve under `cdn_base` (the published version's folder,
/// ending in `/`), the ClearKey licence URL (or each vendor system's, from the deployment's
/// `licenses`) is named for players that read it, and each caption track is a text adaptation set.
pub fn personalize_mpd(
    stored: &str,
    cdn_base: &str,
    license_url: &str,
    licenses: &LicenseServers,
    text: &[TextTrack],
) -> Result<String, AccessError> {
    if !stored.contains(BASE_URL_MARK) || !stored.contains(TEXT_MARK) {
        return Err(AccessError::Internal("the stored MPD is not one the transcoder wrote".into()));
    }
    let clearkey = format!("{DASHIF_CLEARKEY_ELEMENT}>{}</ContentProtection>", laurl(license_url));
    let mut texts = String::new();
    for (i, t) in text.iter().enumerate() {
        let _ = write!(
            texts,
            "<AdaptationSet id=\"{}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{}\" label=\"{}\">\
             <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\
             <Representation id=\"text-{}\" bandwidth=\"256\"><BaseURL>{}</BaseURL></Representation></AdaptationSet>",
            10 + i,
            xml_escape(&t.language),
            xml_escape(&t.label),
            xml_escape(&t.id),
            xml_escape(&t.url)
        );
    }
    let mut mpd = stored
        .replace(BASE_URL_MARK, &format!("<BaseURL>{}</BaseURL>", xml_escape(cdn_base)))
        .replace(TEXT_MARK, &texts)
        .replace(&format!("{DASHIF_CLEARKEY_ELEMENT}/>"), &clearkey);
    for system in crate::drm::DrmSystem::ALL {
        mpd = mpd.replace(&license_mark(system), &licenses.url(system).map(laurl).unwrap_or_default());
    }
    Ok(mpd)
}

/// How a CMAF media playlist names its key to a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyFormat {
    /// `KEYFORMAT="org.w3.clearkey"` with the KID: the player asks the ClearKey licence server
    /// through EME (hls.js, and players with a DRM system configured).
    #[default]
    ClearKey,
    /// `KEYFORMAT="identity"` with the key URL: the player fetches the raw key and hands it to
    /// the ClearKey CDM itself (Shaka Player, which reads no ClearKey key format in HLS).
    /// hls.js prefers an identity key whenever one is listed, so a playlist names one or the other.
    Identity,
}

impl KeyFormat {
    pub fn parse(text: &str) -> Option<KeyFormat> {
        match text {
            "clearkey" => Some(KeyFormat::ClearKey),
            "identity" => Some(KeyFormat::Identity),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            KeyFormat::ClearKey => "clearkey",
            KeyFormat::Identity => "identity",
        }
    }
}

/// The viewer's CMAF media playlist: the init segment and fragments become CDN URLs under
/// `cdn_base` (the rendition's folder, ending in `/`), `key://c0` the session-bound key URL,
/// and only the key tag of `format` stays.
pub fn personalize_media(stored: &str, cdn_base: &str, key_url: &str, format: KeyFormat) -> Result<String, AccessError> {
    let relative = |uri: &str| -> Result<String, AccessError> {
        let ok = !uri.is_empty() && !uri.contains("..") && !uri.contains("://") && !uri.starts_with('/') && !uri.contains('?');
        if ok {
            Ok(format!("{cdn_base}{uri}"))
        } else {
            Err(AccessError::Internal(format!("a CMAF playlist names an unexpected URI {uri:?}")))
        }
    };
    let key_uri = format!("URI=\"{KEY_URI_SCHEME}{CMAF_KEY_ID}\"");
    let mut out = String::with_capacity(stored.len() + 512);
    for line in stored.lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"").and_then(|rest| rest.strip_suffix('"')) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", relative(uri)?);
        } else if line.starts_with("#EXT-X-KEY:") {
            let identity = line.contains("KEYFORMAT=\"identity\"");
            match (format, identity) {
                (KeyFormat::Identity, true) if line.contains(&key_uri) => {
                    let _ = writeln!(out, "{}", line.replace(&key_uri, &format!("URI=\"{key_url}\"")));
                }
                (KeyFormat::Identity, true) => return Err(AccessError::Internal("a CMAF playlist's identity key is not key://c0".into())),
                (KeyFormat::ClearKey, false) => {
                    let _ = writeln!(out, "{line}");
                }
                _ => {}
            }
        } else if line.starts_with('#') || line.is_empty() {
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "{}", relative(line)?);
        }
    }
    Ok(out)
}

/// The viewer's CMAF master: every playlist URI becomes `playlist_url(relative)` (a manifest
/// URL with the token), after checking it names one of a rendition's CMAF playlists; caption
/// tracks join as a subtitles group every variant names.
pub fn personalize_master(
    stored: &str,
    playlist_url: impl Fn(&str, &str) -> String,
    subtitles: &[SubtitleRendition],
) -> Result<String, AccessError> {
    let checked = |uri: &str| -> Result<(String, String), AccessError> {
        match uri.split_once('/') {
            Some((rendition, playlist))
                if [VIDEO_PLAYLIST, AUDIO_PLAYLIST].contains(&playlist) && crate::ids::RenditionName::parse(rendition).is_ok() =>
            {
                Ok((rendition.to_string(), playlist.to_string()))
            }
            _ => Err(AccessError::Internal(format!("the CMAF master names an unexpected playlist {uri:?}"))),
        }
    };
    let mut out = String::with_capacity(stored.len() + 1024);
    let mut header_done = false;
    for line in stored.lines() {
        if !header_done && (line.starts_with("#EXT-X-MEDIA:") || line.starts_with("#EXT-X-STREAM-INF:")) {
            header_done = true;
            for s in subtitles {
                let _ = writeln!(
                    out,
                    "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT={},AUTOSELECT=YES,FORCED={},URI=\"{}\"",
                    s.name.replace('"', "'"),
                    s.language,
                    if s.default { "YES" } else { "NO" },
                    if s.forced { "YES" } else { "NO" },
                    s.uri
                );
            }
        }
        if line.starts_with("#EXT-X-MEDIA:") {
            let (before, rest) =
                line.split_once("URI=\"").ok_or_else(|| AccessError::Internal("an audio rendition without a URI".into()))?;
            let (uri, after) = rest.split_once('"').ok_or_else(|| AccessError::Internal("an unterminated URI".into()))?;
            let (rendition, playlist) = checked(uri)?;
            let _ = writeln!(out, "{before}URI=\"{}\"{after}", playlist_url(&rendition, &playlist));
        } else if line.starts_with("#EXT-X-STREAM-INF:") {
            let subs = if subtitles.is_empty() { "" } else { ",SUBTITLES=\"subs\"" };
            let _ = writeln!(out, "{line}{subs}");
        } else if line.starts_with('#') || line.is_empty() {
            let _ = writeln!(out, "{line}");
        } else {
            let (rendition, playlist) = checked(line)?;
            let _ = writeln!(out, "{}", playlist_url(&rendition, &playlist));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(prefix: &str, timescale: u32, durations: &[u64]) -> Track {
        let mut start = 0;
        let fragments = durations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let f = Fragment { uri: format!("cmaf/{prefix}_{i:05}.m4s"), start, duration: *d };
                start += d;
                f
            })
            .collect();
        Track {
            init: format!("cmaf/{prefix}_init.mp4"),
            timescale,
            codec: if prefix == "v" { "avc1.64001e".into() } else { "mp4a.40.2".into() },
            bandwidth: 1000,
            average_bandwidth: 900,
            fragments,
        }
    }

    fn title() -> Title {
        Title {
            kid: Kid::derive("t", "c", CMAF_KEY_ID),
            renditions: vec![Rendition {
                name: "480p".into(),
                resolution: Some((854, 480)),
                frame_rate: Some((30, 1)),
                video: Some(track("v", 15360, &[92160, 92160, 46080])),
                audio: Some(track("a", 48000, &[288768, 287744, 143360])),
            }],
            vendor: None,
        }
    }

    #[test]
    fn the_timeline_repeats_equal_fragments_and_restarts_on_change() {
        let mpd = mpd(&title());
        assert!(mpd.contains("<S t=\"0\" d=\"92160\" r=\"1\"/><S t=\"184320\" d=\"46080\"/>"), "{mpd}");
        assert!(mpd.contains("media=\"480p/cmaf/v_$Number%05d$.m4s\""), "{mpd}");
        assert!(mpd.contains("mediaPresentationDuration=\"PT15.000S\""), "{mpd}");
        assert!(mpd.contains(&format!("cenc:default_KID=\"{}\"", title().kid.uuid())), "{mpd}");
    }

    #[test]
    fn personalised_manifests_point_at_the_cdn_and_the_key_service() {
        let t = title();
        let media = media_playlist(t.renditions[0].video.as_ref().unwrap(), &t, "key://c0");
        let key = "https://api/v1/keys/c/c0?token=x";
        let mine = personalize_media(&media, "https://cdn/t/c/v1/480p/", key, KeyFormat::Identity).unwrap();
        assert!(mine.contains("#EXT-X-MAP:URI=\"https://cdn/t/c/v1/480p/cmaf/v_init.mp4\""), "{mine}");
        assert!(mine.contains("\nhttps://cdn/t/c/v1/480p/cmaf/v_00002.m4s\n"), "{mine}");
        assert!(mine.contains("METHOD=SAMPLE-AES,URI=\"https://api/v1/keys/c/c0?token=x\",KEYFORMAT=\"identity\""), "{mine}");
        assert!(!mine.contains("org.w3.clearkey"), "one key tag: {mine}");
        let ours = personalize_media(&media, "https://cdn/t/c/v1/480p/", key, KeyFormat::ClearKey).unwrap();
        assert!(ours.contains("KEYFORMAT=\"org.w3.clearkey\"") && !ours.contains("identity") && !ours.contains(key), "{ours}");
        let hostile = media.replace("cmaf/v_00001.m4s", "https://evil/x.m4s");
        assert!(personalize_media(&hostile, "https://cdn/", "k", KeyFormat::ClearKey).is_err());

        let master = personalize_master(&master_playlist(&t), |r, p| format!("https://api/m/{r}/{p}?token=x"), &[]).unwrap();
        assert!(master.contains("URI=\"https://api/m/480p/audio.m3u8?token=x\""), "{master}");
        assert!(master.contains("\nhttps://api/m/480p/video.m3u8?token=x\n"), "{master}");
        assert!(master.contains("AUDIO=\"audio-480p\""), "{master}");

        let text = [TextTrack { id: "de".into(), language: "de".into(), label: "Deutsch".into(), url: "https://cdn/x.vtt".into() }];
        let licenses = LicenseServers::default();
        let mpd = personalize_mpd(&mpd(&t), "https://cdn/t/c/v1/", "https://api/v1/licenses/c/clearkey?token=x", &licenses, &text).unwrap();
        assert!(mpd.contains("<BaseURL>https://cdn/t/c/v1/</BaseURL><Period"), "{mpd}");
        assert!(mpd.contains("licenseType=\"EME-1.0\">https://api/v1/licenses/c/clearkey?token=x</dashif:Laurl>"), "{mpd}");
        assert!(mpd.contains("<BaseURL>https://cdn/x.vtt</BaseURL>"), "{mpd}");
        assert!(personalize_mpd("<MPD/>", "a", "b", &licenses, &[]).is_err());
    }

    fn pssh(system: crate::drm::DrmSystem, kid: &Kid) -> Vec<u8> {
        crate::cenc::pssh_box(system.system_id().as_bytes(), &[kid], &[])
    }

    #[test]
    fn a_vendors_title_is_signalled_for_its_systems_alone_with_the_deployments_licence_urls() {
        use crate::drm::DrmSystem;
        let mut t = title();
        let fairplay = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"";
        let session = fairplay.replace("#EXT-X-KEY:", "#EXT-X-SESSION-KEY:");
        t.vendor = Some(vec![
            Signaling::checked(DrmSystem::Widevine, &t.kid, Some(pssh(DrmSystem::Widevine, &t.kid)), None, None).unwrap(),
            Signaling::checked(DrmSystem::PlayReady, &t.kid, Some(pssh(DrmSystem::PlayReady, &t.kid)), None, None).unwrap(),
            Signaling::checked(DrmSystem::FairPlay, &t.kid, None, Some(fairplay), Some(&session)).unwrap(),
        ]);
        let media = media_playlist(t.renditions[0].video.as_ref().unwrap(), &t, "key://c0");
        assert!(!media.contains("identity") && !media.contains("org.w3.clearkey"), "no key VaultStream does not hold: {media}");
        assert!(media.contains("KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\""), "{media}");
        assert!(media.contains("KEYFORMAT=\"com.microsoft.playready\""), "{media}");
        assert!(media.contains(fairplay), "{media}");
        let viewer = personalize_media(&media, "https://cdn/t/c/v1/480p/", "unused", KeyFormat::ClearKey).unwrap();
        assert_eq!(viewer.matches("#EXT-X-KEY:").count(), 3, "{viewer}");
        assert!(master_playlist(&t).contains(&session));

        let licenses = LicenseServers::from_lookup(|name| {
            (name == "VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL").then(|| "https://wv.example/license?a=1&b=2".to_string())
        });
        let mpd = personalize_mpd(&mpd(&t), "https://cdn/t/c/v1/", "unused", &licenses, &[]).unwrap();
        assert!(!mpd.contains("e2719d58") && !mpd.contains("<!--laurl"), "{mpd}");
        assert!(
            mpd.contains("schemeIdUri=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\" value=\"Widevine\"><dashif:Laurl xmlns:dashif=\"https://dashif.org/CPS\" licenseType=\"EME-1.0\">https://wv.example/license?a=1&amp;b=2</dashif:Laurl><cenc:pssh>"),
            "{mpd}"
        );
        assert!(mpd.contains("value=\"MSPR 2.0\"><cenc:pssh>"), "PlayReady without a configured licence URL: {mpd}");
        assert!(!mpd.contains("94ce86fb"), "FairPlay is HLS only: {mpd}");
    }
}
