//! `monitor_poll`: on a schedule (EventBridge, every 15 minutes), lists every monitored bucket
//! prefix and imports each new object version once through the import queue (`import_fetch`
//! then copies it with the monitor's access).

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use tracing::Instrument;
use vaultstream::aws::SqsImportQueue;
use vaultstream::ingest::import::ImportService;
use vaultstream::ingest::monitor_poll::MonitorPoller;
use vaultstream::ingest::ports::MonitorStoreError;
use vaultstream::ingest::upload::UploadSettings;

use crate::env::{ConfigError, Env};
use crate::handlers::import_fetch::fetch_policy;
use crate::wiring::{self, Aws};

pub struct MonitorPoll {
    pub poller: MonitorPoller,
}

impl MonitorPoll {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let audit = wiring::audit(env, aws)?;
        let imports = ImportService {
            catalog: wiring::catalog(env, aws)?,
            queue: Arc::new(SqsImportQueue::new(aws.sqs().clone(), wiring::name(env, "VAULTSTREAM_IMPORT_QUEUE_URL")?)),
            audit: audit.clone(),
            policy: fetch_policy(env)?,
        };
        let poller = MonitorPoller {
            monitors: wiring::monitors(env, aws)?,
            imports,
            buckets: wiring::cloud_buckets(env, aws)?,
            audit,
            max_bytes: env.number("VAULTSTREAM_MAX_UPLOAD_BYTES", UploadSettings::DEFAULT_MAX_BYTES)?,
        };
        Ok(MonitorPoll { poller })
    }

    /// Polls every monitor. A store that cannot be read fails the invocation, so the schedule's
    /// retry and the function's error alarm see it; one bucket's trouble is recorded on its monitor.
    pub async fn handle(&self, event: EventBridgeEvent<serde_json::Value>) -> Result<usize, MonitorStoreError> {
        let run_id = event.id.unwrap_or_else(|| "scheduled".into());
        let span = tracing::info_span!("monitor_poll", request_id = %run_id);
        async {
            let polled = self.poller.poll_all(&run_id).await?;
            tracing::info!(monitors = polled, "monitors polled");
            Ok(polled)
        }
        .instrument(span)
        .await
    }
}
