//! Everything a transcode needs decided before it starts, validated: the profile, the encoder
//! request, the keys, the limits. `local` builds it from its command line; `run` from its
//! arguments and the content key KMS returned.

use std::path::PathBuf;
use std::time::Duration;

use vaultstream::ladder::{self, Profile, VideoCodec};
use vaultstream::ContentKey;

use crate::cli::{EncodingArgs, LimitArgs, LocalArgs};
use crate::cmaf::CmafKey;
use crate::encoder::{self, X264_PRESETS};
use crate::error::{Result, TranscodeError};
use crate::keys::KeyStorage;
use crate::probe::Limits;

pub struct Job {
    pub input: PathBuf,
    /// Where the source is read by ranged GETs instead of `input` (a chunked title in `run`).
    pub remote: Option<crate::probe::RemoteSource>,
    pub out: PathBuf,
    pub profile: Profile,
    pub encoder: String,
    pub preset: String,
    pub key: ContentKey,
    /// Where `k0` (and later periods' keys) go: a file, or nowhere but memory.
    pub key_storage: KeyStorage,
    pub key_uri: Option<String>,
    pub key_period_segments: Option<usize>,
    /// The CMAF packaging's key when the caller has one (`run`: from KMS); `local` makes a fresh
    /// one where the profile asks for CMAF.
    pub cmaf_key: Option<CmafKey>,
    pub limits: Limits,
    pub stall_timeout: Duration,
    /// Split-and-stitch: on this machine (`local --chunk-seconds`), or the stitch of chunks the
    /// Batch array encoded.
    pub chunking: Option<Chunking>,
}

pub enum Chunking {
    Split(crate::chunked::LocalChunking),
    Stitch(crate::stitch::Stitchable),
}

/// A built-in profile by name, or a JSON profile file.
pub fn load_profile(name: &str) -> Result<Profile> {
    if let Some(p) = Profile::built_in(name) {
        return Ok(p);
    }
    let path = PathBuf::from(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        TranscodeError::Usage(format!(
            "--profile {name}: not a built-in profile ({}) and not a readable file: {e}",
            ladder::BUILT_IN_PROFILES.join(", ")
        ))
    })?;
    Profile::from_json(&text).map_err(|e| TranscodeError::Usage(format!("--profile {}: {e}", path.display())))
}

/// The profile with `--segment-seconds` applied, and the encoder and preset checked against it.
pub fn encoding(args: &EncodingArgs) -> Result<Profile> {
    let mut profile = load_profile(&args.profile)?;
    if let Some(s) = args.segment_seconds {
        if !(1.0..=30.0).contains(&s) {
            return Err(TranscodeError::Usage(format!("--segment-seconds {s} is out of range (expected 1 to 30)")));
        }
        profile.segment_seconds = s;
        profile.gop_seconds = profile.gop_seconds.min(s);
    }
    if !X264_PRESETS.contains(&args.preset.as_str()) {
        return Err(TranscodeError::Usage(format!("--preset {} is unknown (expected one of {})", args.preset, X264_PRESETS.join(", "))));
    }
    if args.encoder != "auto" {
        let Some(codec) = encoder::codec_of(&args.encoder) else {
            return Err(TranscodeError::Usage(format!(
                "--encoder {} is not a video encoder VaultStream drives (expected auto or one of {})",
                args.encoder,
                [VideoCodec::H264, VideoCodec::Hevc, VideoCodec::Av1]
                    .iter()
                    .flat_map(|c| encoder::candidates(*c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if !profile.rungs.iter().any(|r| r.codec == codec) {
            return Err(TranscodeError::Usage(format!(
                "--encoder {} encodes {}, but profile {} has no {} rung",
                args.encoder,
                codec.as_str(),
                profile.name,
                codec.as_str()
            )));
        }
    }
    Ok(profile)
}

pub fn limits(args: &LimitArgs) -> Result<(Limits, Duration)> {
    for (name, v) in [("--max-width", args.max_width), ("--max-height", args.max_height)] {
        if v < 16 {
            return Err(TranscodeError::Usage(format!("{name} {v} is too small (expected at least 16)")));
        }
    }
    if args.max_duration <= 0.0 {
        return Err(TranscodeError::Usage("--max-duration must be positive".into()));
    }
    let limits = Limits { max_width: args.max_width, max_height: args.max_height, max_duration: args.max_duration };
    Ok((limits, Duration::from_secs(args.stall_timeout.max(1))))
}

impl Job {
    pub fn from_args(args: LocalArgs) -> Result<Job> {
        let profile = encoding(&args.encoding)?;
        let chunking = match args.chunking.chunk_seconds {
            None => None,
            Some(s) if !(s.is_finite() && (1.0..=3600.0).contains(&s)) => {
                return Err(TranscodeError::Usage(format!("--chunk-seconds {s} is out of range (expected 1 to 3600)")));
            }
            Some(chunk_seconds) => Some(Chunking::Split(crate::chunked::LocalChunking {
                chunk_seconds,
                workers: args.chunking.workers.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |w| w as usize),
                worker_args: [args.encoding.to_args(), args.limits.to_args()].concat(),
            })),
        };
        let key = match &args.key_hex {
            Some(hex) => ContentKey::from_hex(hex).map_err(|e| TranscodeError::Usage(format!("--key-hex: {e}")))?,
            None => ContentKey::generate()?,
        };
        let (limits, stall_timeout) = limits(&args.limits)?;
        // A given CMAF key keeps the KID a fresh one would have (derived from the folder name).
        let cmaf_key = match &args.cmaf_key_hex {
            Some(hex) => {
                let key = ContentKey::from_hex(hex).map_err(|e| TranscodeError::Usage(format!("--cmaf-key-hex: {e}")))?;
                Some(CmafKey::held(key, local_cmaf_kid(&args.out).1))
            }
            None => None,
        };
        Ok(Job {
            input: args.input,
            remote: None,
            out: args.out,
            profile,
            encoder: args.encoding.encoder,
            preset: args.encoding.preset,
            key,
            key_storage: KeyStorage::File(args.key_file),
            key_uri: args.key_uri,
            key_period_segments: args.key_period_segments.map(|n| n as usize),
            cmaf_key,
            limits,
            stall_timeout,
            chunking,
        })
    }

    /// A chunk worker's job: only what encoding a chunk reads.
    pub fn for_chunk(args: &crate::cli::ChunkArgs) -> Result<Job> {
        let (limits, stall_timeout) = limits(&args.limits)?;
        Job::reading(args.input.clone(), None, encoding(&args.encoding)?, &args.encoding, (limits, stall_timeout))
    }

    /// A job that only reads the source (to plan a chunked title, or to encode one chunk): its
    /// key is a fresh one no output is ever encrypted with.
    pub fn reading(
        input: PathBuf,
        remote: Option<crate::probe::RemoteSource>,
        profile: Profile,
        args: &EncodingArgs,
        (limits, stall_timeout): (Limits, Duration),
    ) -> Result<Job> {
        Ok(Job {
            input,
            remote,
            out: std::env::temp_dir(),
            profile,
            encoder: args.encoder.clone(),
            preset: args.preset.clone(),
            key: ContentKey::generate()?,
            key_storage: KeyStorage::MemoryOnly,
            key_uri: None,
            key_period_segments: None,
            cmaf_key: None,
            limits,
            stall_timeout,
            chunking: None,
        })
    }
}

/// `local`'s CMAF key from a SPEKE key provider, where `--speke-url` names one (the KID is the
/// one a key of `local`'s own would have, from the output folder's name).
pub fn vendor_key(drm: &crate::cli::DrmArgs, job: &Job) -> Result<Option<CmafKey>> {
    if drm.speke_url.is_none() {
        return Ok(None);
    }
    if job.cmaf_key.is_some() {
        return Err(TranscodeError::Usage("--cmaf-key-hex and --speke-url both name the CMAF key: give one".into()));
    }
    let (title, kid) = local_cmaf_kid(&job.out);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TranscodeError::Fatal(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let Some((provider, systems)) = crate::key_provider::from_args(drm).await? else { return Ok(None) };
        crate::key_provider::vendor_key(&provider, systems, format!("local/{title}"), kid).await.map(Some)
    })
}

/// The title `local` names an output folder's CMAF key after (the folder's name), and the KID
/// derived from it: the same whether `local` makes the key, is given it, or asks a key provider.
pub fn local_cmaf_kid(out: &std::path::Path) -> (String, vaultstream::cenc::Kid) {
    let title = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let kid = vaultstream::cenc::Kid::derive("local", &title, vaultstream::cenc::CMAF_KEY_ID);
    (title, kid)
}
