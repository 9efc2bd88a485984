//! A video rung's trick-play track: every IDR frame muxed again on its own into a small segment
//! (`iframe_NNNNN.ts` or `.m4s`), encrypted with its period's key like the segment it sits in,
//! and listed in `iframes.m3u8` (`EXT-X-I-FRAMES-ONLY`), each lasting until the next IDR.
//!
//! HLS I-frame playlists usually name byte ranges of the media segments, but a byte range in the
//! middle of a whole-segment AES-128-CBC ciphertext cannot be decrypted on its own (its IV is the
//! ciphertext block before it, and only the segment's end carries padding), so the frames are
//! written out apart. They cost the IDR frames' bytes a second time.

use std::path::PathBuf;

use ff::Packet;
use ffmpeg_next as ff;
use vaultstream::ladder::Container;
use vaultstream::segment_cipher::{encrypt_segment_in_place, Iv};

use crate::error::{Result, TranscodeError};
use crate::keyframes::Timeline;
use crate::keys::KeyRing;
use crate::mux::{SegmentMuxer, StreamSpec};
use crate::rendition::SegmentRecord;

pub const PLAYLIST: &str = "iframes.m3u8";
const INIT: &str = "iframes_init.mp4";

pub struct IFrameTrack {
    muxer: SegmentMuxer,
    dir: PathBuf,
    extension: &'static str,
    timeline: Timeline,
    /// The last IDR's encrypted-to-be bytes and where it starts; written once the next IDR (or
    /// the end) says how long it lasts.
    pending: Option<(Vec<u8>, f64)>,
    segments: Vec<SegmentRecord>,
    init_segment: Option<String>,
}

/// What a rung's I-frame track published.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IFrameOutput {
    pub playlist: String,
    pub init_segment: Option<String>,
    pub segments: Vec<SegmentRecord>,
    /// Peak bit rate of its segments over their durations, bits per second.
    pub bandwidth: u64,
    pub bytes: u64,
}

impl IFrameTrack {
    pub fn new(container: Container, video: &StreamSpec, dir: PathBuf, timeline: Timeline) -> Result<Self> {
        let spec = StreamSpec { encoder: video.encoder, time_base: video.time_base };
        let (muxer, init) = SegmentMuxer::new(container, &[spec])?;
        let init_segment = match init {
            Some(bytes) => {
                std::fs::write(dir.join(INIT), bytes).map_err(|e| TranscodeError::output(&format!("writing {INIT}"), e))?;
                Some(INIT.to_string())
            }
            None => None,
        };
        let extension = if container == Container::Fmp4 { "m4s" } else { "ts" };
        Ok(IFrameTrack { muxer, dir, extension, timeline, pending: None, segments: Vec::new(), init_segment })
    }

    /// Takes a copy of an IDR packet starting at `pts` seconds (timestamps in `time_base`).
    pub fn key_packet(&mut self, packet: &Packet, pts: f64, keys: &KeyRing) -> Result<()> {
        let mut copy = packet.clone();
        self.muxer.write(0, &mut copy)?;
        let bytes = self.muxer.cut()?;
        if let Some((previous, start)) = self.pending.replace((bytes, pts)) {
            self.emit(previous, start, pts - start, keys)?;
        }
        Ok(())
    }

    /// Writes the last IDR, which lasts until `end` seconds.
    pub fn finish(mut self, end: f64, keys: &KeyRing) -> Result<IFrameOutput> {
        let trailer = self.muxer.finish()?;
        if let Some((mut last, start)) = self.pending.take() {
            last.extend_from_slice(&trailer);
            self.emit(last, start, (end - start).max(0.001), keys)?;
        }
        let bandwidth =
            self.segments.iter().filter(|s| s.duration > 0.0).map(|s| (s.bytes as f64 * 8.0 / s.duration).ceil() as u64).max().unwrap_or(0);
        let bytes = self.segments.iter().map(|s| s.bytes).sum();
        Ok(IFrameOutput { playlist: PLAYLIST.into(), init_segment: self.init_segment, segments: self.segments, bandwidth, bytes })
    }

    fn emit(&mut self, mut bytes: Vec<u8>, start: f64, duration: f64, keys: &KeyRing) -> Result<()> {
        // The key of the media segment this frame sits in, so key periods cover both alike.
        let segment = usize::try_from(self.timeline.segment_index(start)).unwrap_or(0);
        let (key, key_uri) = keys.for_segment(segment)?;
        let iv = Iv::random()?;
        encrypt_segment_in_place(&key, &iv, &mut bytes);
        let uri = format!("iframe_{:05}.{}", self.segments.len(), self.extension);
        std::fs::write(self.dir.join(&uri), &bytes).map_err(|e| TranscodeError::output(&format!("writing {uri}"), e))?;
        self.segments.push(SegmentRecord { uri, duration, bytes: bytes.len() as u64, key_uri, iv: iv.to_hls_attribute(), iv_bytes: iv });
        Ok(())
    }
}
