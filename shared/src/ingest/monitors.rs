//! Cloud bucket monitors, the configuration: a tenant's administrator points VaultStream at a
//! bucket of their own (`POST /v1/monitors`), lists the monitors with what each poll found
//! (`GET /v1/monitors`) and removes one (`DELETE /v1/monitors/{monitor_id}`). The poller
//! ([`crate::ingest::monitor_poll`]) lists every monitored prefix on a schedule and copies each new
//! object in once, through the import queue.
//!
//! - **S3** is read through the customer's own role, assumed with an external id VaultStream
//!   generates for each monitor and shows once it is created: the customer puts it in the role's
//!   trust policy, so nobody who merely learns the role's ARN can have VaultStream read it for
//!   them (the confused deputy).
//! - **GCS** is read with a service account's key, given once in the request, kept in Secrets
//!   Manager under a name VaultStream chooses from the tenant and monitor, and never shown again.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::ids::MonitorId;
use crate::ingest::ports::{BucketAccess, Monitor, MonitorSecrets, MonitorStore, MonitorStoreError};
use crate::ladder;
use crate::principal::{Principal, Scope};

/// Monitors one tenant may keep.
pub const MAX_MONITORS_PER_TENANT: usize = 20;
/// S3 and GCS both cap object names at 1,024 bytes.
pub const MAX_PREFIX_BYTES: usize = 1024;
/// A service account key is about 2.3 KiB.
const MAX_KEY_BYTES: usize = 16 * 1024;

/// `POST /v1/monitors`'s body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorRequest {
    /// `s3` or `gcs`.
    pub provider: String,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// S3: the role VaultStream assumes, and the bucket's region (the deployment's by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// GCS: the service account's JSON key, as Google's console downloads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A monitor as the API shows it: never the service account's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorView {
    pub monitor_id: String,
    pub provider: &'static str,
    pub bucket: String,
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// What the role's trust policy must require (`sts:ExternalId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    pub profile: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_polled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<String>,
    pub imported: u32,
    pub refused: u32,
}

pub fn view(monitor: &Monitor) -> MonitorView {
    let (region, role_arn, external_id, service_account) = match &monitor.access {
        BucketAccess::S3 { region, role_arn, external_id } => {
            (Some(region.clone()), Some(role_arn.clone()), Some(external_id.clone()), None)
        }
        BucketAccess::Gcs { client_email, .. } => (None, None, None, Some(client_email.clone())),
    };
    MonitorView {
        monitor_id: monitor.monitor_id.to_string(),
        provider: monitor.access.provider(),
        bucket: monitor.bucket.clone(),
        prefix: monitor.prefix.clone(),
        region,
        role_arn,
        external_id,
        service_account,
        profile: monitor.profile.clone(),
        created_at: monitor.created_at.clone(),
        last_polled_at: monitor.last_polled_at.clone(),
        last_error: monitor.last_error.clone(),
        last_refusal: monitor.last_refusal.clone(),
        imported: monitor.imported,
        refused: monitor.refused,
    }
}

fn bad(message: impl Into<String>) -> AccessError {
    AccessError::BadRequest(message.into())
}

fn unavailable(e: MonitorStoreError) -> AccessError {
    AccessError::Unavailable(e.to_string())
}

/// S3's bucket naming rules (which also keep the name a single DNS label chain, never a path).
pub fn check_s3_bucket(name: &str) -> Result<(), String> {
    let shape = (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err();
    shape
        .then_some(())
        .ok_or_else(|| format!("bucket: {name:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"))
}

/// GCS's bucket naming rules.
pub fn check_gcs_bucket(name: &str) -> Result<(), String> {
    let shape = (3..=222).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.split('.').all(|label| (1..=63).contains(&label.len()))
        && !name.starts_with("goog")
        && !name.contains("google");
    shape.then_some(()).ok_or_else(|| {
        format!("bucket: {name:?} is not a Cloud Storage bucket name (3 to 63 lowercase letters, digits, dots, hyphens and underscores)")
    })
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX_BYTES {
        return Err(format!("prefix: must be at most {MAX_PREFIX_BYTES} bytes"));
    }
    if prefix.chars().any(char::is_control) {
        return Err("prefix: must not hold control characters".into());
    }
    Ok(())
}

fn check_role_arn(arn: &str) -> Result<(), String> {
    let invalid =
        || format!("role_arn: {arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME); create a role VaultStream may assume");
    let rest =
        ["arn:aws:iam::", "arn:aws-us-gov:iam::", "arn:aws-cn:iam::"].iter().find_map(|p| arn.strip_prefix(p)).ok_or_else(invalid)?;
    let (account, role) = rest.split_once(":role/").ok_or_else(invalid)?;
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let role_ok = (1..=512).contains(&role.len())
        && role.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
        && !role.starts_with('/')
        && !role.ends_with('/');
    (account_ok && role_ok).then_some(()).ok_or_else(invalid)
}

fn check_region(region: &str) -> Result<(), String> {
    let mut parts = region.split('-');
    let area = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let ok = area.len() == 2
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && rest.len() >= 2
        && rest[..rest.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && rest.last().is_some_and(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(()).ok_or_else(|| format!("region: {region:?} is not an AWS region (such as eu-west-1)"))
}

/// The parts of a service account key VaultStream uses; the rest stays in the stored JSON.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct ServiceAccountKey {
    #[serde(rename = "type")]
    pub kind: String,
    pub client_email: String,
    pub private_key: String,
}

impl ServiceAccountKey {
    pub fn parse(json: &str) -> Result<Self, String> {
        let key: ServiceAccountKey = serde_json::from_str(json).map_err(|e| {
            format!("service_account_key: not a service account key ({e}); give the JSON key Google Cloud's console downloads")
        })?;
        if key.kind != "service_account" {
            return Err(format!("service_account_key: its type is {:?}, not \"service_account\"", key.kind));
        }
        if !key.client_email.contains('@') || key.client_email.len() > 320 || key.client_email.chars().any(char::is_control) {
            return Err("service_account_key: client_email is not an email address".into());
        }
        if !key.private_key.trim_start().starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err("service_account_key: private_key is not a PEM private key".into());
        }
        Ok(key)
    }
}

/// What the deployment itself owns, which no monitor may read: its buckets (source, origin,
/// audit archive, logs; their names appear in every presigned URL, so anyone can learn them) and
/// its AWS account. A monitor reads a customer's bucket, as the customer's role, from the
/// customer's account; anything else would let a tenant copy what the platform holds for others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformBuckets {
    names: Vec<String>,
    account: Option<String>,
}

impl PlatformBuckets {
    pub fn new(names: impl IntoIterator<Item = String>, account: Option<String>) -> Self {
        let names = names.into_iter().map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect();
        PlatformBuckets { names, account: account.map(|a| a.trim().to_string()).filter(|a| !a.is_empty()) }
    }

    /// `VAULTSTREAM_PLATFORM_BUCKETS` (comma-separated names) and `VAULTSTREAM_PLATFORM_ACCOUNT`.
    pub fn parse(names: &str, account: Option<&str>) -> Self {
        Self::new(names.split(',').map(str::to_string), account.map(str::to_string))
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Why an S3 monitor of `bucket`, read as `role_arn`, would reach into the platform, if it would.
    pub fn refuse_s3(&self, bucket: &str, role_arn: &str) -> Option<String> {
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(bucket.trim())) {
            return Some(format!(
                "bucket: {bucket:?} belongs to this VaultStream deployment, not to you; a monitor reads a bucket in your own account"
            ));
        }
        let account = role_account(role_arn)?;
        (self.account.as_deref() == Some(account)).then(|| {
            format!(
                "role_arn: {role_arn:?} is a role of VaultStream's own account; give a role in your own account that may read your bucket"
            )
        })
    }
}

/// The account a role ARN names (`arn:aws:iam::123456789012:role/x` → `123456789012`).
pub fn role_account(role_arn: &str) -> Option<&str> {
    let account = role_arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

pub struct MonitorService {
    pub store: Arc<dyn MonitorStore>,
    pub secrets: Arc<dyn MonitorSecrets>,
    pub audit: Arc<dyn AuditSink>,
    /// The deployment's region: an S3 monitor's default.
    pub region: String,
    /// What no monitor may read.
    pub platform: PlatformBuckets,
}

impl MonitorService {
    /// `POST /v1/monitors`.
    pub async fn create(&self, principal: &Principal, request: &MonitorRequest, meta: &RequestMeta) -> Result<Monitor, AccessError> {
        let outcome = self.decide_create(principal, request).await;
        let resource = match &outcome {
            Ok(monitor) => format!("monitor/{}", monitor.monitor_id),
            Err(_) => "monitor/new".to_string(),
        };
        let decided = Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "monitor.create", resource };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn decide_create(&self, principal: &Principal, request: &MonitorRequest) -> Result<Monitor, AccessError> {
        if !principal.may(Scope::Admin) {
            return Err(AccessError::Forbidden("connecting a bucket needs the admin scope".into()));
        }
        let bucket = request.bucket.trim().to_string();
        check_prefix(&request.prefix).map_err(bad)?;
        if let Some(profile) = &request.profile {
            if ladder::Profile::built_in(profile).is_none() {
                return Err(bad(format!("profile: {profile:?} is not one of {}", ladder::BUILT_IN_PROFILES.join(", "))));
            }
        }
        let key_json = match request.provider.as_str() {
            "s3" => {
                check_s3_bucket(&bucket).map_err(bad)?;
                if request.service_account_key.is_some() {
                    return Err(bad("service_account_key: only a gcs monitor takes one; an s3 monitor takes role_arn"));
                }
                let arn = request.role_arn.as_deref().ok_or_else(|| bad("role_arn: an s3 monitor needs the role VaultStream assumes"))?;
                check_role_arn(arn).map_err(bad)?;
                if let Some(why) = self.platform.refuse_s3(&bucket, arn) {
                    return Err(AccessError::Forbidden(why));
                }
                if let Some(region) = &request.region {
                    check_region(region).map_err(bad)?;
                }
                None
            }
            "gcs" => {
                check_gcs_bucket(&bucket).map_err(bad)?;
                if request.role_arn.is_some() || request.region.is_some() {
                    return Err(bad("role_arn, region: only an s3 monitor takes them; a gcs monitor takes service_account_key"));
                }
                let key = request
                    .service_account_key
                    .as_ref()
                    .ok_or_else(|| bad("service_account_key: a gcs monitor needs a service account's JSON key"))?;
                let json = Zeroizing::new(key.to_string());
                if json.len() > MAX_KEY_BYTES {
                    return Err(bad(format!("service_account_key: must be at most {MAX_KEY_BYTES} bytes")));
                }
                let parsed = ServiceAccountKey::parse(&json).map_err(bad)?;
                Some((json, parsed.client_email.clone()))
            }
            other => return Err(bad(format!("provider: {other:?} is not one of s3, gcs"))),
        };
        let existing = self.store.list(&principal.tenant).await.map_err(unavailable)?;
        if let Some(same) =
            existing.iter().find(|m| m.access.provider() == request.provider && m.bucket == bucket && m.prefix == request.prefix)
        {
            return Err(AccessError::WrongState(format!("the tenant already monitors this bucket and prefix as {}", same.monitor_id)));
        }
        if existing.len() >= MAX_MONITORS_PER_TENANT {
            return Err(AccessError::WrongState(format!(
                "the tenant has {MAX_MONITORS_PER_TENANT} monitors already, the most it may; remove one first"
            )));
        }
        let monitor_id = MonitorId::parse(uuid::Uuid::now_v7().simple().to_string()).map_err(|e| AccessError::Internal(e.to_string()))?;
        let access = match key_json {
            None => BucketAccess::S3 {
                region: request.region.clone().unwrap_or_else(|| self.region.clone()),
                role_arn: request.role_arn.clone().unwrap_or_default(),
                // Random, so unguessable, and VaultStream's choice, never the requester's.
                external_id: uuid::Uuid::new_v4().simple().to_string(),
            },
            Some((json, client_email)) => {
                let secret_id = self
                    .secrets
                    .store(&principal.tenant, &monitor_id, &json)
                    .await
                    .map_err(|e| AccessError::Unavailable(format!("the service account key could not be stored: {e}")))?;
                BucketAccess::Gcs { secret_id, client_email }
            }
        };
        let monitor = Monitor {
            tenant: principal.tenant.clone(),
            monitor_id,
            access,
            bucket,
            prefix: request.prefix.clone(),
            profile: request.profile.clone().unwrap_or_else(|| "default".into()),
            created_at: crate::clock::now_rfc3339(),
            created_by: principal.subject.clone(),
            last_polled_at: None,
            last_error: None,
            last_refusal: None,
            cursor: None,
            imported: 0,
            refused: 0,
        };
        if let Err(e) = self.store.create(&monitor).await {
            self.forget_key(&monitor).await;
            return Err(unavailable(e));
        }
        Ok(monitor)
    }

    /// `GET /v1/monitors`: the caller's tenant's monitors.
    pub async fn list(&self, principal: &Principal, meta: &RequestMeta) -> Result<Vec<Monitor>, AccessError> {
        let outcome = if principal.may(Scope::Admin) {
            self.store.list(&principal.tenant).await.map_err(unavailable)
        } else {
            Err(AccessError::Forbidden("listing monitors needs the admin scope".into()))
        };
        let decided =
            Decided { tenant: principal.tenant.clone(), actor: &principal.subject, action: "monitor.list", resource: "monitor/*".into() };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    /// `DELETE /v1/monitors/{monitor_id}`. Titles already imported stay; a GCS key is deleted.
    pub async fn remove(&self, principal: &Principal, monitor_id: &str, meta: &RequestMeta) -> Result<(), AccessError> {
        let outcome = async {
            if !principal.may(Scope::Admin) {
                return Err(AccessError::Forbidden("removing a monitor needs the admin scope".into()));
            }
            let id = MonitorId::parse(monitor_id).map_err(|e| bad(e.to_string()))?;
            match self.store.remove(&principal.tenant, &id).await.map_err(unavailable)? {
                Some(monitor) => {
                    self.forget_key(&monitor).await;
                    Ok(())
                }
                None => Err(AccessError::NotFound(format!("monitor {id}"))),
            }
        }
        .await;
        let decided = Decided {
            tenant: principal.tenant.clone(),
            actor: &principal.subject,
            action: "monitor.remove",
            resource: format!("monitor/{monitor_id}"),
        };
        record(self.audit.as_ref(), decided, meta, outcome).await
    }

    async fn forget_key(&self, monitor: &Monitor) {
        if let BucketAccess::Gcs { secret_id, .. } = &monitor.access {
            if let Err(e) = self.secrets.remove(secret_id).await {
                tracing::error!(error = %e, "could not delete the service account key; delete it by hand");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_roles_and_regions_are_checked() {
        assert!(check_s3_bucket("customer-media.eu").is_ok());
        for bad in ["ab", "Customer", "a..b", "192.168.0.1", "-media", "media/../x", "media?x"] {
            assert!(check_s3_bucket(bad).is_err(), "{bad}");
        }
        assert!(check_gcs_bucket("studio_masters").is_ok());
        for reserved in ["goog-x", "google-x", "my-google-media"] {
            assert!(check_gcs_bucket(reserved).is_err(), "{reserved}: Google reserves these");
        }
        assert!(check_role_arn("arn:aws:iam::123456789012:role/media/VaultStreamRead").is_ok());
        for bad in
            ["arn:aws:iam::12345:role/x", "arn:aws:iam::123456789012:user/x", "arn:aws:s3:::bucket", "arn:aws:iam::123456789012:role/"]
        {
            assert!(check_role_arn(bad).is_err(), "{bad}");
        }
        assert!(check_region("eu-west-1").is_ok());
        assert!(check_region("us-gov-west-1").is_ok());
        for bad in ["eu", "eu-west", "EU-WEST-1", "eu-west-1.evil.example"] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_platforms_own_buckets_and_account_are_refused() {
        let platform = PlatformBuckets::parse("vs-source, vs-origin,,VS-Audit", Some("123456789012"));
        let customer = "arn:aws:iam::210987654321:role/Read";
        assert!(platform.refuse_s3("vs-source", customer).unwrap().contains("belongs to this VaultStream deployment"));
        assert!(platform.refuse_s3("vs-audit", customer).is_some(), "names compare without case");
        assert!(platform.refuse_s3("customer-media", "arn:aws:iam::123456789012:role/Any").unwrap().contains("VaultStream's own account"));
        assert_eq!(platform.refuse_s3("customer-media", customer), None);
        assert_eq!(PlatformBuckets::default().refuse_s3("anything", customer), None);
        assert_eq!(role_account("arn:aws-cn:iam::210987654321:role/x"), Some("210987654321"));
    }

    #[test]
    fn a_service_account_key_is_checked_for_shape() {
        let ok = r#"{"type":"service_account","client_email":"sync@proj.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n"}"#;
        assert_eq!(ServiceAccountKey::parse(ok).map(|k| k.client_email.clone()).unwrap(), "sync@proj.iam.gserviceaccount.com");
        assert!(ServiceAccountKey::parse(r#"{"type":"authorized_user","client_email":"a@b","private_key":"x"}"#)
            .err()
            .unwrap()
            .contains("type"));
        assert!(ServiceAccountKey::parse("[]").err().unwrap().contains("not a service account key"));
    }
}
