//! Turns decoded frames into what every rendition shares, once per source (libavfilter):
//! video deinterlaced, upright, square-pixelled and at a constant frame rate, and for HDR sources
//! tone-mapped to SDR (plus the HDR picture itself where rungs keep it); audio as 48 kHz stereo
//! float planar in AAC-sized frames, padded or trimmed to stay in sync.

use ff::{filter, frame, Rational};
use ffmpeg_next as ff;

use crate::colour::Tags;
use crate::error::{Result, TranscodeError};
use crate::manifest::thread_cpu_time;
use crate::probe::{Scan, VideoSource};
use crate::tonemap::ToneMap;
use vaultstream::ladder::Loudness;

/// Which of the normalizer's pictures a rendition is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    Sdr,
    /// The HDR source's own range, 10-bit.
    Hdr,
}

/// The forms the normalizer makes each picture in (named apart from `thumbnails::Pictures`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PictureForms {
    /// An SDR source: its pictures as they are.
    Sdr,
    /// An HDR source tagged `source`: tone-mapped to SDR BT.709 at `sdr_size` (no larger than
    /// the largest SDR rung, so the mapping never runs on pixels no rung shows), and with `keep`
    /// the HDR picture too, at full size.
    Hdr { source: Tags, sdr_size: (u32, u32), keep: bool },
}

/// One normalized video frame, in every form the renditions take.
pub struct Normalized {
    pub sdr: frame::Video,
    pub hdr: Option<frame::Video>,
}

pub const AUDIO_RATE: u32 = 48_000;
/// Samples per AAC-LC frame.
pub const AUDIO_FRAME: u32 = 1024;

/// A filter graph from `in` (source filter with `args`) through `chain` to the sinks named
/// `sinks`; `chain` labels its ends `[in]` and `[<sink>]`.
fn build_graph(what: &str, (source, args): (&str, &str), (sink, sinks): (&str, &[&str]), chain: &str) -> Result<filter::Graph> {
    let err = |e: ff::Error| TranscodeError::Fatal(format!("building the {what} filter graph ({chain}): {e}"));
    let find = |name: &str| filter::find(name).ok_or_else(|| TranscodeError::Fatal(format!("libavfilter lacks `{name}`")));
    let mut graph = filter::Graph::new();
    graph.add(&find(source)?, "in", args).map_err(err)?;
    for name in sinks {
        graph.add(&find(sink)?, name, "").map_err(err)?;
    }
    let mut parser = graph.output("in", 0).map_err(err)?;
    for name in sinks {
        parser = parser.input(name, 0).map_err(err)?;
    }
    parser.parse(chain).map_err(err)?;
    graph.validate().map_err(err)?;
    Ok(graph)
}

/// Filters that rotate a picture clockwise by `degrees`, as FFmpeg's CLI autorotation does.
pub fn rotation_filters(degrees: u32) -> &'static [&'static str] {
    match degrees {
        90 => &["transpose=clock"],
        180 => &["hflip", "vflip"],
        270 => &["transpose=cclock"],
        _ => &[],
    }
}

/// The deinterlacer for a source scanned as `scan`, run before anything scales or rotates the
/// picture: `bwdif` keeping the frame rate (one frame per frame), the field order as declared.
/// When the stream does not say, `idet` looks at the pictures themselves and flags each frame
/// interlaced (with its field order) or progressive, and only flagged frames are deinterlaced.
/// Progressive sources get none.
pub fn deinterlace_filter(scan: Scan) -> Option<&'static str> {
    match scan {
        Scan::Progressive => None,
        Scan::TopFieldFirst => Some("bwdif=mode=send_frame:parity=tff:deint=all"),
        Scan::BottomFieldFirst => Some("bwdif=mode=send_frame:parity=bff:deint=all"),
        Scan::Undeclared => Some("idet,bwdif=mode=send_frame:parity=auto:deint=interlaced"),
    }
}

pub struct VideoNormalizer {
    graph: filter::Graph,
    /// Where the last input frame ends (input time base), so the constant-rate output keeps it.
    end_pts: Option<i64>,
    nominal_duration: i64,
    tone_map: Option<ToneMap>,
    /// Thread CPU time spent in the tone map so far.
    tone_map_cpu: std::time::Duration,
    keeps_hdr: bool,
    /// An SDR frame pulled before its HDR twin was ready.
    waiting: Option<frame::Video>,
}

impl VideoNormalizer {
    pub fn new(
        source: &VideoSource,
        format: ff::format::Pixel,
        sample_aspect: Rational,
        stream_time_base: Rational,
        fps: (u32, u32),
        pictures: PictureForms,
        start_seconds: f64,
    ) -> Result<Self> {
        let sar = if sample_aspect.numerator() > 0 && sample_aspect.denominator() > 0 { sample_aspect } else { Rational::new(1, 1) };
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
            source.width,
            source.height,
            ff::ffi::AVPixelFormat::from(format) as i32,
            stream_time_base.numerator(),
            stream_time_base.denominator(),
            sar.numerator(),
            sar.denominator()
        );
        let mut chain: Vec<String> = deinterlace_filter(source.scan).into_iter().map(str::to_string).collect();
        chain.extend(rotation_filters(source.rotation).iter().map(|s| s.to_string()));
        if sar.numerator() != sar.denominator() {
            chain.push("scale=w=trunc(iw*sar/2)*2:h=ih:flags=bicubic".into());
            chain.push("setsar=1".into());
        }
        // Output frame numbers count from the source's start; a chunk's first is its own.
        chain.push(format!("fps=fps={}/{}:start_time={start_seconds}:round=near", fps.0, fps.1));
        let shared = chain.join(",");
        let (description, tone_map, keeps_hdr) = match pictures {
            // 4:2:0 8-bit once here, rather than in every rendition's scaler.
            PictureForms::Sdr => (format!("[in]{shared},format=yuv420p[sdr]"), None, false),
            PictureForms::Hdr { source: tags, sdr_size: (w, h), keep } => {
                // The tone map reads 4:2:0 10-bit; the SDR side is scaled down first where the
                // largest SDR rung is smaller than the source.
                let sdr = format!("scale=w={w}:h={h}:flags=bicubic,format=yuv420p10le");
                let description = if keep {
                    format!("[in]{shared},split=2[to_sdr][to_hdr];[to_sdr]{sdr}[sdr];[to_hdr]format=yuv420p10le[hdr]")
                } else {
                    format!("[in]{shared},{sdr}[sdr]")
                };
                (description, Some(ToneMap::new(&tags)?), keep)
            }
        };
        let sinks: &[&str] = if keeps_hdr { &["sdr", "hdr"] } else { &["sdr"] };
        let graph = build_graph("video", ("buffer", &args), ("buffersink", sinks), &description)?;
        // One output frame's length in input ticks, for input frames that carry no duration.
        let nominal_duration = (f64::from(fps.1) / f64::from(fps.0) / f64::from(stream_time_base)).round().max(1.0) as i64;
        Ok(VideoNormalizer { graph, end_pts: None, nominal_duration, tone_map, tone_map_cpu: Default::default(), keeps_hdr, waiting: None })
    }

    pub fn push(&mut self, frame: &frame::Video) -> Result<()> {
        if let Some(pts) = frame.pts() {
            let duration = frame.packet().duration;
            let end = pts + if duration > 0 { duration } else { self.nominal_duration };
            self.end_pts = Some(self.end_pts.map_or(end, |e| e.max(end)));
        }
        named(&mut self.graph, "in")?.source().add(frame).map_err(|e| TranscodeError::Fatal(format!("feeding the video filter: {e}")))
    }

    /// Ends the input at the end of the last frame (not its start), as FFmpeg's CLI does, so
    /// the rate conversion emits that frame too.
    pub fn flush(&mut self) -> Result<()> {
        let mut source = named(&mut self.graph, "in")?;
        let result = match self.end_pts {
            Some(end) => source.source().close(end),
            None => source.source().flush(),
        };
        result.map_err(|e| TranscodeError::Fatal(format!("flushing the video filter: {e}")))
    }

    /// The next normalized frame, if one is ready.
    pub fn pull(&mut self) -> Result<Option<Normalized>> {
        let Some(sdr) = self.waiting.take().or_else(|| pull_video(&mut self.graph, "sdr")) else {
            return Ok(None);
        };
        let hdr = if self.keeps_hdr {
            match pull_video(&mut self.graph, "hdr") {
                Some(hdr) => Some(hdr),
                None => {
                    self.waiting = Some(sdr);
                    return Ok(None);
                }
            }
        } else {
            None
        };
        let sdr = match &self.tone_map {
            Some(map) => {
                let started = thread_cpu_time();
                let mapped = map.apply(&sdr)?;
                self.tone_map_cpu += thread_cpu_time().saturating_sub(started);
                mapped
            }
            None => sdr,
        };
        Ok(Some(Normalized { sdr, hdr }))
    }

    /// CPU seconds spent tone-mapping, where this source is tone-mapped.
    pub fn tone_map_seconds(&self) -> Option<f64> {
        self.tone_map.as_ref().map(|_| self.tone_map_cpu.as_secs_f64())
    }
}

fn pull_video(graph: &mut filter::Graph, sink: &str) -> Option<frame::Video> {
    let mut out = frame::Video::empty();
    let mut sink = named(graph, sink).ok()?;
    sink.sink().frame(&mut out).ok().map(|_| out)
}

fn named(graph: &mut filter::Graph, name: &str) -> Result<filter::Context> {
    graph.get(name).ok_or_else(|| TranscodeError::Fatal(format!("filter graph has no `{name}` context")))
}

pub struct AudioNormalizer {
    graph: filter::Graph,
}

impl AudioNormalizer {
    /// `format`, `rate` and `layout` describe the decoder's output. Frames must arrive with
    /// timestamps in `1/rate` counted from the source's start, so audio and video share time zero.
    /// Surround sources are downmixed to stereo with ITU-R BS.775 levels (centre and surrounds
    /// at -3 dB, LFE left out), scaled so the mix cannot clip; with `loudness`, the result is
    /// normalized to it (`loudnorm`, one pass, linear where the source allows).
    pub fn new(format: ff::format::Sample, rate: u32, layout: ff::ChannelLayout, loudness: Option<Loudness>) -> Result<Self> {
        let args = format!("time_base=1/{rate}:sample_rate={rate}:sample_fmt={}:channel_layout=0x{:x}", format.name(), layout.bits());
        let mut chain = format!(
            "[in]aresample={AUDIO_RATE}:async=1:first_pts=0:center_mix_level=0.7071:surround_mix_level=0.7071:lfe_mix_level=0:rematrix_maxval=1,\
             aformat=sample_fmts=fltp:channel_layouts=stereo"
        );
        if let Some(l) = loudness {
            // loudnorm measures at 192 kHz for true peak; it is brought back to 48 kHz after.
            chain.push_str(&format!(
                ",loudnorm=I={}:TP={}:LRA=11,aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo",
                l.target_lufs, l.true_peak_dbtp
            ));
        }
        chain.push_str("[out]");
        let mut graph = build_graph("audio", ("abuffer", &args), ("abuffersink", &["out"]), &chain)?;
        named(&mut graph, "out")?.sink().set_frame_size(AUDIO_FRAME);
        Ok(AudioNormalizer { graph })
    }

    pub fn push(&mut self, frame: &frame::Audio) -> Result<()> {
        named(&mut self.graph, "in")?.source().add(frame).map_err(|e| TranscodeError::Fatal(format!("feeding the audio filter: {e}")))
    }

    pub fn flush(&mut self) -> Result<()> {
        named(&mut self.graph, "in")?.source().flush().map_err(|e| TranscodeError::Fatal(format!("flushing the audio filter: {e}")))
    }

    pub fn pull(&mut self) -> Option<frame::Audio> {
        let mut out = frame::Audio::empty();
        let mut sink = named(&mut self.graph, "out").ok()?;
        sink.sink().frame(&mut out).ok().map(|_| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_interlaced_sources_are_deinterlaced_in_their_own_field_order() {
        assert_eq!(deinterlace_filter(Scan::Progressive), None);
        assert!(deinterlace_filter(Scan::TopFieldFirst).is_some_and(|f| f.contains("parity=tff") && f.contains("deint=all")));
        assert!(deinterlace_filter(Scan::BottomFieldFirst).is_some_and(|f| f.contains("parity=bff") && f.contains("deint=all")));
        // Undeclared: only the frames idet finds interlaced, in the order it finds.
        assert!(deinterlace_filter(Scan::Undeclared)
            .is_some_and(|f| f.starts_with("idet,") && f.contains("parity=auto") && f.contains("deint=interlaced")));
        for scan in [Scan::TopFieldFirst, Scan::BottomFieldFirst, Scan::Undeclared] {
            assert!(deinterlace_filter(scan).is_some_and(|f| f.contains("mode=send_frame")), "the frame rate is kept");
        }
    }
}
