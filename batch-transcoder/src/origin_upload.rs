//! `run` mode's output: a finished transcode copied to a new version prefix in the origin bucket,
//! `{tenant}/{content_id}/{version}/`, in the order that keeps it consistent: segments, init
//! sections and pictures first, then the media playlists, then the master last. Nothing names the
//! version until the content record is flipped to it, so readers never see it half written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::error::{Result, TranscodeError};

/// What the upload wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uploaded {
    pub objects: u64,
    pub bytes: u64,
}

/// One file of the output: where it is, and its key relative to the version prefix.
struct Item {
    path: PathBuf,
    relative: String,
}

fn content_type(relative: &str) -> &'static str {
    match relative.rsplit('.').next() {
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("jpg") => "image/jpeg",
        Some("vtt") => "text/vtt",
        _ => "application/octet-stream",
    }
}

/// Versions never change once written: media can be cached for good. Playlists are read only by
/// the manifest function, which personalises them.
fn cache_control(relative: &str) -> &'static str {
    if is_manifest(relative) {
        "private, no-store"
    } else {
        "public, max-age=31536000, immutable"
    }
}

/// Playlists and MPDs: uploaded after every file they name, and never cached.
fn is_manifest(relative: &str) -> bool {
    relative.ends_with(".m3u8") || relative.ends_with(".mpd")
}

fn walk(dir: &Path, relative: &str, out: &mut Vec<Item>) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| TranscodeError::output(&format!("reading {}", dir.display()), e))?;
    if meta.is_file() {
        out.push(Item { path: dir.to_path_buf(), relative: relative.to_string() });
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| TranscodeError::output(&format!("reading {}", dir.display()), e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        walk(&entry.path(), &format!("{relative}/{name}"), out)?;
    }
    Ok(())
}

pub struct OriginUpload {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    /// `{tenant}/{content_id}/{version}/`.
    pub prefix: String,
    pub concurrency: usize,
}

impl OriginUpload {
    async fn put_all(&self, items: Vec<Item>) -> Result<Uploaded> {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        // Each PutObject is a span of the upload, wherever its task runs.
        let upload = tracing::Span::current();
        for item in items {
            let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), format!("{}{}", self.prefix, item.relative));
            let permits = Arc::clone(&permits);
            tasks.spawn(
                async move {
                    let _permit = permits.acquire_owned().await.map_err(|e| TranscodeError::Fatal(e.to_string()))?;
                    let bytes = std::fs::metadata(&item.path).map(|m| m.len()).unwrap_or(0);
                    let body = ByteStream::from_path(&item.path)
                        .await
                        .map_err(|e| TranscodeError::Temporary(format!("reading {}: {e}", item.path.display())))?;
                    client
                        .put_object()
                        .bucket(&bucket)
                        .key(&key)
                        .content_type(content_type(&item.relative))
                        .cache_control(cache_control(&item.relative))
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| {
                            TranscodeError::Temporary(format!(
                                "uploading s3://{bucket}/{key}: {}",
                                aws_sdk_s3::error::DisplayErrorContext(e)
                            ))
                        })?;
                    Ok::<u64, TranscodeError>(bytes)
                }
                .instrument(upload.clone()),
            );
        }
        let mut uploaded = Uploaded::default();
        while let Some(done) = tasks.join_next().await {
            let bytes = done.map_err(|e| TranscodeError::Fatal(format!("an upload task failed: {e}")))??;
            uploaded.objects += 1;
            uploaded.bytes += bytes;
        }
        Ok(uploaded)
    }

    /// Uploads `entries` (rendition folders and pictures under `dir`), then the media playlists,
    /// then `master`.
    pub async fn upload(&self, dir: &Path, entries: &[String], master: &[u8]) -> Result<Uploaded> {
        let mut items = Vec::new();
        for entry in entries {
            walk(&dir.join(entry), entry, &mut items)?;
        }
        let (playlists, media): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|i| is_manifest(&i.relative));
        let mut total = self.put_all(media).await?;
        let lists = self.put_all(playlists).await?;
        let key = format!("{}master.m3u8", self.prefix);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type("master.m3u8"))
            .cache_control(cache_control("master.m3u8"))
            .body(ByteStream::from(master.to_vec()))
            .send()
            .await
            .map_err(|e| {
                TranscodeError::Temporary(format!("uploading s3://{}/{key}: {}", self.bucket, aws_sdk_s3::error::DisplayErrorContext(e)))
            })?;
        total.objects += lists.objects + 1;
        total.bytes += lists.bytes + master.len() as u64;
        Ok(total)
    }
}
