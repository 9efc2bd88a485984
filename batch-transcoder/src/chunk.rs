//! One chunk of a chunked title (an AWS Batch array child, or a local worker): its output frames
//! of every rung encoded into packet files, the source's audio packets of its span copied, its
//! thumbnails taken, and `chunk.json` written last. Nothing is segmented or encrypted here; the
//! stitch does that once for the whole title.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use vaultstream::chunking::{self, Chunk, ChunkReport, ChunkRung};
use vaultstream::ContentKey;

use crate::decode::{self, Decoders, Window};
use crate::error::{Result, TranscodeError};
use crate::fanout::Fanout;
use crate::job::Job;
use crate::keys::{KeyRing, KeyStorage};
use crate::manifest::cpu_seconds;
use crate::packet_file::PacketWriter;
use crate::pipeline;
use crate::progress::Progress;
use crate::rendition::ChunkRole;
use crate::watchdog::Watchdog;

/// A rung's packet file in a chunk's folder.
pub fn rung_file(dir: &Path, rung: &str) -> PathBuf {
    dir.join(format!("{rung}.nut"))
}

/// Reads a finished chunk's report, if it has one for this plan.
pub fn finished(dir: &Path, plan_id: &str) -> Option<ChunkReport> {
    let bytes = std::fs::read(dir.join(chunking::CHUNK_DONE)).ok()?;
    serde_json::from_slice::<ChunkReport>(&bytes).ok().filter(|r| r.plan_id == plan_id)
}

/// Encodes `chunk` of `job.input` into `dir` (emptied first: a retried attempt starts over).
pub fn encode(job: &Job, plan_id: &str, chunk: &Chunk, dir: &Path, attempt: u32, cores: usize) -> Result<ChunkReport> {
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| TranscodeError::output(&format!("creating {}", dir.display()), e))?;
    let watchdog = Watchdog::new(job.stall_timeout);
    watchdog.spawn(|err| {
        tracing::error!(error = %err, "stalled; exiting");
        eprintln!("error: {err}");
        std::process::exit(err.exit_code());
    });
    let outcome = encode_in(job, plan_id, chunk, dir, attempt, cores, &watchdog, started);
    watchdog.stop();
    outcome
}

#[allow(clippy::too_many_arguments)]
fn encode_in(
    job: &Job,
    plan_id: &str,
    chunk: &Chunk,
    dir: &Path,
    attempt: u32,
    cores: usize,
    watchdog: &Arc<Watchdog>,
    started: Instant,
) -> Result<ChunkReport> {
    let which = format!("chunk {} (from {:.3} s)", chunk.index, chunk.start_seconds);
    let (mut input, source) = pipeline::probe_source(job, watchdog)?;
    if source.video.is_none() {
        return Err(TranscodeError::Usage("a source without video is transcoded whole, never in chunks".into()));
    }
    let (_, mut plan) = pipeline::plan_title(job, &source, None, dir, cores)?;
    plan.renditions.retain(|r| r.video.is_some());
    for rendition in &mut plan.renditions {
        rendition.chunk = Some(ChunkRole::Encode { file: rung_file(dir, &rendition.name) });
    }

    // Audio is copied, not decoded: the stitch decodes and encodes it once for the whole title.
    let audio = match &source.audio {
        Some(a) => {
            let stream = input.stream(a.index).ok_or_else(|| TranscodeError::Fatal("the audio stream vanished".into()))?;
            let writer = PacketWriter::create(&dir.join(chunking::AUDIO_PACKETS), stream.parameters(), stream.time_base())?;
            Some((a.index, stream.time_base(), writer))
        }
        None => None,
    };
    let video_only = crate::probe::SourceInfo { audio: None, ..source.clone() };
    let mut decoders = Decoders::open(&input, &video_only, plan.pictures, None)?;
    // Nothing is encrypted here; the ring only satisfies the renditions' interface.
    let ring = Arc::new(KeyRing::new(
        ContentKey::generate()?,
        KeyStorage::MemoryOnly,
        None,
        Some(crate::keys::KEY_ID_PLACEHOLDER.to_string()),
        dir,
    )?);
    let fanout = Fanout::start(plan.renditions, plan.picture_size, dir.to_path_buf(), &ring, watchdog, false)?;
    let mut sink = fanout.frames_from(plan.timeline, chunk.start_seconds);
    let mut window = Window::new(chunk.clone(), audio);
    let mut progress = Progress::new(None, None);
    let decoded =
        decode::decode_all(&mut input, &mut decoders, &video_only, &mut sink, watchdog, &mut progress, &job.limits, Some(&mut window));
    let stats = sink.finish();
    let collected = fanout.collect();
    let report = decoded?;
    let collected = collected?;

    if stats.video_frames == 0 {
        return Err(TranscodeError::InvalidInput(format!(
            "{which}: no video frame could be decoded ({} decode errors)",
            stats.decode_errors
        )));
    }
    if stats.decode_errors > 10 && stats.decode_errors * 4 > report.packets {
        return Err(TranscodeError::InvalidInput(format!(
            "{which}: {} of {} packets failed to decode; the file is damaged there",
            stats.decode_errors, report.packets
        )));
    }
    if let Some(failed) = collected.failed.first() {
        return Err(TranscodeError::Fatal(format!("{which}: rendition {} failed: {}", failed.name, failed.reason)));
    }
    let frames = collected.outputs.first().map_or(0, |o| o.frames);
    if let Some(odd) = collected.outputs.iter().find(|o| o.frames != frames) {
        return Err(TranscodeError::Fatal(format!(
            "{which}: rendition {} has {} frames where the others have {frames}",
            odd.name, odd.frames
        )));
    }
    if frames == 0 {
        return Err(TranscodeError::InvalidInput(format!(
            "{which}: the source has no frames in this chunk's span; it is shorter than it claims"
        )));
    }
    let audio_next_pts = window.audio_next_pts;
    let audio_packets = match window.audio.take() {
        Some((_, _, writer)) => writer.finish()?.0,
        None => 0,
    };
    let mut clock = collected.clock.clone();
    clock.merge(&stats.clock);
    let cpu = cpu_seconds();
    let by_stage = crate::stages::StageSeconds::of(&clock, cpu);
    let mut cpu_by_stage: std::collections::BTreeMap<String, f64> = match serde_json::to_value(&by_stage) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().filter_map(|(k, v)| Some((k, v.as_f64()?))).collect(),
        _ => Default::default(),
    };
    cpu_by_stage.retain(|_, v| *v > 0.0);
    let rungs = collected
        .outputs
        .iter()
        .map(|o| {
            let file = format!("{}.nut", o.name);
            let bytes = std::fs::metadata(dir.join(&file)).map(|m| m.len()).unwrap_or(0);
            ChunkRung {
                name: o.name.clone(),
                file,
                encoder: o.encoder.clone().unwrap_or_default(),
                frames: o.frames,
                bytes,
                quality: o.quality.clone(),
            }
        })
        .collect();
    let chunk_report = ChunkReport {
        plan_id: plan_id.to_string(),
        index: chunk.index,
        frames,
        rungs,
        audio_packets,
        audio_next_pts,
        decode_errors: stats.decode_errors,
        packets_read: report.packets,
        thumbnails: collected.pictures.thumbnails.iter().map(|t| (t.uri.clone(), t.time)).collect(),
        poster: collected.pictures.poster.is_some(),
        wall_seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu,
        cpu_by_stage,
        attempt,
    };
    let json = serde_json::to_vec_pretty(&chunk_report).map_err(|e| TranscodeError::Fatal(format!("the chunk report: {e}")))?;
    crate::publish::write_atomically(&dir.join(chunking::CHUNK_DONE), &json)?;
    tracing::info!(chunk = chunk.index, frames, audio_packets, wall_seconds = chunk_report.wall_seconds, "chunk encoded");
    Ok(chunk_report)
}
