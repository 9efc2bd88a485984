//! Decode once: read every packet of the chosen streams, decode and normalize it, and hand the
//! frames to the fan-out. Then judge the source by what decoding found (truncated, damaged, not
//! really media).

use ff::{codec, frame, Packet, Rational, Rescale};
use ffmpeg_next as ff;

use crate::error::{Result, TranscodeError};
use crate::fanout::{DecodeStats, FrameSink};
use crate::normalize::{AudioNormalizer, PictureForms, VideoNormalizer};
use crate::packet_file::PacketWriter;
use crate::probe::{Limits, SourceInfo};
use crate::progress::Progress;
use crate::stages::{self, HelperThreads, Stage, StageClock};
use crate::watchdog::{Phase, Watchdog};
use vaultstream::chunking::Chunk;
use vaultstream::ladder::Loudness;

/// What the threads the video decoder and the normalizer's filter graph start are named, so
/// their CPU time counts to their stages.
const DECODER_THREADS: &str = "vs-decode";
const NORMALIZER_THREADS: &str = "vs-normalize";

struct VideoInput {
    stream: usize,
    decoder: ff::decoder::Video,
    time_base: Rational,
    /// The stream's first timestamp: output timestamps start at zero.
    start: i64,
    pictures: PictureForms,
    normalizer: Option<VideoNormalizer>,
}

struct AudioInput {
    stream: usize,
    loudness: Option<Loudness>,
    decoder: ff::decoder::Audio,
    time_base: Rational,
    normalizer: Option<AudioNormalizer>,
}

/// The decoders of the source's chosen video and audio streams.
pub struct Decoders {
    video: Option<VideoInput>,
    audio: Option<AudioInput>,
}

/// Where packets are read from: the source's demuxer, or (in a stitch) the chunks' copies of
/// its audio packets.
pub trait PacketSource {
    /// Stream `index`'s codec parameters and time base.
    fn stream_of(&self, index: usize) -> Option<(codec::Parameters, Rational)>;
    fn read_into(&mut self, packet: &mut Packet) -> std::result::Result<(), ff::Error>;
    /// Moves to the keyframe at or before `ts` (microseconds).
    fn seek_before(&mut self, ts: i64) -> std::result::Result<(), ff::Error>;
}

impl PacketSource for ff::format::context::Input {
    fn stream_of(&self, index: usize) -> Option<(codec::Parameters, Rational)> {
        self.stream(index).map(|s| (s.parameters(), s.time_base()))
    }

    fn read_into(&mut self, packet: &mut Packet) -> std::result::Result<(), ff::Error> {
        packet.read(self)
    }

    fn seek_before(&mut self, ts: i64) -> std::result::Result<(), ff::Error> {
        self.seek(ts, ..ts)
    }
}

impl PacketSource for crate::packet_file::PacketChain {
    fn stream_of(&self, index: usize) -> Option<(codec::Parameters, Rational)> {
        (index == 0).then(|| (self.parameters.clone(), self.time_base))
    }

    fn read_into(&mut self, packet: &mut Packet) -> std::result::Result<(), ff::Error> {
        match self.next_packet() {
            Ok(Some(next)) => {
                *packet = next;
                Ok(())
            }
            Ok(None) => Err(ff::Error::Eof),
            Err(e) => {
                tracing::error!(error = %e, "reading the chunks' audio");
                Err(ff::Error::InvalidData)
            }
        }
    }

    fn seek_before(&mut self, _: i64) -> std::result::Result<(), ff::Error> {
        Err(ff::Error::Other { errno: libc::ESPIPE })
    }
}

/// A chunk's share of the source: its output frames only, decoded from a keyframe before them,
/// and the source's audio packets of its time span copied (not decoded) into `audio`.
pub struct Window {
    pub chunk: Chunk,
    pub audio: Option<(usize, Rational, PacketWriter)>,
    /// The first and last copied audio packet's times (seconds from the source's start).
    pub audio_span: Option<(f64, f64)>,
    /// The presentation time (as the chunk's audio file keeps it) of the first audio packet past
    /// the chunk's end: where the next chunk's audio must start, if the source's audio goes on.
    pub audio_next_pts: Option<i64>,
    video_done: bool,
    audio_done: bool,
}

impl Window {
    pub fn new(chunk: Chunk, audio: Option<(usize, Rational, PacketWriter)>) -> Window {
        let audio_done = audio.is_none();
        Window { chunk, audio, audio_span: None, audio_next_pts: None, video_done: false, audio_done }
    }

    /// Copies an audio packet of the chunk's span; says whether the packet was the audio stream's.
    fn copy_audio(&mut self, packet: &Packet, start_time: f64) -> Result<bool> {
        let Some((stream, time_base, writer)) = self.audio.as_mut() else { return Ok(false) };
        if packet.stream() != *stream {
            return Ok(false);
        }
        let Some(ts) = packet.pts().or(packet.dts()) else { return Ok(true) };
        let t = ts as f64 * f64::from(*time_base) - start_time;
        if self.chunk.holds(t) {
            writer.write(packet)?;
            let span = self.audio_span.get_or_insert((t, t));
            span.1 = span.1.max(t);
        } else if self.chunk.end_seconds.is_some_and(|end| t >= end) {
            let stored = writer.stored_time(ts);
            self.audio_next_pts = Some(self.audio_next_pts.map_or(stored, |n| n.min(stored)));
            if self.chunk.end_seconds.is_some_and(|end| t >= end + AUDIO_PAST_END) {
                self.audio_done = true;
            }
        }
        Ok(true)
    }

    fn done(&self) -> bool {
        self.video_done && self.audio_done
    }
}

/// Audio packets are read this far past a chunk's end: a demuxer may store a packet a little
/// out of time order across streams, never this far.
const AUDIO_PAST_END: f64 = 1.0;

/// What reading the whole source showed, besides the frame statistics the sink gathered.
pub struct DecodeReport {
    pub read_error: Option<String>,
    pub packets: u64,
    pub packet_bytes: u64,
}

impl Decoders {
    /// Opens the decoders; video is normalized into `pictures`, audio to `loudness` if given.
    pub fn open(input: &impl PacketSource, source: &SourceInfo, pictures: PictureForms, loudness: Option<Loudness>) -> Result<Decoders> {
        let mut video = None;
        if let Some(v) = &source.video {
            let (parameters, time_base) = input.stream_of(v.index).ok_or_else(|| TranscodeError::Fatal("video stream vanished".into()))?;
            let mut ctx = codec::Context::from_parameters(parameters).map_err(|e| TranscodeError::ffmpeg("video decoder", e))?;
            ctx.set_threading(codec::threading::Config { kind: codec::threading::Type::Frame, count: 0, ..Default::default() });
            let mut decoder = stages::with_thread_name(DECODER_THREADS, || ctx.decoder().video())
                .map_err(|e| TranscodeError::InvalidInput(format!("the video stream cannot be decoded: {e}")))?;
            decoder.set_packet_time_base(time_base);
            let start = (source.start_time / f64::from(time_base)).round() as i64;
            video = Some(VideoInput { stream: v.index, decoder, time_base, start, pictures, normalizer: None });
        }
        let mut audio = None;
        if let Some(a) = &source.audio {
            let (parameters, time_base) = input.stream_of(a.index).ok_or_else(|| TranscodeError::Fatal("audio stream vanished".into()))?;
            let ctx = codec::Context::from_parameters(parameters).map_err(|e| TranscodeError::ffmpeg("audio decoder", e))?;
            let mut decoder =
                ctx.decoder().audio().map_err(|e| TranscodeError::InvalidInput(format!("the audio stream cannot be decoded: {e}")))?;
            decoder.set_packet_time_base(time_base);
            audio = Some(AudioInput { stream: a.index, loudness, decoder, time_base, normalizer: None });
        }
        Ok(Decoders { video, audio })
    }
}

/// Reads the source to its end (a chunk's: to its window's), sending every normalized frame to
/// `sink`.
#[allow(clippy::too_many_arguments)]
pub fn decode_all(
    input: &mut impl PacketSource,
    decoders: &mut Decoders,
    source: &SourceInfo,
    sink: &mut FrameSink<'_>,
    watchdog: &Watchdog,
    progress: &mut Progress,
    limits: &Limits,
    mut window: Option<&mut Window>,
) -> Result<DecodeReport> {
    let mut clock = std::mem::take(&mut sink.stats.clock);
    let clock = &mut clock;
    let mut read_error = None;
    let (mut packets, mut packet_bytes) = (0u64, 0u64);
    if let Some(w) = window.as_deref() {
        let seek = w.chunk.seek_seconds();
        if seek > 0.0 {
            let ts = ((seek + source.start_time) * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
            input.seek_before(ts).map_err(|e| TranscodeError::InvalidInput(format!("cannot seek the source to {seek:.3} s: {e}")))?;
        }
    }
    loop {
        if window.as_deref().is_some_and(Window::done) {
            break;
        }
        watchdog.progress(Phase::Reading);
        let mut packet = Packet::empty();
        match clock.time(Stage::Read, || input.read_into(&mut packet)) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(_) if watchdog.fired() => return Err(watchdog.stall_error()),
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        }
        watchdog.progress(Phase::Decoding);
        packets += 1;
        packet_bytes += packet.size() as u64;
        if let Some(w) = window.as_deref_mut() {
            if clock.time(Stage::Read, || w.copy_audio(&packet, source.start_time))? {
                continue;
            }
        }
        if let Some(v) = decoders.video.as_mut().filter(|v| v.stream == packet.stream()) {
            if window.as_deref().is_some_and(|w| w.video_done) {
                continue;
            }
            if clock.time(Stage::Decode, || v.decoder.send_packet(&packet)).is_err() {
                sink.stats.decode_errors += 1;
            }
            drain_video(v, source, sink, clock, window.as_deref_mut())?;
        }
        if let Some(a) = decoders.audio.as_mut().filter(|a| a.stream == packet.stream()) {
            if clock.time(Stage::Decode, || a.decoder.send_packet(&packet)).is_err() {
                sink.stats.decode_errors += 1;
            }
            drain_audio(a, source.start_time, sink, clock)?;
        }
        progress.update(sink.stats.position());
        if sink.stats.position() > limits.max_duration + 1.0 {
            return Err(TranscodeError::InvalidInput(format!(
                "the source runs longer than the accepted {:.0} s (--max-duration)",
                limits.max_duration
            )));
        }
        if watchdog.fired() {
            return Err(watchdog.stall_error());
        }
    }
    // Flush decoders and filters.
    watchdog.progress(Phase::Finishing);
    if let Some(v) = decoders.video.as_mut() {
        let _ = clock.time(Stage::Decode, || v.decoder.send_eof());
        drain_video(v, source, sink, clock, window.as_deref_mut())?;
        if let Some(n) = v.normalizer.as_mut() {
            clock.time(Stage::NormalizeVideo, || n.flush())?;
            while let Some(f) = clock.time(Stage::NormalizeVideo, || n.pull())? {
                hand_over(f, sink, window.as_deref_mut());
            }
            sink.stats.tone_map_seconds = n.tone_map_seconds();
        }
    }
    if let Some(a) = decoders.audio.as_mut() {
        let _ = clock.time(Stage::Decode, || a.decoder.send_eof());
        drain_audio(a, source.start_time, sink, clock)?;
        if let Some(n) = a.normalizer.as_mut() {
            clock.time(Stage::NormalizeAudio, || n.flush())?;
            while let Some(f) = clock.time(Stage::NormalizeAudio, || n.pull()) {
                sink.audio(f);
            }
        }
    }
    // The decoders' and filter graphs' own threads, while they are still open.
    for (stage, name) in [(Stage::Decode, DECODER_THREADS), (Stage::NormalizeVideo, NORMALIZER_THREADS)] {
        let mut threads = HelperThreads::named(name);
        threads.sample();
        clock.add_helpers(stage, &threads);
    }
    sink.stats.clock = std::mem::take(clock);
    progress.update(sink.stats.position());
    progress.finish();
    Ok(DecodeReport { read_error, packets, packet_bytes })
}

/// Files this small may be mostly container overhead; the readable-fraction check skips them.
const MIN_SIZE_FOR_READABLE_CHECK: u64 = 64 * 1024;

/// A source is rejected after decoding when it turned out to be broken: nothing decodable,
/// mostly undecodable, mostly unreadable bytes, or much shorter than it claims (truncated).
pub fn validate(source: &SourceInfo, stats: &DecodeStats, report: &DecodeReport) -> Result<()> {
    let read_error = report.read_error.as_deref();
    if source.video.is_some() && stats.video_frames == 0 {
        return Err(TranscodeError::InvalidInput(format!(
            "no video frame could be decoded ({} decode errors{})",
            stats.decode_errors,
            read_error.map(|e| format!(", read error: {e}")).unwrap_or_default()
        )));
    }
    if source.video.is_none() && stats.audio_frames == 0 {
        return Err(TranscodeError::InvalidInput("no audio could be decoded".into()));
    }
    if stats.decode_errors > 10 && stats.decode_errors * 4 > report.packets {
        return Err(TranscodeError::InvalidInput(format!(
            "{} of {} packets failed to decode; the file is damaged",
            stats.decode_errors, report.packets
        )));
    }
    if source.size_bytes >= MIN_SIZE_FOR_READABLE_CHECK && report.packet_bytes * 4 < source.size_bytes {
        return Err(TranscodeError::InvalidInput(format!(
            "only {:.0}% of the file's {} bytes is media FFmpeg can read; the rest is damaged or not media",
            report.packet_bytes as f64 * 100.0 / source.size_bytes as f64,
            source.size_bytes
        )));
    }
    if let Some(declared) = source.duration {
        let decoded = stats.position();
        if declared >= 2.0 && decoded < declared * 0.9 - 0.5 {
            return Err(TranscodeError::InvalidInput(format!(
                "the file ends after {decoded:.1} s of its declared {declared:.1} s: it is truncated{}",
                read_error.map(|e| format!(" ({e})")).unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Sends a normalized frame on, unless it lies outside the chunk being encoded.
fn hand_over(frame: crate::normalize::Normalized, sink: &mut FrameSink<'_>, window: Option<&mut Window>) {
    let index = frame.sdr.pts().unwrap_or(0);
    match window {
        Some(w) if !w.chunk.holds_frame(index) => {
            if w.chunk.end_frame.is_some_and(|end| index >= end) {
                w.video_done = true;
            }
        }
        _ => sink.video(frame),
    }
}

fn drain_video(
    v: &mut VideoInput,
    source: &SourceInfo,
    sink: &mut FrameSink<'_>,
    clock: &mut StageClock,
    mut window: Option<&mut Window>,
) -> Result<()> {
    let mut decoded = frame::Video::empty();
    while clock.time(Stage::Decode, || v.decoder.receive_frame(&mut decoded)).is_ok() {
        sink.stats.video_frames += 1;
        let pts = decoded.timestamp().or(decoded.pts()).unwrap_or(0) - v.start;
        decoded.set_pts(Some(pts));
        if v.normalizer.is_none() {
            let video = source.video.as_ref().ok_or_else(|| TranscodeError::Fatal("video frames without a video stream".into()))?;
            let timeline = sink.timeline();
            v.normalizer = Some(stages::with_thread_name(NORMALIZER_THREADS, || {
                VideoNormalizer::new(
                    video,
                    decoded.format(),
                    decoded.aspect_ratio(),
                    v.time_base,
                    (timeline.fps_num, timeline.fps_den),
                    v.pictures,
                    window.as_deref().map_or(0.0, |w| w.chunk.start_seconds),
                )
            })?);
        }
        if let Some(n) = v.normalizer.as_mut() {
            clock.time(Stage::NormalizeVideo, || n.push(&decoded))?;
            while let Some(f) = clock.time(Stage::NormalizeVideo, || n.pull())? {
                hand_over(f, sink, window.as_deref_mut());
            }
        }
    }
    Ok(())
}

fn drain_audio(a: &mut AudioInput, start_time: f64, sink: &mut FrameSink<'_>, clock: &mut StageClock) -> Result<()> {
    let mut decoded = frame::Audio::empty();
    while clock.time(Stage::Decode, || a.decoder.receive_frame(&mut decoded)).is_ok() {
        let rate = decoded.rate().max(1);
        let sample_tb = Rational::new(1, rate as i32);
        let pts = decoded.timestamp().or(decoded.pts()).map(|t| t.rescale(a.time_base, sample_tb));
        let start = (start_time * f64::from(rate)).round() as i64;
        decoded.set_pts(pts.map(|p| p - start));
        if a.normalizer.is_none() {
            let layout = if decoded.channel_layout().bits() == 0 {
                ff::ChannelLayout::default(i32::from(decoded.channels()))
            } else {
                decoded.channel_layout()
            };
            decoded.set_channel_layout(layout);
            a.normalizer = Some(AudioNormalizer::new(decoded.format(), rate, layout, a.loudness)?);
        } else if decoded.channel_layout().bits() == 0 {
            decoded.set_channel_layout(ff::ChannelLayout::default(i32::from(decoded.channels())));
        }
        if let Some(n) = a.normalizer.as_mut() {
            clock.time(Stage::NormalizeAudio, || n.push(&decoded))?;
            while let Some(f) = clock.time(Stage::NormalizeAudio, || n.pull()) {
                sink.audio(f);
            }
        }
    }
    Ok(())
}
