//! `vaultstream-transcode`: turns a video into an AES-128-encrypted adaptive-bitrate HLS ladder.
//!
//! The [`pipeline`] reads top to bottom as its modules: [`probe`] → [`plan`] → [`decode`] and
//! [`normalize`] → [`fanout`] to each [`rendition`] (scale, [`encoder`], [`mux`] into segments cut
//! by [`keyframes`], encrypt with [`keys`]) → collect → [`publish`]. `local` mode ([`job`]) works
//! on files; `run` mode ([`run`]) is the AWS Batch job around the same pipeline: the source from
//! S3 ([`source`]), the key from KMS, the output to a new version in the origin bucket
//! ([`origin_upload`]), the content record moved along.

mod cbcs;
mod chunk;
mod chunked;
mod cli;
mod closed_captions;
mod cmaf;
mod colour;
mod decode;
mod encoder;
mod error;
mod fanout;
mod hdr10;
mod iframes;
mod interleave;
mod job;
mod key_provider;
mod keyframes;
mod keys;
mod manifest;
mod mux;
mod normalize;
mod origin_upload;
mod packet_file;
mod pipeline;
mod plan;
mod probe;
mod progress;
mod publish;
mod quality;
mod rendition;
mod run;
mod run_chunks;
mod source;
mod stages;
mod stitch;
mod storyboard;
mod thumbnails;
mod tonemap;
mod watchdog;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use vaultstream::traces::Traces;

use crate::cli::{Cli, Command};
use crate::error::{TranscodeError, EXIT_OK};

fn init_logging() -> Option<Traces> {
    let filter = || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let (spans, traces, problem) = match vaultstream::traces::layer("vaultstream-transcode") {
        Ok((layer, traces)) => (Some(layer), Some(traces), None),
        Err(problem) => (None, None, Some(problem)),
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(spans);
    if std::io::stderr().is_terminal() {
        registry.with(logs.with_filter(filter())).init();
    } else {
        registry.with(logs.json().flatten_event(true).with_filter(filter())).init();
    }
    if let Some(problem) = problem {
        tracing::warn!(%problem, "traces are off");
    }
    // FFmpeg's own messages are off unless asked for: they would interleave with ours and
    // everything they say about a bad input is reported through our errors.
    let level = match std::env::var("VAULTSTREAM_FFMPEG_LOG").as_deref() {
        Ok("debug") => ffmpeg_next::util::log::Level::Debug,
        Ok("info") => ffmpeg_next::util::log::Level::Info,
        Ok("warning") => ffmpeg_next::util::log::Level::Warning,
        Ok("error") => ffmpeg_next::util::log::Level::Error,
        _ => ffmpeg_next::util::log::Level::Quiet,
    };
    ffmpeg_next::util::log::set_level(level);
    traces
}

/// x86-64 builds are compiled for AES-NI (.cargo/config.toml); say so instead of crashing on a
/// CPU without it. CPUID is read directly: with the feature compiled in, std's detection macro
/// answers "yes" without asking the CPU.
#[cfg(target_arch = "x86_64")]
fn check_cpu() -> Result<(), TranscodeError> {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID leaf 1 exists on every x86-64 CPU.
    let ecx = unsafe { std::arch::x86_64::__cpuid(1) }.ecx;
    if ecx & (1 << 25) == 0 {
        return Err(TranscodeError::Fatal("this CPU lacks AES-NI, which this x86-64 build requires".into()));
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
fn check_cpu() -> Result<(), TranscodeError> {
    Ok(())
}

fn run(cli: Cli) -> Result<(), TranscodeError> {
    check_cpu()?;
    ffmpeg_next::init().map_err(|e| TranscodeError::Fatal(format!("initialising FFmpeg: {e}")))?;
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Chunk { run, plan } => run_chunks::chunk(run, plan),
        Command::Stitch { run, plan } => run_chunks::stitch(run, plan),
        Command::ChunkWorker(args) => {
            let job = job::Job::for_chunk(&args)?;
            let plan: vaultstream::chunking::ChunkPlan = std::fs::read(args.plan_dir.join(vaultstream::chunking::PLAN_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| TranscodeError::Usage(format!("{} holds no readable plan.json", args.plan_dir.display())))?;
            let chunk = plan
                .chunks
                .get(args.index as usize)
                .ok_or_else(|| TranscodeError::Usage(format!("--index {} is past the plan's {} chunks", args.index, plan.chunks.len())))?;
            let dir = args.plan_dir.join(vaultstream::chunking::chunk_dir(chunk.index));
            let cores = args.cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let report = chunk::encode(&job, &plan.plan_id, chunk, &dir, args.attempt, cores)?;
            println!(
                "{}",
                serde_json::json!({"status": "chunk_done", "index": report.index, "frames": report.frames, "wall_seconds": report.wall_seconds})
            );
            Ok(())
        }
        Command::Local(args) => {
            let drm = args.drm.clone();
            let mut job = job::Job::from_args(args)?;
            if job.profile.cmaf() {
                if let Some(key) = job::vendor_key(&drm, &job)? {
                    job.cmaf_key = Some(key);
                }
            }
            let pipeline::LocalOutput { dir: out_dir, manifest, .. } = pipeline::run_local(job, None)?;
            let summary = serde_json::json!({
                "status": manifest.status,
                "reason": manifest.reason,
                "master": out_dir.join("master.m3u8"),
                "manifest": out_dir.join("manifest.json"),
                "key_files": manifest.keys.iter().filter_map(|k| k.file.as_ref()).collect::<Vec<_>>(),
                "renditions": manifest.renditions.iter().map(|r| &r.name).collect::<Vec<_>>(),
                "encoders": manifest.encoders.iter().map(|e| &e.name).collect::<Vec<_>>(),
                "wall_seconds": manifest.figures.wall_seconds,
            });
            println!("{summary}");
            if let Some(reason) = &manifest.reason {
                tracing::warn!(%reason, "published partially");
            }
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let traces = init_logging();
    let code = match run(cli) {
        Ok(()) => EXIT_OK,
        Err(err) => {
            tracing::error!(error = %err, exit_code = err.exit_code(), "transcode failed");
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    drop(traces);
    std::process::exit(code);
}
