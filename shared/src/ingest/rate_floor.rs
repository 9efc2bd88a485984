//! The slowest a transfer may be: at least `min_bytes` in every `window`. A server that trickles
//! bytes (a slowloris) to hold a transfer open for its whole time limit is cut off at the end of
//! its first window below the floor, so it holds a slot for one window, not for the limit.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub min_bytes: u64,
    pub window: Duration,
}

impl MinRate {
    /// What the import and feed fetchers hold servers to: 256 KiB every 30 s (about 8.5 KiB/s,
    /// far below any host a creator would link to).
    pub const DEFAULT: MinRate = MinRate { min_bytes: 256 * 1024, window: Duration::from_secs(30) };

    /// `N bytes in S s`, for messages.
    pub fn shown(&self) -> String {
        format!("{} bytes in {} s", self.min_bytes, self.window.as_secs_f64())
    }
}

/// Bytes counted in the current window.
#[derive(Debug)]
pub struct RateFloor {
    rate: MinRate,
    window_start: Instant,
    in_window: u64,
}

/// The window ended with too few bytes: how many came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow(pub u64);

impl RateFloor {
    pub fn start(rate: MinRate) -> Self {
        RateFloor { rate, window_start: Instant::now(), in_window: 0 }
    }

    /// When the current window ends: a wait for the next bytes should end there too.
    pub fn window_end(&self) -> Instant {
        self.window_start + self.rate.window
    }

    /// Counts `bytes` that arrived now, closing the windows that have ended first.
    pub fn arrived(&mut self, bytes: u64) -> Result<(), TooSlow> {
        self.check()?;
        self.in_window += bytes;
        Ok(())
    }

    /// Closes the current window if it has ended: an error when it held too few bytes.
    pub fn check(&mut self) -> Result<(), TooSlow> {
        let now = Instant::now();
        while now >= self.window_end() {
            if self.in_window < self.rate.min_bytes {
                return Err(TooSlow(self.in_window));
            }
            self.window_start += self.rate.window;
            self.in_window = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_window_below_the_floor_ends_the_transfer() {
        let mut floor = RateFloor::start(MinRate { min_bytes: 100, window: Duration::from_secs(10) });
        floor.arrived(60).unwrap();
        tokio::time::advance(Duration::from_secs(5)).await;
        floor.arrived(60).unwrap();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(floor.check(), Ok(()), "120 bytes in the first window pass");
        floor.arrived(10).unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(floor.arrived(5), Err(TooSlow(10)), "10 bytes in the second do not");
    }
}
