//! Progress for people (an indicatif bar on a terminal) and for machines (JSON lines otherwise),
//! and for whoever else asked to hear it (`run` heartbeats it into the content record).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Called with the percent of the source decoded so far.
pub type ProgressObserver = Box<dyn FnMut(f64) + Send>;

enum Display {
    Bar(ProgressBar),
    Lines { last: Option<Instant>, started: Instant },
}

pub struct Progress {
    display: Display,
    duration: Option<f64>,
    observer: Option<ProgressObserver>,
}

impl Progress {
    pub fn new(duration: Option<f64>, observer: Option<ProgressObserver>) -> Progress {
        let display = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(duration.map_or(0, |d| (d * 1000.0) as u64));
            let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            Display::Bar(bar)
        } else {
            Display::Lines { last: None, started: Instant::now() }
        };
        Progress { display, duration, observer }
    }

    /// Reports the decoded position, in seconds of source time.
    pub fn update(&mut self, position: f64) {
        if let (Some(observer), Some(d)) = (self.observer.as_mut(), self.duration.filter(|d| *d > 0.0)) {
            observer((position / d * 100.0).min(100.0));
        }
        let duration = self.duration;
        match &mut self.display {
            Display::Bar(bar) => {
                bar.set_position((position * 1000.0) as u64);
                bar.set_message(format!("{position:.1} s"));
            }
            Display::Lines { last, started } => {
                if last.is_some_and(|l| l.elapsed() < Duration::from_secs(1)) {
                    return;
                }
                *last = Some(Instant::now());
                let elapsed = started.elapsed().as_secs_f64();
                let line = serde_json::json!({
                    "event": "progress",
                    "position_seconds": (position * 100.0).round() / 100.0,
                    "duration_seconds": duration,
                    "percent": duration.filter(|d| *d > 0.0).map(|d| (position / d * 1000.0).round().min(1000.0) / 10.0),
                    "speed": if elapsed > 0.0 { Some((position / elapsed * 100.0).round() / 100.0) } else { None },
                });
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }

    pub fn finish(&mut self) {
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
    }
}
