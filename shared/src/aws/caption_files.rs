//! Published caption files in the origin bucket (S3), beside the title's versions.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;

use crate::captions::CaptionStore;
use crate::ids::{ContentId, TenantId};
use crate::origin::OriginError;

pub struct S3CaptionFiles {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3CaptionFiles {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3CaptionFiles { client, bucket: bucket.into() }
    }
}

fn key(tenant: &TenantId, content: &ContentId, file: &str) -> String {
    format!("{tenant}/{content}/{file}")
}

#[async_trait::async_trait]
impl CaptionStore for S3CaptionFiles {
    async fn put(&self, tenant: &TenantId, content: &ContentId, file: &str, webvtt: &str) -> Result<(), OriginError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key(tenant, content, file))
            .content_type("text/vtt; charset=utf-8")
            // The name carries the file's digest: a changed track is a new file.
            .cache_control("public, max-age=31536000, immutable")
            .body(ByteStream::from(webvtt.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| OriginError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }

    async fn delete(&self, tenant: &TenantId, content: &ContentId, file: &str) -> Result<(), OriginError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key(tenant, content, file))
            .send()
            .await
            .map_err(|e| OriginError::Unavailable(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}
