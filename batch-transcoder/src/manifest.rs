//! What a transcode reports: `manifest.json` in `local` mode, the job's figures in `run` mode.

use serde::Serialize;
use vaultstream::ladder::{Container, DroppedRung};

use crate::encoder::Selection;
use crate::keys::{CmafKeyRecord, KeyRecord};
use crate::probe::SourceInfo;
use crate::rendition::RenditionOutput;
use crate::thumbnails::Pictures;

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
    /// CPU seconds spent tone-mapping HDR to SDR, for HDR sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone_map_cpu_seconds: Option<f64>,
    /// CPU seconds spent measuring the rungs' quality (decoding them again, PSNR and SSIM).
    pub quality_cpu_seconds: f64,
    /// CPU seconds by stage, all rungs together (each rung's own are in its rendition).
    pub cpu_by_stage: crate::stages::StageSeconds,
    /// A chunked title's chunks and stitch: their time, CPU and cost (the figures above are the
    /// stitch's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunked: Option<vaultstream::chunking::ChunkedFigures>,
}

#[derive(Debug, Serialize)]
pub struct CmafManifests {
    /// HLS master playlist over the CMAF tracks (`EXT-X-MAP`, `SAMPLE-AES`).
    pub hls: String,
    /// DASH MPD over the same tracks.
    pub dash: String,
    pub scheme: &'static str,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmaf_key: Option<CmafKeyRecord>,
    /// The CMAF packaging's manifests, where the profile makes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmaf: Option<CmafManifests>,
    pub pictures: Pictures,
    pub figures: Figures,
}

impl Manifest {
    /// Why some renditions are missing, when some are.
    pub fn partial_reason(failed: &[FailedRendition], published: usize) -> Option<String> {
        (!failed.is_empty()).then(|| {
            format!(
                "{} of {} renditions failed: {}",
                failed.len(),
                failed.len() + published,
                failed.iter().map(|f| format!("{} ({})", f.name, f.reason)).collect::<Vec<_>>().join("; ")
            )
        })
    }
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// This thread's CPU time so far.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass; the thread clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// CPU seconds this process has used so far (user + system).
pub fn cpu_seconds() -> f64 {
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
