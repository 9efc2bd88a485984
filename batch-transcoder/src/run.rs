//! `vaultstream-transcode run`, the AWS Batch job: flow 3 for one content item.
//!
//! 1. The job touches only its own content: the source key must be this content's, and every
//!    record, key and object it names is under the tenant it was given.
//! 2. The record moves `QUEUED → PROCESSING`; anything else means another run owns it (nothing
//!    to do, exit 0).
//! 3. The content key: the stored KMS blob unwrapped, or a fresh data key whose blob is stored with
//!    a condition (a retry reuses it). It lives in memory only; no plaintext key touches disk.
//! 4. The source is copied to scratch, checked against the ETag dispatch accepted.
//! 5. The same pipeline as `local`, progress heartbeated into the record.
//! 6. The output goes to a new version prefix: segments, media playlists, master last; then the
//!    record is flipped to that version (`READY` or `PARTIAL`) with a conditional write. A job
//!    killed before the flip leaves an unreferenced prefix; its rerun publishes a whole new one.
//! 7. A bad source is `FAILED_INVALID` with the reason (exit 65); a temporary failure exits 75 and
//!    leaves the record for job_events to retry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;
use vaultstream::audit::{AuditEvent, AuditSink, Decision};
use vaultstream::aws::tenant_role::TenantRoleCredentials;
use vaultstream::aws::{Clients, DynamoCatalog, DynamoLedger, KmsKeyVault};
use vaultstream::catalog::{CatalogError, ContentCatalog, ContentRecord, ContentStatus, JobFigures, Publication, Rendition, UploadPlan};
use vaultstream::content_keys::KeyVaultError;
use vaultstream::ids::{ContentId, TenantId, VersionId};
use vaultstream::ingest::source_key::SourceKey;
use vaultstream::ingest::transcode_job::{self, KeyError};
use vaultstream::ladder::Profile;
use vaultstream::metrics::job::{self as job_metrics, JobEnd};
use vaultstream::origin::Published;

use crate::cli::RunArgs;
use crate::cmaf::CmafKey;
use crate::error::{Result, TranscodeError};
use crate::job::{self, Job};
use crate::keys::KeyStorage;
use crate::manifest::{cpu_seconds, round3, Manifest};
use crate::origin_upload::OriginUpload;
use crate::pipeline::{self, LocalOutput};
use crate::probe::Limits;
use crate::source::{self, Expected};
use vaultstream::catalog::CmafPublication;
use vaultstream::cenc::{Kid, CMAF_KEY_ID};
use vaultstream::KeyId;

/// How often progress is written to the record, at most.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The scratch folder of one run, removed however the run ends.
pub(crate) struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) struct Context {
    pub tenant: TenantId,
    pub content: ContentId,
    pub catalog: Arc<DynamoCatalog>,
    pub audit: DynamoLedger,
    /// The Batch job id (`AWS_BATCH_JOB_ID`), for the audit records.
    pub job_id: String,
    /// The tenant session's assumed-role ARN, when the job runs as one.
    pub acting_as: Option<String>,
}

/// The job's AWS clients: as its tenant's tagged session when a tenant role is configured, so
/// nothing the job does reaches another tenant's data.
async fn clients_for(args: &RunArgs, tenant: &TenantId, content: &ContentId) -> Result<(Clients, Option<String>)> {
    let (config, emulator) = Clients::load_config().await;
    let Some(role) = args.tenant_role_arn.as_deref().filter(|r| !r.trim().is_empty()) else {
        return Ok((Clients::from_sdk_config(&config, emulator), None));
    };
    let session = TenantRoleCredentials::new(&config, role, tenant, content);
    let acting_as = session.open().await.map_err(|e| {
        let message = format!("cannot act as tenant {tenant}: {}", e.message);
        if e.denied {
            TranscodeError::Fatal(message)
        } else {
            TranscodeError::Temporary(message)
        }
    })?;
    tracing::info!(acting_as = %acting_as, "acting as the tenant's session");
    Ok((Clients::from_sdk_config(&session.config(&config), emulator), Some(acting_as)))
}

impl Context {
    /// The job's clients, acting as the tenant where a tenant role is configured, and its context.
    pub async fn open(args: &RunArgs, tenant: &TenantId, content: &ContentId) -> Result<(Context, Clients)> {
        let (clients, acting_as) = clients_for(args, tenant, content).await?;
        let ctx = Context {
            acting_as,
            tenant: tenant.clone(),
            content: content.clone(),
            catalog: Arc::new(DynamoCatalog::new(clients.dynamodb().clone(), &args.content_table)),
            audit: DynamoLedger::new(clients.dynamodb().clone(), &args.audit_table, args.audit_shards),
            job_id: batch_job_id(),
        };
        Ok((ctx, clients))
    }

    pub async fn audit(&self, decision: Decision, reason: String) {
        let event = AuditEvent {
            tenant: self.tenant.clone(),
            actor: "transcoder".into(),
            action: "content.transcode".into(),
            resource: format!("content/{}", self.content),
            decision,
            reason,
            request_id: self.job_id.clone(),
            source_ip: None,
        };
        if let Err(e) = self.audit.append(event).await {
            tracing::error!(error = %e, "audit append failed");
        }
    }
}

pub(crate) fn catalog_error(e: CatalogError) -> TranscodeError {
    match e {
        CatalogError::Unavailable(m) => TranscodeError::Temporary(format!("the content table: {m}")),
        other => TranscodeError::Fatal(other.to_string()),
    }
}

pub(crate) fn key_error(e: KeyError) -> TranscodeError {
    match e {
        KeyError::Vault(KeyVaultError::Unavailable(m)) => TranscodeError::Temporary(format!("KMS: {m}")),
        KeyError::Catalog(e) => catalog_error(e),
        other => TranscodeError::Fatal(format!("the content key: {other}")),
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| TranscodeError::Fatal(format!("starting the async runtime: {e}")))?;
    let outcome = runtime.block_on(run_job(args));
    if let Err(e) = &outcome {
        let end = if matches!(e, TranscodeError::InvalidInput(_)) { JobEnd::Invalid } else { JobEnd::Failed };
        emit_metrics(&[job_metrics::ended(end, &batch_job_id(), vaultstream::clock::now_millis())]);
    }
    outcome
}

/// The Batch job id (`AWS_BATCH_JOB_ID`), or `manual` for a run outside Batch.
pub(crate) fn batch_job_id() -> String {
    std::env::var("AWS_BATCH_JOB_ID").unwrap_or_else(|_| "manual".into())
}

/// EMF lines on stdout, ahead of the summary line (which stays the last).
pub(crate) fn emit_metrics(documents: &[serde_json::Value]) {
    for document in documents {
        println!("{document}");
    }
}

async fn run_job(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let tenant = TenantId::parse(&args.tenant).map_err(|e| TranscodeError::Usage(format!("--tenant: {e}")))?;
    let content = ContentId::parse(&args.content_id).map_err(|e| TranscodeError::Usage(format!("--content-id: {e}")))?;
    let expected_key = SourceKey::new(tenant.clone(), content.clone()).object_key();
    if args.source_key != expected_key {
        return Err(TranscodeError::Usage(format!("--source-key must be {expected_key}: a job reads only its own content's upload")));
    }
    let profile = job::encoding(&args.encoding)?;
    let (limits, stall_timeout) = job::limits(&args.limits)?;
    if !(0.0..1.0).contains(&args.price_per_vcpu_second) {
        return Err(TranscodeError::Usage("--price-per-vcpu-second must be a price in dollars from 0 up to 1".into()));
    }

    let (ctx, clients) = Context::open(&args, &tenant, &content).await?;
    let span = tracing::info_span!("run", otel.kind = "server", request_id = %ctx.job_id, tenant = %tenant, content_id = %content);
    if args.trace_header != "none" {
        vaultstream::traces::continue_trace(&span, &args.trace_header);
    }
    take_and_transcode(&args, &ctx, &clients, (profile, limits, stall_timeout), started).instrument(span).await
}

async fn take_and_transcode(
    args: &RunArgs,
    ctx: &Context,
    clients: &Clients,
    (profile, limits, stall_timeout): (Profile, Limits, Duration),
    started: Instant,
) -> Result<()> {
    let (tenant, content) = (&ctx.tenant, &ctx.content);

    // 2. Take the content.
    let record = ctx
        .catalog
        .get(tenant, content)
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| TranscodeError::Fatal(format!("content {content} of tenant {tenant} does not exist")))?;
    if !matches!(record.status, ContentStatus::Queued | ContentStatus::Processing) {
        tracing::info!(status = %record.status, "the content is not queued; nothing to do");
        println!("{}", serde_json::json!({"status": "nothing_to_do", "content_id": content, "content_status": record.status}));
        return Ok(());
    }
    let (expect, patch) = transcode_job::start();
    match ctx.catalog.update(tenant, content, &expect, &patch).await {
        Ok(_) => {}
        Err(CatalogError::Precondition(_)) => {
            tracing::info!("the content moved on meanwhile; nothing to do");
            println!("{}", serde_json::json!({"status": "nothing_to_do", "content_id": content}));
            return Ok(());
        }
        Err(e) => return Err(catalog_error(e)),
    }
    ctx.audit(Decision::Allow, format!("transcode started (attempt {})", record.attempts.max(1))).await;

    let outcome = transcode_and_publish(args, ctx, &record, clients, (profile, limits, stall_timeout), started, None).await;
    if let Err(TranscodeError::InvalidInput(reason)) = &outcome {
        record_rejection(args, ctx, reason).await;
    }
    outcome
}

/// A bad source ends the title `FAILED_INVALID` with the reason, audited.
pub(crate) async fn record_rejection(args: &RunArgs, ctx: &Context, reason: &str) {
    let (tenant, content) = (&ctx.tenant, &ctx.content);
    // The creator reads this reason: it names their upload, not this worker's scratch path.
    let local = scratch_dir(args, content).join("source").display().to_string();
    let reason = reason.replace(&local, "the uploaded file");
    let (expect, patch) = transcode_job::reject(reason.clone());
    match ctx.catalog.update(tenant, content, &expect, &patch).await {
        Ok(_) | Err(CatalogError::Precondition(_)) => {}
        Err(e) => tracing::error!(error = %e, "could not record the rejection; job_events will"),
    }
    ctx.audit(Decision::Deny, format!("invalid source: {reason}")).await;
}

/// This job's private working folder.
pub(crate) fn scratch_dir(args: &RunArgs, content: &vaultstream::ids::ContentId) -> std::path::PathBuf {
    args.scratch_dir.join(format!("vaultstream-{content}-{}", std::process::id()))
}

pub(crate) async fn transcode_and_publish(
    args: &RunArgs,
    ctx: &Context,
    record: &ContentRecord,
    clients: &Clients,
    (profile, limits, stall_timeout): (Profile, Limits, Duration),
    started: Instant,
    stitch: Option<crate::stitch::Stitchable>,
) -> Result<()> {
    let (tenant, content) = (&ctx.tenant, &ctx.content);

    // 3. The key.
    let vault = KmsKeyVault::new(clients.kms().clone(), Some(args.content_key_id.clone()));
    let key = transcode_job::content_key(ctx.catalog.as_ref(), &vault, tenant, content).await.map_err(key_error)?;
    // The CMAF key: a DRM vendor's (SPEKE), or one VaultStream keeps like k0.
    let kid = Kid::derive(tenant.as_str(), content.as_str(), CMAF_KEY_ID);
    let provider = match profile.cmaf() {
        true => crate::key_provider::from_args(&args.drm).await?,
        false => None,
    };
    let cmaf_key = match (profile.cmaf(), provider) {
        (false, _) => None,
        (true, Some((provider, systems))) => {
            Some(crate::key_provider::vendor_key(&provider, systems, format!("{tenant}/{content}"), kid).await?)
        }
        (true, None) => {
            let id = KeyId::try_from(CMAF_KEY_ID.to_string()).map_err(|e| TranscodeError::Fatal(e.to_string()))?;
            let key = transcode_job::content_key_with_id(ctx.catalog.as_ref(), &vault, tenant, content, &id).await.map_err(key_error)?;
            Some(CmafKey::held(key, kid))
        }
    };

    // 4. The source: copied to scratch for a whole title; read where it lies by a chunked
    // title's planner and stitch.
    let declared = record.source.as_ref().ok_or_else(|| TranscodeError::Fatal("the content record declares no source".into()))?;
    let scratch = Scratch(scratch_dir(args, content));
    std::fs::create_dir_all(&scratch.0).map_err(|e| TranscodeError::output(&format!("creating {}", scratch.0.display()), e))?;
    let input = scratch.0.join("source");
    let remote = match &stitch {
        Some(_) => Some(crate::run_chunks::presign_source(clients, args, record).await?),
        None => None,
    };
    if stitch.is_none() {
        if let Some(split) = crate::run_chunks::split(args, ctx, record, clients, (&profile, &limits, stall_timeout)).await? {
            println!("{split}");
            return Ok(());
        }
    }
    let download_started = Instant::now();
    if stitch.is_none() {
        let part_size = match &record.upload {
            Some(UploadPlan::Multipart { part_size, .. }) => Some(*part_size),
            _ => None,
        };
        let expected = Expected { etag: record.source_etag.as_deref(), size: declared.size_bytes, part_size };
        source::fetch(clients.s3(), &args.source_bucket, &args.source_key, &expected, &input)
            .instrument(tracing::info_span!("download"))
            .await?;
    }
    let download_seconds = download_started.elapsed().as_secs_f64();
    let chunks_cpu: f64 = stitch.as_ref().map_or(0.0, |s| s.chunks.iter().map(|(_, r)| r.cpu_seconds).sum());

    // 5. Transcode, heartbeating progress.
    let job = Job {
        input,
        remote,
        out: scratch.0.join("out"),
        profile,
        encoder: args.encoding.encoder.clone(),
        preset: args.encoding.preset.clone(),
        key,
        key_storage: KeyStorage::MemoryOnly,
        key_uri: Some(vaultstream::access::personalize::KEY_URI_SCHEME.to_string() + crate::keys::KEY_ID_PLACEHOLDER),
        key_period_segments: None,
        cmaf_key,
        limits,
        stall_timeout,
        chunking: stitch.map(crate::job::Chunking::Stitch),
    };
    let (progress_tx, progress_rx) = tokio::sync::watch::channel(0.0f64);
    let heartbeat = tokio::spawn(heartbeat(Arc::clone(&ctx.catalog), tenant.clone(), content.clone(), progress_rx));
    let transcode_started = Instant::now();
    let observer: crate::progress::ProgressObserver = Box::new(move |percent| {
        let _ = progress_tx.send(percent);
    });
    let span = tracing::info_span!("transcode");
    let output = tokio::task::spawn_blocking(move || span.in_scope(|| pipeline::run_local(job, Some(observer))))
        .await
        .map_err(|e| TranscodeError::Fatal(format!("the transcode thread failed: {e}")))?;
    heartbeat.abort();
    let LocalOutput { dir, manifest, entries } = output?;
    let transcode_seconds = transcode_started.elapsed().as_secs_f64();

    // 6. Upload a new version, then flip the record to it.
    let version = VersionId::parse(format!("v{}", uuid::Uuid::now_v7().simple())).map_err(|e| TranscodeError::Fatal(e.to_string()))?;
    let published = Published { tenant, content, version: &version };
    let upload_started = Instant::now();
    let upload = OriginUpload {
        client: clients.s3().clone(),
        bucket: args.origin_bucket.clone(),
        prefix: published.prefix(),
        concurrency: args.upload_concurrency as usize,
    };
    let master = std::fs::read(dir.join("master.m3u8")).map_err(|e| TranscodeError::output("reading master.m3u8", e))?;
    let uploaded = upload.upload(&dir, &entries, &master).instrument(tracing::info_span!("upload")).await?;
    let upload_seconds = upload_started.elapsed().as_secs_f64();

    let publish_started = Instant::now();
    // A chunked title's CPU is its chunks' and this stitch's.
    let cpu = cpu_seconds() + chunks_cpu;
    let figures = JobFigures {
        wall_seconds: round3(started.elapsed().as_secs_f64()),
        cpu_seconds: round3(cpu),
        realtime_factor: manifest.figures.realtime_factor,
        encoder: manifest.encoders.first().map(|s| s.name.clone()).unwrap_or_else(|| "aac".into()),
        output_bytes: uploaded.bytes,
        estimated_cost_usd: (cpu * args.price_per_vcpu_second * 1e6).round() / 1e6,
        chunked: manifest.figures.chunked.clone(),
    };
    let partial = manifest.reason.clone();
    let publication = publication(&manifest, version.clone());
    let (expect, mut patch) = transcode_job::publish(publication, figures.clone(), partial.clone());
    patch.metadata = Some(transcode_job::described_with_tags(record.metadata.as_ref(), &manifest.source.tags));
    let flipped = ctx.catalog.update(tenant, content, &expect, &patch).await;
    let record = match flipped {
        Ok(record) => record,
        Err(CatalogError::Precondition(_)) => {
            return Err(TranscodeError::Fatal(format!(
                "the content left PROCESSING while this job ran; version {version} was uploaded but not published"
            )));
        }
        Err(e) => return Err(catalog_error(e)),
    };
    let publish_seconds = publish_started.elapsed().as_secs_f64();
    ctx.audit(Decision::Allow, format!("published version {version} ({})", record.status)).await;
    tracing::info!(%version, status = %record.status, objects = uploaded.objects, bytes = uploaded.bytes, "published");
    emit_metrics(&job_metrics::published(&figures, manifest.failed_renditions.len(), &ctx.job_id, vaultstream::clock::now_millis()));
    println!(
        "{}",
        serde_json::json!({
            "status": record.status,
            "content_id": content,
            "acting_as": ctx.acting_as,
            "version": version,
            "reason": partial,
            "renditions": manifest.renditions.iter().map(|r| &r.name).collect::<Vec<_>>(),
            "timings": {
                "download_seconds": round3(download_seconds),
                "transcode_seconds": round3(transcode_seconds),
                "upload_seconds": round3(upload_seconds),
                "publish_seconds": round3(publish_seconds),
            },
            "figures": figures,
        })
    );
    Ok(())
}

fn publication(manifest: &Manifest, version: VersionId) -> Publication {
    Publication {
        version,
        renditions: manifest
            .renditions
            .iter()
            .map(|r| Rendition {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                bandwidth: r.bandwidth,
                codecs: r.codecs.clone(),
                video_range: r.video_range.map(|range| range.hls().to_string()),
                quality: r.quality.clone(),
            })
            .collect(),
        duration_seconds: manifest.source.duration.map(round3),
        poster: manifest.pictures.poster.clone(),
        thumbnails: manifest.pictures.thumbnails.iter().map(|t| t.uri.clone()).collect(),
        storyboard: manifest.pictures.storyboard.clone(),
        cmaf: manifest.cmaf.as_ref().zip(manifest.cmaf_key.as_ref()).map(|(packaged, key)| CmafPublication {
            kid: key.kid.clone(),
            scheme: packaged.scheme.to_string(),
            systems: key.systems.clone(),
        }),
    }
}

/// Writes the latest progress to the record every few seconds while the transcode runs.
async fn heartbeat(catalog: Arc<DynamoCatalog>, tenant: TenantId, content: ContentId, mut progress: tokio::sync::watch::Receiver<f64>) {
    let mut written = -1.0f64;
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        if progress.has_changed().is_err() {
            return;
        }
        let percent = (*progress.borrow_and_update() * 10.0).round() / 10.0;
        if percent <= written {
            continue;
        }
        let (expect, patch) = transcode_job::heartbeat(percent);
        match catalog.update(&tenant, &content, &expect, &patch).await {
            Ok(_) => written = percent,
            Err(e) => tracing::warn!(error = %e, "could not record progress"),
        }
    }
}
