//! What EventBridge schedules do in a deployment: the `audit_digest` function, here every minute
//! (hourly in AWS) and once at start, so `audit verify` has a digest to check today against; and
//! `feed_poll` and `monitor_poll`, every `VAULTSTREAM_FEED_POLL_SECONDS` /
//! `VAULTSTREAM_MONITOR_POLL_SECONDS` (60 here, 15 minutes in AWS).

use std::time::Duration;

use tokio::sync::watch;
use vaultstream_functions::handlers::audit_digest::AuditDigest;
use vaultstream_functions::handlers::feed_poll::FeedPoll;
use vaultstream_functions::handlers::monitor_poll::MonitorPoll;

pub const DIGEST_EVERY: Duration = Duration::from_secs(60);

pub fn audit_digests(digests: AuditDigest, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(DIGEST_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(e) = digests.digest_at(time::OffsetDateTime::now_utc()).await {
                        tracing::error!(error = %e, "the audit digest could not be written");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// How often the stack reads the feeds and lists the monitored buckets, unless
/// `VAULTSTREAM_FEED_POLL_SECONDS` / `VAULTSTREAM_MONITOR_POLL_SECONDS` say otherwise.
pub const POLL_EVERY: Duration = Duration::from_secs(60);

pub fn feed_polls(polls: FeedPoll, every: Duration, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let polls = std::sync::Arc::new(polls);
    periodic(every, shutdown, move |run| {
        let polls = std::sync::Arc::clone(&polls);
        async move {
            if let Err(e) = polls.poller.poll_all(&format!("local-feed-poll-{run}")).await {
                tracing::error!(error = %e, "the feeds could not be read");
            }
        }
    })
}

pub fn monitor_polls(polls: MonitorPoll, every: Duration, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let polls = std::sync::Arc::new(polls);
    periodic(every, shutdown, move |run| {
        let polls = std::sync::Arc::clone(&polls);
        async move {
            if let Err(e) = polls.poller.poll_all(&format!("local-monitor-poll-{run}")).await {
                tracing::error!(error = %e, "the monitors could not be read");
            }
        }
    })
}

/// Runs `work` every `every` (the first at once), one run at a time, until shutdown.
fn periodic<F, Fut>(every: Duration, mut shutdown: watch::Receiver<bool>, work: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut run = 0u64;
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    run += 1;
                    work(run).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}
