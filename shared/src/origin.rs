//! Published HLS playlists in the origin bucket, under `{tenant}/{content_id}/`. The manifest
//! function reads them to personalise; segments are never read here (viewers fetch them from
//! the CDN with signed cookies).

use async_trait::async_trait;

use crate::ids::{ContentId, RenditionName, TenantId};

/// Which playlist of a content item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistPath {
    Master,
    Media(RenditionName),
}

impl PlaylistPath {
    pub fn relative(&self) -> String {
        match self {
            PlaylistPath::Master => "master.m3u8".into(),
            PlaylistPath::Media(r) => format!("{r}/index.m3u8"),
        }
    }

    pub fn object_key(&self, tenant: &TenantId, content: &ContentId) -> String {
        format!("{tenant}/{content}/{}", self.relative())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("the origin bucket is unavailable: {0}")]
    Unavailable(String),
    #[error("the stored playlist is not UTF-8")]
    NotText,
}

#[async_trait]
pub trait PlaylistStore: Send + Sync {
    async fn get(&self, tenant: &TenantId, content: &ContentId, path: &PlaylistPath) -> Result<Option<String>, OriginError>;
}

pub struct S3Playlists {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Playlists {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Playlists { client, bucket: bucket.into() }
    }
}

#[async_trait]
impl PlaylistStore for S3Playlists {
    async fn get(&self, tenant: &TenantId, content: &ContentId, path: &PlaylistPath) -> Result<Option<String>, OriginError> {
        let key = path.object_key(tenant, content);
        let out = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(OriginError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(&e).to_string())),
        };
        let bytes = out.body.collect().await.map_err(|e| OriginError::Unavailable(e.to_string()))?.into_bytes();
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| OriginError::NotText)
    }
}
