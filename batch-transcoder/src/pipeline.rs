//! The whole transcode, top to bottom: probe → plan → decode once → fan out to renditions
//! (scale → encode → segment → encrypt) → publish.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ffmpeg_next as ff;
use ff::{codec, frame, Packet, Rational, Rescale};
use serde::Serialize;
use vaultstream::hls::{self, Variant};
use vaultstream::ladder::{self, Container, DroppedRung, Profile, SourceGeometry, VideoCodec};
use vaultstream::ContentKey;

use crate::cli::LocalArgs;
use crate::encoder::{self, Selection, VideoSettings, X264_PRESETS};
use crate::error::{Result, TranscodeError};
use crate::keyframes::Timeline;
use crate::keys::{KeyRecord, KeyRing};
use crate::normalize::{AudioNormalizer, VideoNormalizer};
use crate::probe::{self, Limits, SourceInfo};
use crate::progress::Progress;
use crate::publish::{abandon_paths, Staging};
use crate::rendition::{self, RenditionOutput, RenditionPlan, VideoPlan, Work};
use crate::thumbnails::{self, Pictures, Shot, ShotPicker};
use crate::watchdog::{Phase, Watchdog};

/// Frames buffered per rendition: enough to keep every encoder busy, bounded for memory.
const QUEUE_DEPTH: usize = 16;

/// Everything the command line decides, validated.
pub struct Job {
    pub input: PathBuf,
    pub out: PathBuf,
    pub profile: Profile,
    pub encoder: String,
    pub preset: String,
    pub key: ContentKey,
    pub key_file: Option<PathBuf>,
    pub key_uri: Option<String>,
    pub key_period_segments: Option<usize>,
    pub limits: Limits,
    pub stall_timeout: Duration,
}

impl Job {
    pub fn from_args(args: LocalArgs) -> Result<Job> {
        let mut profile = match Profile::built_in(&args.profile) {
            Some(p) => p,
            None => {
                let path = PathBuf::from(&args.profile);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    TranscodeError::Usage(format!(
                        "--profile {}: not a built-in profile ({}) and not a readable file: {e}",
                        args.profile,
                        ladder::BUILT_IN_PROFILES.join(", ")
                    ))
                })?;
                Profile::from_json(&text).map_err(|e| TranscodeError::Usage(format!("--profile {}: {e}", path.display())))?
            }
        };
        if let Some(s) = args.segment_seconds {
            if !(1.0..=30.0).contains(&s) {
                return Err(TranscodeError::Usage(format!("--segment-seconds {s} is out of range (expected 1 to 30)")));
            }
            profile.segment_seconds = s;
            profile.gop_seconds = profile.gop_seconds.min(s);
        }
        if !X264_PRESETS.contains(&args.preset.as_str()) {
            return Err(TranscodeError::Usage(format!("--preset {} is unknown (expected one of {})", args.preset, X264_PRESETS.join(", "))));
        }
        if args.encoder != "auto" {
            let Some(codec) = encoder::codec_of(&args.encoder) else {
                return Err(TranscodeError::Usage(format!(
                    "--encoder {} is not a video encoder VaultStream drives (expected auto or one of {})",
                    args.encoder,
                    [VideoCodec::H264, VideoCodec::Hevc, VideoCodec::Av1].iter().flat_map(|c| encoder::candidates(*c)).collect::<Vec<_>>().join(", ")
                )));
            };
            if !profile.rungs.iter().any(|r| r.codec == codec) {
                return Err(TranscodeError::Usage(format!(
                    "--encoder {} encodes {}, but profile {} has no {} rung",
                    args.encoder,
                    codec.as_str(),
                    profile.name,
                    codec.as_str()
                )));
            }
        }
        let key = match &args.key_hex {
            Some(hex) => ContentKey::from_hex(hex).map_err(|e| TranscodeError::Usage(format!("--key-hex: {e}")))?,
            None => ContentKey::generate()?,
        };
        for (name, v) in [("--max-width", args.max_width), ("--max-height", args.max_height)] {
            if v < 16 {
                return Err(TranscodeError::Usage(format!("{name} {v} is too small (expected at least 16)")));
            }
        }
        if args.max_duration <= 0.0 {
            return Err(TranscodeError::Usage("--max-duration must be positive".into()));
        }
        Ok(Job {
            input: args.input,
            out: args.out,
            profile,
            encoder: args.encoder,
            preset: args.preset,
            key,
            key_file: args.key_file,
            key_uri: args.key_uri,
            key_period_segments: args.key_period_segments.map(|n| n as usize),
            limits: Limits { max_width: args.max_width, max_height: args.max_height, max_duration: args.max_duration },
            stall_timeout: Duration::from_secs(args.stall_timeout.max(1)),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct FailedRendition {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub realtime_factor: Option<f64>,
    pub frames_decoded: u64,
    pub decode_errors: u64,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub profile: String,
    pub container: Container,
    pub segment_seconds: f64,
    pub gop_seconds: f64,
    pub frame_rate: Option<String>,
    pub master: String,
    pub encoders: Vec<Selection>,
    pub source: SourceInfo,
    pub renditions: Vec<RenditionOutput>,
    pub failed_renditions: Vec<FailedRendition>,
    pub dropped_renditions: Vec<DroppedRung>,
    pub keys: Vec<KeyRecord>,
    pub pictures: Pictures,
    pub figures: Figures,
}

/// Runs a local transcode; on any error nothing is left published and no key file remains.
pub fn run_local(job: Job) -> Result<(PathBuf, Manifest)> {
    let started = Instant::now();
    let staging = Staging::prepare(&job.out)?;
    let key_file = match &job.key_file {
        Some(p) => p.clone(),
        None => default_key_file(staging.out_dir())?,
    };
    let ring_slot: Arc<OnceLock<Arc<KeyRing>>> = Arc::new(OnceLock::new());

    let watchdog = Watchdog::new(job.stall_timeout);
    {
        let (staging_dir, out_dir, created) = staging.cleanup_handle();
        let ring_slot = Arc::clone(&ring_slot);
        watchdog.spawn(move |err| {
            tracing::error!(error = %err, "stalled; cleaning up and exiting");
            eprintln!("error: {err}");
            if let Some(ring) = ring_slot.get() {
                ring.discard();
            }
            abandon_paths(&staging_dir, &out_dir, created);
            std::process::exit(err.exit_code());
        });
    }

    let result = transcode(&job, &staging, key_file, &ring_slot, &watchdog, started);
    watchdog.stop();
    match result {
        Ok((manifest, entries, master)) => {
            let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| TranscodeError::Fatal(format!("manifest: {e}")))?;
            let out_dir = staging.out_dir().to_path_buf();
            if let Err(e) = staging.publish(&entries, &manifest_json, master.as_bytes()) {
                if let Some(ring) = ring_slot.get() {
                    ring.discard();
                }
                return Err(e);
            }
            Ok((out_dir, manifest))
        }
        Err(e) => {
            if let Some(ring) = ring_slot.get() {
                ring.discard();
            }
            staging.abandon();
            Err(e)
        }
    }
}

fn default_key_file(out_dir: &std::path::Path) -> Result<PathBuf> {
    let name = out_dir
        .file_name()
        .ok_or_else(|| TranscodeError::Usage(format!("cannot derive a key file name from {}; pass --key-file", out_dir.display())))?;
    let mut file = name.to_owned();
    file.push(".key");
    Ok(out_dir.with_file_name(file))
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(usage.ru_utime) + t(usage.ru_stime)
    }
}

type Worker<T> = std::thread::JoinHandle<std::result::Result<T, String>>;

struct Fanout {
    renditions: Vec<(String, SyncSender<Work>, Worker<RenditionOutput>)>,
    pictures: Option<(SyncSender<Shot>, Worker<Pictures>)>,
}

/// Where normalized frames go: every rendition, the thumbnail picker, and the statistics.
struct Dispatch<'a> {
    fanout: &'a Fanout,
    timeline: Timeline,
    picker: ShotPicker,
    stats: DecodeStats,
    last_video: Option<Arc<frame::Video>>,
}

impl Fanout {
    fn send(&self, work: impl Fn() -> Work) {
        for (_, tx, _) in &self.renditions {
            // A rendition that failed has dropped its receiver; its error is collected at join.
            let _ = tx.send(work());
        }
    }
}

type Published = (Manifest, Vec<String>, String);

fn transcode(
    job: &Job,
    staging: &Staging,
    key_file: PathBuf,
    ring_slot: &Arc<OnceLock<Arc<KeyRing>>>,
    watchdog: &Arc<Watchdog>,
    started: Instant,
) -> Result<Published> {
    // Probe.
    watchdog.progress(Phase::Reading);
    let (mut input, size) = probe::open(&job.input, Arc::clone(&watchdog.abort)).map_err(|e| {
        if watchdog.fired() { watchdog.stall_error() } else { e }
    })?;
    let source = probe::inspect(&input, size, &job.limits)?;
    tracing::info!(format = %source.format, duration = ?source.duration, video = ?source.video.as_ref().map(|v| (v.display_width, v.display_height, &v.codec)), audio = ?source.audio.as_ref().map(|a| &a.codec), "probed source");

    // Plan.
    let profile = &job.profile;
    let fps = source.video.as_ref().map(|v| ladder::output_frame_rate(v.average_frame_rate, v.nominal_frame_rate));
    let timeline = Timeline {
        fps_num: fps.map_or(1, |f| f.0),
        fps_den: fps.map_or(1, |f| f.1),
        gop_seconds: profile.gop_seconds,
        segment_seconds: profile.segment_seconds,
    };
    let ladder_plan = source.video.as_ref().map(|v| {
        ladder::plan_video(profile, SourceGeometry { width: v.display_width, height: v.display_height })
    });

    let mut selections: Vec<Selection> = Vec::new();
    if let Some(plan) = &ladder_plan {
        for codec in plan.renditions.iter().map(|r| r.rung.codec) {
            if selections.iter().any(|s| s.codec == codec.as_str()) {
                continue;
            }
            let requested = if encoder::codec_of(&job.encoder) == Some(codec) { job.encoder.as_str() } else { "auto" };
            let selection = encoder::select(codec, requested, &mut |name| encoder::probe(name, codec))?;
            for p in &selection.passed_over {
                tracing::info!(encoder = %p.name, reason = %p.reason, "passed over encoder");
            }
            tracing::info!(encoder = %selection.name, backend = ?selection.backend, codec = codec.as_str(), "selected encoder");
            selections.push(selection);
        }
    }

    let ring = Arc::new(KeyRing::new(job.key.clone(), key_file, job.key_period_segments, job.key_uri.clone(), staging.out_dir())?);
    let _ = ring_slot.set(Arc::clone(&ring));

    // Decoders and normalizers.
    let mut video_in = None;
    if let Some(v) = &source.video {
        let stream = input.stream(v.index).ok_or_else(|| TranscodeError::Fatal("video stream vanished".into()))?;
        let time_base = stream.time_base();
        let mut ctx = codec::Context::from_parameters(stream.parameters()).map_err(|e| TranscodeError::ffmpeg("video decoder", e))?;
        ctx.set_threading(codec::threading::Config { kind: codec::threading::Type::Frame, count: 0, ..Default::default() });
        let mut decoder = ctx.decoder().video().map_err(|e| TranscodeError::InvalidInput(format!("the video stream cannot be decoded: {e}")))?;
        decoder.set_packet_time_base(time_base);
        let start = (source.start_time / f64::from(time_base)).round() as i64;
        video_in = Some((v.index, decoder, time_base, start, None::<VideoNormalizer>));
    }
    let mut audio_in = None;
    if let Some(a) = &source.audio {
        let stream = input.stream(a.index).ok_or_else(|| TranscodeError::Fatal("audio stream vanished".into()))?;
        let time_base = stream.time_base();
        let ctx = codec::Context::from_parameters(stream.parameters()).map_err(|e| TranscodeError::ffmpeg("audio decoder", e))?;
        let mut decoder = ctx.decoder().audio().map_err(|e| TranscodeError::InvalidInput(format!("the audio stream cannot be decoded: {e}")))?;
        decoder.set_packet_time_base(time_base);
        audio_in = Some((a.index, decoder, time_base, None::<AudioNormalizer>));
    }

    // Rendition plans.
    let mut plans = Vec::new();
    let video_tb = Rational::new(timeline.fps_den as i32, timeline.fps_num as i32);
    if let Some(ladder_plan) = &ladder_plan {
        for planned in &ladder_plan.renditions {
            let rung = &planned.rung;
            let selection = selections.iter().find(|s| s.codec == rung.codec.as_str());
            let (encoder_name, fallback) = match selection {
                Some(s) if !s.forced && s.backend != encoder::Backend::Software => {
                    (s.name.clone(), Some(encoder::candidates(rung.codec)[3].to_string()))
                }
                Some(s) => (s.name.clone(), None),
                None => (encoder::candidates(rung.codec)[3].to_string(), None),
            };
            plans.push(RenditionPlan {
                name: rung.name.clone(),
                dir: staging.dir().join(&rung.name),
                container: profile.container,
                timeline,
                video: Some(VideoPlan {
                    codec: rung.codec,
                    encoder: encoder_name,
                    fallback,
                    preset: job.preset.clone(),
                    settings: VideoSettings {
                        width: planned.width,
                        height: planned.height,
                        fps: (timeline.fps_num, timeline.fps_den),
                        gop: timeline.gop_frames(),
                        bitrate_kbps: rung.video_kbps,
                        max_kbps: rung.max_kbps(),
                        global_header: false,
                        extra_options: rung.encoder_options.clone().into_iter().collect(),
                    },
                    input_time_base: video_tb,
                }),
                audio_kbps: source.audio.as_ref().map(|_| rung.audio_kbps),
            });
        }
    } else {
        plans.push(RenditionPlan {
            name: "audio".into(),
            dir: staging.dir().join("audio"),
            container: profile.container,
            timeline,
            video: None,
            audio_kbps: Some(ladder::audio_only_kbps(profile)),
        });
    }

    // Fan out.
    let mut fanout = Fanout { renditions: Vec::new(), pictures: None };
    for plan in plans {
        let (tx, rx) = sync_channel(QUEUE_DEPTH);
        let ring = Arc::clone(&ring);
        let dog = Arc::clone(watchdog);
        let name = plan.name.clone();
        let handle = std::thread::Builder::new()
            .name(format!("rendition-{name}"))
            .spawn(move || rendition::run(plan, rx, &ring, &dog))
            .map_err(|e| TranscodeError::Fatal(format!("starting a rendition thread: {e}")))?;
        fanout.renditions.push((name, tx, handle));
    }
    if let Some(top) = ladder_plan.as_ref().and_then(|l| l.renditions.first()) {
        let (tx, rx) = sync_channel(4);
        let dir = staging.dir().to_path_buf();
        let size = (top.width, top.height);
        let handle = std::thread::Builder::new()
            .name("thumbnails".into())
            .spawn(move || thumbnails::run(dir, size, rx))
            .map_err(|e| TranscodeError::Fatal(format!("starting the thumbnail thread: {e}")))?;
        fanout.pictures = Some((tx, handle));
    }

    // Decode once.
    let mut progress = Progress::new(source.duration);
    let mut out = Dispatch { fanout: &fanout, timeline, picker: ShotPicker::default(), stats: DecodeStats::default(), last_video: None };
    let mut read_error = None;
    let mut packets = 0u64;
    let mut packet_bytes = 0u64;
    loop {
        watchdog.progress(Phase::Reading);
        let mut packet = Packet::empty();
        match packet.read(&mut input) {
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
        if let Some((index, decoder, tb, start, norm)) = video_in.as_mut() {
            if packet.stream() == *index {
                if decoder.send_packet(&packet).is_err() {
                    out.stats.decode_errors += 1;
                }
                drain_video(decoder, *tb, *start, norm, &source, &mut out)?;
            }
        }
        if let Some((index, decoder, tb, norm)) = audio_in.as_mut() {
            if packet.stream() == *index {
                if decoder.send_packet(&packet).is_err() {
                    out.stats.decode_errors += 1;
                }
                drain_audio(decoder, *tb, source.start_time, norm, &mut out)?;
            }
        }
        progress.update(out.stats.position());
        if out.stats.position() > job.limits.max_duration + 1.0 {
            return Err(TranscodeError::InvalidInput(format!(
                "the source runs longer than the accepted {:.0} s (--max-duration)",
                job.limits.max_duration
            )));
        }
        if watchdog.fired() {
            return Err(watchdog.stall_error());
        }
    }
    // Flush decoders and filters.
    watchdog.progress(Phase::Finishing);
    if let Some((_, decoder, tb, start, norm)) = video_in.as_mut() {
        let _ = decoder.send_eof();
        drain_video(decoder, *tb, *start, norm, &source, &mut out)?;
        if let Some(n) = norm.as_mut() {
            n.flush()?;
            while let Some(f) = n.pull() {
                out.video(f);
            }
        }
    }
    if let Some((_, decoder, tb, norm)) = audio_in.as_mut() {
        let _ = decoder.send_eof();
        drain_audio(decoder, *tb, source.start_time, norm, &mut out)?;
        if let Some(n) = norm.as_mut() {
            n.flush()?;
            while let Some(f) = n.pull() {
                out.audio(f);
            }
        }
    }
    if !out.picker.poster_taken() {
        if let (Some((tx, _)), Some(frame)) = (&fanout.pictures, out.last_video.take()) {
            let _ = tx.send(Shot::Poster(frame));
        }
    }
    progress.update(out.stats.position());
    progress.finish();
    let stats = out.stats;

    // Collect renditions.
    let Fanout { renditions, pictures } = fanout;
    let mut outputs = Vec::new();
    let mut failed = Vec::new();
    for (name, tx, handle) in renditions {
        drop(tx);
        match handle.join() {
            Ok(Ok(out)) => outputs.push(out),
            Ok(Err(reason)) => {
                tracing::error!(rendition = %name, %reason, "rendition failed");
                failed.push(FailedRendition { name, reason });
            }
            Err(_) => failed.push(FailedRendition { name, reason: "the rendition thread panicked".into() }),
        }
    }
    let pictures = match pictures {
        Some((tx, handle)) => {
            drop(tx);
            match handle.join() {
                Ok(Ok(p)) => p,
                Ok(Err(reason)) => {
                    tracing::warn!(%reason, "thumbnails failed; publishing without them");
                    Pictures::default()
                }
                Err(_) => Pictures::default(),
            }
        }
        None => Pictures::default(),
    };

    // Judge the source now that it has been read in full.
    validate_decode(&source, &stats, (packets, packet_bytes), read_error.as_deref())?;
    if outputs.is_empty() {
        let reasons: Vec<String> = failed.iter().map(|f| format!("{}: {}", f.name, f.reason)).collect();
        return Err(TranscodeError::Fatal(format!("every rendition failed ({})", reasons.join("; "))));
    }

    // Playlists.
    outputs.sort_by_key(|o| std::cmp::Reverse(o.bandwidth));
    let init = profile.container == Container::Fmp4;
    for out in &outputs {
        staging.write(&format!("{}/index.m3u8", out.name), hls::media_playlist(&out.playlist_segments(), out.init_segment.as_deref()).as_bytes())?;
    }
    let variants: Vec<Variant> = outputs
        .iter()
        .map(|o| Variant {
            uri: format!("{}/index.m3u8", o.name),
            bandwidth: o.bandwidth,
            average_bandwidth: o.average_bandwidth,
            codecs: o.codecs.clone(),
            resolution: o.width.zip(o.height),
            frame_rate: o.width.map(|_| f64::from(timeline.fps_num) / f64::from(timeline.fps_den)),
        })
        .collect();
    let master = hls::master_playlist(&variants, init);

    let mut entries: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
    if pictures.poster.is_some() {
        entries.push("poster.jpg".into());
    }
    if !pictures.thumbnails.is_empty() {
        entries.push("thumbnails".into());
    }
    let wall = started.elapsed().as_secs_f64();
    let status = if failed.is_empty() { "complete" } else { "partial" };
    let reason = (!failed.is_empty()).then(|| {
        format!(
            "{} of {} renditions failed: {}",
            failed.len(),
            failed.len() + outputs.len(),
            failed.iter().map(|f| format!("{} ({})", f.name, f.reason)).collect::<Vec<_>>().join("; ")
        )
    });
    let manifest = Manifest {
        status,
        reason,
        profile: profile.name.clone(),
        container: profile.container,
        segment_seconds: profile.segment_seconds,
        gop_seconds: profile.gop_seconds,
        frame_rate: fps.map(|(n, d)| format!("{n}/{d}")),
        master: "master.m3u8".into(),
        encoders: selections,
        renditions: outputs,
        failed_renditions: failed,
        dropped_renditions: ladder_plan.map(|l| l.dropped).unwrap_or_default(),
        keys: ring.records(),
        pictures,
        figures: Figures {
            wall_seconds: round3(wall),
            cpu_seconds: round3(cpu_seconds()),
            realtime_factor: stats.position().gt(&0.0).then(|| round3(stats.position() / wall)),
            frames_decoded: stats.video_frames,
            decode_errors: stats.decode_errors,
        },
        source,
    };
    Ok((manifest, entries, master))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[derive(Default)]
struct DecodeStats {
    video_frames: u64,
    audio_frames: u64,
    decode_errors: u64,
    video_end: f64,
    audio_end: f64,
}

impl DecodeStats {
    fn position(&self) -> f64 {
        self.video_end.max(self.audio_end)
    }
}

/// Files this small may be mostly container overhead; the readable-fraction check skips them.
const MIN_SIZE_FOR_READABLE_CHECK: u64 = 64 * 1024;

/// A source is rejected after decoding when it turned out to be broken: nothing decodable,
/// mostly undecodable, mostly unreadable bytes, or much shorter than it claims (truncated).
fn validate_decode(source: &SourceInfo, stats: &DecodeStats, (packets, packet_bytes): (u64, u64), read_error: Option<&str>) -> Result<()> {
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
    if stats.decode_errors > 10 && stats.decode_errors * 4 > packets {
        return Err(TranscodeError::InvalidInput(format!(
            "{} of {packets} packets failed to decode; the file is damaged",
            stats.decode_errors
        )));
    }
    if source.size_bytes >= MIN_SIZE_FOR_READABLE_CHECK && packet_bytes * 4 < source.size_bytes {
        return Err(TranscodeError::InvalidInput(format!(
            "only {:.0}% of the file's {} bytes is media FFmpeg can read; the rest is damaged or not media",
            packet_bytes as f64 * 100.0 / source.size_bytes as f64,
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

fn drain_video(
    decoder: &mut ff::decoder::Video,
    time_base: Rational,
    start: i64,
    norm: &mut Option<VideoNormalizer>,
    source: &SourceInfo,
    out: &mut Dispatch,
) -> Result<()> {
    let mut decoded = frame::Video::empty();
    while decoder.receive_frame(&mut decoded).is_ok() {
        out.stats.video_frames += 1;
        let pts = decoded.timestamp().or(decoded.pts()).unwrap_or(0) - start;
        decoded.set_pts(Some(pts));
        if norm.is_none() {
            let v = source.video.as_ref().ok_or_else(|| TranscodeError::Fatal("video frames without a video stream".into()))?;
            let fps = (out.timeline.fps_num, out.timeline.fps_den);
            *norm = Some(VideoNormalizer::new(v, decoded.format(), decoded.aspect_ratio(), time_base, fps)?);
        }
        if let Some(n) = norm.as_mut() {
            n.push(&decoded)?;
            while let Some(f) = n.pull() {
                out.video(f);
            }
        }
    }
    Ok(())
}

impl Dispatch<'_> {
    fn video(&mut self, frame: frame::Video) {
        let time = self.timeline.frame_time(frame.pts().unwrap_or(0));
        let frame_length = f64::from(self.timeline.fps_den) / f64::from(self.timeline.fps_num);
        self.stats.video_end = self.stats.video_end.max(time + frame_length);
        let shared = Arc::new(frame);
        self.fanout.send(|| Work::Video(Arc::clone(&shared)));
        let (poster, thumbnail) = self.picker.pick(time);
        if let Some((tx, _)) = &self.fanout.pictures {
            if poster {
                let _ = tx.send(Shot::Poster(Arc::clone(&shared)));
            }
            if let Some(index) = thumbnail {
                let _ = tx.send(Shot::Thumbnail { index, time, frame: Arc::clone(&shared) });
            }
        }
        self.last_video = Some(shared);
    }

    fn audio(&mut self, frame: frame::Audio) {
        self.stats.audio_frames += 1;
        let rate = f64::from(crate::normalize::AUDIO_RATE);
        let end = (frame.pts().unwrap_or(0) as f64 + frame.samples() as f64) / rate;
        self.stats.audio_end = self.stats.audio_end.max(end);
        let shared = Arc::new(frame);
        self.fanout.send(|| Work::Audio(Arc::clone(&shared)));
    }
}

fn drain_audio(
    decoder: &mut ff::decoder::Audio,
    time_base: Rational,
    start_time: f64,
    norm: &mut Option<AudioNormalizer>,
    out: &mut Dispatch,
) -> Result<()> {
    let mut decoded = frame::Audio::empty();
    while decoder.receive_frame(&mut decoded).is_ok() {
        let rate = decoded.rate().max(1);
        let sample_tb = Rational::new(1, rate as i32);
        let pts = decoded.timestamp().or(decoded.pts()).map(|t| t.rescale(time_base, sample_tb));
        let start = (start_time * f64::from(rate)).round() as i64;
        decoded.set_pts(pts.map(|p| p - start));
        if norm.is_none() {
            let layout = if decoded.channel_layout().bits() == 0 {
                ff::ChannelLayout::default(i32::from(decoded.channels()))
            } else {
                decoded.channel_layout()
            };
            decoded.set_channel_layout(layout);
            *norm = Some(AudioNormalizer::new(decoded.format(), rate, layout)?);
        } else if decoded.channel_layout().bits() == 0 {
            decoded.set_channel_layout(ff::ChannelLayout::default(i32::from(decoded.channels())));
        }
        if let Some(n) = norm.as_mut() {
            n.push(&decoded)?;
            while let Some(f) = n.pull() {
                out.audio(f);
            }
        }
    }
    Ok(())
}
