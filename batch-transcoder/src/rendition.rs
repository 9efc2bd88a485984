//! One rendition of the ladder, run on its own thread: scale → encode → interleave → segment →
//! encrypt → write. A failure here fails only this rendition; the others still publish.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use ff::software::scaling;
use ff::{frame, Packet, Rational, Rescale};
use ffmpeg_next as ff;
use serde::Serialize;
use vaultstream::codec_string;
use vaultstream::hls::{Segment, SegmentKey};
use vaultstream::ladder::{Container, VideoCodec};
use vaultstream::segment_cipher::{encrypt_segment_in_place, Iv};

use crate::closed_captions;
use crate::cmaf::{CmafKey, CmafOutput, Packager};
use crate::colour::{DynamicRange, Tags};
use crate::encoder::{self, Backend, VideoEncoder, VideoSettings};
use crate::error::{Result, TranscodeError};
use crate::hdr10::Hdr10;
use crate::iframes::{IFrameOutput, IFrameTrack};
use crate::interleave::Interleaver;
use crate::keyframes::Timeline;
use crate::keys::KeyRing;
use crate::mux::{SegmentMuxer, StreamSpec};
use crate::normalize::Picture;
use crate::packet_file::{PacketChain, PacketWriter};
use crate::quality::QualityProbe;
use crate::stages::{HelperThreads, Stage, StageClock};
use crate::watchdog::Watchdog;
use vaultstream::catalog::RenditionQuality;
use vaultstream::ladder::QualityFloor;

/// What the decoder thread hands every rendition.
pub enum Work {
    Video(Arc<frame::Video>),
    Audio(Arc<frame::Audio>),
}

#[derive(Debug, Clone)]
pub struct VideoPlan {
    pub codec: VideoCodec,
    pub encoder: String,
    /// Under `--encoder auto`, a hardware encoder that fails to open here falls back to this.
    pub fallback: Option<String>,
    pub preset: String,
    pub settings: VideoSettings,
    /// The normalized picture it is made from.
    pub picture: Picture,
    /// Where measured quality is flagged.
    pub quality_floor: Option<QualityFloor>,
    /// Time base of incoming (normalized) frames.
    pub input_time_base: Rational,
}

#[derive(Debug, Clone)]
pub struct RenditionPlan {
    pub name: String,
    pub dir: PathBuf,
    pub container: Container,
    pub timeline: Timeline,
    pub video: Option<VideoPlan>,
    pub audio_kbps: Option<u32>,
    /// The CMAF packaging's key, where the profile asks for CMAF beside the HLS ladder.
    pub cmaf: Option<CmafKey>,
    /// Its part in a chunked title's transcode, where the title is chunked.
    pub chunk: Option<ChunkRole>,
}

/// What a rendition does in a chunked title.
#[derive(Debug, Clone)]
pub enum ChunkRole {
    /// Encode one chunk's frames, its packets kept in `file` (no audio, no segments).
    Encode { file: PathBuf },
    /// Take the video packets from every chunk's file, in order, instead of encoding: the rest
    /// (audio, segments, encryption, CMAF, I-frames) as for a whole title.
    Stitch { files: Vec<PathBuf>, encoder: String, quality: Option<RenditionQuality> },
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentRecord {
    pub uri: String,
    pub duration: f64,
    pub bytes: u64,
    pub key_uri: String,
    pub iv: String,
    #[serde(skip)]
    pub iv_bytes: Iv,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenditionOutput {
    pub name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub codecs: String,
    pub encoder: Option<String>,
    /// `SDR`, `PQ` or `HLG`, and the colour tags written into the stream, for video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_range: Option<DynamicRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colour: Option<Tags>,
    /// PSNR and SSIM of sampled frames against the encoder's input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<RenditionQuality>,
    /// CPU seconds its quality measurement took (summed into the job's figures).
    #[serde(skip)]
    pub quality_cpu_seconds: f64,
    pub init_segment: Option<String>,
    pub frames: u64,
    pub segments: Vec<SegmentRecord>,
    /// CPU seconds by stage on this rung's thread and its encoder's threads.
    pub cpu_by_stage: std::collections::BTreeMap<Stage, f64>,
    #[serde(skip)]
    pub clock: StageClock,
    /// The trick-play track of a video rung.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iframes: Option<IFrameOutput>,
    /// Whether its video carries the source's CEA-608/708 captions.
    pub closed_captions: bool,
    /// Peak and average segment bit rate (bits per second, as delivered: encrypted).
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// Its CMAF tracks (`cbcs`), from the same packets as its segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmaf: Option<CmafOutput>,
}

impl RenditionOutput {
    pub fn playlist_segments(&self) -> Vec<Segment> {
        Self::hls_segments(&self.segments)
    }

    pub fn hls_segments(segments: &[SegmentRecord]) -> Vec<Segment> {
        segments
            .iter()
            .map(|s| Segment { uri: s.uri.clone(), duration: s.duration, key: SegmentKey { uri: s.key_uri.clone(), iv: s.iv_bytes } })
            .collect()
    }
}

struct VideoPath {
    encoder: VideoEncoder,
    encoder_name: String,
    time_base: Rational,
    input_time_base: Rational,
    scaler: Option<scaling::Context>,
    /// The last scaled frame, whose buffers the next one reuses once the encoder has let go.
    spare: Option<frame::Video>,
    first_index: Option<i64>,
    frames: u64,
    /// None where it could not start or has given up (the rung publishes without figures).
    quality: Option<QualityProbe>,
    /// HDR10 metadata a hardware encoder reads from its frames (libx265 takes it as parameters).
    hdr10_on_frames: Option<Hdr10>,
}

struct AudioPath {
    encoder: ff::encoder::Audio,
    time_base: Rational,
}

struct Segmenter<'k> {
    muxer: SegmentMuxer,
    keys: &'k KeyRing,
    plan_dir: PathBuf,
    extension: &'static str,
    timeline: Timeline,
    cut_on_video: bool,
    current: Option<(i64, f64)>,
    end_time: f64,
    segments: Vec<SegmentRecord>,
    video_codec_string: Option<String>,
    iframes: Option<IFrameTrack>,
    /// Whether the video carries CEA-608/708 captions (A/53 SEI).
    closed_captions: bool,
    video_codec: Option<VideoCodec>,
    cmaf: Option<Packager>,
    clock: StageClock,
}

impl Segmenter<'_> {
    fn accept(&mut self, stream: usize, is_video: bool, mut packet: Packet, time_base: Rational) -> Result<()> {
        let seconds = |ts: Option<i64>| ts.map(|t| t as f64 * f64::from(time_base));
        let pts = seconds(packet.pts()).or(seconds(packet.dts())).unwrap_or(self.end_time);
        let duration = packet.duration() as f64 * f64::from(time_base);
        let cut_point = if self.cut_on_video { is_video && packet.is_key() } else { true };
        if is_video && self.video_codec_string.is_none() && packet.is_key() {
            self.video_codec_string =
                packet.data().and_then(|d| codec_string::h264_from_annexb(d).or_else(|| codec_string::hevc_from_annexb(d)));
        }
        if cut_point {
            let index = self.timeline.segment_index(pts);
            match self.current {
                None => self.current = Some((index, pts)),
                Some((current, start)) if index > current => {
                    let bytes = self.clock.time(Stage::Mux, || self.muxer.cut())?;
                    self.emit(bytes, pts - start)?;
                    if let Some(cmaf) = self.cmaf.as_mut() {
                        self.clock.time(Stage::Cmaf, || cmaf.cut())?;
                    }
                    self.current = Some((index, pts));
                }
                Some(_) => {}
            }
        }
        self.end_time = self.end_time.max(pts + duration);
        if is_video && !self.closed_captions {
            let hevc = self.video_codec == Some(VideoCodec::Hevc);
            self.closed_captions = packet.data().is_some_and(|d| closed_captions::in_access_unit(d, hevc));
        }
        if let Some(track) = self.iframes.as_mut().filter(|_| is_video && packet.is_key()) {
            self.clock.time(Stage::IFrames, || track.key_packet(&packet, pts, self.keys))?;
        }
        if let Some(cmaf) = self.cmaf.as_mut() {
            self.clock.time(Stage::Cmaf, || cmaf.write(is_video, &packet))?;
        }
        self.clock.time(Stage::Mux, || self.muxer.write(stream, &mut packet))
    }

    fn emit(&mut self, mut bytes: Vec<u8>, duration: f64) -> Result<()> {
        let number = self.segments.len();
        let (key, key_uri) = self.keys.for_segment(number)?;
        let iv = Iv::random()?;
        self.clock.time(Stage::Encrypt, || encrypt_segment_in_place(&key, &iv, &mut bytes));
        let uri = format!("seg_{number:05}.{}", self.extension);
        self.clock
            .time(Stage::Write, || std::fs::write(self.plan_dir.join(&uri), &bytes))
            .map_err(|e| TranscodeError::output(&format!("writing {uri}"), e))?;
        self.segments.push(SegmentRecord { uri, duration, bytes: bytes.len() as u64, key_uri, iv: iv.to_hls_attribute(), iv_bytes: iv });
        Ok(())
    }
}

/// Runs one rendition to completion.
pub fn run(plan: RenditionPlan, work: Receiver<Work>, keys: &KeyRing, watchdog: &Watchdog) -> Result<RenditionOutput> {
    std::fs::create_dir_all(&plan.dir).map_err(|e| TranscodeError::output(&format!("creating {}", plan.dir.display()), e))?;
    let global_header = plan.container == Container::Fmp4;
    if let (Some(ChunkRole::Encode { file }), Some(v)) = (&plan.chunk, &plan.video) {
        return encode_chunk(&plan, v, file, work, watchdog);
    }

    let mut stitched = match &plan.chunk {
        Some(ChunkRole::Stitch { files, .. }) if plan.video.is_some() => Some(Stitched::open(files.clone())?),
        _ => None,
    };
    let mut video = match &plan.video {
        Some(v) if stitched.is_none() => Some(open_video_path(v, global_header)?),
        _ => None,
    };
    let mut audio = match plan.audio_kbps {
        Some(kbps) => {
            let enc = encoder::open_aac(kbps, global_header)?;
            let time_base = enc.time_base();
            Some(AudioPath { encoder: enc, time_base })
        }
        None => None,
    };

    let mut specs = Vec::new();
    if let Some(v) = &video {
        specs.push(StreamSpec { encoder: unsafe { v.encoder.encoder.as_ptr() }, time_base: v.time_base });
    }
    if let Some(s) = &stitched {
        specs.push(StreamSpec { encoder: unsafe { s.context.as_ptr() }, time_base: s.time_base });
    }
    let has_video = !specs.is_empty();
    if let Some(a) = &audio {
        specs.push(StreamSpec { encoder: unsafe { a.encoder.as_ptr() }, time_base: a.time_base });
    }
    let (muxer, init) = SegmentMuxer::new(plan.container, &specs)?;
    let (init_segment, init_codec) = match init {
        Some(bytes) => {
            std::fs::write(plan.dir.join("init.mp4"), &bytes).map_err(|e| TranscodeError::output("writing init.mp4", e))?;
            (Some("init.mp4".to_string()), codec_string::from_mp4_init(&bytes))
        }
        None => (None, None),
    };
    let iframes = match specs.first().filter(|_| has_video) {
        Some(spec) => Some(IFrameTrack::new(plan.container, spec, plan.dir.clone(), plan.timeline)?),
        None => None,
    };
    let cmaf = match &plan.cmaf {
        Some(key) => Some(Packager::new(
            &plan.dir,
            key,
            plan.video.as_ref().filter(|_| has_video).map(|p| (specs[0].encoder, specs[0].time_base, p.codec == VideoCodec::Hevc)),
            audio.as_ref().map(|a| (specs[specs.len() - 1].encoder, a.time_base)),
        )?),
        None => None,
    };
    let video_stream = has_video.then_some(0usize);
    let audio_stream = audio.as_ref().map(|_| usize::from(has_video));
    let stream_count = specs.len();
    let mut segmenter = Segmenter {
        muxer,
        keys,
        plan_dir: plan.dir.clone(),
        extension: if plan.container == Container::Fmp4 { "m4s" } else { "ts" },
        timeline: plan.timeline,
        cut_on_video: has_video,
        current: None,
        end_time: 0.0,
        segments: Vec::new(),
        video_codec_string: None,
        iframes,
        closed_captions: false,
        video_codec: plan.video.as_ref().map(|v| v.codec),
        cmaf,
        clock: StageClock::default(),
    };
    let mut interleaver: Interleaver<Packet> = Interleaver::new(stream_count);
    let time_bases: Vec<Rational> = specs.iter().map(|s| s.time_base).collect();

    let mut clock = StageClock::default();
    // The encoder's own threads (opened above, on this thread, so named as it).
    let mut encoder_threads = HelperThreads::of_this_thread();
    // A stitched rung's video packets are read one at a time, whenever the interleaver waits
    // for video, so no more than a packet of it is held.
    let drain = |interleaver: &mut Interleaver<Packet>, segmenter: &mut Segmenter, stitched: &mut Option<Stitched>| -> Result<()> {
        loop {
            while let Some((stream, packet)) = interleaver.pop() {
                segmenter.accept(stream, Some(stream) == video_stream, packet, time_bases[stream])?;
            }
            match (stitched.as_mut(), video_stream) {
                (Some(s), Some(v)) if interleaver.waits_for(v) => match s.chain.next_packet()? {
                    Some(packet) => {
                        s.frames += 1;
                        let dts = packet.dts().or(packet.pts()).unwrap_or(0) as f64 * f64::from(s.time_base);
                        interleaver.push(v, dts, packet);
                    }
                    None => interleaver.close(v),
                },
                _ => return Ok(()),
            }
        }
    };

    for item in work.iter() {
        match item {
            Work::Video(frame) => {
                if let (Some(v), Some(s)) = (video.as_mut(), video_stream) {
                    encode_frame(v, &frame, &plan.timeline, (s, &mut interleaver), (&mut clock, &mut encoder_threads))?;
                }
            }
            Work::Audio(frame) => {
                if let (Some(a), Some(s)) = (audio.as_mut(), audio_stream) {
                    clock
                        .time(Stage::EncodeAudio, || a.encoder.send_frame(&frame))
                        .map_err(|e| TranscodeError::Fatal(format!("aac: encoding: {e}")))?;
                    receive(&mut a.encoder, s, a.time_base, &mut interleaver, &mut None, (&mut clock, Stage::EncodeAudio))?;
                }
            }
        }
        drain(&mut interleaver, &mut segmenter, &mut stitched)?;
        watchdog.heartbeat();
    }

    // The decoder hung up: flush encoders, then whatever is still queued.
    encoder_threads.sample();
    if let (Some(v), Some(s)) = (video.as_mut(), video_stream) {
        clock
            .time(Stage::EncodeVideo, || v.encoder.encoder.send_eof())
            .map_err(|e| TranscodeError::Fatal(format!("flushing {}: {e}", v.encoder_name)))?;
        receive(&mut v.encoder.encoder, s, v.time_base, &mut interleaver, &mut v.quality, (&mut clock, Stage::EncodeVideo))?;
        interleaver.close(s);
    }
    if let (Some(a), Some(s)) = (audio.as_mut(), audio_stream) {
        clock.time(Stage::EncodeAudio, || a.encoder.send_eof()).map_err(|e| TranscodeError::Fatal(format!("flushing aac: {e}")))?;
        receive(&mut a.encoder, s, a.time_base, &mut interleaver, &mut None, (&mut clock, Stage::EncodeAudio))?;
        interleaver.close(s);
    }
    drain(&mut interleaver, &mut segmenter, &mut stitched)?;

    let Some((_, start)) = segmenter.current else {
        return Err(TranscodeError::Fatal("the encoder produced no packets".into()));
    };
    let last_duration = segmenter.end_time - start;
    let tail = segmenter.clock.time(Stage::Mux, || segmenter.muxer.finish())?;
    segmenter.emit(tail, last_duration)?;
    let end_time = segmenter.end_time;
    let iframes = match segmenter.iframes.take() {
        Some(track) => Some(segmenter.clock.time(Stage::IFrames, || track.finish(end_time, keys))?),
        None => None,
    };
    encoder_threads.sample();
    clock.add_helpers(Stage::EncodeVideo, &encoder_threads);
    let (quality, quality_cpu_seconds) = match video.as_mut().and_then(|v| v.quality.take()).map(QualityProbe::finish) {
        _ if stitched.is_some() => match &plan.chunk {
            Some(ChunkRole::Stitch { quality, .. }) => (quality.clone(), 0.0),
            _ => (None, 0.0),
        },
        Some(Ok(measured)) => measured,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "measuring this rung's quality failed; it publishes without figures");
            (None, 0.0)
        }
        None => (None, 0.0),
    };

    let total_bytes: u64 = segmenter.segments.iter().map(|s| s.bytes).sum();
    let total_seconds: f64 = segmenter.segments.iter().map(|s| s.duration).sum();
    let bandwidth = segmenter
        .segments
        .iter()
        .filter(|s| s.duration > 0.0)
        .map(|s| (s.bytes as f64 * 8.0 / s.duration).ceil() as u64)
        .max()
        .unwrap_or(0);
    let average_bandwidth = if total_seconds > 0.0 { (total_bytes as f64 * 8.0 / total_seconds).ceil() as u64 } else { 0 };

    let video_codec = match (&plan.video, &init_segment) {
        (None, _) => None,
        (Some(_), Some(_)) => init_codec,
        (Some(_), None) => segmenter.video_codec_string.clone(),
    };
    let video_codec = match (&plan.video, video_codec) {
        (Some(v), None) => Some(fallback_codec_string(v.codec, v.settings.ten_bit).to_string()),
        (_, c) => c,
    };
    let audio_codec = audio.as_ref().map(|_| codec_string::AAC_LC.to_string());
    let cmaf = match segmenter.cmaf.take() {
        Some(p) => Some(segmenter.clock.time(Stage::Cmaf, || p.finish(video_codec.clone(), audio_codec.clone()))?),
        None => None,
    };
    clock.merge(&segmenter.clock);
    clock.add(Stage::Quality, std::time::Duration::from_secs_f64(quality_cpu_seconds));
    let codecs = video_codec.into_iter().chain(audio_codec).collect::<Vec<_>>().join(",");

    Ok(RenditionOutput {
        name: plan.name.clone(),
        width: plan.video.as_ref().map(|v| v.settings.width),
        height: plan.video.as_ref().map(|v| v.settings.height),
        codecs,
        encoder: match (&plan.chunk, &video) {
            (Some(ChunkRole::Stitch { encoder, .. }), _) if has_video => Some(encoder.clone()),
            (_, v) => v.as_ref().map(|v| v.encoder_name.clone()),
        },
        video_range: plan.video.as_ref().map(|v| v.settings.colour.dynamic_range()),
        colour: plan.video.as_ref().map(|v| v.settings.colour),
        quality,
        quality_cpu_seconds,
        init_segment,
        frames: video.as_ref().map(|v| v.frames).or(stitched.as_ref().map(|s| s.frames)).unwrap_or(0),
        closed_captions: segmenter.closed_captions,
        cpu_by_stage: clock.seconds(),
        clock,
        segments: segmenter.segments,
        iframes,
        bandwidth,
        average_bandwidth,
        cmaf,
    })
}

/// A stitched rung's video: the chunks' packets and a codec context describing them.
struct Stitched {
    chain: PacketChain,
    context: ff::codec::Context,
    time_base: Rational,
    frames: u64,
}

impl Stitched {
    fn open(files: Vec<PathBuf>) -> Result<Stitched> {
        let chain = PacketChain::open(files)?;
        let mut context = ff::codec::Context::from_parameters(chain.parameters.clone())
            .map_err(|e| TranscodeError::Fatal(format!("describing the stitched video: {e}")))?;
        let time_base = chain.time_base;
        // SAFETY: a context we own; the muxers read its time base with its other parameters. The
        // NUT file's codec tag is NUT's own, which MPEG-TS and MP4 muxers would refuse.
        unsafe {
            (*context.as_mut_ptr()).time_base = time_base.into();
            (*context.as_mut_ptr()).codec_tag = 0;
        }
        Ok(Stitched { chain, context, time_base, frames: 0 })
    }
}

/// Encodes one chunk's frames of this rung into `file`: the same frames, IDRs and encoder
/// settings as the whole title's rung would get for them, the packets kept for the stitch.
fn encode_chunk(
    plan: &RenditionPlan,
    video_plan: &VideoPlan,
    file: &std::path::Path,
    work: Receiver<Work>,
    watchdog: &Watchdog,
) -> Result<RenditionOutput> {
    let mut v = open_video_path(video_plan, plan.container == Container::Fmp4)?;
    let mut writer = PacketWriter::create(file, ff::codec::Parameters::from(&v.encoder.encoder), v.time_base)?;
    let mut interleaver: Interleaver<Packet> = Interleaver::new(1);
    let mut clock = StageClock::default();
    let mut encoder_threads = HelperThreads::of_this_thread();
    let mut write_ready = |interleaver: &mut Interleaver<Packet>, clock: &mut StageClock| -> Result<()> {
        while let Some((_, packet)) = interleaver.pop() {
            clock.time(Stage::Write, || writer.write(&packet))?;
        }
        Ok(())
    };
    for item in work.iter() {
        if let Work::Video(frame) = item {
            encode_frame(&mut v, &frame, &plan.timeline, (0, &mut interleaver), (&mut clock, &mut encoder_threads))?;
            write_ready(&mut interleaver, &mut clock)?;
        }
        watchdog.heartbeat();
    }
    encoder_threads.sample();
    clock
        .time(Stage::EncodeVideo, || v.encoder.encoder.send_eof())
        .map_err(|e| TranscodeError::Fatal(format!("flushing {}: {e}", v.encoder_name)))?;
    receive(&mut v.encoder.encoder, 0, v.time_base, &mut interleaver, &mut v.quality, (&mut clock, Stage::EncodeVideo))?;
    interleaver.close(0);
    write_ready(&mut interleaver, &mut clock)?;
    clock.time(Stage::Write, || writer.finish())?;
    if v.frames == 0 {
        return Err(TranscodeError::Fatal("the chunk gave this rung no frames".into()));
    }
    encoder_threads.sample();
    clock.add_helpers(Stage::EncodeVideo, &encoder_threads);
    let (quality, quality_cpu_seconds) = match v.quality.take().map(QualityProbe::finish) {
        Some(Ok(measured)) => measured,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "measuring this rung's quality failed; it publishes without figures");
            (None, 0.0)
        }
        None => (None, 0.0),
    };
    clock.add(Stage::Quality, std::time::Duration::from_secs_f64(quality_cpu_seconds));
    Ok(RenditionOutput {
        name: plan.name.clone(),
        width: Some(video_plan.settings.width),
        height: Some(video_plan.settings.height),
        codecs: String::new(),
        encoder: Some(v.encoder_name.clone()),
        video_range: None,
        colour: None,
        quality,
        quality_cpu_seconds,
        init_segment: None,
        frames: v.frames,
        segments: Vec::new(),
        cpu_by_stage: clock.seconds(),
        clock,
        iframes: None,
        closed_captions: false,
        bandwidth: 0,
        average_bandwidth: 0,
        cmaf: None,
    })
}

fn fallback_codec_string(codec: VideoCodec, ten_bit: bool) -> &'static str {
    match codec {
        VideoCodec::H264 => "avc1.640028",
        VideoCodec::Hevc if ten_bit => "hvc1.2.4.L150.90",
        VideoCodec::Hevc => "hvc1.1.6.L150.90",
        VideoCodec::Av1 => "av01.0.08M.08",
    }
}

fn open_video_path(plan: &VideoPlan, global_header: bool) -> Result<VideoPath> {
    let mut settings = plan.settings.clone();
    settings.global_header = global_header;
    let (encoder, name) = match encoder::open_video(&plan.encoder, plan.codec, &plan.preset, &settings) {
        Ok(e) => (e, plan.encoder.clone()),
        Err(reason) => match &plan.fallback {
            Some(fallback) => {
                tracing::warn!(encoder = %plan.encoder, %reason, %fallback, "hardware encoder failed to open for this rendition; using software");
                let e = encoder::open_video(fallback, plan.codec, &plan.preset, &settings)
                    .map_err(|r| TranscodeError::Fatal(format!("{fallback}: {r}")))?;
                (e, fallback.clone())
            }
            None => return Err(TranscodeError::Fatal(format!("{}: {reason}", plan.encoder))),
        },
    };
    let time_base = encoder.encoder.time_base();
    let fps = f64::from(plan.settings.fps.0) / f64::from(plan.settings.fps.1);
    let quality = QualityProbe::new(&encoder.encoder, plan.settings.gop, fps, plan.quality_floor)
        .map_err(|e| tracing::warn!(error = %e, "cannot measure this rung's quality; it publishes without figures"))
        .ok();
    let encoder_name = name;
    Ok(VideoPath {
        encoder,
        time_base,
        input_time_base: plan.input_time_base,
        scaler: None,
        spare: None,
        first_index: None,
        frames: 0,
        quality,
        hdr10_on_frames: plan.settings.hdr10.filter(|_| Backend::of(&encoder_name) != Backend::Software),
        encoder_name,
    })
}

/// Prepares and encodes one frame, moving the packets the encoder has ready into `stream` of the
/// interleaver; the encoder's own threads are sampled every 30 frames (x264 ends its lookahead
/// threads at flush, before a last sample could see them).
fn encode_frame(
    v: &mut VideoPath,
    frame: &frame::Video,
    timeline: &Timeline,
    (stream, interleaver): (usize, &mut Interleaver<Packet>),
    (clock, encoder_threads): (&mut StageClock, &mut HelperThreads),
) -> Result<()> {
    let prepared = prepare_frame(v, frame, timeline, clock)?;
    clock
        .time(Stage::EncodeVideo, || v.encoder.encoder.send_frame(&prepared))
        .map_err(|e| TranscodeError::Fatal(format!("{}: encoding: {e}", v.encoder_name)))?;
    if v.scaler.is_some() && v.encoder.upload.is_none() {
        v.spare = Some(prepared);
    }
    v.frames += 1;
    if v.frames % 30 == 0 {
        encoder_threads.sample();
    }
    receive(&mut v.encoder.encoder, stream, v.time_base, interleaver, &mut v.quality, (clock, Stage::EncodeVideo))
}

/// Scales a shared normalized frame to this rendition, stamps its output index and forces an
/// IDR where the timeline says a GOP or segment starts.
fn prepare_frame(v: &mut VideoPath, input: &frame::Video, timeline: &Timeline, clock: &mut StageClock) -> Result<frame::Video> {
    let (width, height, format) = (v.encoder.encoder.width(), v.encoder.encoder.height(), v.encoder.input_format);
    let mut out = if input.width() == width && input.height() == height && input.format() == format {
        let mut shared = frame::Video::empty();
        // SAFETY: both are valid frames; av_frame_ref adds a reference to the same buffers, and
        // the fields we change afterwards (pts, pict_type) live in the new AVFrame only.
        let r = unsafe { ff::ffi::av_frame_ref(shared.as_mut_ptr(), input.as_ptr()) };
        if r < 0 {
            return Err(TranscodeError::Fatal(format!("referencing a frame: {}", ff::Error::from(r))));
        }
        shared
    } else {
        let scaler = match &mut v.scaler {
            Some(s) if s.input().format == input.format() && s.input().width == input.width() && s.input().height == input.height() => s,
            slot => slot.insert(
                scaling::Context::get(input.format(), input.width(), input.height(), format, width, height, scaling::Flags::BICUBIC)
                    .map_err(|e| TranscodeError::Fatal(format!("creating the scaler: {e}")))?,
            ),
        };
        clock.time(Stage::Scale, || -> Result<frame::Video> {
            let mut scaled = reusable(v.spare.take(), format, width, height);
            scaler.run(input, &mut scaled).map_err(|e| TranscodeError::Fatal(format!("scaling: {e}")))?;
            closed_captions::carry(input, &mut scaled)?;
            Ok(scaled)
        })?
    };
    let index = input.pts().unwrap_or(0);
    let index = if v.input_time_base == v.time_base { index } else { index.rescale(v.input_time_base, v.time_base) };
    let first = *v.first_index.get_or_insert(index);
    out.set_pts(Some(index));
    out.set_kind(if timeline.is_keyframe(index, first) { ff::picture::Type::I } else { ff::picture::Type::None });
    if let Some(probe) = &mut v.quality {
        clock.time(Stage::Quality, || probe.offer(&out));
    }
    if let Some(hdr10) = &v.hdr10_on_frames {
        hdr10.attach(&mut out)?;
    }
    match &v.encoder.upload {
        Some(upload) => upload.upload(&out),
        None => Ok(out),
    }
}

/// The previous scaled frame, when nothing else holds its buffers any more (software encoders
/// copy the picture in `send_frame`), stripped of its side data; else a new frame. A fresh
/// 1080p frame a rung a frame is page faults and zeroed pages, a few percent of a transcode.
fn reusable(spare: Option<frame::Video>, format: ff::format::Pixel, width: u32, height: u32) -> frame::Video {
    match spare {
        // SAFETY: a valid frame we own; av_frame_is_writable only reads its buffer references.
        Some(mut frame)
            if unsafe { ff::ffi::av_frame_is_writable(frame.as_ptr().cast_mut()) } > 0
                && (frame.format(), frame.width(), frame.height()) == (format, width, height) =>
        {
            // SAFETY: removing side data by the type of the first entry, once per entry there
            // was; each call frees that entry (and any of its type) and shrinks the array.
            unsafe {
                let raw = frame.as_mut_ptr();
                for _ in 0..(*raw).nb_side_data {
                    if (*raw).nb_side_data == 0 {
                        break;
                    }
                    ff::ffi::av_frame_remove_side_data(raw, (**(*raw).side_data).type_);
                }
            }
            frame
        }
        _ => frame::Video::new(format, width, height),
    }
}

/// Moves every packet the encoder has ready into the interleaver, past the quality probe first.
fn receive(
    encoder: &mut ff::encoder::Encoder,
    stream: usize,
    time_base: Rational,
    interleaver: &mut Interleaver<Packet>,
    quality: &mut Option<QualityProbe>,
    (clock, stage): (&mut StageClock, Stage),
) -> Result<()> {
    loop {
        let mut packet = Packet::empty();
        match clock.time(stage, || encoder.receive_packet(&mut packet)) {
            Ok(()) => {
                if let Some(Err(e)) = quality.as_mut().map(|probe| probe.packet(&packet)) {
                    tracing::warn!(error = %e, "measuring this rung's quality failed; it publishes without figures");
                    *quality = None;
                }
                let dts = packet.dts().or(packet.pts()).unwrap_or(0) as f64 * f64::from(time_base);
                interleaver.push(stream, dts, packet);
            }
            Err(ff::Error::Eof) => return Ok(()),
            Err(ff::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(()),
            Err(e) => return Err(TranscodeError::Fatal(format!("receiving encoded packets: {e}"))),
        }
    }
}
