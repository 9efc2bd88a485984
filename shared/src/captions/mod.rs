//! Captions: WebVTT and SubRip sidecars a creator attaches to a title, at upload time or any
//! time later, published as HLS subtitle renditions.
//!
//! - [`cues`]: reading SRT and WebVTT into checked cues and writing one clean WebVTT file.
//! - [`track`]: what a track declares (language, label, default, forced) and its rules.
//! - [`service`]: the `PUT`/`DELETE /v1/content/{id}/captions/{track}` use case.
//!
//! The manifest function lists a title's tracks in its master playlist (`EXT-X-MEDIA
//! TYPE=SUBTITLES`) and serves each track's media playlist: one segment, the whole WebVTT file,
//! fetched from the CDN with the playback cookies like every other file of the title.

pub mod cues;
pub mod service;
pub mod track;

use async_trait::async_trait;

pub use cues::{CaptionError, CaptionFormat, Captions, Cue};

use crate::ids::{ContentId, TenantId};
use crate::origin::OriginError;

/// Where published caption files live: the origin bucket, under the content's folder.
#[async_trait]
pub trait CaptionStore: Send + Sync {
    /// Writes `{tenant}/{content}/{file}` as `text/vtt`.
    async fn put(&self, tenant: &TenantId, content: &ContentId, file: &str, webvtt: &str) -> Result<(), OriginError>;
    async fn delete(&self, tenant: &TenantId, content: &ContentId, file: &str) -> Result<(), OriginError>;
}
