//! Fan-out and collect: one thread per rendition (scale → encode → segment → encrypt) and one
//! for pictures, fed the same decoded frames; then their results gathered. A rendition that
//! fails for its own reasons is left out (the rest publish partial); one that failed for a reason
//! the whole job shares, such as a full disk, fails the job as that error (retryable, exit 75).

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use ffmpeg_next::frame;

use crate::error::{ErrorClass, Result, TranscodeError};
use crate::keyframes::Timeline;
use crate::keys::KeyRing;
use crate::manifest::thread_cpu_time;
use crate::manifest::FailedRendition;
use crate::normalize::{Normalized, Picture};
use crate::rendition::{self, RenditionOutput, RenditionPlan, Work};
use crate::stages::{Stage, StageClock};
use crate::thumbnails::{self, Pictures, Shot, ShotPicker};
use crate::watchdog::Watchdog;

/// Frames buffered per rendition: enough to keep every encoder busy, bounded for memory.
const QUEUE_DEPTH: usize = 16;

type Worker<T> = std::thread::JoinHandle<Result<T>>;
type PicturesWorker = Worker<(Pictures, StageClock)>;

pub struct Fanout {
    renditions: Vec<(String, Picture, SyncSender<Work>, Worker<RenditionOutput>)>,
    pictures: Option<(SyncSender<Shot>, PicturesWorker)>,
}

/// What the workers produced.
pub struct Collected {
    pub outputs: Vec<RenditionOutput>,
    pub failed: Vec<FailedRendition>,
    pub pictures: Pictures,
    /// CPU by stage of every worker (the rungs' also in their outputs).
    pub clock: StageClock,
}

/// Decode statistics, gathered as frames go out.
#[derive(Debug, Default, Clone)]
pub struct DecodeStats {
    pub video_frames: u64,
    pub audio_frames: u64,
    pub decode_errors: u64,
    pub video_end: f64,
    pub audio_end: f64,
    /// CPU seconds the decode thread spent tone-mapping (HDR sources).
    pub tone_map_seconds: Option<f64>,
    /// CPU by stage of the decode thread and the decoders' own threads.
    pub clock: StageClock,
}

impl DecodeStats {
    /// How far into the source decoding got, in seconds.
    pub fn position(&self) -> f64 {
        self.video_end.max(self.audio_end)
    }
}

impl Fanout {
    /// Starts a worker per rendition, and one for the poster and thumbnails at `picture_size`.
    pub fn start(
        plans: Vec<RenditionPlan>,
        picture_size: Option<(u32, u32)>,
        pictures_dir: PathBuf,
        ring: &Arc<KeyRing>,
        watchdog: &Arc<Watchdog>,
        storyboard: bool,
    ) -> Result<Fanout> {
        let mut fanout = Fanout { renditions: Vec::new(), pictures: None };
        // Each rung's thread is a span of the transcode (a subsegment in its trace).
        let parent = tracing::Span::current();
        for (index, plan) in plans.into_iter().enumerate() {
            let (tx, rx) = sync_channel(QUEUE_DEPTH);
            let ring = Arc::clone(ring);
            let dog = Arc::clone(watchdog);
            let name = plan.name.clone();
            let picture = plan.video.as_ref().map_or(Picture::Sdr, |v| v.picture);
            let handle = std::thread::Builder::new()
                // Unique in its first 15 bytes (what Linux keeps), which the encoder's own
                // threads inherit: their CPU time counts to this rung by it.
                .name(format!("rung{index}-{name}"))
                .spawn({
                    let span = tracing::info_span!(parent: &parent, "rung", otel.name = %format!("rung {name}"), rung = %name);
                    move || span.in_scope(|| rendition::run(plan, rx, &ring, &dog))
                })
                .map_err(|e| TranscodeError::Fatal(format!("starting a rendition thread: {e}")))?;
            fanout.renditions.push((name, picture, tx, handle));
        }
        if let Some(size) = picture_size {
            let (tx, rx) = sync_channel(4);
            let handle = std::thread::Builder::new()
                .name("thumbnails".into())
                .spawn(move || {
                    let pictures = thumbnails::run(pictures_dir, size, rx, storyboard)?;
                    let mut clock = StageClock::default();
                    clock.add(Stage::Pictures, thread_cpu_time());
                    Ok((pictures, clock))
                })
                .map_err(|e| TranscodeError::Fatal(format!("starting the thumbnail thread: {e}")))?;
            fanout.pictures = Some((tx, handle));
        }
        Ok(fanout)
    }

    /// Where decoded, normalized frames go.
    pub fn frames(&self, timeline: Timeline) -> FrameSink<'_> {
        self.frames_from(timeline, 0.0)
    }

    /// Where the frames of a chunk starting at `start_seconds` go.
    pub fn frames_from(&self, timeline: Timeline, start_seconds: f64) -> FrameSink<'_> {
        FrameSink { fanout: self, timeline, picker: ShotPicker::from(start_seconds), stats: DecodeStats::default(), last_video: None }
    }

    /// Sends each rendition the work made for the picture it takes.
    fn send(&self, work: impl Fn(Picture) -> Work) {
        for (_, picture, tx, _) in &self.renditions {
            // A rendition that failed has dropped its receiver; its error is collected at join.
            let _ = tx.send(work(*picture));
        }
    }

    /// Waits for every worker. Failures the whole job shares end the job with that error.
    pub fn collect(self) -> Result<Collected> {
        let mut outputs: Vec<RenditionOutput> = Vec::new();
        let mut failed = Vec::new();
        let mut clock = StageClock::default();
        let mut shared_failure = None;
        for (name, _, tx, handle) in self.renditions {
            drop(tx);
            match handle.join() {
                Ok(Ok(out)) => {
                    clock.merge(&out.clock);
                    outputs.push(out);
                }
                Ok(Err(e)) if e.class() == ErrorClass::Retryable => {
                    tracing::error!(rendition = %name, error = %e, "rendition failed for a reason every rendition shares");
                    shared_failure.get_or_insert(e);
                }
                Ok(Err(e)) => {
                    tracing::error!(rendition = %name, error = %e, "rendition failed");
                    failed.push(FailedRendition { name, reason: e.to_string() });
                }
                Err(_) => failed.push(FailedRendition { name, reason: "the rendition thread panicked".into() }),
            }
        }
        let pictures = match self.pictures {
            Some((tx, handle)) => {
                drop(tx);
                match handle.join() {
                    Ok(Ok((p, spent))) => {
                        clock.merge(&spent);
                        p
                    }
                    Ok(Err(e)) if e.class() == ErrorClass::Retryable => {
                        shared_failure.get_or_insert(e);
                        Pictures::default()
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "thumbnails failed; publishing without them");
                        Pictures::default()
                    }
                    Err(_) => Pictures::default(),
                }
            }
            None => Pictures::default(),
        };
        match shared_failure {
            Some(e) => Err(e),
            None => Ok(Collected { outputs, failed, pictures, clock }),
        }
    }
}

/// Sends every decoded frame to every rendition and picks the poster and thumbnails (from the
/// SDR picture).
pub struct FrameSink<'a> {
    fanout: &'a Fanout,
    timeline: Timeline,
    picker: ShotPicker,
    pub stats: DecodeStats,
    last_video: Option<Arc<frame::Video>>,
}

impl FrameSink<'_> {
    pub fn timeline(&self) -> Timeline {
        self.timeline
    }

    pub fn video(&mut self, frame: Normalized) {
        let time = self.timeline.frame_time(frame.sdr.pts().unwrap_or(0));
        let frame_length = f64::from(self.timeline.fps_den) / f64::from(self.timeline.fps_num);
        self.stats.video_end = self.stats.video_end.max(time + frame_length);
        let shared = Arc::new(frame.sdr);
        let hdr = frame.hdr.map(Arc::new);
        self.fanout.send(|picture| match (picture, &hdr) {
            (Picture::Hdr, Some(hdr)) => Work::Video(Arc::clone(hdr)),
            _ => Work::Video(Arc::clone(&shared)),
        });
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

    pub fn audio(&mut self, frame: frame::Audio) {
        self.stats.audio_frames += 1;
        let rate = f64::from(crate::normalize::AUDIO_RATE);
        let end = (frame.pts().unwrap_or(0) as f64 + frame.samples() as f64) / rate;
        self.stats.audio_end = self.stats.audio_end.max(end);
        let shared = Arc::new(frame);
        self.fanout.send(|_| Work::Audio(Arc::clone(&shared)));
    }

    /// A clip that ends before the poster time still gets a poster: its last frame.
    pub fn finish(mut self) -> DecodeStats {
        if !self.picker.poster_taken() {
            if let (Some((tx, _)), Some(frame)) = (&self.fanout.pictures, self.last_video.take()) {
                let _ = tx.send(Shot::Poster(frame));
            }
        }
        self.stats
    }
}
