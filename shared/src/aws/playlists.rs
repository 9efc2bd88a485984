//! Published playlists in the origin bucket (S3).

use crate::origin::{OriginError, PlaylistPath, PlaylistStore, Published};

pub struct S3Playlists {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Playlists {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Playlists { client, bucket: bucket.into() }
    }
}

#[async_trait::async_trait]
impl PlaylistStore for S3Playlists {
    async fn get(&self, published: &Published<'_>, path: &PlaylistPath) -> Result<Option<String>, OriginError> {
        let key = path.object_key(published);
        let out = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(OriginError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(&e).to_string())),
        };
        let bytes = out.body.collect().await.map_err(|e| OriginError::Unavailable(e.to_string()))?.into_bytes();
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| OriginError::NotText)
    }
}
