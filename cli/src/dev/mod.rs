//! The whole product on one machine, with no AWS account and no Docker (`vaultstream dev`, and
//! the stack `vaultstream demo` drives): moto on 127.0.0.1 provisioned by the same bootstrap as
//! LocalStack and the tests, the real function handlers behind an API Gateway stand-in, a
//! CloudFront edge stand-in that checks signed cookies, and the glue moto lacks (SQS → dispatch,
//! a Batch job runner with the real transcoder, job events → job_events).

pub mod change_archive;
pub mod client;
pub mod drop_zone;
pub mod edge;
pub mod emulator;
pub mod gateway;
pub mod http;
pub mod jobs;
pub mod pipeline;
pub mod schedule;
pub mod site;
pub mod state;
pub mod tokens;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::config::{Credentials, Region};
use tokio::sync::watch;
use vaultstream::cdn::{PemPolicySigner, TenantHosts, TrustedKeys};
use vaultstream_functions::env::Env;
use vaultstream_functions::handlers::audit_digest::AuditDigest;
use vaultstream_functions::handlers::{
    authorizer::Authorizer, captions::Captions, content::Content, dispatch::Dispatch, feed_poll::FeedPoll, import_fetch::ImportFetch,
    job_events::JobEvents, key_delivery::KeyDelivery, manifest::Manifest, monitor_poll::MonitorPoll, playback::Playback,
    upload_url::UploadUrl,
};
use vaultstream_functions::runtime::HttpFunction;
use vaultstream_functions::wiring::Aws;

use crate::dev::emulator::Emulator;
use crate::dev::state::{Identity, StackInfo, StateDir, StateLock};

/// Tenant hosts are `{label}.cdn.localhost`; browsers resolve `*.localhost` to loopback.
pub const CDN_DOMAIN: &str = "localhost";
/// The hash CloudFront signatures use here (announced with `CloudFront-Hash-Algorithm`).
pub const HASH_ALGORITHM: &str = "SHA256";
/// Settings a developer may override from the environment when starting the stack.
pub const TUNABLES: [&str; 9] = [
    "VAULTSTREAM_MULTIPART_THRESHOLD_BYTES",
    "VAULTSTREAM_IMPORT_TIME_LIMIT_SECONDS",
    "VAULTSTREAM_IMPORT_MIN_RATE",
    "VAULTSTREAM_IMPORT_PART_BYTES",
    "VAULTSTREAM_MAX_UPLOAD_BYTES",
    "VAULTSTREAM_PLAYBACK_TTL_SECONDS",
    "VAULTSTREAM_JWT_LEEWAY_SECONDS",
    "VAULTSTREAM_AUDIT_SHARDS",
    // A GCS emulator for bucket monitors (gcp-storage-emulator), read without authentication.
    "VAULTSTREAM_GCS_ENDPOINT",
];

pub struct Options {
    pub state_dir: PathBuf,
    /// The API's port; the edge listens on the next one and moto on the one after. 0: any free.
    pub port: u16,
    pub workers: usize,
    /// URL imports may fetch from http://127.0.0.1 (test servers, a local media folder served
    /// over HTTP); no other private address, ever.
    pub import_allow_loopback: bool,
}

/// How long each phase of starting took, in seconds.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct StartTimes {
    pub emulator_seconds: f64,
    pub provision_seconds: f64,
}

pub struct LocalStack {
    pub info: StackInfo,
    pub state: StateDir,
    pub identity: Arc<Identity>,
    pub times: StartTimes,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    emulator: Arc<tokio::sync::Mutex<Option<Emulator>>>,
    _lock: StateLock,
}

/// The transcoder binary built beside this one.
pub fn transcoder_binary() -> Result<PathBuf> {
    let here = std::env::current_exe().context("locating the vaultstream binary")?;
    let sibling = here.with_file_name("vaultstream-transcode");
    if sibling.exists() {
        return Ok(sibling);
    }
    bail!("vaultstream-transcode is not next to {}: build the workspace first (cargo build --workspace --bins)", here.display())
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "vaultstream-dev"))
        .load()
        .await
}

fn free_port(port: u16, what: &str, flag: &str) -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
        format!("cannot listen on 127.0.0.1:{port} for the {what}: the port is taken; stop what uses it or pass {flag}")
    })?;
    Ok(listener.local_addr()?.port())
}

impl LocalStack {
    pub async fn start(options: &Options) -> Result<LocalStack> {
        let state = StateDir::new(&options.state_dir)?;
        let lock = state.lock()?;
        let identity = Arc::new(state.identity()?);
        let cloudfront_pem = state.cloudfront_key()?;
        let scratch = state.path("scratch");
        std::fs::create_dir_all(&scratch)?;

        let next = |offset: u16| if options.port == 0 { 0 } else { options.port.saturating_add(offset) };
        let api_listener = http::bind(options.port, "API", "--port N").await?;
        let edge_listener = http::bind(next(1), "CDN edge", "--port N (the edge takes N+1)").await?;
        let emulator_port = free_port(next(2), "emulator", "--port N (moto takes N+2)")?;
        let ftp_port = free_port(next(3), "FTPS drop zone", "--port N (the drop zone takes N+3)")?;
        let (api_port, cdn_port) = (api_listener.local_addr()?.port(), edge_listener.local_addr()?.port());

        let mut times = StartTimes::default();
        let started = Instant::now();
        let python = emulator::python().await?;
        std::fs::create_dir_all(state.path("logs"))?;
        let emulator =
            Emulator::start(&python, emulator_port, &state.path("emulator.state"), &scratch, &state.path("logs/emulator.log")).await?;
        times.emulator_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let config = sdk_config(&emulator.endpoint).await;
        let outputs = crate::provision::provision(&crate::provision::Clients::from_sdk_config(&config), &identity.prefix)
            .await
            .context("provisioning the local stack in moto")?;
        times.provision_seconds = started.elapsed().as_secs_f64();

        let api_url = format!("http://127.0.0.1:{api_port}");
        let info = StackInfo {
            pid: std::process::id(),
            api_url: api_url.clone(),
            cdn_url: format!("http://{{tenant-label}}.cdn.{CDN_DOMAIN}:{cdn_port}"),
            emulator_url: emulator.endpoint.clone(),
            viewer_url: format!("http://localhost:{cdn_port}/"),
            ftp_url: format!("ftps://127.0.0.1:{ftp_port}"),
            outputs: outputs.clone(),
        };
        let mut env = function_env(&info, &identity, &cloudfront_pem, cdn_port);
        if options.import_allow_loopback {
            env = env.with("VAULTSTREAM_IMPORT_ALLOW_LOOPBACK", "true").with("VAULTSTREAM_IMPORT_ALLOW_HTTP", "true");
        }
        let aws = Aws::from_sdk_config(&config, true);

        let secret = vaultstream_functions::wiring::service_secret(&env, &aws).await?;
        let hosts = Arc::new(TenantHosts::new(&secret, CDN_DOMAIN).with_origin("http", Some(cdn_port)));
        let gateway = Arc::new(gateway(&env, &aws, format!("127.0.0.1:{api_port}")).await?);
        let edge = Arc::new(edge::Edge {
            keys: trusted_keys(&cloudfront_pem, &identity.cloudfront_key_pair_id)?,
            hosts: Arc::clone(&hosts),
            s3: aws.s3().clone(),
            origin_bucket: outputs.origin_bucket.clone(),
            gateway: Arc::clone(&gateway),
            site: site::Site::new(Arc::clone(&identity), Arc::clone(&hosts), cdn_port)?,
            api_authority: format!("127.0.0.1:{api_port}"),
            cdn_domain: format!("cdn.{CDN_DOMAIN}"),
        });

        let emulator = Arc::new(tokio::sync::Mutex::new(Some(emulator)));
        let snapshotter = Arc::clone(&emulator);
        let pipeline = Arc::new(pipeline::Pipeline {
            aws: aws.clone(),
            outputs,
            dispatch: Dispatch::from_env(&env, &aws).await?,
            import_fetch: ImportFetch::from_env(&env, &aws).await?,
            job_events: JobEvents::from_env(&env, &aws).await?,
            transcoder: transcoder_binary()?,
            emulator_endpoint: info.emulator_url.clone(),
            scratch: scratch.join("jobs"),
            logs: state.path("logs"),
            jobs_file: state.path("jobs.json"),
            workers: options.workers,
            after_job: Arc::new(move || {
                let emulator = Arc::clone(&snapshotter);
                tokio::spawn(async move {
                    if let Some(e) = emulator.lock().await.as_ref() {
                        if let Err(err) = e.snapshot().await {
                            tracing::warn!(error = %err, "emulator snapshot failed");
                        }
                    }
                })
            }),
        });

        let (shutdown, watcher) = watch::channel(false);
        let mut tasks = pipeline.start(watcher.clone()).await?;
        tasks.push(schedule::audit_digests(AuditDigest::from_env(&env, &aws).await?, watcher.clone()));
        let feed_every = poll_period("VAULTSTREAM_FEED_POLL_SECONDS")?;
        tasks.push(schedule::feed_polls(FeedPoll::from_env(&env, &aws).await?, feed_every, watcher.clone()));
        let monitor_every = poll_period("VAULTSTREAM_MONITOR_POLL_SECONDS")?;
        tasks.push(schedule::monitor_polls(MonitorPoll::from_env(&env, &aws).await?, monitor_every, watcher.clone()));
        let drops = Arc::new(vaultstream_functions::handlers::drop_zone::DropZone::from_env(&env, &aws).await?);
        let login = drop_zone::TokenLogin {
            authenticator: Arc::new(vaultstream_functions::wiring::authenticator(&env, &aws)?),
            audit: vaultstream_functions::wiring::audit(&env, &aws)?,
            logins: Arc::default(),
        };
        let revocations: Arc<dyn vaultstream::identity::SessionRevocations> = vaultstream_functions::wiring::sessions(&env, &aws)?;
        let (s3, bucket) = (aws.s3().clone(), info.outputs.source_bucket.clone());
        let max_bytes = env.number("VAULTSTREAM_MAX_UPLOAD_BYTES", vaultstream::ingest::upload::UploadSettings::DEFAULT_MAX_BYTES)?;
        let storage = move || drop_zone::DropStorage {
            s3: s3.clone(),
            bucket: bucket.clone(),
            sources: Arc::new(vaultstream::aws::S3SourceStore::new(s3.clone(), bucket.clone())),
            drops: Arc::clone(&drops),
            revocations: Arc::clone(&revocations),
            max_bytes,
        };
        tasks.push(drop_zone::serve(storage, login, drop_zone::certificate(&state.root)?, ftp_port, watcher.clone())?);
        let archiver = change_archive::ChangeArchiver::new(
            &config,
            aws.s3().clone(),
            &info.outputs.audit_table,
            &info.outputs.audit_archive_bucket,
            Some(state.path("change-archive.json")),
        );
        tasks.push(change_archive::run(archiver, watcher.clone()));
        let api = Arc::clone(&gateway);
        tasks.push(http::serve(api_listener, watcher.clone(), gateway::MAX_BODY_BYTES + 1, move |request| {
            let api = Arc::clone(&api);
            async move { api.serve(request.into()).await }
        }));
        tasks.push(http::serve(edge_listener, watcher, gateway::MAX_BODY_BYTES + 1, move |request| {
            let edge = Arc::clone(&edge);
            async move { edge.serve(request).await }
        }));
        state.write_stack_info(&info)?;
        Ok(LocalStack { info, state, identity, times, shutdown, tasks, emulator, _lock: lock })
    }

    /// Stops everything it started: listeners, runner (its transcoders are killed), moto (which
    /// writes its snapshot on the way out).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
        if let Some(emulator) = self.emulator.lock().await.take() {
            emulator.stop().await;
        }
        self.state.clear_stack_info();
    }
}

/// A schedule's period from the variable `name`, in seconds, or [`schedule::POLL_EVERY`].
fn poll_period(name: &str) -> Result<Duration> {
    match std::env::var(name) {
        Ok(seconds) => Ok(Duration::from_secs(
            seconds
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .with_context(|| format!("{name} must be a whole number of seconds, more than 0"))?,
        )),
        Err(_) => Ok(schedule::POLL_EVERY),
    }
}

fn trusted_keys(private_pem: &Path, key_pair_id: &str) -> Result<TrustedKeys> {
    let pem = zeroize::Zeroizing::new(std::fs::read(private_pem)?);
    let signer = PemPolicySigner::from_pem(&pem, key_pair_id, vaultstream::cdn::HashAlgorithm::Sha256)?;
    TrustedKeys::default().with_pem(key_pair_id, signer.public_key_pem()?.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// What every function reads, as the deployment sets it, pointed at this stack.
pub fn function_env(info: &StackInfo, identity: &Identity, cloudfront_pem: &Path, cdn_port: u16) -> Env {
    let o = &info.outputs;
    let mut pairs: HashMap<String, String> = [
        ("VAULTSTREAM_SOURCE_BUCKET", o.source_bucket.clone()),
        ("VAULTSTREAM_ORIGIN_BUCKET", o.origin_bucket.clone()),
        ("VAULTSTREAM_CONTENT_TABLE", o.content_table.clone()),
        ("VAULTSTREAM_TOKENS_TABLE", o.tokens_table.clone()),
        ("VAULTSTREAM_FEEDS_TABLE", o.feeds_table.clone()),
        ("VAULTSTREAM_MONITOR_SECRET_PREFIX", "vaultstream-local/monitors/".to_string()),
        // What no tenant's monitor may read: the stack's own buckets, and moto's account.
        ("VAULTSTREAM_PLATFORM_BUCKETS", [&o.source_bucket, &o.origin_bucket, &o.audit_archive_bucket].map(String::as_str).join(",")),
        ("VAULTSTREAM_PLATFORM_ACCOUNT", "123456789012".to_string()),
        // What ftp_auth would hand Transfer Family; the local drop zone serves its own sessions.
        ("VAULTSTREAM_DROP_ROLE_ARN", "arn:aws:iam::000000000000:role/vaultstream-local-drop-zone".to_string()),
        ("VAULTSTREAM_AUDIT_TABLE", o.audit_table.clone()),
        ("VAULTSTREAM_AUDIT_ARCHIVE_BUCKET", o.audit_archive_bucket.clone()),
        ("VAULTSTREAM_AUDIT_DIGEST_KEY_ID", o.audit_digest_key_id.clone()),
        ("VAULTSTREAM_SERVICE_SECRET_ARN", o.service_secret_arn.clone()),
        ("VAULTSTREAM_RETRY_QUEUE_URL", o.retry_queue_url.clone()),
        ("VAULTSTREAM_FAILURES_DLQ_URL", o.failures_dlq_url.clone()),
        ("VAULTSTREAM_IMPORT_QUEUE_URL", o.import_queue_url.clone()),
        ("VAULTSTREAM_CONTENT_FAILED_BUS", o.content_failed_bus.clone()),
        ("VAULTSTREAM_JOB_QUEUE_VIDEO_GPU", o.video_gpu_job_queue.clone()),
        ("VAULTSTREAM_JOB_QUEUE_VIDEO_CPU", o.video_cpu_job_queue.clone()),
        ("VAULTSTREAM_JOB_QUEUE_AUDIO", o.audio_job_queue.clone()),
        ("VAULTSTREAM_JOB_DEFINITION_VIDEO_GPU", o.video_gpu_job_definition.clone()),
        ("VAULTSTREAM_JOB_DEFINITION_VIDEO_CPU", o.video_cpu_job_definition.clone()),
        ("VAULTSTREAM_JOB_DEFINITION_AUDIO", o.audio_job_definition.clone()),
        ("VAULTSTREAM_API_BASE_URL", info.api_url.clone()),
        ("VAULTSTREAM_CDN_DOMAIN", CDN_DOMAIN.to_string()),
        ("VAULTSTREAM_CDN_SCHEME", "http".to_string()),
        ("VAULTSTREAM_CDN_PORT", cdn_port.to_string()),
        ("VAULTSTREAM_JWT_ISSUER", identity.issuer.clone()),
        ("VAULTSTREAM_JWT_AUDIENCE", identity.audience.clone()),
        ("VAULTSTREAM_JWT_ALGORITHMS", "HS256".to_string()),
        ("VAULTSTREAM_JWT_HS256_SECRET", identity.hs256_secret.clone()),
        ("VAULTSTREAM_CLOUDFRONT_KEY_PAIR_ID", identity.cloudfront_key_pair_id.clone()),
        ("VAULTSTREAM_CLOUDFRONT_PRIVATE_KEY_FILE", cloudfront_pem.display().to_string()),
        ("VAULTSTREAM_CLOUDFRONT_HASH_ALGORITHM", HASH_ALGORITHM.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for name in TUNABLES {
        if let Ok(value) = std::env::var(name) {
            pairs.insert(name.to_string(), value);
        }
    }
    // DRM vendors' licence servers, from the environment as a deployment's parameters.
    for reader in ["playback", "manifest"] {
        pairs.extend(crate::provision::drm_settings(reader));
    }
    Env::from_pairs(pairs)
}

async fn gateway(env: &Env, aws: &Aws, api_host: String) -> Result<gateway::Gateway> {
    let mut functions: HashMap<String, gateway::Handler> = HashMap::new();
    functions.insert("upload_url".into(), gateway::handler(UploadUrl::from_env(env, aws).await?));
    functions.insert("content".into(), gateway::handler(Content::from_env(env, aws).await?));
    functions.insert("captions".into(), gateway::handler(Captions::from_env(env, aws).await?));
    functions.insert("playback".into(), gateway::handler(Playback::from_env(env, aws).await?));
    functions.insert("manifest".into(), gateway::handler(Manifest::from_env(env, aws).await?));
    functions.insert("key_delivery".into(), gateway::handler(KeyDelivery::from_env(env, aws).await?));
    gateway::Gateway::new(functions, Authorizer::from_env(env, aws).await?, api_host)
}
