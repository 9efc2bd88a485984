//! Where a transcode's CPU goes, stage by stage: each thread times the stages it runs on its own
//! thread clock, and the threads FFmpeg's codecs start for themselves (x264's frame and
//! lookahead threads, the decoder's frame threads) are counted to the stage of the thread that
//! started them, which they are named after. The figures go into `manifest.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::manifest::{round3, thread_cpu_time};

/// A stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading and demuxing the source.
    Read,
    /// The source's video and audio decoders, with their own threads.
    Decode,
    /// Deinterlacing, tone mapping and conversion to the ladder's picture format.
    NormalizeVideo,
    /// Resampling, downmixing and loudness normalisation.
    NormalizeAudio,
    /// Each rung's scaling from the normalized picture.
    Scale,
    /// The video encoders, with their own threads.
    EncodeVideo,
    EncodeAudio,
    /// Decoding sampled frames of each rung again and measuring PSNR and SSIM.
    Quality,
    /// The trick-play (I-frame) tracks.
    IFrames,
    /// The HLS ladder's segment muxer (MPEG-TS or fragmented MP4).
    Mux,
    /// The CMAF tracks: muxing and `cbcs`.
    Cmaf,
    /// AES-128 encryption of the ladder's segments.
    Encrypt,
    /// Writing segments to the staging folder.
    Write,
    /// The poster, thumbnails and storyboard.
    Pictures,
}

/// CPU time by stage, as one thread (or several, added up) spent it.
#[derive(Debug, Default, Clone)]
pub struct StageClock {
    spent: BTreeMap<Stage, Duration>,
}

impl StageClock {
    /// Runs `f`, counting this thread's CPU time in it to `stage`.
    pub fn time<T>(&mut self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let started = thread_cpu_time();
        let result = f();
        self.add(stage, thread_cpu_time().saturating_sub(started));
        result
    }

    pub fn add(&mut self, stage: Stage, spent: Duration) {
        *self.spent.entry(stage).or_default() += spent;
    }

    pub fn merge(&mut self, other: &StageClock) {
        for (&stage, &spent) in &other.spent {
            self.add(stage, spent);
        }
    }

    pub fn total(&self) -> Duration {
        self.spent.values().sum()
    }

    /// Counts to `stage` what the threads `helpers` followed used.
    pub fn add_helpers(&mut self, stage: Stage, helpers: &HelperThreads) {
        self.add(stage, helpers.total());
    }

    /// Seconds by stage, rounded to milliseconds.
    pub fn seconds(&self) -> BTreeMap<Stage, f64> {
        self.spent.iter().map(|(&stage, spent)| (stage, round3(spent.as_secs_f64()))).collect()
    }
}

/// The threads a codec started for itself, found by their name (a thread is named after the
/// thread that started it) and followed by sampling: a codec may end some of its threads before
/// it closes (x264's lookahead ends at the flush), and an ended thread is gone from
/// `/proc/self/task`, so what each was last seen to have used is kept.
#[derive(Debug, Default)]
pub struct HelperThreads {
    name: String,
    /// CPU ticks last seen, by thread id.
    seen: BTreeMap<u32, u64>,
}

impl HelperThreads {
    /// Follows the threads named `name`, other than the calling thread.
    pub fn named(name: &str) -> HelperThreads {
        HelperThreads { name: name.to_string(), seen: BTreeMap::new() }
    }

    /// Follows the threads named as the calling one (the codecs it opened start them).
    pub fn of_this_thread() -> HelperThreads {
        HelperThreads::named(&own_name().unwrap_or_default())
    }

    /// Reads what each of them has used so far.
    pub fn sample(&mut self) {
        if self.name.is_empty() {
            return;
        }
        for (tid, ticks) in threads_cpu_ticks(&self.name).unwrap_or_default() {
            let seen = self.seen.entry(tid).or_default();
            *seen = (*seen).max(ticks);
        }
    }

    pub fn total(&self) -> Duration {
        Duration::from_secs_f64(self.seen.values().sum::<u64>() as f64 / ticks_per_second())
    }
}

/// Runs `f` with the calling thread named `name` (at most 15 bytes), so that the threads a codec
/// opened in `f` starts are named so too and can be counted apart; then gives the name back.
pub fn with_thread_name<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let previous = own_name();
    set_own_name(name);
    let result = f();
    if let Some(previous) = previous {
        set_own_name(&previous);
    }
    result
}

#[cfg(target_os = "linux")]
fn own_name() -> Option<String> {
    std::fs::read_to_string("/proc/thread-self/comm").ok().map(|n| n.trim_end_matches('\n').to_string())
}

#[cfg(not(target_os = "linux"))]
fn own_name() -> Option<String> {
    None
}

#[cfg(target_os = "linux")]
fn set_own_name(name: &str) {
    let Ok(name) = std::ffi::CString::new(name) else { return };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (the kernel takes its first 15 bytes).
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn set_own_name(_: &str) {}

/// A transcode's CPU seconds by stage, and what no stage accounts for (probing, planning,
/// playlists, and whatever threads no stage started), so they add up to the process's.
#[derive(Debug, Clone, Serialize)]
pub struct StageSeconds {
    #[serde(flatten)]
    pub stages: BTreeMap<Stage, f64>,
    pub other: f64,
}

impl StageSeconds {
    pub fn of(clock: &StageClock, process_cpu_seconds: f64) -> StageSeconds {
        StageSeconds { stages: clock.seconds(), other: round3((process_cpu_seconds - clock.total().as_secs_f64()).max(0.0)) }
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The CPU ticks of each thread named `name` other than the calling one, from `/proc/self/task`.
#[cfg(target_os = "linux")]
fn threads_cpu_ticks(name: &str) -> Option<Vec<(u32, u64)>> {
    let own_tid = std::fs::read_link("/proc/thread-self").ok()?.file_name()?.to_str()?.to_string();
    let wanted: Vec<u8> = name.bytes().take(15).chain([b'\n']).collect();
    let mut threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let tid = task.file_name();
        let Some(tid) = tid.to_str().filter(|t| *t != own_tid).and_then(|t| t.parse::<u32>().ok()) else { continue };
        let path = task.path();
        if std::fs::read(path.join("comm")).ok().as_deref() != Some(wanted.as_slice()) {
            continue;
        }
        if let Some(ticks) = std::fs::read_to_string(path.join("stat")).ok().as_deref().and_then(cpu_ticks) {
            threads.push((tid, ticks));
        }
    }
    Some(threads)
}

#[cfg(not(target_os = "linux"))]
fn threads_cpu_ticks(_: &str) -> Option<Vec<(u32, u64)>> {
    None
}

/// utime + stime from a `/proc/…/stat` line: fields 14 and 15, counted after the command name,
/// which is in parentheses and may itself hold spaces and parentheses.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    Some(fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_past_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (rung0 (1080p) x) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 1 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(281));
        assert_eq!(cpu_ticks("garbage"), None);
        assert_eq!(cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn a_clock_adds_up_by_stage() {
        let mut a = StageClock::default();
        a.add(Stage::Scale, Duration::from_millis(1500));
        let mut b = StageClock::default();
        b.add(Stage::Scale, Duration::from_millis(500));
        b.add(Stage::Encrypt, Duration::from_millis(20));
        a.merge(&b);
        assert_eq!(a.seconds(), BTreeMap::from([(Stage::Scale, 2.0), (Stage::Encrypt, 0.02)]));
        assert_eq!(a.total(), Duration::from_millis(2020));
        let spun = a.time(Stage::Quality, || (0..200_000u64).map(|i| i.wrapping_mul(i)).sum::<u64>());
        assert!(spun > 0 && a.seconds().contains_key(&Stage::Quality));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn helper_threads_are_the_ones_named_as_this_thread() {
        let measured = std::thread::Builder::new()
            .name("stagetest-a".into())
            .spawn(|| {
                // A helper that inherits this thread's name, as a codec's threads do.
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
                let helper = std::thread::spawn(move || {
                    let mut x = 0u64;
                    while thread_cpu_time() < Duration::from_millis(300) {
                        x = x.wrapping_add(std::hint::black_box(1));
                    }
                    done_tx.send(()).unwrap();
                    let _ = rx.recv();
                    x
                });
                done_rx.recv().unwrap();
                let mut helpers = HelperThreads::of_this_thread();
                helpers.sample();
                tx.send(()).unwrap();
                helper.join().unwrap();
                // Ended threads keep what they were last seen to use.
                helpers.sample();
                let mut clock = StageClock::default();
                clock.add_helpers(Stage::EncodeVideo, &helpers);
                clock.seconds()[&Stage::EncodeVideo]
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(measured >= 0.2, "the helper's 0.3 s of CPU is counted: {measured}");
    }
}
