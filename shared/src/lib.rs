//! VaultStream's domain core: the rules every binary shares, with no Lambda runtime and no FFmpeg.
//!
//! - [`content_key`]: the per-content AES-128 key, zeroized and unprintable, and its key ids.
//! - [`segment_cipher`]: AES-128-CBC + PKCS7 over whole HLS segments (RFC 8216 §5.2).
//! - [`ladder`]: encoding profiles (built-in and JSON) and how a ladder is planned for a source.
//! - [`codec_string`]: RFC 6381 `CODECS` values read from the encoded bitstream.
//! - [`hls`]: master and media playlists, rendered through `m3u8-rs`.
//! - [`error`]: the crate's classified error type.
//!
//! The access path (viewers, keys, audit):
//! - [`ids`], [`principal`]: validated identifiers and the verified caller.
//! - [`identity`]: JWTs against a JWKS, API tokens, revoked sessions.
//! - [`catalog`], [`content_keys`], [`origin`]: content records, KMS-wrapped keys, playlists.
//! - [`service_secret`], [`session_token`], [`session_wrap`]: HMAC tokens and wrapped delivery.
//! - [`cdn`]: CloudFront policies, signed URLs and cookies, tenant host names.
//! - [`audit`]: the hash-chained ledger and its verifier.
//! - [`access`]: the use cases the Lambda functions call.
//!
//! - [`bootstrap`]: provisions a deployment's resources in an emulator (local stack, tests, LocalStack).

pub mod access;
pub mod audit;
pub mod bootstrap;
pub mod catalog;
pub mod cdn;
pub mod codec_string;
pub mod content_keys;
pub mod content_key;
pub mod error;
pub mod hls;
pub mod identity;
pub mod ids;
pub mod ladder;
pub mod origin;
pub mod principal;
pub mod segment_cipher;
pub mod service_secret;
pub mod session_token;
pub mod session_wrap;

pub use content_key::{ContentKey, KeyId};
pub use error::{Error, ErrorClass};
