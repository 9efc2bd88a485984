//! HLS playlists (RFC 8216) rendered through `m3u8-rs`.

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ClosedCaptionGroupId, InstreamId, Key, KeyMethod, Map, MasterPlaylist, MediaPlaylist,
    MediaPlaylistType, MediaSegment, QuotedOrUnquoted, Resolution, VariantStream,
};

use crate::segment_cipher::Iv;

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentKey {
    /// What `EXT-X-KEY`'s `URI` names.
    pub uri: String,
    pub iv: Iv,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub uri: String,
    pub duration: f64,
    pub key: SegmentKey,
}

/// A VOD media playlist in which every segment carries its own `EXT-X-KEY` (explicit IV).
///
/// `init_uri` is the fMP4 init section (`EXT-X-MAP`), which stays unencrypted so that it can be
/// declared before the first key tag.
pub fn media_playlist(segments: &[Segment], init_uri: Option<&str>) -> String {
    playlist(segments, init_uri, false)
}

/// A trick-play playlist (`EXT-X-I-FRAMES-ONLY`): each segment holds one IDR frame on its own
/// and lasts until the next one, encrypted like every other segment.
pub fn iframe_playlist(segments: &[Segment], init_uri: Option<&str>) -> String {
    playlist(segments, init_uri, true)
}

fn playlist(segments: &[Segment], init_uri: Option<&str>, i_frames_only: bool) -> String {
    // RFC 8216 §4.3.3.1: every EXTINF rounded to the nearest integer must not exceed it.
    let target = segments.iter().map(|s| s.duration.round() as u64).max().unwrap_or(1).max(1);
    let segments = segments
        .iter()
        .enumerate()
        .map(|(i, s)| MediaSegment {
            uri: s.uri.clone(),
            duration: s.duration as f32,
            key: Some(Key {
                method: KeyMethod::AES128,
                uri: Some(s.key.uri.clone()),
                iv: Some(s.key.iv.to_hls_attribute()),
                keyformat: None,
                keyformatversions: None,
            }),
            map: match (i, init_uri) {
                (0, Some(uri)) => Some(Map { uri: uri.to_string(), ..Default::default() }),
                _ => None,
            },
            ..Default::default()
        })
        .collect();
    let version = match (init_uri.is_some(), i_frames_only) {
        (true, _) => 6,
        // EXT-X-I-FRAMES-ONLY needs version 4.
        (false, true) => 4,
        (false, false) => 3,
    };
    let playlist = MediaPlaylist {
        version: Some(version),
        i_frames_only,
        target_duration: target,
        media_sequence: 0,
        segments,
        end_list: true,
        playlist_type: Some(MediaPlaylistType::Vod),
        independent_segments: true,
        ..Default::default()
    };
    render(|w| playlist.write_to(w))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak segment bit rate, bits per second.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// `VIDEO-RANGE`: `SDR`, `PQ` or `HLG`, for variants with video.
    pub video_range: Option<&'static str>,
    /// Its trick-play playlist, for variants with video.
    pub iframes: Option<IFrameVariant>,
    /// Whether its video carries CEA-608 captions (A/53 SEI).
    pub closed_captions: bool,
}

/// The group variants name for the captions in their video.
pub const CLOSED_CAPTIONS_GROUP: &str = "cc";

/// An `EXT-X-I-FRAME-STREAM-INF`: the I-frame playlist of a variant.
#[derive(Debug, Clone, PartialEq)]
pub struct IFrameVariant {
    pub uri: String,
    /// Peak bit rate of its segments, bits per second.
    pub bandwidth: u64,
    /// The video codec only.
    pub codecs: String,
}

pub fn master_playlist(variants: &[Variant], fmp4: bool) -> String {
    let video_range = |v: &Variant| {
        v.video_range
            .map(|range| std::collections::HashMap::from([("VIDEO-RANGE".to_string(), QuotedOrUnquoted::Unquoted(range.to_string()))]))
    };
    let resolution = |v: &Variant| v.resolution.map(|(w, h)| Resolution { width: w.into(), height: h.into() });
    let streams = variants.iter().map(|v| VariantStream {
        uri: v.uri.clone(),
        bandwidth: v.bandwidth,
        average_bandwidth: Some(v.average_bandwidth),
        codecs: Some(v.codecs.clone()),
        resolution: resolution(v),
        frame_rate: v.frame_rate.map(|f| (f * 1000.0).round() / 1000.0),
        other_attributes: video_range(v),
        closed_captions: v.closed_captions.then(|| ClosedCaptionGroupId::GroupId(CLOSED_CAPTIONS_GROUP.into())),
        ..Default::default()
    });
    let iframe_streams = variants.iter().filter_map(|v| {
        v.iframes.as_ref().map(|i| VariantStream {
            is_i_frame: true,
            uri: i.uri.clone(),
            bandwidth: i.bandwidth,
            codecs: Some(i.codecs.clone()),
            resolution: resolution(v),
            other_attributes: video_range(v),
            ..Default::default()
        })
    });
    let playlist = MasterPlaylist {
        // EXT-X-I-FRAME-STREAM-INF needs version 4.
        version: Some(if fmp4 {
            6
        } else if variants.iter().any(|v| v.iframes.is_some()) {
            4
        } else {
            3
        }),
        independent_segments: true,
        variants: streams.chain(iframe_streams).collect(),
        // Channel 1 is where broadcast and cameras put the programme's captions.
        alternatives: if variants.iter().any(|v| v.closed_captions) {
            vec![AlternativeMedia {
                media_type: AlternativeMediaType::ClosedCaptions,
                group_id: CLOSED_CAPTIONS_GROUP.into(),
                name: "CC1".into(),
                default: true,
                autoselect: true,
                instream_id: Some(InstreamId::CC(1)),
                ..Default::default()
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    render(|w| playlist.write_to(w))
}

fn render(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and m3u8-rs only writes UTF-8 text.
    let _ = write(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(i: usize, d: f64) -> Segment {
        Segment { uri: format!("seg_{i:05}.ts"), duration: d, key: SegmentKey { uri: "../key.bin".into(), iv: Iv([i as u8; 16]) } }
    }

    #[test]
    fn media_playlist_is_vod_with_explicit_ivs() {
        let text = media_playlist(&[seg(0, 6.006), seg(1, 6.006), seg(2, 2.5)], None);
        assert!(text.starts_with("#EXTM3U\n"));
        assert!(text.contains("#EXT-X-TARGETDURATION:6\n"), "{text}");
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
        assert!(text.contains("#EXT-X-ENDLIST"));
        assert_eq!(text.matches("#EXT-X-KEY:METHOD=AES-128,URI=\"../key.bin\",IV=0x").count(), 3);
        assert!(text.contains(&format!("IV=0x{}", "01".repeat(16))));
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 3);
    }

    #[test]
    fn target_duration_covers_rounded_segments() {
        let text = media_playlist(&[seg(0, 6.6)], None);
        assert!(text.contains("#EXT-X-TARGETDURATION:7\n"));
    }

    #[test]
    fn fmp4_playlist_declares_the_init_section() {
        let text = media_playlist(&[seg(0, 6.0)], Some("init.mp4"));
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""));
        assert!(text.contains("#EXT-X-VERSION:6"));
    }

    #[test]
    fn iframe_playlists_say_so_and_keep_their_keys() {
        let text = iframe_playlist(&[seg(0, 2.0), seg(1, 2.0)], None);
        assert!(text.contains("#EXT-X-I-FRAMES-ONLY\n") && text.contains("#EXT-X-VERSION:4\n"), "{text}");
        assert_eq!(text.matches("#EXT-X-KEY:METHOD=AES-128").count(), 2);
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert!(parsed.i_frames_only);
    }

    #[test]
    fn master_lists_variants_with_attributes() {
        let text = master_playlist(
            &[Variant {
                uri: "720p/index.m3u8".into(),
                bandwidth: 3_100_000,
                average_bandwidth: 2_900_000,
                codecs: "avc1.64001f,mp4a.40.2".into(),
                resolution: Some((1280, 720)),
                frame_rate: Some(30000.0 / 1001.0),
                video_range: Some("PQ"),
                iframes: Some(IFrameVariant { uri: "720p/iframes.m3u8".into(), bandwidth: 410_000, codecs: "avc1.64001f".into() }),
                closed_captions: true,
            }],
            false,
        );
        assert!(text.contains("#EXT-X-VERSION:4"), "{text}");
        assert!(
            text.contains("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=410000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,VIDEO-RANGE=PQ,URI=\"720p/iframes.m3u8\"\n"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
        assert!(text.contains("BANDWIDTH=3100000"));
        assert!(text.contains("AVERAGE-BANDWIDTH=2900000"));
        assert!(text.contains("CODECS=\"avc1.64001f,mp4a.40.2\""));
        assert!(text.contains("RESOLUTION=1280x720"));
        assert!(text.contains("FRAME-RATE=29.97"));
        assert!(text.contains("VIDEO-RANGE=PQ"), "{text}");
        assert!(text.contains("720p/index.m3u8"));
        assert!(
            text.contains("#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID=\"CC1\""),
            "{text}"
        );
        assert!(text.contains("CLOSED-CAPTIONS=\"cc\""), "{text}");
        // What the playback path re-renders keeps the range.
        let again = crate::access::personalize::master(&text, |p| format!("https://cdn.example/{}", p.relative()), &[]).unwrap();
        assert!(again.contains("VIDEO-RANGE=PQ") && again.contains("INSTREAM-ID=\"CC1\""), "{again}");
    }
}
