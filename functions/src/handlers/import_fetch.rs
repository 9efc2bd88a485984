//! `import_fetch`: the import queue's consumer. Each message is a URL import accepted by
//! `POST /v1/content/import` (or a feed item's), or an object a bucket monitor found; the file is
//! streamed into its source key (the S3 event then takes
//! it to dispatch), and failures that can recur come back as `batchItemFailures`.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use vaultstream::aws::{S3SourceStore, SqsRedelivery};
use vaultstream::ingest::import_fetch::{ImportSettings, ImportWorker};
use vaultstream::ingest::monitor_poll::MonitoredObjects;
use vaultstream::ingest::ports::QueueMessage;
use vaultstream::ingest::rate_floor::MinRate;
use vaultstream::ingest::upload::UploadSettings;
use vaultstream::ingest::url_fetch::GuardedFetcher;
use vaultstream::ingest::url_guard::FetchPolicy;

use crate::env::{ConfigError, Env};
use crate::handlers::dispatch::{batch_response, failure_reports, message};
use crate::wiring::{self, Aws};

/// S3's smallest part.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ImportFetch {
    pub worker: ImportWorker,
}

/// What the fetcher may reach beyond public https: nothing, unless the local stack says so.
pub fn fetch_policy(env: &Env) -> Result<FetchPolicy, ConfigError> {
    let flag = |name: &str| match env.optional(name) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError::new(name, format!("must be true or false, not {other:?}"))),
    };
    Ok(FetchPolicy { allow_http: flag("VAULTSTREAM_IMPORT_ALLOW_HTTP")?, allow_loopback: flag("VAULTSTREAM_IMPORT_ALLOW_LOOPBACK")? })
}

pub fn settings(env: &Env) -> Result<ImportSettings, ConfigError> {
    let mut settings = ImportSettings::new();
    settings.max_bytes = env.number("VAULTSTREAM_MAX_UPLOAD_BYTES", UploadSettings::DEFAULT_MAX_BYTES)?;
    settings.time_limit =
        Duration::from_secs(env.number("VAULTSTREAM_IMPORT_TIME_LIMIT_SECONDS", ImportSettings::DEFAULT_TIME_LIMIT.as_secs())?);
    settings.part_size = env.number("VAULTSTREAM_IMPORT_PART_BYTES", ImportSettings::DEFAULT_PART_SIZE)?;
    if settings.part_size < MIN_PART_SIZE {
        return Err(ConfigError::new("VAULTSTREAM_IMPORT_PART_BYTES", format!("must be at least {MIN_PART_SIZE} (S3's smallest part)")));
    }
    if settings.time_limit.is_zero() {
        return Err(ConfigError::new("VAULTSTREAM_IMPORT_TIME_LIMIT_SECONDS", "must be more than 0"));
    }
    if let Some(rate) = env.optional("VAULTSTREAM_IMPORT_MIN_RATE") {
        settings.min_rate = min_rate(rate)
            .ok_or_else(|| ConfigError::new("VAULTSTREAM_IMPORT_MIN_RATE", format!("{rate:?} is not BYTES/SECONDS (such as 262144/30)")))?;
    }
    Ok(settings)
}

/// `BYTES/SECONDS`: at least BYTES in every SECONDS.
fn min_rate(text: &str) -> Option<MinRate> {
    let (bytes, seconds) = text.split_once('/')?;
    let (min_bytes, seconds): (u64, u64) = (bytes.trim().parse().ok()?, seconds.trim().parse().ok()?);
    (seconds > 0).then(|| MinRate { min_bytes, window: Duration::from_secs(seconds) })
}

impl ImportFetch {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let source_bucket = wiring::name(env, "VAULTSTREAM_SOURCE_BUCKET")?;
        let settings = settings(env)?;
        let fetcher = GuardedFetcher::new(fetch_policy(env)?, CONNECT_TIMEOUT, settings.time_limit + CONNECT_TIMEOUT);
        let sources = Arc::new(S3SourceStore::new(aws.s3().clone(), source_bucket));
        let worker = ImportWorker {
            catalog: wiring::catalog(env, aws)?,
            sources: sources.clone(),
            fetcher: Arc::new(fetcher),
            objects: MonitoredObjects { monitors: wiring::monitors(env, aws)?, buckets: wiring::cloud_buckets(env, aws)? },
            drops: sources.clone(),
            failures: failure_reports(env, aws)?,
            redelivery: Arc::new(SqsRedelivery::new(aws.sqs().clone())),
            audit: wiring::audit(env, aws)?,
            settings,
        };
        Ok(ImportFetch { worker })
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let messages: Vec<QueueMessage> = event.records.iter().filter_map(message).collect();
        let failed = self.worker.handle_batch(&messages).await;
        tracing::info!(records = event.records.len(), retried = failed.len(), "import batch handled");
        batch_response(failed)
    }
}
