//! Encoding profiles and ladder planning: which renditions a source gets, and at what size.
//!
//! A profile is a list of rungs, each a bounding box with bitrates. Planning never upscales: a
//! rung whose box is larger than the source is dropped, except the lowest rung, which is always
//! kept (capped at the source size) so every playable source yields at least one rendition.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// MPEG-2 transport stream segments (`.ts`): the widest player support.
    #[default]
    Ts,
    /// Fragmented MP4 segments (`.m4s`) with an `EXT-X-MAP` init section; needed for AV1.
    Fmp4,
}

impl Container {
    /// The presentation's first timestamp on the 90 kHz clock, as the transcoder's muxer writes
    /// it: MPEG-TS leaves 1.4 s ahead of the first frame for the PCR (as FFmpeg's CLI does),
    /// fragmented MP4 starts at zero. WebVTT's `X-TIMESTAMP-MAP` names this so cue time 0 is
    /// the title's first frame.
    pub fn presentation_start_90khz(self) -> u64 {
        match self {
            Container::Ts => 126_000,
            Container::Fmp4 => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    Hevc,
    Av1,
}

impl VideoCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Hevc => "hevc",
            VideoCodec::Av1 => "av1",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// Folder name of the rendition: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// Bounding box (landscape orientation; swapped for portrait sources).
    pub width: u32,
    pub height: u32,
    #[serde(default = "default_codec")]
    pub codec: VideoCodec,
    pub video_kbps: u32,
    /// Peak rate for the encoder's VBV; defaults to 107 % of `video_kbps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_kbps: Option<u32>,
    pub audio_kbps: u32,
    /// Extra encoder options passed through to FFmpeg (for example `{"tune":"film"}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encoder_options: BTreeMap<String, String>,
}

fn default_codec() -> VideoCodec {
    VideoCodec::H264
}

/// How a title is packaged for delivery; a profile names one or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Packaging {
    /// The HLS ladder every HLS player plays: AES-128 whole-segment encryption, in the profile's
    /// `container` (MPEG-TS, or fMP4 segments with `"container": "fmp4"`), trick play included.
    #[serde(rename = "hls-ts")]
    HlsTs,
    /// CMAF (one track per file, fragmented MP4) with common encryption `cbcs`, behind both an
    /// HLS (`cmaf.m3u8`) and a DASH (`manifest.mpd`) manifest: the packaging DRM systems play.
    #[serde(rename = "cmaf")]
    Cmaf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub container: Container,
    /// Unset: both, except for AV1 ladders (see [`Profile::packaging`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packaging: Option<Vec<Packaging>>,
    #[serde(default = "default_segment_seconds")]
    pub segment_seconds: f64,
    #[serde(default = "default_gop_seconds")]
    pub gop_seconds: f64,
    /// What HEVC rungs make of an HDR (PQ or HLG) source. H.264 and AV1 rungs are always SDR.
    #[serde(default, skip_serializing_if = "HdrPolicy::is_default")]
    pub hdr: HdrPolicy,
    /// Loudness normalization of the audio (EBU R128); none leaves levels as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<Loudness>,
    /// The least quality a rung may have before it is flagged (PSNR and SSIM of sampled frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_floor: Option<QualityFloor>,
    pub rungs: Vec<Rung>,
}

/// Thresholds under which a rung's measured quality is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityFloor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psnr_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim: Option<f64>,
}

impl QualityFloor {
    /// Why a rung measured at `psnr_db` and `ssim` falls short of this floor, if it does.
    pub fn shortfall(&self, psnr_db: f64, ssim: f64) -> Option<String> {
        let mut short = Vec::new();
        if let Some(min) = self.psnr_db.filter(|min| psnr_db < *min) {
            short.push(format!("PSNR {psnr_db:.2} dB is under the profile's {min} dB"));
        }
        if let Some(min) = self.ssim.filter(|min| ssim < *min) {
            short.push(format!("SSIM {ssim:.4} is under the profile's {min}"));
        }
        (!short.is_empty()).then(|| short.join("; "))
    }
}

/// An EBU R128 loudness target, as FFmpeg's `loudnorm` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loudness {
    /// Integrated loudness, LUFS: -23 for EBU R128 broadcast, -16 to -14 for streaming.
    pub target_lufs: f64,
    /// Maximum true peak, dBTP.
    #[serde(default = "default_true_peak")]
    pub true_peak_dbtp: f64,
}

fn default_true_peak() -> f64 {
    -1.0
}

/// How a profile treats HDR sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HdrPolicy {
    /// Every rung is tone-mapped to SDR BT.709.
    #[default]
    Tonemap,
    /// HEVC rungs stay HDR (Main 10, the source's PQ or HLG); the others are tone-mapped.
    Keep,
}

impl HdrPolicy {
    fn is_default(&self) -> bool {
        *self == HdrPolicy::Tonemap
    }
}

fn default_segment_seconds() -> f64 {
    6.0
}

fn default_gop_seconds() -> f64 {
    2.0
}

pub const BUILT_IN_PROFILES: [&str; 3] = ["default", "hevc-4k", "av1-archive"];

fn rung(name: &str, width: u32, height: u32, codec: VideoCodec, video_kbps: u32, audio_kbps: u32) -> Rung {
    Rung { name: name.into(), width, height, codec, video_kbps, max_kbps: None, audio_kbps, encoder_options: BTreeMap::new() }
}

fn h264_ladder() -> Vec<Rung> {
    vec![
        rung("1080p", 1920, 1080, VideoCodec::H264, 5000, 192),
        rung("720p", 1280, 720, VideoCodec::H264, 2800, 128),
        rung("480p", 854, 480, VideoCodec::H264, 1400, 96),
        rung("360p", 640, 360, VideoCodec::H264, 800, 64),
    ]
}

impl Profile {
    /// One of [`BUILT_IN_PROFILES`].
    pub fn built_in(name: &str) -> Option<Profile> {
        let (container, hdr, rungs) = match name {
            "default" => (Container::Ts, HdrPolicy::Tonemap, h264_ladder()),
            "hevc-4k" => {
                let mut rungs = vec![rung("2160p", 3840, 2160, VideoCodec::Hevc, 12000, 192)];
                rungs.extend(h264_ladder());
                (Container::Fmp4, HdrPolicy::Keep, rungs)
            }
            "av1-archive" => (
                Container::Fmp4,
                HdrPolicy::Tonemap,
                vec![
                    rung("2160p", 3840, 2160, VideoCodec::Av1, 8000, 192),
                    rung("1080p", 1920, 1080, VideoCodec::Av1, 3000, 192),
                    rung("720p", 1280, 720, VideoCodec::Av1, 1600, 128),
                    rung("360p", 640, 360, VideoCodec::Av1, 500, 64),
                ],
            ),
            _ => return None,
        };
        Some(Profile {
            name: name.into(),
            container,
            packaging: None,
            segment_seconds: default_segment_seconds(),
            gop_seconds: default_gop_seconds(),
            hdr,
            loudness: None,
            quality_floor: None,
            rungs,
        })
    }

    /// Parses and validates a profile file's JSON; errors name the offending field.
    pub fn from_json(text: &str) -> Result<Profile, Error> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let profile: Profile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "(document)".to_string() } else { path };
            Error::profile(field, e.into_inner().to_string())
        })?;
        profile.validate()?;
        Ok(profile)
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.name.trim().is_empty() {
            return Err(Error::profile("name", "must not be empty"));
        }
        if !(1.0..=30.0).contains(&self.segment_seconds) {
            return Err(Error::profile("segment_seconds", format!("{} is out of range (expected 1 to 30)", self.segment_seconds)));
        }
        if !(0.5..=10.0).contains(&self.gop_seconds) || self.gop_seconds > self.segment_seconds {
            return Err(Error::profile(
                "gop_seconds",
                format!("{} is out of range (expected 0.5 to 10, and at most segment_seconds)", self.gop_seconds),
            ));
        }
        if self.rungs.is_empty() || self.rungs.len() > 12 {
            return Err(Error::profile("rungs", "expected 1 to 12 rungs"));
        }
        if let Some(l) = self.loudness {
            if !(-70.0..=-5.0).contains(&l.target_lufs) {
                return Err(Error::profile("loudness.target_lufs", format!("{} is out of range (expected -70 to -5 LUFS)", l.target_lufs)));
            }
            if !(-9.0..=0.0).contains(&l.true_peak_dbtp) {
                return Err(Error::profile(
                    "loudness.true_peak_dbtp",
                    format!("{} is out of range (expected -9 to 0 dBTP)", l.true_peak_dbtp),
                ));
            }
        }
        if let Some(floor) = self.quality_floor {
            if let Some(p) = floor.psnr_db.filter(|p| !(10.0..=100.0).contains(p)) {
                return Err(Error::profile("quality_floor.psnr_db", format!("{p} is out of range (expected 10 to 100 dB)")));
            }
            if let Some(s) = floor.ssim.filter(|s| !(0.0..=1.0).contains(s)) {
                return Err(Error::profile("quality_floor.ssim", format!("{s} is out of range (expected 0 to 1)")));
            }
        }
        if self.hdr == HdrPolicy::Keep && !self.rungs.iter().any(|r| r.codec == VideoCodec::Hevc) {
            return Err(Error::profile("hdr", "\"keep\" needs a hevc rung to keep HDR in (H.264 and AV1 rungs are always SDR)"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.rungs.iter().enumerate() {
            let field = |f: &str| format!("rungs[{i}].{f}");
            let name_ok = !r.name.is_empty()
                && r.name.len() <= 32
                && r.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
                && r.name != "audio"
                && r.name != "thumbnails";
            if !name_ok {
                return Err(Error::profile(
                    field("name"),
                    format!("{:?} must be 1-32 characters of a-z, 0-9, '-' or '_' (not \"audio\" or \"thumbnails\")", r.name),
                ));
            }
            if !names.insert(r.name.as_str()) {
                return Err(Error::profile(field("name"), format!("{:?} is used by two rungs", r.name)));
            }
            for (f, v) in [("width", r.width), ("height", r.height)] {
                if !(16..=8192).contains(&v) || v % 2 != 0 {
                    return Err(Error::profile(field(f), format!("{v} is invalid (expected an even number from 16 to 8192)")));
                }
            }
            if !(50..=200_000).contains(&r.video_kbps) {
                return Err(Error::profile(field("video_kbps"), format!("{} is out of range (expected 50 to 200000)", r.video_kbps)));
            }
            if let Some(max) = r.max_kbps {
                if max < r.video_kbps || max > 400_000 {
                    return Err(Error::profile(
                        field("max_kbps"),
                        format!("{max} must be at least video_kbps ({}) and at most 400000", r.video_kbps),
                    ));
                }
            }
            if !(16..=512).contains(&r.audio_kbps) {
                return Err(Error::profile(field("audio_kbps"), format!("{} is out of range (expected 16 to 512)", r.audio_kbps)));
            }
            if r.codec == VideoCodec::Av1 && self.container != Container::Fmp4 {
                return Err(Error::profile(field("codec"), "av1 needs \"container\": \"fmp4\" (AV1 is not carried in MPEG-TS)"));
            }
            if r.codec == VideoCodec::Av1 && self.cmaf() {
                return Err(Error::profile(
                    "packaging",
                    "\"cmaf\" (cbcs) is not made for av1 rungs; use \"packaging\": [\"hls-ts\"] for an AV1 ladder",
                ));
            }
        }
        if let Some(packaging) = &self.packaging {
            if !packaging.contains(&Packaging::HlsTs) {
                return Err(Error::profile(
                    "packaging",
                    "must include \"hls-ts\": the master playlist, trick play and captions are published with the HLS ladder (e.g. [\"hls-ts\", \"cmaf\"])",
                ));
            }
            if packaging.iter().enumerate().any(|(i, p)| packaging[..i].contains(p)) {
                return Err(Error::profile("packaging", "names a packaging twice"));
            }
        }
        Ok(())
    }
}

impl Profile {
    /// The packagings this profile makes. Unset, both: the CMAF tracks come from the same
    /// encoded packets (no second encode), so DRM-ready output costs only muxing, encryption
    /// and storage, and HLS players that know no DRM keep the AES-128 ladder. AV1 ladders make
    /// only the HLS ladder: `cbcs` for AV1 protects tile data only, which needs an OBU parser
    /// this packager does not have.
    pub fn packaging(&self) -> Vec<Packaging> {
        match &self.packaging {
            Some(p) => p.clone(),
            None if self.rungs.iter().any(|r| r.codec == VideoCodec::Av1) => vec![Packaging::HlsTs],
            None => vec![Packaging::HlsTs, Packaging::Cmaf],
        }
    }

    pub fn cmaf(&self) -> bool {
        self.packaging().contains(&Packaging::Cmaf)
    }
}

impl Rung {
    pub fn max_kbps(&self) -> u32 {
        self.max_kbps.unwrap_or(self.video_kbps * 107 / 100)
    }
}

/// What planning needs to know about the source, after rotation is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceGeometry {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRung {
    pub rung: Rung,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DroppedRung {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ladder {
    pub renditions: Vec<PlannedRung>,
    pub dropped: Vec<DroppedRung>,
}

/// Plans the video renditions for a source: never upscaled, aspect kept, even dimensions.
pub fn plan_video(profile: &Profile, source: SourceGeometry) -> Ladder {
    let portrait = source.height > source.width;
    let mut rungs: Vec<&Rung> = profile.rungs.iter().collect();
    rungs.sort_by_key(|r| std::cmp::Reverse(u64::from(r.width) * u64::from(r.height)));
    let lowest = rungs.len().saturating_sub(1);

    let mut renditions: Vec<PlannedRung> = Vec::new();
    let mut dropped = Vec::new();
    for (i, r) in rungs.into_iter().enumerate() {
        let (box_w, box_h) = if portrait { (r.height, r.width) } else { (r.width, r.height) };
        let factor = (f64::from(box_w) / f64::from(source.width)).min(f64::from(box_h) / f64::from(source.height));
        if factor > 1.0 + 1e-9 && i != lowest {
            dropped.push(DroppedRung {
                name: r.name.clone(),
                reason: format!("{}x{} would upscale the {}x{} source", box_w, box_h, source.width, source.height),
            });
            continue;
        }
        let factor = factor.min(1.0);
        let width = even(f64::from(source.width) * factor).min(box_w.max(2));
        let height = even(f64::from(source.height) * factor).min(box_h.max(2));
        if renditions.iter().any(|p| p.width == width && p.height == height && p.rung.codec == r.codec) {
            dropped.push(DroppedRung { name: r.name.clone(), reason: format!("same {width}x{height} size as a larger rung") });
            continue;
        }
        renditions.push(PlannedRung { rung: r.clone(), width, height });
    }
    Ladder { renditions, dropped }
}

/// Rounds a scaled dimension to the nearest even number (4:2:0 chroma needs even sizes), at least 2.
pub fn even(x: f64) -> u32 {
    (((x / 2.0).round() * 2.0) as u32).max(2)
}

/// The rendition an audio-only source gets: AAC at the profile's highest audio rate.
pub fn audio_only_kbps(profile: &Profile) -> u32 {
    profile.rungs.iter().map(|r| r.audio_kbps).max().unwrap_or(128)
}

const STANDARD_RATES: [(u32, u32); 9] = [(24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1), (60000, 1001), (60, 1)];

/// Chooses the constant output frame rate (as a fraction) for a possibly variable-rate source.
///
/// `average` is the measured mean rate, `nominal` the container's declared rate. The result is
/// at most 60 fps (higher rates are halved until they fit) and snapped to a broadcast rate when
/// within 3 %, so a jittery 29.6 fps phone clip plays out at 30000/1001.
pub fn output_frame_rate(average: Option<(u32, u32)>, nominal: Option<(u32, u32)>) -> (u32, u32) {
    let as_f = |(n, d): (u32, u32)| if d == 0 { 0.0 } else { f64::from(n) / f64::from(d) };
    let valid = |r: &(u32, u32)| (1.0..=1000.0).contains(&as_f(*r));
    let Some(picked) = average.filter(valid).or(nominal.filter(valid)) else {
        return (30, 1);
    };
    let mut fps = as_f(picked);
    let mut exact = picked;
    while fps > 60.5 {
        fps /= 2.0;
        exact = (exact.0, exact.1 * 2);
    }
    let nearest =
        STANDARD_RATES.iter().copied().min_by(|a, b| (as_f(*a) - fps).abs().total_cmp(&(as_f(*b) - fps).abs())).unwrap_or((30, 1));
    if (as_f(nearest) - fps).abs() / fps <= 0.03 {
        nearest
    } else if exact.1 <= 1001 && exact.0 <= 60_000 {
        let g = gcd(exact.0, exact.1);
        (exact.0 / g, exact.1 / g)
    } else {
        ((fps.round() as u32).max(1), 1)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Profile {
        Profile::built_in("default").unwrap()
    }

    fn sizes(l: &Ladder) -> Vec<(String, u32, u32)> {
        l.renditions.iter().map(|p| (p.rung.name.clone(), p.width, p.height)).collect()
    }

    #[test]
    fn full_hd_source_gets_the_whole_ladder() {
        let l = plan_video(&default(), SourceGeometry { width: 1920, height: 1080 });
        assert_eq!(
            sizes(&l),
            vec![("1080p".into(), 1920, 1080), ("720p".into(), 1280, 720), ("480p".into(), 854, 480), ("360p".into(), 640, 360)]
        );
        assert!(l.dropped.is_empty());
    }

    #[test]
    fn rungs_above_the_source_are_dropped() {
        let l = plan_video(&default(), SourceGeometry { width: 1280, height: 720 });
        assert_eq!(sizes(&l).len(), 3);
        assert_eq!(l.dropped.len(), 1);
        assert_eq!(l.dropped[0].name, "1080p");
        assert!(l.dropped[0].reason.contains("upscale"));
    }

    #[test]
    fn tiny_source_keeps_lowest_rung_at_source_size() {
        let l = plan_video(&default(), SourceGeometry { width: 320, height: 180 });
        assert_eq!(sizes(&l), vec![("360p".into(), 320, 180)]);
        assert_eq!(l.dropped.len(), 3);
    }

    #[test]
    fn aspect_is_kept_with_even_dimensions() {
        let l = plan_video(&default(), SourceGeometry { width: 1920, height: 800 });
        assert_eq!(sizes(&l)[0], ("1080p".into(), 1920, 800));
        assert_eq!(sizes(&l)[1], ("720p".into(), 1280, 534));
        for p in &l.renditions {
            assert_eq!(p.width % 2, 0);
            assert_eq!(p.height % 2, 0);
        }
        let odd = plan_video(&default(), SourceGeometry { width: 853, height: 479 });
        assert!(odd.renditions.iter().all(|p| p.width % 2 == 0 && p.height % 2 == 0));
    }

    #[test]
    fn portrait_sources_use_portrait_boxes() {
        let l = plan_video(&default(), SourceGeometry { width: 1080, height: 1920 });
        assert_eq!(sizes(&l)[0], ("1080p".into(), 1080, 1920));
        assert_eq!(sizes(&l)[3], ("360p".into(), 360, 640));
    }

    #[test]
    fn built_in_profiles_are_valid() {
        for name in BUILT_IN_PROFILES {
            Profile::built_in(name).unwrap().validate().unwrap();
        }
        let hevc = Profile::built_in("hevc-4k").unwrap();
        assert_eq!(hevc.rungs[0].codec, VideoCodec::Hevc);
        assert_eq!(hevc.rungs.len(), 5);
        assert!(Profile::built_in("nope").is_none());
    }

    #[test]
    fn profile_errors_name_the_field() {
        let err = Profile::from_json(r#"{"name":"x","rungs":[{"name":"a","width":640,"height":"360","video_kbps":800,"audio_kbps":64}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rungs[0].height"), "{err}");

        let err = Profile::from_json(r#"{"name":"x","rungs":[{"name":"a","width":641,"height":360,"video_kbps":800,"audio_kbps":64}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rungs[0].width") && err.contains("even"), "{err}");

        let err = Profile::from_json(
            r#"{"name":"x","rungs":[{"name":"a","width":640,"height":360,"video_kbps":800,"audio_kbps":64,"bogus":1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus"), "{err}");

        let err = Profile::from_json(
            r#"{"name":"x","rungs":[{"name":"a","width":640,"height":360,"codec":"av1","video_kbps":800,"audio_kbps":64}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rungs[0].codec") && err.contains("fmp4"), "{err}");

        let err = Profile::from_json("{not json").unwrap_err().to_string();
        assert!(err.starts_with("invalid profile"), "{err}");

        let err = Profile::from_json(
            r#"{"name":"x","hdr":"keep","rungs":[{"name":"a","width":640,"height":360,"video_kbps":800,"audio_kbps":64}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("hdr") && err.contains("hevc rung"), "{err}");
        let err = Profile::from_json(
            r#"{"name":"x","hdr":"dolby","rungs":[{"name":"a","width":640,"height":360,"video_kbps":800,"audio_kbps":64}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("hdr") && err.contains("keep"), "{err}");

        let err = Profile::from_json(
            r#"{"name":"x","loudness":{"target_lufs":3},"rungs":[{"name":"a","width":640,"height":360,"video_kbps":800,"audio_kbps":64}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("loudness.target_lufs"), "{err}");
        let ok = Profile::from_json(r#"{"name":"x","loudness":{"target_lufs":-16},"rungs":[{"name":"a","width":640,"height":360,"video_kbps":800,"audio_kbps":64}]}"#).unwrap();
        assert_eq!(ok.loudness, Some(Loudness { target_lufs: -16.0, true_peak_dbtp: -1.0 }));
    }

    #[test]
    fn rungs_under_the_quality_floor_are_named_with_the_reason() {
        let floor = QualityFloor { psnr_db: Some(38.0), ssim: Some(0.95) };
        assert_eq!(floor.shortfall(41.2, 0.97), None);
        let low = floor.shortfall(36.5, 0.93).unwrap();
        assert!(low.contains("PSNR 36.50 dB is under the profile's 38 dB") && low.contains("SSIM 0.9300"), "{low}");
        assert_eq!(QualityFloor { psnr_db: None, ssim: Some(0.9) }.shortfall(20.0, 0.95), None, "only what the floor names counts");
        let err = Profile::from_json(
            r#"{"name":"x","quality_floor":{"ssim":2},"rungs":[{"name":"a","width":640,"height":360,"video_kbps":800,"audio_kbps":64}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("quality_floor.ssim") && err.contains("2 is out of range"), "{err}");
    }

    #[test]
    fn profile_json_round_trips() {
        for name in BUILT_IN_PROFILES {
            let p = Profile::built_in(name).unwrap();
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(Profile::from_json(&text).unwrap(), p);
        }
        assert_eq!(Profile::built_in("hevc-4k").unwrap().hdr, HdrPolicy::Keep);
        assert_eq!(default().hdr, HdrPolicy::Tonemap, "HDR is tone-mapped unless a profile says keep");
    }

    #[test]
    fn frame_rate_is_constant_capped_and_snapped() {
        assert_eq!(output_frame_rate(Some((30000, 1001)), None), (30000, 1001));
        assert_eq!(output_frame_rate(Some((2960, 100)), Some((90000, 1))), (30000, 1001));
        assert_eq!(output_frame_rate(Some((120, 1)), None), (60, 1));
        assert_eq!(output_frame_rate(Some((0, 0)), Some((25, 1))), (25, 1));
        assert_eq!(output_frame_rate(None, None), (30, 1));
        assert_eq!(output_frame_rate(Some((15, 1)), None), (15, 1));
        assert_eq!(output_frame_rate(Some((1234567, 100000)), None), (12, 1));
    }
}
