//! A rendition's CMAF packaging, beside its HLS ladder from the same encoded packets: one
//! fragmented-MP4 track for its video and one for its audio (CMAF allows one track per file),
//! each with an init segment and fragments cut where the ladder's segments are cut, so the same
//! files serve an HLS media playlist (`EXT-X-MAP`) and a DASH `SegmentTemplate`. Every fragment
//! is encrypted (`cbcs`) in memory before it is written.

use std::path::PathBuf;

use ff::ffi::AVCodecContext;
use ff::{Packet, Rational};
use ffmpeg_next as ff;
use serde::Serialize;
use vaultstream::cenc::Kid;
use vaultstream::drm::Signaling;
use vaultstream::ladder::Container;
use vaultstream::ContentKey;

use crate::cbcs::{self, Samples, TrackProtection};
use crate::error::{Result, TranscodeError};
use crate::mux::{SegmentMuxer, StreamSpec};

/// The content key of a title's CMAF packaging and its KID (the key's `Debug` is redacted).
#[derive(Clone, Debug)]
pub struct CmafKey {
    pub key: ContentKey,
    pub kid: Kid,
    /// Each DRM system's signalling, when a vendor's key provider (SPEKE) gave the key: the
    /// vendor then holds it, and the title carries no ClearKey signalling (VaultStream serves
    /// no ClearKey licence for a key it does not hold). `None`: VaultStream holds the key.
    pub vendor: Option<Vec<Signaling>>,
}

impl CmafKey {
    /// A key VaultStream holds (KMS-wrapped in the record, or `local`'s key file).
    pub fn held(key: ContentKey, kid: Kid) -> CmafKey {
        CmafKey { key, kid, vendor: None }
    }

    /// The `pssh` boxes every init segment carries: ClearKey's for a key VaultStream holds,
    /// the vendor's systems' otherwise.
    pub fn pssh_boxes(&self) -> Vec<Vec<u8>> {
        match &self.vendor {
            None => vec![vaultstream::cmaf::clearkey_pssh(&self.kid)],
            Some(systems) => systems.iter().filter_map(|s| s.pssh.clone()).collect(),
        }
    }
}

/// One written fragment, as a playlist and an MPD name it.
#[derive(Debug, Clone, Serialize)]
pub struct Fragment {
    pub uri: String,
    /// Decode time of its first sample and its length, in the track's timescale.
    pub start: u64,
    pub duration: u64,
    pub bytes: u64,
}

/// A finished CMAF track of a rendition (paths relative to the rendition folder).
#[derive(Debug, Clone, Serialize)]
pub struct TrackOutput {
    pub init: String,
    pub timescale: u32,
    pub codec: String,
    pub fragments: Vec<Fragment>,
    /// Peak and average fragment bit rate (bits per second).
    pub bandwidth: u64,
    pub average_bandwidth: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CmafOutput {
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<TrackOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<TrackOutput>,
}

/// The folder, inside a rendition's, that holds its CMAF tracks.
pub const FOLDER: &str = "cmaf";

struct Track {
    prefix: &'static str,
    dir: PathBuf,
    spec: StreamSpec,
    hevc: bool,
    muxer: Option<SegmentMuxer>,
    protection: TrackProtection,
    pssh: Vec<Vec<u8>>,
    samples: Option<Samples>,
    init: Option<String>,
    timescale: u32,
    default_duration: u32,
    fragments: Vec<Fragment>,
    /// Whether a packet was written since the last cut.
    pending: bool,
}

impl Track {
    fn new(prefix: &'static str, dir: PathBuf, spec: StreamSpec, hevc: bool, key: &CmafKey) -> Result<Track> {
        let iv = vaultstream::segment_cipher::Iv::random()?.0;
        Ok(Track {
            prefix,
            dir,
            spec,
            hevc,
            muxer: None,
            protection: TrackProtection { key: key.key.clone(), kid: key.kid, iv },
            pssh: key.pssh_boxes(),
            samples: None,
            init: None,
            timescale: 0,
            default_duration: 0,
            fragments: Vec::new(),
            pending: false,
        })
    }

    /// Opens the muxer at the first packet: an encoder writing Annex B (for MPEG-TS) has no
    /// decoder configuration of its own, so the parameter sets of its first key frame become it.
    fn open(&mut self, first: &Packet) -> Result<()> {
        let extradata = match self.prefix {
            "v" => first.data().map(|d| parameter_sets(d, self.hevc)).filter(|p| !p.is_empty()),
            _ => None,
        };
        let (muxer, init) = SegmentMuxer::with_extradata(Container::Fmp4, std::slice::from_ref(&self.spec), extradata.as_deref())?;
        let init = init.ok_or_else(|| TranscodeError::Fatal("the mp4 muxer wrote no init segment".into()))?;
        let (timescale, default_duration) = cbcs::track_timescale(&init)?;
        let (protected, samples) = cbcs::protect_init(&init, &self.protection, &self.pssh)?;
        let name = format!("{}_init.mp4", self.prefix);
        std::fs::write(self.dir.join(&name), &protected).map_err(|e| TranscodeError::output(&format!("writing {name}"), e))?;
        self.init = Some(name);
        self.samples = Some(samples);
        self.timescale = timescale;
        self.default_duration = default_duration;
        self.muxer = Some(muxer);
        Ok(())
    }

    fn write(&mut self, packet: &Packet) -> Result<()> {
        if self.muxer.is_none() {
            self.open(packet)?;
        }
        let mut copy = packet.clone();
        if let Some(muxer) = self.muxer.as_mut() {
            muxer.write(0, &mut copy)?;
        }
        self.pending = true;
        Ok(())
    }

    fn cut(&mut self) -> Result<()> {
        if !self.pending {
            return Ok(());
        }
        let Some(muxer) = self.muxer.as_mut() else { return Ok(()) };
        let bytes = muxer.cut()?;
        self.emit(bytes)
    }

    fn emit(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.pending = false;
        if bytes.is_empty() {
            return Ok(());
        }
        let samples = self.samples.ok_or_else(|| TranscodeError::Fatal("a fragment before its init segment".into()))?;
        let (start, duration) = cbcs::fragment_timing(&bytes, self.default_duration)?;
        let protected = cbcs::protect_fragment(&bytes, samples, &self.protection)?;
        let uri = format!("{}_{:05}.m4s", self.prefix, self.fragments.len());
        std::fs::write(self.dir.join(&uri), &protected).map_err(|e| TranscodeError::output(&format!("writing {uri}"), e))?;
        self.fragments.push(Fragment { uri, start, duration, bytes: protected.len() as u64 });
        Ok(())
    }

    fn finish(mut self, codec: String) -> Result<Option<TrackOutput>> {
        let Some(mut muxer) = self.muxer.take() else { return Ok(None) };
        let tail = muxer.finish()?;
        if self.pending {
            self.emit(tail)?;
        }
        let seconds = |d: u64| d as f64 / f64::from(self.timescale.max(1));
        let bandwidth = self
            .fragments
            .iter()
            .filter(|f| f.duration > 0)
            .map(|f| (f.bytes as f64 * 8.0 / seconds(f.duration)).ceil() as u64)
            .max()
            .unwrap_or(0);
        let total: u64 = self.fragments.iter().map(|f| f.duration).sum();
        let bytes: u64 = self.fragments.iter().map(|f| f.bytes).sum();
        let average_bandwidth = if total > 0 { (bytes as f64 * 8.0 / seconds(total)).ceil() as u64 } else { 0 };
        Ok(Some(TrackOutput {
            init: format!("{FOLDER}/{}", self.init.unwrap_or_default()),
            timescale: self.timescale,
            codec,
            fragments: self.fragments.into_iter().map(|f| Fragment { uri: format!("{FOLDER}/{}", f.uri), ..f }).collect(),
            bandwidth,
            average_bandwidth,
        }))
    }
}

/// Both tracks of a rendition.
pub struct Packager {
    kid: Kid,
    video: Option<Track>,
    audio: Option<Track>,
}

impl Packager {
    pub fn new(
        rendition_dir: &std::path::Path,
        key: &CmafKey,
        video: Option<(*const AVCodecContext, Rational, bool)>,
        audio: Option<(*const AVCodecContext, Rational)>,
    ) -> Result<Packager> {
        let dir = rendition_dir.join(FOLDER);
        std::fs::create_dir_all(&dir).map_err(|e| TranscodeError::output(&format!("creating {}", dir.display()), e))?;
        let video = video
            .map(|(encoder, time_base, hevc)| Track::new("v", dir.clone(), StreamSpec { encoder, time_base }, hevc, key))
            .transpose()?;
        let audio =
            audio.map(|(encoder, time_base)| Track::new("a", dir.clone(), StreamSpec { encoder, time_base }, false, key)).transpose()?;
        Ok(Packager { kid: key.kid, video, audio })
    }

    pub fn write(&mut self, is_video: bool, packet: &Packet) -> Result<()> {
        match if is_video { self.video.as_mut() } else { self.audio.as_mut() } {
            Some(track) => track.write(packet),
            None => Ok(()),
        }
    }

    /// Ends the current fragment of both tracks, where the ladder ends a segment.
    pub fn cut(&mut self) -> Result<()> {
        for track in [self.video.as_mut(), self.audio.as_mut()].into_iter().flatten() {
            track.cut()?;
        }
        Ok(())
    }

    pub fn finish(self, video_codec: Option<String>, audio_codec: Option<String>) -> Result<CmafOutput> {
        let video = match self.video {
            Some(track) => track.finish(video_codec.unwrap_or_default())?,
            None => None,
        };
        let audio = match self.audio {
            Some(track) => track.finish(audio_codec.unwrap_or_default())?,
            None => None,
        };
        Ok(CmafOutput { kid: self.kid.uuid(), video, audio })
    }
}

/// The SPS/PPS (and VPS) NAL units of an Annex B access unit, with their start codes: a decoder
/// configuration the mp4 muxer turns into `avcC`/`hvcC`. Empty for length-prefixed packets.
fn parameter_sets(data: &[u8], hevc: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in vaultstream::codec_string::annexb_nals(data) {
        let Some(&header) = nal.first() else { continue };
        let parameter_set = if hevc { matches!((header >> 1) & 0x3f, 32..=34) } else { matches!(header & 0x1f, 7 | 8) };
        if parameter_set {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_sets_come_out_of_an_annex_b_access_unit() {
        let au = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 9, 9];
        assert_eq!(parameter_sets(&au, false), vec![0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3]);
        assert!(parameter_sets(&[0, 0, 0, 5, 0x65, 1, 2, 3, 4], false).is_empty(), "length-prefixed: none");
    }
}
