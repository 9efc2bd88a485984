//! Split-and-stitch on AWS Batch: a long title's `run` job plans it and hands it to an array
//! job of chunks and a stitch job that depends on the array; no scheduler of our own.
//!
//! 1. `run` (the planner): with `--chunk-seconds` and both job definitions configured, it probes
//!    the source by ranged reads, cuts it ([`vaultstream::chunking::cut`]), writes `plan.json` to
//!    `chunks/{tenant}/{content_id}/{plan_id}/` in the source bucket, submits the array
//!    (`arrayProperties.size` = chunks) and the stitch (`dependsOn` the array) to its own queue,
//!    and names the stitch as the record's job. A title of fewer than two chunks goes on whole.
//! 2. `chunk` (array child N): reads only its span of the source (presigned ranged GETs, pinned
//!    to the accepted ETag), encodes it, uploads its files and `chunk.json` last. A chunk already
//!    done for the plan is not encoded again, so a retried title re-encodes only what was lost.
//!    Batch retries a child that exits 75 or loses its Spot host, alone. A chunk whose source
//!    span is invalid ends the title `FAILED_INVALID`, the chunk named.
//! 3. `stitch`: checks every chunk finished, downloads their (encoded, small) files, and runs
//!    the same keys, packaging, upload and conditional publish as `run`.
//!
//! The plan id is a digest of the source's ETag, the profile, encoder, preset and chunk length,
//! so a rerun never mixes another plan's chunks into its version.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use vaultstream::audit::Decision;
use vaultstream::aws::Clients;
use vaultstream::catalog::{ContentCatalog, ContentRecord, ContentStatus, Expect, JobRef, Patch};
use vaultstream::chunking::{self, ChunkPlan, ChunkReport, PlanInputs};
use vaultstream::ids::{ContentId, TenantId};
use vaultstream::ingest::source_key::SourceKey;
use vaultstream::ladder::Profile;

use crate::cli::{PlanArgs, RunArgs};
use crate::error::{Result, TranscodeError};
use crate::job::{self, Job};
use crate::probe::{Limits, RemoteSource};
use crate::run::{self, Context, Scratch};
use crate::stitch::Stitchable;
use crate::watchdog::Watchdog;

/// How long a presigned source URL lasts: longer than any chunk takes.
const PRESIGNED_SECONDS: u64 = 6 * 3600;

/// The source object, presigned for ranged GETs that only succeed on the ETag dispatch accepted.
pub async fn presign_source(clients: &Clients, args: &RunArgs, record: &ContentRecord) -> Result<RemoteSource> {
    let declared = record.source.as_ref().ok_or_else(|| TranscodeError::Fatal("the content record declares no source".into()))?;
    let mut request = clients.s3().get_object().bucket(&args.source_bucket).key(&args.source_key);
    if let Some(etag) = &record.source_etag {
        request = request.if_match(etag);
    }
    let config = PresigningConfig::expires_in(Duration::from_secs(PRESIGNED_SECONDS)).map_err(|e| TranscodeError::Fatal(e.to_string()))?;
    let presigned = request
        .presigned(config)
        .await
        .map_err(|e| TranscodeError::Temporary(format!("presigning the source: {}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
    Ok(RemoteSource {
        url: presigned.uri().to_string(),
        headers: presigned.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        size: declared.size_bytes,
    })
}

/// A job that only reads the source where it lies (to plan, or to encode a chunk).
fn reading_job(args: &RunArgs, profile: Profile, limits: Limits, stall_timeout: Duration, remote: RemoteSource) -> Result<Job> {
    Job::reading(PathBuf::from("/nonexistent/remote-source"), Some(remote), profile, &args.encoding, (limits, stall_timeout))
}

fn plan_prefix(tenant: &TenantId, content: &ContentId, plan_id: &str) -> String {
    chunking::object_prefix(tenant.as_str(), content.as_str(), plan_id)
}

fn s3_error<E: std::error::Error + 'static>(what: &str, e: aws_sdk_s3::error::SdkError<E>) -> TranscodeError {
    TranscodeError::Temporary(format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
}

/// A JSON object of the source bucket, `None` when there is none.
async fn get_json<T: serde::de::DeserializeOwned>(clients: &Clients, bucket: &str, key: &str) -> Result<Option<T>> {
    match clients.s3().get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let bytes = out.body.collect().await.map_err(|e| TranscodeError::Temporary(format!("reading s3://{bucket}/{key}: {e}")))?;
            let value = serde_json::from_slice(&bytes.into_bytes())
                .map_err(|e| TranscodeError::Fatal(format!("s3://{bucket}/{key} is not what this transcoder wrote: {e}")))?;
            Ok(Some(value))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(s3_error(&format!("reading s3://{bucket}/{key}"), e)),
    }
}

async fn put(clients: &Clients, bucket: &str, key: &str, body: ByteStream) -> Result<()> {
    clients
        .s3()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .map_err(|e| s3_error(&format!("writing s3://{bucket}/{key}"), e))?;
    Ok(())
}

/// The planner's step: splits the title into an array job and a stitch when it is long enough
/// and chunking is configured. The summary line to print, or `None` to transcode it whole.
pub async fn split(
    args: &RunArgs,
    ctx: &Context,
    record: &ContentRecord,
    clients: &Clients,
    (profile, limits, stall_timeout): (&Profile, &Limits, Duration),
) -> Result<Option<serde_json::Value>> {
    let (Some(chunk_definition), Some(stitch_definition)) = (&args.chunk_job_definition, &args.stitch_job_definition) else {
        return Ok(None);
    };
    if args.chunk_seconds <= 0.0 || chunk_definition.trim().is_empty() || stitch_definition.trim().is_empty() {
        return Ok(None);
    }
    let queue =
        args.job_queue.clone().filter(|q| !q.is_empty()).ok_or_else(|| {
            TranscodeError::Usage("AWS_BATCH_JQ_NAME is not set: a chunked title's jobs go to this job's own queue".into())
        })?;
    let remote = presign_source(clients, args, record).await?;
    let job = reading_job(args, profile.clone(), *limits, stall_timeout, remote)?;
    let chunk_seconds = args.chunk_seconds;
    let probed = tokio::task::spawn_blocking(move || {
        let watchdog = Watchdog::new(job.stall_timeout);
        let (_, source) = crate::pipeline::probe_source(&job, &watchdog)?;
        Ok::<_, TranscodeError>((crate::chunked::plan_chunks(&job, &source, chunk_seconds), job))
    })
    .await
    .map_err(|e| TranscodeError::Fatal(format!("the probe thread failed: {e}")))?;
    // A source the ranged probe cannot read goes the whole way: the download checks it against
    // the accepted ETag and size, and the pipeline says what is wrong with it.
    let probed = match probed {
        Ok(probed) => probed,
        Err(e) => {
            tracing::info!(error = %e, "the ranged probe could not read the source; transcoding it whole");
            return Ok(None);
        }
    };
    let (Some((chunks, frame_rate)), job) = probed else { return Ok(None) };

    let etag = record.source_etag.clone().unwrap_or_default();
    let profile_text = format!("{:?} {}", job.profile, env!("CARGO_PKG_VERSION"));
    let inputs = PlanInputs { source: &etag, profile: &profile_text, encoder: &job.encoder, preset: &job.preset, chunk_seconds };
    let plan = ChunkPlan { format: chunking::PLAN_FORMAT, plan_id: inputs.plan_id(), chunk_seconds, frame_rate, chunks };
    let prefix = plan_prefix(&ctx.tenant, &ctx.content, &plan.plan_id);
    let json = serde_json::to_vec_pretty(&plan).map_err(|e| TranscodeError::Fatal(format!("the chunk plan: {e}")))?;
    put(clients, &args.source_bucket, &format!("{prefix}/{}", chunking::PLAN_FILE), ByteStream::from(json)).await?;

    let parameters = std::collections::HashMap::from([
        ("tenant".to_string(), ctx.tenant.to_string()),
        ("content_id".to_string(), ctx.content.to_string()),
        ("source_key".to_string(), args.source_key.clone()),
        ("profile".to_string(), args.encoding.profile.clone()),
        ("trace_header".to_string(), args.trace_header.clone()),
        ("plan_id".to_string(), plan.plan_id.clone()),
    ]);
    let base = format!("vs-{}-{}-a{}", ctx.tenant, ctx.content, record.attempts.max(1));
    let submit = |name: String, definition: &String| {
        clients
            .batch()
            .submit_job()
            .job_name(name.chars().take(128).collect::<String>())
            .job_queue(&queue)
            .job_definition(definition)
            .set_parameters(Some(parameters.clone()))
            .propagate_tags(true)
            .tags("vaultstream:tenant", ctx.tenant.as_str())
            .tags("vaultstream:content", ctx.content.as_str())
    };
    let batch_error = |e: aws_sdk_batch::error::SdkError<aws_sdk_batch::operation::submit_job::SubmitJobError>| {
        TranscodeError::Temporary(format!("submitting a chunked title's jobs: {}", aws_sdk_batch::error::DisplayErrorContext(e)))
    };
    let array = submit(format!("{base}-chunks"), chunk_definition)
        .array_properties(aws_sdk_batch::types::ArrayProperties::builder().size(plan.chunks.len() as i32).build())
        .send()
        .await
        .map_err(batch_error)?;
    let array_id = array.job_id.ok_or_else(|| TranscodeError::Temporary("Batch returned no array job id".into()))?;
    let stitch = submit(format!("{base}-stitch"), stitch_definition)
        .depends_on(aws_sdk_batch::types::JobDependency::builder().job_id(&array_id).build())
        .send()
        .await
        .map_err(batch_error)?;
    let stitch_id = stitch.job_id.ok_or_else(|| TranscodeError::Temporary("Batch returned no stitch job id".into()))?;

    // The stitch is the job the record now waits for (job_events acts on its end alone).
    let expect = Expect {
        status_in: vec![ContentStatus::Processing],
        job_id: Some(record.job.as_ref().map(|j| j.id.clone())),
        ..Default::default()
    };
    let queue_kind = record.job.as_ref().map_or_else(|| "video-cpu".to_string(), |j| j.queue.clone());
    let patch = Patch { job: Some(Some(JobRef { id: stitch_id.clone(), queue: queue_kind })), ..Default::default() };
    ctx.catalog.update(&ctx.tenant, &ctx.content, &expect, &patch).await.map_err(run::catalog_error)?;
    ctx.audit(
        Decision::Allow,
        format!("split into {} chunks (plan {}): array job {array_id}, stitch job {stitch_id}", plan.chunks.len(), plan.plan_id),
    )
    .await;
    Ok(Some(serde_json::json!({
        "status": "chunked",
        "content_id": ctx.content,
        "plan_id": plan.plan_id,
        "chunks": plan.chunks.len(),
        "array_job": array_id,
        "stitch_job": stitch_id,
    })))
}

/// What a chunk or stitch job starts from: the checked ids, its clients, its context, and the
/// record if the title is still being transcoded.
async fn open(args: &RunArgs) -> Result<(Context, Clients, Option<ContentRecord>)> {
    let tenant = TenantId::parse(&args.tenant).map_err(|e| TranscodeError::Usage(format!("--tenant: {e}")))?;
    let content = ContentId::parse(&args.content_id).map_err(|e| TranscodeError::Usage(format!("--content-id: {e}")))?;
    let expected_key = SourceKey::new(tenant.clone(), content.clone()).object_key();
    if args.source_key != expected_key {
        return Err(TranscodeError::Usage(format!("--source-key must be {expected_key}: a job reads only its own content's upload")));
    }
    let (ctx, clients) = Context::open(args, &tenant, &content).await?;
    let record = ctx
        .catalog
        .get(&tenant, &content)
        .await
        .map_err(run::catalog_error)?
        .ok_or_else(|| TranscodeError::Fatal(format!("content {content} of tenant {tenant} does not exist")))?;
    let record = (record.status == ContentStatus::Processing).then_some(record);
    Ok((ctx, clients, record))
}

fn nothing_to_do(ctx: &Context, why: &str) -> Result<()> {
    tracing::info!(why, "nothing to do");
    println!("{}", serde_json::json!({"status": "nothing_to_do", "content_id": ctx.content, "why": why}));
    Ok(())
}

async fn read_plan(args: &RunArgs, ctx: &Context, clients: &Clients, plan_id: &str) -> Result<ChunkPlan> {
    let key = format!("{}/{}", plan_prefix(&ctx.tenant, &ctx.content, plan_id), chunking::PLAN_FILE);
    let plan: ChunkPlan = get_json(clients, &args.source_bucket, &key)
        .await?
        .ok_or_else(|| TranscodeError::Fatal(format!("there is no plan {plan_id} (s3://{}/{key})", args.source_bucket)))?;
    if plan.plan_id != plan_id || plan.format != chunking::PLAN_FORMAT {
        return Err(TranscodeError::Fatal(format!("s3://{}/{key} is not plan {plan_id} in this transcoder's format", args.source_bucket)));
    }
    Ok(plan)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| TranscodeError::Fatal(format!("starting the async runtime: {e}")))
}

/// `vaultstream-transcode chunk`: one array child.
pub fn chunk(args: RunArgs, plan: PlanArgs) -> Result<()> {
    runtime()?.block_on(chunk_job(args, plan))
}

async fn chunk_job(args: RunArgs, plan_args: PlanArgs) -> Result<()> {
    let started = Instant::now();
    let profile = job::encoding(&args.encoding)?;
    let (limits, stall_timeout) = job::limits(&args.limits)?;
    let index = plan_args.index.ok_or_else(|| TranscodeError::Usage("--index (AWS_BATCH_JOB_ARRAY_INDEX) is not set".into()))?;
    let (ctx, clients, record) = open(&args).await?;
    let Some(record) = record else { return nothing_to_do(&ctx, "the content is not being transcoded") };
    let plan = read_plan(&args, &ctx, &clients, &plan_args.plan_id).await?;
    let chunk = plan
        .chunks
        .get(index as usize)
        .cloned()
        .ok_or_else(|| TranscodeError::Usage(format!("chunk {index} is past the plan's {} chunks", plan.chunks.len())))?;
    let prefix = format!("{}/{}", plan_prefix(&ctx.tenant, &ctx.content, &plan.plan_id), chunking::chunk_dir(index));
    let done_key = format!("{prefix}/{}", chunking::CHUNK_DONE);
    if let Some(done) = get_json::<ChunkReport>(&clients, &args.source_bucket, &done_key).await? {
        if done.plan_id == plan.plan_id {
            return nothing_to_do(&ctx, "this chunk is already encoded");
        }
    }

    let remote = presign_source(&clients, &args, &record).await?;
    let job = reading_job(&args, profile, limits, stall_timeout, remote)?;
    let scratch = Scratch(run::scratch_dir(&args, &ctx.content));
    let dir = scratch.0.join(chunking::chunk_dir(index));
    let plan_id = plan.plan_id.clone();
    let attempt = plan_args.attempt;
    let encode_dir = dir.clone();
    let span = tracing::info_span!("chunk", index);
    let encoded = tokio::task::spawn_blocking(move || {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        span.in_scope(|| crate::chunk::encode(&job, &plan_id, &chunk, &encode_dir, attempt, cores))
    })
    .await
    .map_err(|e| TranscodeError::Fatal(format!("the chunk thread failed: {e}")))?;
    let report = match encoded {
        Ok(report) => report,
        Err(TranscodeError::InvalidInput(reason)) => {
            let reason = format!("chunk {index} ({:.3} s on): {reason}", plan.chunks[index as usize].start_seconds);
            run::record_rejection(&args, &ctx, &reason).await;
            return Err(TranscodeError::InvalidInput(reason));
        }
        Err(e) => return Err(e),
    };
    let uploaded = upload_chunk(&clients, &args.source_bucket, &prefix, &dir).await?;
    println!(
        "{}",
        serde_json::json!({
            "status": "chunk_done", "content_id": ctx.content, "plan_id": plan.plan_id, "index": index, "frames": report.frames,
            "objects": uploaded, "wall_seconds": crate::manifest::round3(started.elapsed().as_secs_f64()), "cpu_seconds": crate::manifest::round3(report.cpu_seconds),
        })
    );
    Ok(())
}

/// Every file of a finished chunk's folder, `chunk.json` last.
async fn upload_chunk(clients: &Clients, bucket: &str, prefix: &str, dir: &Path) -> Result<u64> {
    let mut files = Vec::new();
    collect_files(dir, "", &mut files)?;
    files.retain(|(_, relative)| relative != chunking::CHUNK_DONE);
    let mut count = 0;
    for (path, relative) in &files {
        let body = ByteStream::from_path(path).await.map_err(|e| TranscodeError::Temporary(format!("reading {}: {e}", path.display())))?;
        put(clients, bucket, &format!("{prefix}/{relative}"), body).await?;
        count += 1;
    }
    let done = std::fs::read(dir.join(chunking::CHUNK_DONE)).map_err(|e| TranscodeError::output("reading chunk.json", e))?;
    put(clients, bucket, &format!("{prefix}/{}", chunking::CHUNK_DONE), ByteStream::from(done)).await?;
    Ok(count + 1)
}

fn collect_files(dir: &Path, relative: &str, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| TranscodeError::output(&format!("reading {}", dir.display()), e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if relative.is_empty() { name } else { format!("{relative}/{name}") };
        if entry.path().is_dir() {
            collect_files(&entry.path(), &rel, out)?;
        } else {
            out.push((entry.path(), rel));
        }
    }
    Ok(())
}

/// `vaultstream-transcode stitch`: the job that depends on the array.
pub fn stitch(args: RunArgs, plan: PlanArgs) -> Result<()> {
    runtime()?.block_on(stitch_job(args, plan))
}

async fn stitch_job(args: RunArgs, plan_args: PlanArgs) -> Result<()> {
    let started = Instant::now();
    let profile = job::encoding(&args.encoding)?;
    let (limits, stall_timeout) = job::limits(&args.limits)?;
    let (ctx, clients, record) = open(&args).await?;
    let Some(record) = record else { return nothing_to_do(&ctx, "the content is not being transcoded") };
    if record.job.as_ref().is_some_and(|j| j.id != ctx.job_id) && ctx.job_id != "manual" {
        return nothing_to_do(&ctx, "another job is now responsible for the content");
    }
    let plan = read_plan(&args, &ctx, &clients, &plan_args.plan_id).await?;
    let prefix = plan_prefix(&ctx.tenant, &ctx.content, &plan.plan_id);
    let scratch = run::scratch_dir(&args, &ctx.content).join("chunks");
    let mut chunks = Vec::new();
    for chunk in &plan.chunks {
        let chunk_prefix = format!("{prefix}/{}", chunking::chunk_dir(chunk.index));
        let report = get_json::<ChunkReport>(&clients, &args.source_bucket, &format!("{chunk_prefix}/{}", chunking::CHUNK_DONE))
            .await?
            .filter(|r| r.plan_id == plan.plan_id)
            .ok_or_else(|| TranscodeError::Temporary(format!("chunk {} of plan {} has not finished", chunk.index, plan.plan_id)))?;
        let dir = scratch.join(chunking::chunk_dir(chunk.index));
        download_prefix(&clients, &args.source_bucket, &chunk_prefix, &dir).await?;
        chunks.push((dir, report));
    }
    ctx.audit(Decision::Allow, format!("stitching {} chunks of plan {}", chunks.len(), plan.plan_id)).await;
    let parts = Stitchable { chunks, price_per_vcpu_second: args.price_per_vcpu_second };
    let outcome = run::transcode_and_publish(&args, &ctx, &record, &clients, (profile, limits, stall_timeout), started, Some(parts)).await;
    if let Err(TranscodeError::InvalidInput(reason)) = &outcome {
        run::record_rejection(&args, &ctx, reason).await;
    }
    outcome
}

/// Every object under `prefix` into `dir`, keeping their relative paths.
async fn download_prefix(clients: &Clients, bucket: &str, prefix: &str, dir: &Path) -> Result<()> {
    let mut pages = clients.s3().list_objects_v2().bucket(bucket).prefix(format!("{prefix}/")).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| s3_error(&format!("listing s3://{bucket}/{prefix}/"), e))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let relative = &key[prefix.len() + 1..];
            if relative.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
                return Err(TranscodeError::Fatal(format!("s3://{bucket}/{key} is not a chunk file")));
            }
            let path = dir.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| TranscodeError::output(&format!("creating {}", parent.display()), e))?;
            }
            let out = clients
                .s3()
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| s3_error(&format!("reading s3://{bucket}/{key}"), e))?;
            let bytes = out.body.collect().await.map_err(|e| TranscodeError::Temporary(format!("reading s3://{bucket}/{key}: {e}")))?;
            std::fs::write(&path, bytes.into_bytes()).map_err(|e| TranscodeError::output(&format!("writing {}", path.display()), e))?;
        }
    }
    Ok(())
}
