//! The source bucket (S3): presigned uploads, multipart completion, HEAD and ranged reads, and
//! the platform's own writes (imports), and the drop zones' files.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart as S3Part};

use crate::ingest::ports::{CompletedPart, DropBox, FetchError, ObjectHead, PresignedRequest, SourceError, SourceStore, SourceWriter};
use crate::ingest::post_policy::{self, PostTarget, PresignedPost, SigningCredentials};

pub struct S3SourceStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// For form uploads: the SDK presigns requests, not POST policies, and its S3 config does
    /// not hand out the credentials it signs with.
    credentials: Option<SharedCredentialsProvider>,
}

impl S3SourceStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3SourceStore { client, bucket: bucket.into(), credentials: None }
    }

    /// Signs form uploads with `credentials` (those of `client`: [`super::Clients::credentials`]).
    pub fn signing_forms_with(mut self, credentials: Option<SharedCredentialsProvider>) -> Self {
        self.credentials = credentials;
        self
    }
}

fn presigning(ttl: Duration) -> Result<PresigningConfig, SourceError> {
    PresigningConfig::expires_in(ttl).map_err(|e| SourceError::Unavailable(format!("cannot presign for {} s: {e}", ttl.as_secs())))
}

fn unavailable<E: std::error::Error + 'static>(e: E) -> SourceError {
    SourceError::Unavailable(DisplayErrorContext(e).to_string())
}

#[async_trait::async_trait]
impl SourceStore for S3SourceStore {
    async fn presign_put(&self, key: &str, content_type: &str, size: u64, ttl: Duration) -> Result<PresignedRequest, SourceError> {
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size as i64)
            .presigned(presigning(ttl)?)
            .await
            .map_err(unavailable)?;
        let headers: BTreeMap<String, String> = presigned.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
        Ok(PresignedRequest { url: presigned.uri().to_string(), headers })
    }

    async fn presign_post(&self, key: &str, content_type: &str, size: u64, ttl: Duration) -> Result<PresignedPost, SourceError> {
        // The bucket's endpoint as the SDK resolves it for this key (virtual-hosted, FIPS,
        // dual-stack or an emulator's path-style URL).
        let put = self.presign_put(key, content_type, size, ttl).await?;
        let url = post_policy::bucket_url(&put.url, key)
            .ok_or_else(|| SourceError::Unavailable(format!("cannot tell the bucket's endpoint from {}", put.url)))?;
        let region =
            self.client.config().region().ok_or_else(|| SourceError::Unavailable("no AWS region is configured to sign for".into()))?;
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| SourceError::Unavailable("no AWS credentials are configured to sign forms with".into()))?;
        let credentials = provider.provide_credentials().await.map_err(unavailable)?;
        let now = SystemTime::now();
        // A policy outlives nothing it is signed with: temporary credentials end it early.
        let ttl = credentials.expiry().and_then(|end| end.duration_since(now).ok()).map_or(ttl, |left| left.min(ttl));
        let signer = SigningCredentials {
            access_key_id: credentials.access_key_id(),
            secret_access_key: credentials.secret_access_key(),
            session_token: credentials.session_token(),
            region: region.as_ref(),
        };
        let target = PostTarget { bucket: &self.bucket, key, content_type, size };
        Ok(post_policy::presign_post(url, &target, &signer, now, ttl))
    }

    async fn start_multipart(&self, key: &str, content_type: &str) -> Result<String, SourceError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(unavailable)?;
        out.upload_id.ok_or_else(|| SourceError::Unavailable("S3 returned no upload id".into()))
    }

    async fn presign_part(&self, key: &str, upload_id: &str, part_number: u32, ttl: Duration) -> Result<String, SourceError> {
        let presigned = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number as i32)
            .presigned(presigning(ttl)?)
            .await
            .map_err(unavailable)?;
        Ok(presigned.uri().to_string())
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> Result<String, SourceError> {
        let parts_count = parts.len();
        let parts = parts.iter().map(|p| S3Part::builder().part_number(p.part_number as i32).e_tag(&p.etag).build()).collect();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        match result {
            Ok(out) => out.e_tag.ok_or_else(|| SourceError::Unavailable("S3 returned no ETag".into())),
            // The upload completed but its answer did not parse (moto answers with another XML
            // root than S3 does): the object itself says whether it is the completed upload.
            Err(e)
                if e.raw_response().is_some_and(|r| r.status().is_success())
                    && e.as_service_error().and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s)).is_none() =>
            {
                match self.head(key).await? {
                    Some(head) if head.etag.trim_matches('"').ends_with(&format!("-{}", parts_count)) => Ok(head.etag),
                    _ => Err(unavailable(e)),
                }
            }
            Err(e) => {
                let code =
                    e.as_service_error().and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s)).unwrap_or_default().to_string();
                match code.as_str() {
                    "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "NoSuchUpload" | "MalformedXML" => {
                        let message = e
                            .as_service_error()
                            .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::message(s))
                            .unwrap_or("refused")
                            .to_string();
                        Err(SourceError::Rejected(format!("{code}: {message}")))
                    }
                    _ => Err(unavailable(e)),
                }
            }
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, SourceError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(ObjectHead {
                size: out.content_length.unwrap_or(0).max(0) as u64,
                etag: out.e_tag.unwrap_or_default(),
                content_type: out.content_type,
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn read_range(&self, key: &str, etag: &str, start: u64, len: u64) -> Result<Vec<u8>, SourceError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let range = format!("bytes={start}-{}", start + len - 1);
        let out = match self.client.get_object().bucket(&self.bucket).key(key).range(range).if_match(etag).send().await {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => return Err(SourceError::Changed),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Err(SourceError::Changed),
            Err(e) => return Err(unavailable(e)),
        };
        let bytes = out.body.collect().await.map_err(|e| SourceError::Unavailable(e.to_string()))?.into_bytes();
        Ok(bytes.to_vec())
    }
}

#[async_trait::async_trait]
impl SourceWriter for S3SourceStore {
    async fn put_object(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<String, SourceError> {
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(unavailable)?;
        out.e_tag.ok_or_else(|| SourceError::Unavailable("S3 returned no ETag".into()))
    }

    async fn upload_part(&self, key: &str, upload_id: &str, part_number: u32, body: Vec<u8>) -> Result<String, SourceError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number as i32)
            .body(body.into())
            .send()
            .await
            .map_err(unavailable)?;
        out.e_tag.ok_or_else(|| SourceError::Unavailable("S3 returned no ETag for the part".into()))
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), SourceError> {
        match self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// A dropped file as it streams out of the bucket.
struct DroppedBody {
    head: crate::ingest::ports::FetchedHead,
    body: aws_sdk_s3::primitives::ByteStream,
}

#[async_trait::async_trait]
impl crate::ingest::ports::FetchedBody for DroppedBody {
    fn head(&self) -> &crate::ingest::ports::FetchedHead {
        &self.head
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        self.body.next().await.transpose().map_err(|e| FetchError::Failed(format!("reading the dropped file broke off: {e}")))
    }
}

#[async_trait::async_trait]
impl DropBox for S3SourceStore {
    async fn open_dropped(&self, key: &str, etag: &str) -> Result<Box<dyn crate::ingest::ports::FetchedBody>, FetchError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).if_match(format!("\"{etag}\"")).send().await {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                return Err(FetchError::Refused(
                    "the dropped file was replaced after its upload finished; the new one is imported on its own".into(),
                ))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(FetchError::Refused("the dropped file was deleted before it could be imported".into()))
            }
            Err(e) => return Err(FetchError::Failed(DisplayErrorContext(e).to_string())),
        };
        let final_url = url::Url::parse("ftp://drop/")
            .and_then(|u| u.join(key.strip_prefix("drop/").unwrap_or(key)))
            .map_err(|e| FetchError::Refused(e.to_string()))?;
        let head = crate::ingest::ports::FetchedHead {
            status: 200,
            content_type: out.content_type.clone(),
            content_length: out.content_length.map(|n| n.max(0) as u64),
            final_url,
            etag: out.e_tag.clone(),
            last_modified: None,
        };
        Ok(Box::new(DroppedBody { head, body: out.body }))
    }

    async fn remove_dropped(&self, key: &str) -> Result<(), SourceError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn quarantine_dropped(&self, key: &str, etag: &str, to: &str, reason: &str) -> Result<(), SourceError> {
        let source = format!("{}/{}", self.bucket, percent_encoding::utf8_percent_encode(key, COPY_SOURCE));
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .copy_source_if_match(format!("\"{etag}\""))
            .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
            .tagging(format!("vaultstream-quarantine={reason}"))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// What a copy source's key may keep unencoded: S3 takes it URL-encoded, slashes as they are.
const COPY_SOURCE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
