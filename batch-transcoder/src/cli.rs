use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;

impl EncodingArgs {
    /// These arguments as a command line repeats them (for a chunk worker).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> =
            ["--profile", &self.profile, "--encoder", &self.encoder, "--preset", &self.preset].iter().map(OsString::from).collect();
        if let Some(s) = self.segment_seconds {
            args.extend(["--segment-seconds".into(), s.to_string().into()]);
        }
        args
    }
}

impl LimitArgs {
    pub fn to_args(&self) -> Vec<OsString> {
        [
            ("--max-width", self.max_width.to_string()),
            ("--max-height", self.max_height.to_string()),
            ("--max-duration", self.max_duration.to_string()),
            ("--stall-timeout", self.stall_timeout.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [OsString::from(k), OsString::from(v)])
        .collect()
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "vaultstream-transcode",
    version,
    about = "Transcode a video into an AES-128-encrypted adaptive-bitrate HLS ladder",
    after_help = "Exit codes: 0 done (also when published partial: see manifest.json), 2 usage, \
                  65 invalid input (never retried), 75 temporary failure (retry), 1 anything else."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcode a local file into a local folder.
    Local(LocalArgs),
    /// The AWS Batch job: transcode a content item's upload from the source bucket into a new
    /// version in the origin bucket, with its KMS-wrapped key, and publish it.
    #[command(after_help = "Exit codes: 0 published (READY or PARTIAL) or nothing to do, 2 usage, \
                            65 invalid source (the content is FAILED_INVALID), 75 temporary failure \
                            (job_events retries it), 1 anything else.")]
    Run(RunArgs),
    /// An AWS Batch array child of a chunked title: encodes chunk `AWS_BATCH_JOB_ARRAY_INDEX` of
    /// the plan `run` made, from ranged reads of the source, into the plan's folder in the source
    /// bucket (`chunks/{tenant}/{content_id}/{plan_id}/`).
    #[command(after_help = "Exit codes: 0 encoded (or already encoded, or nothing to do), 2 usage, 65 the source is invalid \
                            in this chunk (the content is FAILED_INVALID, the chunk named), 75 temporary failure (Batch \
                            retries the chunk alone), 1 anything else.")]
    Chunk {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// The AWS Batch job that runs once every chunk of the plan is encoded: stitches them into
    /// one version, encrypted and packaged as `run` would, and publishes it.
    #[command(after_help = "Exit codes: 0 published (READY or PARTIAL) or nothing to do, 2 usage, 65 invalid source, \
                            75 temporary failure (job_events retries the title; finished chunks are kept), 1 anything else.")]
    Stitch {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// One chunk on this machine: `local --chunk-seconds` starts one per chunk.
    #[command(hide = true)]
    ChunkWorker(ChunkArgs),
}

/// Which plan a chunk or stitch job works on.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan `run` wrote (its id names its folder).
    #[arg(long, value_name = "ID")]
    pub plan_id: String,

    /// Which chunk (array jobs: Batch sets it).
    #[arg(long, env = "AWS_BATCH_JOB_ARRAY_INDEX")]
    pub index: Option<u32>,

    /// Which attempt of this job this is (Batch sets it).
    #[arg(long, env = "AWS_BATCH_JOB_ATTEMPT", default_value_t = 1)]
    pub attempt: u32,
}

/// A local chunk worker's arguments.
#[derive(Debug, Args)]
pub struct ChunkArgs {
    /// The source file.
    #[arg(long)]
    pub input: PathBuf,

    /// The plan's folder: plan.json, and one folder per chunk.
    #[arg(long, value_name = "DIR")]
    pub plan_dir: PathBuf,

    /// Which chunk of the plan.
    #[arg(long, env = "AWS_BATCH_JOB_ARRAY_INDEX")]
    pub index: u32,

    /// Which attempt this is (reported in chunk.json).
    #[arg(long, env = "AWS_BATCH_JOB_ATTEMPT", default_value_t = 1)]
    pub attempt: u32,

    /// The cores this worker may use (x264's threads are shared out over them).
    #[arg(long)]
    pub cores: Option<usize>,

    #[command(flatten)]
    pub encoding: EncodingArgs,

    #[command(flatten)]
    pub limits: LimitArgs,
}

/// How `local` splits a long title.
#[derive(Debug, Args, Clone)]
pub struct ChunkingArgs {
    /// Encode a title of two or more chunks of about this many seconds (whole segments) in
    /// parallel worker processes and stitch them; shorter titles are transcoded whole.
    #[arg(long, value_name = "SECONDS")]
    pub chunk_seconds: Option<f64>,

    /// Chunk worker processes at once (default: one per core).
    #[arg(long, value_name = "N", requires = "chunk_seconds", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: Option<u32>,
}

/// How to encode: shared by both modes.
#[derive(Debug, Args, Clone)]
pub struct EncodingArgs {
    /// Built-in profile (default, hevc-4k, av1-archive) or a JSON profile file.
    #[arg(long, value_name = "NAME|FILE", default_value = "default")]
    pub profile: String,

    /// `auto` tries NVENC, QSV, then VAAPI and falls back to software; or a FFmpeg encoder name
    /// (libx264, h264_nvenc, ...) to force one.
    #[arg(long, value_name = "auto|NAME", default_value = "auto")]
    pub encoder: String,

    /// Speed preset in x264 terms (ultrafast ... veryslow); mapped for other encoders.
    #[arg(long, value_name = "NAME", default_value = "veryfast")]
    pub preset: String,

    /// Target segment length in seconds (default: the profile's, 6).
    #[arg(long, value_name = "N")]
    pub segment_seconds: Option<f64>,
}

/// What sources are accepted and how long a stuck run may wait: shared by both modes.
#[derive(Debug, Args, Clone)]
pub struct LimitArgs {
    /// Largest accepted source width.
    #[arg(long, value_name = "PIXELS", default_value_t = 8192)]
    pub max_width: u32,

    /// Largest accepted source height.
    #[arg(long, value_name = "PIXELS", default_value_t = 8192)]
    pub max_height: u32,

    /// Longest accepted source, in seconds (default 12 h).
    #[arg(long, value_name = "SECONDS", default_value_t = 43_200.0)]
    pub max_duration: f64,

    /// Give up when reading or decoding makes no progress for this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub stall_timeout: u64,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// The source video or audio file.
    pub input: PathBuf,

    /// Output folder (created; must be empty): master.m3u8, one folder per rendition, manifest.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub encoding: EncodingArgs,

    /// Where the first content key is written (16 raw bytes, mode 0600); later key periods add
    /// `.k1`, `.k2`, ... Default: `<DIR>.key` beside the output folder, never inside it.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Use this key (32 hex digits) instead of a fresh random one. Prefer the environment
    /// variable: command lines are visible to other users of the machine.
    #[arg(long, value_name = "HEX", env = "VAULTSTREAM_KEY_HEX", hide_env_values = true)]
    pub key_hex: Option<String>,

    /// The CMAF packaging's key (32 hex digits) instead of a fresh random one; written beside
    /// the first as `<key file>.c0`. Prefer the environment variable.
    #[arg(long, value_name = "HEX", env = "VAULTSTREAM_CMAF_KEY_HEX", hide_env_values = true)]
    pub cmaf_key_hex: Option<String>,

    /// What EXT-X-KEY's URI names; `{key_id}` is replaced by the key id (k0, k1, ...).
    /// Default: the key file's path relative to each media playlist.
    #[arg(long, value_name = "URI")]
    pub key_uri: Option<String>,

    /// Rotate to a fresh key every N segments (key ids are listed in manifest.json).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub key_period_segments: Option<u32>,

    #[command(flatten)]
    pub drm: DrmArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub chunking: ChunkingArgs,
}

/// The Batch job's arguments: the job definition passes the first five (from the job's
/// parameters); the rest come from the job definition's environment.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The content's tenant (the job may touch nothing of any other tenant).
    #[arg(long)]
    pub tenant: String,

    /// The content item to transcode.
    #[arg(long)]
    pub content_id: String,

    /// The uploaded source's key in the source bucket: source/{tenant}/{content_id}/original.
    #[arg(long, value_name = "KEY")]
    pub source_key: String,

    /// The X-Ray trace this job continues (`Root=…;Parent=…;Sampled=…`, dispatch's), or `none`:
    /// the job's spans (probe, decode, each rung, upload) join the upload's trace.
    #[arg(long, value_name = "HEADER", default_value = "none")]
    pub trace_header: String,

    #[command(flatten)]
    pub encoding: EncodingArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// The source bucket the upload is read from.
    #[arg(long, env = "VAULTSTREAM_SOURCE_BUCKET", value_name = "BUCKET")]
    pub source_bucket: String,

    /// The origin bucket the new version is written to.
    #[arg(long, env = "VAULTSTREAM_ORIGIN_BUCKET", value_name = "BUCKET")]
    pub origin_bucket: String,

    /// The content table (records and their KMS-wrapped keys).
    #[arg(long, env = "VAULTSTREAM_CONTENT_TABLE", value_name = "TABLE")]
    pub content_table: String,

    /// The audit ledger table.
    #[arg(long, env = "VAULTSTREAM_AUDIT_TABLE", value_name = "TABLE")]
    pub audit_table: String,

    /// Audit chains per tenant and day, as the functions are configured.
    #[arg(long, env = "VAULTSTREAM_AUDIT_SHARDS", value_name = "N", default_value_t = 4)]
    pub audit_shards: u16,

    /// The content-key CMK (id, ARN or alias) new content keys are generated under.
    #[arg(long, env = "VAULTSTREAM_CONTENT_KEY_ID", value_name = "KEY")]
    pub content_key_id: String,

    /// The tenant role (ARN) the job assumes, its session tagged with the job's tenant, before it
    /// touches anything: every request then reaches only that tenant's data. Unset: the job acts
    /// with its own credentials (local runs).
    #[arg(long, env = "VAULTSTREAM_TENANT_ROLE_ARN", value_name = "ARN")]
    pub tenant_role_arn: Option<String>,

    /// What a vCPU-second costs, in US dollars, for the job's cost estimate.
    #[arg(long, env = "VAULTSTREAM_PRICE_PER_VCPU_SECOND", value_name = "USD", default_value_t = 0.0)]
    pub price_per_vcpu_second: f64,

    /// Where the source and the encrypted segments are kept while the job runs.
    #[arg(long, env = "VAULTSTREAM_SCRATCH_DIR", value_name = "DIR", default_value_os_t = std::env::temp_dir())]
    pub scratch_dir: PathBuf,

    /// Split titles of two or more chunks of about this many seconds into a Batch array job of
    /// chunks and a stitch job; 0 transcodes every title whole in this job.
    #[arg(long, env = "VAULTSTREAM_CHUNK_SECONDS", value_name = "SECONDS", default_value_t = 0.0)]
    pub chunk_seconds: f64,

    /// The job definition of a chunked title's array children (`chunk`).
    #[arg(long, env = "VAULTSTREAM_CHUNK_JOB_DEFINITION", value_name = "ARN")]
    pub chunk_job_definition: Option<String>,

    /// The job definition of a chunked title's stitch (`stitch`).
    #[arg(long, env = "VAULTSTREAM_STITCH_JOB_DEFINITION", value_name = "ARN")]
    pub stitch_job_definition: Option<String>,

    /// The job queue this job runs in (Batch sets it); a chunked title's jobs go to the same.
    #[arg(long, env = "AWS_BATCH_JQ_NAME", value_name = "QUEUE")]
    pub job_queue: Option<String>,

    /// Objects uploaded to the origin at once.
    #[arg(long, env = "VAULTSTREAM_UPLOAD_CONCURRENCY", value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub upload_concurrency: u32,

    #[command(flatten)]
    pub drm: DrmArgs,
}

/// A DRM vendor's key provider for the CMAF packaging: shared by both modes. Without a SPEKE
/// URL, VaultStream holds the key (KMS, or `local`'s key file) and signals ClearKey.
#[derive(Debug, Args, Clone)]
pub struct DrmArgs {
    /// The vendor's SPEKE v2 endpoint (CPIX 2.3 over HTTPS): it gives the CMAF key and each DRM
    /// system's signalling; the title is then signalled for those systems, never ClearKey.
    #[arg(long, env = "VAULTSTREAM_SPEKE_URL", value_name = "URL")]
    pub speke_url: Option<String>,

    /// How SPEKE requests are authenticated: `sigv4` (API Gateway's IAM authorization, with
    /// the job's own role) or `none` (the URL carries the vendor's credential).
    #[arg(long, env = "VAULTSTREAM_SPEKE_AUTH", value_name = "sigv4|none", default_value = "sigv4")]
    pub speke_auth: String,

    /// The DRM systems the vendor signals, comma-separated.
    #[arg(long, env = "VAULTSTREAM_DRM_SYSTEMS", value_name = "LIST", default_value = "widevine,playready,fairplay")]
    pub drm_systems: String,
}
