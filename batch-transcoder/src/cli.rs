use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// The source video or audio file.
    pub input: PathBuf,

    /// Output folder (created; must be empty): master.m3u8, one folder per rendition, manifest.json.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

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

    /// Where the first content key is written (16 raw bytes, mode 0600); later key periods add
    /// `.k1`, `.k2`, ... Default: `<DIR>.key` beside the output folder, never inside it.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Use this key (32 hex digits) instead of a fresh random one. Prefer the environment
    /// variable: command lines are visible to other users of the machine.
    #[arg(long, value_name = "HEX", env = "VAULTSTREAM_KEY_HEX", hide_env_values = true)]
    pub key_hex: Option<String>,

    /// What EXT-X-KEY's URI names; `{key_id}` is replaced by the key id (k0, k1, ...).
    /// Default: the key file's path relative to each media playlist.
    #[arg(long, value_name = "URI")]
    pub key_uri: Option<String>,

    /// Rotate to a fresh key every N segments (key ids are listed in manifest.json).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub key_period_segments: Option<u32>,

    /// Target segment length in seconds (default: the profile's, 6).
    #[arg(long, value_name = "N")]
    pub segment_seconds: Option<f64>,

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
