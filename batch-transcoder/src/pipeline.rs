//! The whole transcode, top to bottom, shared by `local` and `run`: probe → plan → decode once →
//! fan out to renditions (scale → encode → segment → encrypt) → collect → playlists. What the
//! modes differ in is around it: where keys come from and where the staged output is published.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use vaultstream::cmaf;
use vaultstream::hls::{self, IFrameVariant, Variant};
use vaultstream::ladder::Container;
use vaultstream::ContentKey;

use crate::cmaf::CmafKey;
use crate::colour::DynamicRange;
use crate::decode::{self, Decoders};
use crate::encoder::{self, Selection};
use crate::error::{Result, TranscodeError};
use crate::fanout::Fanout;
use crate::hdr10::Hdr10;
use crate::job::{Chunking, Job};
use crate::keys::{KeyRing, KeyStorage};
use crate::manifest::{cpu_seconds, round3, CmafManifests, Figures, Manifest};
use crate::plan::{self, Plan};
use crate::probe;
use crate::progress::{Progress, ProgressObserver};
use crate::publish::{abandon_paths, Staging};
use crate::rendition::RenditionOutput;
use crate::stages::StageSeconds;
use crate::watchdog::{Phase, Watchdog};

/// A finished transcode in its staging folder: what to publish, in order, then the master.
pub struct Transcoded {
    pub manifest: Manifest,
    /// Rendition folders, the poster and the thumbnail folder, relative to the staging folder.
    pub entries: Vec<String>,
    pub master: String,
}

/// Chooses (by opening) the encoder for each codec the ladder needs.
fn choose_encoders(plan_codecs: &[vaultstream::ladder::VideoCodec], requested: &str) -> Result<Vec<Selection>> {
    let mut selections = Vec::new();
    for &codec in plan_codecs {
        let requested = if encoder::codec_of(requested) == Some(codec) { requested } else { "auto" };
        let selection = encoder::select(codec, requested, &mut |name| encoder::probe(name, codec))?;
        for p in &selection.passed_over {
            tracing::info!(encoder = %p.name, reason = %p.reason, "passed over encoder");
        }
        tracing::info!(encoder = %selection.name, backend = ?selection.backend, codec = codec.as_str(), "selected encoder");
        selections.push(selection);
    }
    Ok(selections)
}

/// Opens and probes the job's source, a file or a remote object (and reads an HDR10 file's
/// first frame for its metadata).
pub fn probe_source(job: &Job, watchdog: &Watchdog) -> Result<(ffmpeg_next::format::context::Input, probe::SourceInfo)> {
    watchdog.progress(Phase::Reading);
    let _probing = tracing::info_span!("probe").entered();
    let abort = Arc::clone(&watchdog.abort);
    let opened = match &job.remote {
        Some(remote) => probe::open_remote(remote, abort),
        None => probe::open(&job.input, abort),
    };
    let (input, size) = opened.map_err(|e| if watchdog.fired() { watchdog.stall_error() } else { e })?;
    let mut source = probe::inspect(&input, size, &job.limits)?;
    if let Some(video) = source.video.as_mut().filter(|v| v.dynamic_range == DynamicRange::Pq && v.hdr10.is_none()) {
        video.hdr10 = Hdr10::of_first_frame(&job.input, Arc::clone(&watchdog.abort));
    }
    tracing::info!(format = %source.format, duration = ?source.duration, video = ?source.video.as_ref().map(|v| (v.display_width, v.display_height, &v.codec)), audio = ?source.audio.as_ref().map(|a| &a.codec), "probed source");
    Ok((input, source))
}

/// The encoders and the plan for `source`, the renditions' folders under `dir`, x264's threads
/// shared out over `cores`.
pub fn plan_title(
    job: &Job,
    source: &probe::SourceInfo,
    cmaf: Option<CmafKey>,
    dir: &std::path::Path,
    cores: usize,
) -> Result<(Vec<Selection>, Plan)> {
    let selections = choose_encoders(&plan::codecs_needed(source, &job.profile), &job.encoder)?;
    let mut plan = plan::plan(source, &job.profile, &job.preset, &selections, dir);
    for rendition in &mut plan.renditions {
        rendition.cmaf = cmaf.clone();
    }
    plan::share_cores(&mut plan.renditions, cores);
    Ok((selections, plan))
}

/// Runs the pipeline into `staging`. Every segment is encrypted before it is written.
pub fn transcode(
    job: &Job,
    staging: &Staging,
    ring: &Arc<KeyRing>,
    watchdog: &Arc<Watchdog>,
    observer: Option<ProgressObserver>,
    started: Instant,
) -> Result<Transcoded> {
    let (mut input, source) = probe_source(job, watchdog)?;
    let (selections, Plan { timeline, frame_rate, renditions, picture_size, pictures, dropped }) =
        plan_title(job, &source, ring.cmaf_key(), staging.dir(), std::thread::available_parallelism().map_or(1, |n| n.get()))?;

    // Decode once, fanned out to every rendition.
    let mut decoders = Decoders::open(&input, &source, pictures, job.profile.loudness)?;
    let fanout = Fanout::start(renditions, picture_size, staging.dir().to_path_buf(), ring, watchdog, true)?;
    let mut progress = Progress::new(source.duration, observer);
    let mut sink = fanout.frames(timeline);
    let decoded = tracing::info_span!("decode")
        .in_scope(|| decode::decode_all(&mut input, &mut decoders, &source, &mut sink, watchdog, &mut progress, &job.limits, None));
    let stats = sink.finish();

    // Collect.
    let collected = fanout.collect();
    let report = decoded?;
    let collected = collected?;

    // Judge the source now that it has been read in full.
    decode::validate(&source, &stats, &report)?;
    finish(job, staging, ring, Title { source, selections, timeline, frame_rate, dropped }, collected, stats, started)
}

/// What the title's transcode decided before its renditions ran.
pub struct Title {
    pub source: probe::SourceInfo,
    pub selections: Vec<Selection>,
    pub timeline: crate::keyframes::Timeline,
    pub frame_rate: Option<(u32, u32)>,
    pub dropped: Vec<vaultstream::ladder::DroppedRung>,
}

/// From the renditions' outputs to the title's playlists and manifest, in `staging`: shared by
/// the whole transcode and the stitch of a chunked one.
pub fn finish(
    job: &Job,
    staging: &Staging,
    ring: &Arc<KeyRing>,
    title: Title,
    mut collected: crate::fanout::Collected,
    stats: crate::fanout::DecodeStats,
    started: Instant,
) -> Result<Transcoded> {
    let Title { source, selections, timeline, frame_rate, dropped } = title;
    if collected.outputs.is_empty() {
        let reasons: Vec<String> = collected.failed.iter().map(|f| format!("{}: {}", f.name, f.reason)).collect();
        return Err(TranscodeError::Fatal(format!("every rendition failed ({})", reasons.join("; "))));
    }

    // Playlists.
    let outputs = &mut collected.outputs;
    outputs.sort_by_key(|o| std::cmp::Reverse(o.bandwidth));
    for out in outputs.iter() {
        staging.write(
            &format!("{}/index.m3u8", out.name),
            hls::media_playlist(&out.playlist_segments(), out.init_segment.as_deref()).as_bytes(),
        )?;
        if let Some(iframes) = &out.iframes {
            let segments = RenditionOutput::hls_segments(&iframes.segments);
            staging.write(
                &format!("{}/{}", out.name, iframes.playlist),
                hls::iframe_playlist(&segments, iframes.init_segment.as_deref()).as_bytes(),
            )?;
        }
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
            video_range: o.video_range.map(|r| r.hls()),
            iframes: o.iframes.as_ref().map(|i| IFrameVariant {
                uri: format!("{}/{}", o.name, i.playlist),
                bandwidth: i.bandwidth,
                // The video codec comes first; I-frame segments carry no audio.
                codecs: o.codecs.split(',').next().unwrap_or_default().to_string(),
            }),
            closed_captions: o.closed_captions,
        })
        .collect();
    let master = hls::master_playlist(&variants, job.profile.container == Container::Fmp4);
    let cmaf = write_cmaf_manifests(staging, outputs, &timeline, ring.as_ref())?;

    let mut entries: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
    if cmaf.is_some() {
        entries.extend([cmaf::MASTER.to_string(), cmaf::MPD.to_string()]);
    }
    if collected.pictures.poster.is_some() {
        entries.push("poster.jpg".into());
    }
    if !collected.pictures.thumbnails.is_empty() {
        entries.push("thumbnails".into());
    }
    let wall = started.elapsed().as_secs_f64();
    let quality_cpu_seconds = round3(outputs.iter().map(|o| o.quality_cpu_seconds).sum());
    let mut clock = std::mem::take(&mut collected.clock);
    clock.merge(&stats.clock);
    let cpu_seconds = cpu_seconds();
    let reason = Manifest::partial_reason(&collected.failed, outputs.len());
    let manifest = Manifest {
        status: if reason.is_none() { "complete" } else { "partial" },
        reason,
        profile: job.profile.name.clone(),
        container: job.profile.container,
        segment_seconds: job.profile.segment_seconds,
        gop_seconds: job.profile.gop_seconds,
        frame_rate: frame_rate.map(|(n, d)| format!("{n}/{d}")),
        master: "master.m3u8".into(),
        encoders: selections,
        renditions: collected.outputs,
        failed_renditions: collected.failed,
        dropped_renditions: dropped,
        keys: ring.records(),
        cmaf_key: ring.cmaf_record(),
        cmaf,
        pictures: collected.pictures,
        figures: Figures {
            wall_seconds: round3(wall),
            cpu_seconds: round3(cpu_seconds),
            cpu_by_stage: StageSeconds::of(&clock, cpu_seconds),
            realtime_factor: stats.position().gt(&0.0).then(|| round3(stats.position() / wall)),
            frames_decoded: stats.video_frames,
            decode_errors: stats.decode_errors,
            tone_map_cpu_seconds: stats.tone_map_seconds.map(round3),
            quality_cpu_seconds,
            chunked: None,
        },
        source,
    };
    Ok(Transcoded { manifest, entries, master })
}

/// The CMAF packaging's playlists and MPD, where the renditions carry CMAF tracks.
fn write_cmaf_manifests(
    staging: &Staging,
    outputs: &[RenditionOutput],
    timeline: &crate::keyframes::Timeline,
    ring: &KeyRing,
) -> Result<Option<CmafManifests>> {
    let Some(key) = ring.cmaf_key() else { return Ok(None) };
    let track = |t: &crate::cmaf::TrackOutput| cmaf::Track {
        init: t.init.clone(),
        timescale: t.timescale,
        codec: t.codec.clone(),
        bandwidth: t.bandwidth,
        average_bandwidth: t.average_bandwidth,
        fragments: t.fragments.iter().map(|f| cmaf::Fragment { uri: f.uri.clone(), start: f.start, duration: f.duration }).collect(),
    };
    let renditions: Vec<cmaf::Rendition> = outputs
        .iter()
        .filter_map(|o| {
            let packaged = o.cmaf.as_ref()?;
            Some(cmaf::Rendition {
                name: o.name.clone(),
                resolution: o.width.zip(o.height),
                frame_rate: o.width.map(|_| (timeline.fps_num, timeline.fps_den)),
                video: packaged.video.as_ref().map(track),
                audio: packaged.audio.as_ref().map(track),
            })
        })
        .collect();
    if renditions.is_empty() {
        return Ok(None);
    }
    let title = cmaf::Title { kid: key.kid, renditions, vendor: key.vendor.clone() };
    for r in &title.renditions {
        for (t, name) in [(&r.video, cmaf::VIDEO_PLAYLIST), (&r.audio, cmaf::AUDIO_PLAYLIST)] {
            if let Some(t) = t {
                staging.write(&format!("{}/{name}", r.name), cmaf::media_playlist(t, &title, &ring.cmaf_uri()).as_bytes())?;
            }
        }
    }
    staging.write(cmaf::MASTER, cmaf::master_playlist(&title).as_bytes())?;
    staging.write(cmaf::MPD, cmaf::mpd(&title).as_bytes())?;
    Ok(Some(CmafManifests { hls: cmaf::MASTER.into(), dash: cmaf::MPD.into(), scheme: "cbcs" }))
}

/// A transcode published into a local folder.
pub struct LocalOutput {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// What was published besides manifest.json and master.m3u8 (rendition folders, pictures).
    pub entries: Vec<String>,
}

/// Transcodes into `job.out` and publishes there: renditions, then manifest.json, then
/// master.m3u8. On any error nothing is left published and no key file remains.
pub fn run_local(job: Job, observer: Option<ProgressObserver>) -> Result<LocalOutput> {
    let started = Instant::now();
    let staging = Staging::prepare(&job.out)?;
    let storage = match &job.key_storage {
        KeyStorage::File(None) => KeyStorage::File(Some(default_key_file(staging.out_dir())?)),
        other => other.clone(),
    };
    let ring = KeyRing::new(job.key.clone(), storage, job.key_period_segments, job.key_uri.clone(), staging.out_dir()).and_then(|ring| {
        match (&job.cmaf_key, job.profile.cmaf()) {
            (_, false) => Ok(ring),
            (Some(given), true) => ring.with_cmaf_key(given.clone()),
            (None, true) => ring.with_cmaf_key(CmafKey::held(ContentKey::generate()?, crate::job::local_cmaf_kid(staging.out_dir()).1)),
        }
    });
    let ring = match ring {
        Ok(ring) => Arc::new(ring),
        Err(e) => {
            staging.abandon();
            return Err(e);
        }
    };

    let watchdog = Watchdog::new(job.stall_timeout);
    {
        let (staging_dir, out_dir, created) = staging.cleanup_handle();
        let ring = Arc::clone(&ring);
        watchdog.spawn(move |err| {
            tracing::error!(error = %err, "stalled; cleaning up and exiting");
            eprintln!("error: {err}");
            ring.discard();
            abandon_paths(&staging_dir, &out_dir, created);
            std::process::exit(err.exit_code());
        });
    }

    let result = match &job.chunking {
        Some(Chunking::Split(how)) => crate::chunked::transcode(&job, &staging, &ring, &watchdog, observer, started, how),
        Some(Chunking::Stitch(parts)) => crate::stitch::transcode(&job, &staging, &ring, &watchdog, parts, observer, started),
        None => transcode(&job, &staging, &ring, &watchdog, observer, started),
    };
    watchdog.stop();
    let published = result.and_then(|t| {
        let manifest_json = serde_json::to_vec_pretty(&t.manifest).map_err(|e| TranscodeError::Fatal(format!("manifest: {e}")))?;
        Ok((t, manifest_json))
    });
    match published {
        Ok((t, manifest_json)) => {
            let out_dir = staging.out_dir().to_path_buf();
            if let Err(e) = staging.publish(&t.entries, &manifest_json, t.master.as_bytes()) {
                ring.discard();
                return Err(e);
            }
            if matches!(job.chunking, Some(Chunking::Split(_))) {
                crate::chunked::clean_up(&out_dir);
            }
            Ok(LocalOutput { dir: out_dir, manifest: t.manifest, entries: t.entries })
        }
        Err(e) => {
            ring.discard();
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
