//! What EventBridge schedules do in a deployment: the `audit_digest` function, here every minute
//! (hourly in AWS) and once at start, so `audit verify` has a digest to check today against.

use std::time::Duration;

use tokio::sync::watch;
use vaultstream_functions::handlers::audit_digest::AuditDigest;

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
