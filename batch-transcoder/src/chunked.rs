//! `local --chunk-seconds`: split-and-stitch on one machine, the way the Batch array runs it.
//! The title is planned, each chunk is encoded by its own `vaultstream-transcode chunk` process,
//! `--workers` at a time (a failed one is retried alone, up to [`ATTEMPTS`] times; one that finds
//! its chunk invalid ends the title with that chunk named), and the chunks are stitched.
//! Finished chunks are kept beside the output until the title publishes, so a rerun of the same
//! command encodes only the chunks still missing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vaultstream::chunking::{self, Chunk, ChunkPlan, ChunkReport, PlanInputs};

use crate::chunk;
use crate::error::{Result, TranscodeError, EXIT_INVALID_INPUT};
use crate::job::Job;
use crate::keys::KeyRing;
use crate::pipeline::{self, Transcoded};
use crate::progress::ProgressObserver;
use crate::publish::Staging;
use crate::stitch::{self, Stitchable};
use crate::watchdog::Watchdog;

/// Attempts a chunk gets before the title fails.
pub const ATTEMPTS: u32 = 3;

/// How `local` splits: the chunk length aimed at, the worker processes, and the arguments every
/// worker repeats (profile, encoder, preset, limits).
#[derive(Debug, Clone)]
pub struct LocalChunking {
    pub chunk_seconds: f64,
    pub workers: usize,
    pub worker_args: Vec<OsString>,
}

/// The folder a title's chunks are kept in: beside the output folder, never inside it.
pub fn work_dir(out_dir: &Path) -> PathBuf {
    let mut name = out_dir.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(".chunks");
    out_dir.with_file_name(name)
}

/// The title's chunks, when it is long enough to have two or more.
pub fn plan_chunks(job: &Job, source: &crate::probe::SourceInfo, chunk_seconds: f64) -> Option<(Vec<Chunk>, (u32, u32))> {
    let video = source.video.as_ref()?;
    let fps = vaultstream::ladder::output_frame_rate(video.average_frame_rate, video.nominal_frame_rate);
    let chunks = chunking::cut(source.duration?, fps, job.profile.segment_seconds, chunk_seconds)?;
    Some((chunks, fps))
}

#[allow(clippy::too_many_arguments)]
pub fn transcode(
    job: &Job,
    staging: &Staging,
    ring: &Arc<KeyRing>,
    watchdog: &Arc<Watchdog>,
    observer: Option<ProgressObserver>,
    started: Instant,
    how: &LocalChunking,
) -> Result<Transcoded> {
    let (input, source) = pipeline::probe_source(job, watchdog)?;
    drop(input);
    let Some((chunks, fps)) = plan_chunks(job, &source, how.chunk_seconds) else {
        tracing::info!("the title makes fewer than two chunks; transcoding it whole");
        return pipeline::transcode(job, staging, ring, watchdog, observer, started);
    };
    let identity = source_identity(&job.input)?;
    let profile = format!("{:?} {}", job.profile, env!("CARGO_PKG_VERSION"));
    let inputs =
        PlanInputs { source: &identity, profile: &profile, encoder: &job.encoder, preset: &job.preset, chunk_seconds: how.chunk_seconds };
    let plan =
        ChunkPlan { format: chunking::PLAN_FORMAT, plan_id: inputs.plan_id(), chunk_seconds: how.chunk_seconds, frame_rate: fps, chunks };
    let plan_dir = work_dir(staging.out_dir()).join(&plan.plan_id);
    std::fs::create_dir_all(&plan_dir).map_err(|e| TranscodeError::output(&format!("creating {}", plan_dir.display()), e))?;
    let json = serde_json::to_vec_pretty(&plan).map_err(|e| TranscodeError::Fatal(format!("the chunk plan: {e}")))?;
    std::fs::write(plan_dir.join(chunking::PLAN_FILE), json).map_err(|e| TranscodeError::output("writing plan.json", e))?;
    tracing::info!(plan_id = %plan.plan_id, chunks = plan.chunks.len(), workers = how.workers, "transcoding in chunks");

    // The watchdog watches the stitch; the workers have their own.
    watchdog.stop();
    let reports = run_workers(job, &plan, &plan_dir, how)?;
    let parts = Stitchable { chunks: reports, price_per_vcpu_second: 0.0 };
    let stitched = stitch::transcode(job, staging, ring, &Watchdog::new(job.stall_timeout), &parts, observer, started)?;
    Ok(stitched)
}

/// Removes a published title's chunks (kept with `VAULTSTREAM_KEEP_CHUNKS=1`, to look at them).
pub fn clean_up(out_dir: &Path) {
    let dir = work_dir(out_dir);
    if dir.is_dir() && std::env::var_os("VAULTSTREAM_KEEP_CHUNKS").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// What identifies the source file for the plan id: its path, size and modification time.
fn source_identity(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| TranscodeError::Usage(format!("cannot read input {}: {e}", path.display())))?;
    let modified = meta.modified().ok().and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Ok(format!("{}:{}:{modified}", std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display(), meta.len()))
}

struct Running {
    index: usize,
    attempt: u32,
    child: Child,
}

/// Runs every unfinished chunk in its own process, `workers` at a time.
fn run_workers(job: &Job, plan: &ChunkPlan, plan_dir: &Path, how: &LocalChunking) -> Result<Vec<(PathBuf, ChunkReport)>> {
    let exe = std::env::current_exe().map_err(|e| TranscodeError::Fatal(format!("finding this program to start chunk workers: {e}")))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let worker_cores = (cores / how.workers.max(1)).max(1);
    let dirs: Vec<PathBuf> = plan.chunks.iter().map(|c| plan_dir.join(chunking::chunk_dir(c.index))).collect();
    let mut reports: Vec<Option<ChunkReport>> = dirs.iter().map(|d| chunk::finished(d, &plan.plan_id)).collect();
    let kept = reports.iter().filter(|r| r.is_some()).count();
    if kept > 0 {
        tracing::info!(kept, "chunks an earlier run finished are kept");
    }
    let mut waiting: std::collections::VecDeque<(usize, u32)> =
        reports.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| (i, 1)).collect();
    let mut running: Vec<Running> = Vec::new();
    let input = std::path::absolute(&job.input).unwrap_or_else(|_| job.input.clone());
    let outcome = (|| -> Result<()> {
        loop {
            while running.len() < how.workers.max(1) {
                let Some((index, attempt)) = waiting.pop_front() else { break };
                std::fs::create_dir_all(&dirs[index])
                    .map_err(|e| TranscodeError::output(&format!("creating {}", dirs[index].display()), e))?;
                let log = std::fs::File::create(plan_dir.join(format!("{}.log", chunking::chunk_dir(index as u32))))
                    .map_err(|e| TranscodeError::output("creating a chunk log", e))?;
                let child = Command::new(&exe)
                    .arg("chunk-worker")
                    .arg("--input")
                    .arg(&input)
                    .arg("--plan-dir")
                    .arg(plan_dir)
                    .args(["--index", &index.to_string(), "--attempt", &attempt.to_string(), "--cores", &worker_cores.to_string()])
                    .args(&how.worker_args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .env("VAULTSTREAM_CHUNK_WORKER", "1")
                    .spawn()
                    .map_err(|e| TranscodeError::Fatal(format!("starting a chunk worker: {e}")))?;
                running.push(Running { index, attempt, child });
            }
            if running.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
            let mut still = Vec::new();
            for mut r in running.drain(..) {
                match r.child.try_wait().map_err(|e| TranscodeError::Fatal(format!("waiting for a chunk worker: {e}")))? {
                    None => still.push(r),
                    Some(status) => {
                        let found = chunk::finished(&dirs[r.index], &plan.plan_id);
                        match (status.code(), found) {
                            (Some(0), Some(report)) => reports[r.index] = Some(report),
                            (Some(EXIT_INVALID_INPUT), _) => {
                                return Err(TranscodeError::InvalidInput(format!(
                                    "chunk {} ({:.3} s on): {}",
                                    r.index,
                                    plan.chunks[r.index].start_seconds,
                                    last_error(plan_dir, r.index)
                                )));
                            }
                            (code, _) if r.attempt < ATTEMPTS => {
                                tracing::warn!(chunk = r.index, attempt = r.attempt, exit = ?code, "a chunk worker failed; retrying that chunk alone");
                                waiting.push_back((r.index, r.attempt + 1));
                            }
                            (code, _) => {
                                return Err(TranscodeError::Temporary(format!(
                                    "chunk {} failed {ATTEMPTS} times (last exit {code:?}): {}; run the command again to retry the chunks not finished",
                                    r.index,
                                    last_error(plan_dir, r.index)
                                )));
                            }
                        }
                    }
                }
            }
            running = still;
        }
    })();
    if outcome.is_err() {
        for mut r in running {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
    outcome?;
    dirs.into_iter()
        .zip(reports)
        .map(|(d, r)| r.map(|r| (d, r)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TranscodeError::Fatal("a chunk finished without its report".into()))
}

/// The last `error:` line a chunk worker wrote.
fn last_error(plan_dir: &Path, index: usize) -> String {
    let log = std::fs::read_to_string(plan_dir.join(format!("{}.log", chunking::chunk_dir(index as u32)))).unwrap_or_default();
    log.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| "the worker ended without saying why".into())
}
