//! Customers' buckets as monitors read them: S3 through the customer's role (assumed with the
//! monitor's external id, then a client with that session's credentials, in the bucket's region),
//! GCS through [`crate::gcs`] with the service account key read from Secrets Manager.
//!
//! The deployment's own buckets are out of every monitor's reach, three times over: a monitor
//! naming one (or a role of the deployment's account) is refused before anything is assumed;
//! the assumed session carries a session policy that denies every platform bucket whatever the
//! role allows; and each list and read names the role's account as `ExpectedBucketOwner`, so S3
//! itself refuses a bucket that account does not own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;

use crate::gcs::GcsClient;
use crate::ingest::monitors::{role_account, PlatformBuckets, ServiceAccountKey};
use crate::ingest::ports::{BucketAccess, CloudBuckets, FetchError, FetchedBody, FetchedHead, ListedObject, Monitor, ObjectPage};

/// S3 error codes that only the customer can clear.
const CUSTOMER_MUST_ACT: [&str; 6] =
    ["AccessDenied", "NoSuchBucket", "AllAccessDisabled", "PermanentRedirect", "AuthorizationHeaderMalformed", "InvalidAccessKeyId"];

/// An assumed session is used this long (STS grants an hour), across listing pages and, in a
/// warm function, across invocations.
const SESSION_REUSE: Duration = Duration::from_secs(45 * 60);

pub struct CloudBucketsClient {
    /// S3 clients acting as a monitor's role, by tenant, monitor and role, until their time.
    sessions: Mutex<HashMap<String, (aws_sdk_s3::Client, Instant)>>,
    /// STS (S3 monitors) and Secrets Manager (GCS monitors) are built on first use: a poll that
    /// reads no bucket of that kind, and a function's start, pay for neither.
    aws: crate::aws::Clients,
    gcs: GcsClient,
    platform: PlatformBuckets,
}

/// The session policy every monitor's session carries: reads, and nothing of the platform's.
fn session_policy(platform: &PlatformBuckets, role_arn: &str) -> String {
    let partition = role_arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws");
    let denied: Vec<String> =
        platform.names().iter().flat_map(|b| [format!("arn:{partition}:s3:::{b}"), format!("arn:{partition}:s3:::{b}/*")]).collect();
    let mut statements = vec![serde_json::json!({
        "Sid": "ReadTheMonitoredBucket", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": "*"
    })];
    if !denied.is_empty() {
        statements.push(serde_json::json!({"Sid": "NeverThePlatformsBuckets", "Effect": "Deny", "Action": "s3:*", "Resource": denied}));
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

impl CloudBucketsClient {
    pub fn new(clients: &crate::aws::Clients, gcs: GcsClient, platform: PlatformBuckets) -> Self {
        CloudBucketsClient { sessions: Mutex::new(HashMap::new()), aws: clients.clone(), gcs, platform }
    }

    /// An S3 client acting as the customer's role, and the role's account (the bucket's owner).
    async fn customer_s3(&self, monitor: &Monitor) -> Result<(aws_sdk_s3::Client, String, String), FetchError> {
        let BucketAccess::S3 { region, role_arn, external_id } = &monitor.access else {
            return Err(FetchError::Refused("not an S3 monitor".into()));
        };
        // Monitors made before the rule existed are held to it here, at every read.
        if let Some(why) = self.platform.refuse_s3(&monitor.bucket, role_arn) {
            return Err(FetchError::Refused(why));
        }
        let owner = role_account(role_arn).ok_or_else(|| FetchError::Refused(format!("role_arn: {role_arn:?} names no account")))?;
        let owner = owner.to_string();
        let session_key = format!("{}/{}/{role_arn}", monitor.tenant, monitor.monitor_id);
        if let Some((client, until)) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&session_key) {
            if *until > Instant::now() {
                return Ok((client.clone(), role_arn.clone(), owner));
            }
        }
        let assumed = self
            .aws
            .sts()
            .assume_role()
            .role_arn(role_arn)
            .external_id(external_id)
            .role_session_name(format!("vaultstream-{}", monitor.monitor_id))
            .policy(session_policy(&self.platform, role_arn))
            .duration_seconds(3600)
            .send()
            .await
            .map_err(|e| {
                // Throttling and STS's own failures pass; anything else STS says is a refusal.
                let code = e.as_service_error().and_then(|s| s.code()).unwrap_or_default();
                let refused = !code.is_empty() && !code.contains("Throttl") && code != "InternalFailure" && code != "ServiceUnavailable";
                let detail = DisplayErrorContext(&e).to_string();
                if refused {
                    FetchError::Refused(format!(
                        "VaultStream could not assume {role_arn} ({detail}); let the role trust VaultStream's account \
                         with the condition sts:ExternalId = {external_id}"
                    ))
                } else {
                    FetchError::Failed(format!("assuming {role_arn} failed: {detail}"))
                }
            })?;
        let session = assumed.credentials.ok_or_else(|| FetchError::Failed("STS answered without credentials".into()))?;
        let credentials =
            Credentials::new(session.access_key_id, session.secret_access_key, Some(session.session_token), None, "vaultstream-monitor");
        let config = aws_sdk_s3::config::Builder::from(&self.aws.config)
            .credentials_provider(credentials)
            .region(aws_sdk_s3::config::Region::new(region.clone()))
            .force_path_style(self.aws.path_style)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(session_key, (client.clone(), Instant::now() + SESSION_REUSE));
        Ok((client, role_arn.clone(), owner))
    }

    async fn service_account(&self, monitor: &Monitor) -> Result<ServiceAccountKey, FetchError> {
        let BucketAccess::Gcs { secret_id, .. } = &monitor.access else {
            return Err(FetchError::Refused("not a GCS monitor".into()));
        };
        let found = self.aws.secrets().get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
            let gone = e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception());
            let detail = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
            if gone {
                FetchError::Refused("the monitor's service account key is gone; remove the monitor and add it again".into())
            } else {
                FetchError::Failed(format!("the service account key could not be read: {detail}"))
            }
        })?;
        let json = zeroize::Zeroizing::new(found.secret_string.unwrap_or_default());
        ServiceAccountKey::parse(&json).map_err(FetchError::Refused)
    }
}

fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_s3::error::SdkError<E, R>,
    what: &str,
    role: &str,
) -> FetchError {
    let code = e.as_service_error().and_then(|s| s.code()).map(str::to_string);
    let detail = DisplayErrorContext(&e).to_string();
    match code.as_deref() {
        Some("AccessDenied") => {
            FetchError::Refused(format!("{role} may not read {what} (AccessDenied); allow it s3:ListBucket and s3:GetObject there"))
        }
        Some("NoSuchBucket") => FetchError::Refused(format!("{what}: no such bucket; check its name and the monitor's region")),
        Some("NoSuchKey") => FetchError::Refused(format!("{what} no longer exists")),
        Some("PreconditionFailed") => {
            FetchError::Refused(format!("{what} changed after it was listed; its new version is imported on its own"))
        }
        Some(code) if CUSTOMER_MUST_ACT.contains(&code) => FetchError::Refused(format!("{what}: {detail}")),
        _ => FetchError::Failed(format!("{what}: {detail}")),
    }
}

#[async_trait::async_trait]
impl CloudBuckets for CloudBucketsClient {
    async fn list(&self, monitor: &Monitor, page: Option<String>, start_after: Option<&str>) -> Result<ObjectPage, FetchError> {
        match &monitor.access {
            BucketAccess::S3 { .. } => {
                let (s3, role, owner) = self.customer_s3(monitor).await?;
                let out = s3
                    .list_objects_v2()
                    .bucket(&monitor.bucket)
                    .expected_bucket_owner(owner)
                    .prefix(&monitor.prefix)
                    .set_continuation_token(page)
                    .set_start_after(start_after.map(str::to_string))
                    .send()
                    .await
                    .map_err(|e| s3_error(e, &format!("s3://{}/{}", monitor.bucket, monitor.prefix), &role))?;
                let objects = out
                    .contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| {
                        Some(ListedObject {
                            key: o.key?,
                            version: o.e_tag?.trim_matches('"').to_string(),
                            size: o.size.unwrap_or_default().max(0) as u64,
                        })
                    })
                    .collect();
                let next = out.next_continuation_token.filter(|_| out.is_truncated.unwrap_or(false));
                Ok(ObjectPage { objects, next })
            }
            BucketAccess::Gcs { .. } => {
                let key = self.service_account(monitor).await?;
                self.gcs.list(&key, &monitor.bucket, &monitor.prefix, page, start_after).await
            }
        }
    }

    async fn open(&self, monitor: &Monitor, key: &str, version: &str) -> Result<Box<dyn FetchedBody>, FetchError> {
        match &monitor.access {
            BucketAccess::S3 { .. } => {
                let (s3, role, owner) = self.customer_s3(monitor).await?;
                let final_url = monitor.object_url(key).map_err(FetchError::Refused)?;
                let out = s3
                    .get_object()
                    .bucket(&monitor.bucket)
                    .expected_bucket_owner(owner)
                    .key(key)
                    .if_match(format!("\"{version}\""))
                    .send()
                    .await
                    .map_err(|e| s3_error(e, final_url.as_str(), &role))?;
                let head = FetchedHead {
                    status: 200,
                    content_type: out.content_type.clone(),
                    content_length: out.content_length.map(|n| n.max(0) as u64),
                    final_url,
                    etag: out.e_tag.clone(),
                    last_modified: None,
                };
                Ok(Box::new(S3Body { head, body: out.body }))
            }
            BucketAccess::Gcs { .. } => {
                let account = self.service_account(monitor).await?;
                self.gcs.open(&account, &monitor.bucket, key, version).await
            }
        }
    }
}

struct S3Body {
    head: FetchedHead,
    body: ByteStream,
}

#[async_trait::async_trait]
impl FetchedBody for S3Body {
    fn head(&self) -> &FetchedHead {
        &self.head
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        self.body.next().await.transpose().map_err(|e| FetchError::Failed(format!("reading the object broke off: {e}")))
    }
}
