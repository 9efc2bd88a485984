//! Split-and-stitch: how a long title is cut into chunks that encode apart (AWS Batch array
//! children, or local workers) and are stitched back into one ladder.
//!
//! A chunk boundary is a segment boundary of the output timeline (so every chunk starts with an
//! IDR in every rung and no segment straddles two chunks), at the first output frame at or after
//! each multiple of the chunk length. Each chunk decodes from the source keyframe before its
//! first frame less [`SEEK_MARGIN_SECONDS`], and keeps only its own frames; the source's audio
//! packets are copied per chunk by their timestamps and encoded once, whole, by the stitch (no
//! encoder priming at any seam, so no gap or click there).

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::catalog::RenditionQuality;

/// The chunk length aimed at, before rounding to whole segments.
pub const DEFAULT_CHUNK_SECONDS: f64 = 60.0;
/// How far before a chunk's first frame its decode starts: room for the demuxer's keyframe
/// search, the deinterlacer's context and audio packets stored ahead of their video.
pub const SEEK_MARGIN_SECONDS: f64 = 3.0;
/// The plan's format, recorded in it so a stitch never reads another version's chunks.
pub const PLAN_FORMAT: u32 = 1;
/// A chunk's finished marker, written last: a chunk without one is redone.
pub const CHUNK_DONE: &str = "chunk.json";
pub const PLAN_FILE: &str = "plan.json";
/// The source audio packets a chunk carries, and each rung's encoded video.
pub const AUDIO_PACKETS: &str = "audio.nut";

/// Tolerance for float time comparisons: far below one frame at any supported rate.
const EPSILON: f64 = 1e-6;

/// One chunk: output frames `[start_frame, end_frame)` (the last has no end: to the source's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub index: u32,
    pub start_frame: i64,
    pub end_frame: Option<i64>,
    pub start_seconds: f64,
    pub end_seconds: Option<f64>,
}

impl Chunk {
    /// Where its decode starts, in seconds of the output timeline (the source's start is zero).
    pub fn seek_seconds(&self) -> f64 {
        (self.start_seconds - SEEK_MARGIN_SECONDS).max(0.0)
    }

    /// Whether an output time belongs to this chunk: the first chunk also holds what comes
    /// before zero (an audio encoder's priming), the last what runs past the end.
    pub fn holds(&self, seconds: f64) -> bool {
        (self.index == 0 || seconds + EPSILON >= self.start_seconds) && self.end_seconds.is_none_or(|end| seconds + EPSILON < end)
    }

    /// Whether output frame `index` belongs to this chunk.
    pub fn holds_frame(&self, index: i64) -> bool {
        index >= self.start_frame && self.end_frame.is_none_or(|end| index < end)
    }
}

/// The chunk length used: `target` rounded to a whole number of segments (at least one).
pub fn chunk_length(target_seconds: f64, segment_seconds: f64) -> f64 {
    (target_seconds / segment_seconds).round().max(1.0) * segment_seconds
}

/// The cuts of a title `duration` seconds long at `fps` (`num/den`), or `None` when it makes
/// fewer than two chunks (it is transcoded whole). A tail shorter than one segment joins the
/// chunk before it rather than making a chunk of its own.
pub fn cut(duration: f64, fps: (u32, u32), segment_seconds: f64, target_seconds: f64) -> Option<Vec<Chunk>> {
    if !(duration.is_finite() && duration > 0.0 && fps.0 > 0 && fps.1 > 0 && segment_seconds > 0.0 && target_seconds > 0.0) {
        return None;
    }
    let length = chunk_length(target_seconds, segment_seconds);
    let mut count = (duration / length - EPSILON).ceil().max(1.0) as u32;
    if count > 1 && duration - f64::from(count - 1) * length < segment_seconds - EPSILON {
        count -= 1;
    }
    if count < 2 {
        return None;
    }
    let frame_time = |i: i64| i as f64 * f64::from(fps.1) / f64::from(fps.0);
    // The first output frame at or after `t`, as the timeline's keyframe rule finds it.
    let first_frame_at = |t: f64| {
        let mut i = (t * f64::from(fps.0) / f64::from(fps.1)).floor() as i64;
        while frame_time(i) + EPSILON < t {
            i += 1;
        }
        i
    };
    let starts: Vec<i64> = (0..count).map(|k| first_frame_at(f64::from(k) * length)).collect();
    Some(
        starts
            .iter()
            .enumerate()
            .map(|(k, &start)| {
                let end = starts.get(k + 1).copied();
                Chunk {
                    index: k as u32,
                    start_frame: start,
                    end_frame: end,
                    start_seconds: frame_time(start),
                    end_seconds: end.map(frame_time),
                }
            })
            .collect(),
    )
}

/// A title's chunk plan (`plan.json`), written before any chunk starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkPlan {
    pub format: u32,
    pub plan_id: String,
    pub chunk_seconds: f64,
    pub frame_rate: (u32, u32),
    pub chunks: Vec<Chunk>,
}

/// What a plan is made from: equal inputs make the same plan id, so a retried title finds the
/// chunks its earlier attempt finished and re-encodes only the rest.
#[derive(Debug, Clone, Serialize)]
pub struct PlanInputs<'a> {
    /// The source object's identity (its ETag in `run`, size and mtime in `local`).
    pub source: &'a str,
    /// The profile, as JSON.
    pub profile: &'a str,
    pub encoder: &'a str,
    pub preset: &'a str,
    pub chunk_seconds: f64,
}

impl PlanInputs<'_> {
    /// `p` and the first 24 hex digits of SHA-256 over the inputs and the plan format.
    pub fn plan_id(&self) -> String {
        let mut hash = digest::Context::new(&digest::SHA256);
        hash.update(&PLAN_FORMAT.to_be_bytes());
        hash.update(&serde_json::to_vec(self).unwrap_or_default());
        format!("p{}", &hex::encode(hash.finish().as_ref())[..24])
    }
}

/// What one finished chunk reports (its `chunk.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkReport {
    pub plan_id: String,
    pub index: u32,
    /// Output frames it encoded (the same in every rung).
    pub frames: u64,
    pub rungs: Vec<ChunkRung>,
    /// Source audio packets it copied.
    pub audio_packets: u64,
    /// Where the source's audio goes on after the chunk (the first packet past its end, in the
    /// time base of the chunk's `audio.nut`), when it does: the next chunk's audio starts there.
    #[serde(default)]
    pub audio_next_pts: Option<i64>,
    pub decode_errors: u64,
    pub packets_read: u64,
    /// Thumbnails it took (`thumbnails/thumb_NNNNN.jpg`, with their times), and whether it took
    /// the poster.
    pub thumbnails: Vec<(String, f64)>,
    pub poster: bool,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    /// CPU seconds by stage (the transcoder's stage names).
    pub cpu_by_stage: std::collections::BTreeMap<String, f64>,
    /// Which attempt finished it (Batch's, or the local runner's).
    pub attempt: u32,
}

/// One rung's share of a chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkRung {
    pub name: String,
    pub file: String,
    pub encoder: String,
    pub frames: u64,
    pub bytes: u64,
    pub quality: Option<RenditionQuality>,
}

/// The quality of a rung stitched from chunks: the sampled frames' mean over every chunk.
pub fn merge_quality<'a>(parts: impl IntoIterator<Item = &'a RenditionQuality>) -> Option<RenditionQuality> {
    let (mut psnr, mut ssim, mut frames) = (0.0, 0.0, 0u32);
    for q in parts {
        psnr += q.psnr_db * f64::from(q.frames_sampled);
        ssim += q.ssim * f64::from(q.frames_sampled);
        frames += q.frames_sampled;
    }
    (frames > 0).then(|| {
        let n = f64::from(frames);
        RenditionQuality {
            psnr_db: (psnr / n * 100.0).round() / 100.0,
            ssim: (ssim / n * 10_000.0).round() / 10_000.0,
            frames_sampled: frames,
            below_floor: None,
        }
    })
}

/// The time and cost a chunked title took: its chunks' and the stitch's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkedFigures {
    pub chunks: u32,
    /// From the first chunk's start to the stitch's end, as the workers ran them.
    pub chunk_wall_seconds: Vec<f64>,
    pub chunk_cpu_seconds: Vec<f64>,
    pub stitch_cpu_seconds: f64,
    /// Every chunk's CPU and the stitch's.
    pub cpu_seconds: f64,
    /// The stitch's share of all CPU seconds.
    pub stitch_overhead: f64,
    pub content_minutes: f64,
    pub cost_usd: f64,
    pub cost_per_content_minute_usd: f64,
}

impl ChunkedFigures {
    pub fn new(chunks: &[ChunkReport], stitch_cpu_seconds: f64, content_seconds: f64, price_per_vcpu_second: f64) -> ChunkedFigures {
        let chunk_cpu: f64 = chunks.iter().map(|c| c.cpu_seconds).sum();
        let cpu = chunk_cpu + stitch_cpu_seconds;
        let minutes = content_seconds / 60.0;
        let cost = cpu * price_per_vcpu_second;
        let round = |v: f64, s: f64| (v * s).round() / s;
        ChunkedFigures {
            chunks: chunks.len() as u32,
            chunk_wall_seconds: chunks.iter().map(|c| round(c.wall_seconds, 1e3)).collect(),
            chunk_cpu_seconds: chunks.iter().map(|c| round(c.cpu_seconds, 1e3)).collect(),
            stitch_cpu_seconds: round(stitch_cpu_seconds, 1e3),
            cpu_seconds: round(cpu, 1e3),
            stitch_overhead: if cpu > 0.0 { round(stitch_cpu_seconds / cpu, 1e4) } else { 0.0 },
            content_minutes: round(minutes, 1e3),
            cost_usd: round(cost, 1e6),
            cost_per_content_minute_usd: if minutes > 0.0 { round(cost / minutes, 1e7) } else { 0.0 },
        }
    }
}

/// Where a plan's files live in the source bucket: beside the content's upload, under the same
/// tenant prefix rules (`chunks/{tenant}/{content_id}/{plan_id}/…`), expired by the bucket's
/// lifecycle rule.
pub fn object_prefix(tenant: &str, content_id: &str, plan_id: &str) -> String {
    format!("chunks/{tenant}/{content_id}/{plan_id}")
}

/// A chunk's folder name inside its plan's.
pub fn chunk_dir(index: u32) -> String {
    format!("chunk-{index:05}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_titles_are_not_chunked() {
        assert_eq!(cut(59.0, (30, 1), 6.0, 60.0), None);
        assert_eq!(cut(60.0, (30, 1), 6.0, 60.0), None);
        // A tail under one segment joins the last chunk.
        assert_eq!(cut(65.0, (30, 1), 6.0, 60.0), None);
        assert!(cut(66.5, (30, 1), 6.0, 60.0).is_some());
        assert_eq!(cut(f64::NAN, (30, 1), 6.0, 60.0), None);
        assert_eq!(cut(600.0, (0, 1), 6.0, 60.0), None);
    }

    #[test]
    fn chunks_cover_every_frame_once_on_segment_boundaries() {
        let chunks = cut(180.0, (30, 1), 6.0, 30.0).expect("chunked");
        assert_eq!(chunks.len(), 6);
        assert_eq!(chunks[0].start_frame, 0);
        assert_eq!(chunks.last().and_then(|c| c.end_frame), None);
        for w in chunks.windows(2) {
            assert_eq!(w[0].end_frame, Some(w[1].start_frame));
            assert_eq!(w[1].start_frame % 180, 0, "a multiple of the 6 s segment at 30 fps");
        }
        assert!(chunks[1].holds_frame(900) && !chunks[1].holds_frame(1800) && chunks[2].holds_frame(1800));
        assert!(chunks[5].holds(10_000.0));
        assert!(chunks[0].holds(-0.021) && !chunks[1].holds(29.9) && chunks[1].holds(30.0));
        assert_eq!(chunks[2].seek_seconds(), 57.0);
        assert_eq!(chunks[0].seek_seconds(), 0.0);
    }

    #[test]
    fn ntsc_rates_cut_at_the_first_frame_past_each_boundary() {
        let chunks = cut(200.0, (30000, 1001), 6.0, 60.0).expect("chunked");
        assert_eq!(chunks.len(), 4);
        // 60 s at 29.97 fps: frame 1798.2 → 1799 is the first at or after it.
        assert_eq!(chunks[1].start_frame, 1799);
        assert!(chunks[1].start_seconds >= 60.0 && chunks[1].start_seconds < 60.0 + 1001.0 / 30000.0);
    }

    #[test]
    fn the_length_is_whole_segments() {
        assert_eq!(chunk_length(60.0, 6.0), 60.0);
        assert_eq!(chunk_length(50.0, 6.0), 48.0);
        assert_eq!(chunk_length(1.0, 6.0), 6.0);
        assert_eq!(chunk_length(64.0, 4.0), 64.0);
    }

    #[test]
    fn plan_ids_change_with_any_input() {
        let base = PlanInputs { source: "\"etag\"", profile: "{}", encoder: "auto", preset: "veryfast", chunk_seconds: 60.0 };
        let id = base.plan_id();
        assert!(id.starts_with('p') && id.len() == 25);
        assert_eq!(id, base.clone().plan_id());
        assert_ne!(id, PlanInputs { source: "\"other\"", ..base.clone() }.plan_id());
        assert_ne!(id, PlanInputs { chunk_seconds: 30.0, ..base.clone() }.plan_id());
        assert_ne!(id, PlanInputs { preset: "fast", ..base }.plan_id());
    }

    #[test]
    fn quality_merges_by_sampled_frames() {
        let q = |psnr, n| RenditionQuality { psnr_db: psnr, ssim: 0.9, frames_sampled: n, below_floor: None };
        let merged = merge_quality(&[q(40.0, 30), q(44.0, 10)]).expect("merged");
        assert_eq!(merged.psnr_db, 41.0);
        assert_eq!(merged.frames_sampled, 40);
        assert_eq!(merge_quality(&[]), None);
    }

    #[test]
    fn figures_say_what_the_stitch_cost_and_the_price_per_minute() {
        let report = |cpu| ChunkReport {
            plan_id: "p".into(),
            index: 0,
            frames: 1,
            rungs: vec![],
            audio_packets: 0,
            audio_next_pts: None,
            decode_errors: 0,
            packets_read: 0,
            thumbnails: vec![],
            poster: false,
            wall_seconds: 1.0,
            cpu_seconds: cpu,
            cpu_by_stage: Default::default(),
            attempt: 1,
        };
        let f = ChunkedFigures::new(&[report(45.0), report(45.0)], 10.0, 120.0, 0.001);
        assert_eq!(f.cpu_seconds, 100.0);
        assert_eq!(f.stitch_overhead, 0.1);
        assert_eq!(f.cost_usd, 0.1);
        assert_eq!(f.cost_per_content_minute_usd, 0.05);
    }
}
