//! `feed_poll`: on a schedule (EventBridge, every 15 minutes), reads every subscribed feed and
//! imports each new media item once through the URL import (the import queue).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use tracing::Instrument;
use vaultstream::aws::{DynamoFeeds, SqsImportQueue};
use vaultstream::ingest::feed_poll::{FeedPoller, FEED_TIME_LIMIT};
use vaultstream::ingest::import::ImportService;
use vaultstream::ingest::ports::FeedStoreError;
use vaultstream::ingest::url_fetch::GuardedFetcher;

use crate::env::{ConfigError, Env};
use crate::handlers::import_fetch::fetch_policy;
use crate::wiring::{self, Aws};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct FeedPoll {
    pub poller: FeedPoller,
}

impl FeedPoll {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let policy = fetch_policy(env)?;
        let fetcher = GuardedFetcher::new(policy, CONNECT_TIMEOUT, FEED_TIME_LIMIT);
        let audit = wiring::audit(env, aws)?;
        let imports = ImportService {
            catalog: wiring::catalog(env, aws)?,
            queue: Arc::new(SqsImportQueue::new(aws.sqs().clone(), wiring::name(env, "VAULTSTREAM_IMPORT_QUEUE_URL")?)),
            audit: audit.clone(),
            policy,
        };
        let poller = FeedPoller {
            feeds: Arc::new(DynamoFeeds::new(aws.dynamodb().clone(), wiring::name(env, "VAULTSTREAM_FEEDS_TABLE")?)),
            imports,
            fetcher: Arc::new(fetcher),
            audit,
        };
        Ok(FeedPoll { poller })
    }

    /// Polls every feed. A store that cannot be read fails the invocation, so the schedule's
    /// retry and the function's error alarm see it; one feed's trouble is recorded on that feed.
    pub async fn handle(&self, event: EventBridgeEvent<serde_json::Value>) -> Result<usize, FeedStoreError> {
        let run_id = event.id.unwrap_or_else(|| "scheduled".into());
        let span = tracing::info_span!("feed_poll", request_id = %run_id);
        async {
            let polled = self.poller.poll_all(&run_id).await?;
            tracing::info!(feeds = polled, "feeds polled");
            Ok(polled)
        }
        .instrument(span)
        .await
    }
}
