//! The stitch of a chunked title: every chunk's packets of a rung read in order into that rung's
//! segmenter (the same mux, encryption per key period, CMAF and I-frame tracks as a whole
//! title's), the source audio the chunks copied decoded and encoded once, the chunks' thumbnails
//! gathered into one storyboard, and the title's playlists and manifest written as for a whole
//! transcode. It checks what it stitches: every chunk finished for this plan, every rung in every
//! chunk, decode times only going forward, and no audio packet missing at a seam.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use vaultstream::chunking::{self, ChunkReport, ChunkedFigures};

use crate::decode::{self, Decoders};
use crate::error::{Result, TranscodeError};
use crate::fanout::{DecodeStats, Fanout};
use crate::job::Job;
use crate::keys::KeyRing;
use crate::manifest::cpu_seconds;
use crate::packet_file::PacketChain;
use crate::pipeline::{self, Title, Transcoded};
use crate::probe::{AudioSource, SourceInfo};
use crate::progress::{Progress, ProgressObserver};
use crate::publish::Staging;
use crate::rendition::ChunkRole;
use crate::thumbnails::{self, Pictures, Thumbnail};
use crate::watchdog::Watchdog;

/// A plan's chunks as the stitch finds them: each chunk's folder and report, in order.
pub struct Stitchable {
    pub chunks: Vec<(PathBuf, ChunkReport)>,
    /// For the title's cost in its manifest.
    pub price_per_vcpu_second: f64,
}

#[allow(clippy::too_many_arguments)]
pub fn transcode(
    job: &Job,
    staging: &Staging,
    ring: &Arc<KeyRing>,
    watchdog: &Arc<Watchdog>,
    parts: &Stitchable,
    observer: Option<ProgressObserver>,
    started: Instant,
) -> Result<Transcoded> {
    let (source_input, source) = pipeline::probe_source(job, watchdog)?;
    drop(source_input);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (selections, mut plan) = pipeline::plan_title(job, &source, ring.cmaf_key(), staging.dir(), cores)?;
    for rendition in plan.renditions.iter_mut().filter(|r| r.video.is_some()) {
        let mut files = Vec::new();
        let mut qualities = Vec::new();
        let mut encoder = None;
        for (dir, report) in &parts.chunks {
            let rung = report.rungs.iter().find(|r| r.name == rendition.name).ok_or_else(|| {
                TranscodeError::Fatal(format!("chunk {} has no rendition {}; re-encode that chunk", report.index, rendition.name))
            })?;
            files.push(dir.join(&rung.file));
            qualities.extend(rung.quality.clone());
            encoder.get_or_insert_with(|| rung.encoder.clone());
        }
        let floor = rendition.video.as_ref().and_then(|v| v.quality_floor);
        let quality = chunking::merge_quality(&qualities).map(|mut q| {
            q.below_floor = floor.and_then(|f| f.shortfall(q.psnr_db, q.ssim));
            q
        });
        rendition.chunk = Some(ChunkRole::Stitch { files, encoder: encoder.unwrap_or_default(), quality });
    }

    // The source's audio, as the chunks copied it, in one stream (checked at every seam).
    let audio = match &source.audio {
        Some(a) => {
            check_audio_seams(parts)?;
            Some((audio_chain(parts)?, a))
        }
        None => None,
    };
    let fanout = Fanout::start(plan.renditions, None, staging.dir().to_path_buf(), ring, watchdog, false)?;
    let mut sink = fanout.frames(plan.timeline);
    let mut progress = Progress::new(source.duration, observer);
    let decoded = match audio {
        Some((mut chain, a)) => {
            let audio_source = SourceInfo { video: None, audio: Some(AudioSource { index: 0, ..a.clone() }), ..source.clone() };
            let mut decoders = Decoders::open(&chain, &audio_source, plan.pictures, job.profile.loudness)?;
            Some(decode::decode_all(&mut chain, &mut decoders, &audio_source, &mut sink, watchdog, &mut progress, &job.limits, None))
        }
        None => None,
    };
    let mut stats = sink.finish();
    let collected = fanout.collect();
    if let Some(decoded) = decoded {
        decoded?;
    }
    let mut collected = collected?;

    stats.video_frames = parts.chunks.iter().map(|(_, r)| r.frames).sum();
    stats.decode_errors += parts.chunks.iter().map(|(_, r)| r.decode_errors).sum::<u64>();
    let fps = f64::from(plan.timeline.fps_num) / f64::from(plan.timeline.fps_den);
    stats.video_end = stats.video_frames as f64 / fps;
    check_length(&source, &stats)?;
    collected.pictures = gather_pictures(parts, staging.dir())?;

    let title = Title { source, selections, timeline: plan.timeline, frame_rate: plan.frame_rate, dropped: plan.dropped };
    let mut transcoded = pipeline::finish(job, staging, ring, title, collected, stats, started)?;
    let reports: Vec<ChunkReport> = parts.chunks.iter().map(|(_, r)| r.clone()).collect();
    let content_seconds = transcoded.manifest.source.duration.unwrap_or(0.0);
    transcoded.manifest.figures.chunked = Some(ChunkedFigures::new(&reports, cpu_seconds(), content_seconds, parts.price_per_vcpu_second));
    Ok(transcoded)
}

/// A truncated source shows in its last chunk: fewer frames than its declared length.
fn check_length(source: &SourceInfo, stats: &DecodeStats) -> Result<()> {
    if let Some(declared) = source.duration {
        let decoded = stats.position();
        if declared >= 2.0 && decoded < declared * 0.9 - 0.5 {
            return Err(TranscodeError::InvalidInput(format!(
                "the file ends after {decoded:.1} s of its declared {declared:.1} s: it is truncated"
            )));
        }
    }
    Ok(())
}

fn audio_chain(parts: &Stitchable) -> Result<PacketChain> {
    PacketChain::open(parts.chunks.iter().map(|(dir, _)| dir.join(chunking::AUDIO_PACKETS)).collect())
}

/// Reads the chunks' audio packets once through, checking every seam: where the source's audio
/// goes on past a chunk's end, the next chunk's first packet must be that very packet, or the
/// seam would drop or repeat audio. (Where the source itself has no audio across a seam, as a
/// damaged file may, nothing is expected: the audio filter fills the gap as it does for a whole
/// title.)
fn check_audio_seams(parts: &Stitchable) -> Result<()> {
    let mut chain = audio_chain(parts)?;
    let mut seams = parts.chunks.iter().scan(0u64, |seen, (_, r)| {
        *seen += r.audio_packets;
        Some((*seen, r.audio_next_pts))
    });
    let mut count: u64 = 0;
    let (mut seam, mut next_seam) = (0usize, seams.next());
    while let Some(packet) = chain.next_packet()? {
        while let Some((at, expected)) = next_seam.filter(|(at, _)| *at == count) {
            seam += 1;
            next_seam = seams.next();
            if let (Some(want), Some(pts)) = (expected, packet.pts()) {
                if pts != want {
                    return Err(TranscodeError::Fatal(format!(
                        "the audio of chunk {seam} starts at {pts}, but the source's audio goes on at {want} after chunk {} (time base {}, packet {at}): the chunks do not join; re-encode the title",
                        seam - 1,
                        chain.time_base
                    )));
                }
            }
        }
        count += 1;
    }
    Ok(())
}

/// The poster and thumbnails every chunk took, moved into `staging`, and one storyboard of them.
fn gather_pictures(parts: &Stitchable, staging: &Path) -> Result<Pictures> {
    let mut pictures = Pictures::default();
    std::fs::create_dir_all(staging.join("thumbnails")).map_err(|e| TranscodeError::output("creating thumbnails/", e))?;
    for (dir, report) in &parts.chunks {
        if report.poster {
            copy(&dir.join("poster.jpg"), &staging.join("poster.jpg"))?;
            pictures.poster = Some("poster.jpg".into());
        }
        for (uri, time) in &report.thumbnails {
            copy(&dir.join(uri), &staging.join(uri))?;
            pictures.thumbnails.push(Thumbnail { uri: uri.clone(), time: *time });
        }
    }
    pictures.storyboard = thumbnails::storyboard_of(staging, &pictures.thumbnails)?;
    Ok(pictures)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| TranscodeError::output(&format!("copying {} to {}", from.display(), to.display()), e))
}
