//! How long to wait before trying again after a failure that can recur: 30 s, doubling with each
//! failed attempt, never more than 15 minutes (SQS's longest message delay).

use std::time::Duration;

pub const BASE_SECONDS: u64 = 30;
pub const CAP_SECONDS: u64 = 15 * 60;
/// Attempts in all, the first included, before content is given up on.
pub const MAX_ATTEMPTS: u32 = 5;

/// The wait after attempt `failed_attempt` (1-based) failed.
pub fn delay_after(failed_attempt: u32) -> Duration {
    let exponent = failed_attempt.saturating_sub(1).min(20);
    Duration::from_secs((BASE_SECONDS << exponent).min(CAP_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_thirty_seconds_and_caps_at_fifteen_minutes() {
        let waits: Vec<u64> = (1..=7).map(|n| delay_after(n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(delay_after(0).as_secs(), 30);
        assert_eq!(delay_after(u32::MAX).as_secs(), 900);
    }
}
