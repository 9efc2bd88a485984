//! A transcode job's AWS access, scoped to its tenant: the job's own role may only assume the
//! tenant role, tagging the session `tenant = <its tenant>`; every policy of the tenant role names
//! `${aws:PrincipalTag/tenant}` (S3 prefixes, DynamoDB leading keys, the KMS encryption context),
//! so whatever the job's code does, its requests reach only that tenant's sources, origin folder,
//! records, ledger chains and content keys.
//!
//! The session is renewed before it expires (role chaining caps it at an hour; jobs run longer).

use std::time::SystemTime;

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_sts::types::Tag;

use crate::ids::{ContentId, TenantId};

/// The session tag the tenant role's policies read.
pub const TENANT_TAG: &str = "tenant";
/// Role chaining allows at most an hour.
const SESSION_SECONDS: i32 = 3600;

#[derive(Debug)]
pub struct TenantRoleCredentials {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    tenant: TenantId,
    session_name: String,
    /// The session [`Self::assume`] opened, handed to the SDK on its first ask instead of a
    /// second AssumeRole; later asks (near expiry) assume again.
    opened: std::sync::Mutex<Option<Credentials>>,
}

/// Why the tenant role could not be assumed; `denied` when STS refused (a deployment error,
/// not worth a retry).
#[derive(Debug)]
pub struct AssumeError {
    pub denied: bool,
    pub message: String,
}

impl TenantRoleCredentials {
    pub fn new(config: &aws_config::SdkConfig, role_arn: impl Into<String>, tenant: &TenantId, content: &ContentId) -> Self {
        TenantRoleCredentials {
            sts: aws_sdk_sts::Client::new(config),
            role_arn: role_arn.into(),
            tenant: tenant.clone(),
            // At most 64 characters: `transcode-` and the 32 hex digits of a content id.
            session_name: format!("transcode-{content}"),
            opened: std::sync::Mutex::new(None),
        }
    }

    /// Opens the session up front, so a job that cannot act as its tenant stops before it
    /// starts; returns the assumed-role ARN it acts as.
    pub async fn open(&self) -> Result<String, AssumeError> {
        let (credentials, acting_as) = self.assume().await?;
        if let Ok(mut opened) = self.opened.lock() {
            *opened = Some(credentials);
        }
        Ok(acting_as)
    }

    /// One session: its credentials and the assumed-role ARN.
    async fn assume(&self) -> Result<(Credentials, String), AssumeError> {
        let tag = Tag::builder()
            .key(TENANT_TAG)
            .value(self.tenant.as_str())
            .build()
            .map_err(|e| AssumeError { denied: false, message: e.to_string() })?;
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .tags(tag)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(|e| {
                let denied = e.as_service_error().is_some_and(|s| {
                    matches!(aws_sdk_sts::error::ProvideErrorMetadata::code(s), Some("AccessDenied" | "MalformedPolicyDocument"))
                });
                AssumeError { denied, message: format!("assuming {}: {}", self.role_arn, aws_sdk_sts::error::DisplayErrorContext(&e)) }
            })?;
        let assumed = out.assumed_role_user().map(|u| u.arn().to_string()).unwrap_or_default();
        let c = out.credentials.ok_or_else(|| AssumeError { denied: false, message: "STS returned no credentials".into() })?;
        let expiry = SystemTime::try_from(c.expiration).ok();
        Ok((Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), expiry, "VaultStreamTenantRole"), assumed))
    }

    /// `config` acting as this tenant's session from now on.
    pub fn config(self, config: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        config.to_builder().credentials_provider(SharedCredentialsProvider::new(self)).build()
    }
}

impl ProvideCredentials for TenantRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            if let Some(opened) = self.opened.lock().ok().and_then(|mut o| o.take()) {
                return Ok(opened);
            }
            self.assume().await.map(|(credentials, _)| credentials).map_err(|e| CredentialsError::provider_error(e.message))
        })
    }
}
