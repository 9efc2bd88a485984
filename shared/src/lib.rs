//! VaultStream's domain core: the rules every binary shares, with no Lambda runtime and no FFmpeg.
//! Rules and the ports they need sit at the top; adapters live apart, the AWS ones in [`aws`] and
//! the in-memory ones in [`memory`].
//!
//! Media:
//! - [`content_key`]: the per-content AES-128 key, zeroized and unprintable, and its key ids.
//! - [`segment_cipher`]: AES-128-CBC + PKCS7 over whole HLS segments (RFC 8216 §5.2).
//! - [`cmaf`]: the CMAF packaging's HLS playlists and DASH MPD, and their personalisation.
//! - [`cenc`]: common encryption's KIDs and the ClearKey licence exchange (CMAF, `cbcs`).
//! - [`ladder`]: encoding profiles (built-in and JSON) and how a ladder is planned for a source.
//! - [`codec_string`]: RFC 6381 `CODECS` values read from the encoded bitstream.
//! - [`hls`]: master and media playlists, rendered through `m3u8-rs`.
//! - [`captions`]: SRT and WebVTT sidecars, checked and published as subtitle renditions.
//! - [`chunking`]: split-and-stitch: where a long title is cut, and what its chunks report.
//!
//! Content and ingest:
//! - [`ids`], [`principal`]: validated identifiers and the verified caller.
//! - [`catalog`]: content records, their states and the conditional changes that move them.
//! - [`ingest`]: the upload, dispatch and job-outcome rules, and the ports they drive (source
//!   objects, Batch jobs, retries, notifications).
//! - [`content_keys`], [`origin`]: KMS-wrapped keys, published versions and playlists.
//! - [`metadata`]: what describes a title, from the request, sidecars and the file's own tags.
//!
//! Access (viewers, keys, audit):
//! - [`identity`]: JWTs against a JWKS, API tokens, revoked sessions.
//! - [`service_secret`], [`session_token`], [`session_wrap`]: HMAC tokens and wrapped delivery.
//! - [`cdn`]: CloudFront policies, signed URLs and cookies, tenant host names.
//! - [`audit`]: the hash-chained ledger and its verifier.
//! - [`access`]: the use cases the viewer-facing Lambda functions call.
//!
//! Adapters: [`aws`] (DynamoDB, S3, KMS, SQS, Batch, EventBridge, STS, Secrets Manager), [`gcs`]
//! (Google Cloud Storage, read only) and [`memory`].
//! [`error`] is the crate's classified error type; [`clock`] the time the rules read; [`emf`]
//! writes CloudWatch Embedded Metric Format documents.

pub mod access;
pub mod audit;
pub mod aws;
pub mod captions;
pub mod catalog;
pub mod cdn;
pub mod cenc;
pub mod chunking;
pub mod clock;
pub mod cmaf;
pub mod codec_string;
pub mod content_key;
pub mod content_keys;
pub mod cpix;
pub mod drm;
pub mod emf;
pub mod error;
pub mod gcs;
pub mod hls;
pub mod identity;
pub mod ids;
pub mod ingest;
pub mod ladder;
pub mod lazy_http;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod origin;
pub mod principal;
pub mod segment_cipher;
pub mod service_secret;
pub mod session_token;
pub mod session_wrap;
pub mod traces;

pub use content_key::{ContentKey, KeyId};
pub use error::{Error, ErrorClass};
