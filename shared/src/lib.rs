//! VaultStream's domain core: the rules every binary shares, with no Lambda runtime and no FFmpeg.
//!
//! - [`content_key`]: the per-content AES-128 key, zeroized and unprintable, and its key ids.
//! - [`segment_cipher`]: AES-128-CBC + PKCS7 over whole HLS segments (RFC 8216 §5.2).
//! - [`ladder`]: encoding profiles (built-in and JSON) and how a ladder is planned for a source.
//! - [`codec_string`]: RFC 6381 `CODECS` values read from the encoded bitstream.
//! - [`hls`]: master and media playlists, rendered through `m3u8-rs`.
//! - [`error`]: the crate's classified error type.

pub mod codec_string;
pub mod content_key;
pub mod error;
pub mod hls;
pub mod ladder;
pub mod segment_cipher;

pub use content_key::{ContentKey, KeyId};
pub use error::{Error, ErrorClass};
