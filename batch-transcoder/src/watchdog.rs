//! Never hang: if reading or decoding stops making progress, end the run with a clear error.
//!
//! The demux loop reports progress; the watchdog first interrupts blocking I/O through
//! FFmpeg's interrupt callback, and if the process is still stuck a few seconds later (a decoder
//! spinning inside a C call cannot be interrupted) it cleans up and exits on its own.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::TranscodeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Reading = 0,
    Decoding = 1,
    /// Input fully read; waiting for encoders to drain.
    Finishing = 2,
}

pub struct Watchdog {
    started: Instant,
    last_progress_ms: AtomicU64,
    phase: AtomicU8,
    pub abort: Arc<AtomicBool>,
    done: AtomicBool,
    timeout: Duration,
}

impl Watchdog {
    pub fn new(timeout: Duration) -> Arc<Watchdog> {
        Arc::new(Watchdog {
            started: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Reading as u8),
            abort: Arc::new(AtomicBool::new(false)),
            done: AtomicBool::new(false),
            timeout,
        })
    }

    pub fn progress(&self, phase: Phase) {
        self.last_progress_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Progress from a worker: keeps the run alive without changing what the main thread does.
    pub fn heartbeat(&self) {
        self.last_progress_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn stop(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    pub fn fired(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// The error a stall means: stuck input may recover on retry, a stuck decoder will not.
    pub fn stall_error(&self) -> TranscodeError {
        let secs = self.timeout.as_secs();
        match self.phase.load(Ordering::Relaxed) {
            p if p == Phase::Reading as u8 => {
                TranscodeError::Temporary(format!("the input delivered no data for {secs} s (--stall-timeout); giving up"))
            }
            p if p == Phase::Decoding as u8 => TranscodeError::InvalidInput(format!(
                "decoding made no progress for {secs} s (--stall-timeout); the file is likely malformed"
            )),
            _ => TranscodeError::Fatal(format!("the encoders made no progress for {secs} s (--stall-timeout)")),
        }
    }

    /// Watches from a background thread; `emergency` runs (cleanup, then exit) when interrupting
    /// I/O was not enough to unstick the pipeline.
    pub fn spawn(self: &Arc<Self>, emergency: impl FnOnce(TranscodeError) + Send + 'static) {
        let dog = Arc::clone(self);
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let grace = Duration::from_secs(5);
                loop {
                    std::thread::sleep(Duration::from_millis(200));
                    if dog.done.load(Ordering::Relaxed) {
                        return;
                    }
                    let idle = dog.started.elapsed().saturating_sub(Duration::from_millis(dog.last_progress_ms.load(Ordering::Relaxed)));
                    if idle >= dog.timeout && !dog.fired() {
                        dog.abort.store(true, Ordering::Relaxed);
                    }
                    if idle >= dog.timeout + grace {
                        emergency(dog.stall_error());
                        return;
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::warn!(error = %e, "could not start the watchdog thread"));
    }
}
