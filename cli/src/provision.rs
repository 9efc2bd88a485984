//! Provisions a deployment's resources in an AWS emulator: the one code path behind the
//! Docker-free local stack, the integration tests (moto) and LocalStack's init hook. An operator
//! tool, not a rule: it lives with the CLI.
//!
//! It creates what CDK and Terraform declare for the same deployment (`infra/`), with the same
//! protections where the emulator carries them: an Object Lock (compliance) audit archive, a ledger
//! table with deletion protection, point-in-time recovery, a stream and a resource policy that
//! denies rewrites, SSE-KMS on the origin, private versioned buckets, a source bucket whose
//! `ObjectCreated:*` events reach the ingest queue (and whose abandoned multipart uploads are
//! aborted), dead-letter queues, the Batch job queues and job definitions the transcoder runs
//! under (command and environment from `infra/contract.json`, as CDK and Terraform read them), and
//! the content-failed event bus. Running it again over the same prefix changes nothing and returns
//! the same outputs.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention, Event,
    ExpirationStatus, LifecycleRule, LifecycleRuleFilter, NotificationConfiguration, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, PublicAccessBlockConfiguration, QueueConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Transition, TransitionStorageClass,
    VersioningConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::{Deserialize, Serialize};

/// The AWS clients the bootstrap needs, pointed at the emulator: the ones every binary builds,
/// and IAM (for the Batch service role) that only provisioning uses.
#[derive(Clone)]
pub struct Clients {
    pub aws: vaultstream::aws::Clients,
    pub iam: aws_sdk_iam::Client,
}

impl Clients {
    /// Clients from a loaded SDK configuration; emulators need path-style S3 addressing.
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Clients { aws: vaultstream::aws::Clients::from_sdk_config(config, true), iam: aws_sdk_iam::Client::new(config) }
    }
}

/// The parts of `infra/contract.json` the bootstrap provisions from, exactly as CDK and
/// Terraform read them.
#[derive(Deserialize)]
struct Contract {
    transcoder: TranscoderContract,
    drm: DrmContract,
}

#[derive(Deserialize)]
struct DrmContract {
    settings: Vec<DrmSetting>,
}

#[derive(Deserialize)]
struct DrmSetting {
    env: String,
    default: String,
    read_by: Vec<String>,
}

/// The contract's DRM settings `reader` (`transcoder`, `playback`, ...) reads, each from the
/// environment the stack starts in, or the contract's default: a developer tries a DRM
/// vendor's key provider and licence servers locally as a deployment configures them.
pub fn drm_settings(reader: &str) -> Vec<(String, String)> {
    let contract: Contract = serde_json::from_str(CONTRACT_JSON).expect("infra/contract.json is built in");
    contract
        .drm
        .settings
        .into_iter()
        .filter(|s| s.read_by.iter().any(|r| r == reader))
        .map(|s| {
            let value = std::env::var(&s.env).unwrap_or(s.default);
            (s.env, value)
        })
        .collect()
}

#[derive(Deserialize)]
struct TranscoderContract {
    command: Vec<String>,
    parameters: std::collections::BTreeMap<String, String>,
    env: Vec<String>,
    chunking: ChunkingContract,
}

/// A chunked title's array and stitch job definitions, per video kind.
#[derive(Deserialize)]
struct ChunkingContract {
    kinds: Vec<String>,
    chunk_seconds: String,
    expire_after_days: i32,
    jobs: std::collections::BTreeMap<String, ChunkJobContract>,
}

#[derive(Deserialize)]
struct ChunkJobContract {
    command: Vec<String>,
    retry: RetryContract,
}

#[derive(Deserialize)]
struct RetryContract {
    attempts: i32,
    evaluate_on_exit: Vec<std::collections::BTreeMap<String, String>>,
}

const CONTRACT_JSON: &str = include_str!("../../infra/contract.json");

/// The Batch job queues and job definitions: the same names, sizes and timeouts as the deployment.
pub const JOB_KINDS: [(&str, u32, u32, u32); 3] =
    [("video-gpu", 4, 15000, 4 * 3600), ("video-cpu", 4, 7500, 8 * 3600), ("audio", 1, 1900, 3600)];
/// The image the local job definitions name; the local runner runs the built binary instead.
pub const LOCAL_IMAGE: &str = "vaultstream-transcoder:local";
/// The price per vCPU-second the local stack estimates costs with (EC2 Spot c7i, us-east-1).
pub const LOCAL_PRICE_PER_VCPU_SECOND: &str = "0.0000118";

/// What was provisioned, under the output names CDK and Terraform use (`infra/contract.json`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Outputs {
    pub source_bucket: String,
    pub origin_bucket: String,
    pub audit_archive_bucket: String,
    pub content_table: String,
    pub tokens_table: String,
    pub feeds_table: String,
    pub audit_table: String,
    pub content_key_id: String,
    pub audit_digest_key_id: String,
    pub cloudfront_signing_key_id: String,
    pub service_secret_arn: String,
    pub ingest_queue_url: String,
    pub ingest_dlq_url: String,
    pub retry_queue_url: String,
    pub failures_dlq_url: String,
    pub import_queue_url: String,
    pub import_dlq_url: String,
    pub video_gpu_job_queue: String,
    pub video_cpu_job_queue: String,
    pub audio_job_queue: String,
    pub video_gpu_job_definition: String,
    pub video_cpu_job_definition: String,
    pub audio_job_definition: String,
    pub content_failed_bus: String,
}

/// How long archived audit records are locked against deletion, in years (compliance mode).
pub const AUDIT_RETENTION_YEARS: i32 = 7;
/// Archived audit records move to cold storage after this many days.
pub const AUDIT_COLD_AFTER_DAYS: i32 = 90;
/// Receives before a message moves to its dead-letter queue.
pub const MAX_RECEIVES: u32 = 5;
/// The retry queue's default delivery delay, in seconds (job_events sets each message's own).
pub const RETRY_DELAY_SECONDS: u32 = 60;
/// Multipart uploads never completed are aborted after this many days.
pub const ABORT_UPLOADS_AFTER_DAYS: i32 = 2;

#[derive(Debug, thiserror::Error)]
#[error("could not provision {resource}: {message}")]
pub struct BootstrapError {
    pub resource: String,
    pub message: String,
}

fn failed<E: std::error::Error>(resource: &str) -> impl FnOnce(E) -> BootstrapError + '_ {
    move |e| BootstrapError { resource: resource.to_string(), message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string() }
}

/// A prefix becomes part of bucket, table, queue and alias names, so it is held to the strictest of
/// their rules: lowercase letters, digits and inner hyphens, 3 to 40 characters.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    let ok_chars = prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(3..=40).contains(&prefix.len()) || !ok_chars || prefix.starts_with('-') || prefix.ends_with('-') {
        return Err(format!("prefix {prefix:?} must be 3 to 40 lowercase letters, digits or inner hyphens"));
    }
    Ok(())
}

/// Creates (or finds) every resource of the deployment named by `prefix`.
pub async fn provision(clients: &Clients, prefix: &str) -> Result<Outputs, BootstrapError> {
    validate_prefix(prefix).map_err(|message| BootstrapError { resource: "the deployment".into(), message })?;
    let name = |role: &str| format!("{prefix}-{role}");

    let content_key_id = kms_key(clients, &name("content-keys"), KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await?;
    let cloudfront_signing_key_id = kms_key(clients, &name("cloudfront-signing"), KeySpec::Rsa2048, KeyUsageType::SignVerify).await?;
    // The origin bucket has its own key: CloudFront may decrypt stored objects with it, while the
    // content key only ever decrypts for key delivery.
    let origin_key_id = kms_key(clients, &name("origin-storage"), KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await?;
    let service_secret_arn = service_secret(clients, &name("service-secret")).await?;
    // Only the digest writer may sign with it: a ledger writer cannot forge a digest.
    let audit_digest_key_id = kms_key(clients, &name("audit-digest"), KeySpec::EccNistP256, KeyUsageType::SignVerify).await?;

    let content_table = name("content");
    let tokens_table = name("tokens");
    let audit_table = name("audit");
    let feeds_table = name("feeds");
    table(clients, &content_table, TableKind::Plain).await?;
    table(clients, &feeds_table, TableKind::Feeds).await?;
    table(clients, &tokens_table, TableKind::Plain).await?;
    table(clients, &audit_table, TableKind::Ledger).await?;

    let ingest_dlq_url = queue(clients, &name("ingest-dlq"), None, 0).await?;
    let ingest_queue_url = queue(clients, &name("ingest"), Some(&ingest_dlq_url), 0).await?;
    let failures_dlq_url = queue(clients, &name("failures-dlq"), None, 0).await?;
    let retry_queue_url = queue(clients, &name("retry"), Some(&failures_dlq_url), RETRY_DELAY_SECONDS).await?;
    let import_dlq_url = queue(clients, &name("import-dlq"), None, 0).await?;
    let import_queue_url = queue(clients, &name("import"), Some(&import_dlq_url), 0).await?;

    let source_bucket = name("source");
    let origin_bucket = name("origin");
    let audit_archive_bucket = name("audit-archive");
    bucket(clients, &source_bucket, false).await?;
    bucket(clients, &origin_bucket, false).await?;
    bucket(clients, &audit_archive_bucket, true).await?;
    origin_encryption(clients, &origin_bucket, &origin_key_id).await?;
    audit_archive_rules(clients, &audit_archive_bucket).await?;
    source_notifications(clients, &source_bucket, &ingest_queue_url).await?;
    source_lifecycle(clients, &source_bucket).await?;
    idempotency_expiry(clients, &content_table).await?;

    let tenant_role = transcoder_tenant_role(clients, &name("transcoder-tenant")).await?;
    let environment = [
        ("VAULTSTREAM_TENANT_ROLE_ARN", tenant_role.as_str()),
        ("VAULTSTREAM_SOURCE_BUCKET", source_bucket.as_str()),
        ("VAULTSTREAM_ORIGIN_BUCKET", origin_bucket.as_str()),
        ("VAULTSTREAM_CONTENT_TABLE", content_table.as_str()),
        ("VAULTSTREAM_AUDIT_TABLE", audit_table.as_str()),
        ("VAULTSTREAM_AUDIT_SHARDS", "1"),
        ("VAULTSTREAM_CONTENT_KEY_ID", content_key_id.as_str()),
        ("VAULTSTREAM_PRICE_PER_VCPU_SECOND", LOCAL_PRICE_PER_VCPU_SECOND),
    ];
    let drm = drm_settings("transcoder");
    let environment: Vec<(&str, &str)> = environment.into_iter().chain(drm.iter().map(|(k, v)| (k.as_str(), v.as_str()))).collect();
    batch(clients, prefix, &environment).await?;
    let content_failed_bus = event_bus(clients, &format!("{prefix}.content.failed")).await?;

    Ok(Outputs {
        source_bucket,
        origin_bucket,
        audit_archive_bucket,
        content_table,
        tokens_table,
        feeds_table,
        audit_table,
        content_key_id,
        audit_digest_key_id,
        cloudfront_signing_key_id,
        service_secret_arn,
        ingest_queue_url,
        ingest_dlq_url,
        retry_queue_url,
        failures_dlq_url,
        import_queue_url,
        import_dlq_url,
        // A kind's job queue and job definition share its name, as in CDK and Terraform.
        video_gpu_job_queue: name("video-gpu"),
        video_cpu_job_queue: name("video-cpu"),
        audio_job_queue: name("audio"),
        video_gpu_job_definition: name("video-gpu"),
        video_cpu_job_definition: name("video-cpu"),
        audio_job_definition: name("audio"),
        content_failed_bus,
    })
}

/// Abandoned multipart uploads (a creator who never completed) are aborted after two days, and
/// chunked titles' chunks expire after the contract's days, as CDK and Terraform do.
async fn source_lifecycle(clients: &Clients, bucket: &str) -> Result<(), BootstrapError> {
    let contract: Contract = serde_json::from_str(CONTRACT_JSON)
        .map_err(|e| BootstrapError { resource: "infra/contract.json".into(), message: e.to_string() })?;
    let abort = aws_sdk_s3::types::AbortIncompleteMultipartUpload::builder().days_after_initiation(ABORT_UPLOADS_AFTER_DAYS).build();
    let uploads = LifecycleRule::builder()
        .id("abort-abandoned-uploads")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("source/").build())
        .abort_incomplete_multipart_upload(abort)
        .build()
        .map_err(failed(bucket))?;
    let chunks = LifecycleRule::builder()
        .id("expire-chunks")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("chunks/").build())
        .expiration(aws_sdk_s3::types::LifecycleExpiration::builder().days(contract.transcoder.chunking.expire_after_days).build())
        .build()
        .map_err(failed(bucket))?;
    lifecycle(clients, bucket, vec![uploads, chunks]).await
}

async fn lifecycle(clients: &Clients, bucket: &str, rules: Vec<LifecycleRule>) -> Result<(), BootstrapError> {
    let lifecycle = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(failed(bucket))?;
    clients
        .aws
        .s3()
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(lifecycle)
        .send()
        .await
        .map_err(failed(bucket))?;
    Ok(())
}

/// Idempotency keys in the content table expire through its `expires_at` TTL.
async fn idempotency_expiry(clients: &Clients, table: &str) -> Result<(), BootstrapError> {
    let ttl = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name("expires_at")
        .build()
        .map_err(failed(table))?;
    match clients.aws.dynamodb().update_time_to_live().table_name(table).time_to_live_specification(ttl).send().await {
        Ok(_) => Ok(()),
        // Asking again for the TTL a table already has is refused; that is the state we want.
        Err(e) if aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string().contains("already enabled") => Ok(()),
        Err(e) => Err(failed(table)(e)),
    }
}

/// The Batch service role, an unmanaged compute environment (the emulator runs no instances),
/// and per kind a job queue and a job definition, both named `{prefix}-{kind}`.
async fn batch(clients: &Clients, prefix: &str, environment: &[(&str, &str)]) -> Result<(), BootstrapError> {
    let contract: Contract = serde_json::from_str(CONTRACT_JSON)
        .map_err(|e| BootstrapError { resource: "infra/contract.json".into(), message: e.to_string() })?;
    const PER_KIND: [&str; 3] = ["VAULTSTREAM_CHUNK_SECONDS", "VAULTSTREAM_CHUNK_JOB_DEFINITION", "VAULTSTREAM_STITCH_JOB_DEFINITION"];
    for name in &contract.transcoder.env {
        if !PER_KIND.contains(&name.as_str()) && !environment.iter().any(|(k, _)| k == name) {
            return Err(BootstrapError {
                resource: "the job definitions".into(),
                message: format!("the contract's transcoder reads {name}, which the bootstrap does not set"),
            });
        }
    }
    let role = batch_service_role(clients, &format!("{prefix}-batch-service")).await?;
    let environment_name = format!("{prefix}-local");
    let existing = clients
        .aws
        .batch()
        .describe_compute_environments()
        .compute_environments(&environment_name)
        .send()
        .await
        .map_err(failed(&environment_name))?;
    let environment_arn = match existing.compute_environments().first().and_then(|c| c.compute_environment_arn()) {
        Some(arn) => arn.to_string(),
        None => clients
            .aws
            .batch()
            .create_compute_environment()
            .compute_environment_name(&environment_name)
            .r#type(aws_sdk_batch::types::CeType::Unmanaged)
            .state(aws_sdk_batch::types::CeState::Enabled)
            .service_role(&role)
            .send()
            .await
            .map_err(failed(&environment_name))?
            .compute_environment_arn
            .unwrap_or_default(),
    };
    for (kind, vcpus, memory, timeout) in JOB_KINDS {
        let name = format!("{prefix}-{kind}");
        let queues = clients.aws.batch().describe_job_queues().job_queues(&name).send().await.map_err(failed(&name))?;
        if queues.job_queues().is_empty() {
            let order = aws_sdk_batch::types::ComputeEnvironmentOrder::builder().order(1).compute_environment(&environment_arn).build();
            clients
                .aws
                .batch()
                .create_job_queue()
                .job_queue_name(&name)
                .state(aws_sdk_batch::types::JqState::Enabled)
                .priority(1)
                .compute_environment_order(order)
                .send()
                .await
                .map_err(failed(&name))?;
        }
        // A video kind's run job splits long titles into its own chunk and stitch jobs.
        let chunking = &contract.transcoder.chunking;
        let splits = chunking.kinds.iter().any(|k| k == kind);
        let (chunk_name, stitch_name) = (format!("{name}-chunk"), format!("{name}-stitch"));
        let (chunk_definition, stitch_definition) = if splits { (chunk_name.as_str(), stitch_name.as_str()) } else { ("", "") };
        let mut kind_environment = environment.to_vec();
        kind_environment.extend([
            ("VAULTSTREAM_CHUNK_SECONDS", chunking.chunk_seconds.as_str()),
            ("VAULTSTREAM_CHUNK_JOB_DEFINITION", chunk_definition),
            ("VAULTSTREAM_STITCH_JOB_DEFINITION", stitch_definition),
        ]);
        let mut definitions = vec![(name.clone(), contract.transcoder.command.clone(), None)];
        if splits {
            for (job, definition) in [("chunk", &chunk_name), ("stitch", &stitch_name)] {
                let spec = chunking.jobs.get(job).ok_or_else(|| BootstrapError {
                    resource: "infra/contract.json".into(),
                    message: format!("transcoder.chunking.jobs has no {job}"),
                })?;
                definitions.push((definition.clone(), spec.command.clone(), Some(&spec.retry)));
            }
        }
        for (definition, command, retry) in definitions {
            let existing = clients
                .aws
                .batch()
                .describe_job_definitions()
                .job_definition_name(&definition)
                .status("ACTIVE")
                .send()
                .await
                .map_err(failed(&definition))?;
            if existing.job_definitions().is_empty() {
                let spec = JobSpec { command, parameters: &contract.transcoder.parameters, retry };
                register_job_definition(clients, &definition, &spec, &kind_environment, (vcpus, memory, timeout)).await?;
            }
        }
    }
    Ok(())
}

/// What a job definition runs.
struct JobSpec<'a> {
    command: Vec<String>,
    parameters: &'a std::collections::BTreeMap<String, String>,
    /// Batch's own retries (chunk children); `None`: one attempt, job_events retries.
    retry: Option<&'a RetryContract>,
}

async fn register_job_definition(
    clients: &Clients,
    name: &str,
    transcoder: &JobSpec<'_>,
    environment: &[(&str, &str)],
    (vcpus, memory, timeout): (u32, u32, u32),
) -> Result<(), BootstrapError> {
    use aws_sdk_batch::types::{
        ContainerProperties, EvaluateOnExit, JobTimeout, KeyValuePair, ResourceRequirement, ResourceType, RetryAction, RetryStrategy,
    };
    let requirement = |kind: ResourceType, value: u32| ResourceRequirement::builder().r#type(kind).value(value.to_string()).build();
    let mut container = ContainerProperties::builder()
        .image(LOCAL_IMAGE)
        .set_command(Some(transcoder.command.clone()))
        .resource_requirements(requirement(ResourceType::Vcpu, vcpus))
        .resource_requirements(requirement(ResourceType::Memory, memory))
        .user("10001");
    for (k, v) in environment {
        container = container.environment(KeyValuePair::builder().name(*k).value(*v).build());
    }
    // Retries are job_events' (with backoff, counted across attempts), except a chunk's, which
    // Batch retries alone as the contract says.
    let retry = match transcoder.retry {
        None => RetryStrategy::builder().attempts(1).build(),
        Some(spec) => {
            let mut retry = RetryStrategy::builder().attempts(spec.attempts);
            for rule in &spec.evaluate_on_exit {
                let action = if rule.get("action").map(String::as_str) == Some("RETRY") { RetryAction::Retry } else { RetryAction::Exit };
                let mut condition = EvaluateOnExit::builder().action(action);
                if let Some(v) = rule.get("on_exit_code") {
                    condition = condition.on_exit_code(v);
                }
                if let Some(v) = rule.get("on_status_reason") {
                    condition = condition.on_status_reason(v);
                }
                if let Some(v) = rule.get("on_reason") {
                    condition = condition.on_reason(v);
                }
                retry = retry.evaluate_on_exit(condition.build());
            }
            retry.build()
        }
    };
    clients
        .aws
        .batch()
        .register_job_definition()
        .job_definition_name(name)
        .r#type(aws_sdk_batch::types::JobDefinitionType::Container)
        .set_parameters(Some(transcoder.parameters.clone().into_iter().collect()))
        .container_properties(container.build())
        .timeout(JobTimeout::builder().attempt_duration_seconds(timeout as i32).build())
        .retry_strategy(retry)
        .propagate_tags(true)
        .send()
        .await
        .map_err(failed(name))?;
    Ok(())
}

async fn batch_service_role(clients: &Clients, name: &str) -> Result<String, BootstrapError> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    });
    role(clients, name, &trust).await
}

/// The role transcode jobs act for their tenant through (a session tagged `tenant`), as deployed;
/// the emulator evaluates no policies, so it carries the trust and nothing else.
async fn transcoder_tenant_role(clients: &Clients, name: &str) -> Result<String, BootstrapError> {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringLike": {"aws:RequestTag/tenant": "?*"}}
        }]
    });
    role(clients, name, &trust).await
}

async fn role(clients: &Clients, name: &str, trust: &serde_json::Value) -> Result<String, BootstrapError> {
    if let Ok(found) = clients.iam.get_role().role_name(name).send().await {
        if let Some(role) = found.role {
            return Ok(role.arn);
        }
    }
    let created =
        clients.iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await.map_err(failed(name))?;
    created.role.map(|r| r.arn).ok_or_else(|| BootstrapError { resource: name.into(), message: "IAM returned no role".into() })
}

async fn event_bus(clients: &Clients, name: &str) -> Result<String, BootstrapError> {
    match clients.aws.events().describe_event_bus().name(name).send().await {
        Ok(_) => return Ok(name.to_string()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
        Err(e) => return Err(failed(name)(e)),
    }
    clients.aws.events().create_event_bus().name(name).send().await.map_err(failed(name))?;
    Ok(name.to_string())
}

/// A KMS key found by its alias, created with the alias the first time.
async fn kms_key(clients: &Clients, alias_name: &str, spec: KeySpec, usage: KeyUsageType) -> Result<String, BootstrapError> {
    let alias = format!("alias/{alias_name}");
    let mut aliases = clients.aws.kms().list_aliases().into_paginator().items().send();
    while let Some(entry) = aliases.next().await {
        let entry = entry.map_err(failed(&alias))?;
        if entry.alias_name() == Some(alias.as_str()) {
            if let Some(key) = entry.target_key_id() {
                return Ok(key.to_string());
            }
        }
    }
    let created = clients
        .aws
        .kms()
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .description(format!("VaultStream {alias_name}"))
        .send()
        .await
        .map_err(failed(&alias))?;
    let key_id = created
        .key_metadata()
        .map(|m| m.key_id().to_string())
        .ok_or_else(|| BootstrapError { resource: alias.clone(), message: "KMS returned no key id".into() })?;
    clients.aws.kms().create_alias().alias_name(&alias).target_key_id(&key_id).send().await.map_err(failed(&alias))?;
    Ok(key_id)
}

/// The root secret for playback and key tokens: 32 random bytes, hex, generated once.
async fn service_secret(clients: &Clients, name: &str) -> Result<String, BootstrapError> {
    match clients.aws.secrets().describe_secret().secret_id(name).send().await {
        Ok(found) => {
            return found
                .arn()
                .map(str::to_string)
                .ok_or_else(|| BootstrapError { resource: name.into(), message: "secret has no ARN".into() })
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
        Err(e) => return Err(failed(name)(e)),
    }
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(bytes.as_mut()).map_err(|e| BootstrapError { resource: name.into(), message: e.to_string() })?;
    let created = clients
        .aws
        .secrets()
        .create_secret()
        .name(name)
        .description("VaultStream service secret: root of the playback and key token MACs")
        .secret_string(hex::encode(bytes.as_ref()))
        .send()
        .await
        .map_err(failed(name))?;
    created.arn().map(str::to_string).ok_or_else(|| BootstrapError { resource: name.into(), message: "secret has no ARN".into() })
}

#[derive(PartialEq)]
enum TableKind {
    Plain,
    /// Feed subscriptions: the sparse `subscriptions` index the poller scans.
    Feeds,
    /// The audit ledger: deletion protection, a stream for the archive, a policy denying rewrites.
    Ledger,
}

/// Every table keys on `pk` + `sk` (strings), on demand, with point-in-time recovery.
async fn table(clients: &Clients, name: &str, kind: TableKind) -> Result<(), BootstrapError> {
    let attribute = |n: &str| AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build();
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    let ledger = kind == TableKind::Ledger;
    let mut create = clients
        .aws
        .dynamodb()
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk").map_err(failed(name))?)
        .attribute_definitions(attribute("sk").map_err(failed(name))?)
        .key_schema(key("pk", KeyType::Hash).map_err(failed(name))?)
        .key_schema(key("sk", KeyType::Range).map_err(failed(name))?)
        .deletion_protection_enabled(ledger);
    if kind == TableKind::Feeds {
        create = create
            .attribute_definitions(attribute("subscription").map_err(failed(name))?)
            .global_secondary_indexes(subscriptions_index().map_err(failed(name))?);
    }
    if ledger {
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(failed(name))?;
        create = create
            .stream_specification(stream)
            .attribute_definitions(attribute("head_slot").map_err(failed(name))?)
            .global_secondary_indexes(heads_index().map_err(failed(name))?);
    }
    let created = match create.send().await {
        Ok(out) => out.table_description().and_then(|d| d.table_arn()).map(str::to_string),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => None,
        Err(e) => return Err(failed(name)(e)),
    };
    let recovery = PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build().map_err(failed(name))?;
    clients
        .aws
        .dynamodb()
        .update_continuous_backups()
        .table_name(name)
        .point_in_time_recovery_specification(recovery)
        .send()
        .await
        .map_err(failed(name))?;
    if let (true, Some(arn)) = (ledger, created) {
        clients
            .aws
            .dynamodb()
            .put_resource_policy()
            .resource_arn(&arn)
            .policy(ledger_policy(&arn).to_string())
            .send()
            .await
            .map_err(failed(name))?;
    }
    Ok(())
}

/// The ledger's sparse index of chain heads (`vaultstream::audit::ledger::HEAD_INDEX`): only head
/// items carry `head_slot`, so the digest writer reads a day's heads without scanning records.
fn heads_index() -> Result<aws_sdk_dynamodb::types::GlobalSecondaryIndex, aws_sdk_dynamodb::error::BuildError> {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    GlobalSecondaryIndex::builder()
        .index_name(vaultstream::audit::ledger::HEAD_INDEX)
        .key_schema(key("head_slot", KeyType::Hash)?)
        .key_schema(key("pk", KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
}

/// The feeds table's sparse index of subscriptions (`vaultstream::aws::feed_store::SUBSCRIPTIONS_INDEX`):
/// only subscriptions carry `subscription`, so the poller scans them without the items seen.
fn subscriptions_index() -> Result<aws_sdk_dynamodb::types::GlobalSecondaryIndex, aws_sdk_dynamodb::error::BuildError> {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection, ProjectionType};
    let key = KeySchemaElement::builder().attribute_name("subscription").key_type(KeyType::Hash).build()?;
    GlobalSecondaryIndex::builder()
        .index_name(vaultstream::aws::feed_store::SUBSCRIPTIONS_INDEX)
        .key_schema(key)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
}

/// The same explicit deny CDK and Terraform attach to the ledger table: nobody rewrites history.
pub fn ledger_policy(table_arn: &str) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LedgerIsAppendOnly",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": LEDGER_DENIED_ACTIONS,
            "Resource": table_arn
        }]
    })
}

/// What no principal may do to the audit ledger (`infra/contract.json` lists the same).
pub const LEDGER_DENIED_ACTIONS: [&str; 8] = [
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:DeleteTable",
    // The change stream is the archive's witness of every write: it stays on.
    "dynamodb:DisableKinesisStreamingDestination",
    "dynamodb:UpdateKinesisStreamingDestination",
];

async fn queue(clients: &Clients, name: &str, dead_letter_url: Option<&str>, delay_seconds: u32) -> Result<String, BootstrapError> {
    let mut create = clients
        .aws
        .sqs()
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .attributes(QueueAttributeName::MessageRetentionPeriod, (14 * 24 * 3600).to_string())
        .attributes(QueueAttributeName::DelaySeconds, delay_seconds.to_string());
    if let Some(dlq) = dead_letter_url {
        let dlq_arn = queue_arn(clients, dlq).await?;
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES});
        create = create.attributes(QueueAttributeName::RedrivePolicy, redrive.to_string());
    }
    let created = create.send().await.map_err(failed(name))?;
    created
        .queue_url()
        .map(str::to_string)
        .ok_or_else(|| BootstrapError { resource: name.into(), message: "SQS returned no queue URL".into() })
}

async fn queue_arn(clients: &Clients, url: &str) -> Result<String, BootstrapError> {
    let attrs = clients
        .aws
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(failed(url))?;
    attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| BootstrapError { resource: url.into(), message: "SQS returned no queue ARN".into() })
}

/// A private, versioned bucket; `object_lock` can only be chosen at creation. (CDK and Terraform
/// also deny plain HTTP; emulators are reached over plain HTTP on loopback, where that policy
/// would refuse every call, so the bootstrap leaves it out.)
async fn bucket(clients: &Clients, name: &str, object_lock: bool) -> Result<(), BootstrapError> {
    let region = clients.aws.s3().config().region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let mut create = clients.aws.s3().create_bucket().bucket(name).object_lock_enabled_for_bucket(object_lock);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region.as_str())).build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
        Err(e) => return Err(failed(name)(e)),
    }
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    clients.aws.s3().put_public_access_block().bucket(name).public_access_block_configuration(block).send().await.map_err(failed(name))?;
    let versioning = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    clients.aws.s3().put_bucket_versioning().bucket(name).versioning_configuration(versioning).send().await.map_err(failed(name))?;
    Ok(())
}

async fn origin_encryption(clients: &Clients, bucket: &str, key_id: &str) -> Result<(), BootstrapError> {
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(key_id)
        .build()
        .map_err(failed(bucket))?;
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).bucket_key_enabled(true).build();
    let config = ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(failed(bucket))?;
    clients
        .aws
        .s3()
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(failed(bucket))?;
    Ok(())
}

/// Compliance-mode retention (not even the root user can shorten it) and cold storage after 90
/// days, with no expiration rule: archived records are never deleted.
async fn audit_archive_rules(clients: &Clients, bucket: &str) -> Result<(), BootstrapError> {
    let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).years(AUDIT_RETENTION_YEARS).build();
    let lock = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(ObjectLockRule::builder().default_retention(retention).build())
        .build();
    // Set once: moto refuses to set it again on a bucket that holds objects (the digests).
    let current = clients.aws.s3().get_object_lock_configuration().bucket(bucket).send().await.ok();
    let retention = current
        .and_then(|c| c.object_lock_configuration)
        .and_then(|c| c.rule)
        .and_then(|r| r.default_retention)
        .map(|d| (d.mode, d.years.or(d.days.map(|days| days / 365))));
    if retention != Some((Some(ObjectLockRetentionMode::Compliance), Some(AUDIT_RETENTION_YEARS))) {
        clients
            .aws
            .s3()
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(lock)
            .send()
            .await
            .map_err(failed(bucket))?;
    }
    let transition = Transition::builder().days(AUDIT_COLD_AFTER_DAYS).storage_class(TransitionStorageClass::DeepArchive).build();
    let rule = LifecycleRule::builder()
        .id("cold-after-90-days")
        .status(ExpirationStatus::Enabled)
        // Only the archived change records go cold; digests stay readable for `audit verify`.
        .filter(LifecycleRuleFilter::builder().prefix("ledger/").build())
        .transitions(transition)
        .build()
        .map_err(failed(bucket))?;
    lifecycle(clients, bucket, vec![rule]).await
}

/// `ObjectCreated:*`, not only `Put`: a multipart upload completes as `CompleteMultipartUpload`.
async fn source_notifications(clients: &Clients, bucket: &str, ingest_url: &str) -> Result<(), BootstrapError> {
    let queue_arn = queue_arn(clients, ingest_url).await?;
    let allow_s3 = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SourceBucketEvents", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")}}
        }]
    });
    clients
        .aws
        .sqs()
        .set_queue_attributes()
        .queue_url(ingest_url)
        .attributes(QueueAttributeName::Policy, allow_s3.to_string())
        .send()
        .await
        .map_err(failed(ingest_url))?;
    let target = QueueConfiguration::builder()
        .id("ingest")
        .queue_arn(&queue_arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .build()
        .map_err(failed(bucket))?;
    let config = NotificationConfiguration::builder().queue_configurations(target).build();
    clients
        .aws
        .s3()
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .map_err(failed(bucket))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_fit_every_resource_name() {
        assert!(validate_prefix("vaultstream-local").is_ok());
        for bad in ["", "ab", "Upper", "-lead", "trail-", "under_score", "dot.ted", &"x".repeat(41)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_ledger_policy_denies_every_rewrite_to_everyone() {
        let policy = ledger_policy("arn:aws:dynamodb:us-east-1:123456789012:table/x-audit");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Principal"]["AWS"], "*");
        let actions: Vec<&str> = statement["Action"].as_array().unwrap().iter().filter_map(|a| a.as_str()).collect();
        for action in ["dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteTable"] {
            assert!(actions.contains(&action), "{action} not denied");
        }
        assert!(actions.iter().any(|a| a.starts_with("dynamodb:PartiQL")));
        let contract: serde_json::Value = serde_json::from_str(CONTRACT_JSON).unwrap();
        assert_eq!(statement["Action"], contract["ledger_denied_actions"], "the bootstrap denies what CDK and Terraform deny");
    }
}
