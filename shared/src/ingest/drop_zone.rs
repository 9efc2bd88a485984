//! FTP drop zones: a tenant's machines log in over SFTP or FTPS with a VaultStream token and drop
//! files into their own folder, `drop/{tenant}/` in the source bucket; each finished upload
//! becomes a title through the import queue, whose fetcher moves the file into its source key.
//!
//! - **Login.** The user name is the tenant; the password is an API token or a JWT of that tenant
//!   with `content:write`. A token of another tenant opens nothing: tenancy is the verified
//!   token's, and the name must agree with it. AWS Transfer Family asks the `ftp_auth` function
//!   (a custom identity provider), which answers with a logical home directory that maps `/` to
//!   the tenant's folder and a session policy that allows nothing outside it; the local stack's
//!   FTPS server asks the same rule.
//! - **A finished upload** (Transfer's `… Server File Upload Completed` event, or the local
//!   server's end of a `STOR`) names its object; only `drop/{tenant}/…` with a media extension
//!   and the uploader's own tenant is taken. The title is named after the file; the import is
//!   idempotent per object version (key and ETag), so a repeated event makes one title.

use std::sync::Arc;

use serde_json::json;

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::catalog::ContentStatus;
use crate::catalog::IdempotencyClaim;
use crate::identity::Authenticator;
use crate::ids::TenantId;
use crate::ingest::import::ImportGrant;
use crate::ingest::media_types;
use crate::ingest::ports::{DropBox, DroppedFile, SourceStore};
use crate::ingest::upload::sha256_hex;
use crate::metadata::{Metadata, Source};
use crate::principal::Scope;

/// Where drop zones live in the source bucket (the S3 notification dispatch reads is on
/// `source/`, so a dropped file starts nothing by itself).
pub const DROP_ROOT: &str = "drop";

/// `drop/{tenant}/`.
pub fn drop_prefix(tenant: &TenantId) -> String {
    format!("{DROP_ROOT}/{tenant}/")
}

/// Who logged in to a drop zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropUser {
    pub tenant: TenantId,
    /// The token's subject, for the ledger.
    pub subject: String,
}

/// Checks a drop-zone login: `username` is the tenant, `password` a token of that tenant with
/// `content:write`. Audited as `drop.login`, allowed or denied; the password is never kept.
pub async fn login(
    authenticator: &Authenticator,
    audit: &dyn AuditSink,
    username: &str,
    password: &str,
    meta: &RequestMeta,
) -> Result<DropUser, AccessError> {
    let outcome = async {
        let tenant = TenantId::parse(username.trim())
            .ok()
            .ok_or_else(|| AccessError::Unauthenticated("the user name must be a tenant id".into()))?;
        let principal = authenticator
            .authenticate(Some(&format!("Bearer {}", password.trim())), meta.now)
            .await
            .map_err(|e| AccessError::Unauthenticated(format!("the password is not a valid token: {e}")))?;
        if principal.tenant != tenant {
            return Err(AccessError::Unauthenticated(format!(
                "the token belongs to another tenant than {tenant}; log in with a token of {tenant}"
            )));
        }
        if !principal.may(Scope::ContentWrite) {
            return Err(AccessError::Forbidden("a drop zone needs a token with the content:write scope".into()));
        }
        Ok(DropUser { tenant, subject: principal.subject })
    }
    .await;
    // A refused login is in the ledger of unverified requests, as the authorizer's refusals are:
    // naming a tenant proves nothing.
    let (ledger, actor) = match &outcome {
        Ok(user) => (user.tenant.clone(), user.subject.clone()),
        Err(_) => (TenantId::unauthenticated(), "anonymous".to_string()),
    };
    let resource = format!("drop/{}", username.chars().filter(|c| !c.is_control()).take(64).collect::<String>());
    let decided = Decided { tenant: ledger, actor: &actor, action: "drop.login", resource };
    record(audit, decided, meta, outcome).await
}

/// What AWS Transfer Family's identity provider answers for `user`: the role its session takes,
/// `/` mapped to the tenant's folder (a logical home: no path leads out of it), and a session
/// policy that allows the tenant's folder alone, whatever the role allows.
pub fn transfer_identity(user: &DropUser, bucket: &str, role_arn: &str) -> serde_json::Value {
    let folder = drop_prefix(&user.tenant);
    let home = json!([{"Entry": "/", "Target": format!("/{bucket}/{}", folder.trim_end_matches('/'))}]);
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListOwnFolder",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": {"StringLike": {"s3:prefix": [folder.clone(), format!("{folder}*")]}}
            },
            {
                "Sid": "DropIntoOwnFolder",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [format!("arn:aws:s3:::{bucket}/{folder}*")]
            }
        ]
    });
    json!({
        "Role": role_arn,
        "HomeDirectoryType": "LOGICAL",
        "HomeDirectoryDetails": home.to_string(),
        "Policy": policy.to_string(),
    })
}

/// The tenant and the file's path within its folder, for a key under [`DROP_ROOT`].
pub fn parse_drop_key(key: &str) -> Result<(TenantId, String), String> {
    let rest = key.strip_prefix(&format!("{DROP_ROOT}/")).ok_or_else(|| format!("{key:?} is not in a drop zone"))?;
    let (tenant, path) = rest.split_once('/').ok_or_else(|| format!("{key:?} names no file in a drop zone"))?;
    let tenant = TenantId::parse(tenant).map_err(|e| format!("{key:?}: {e}"))?;
    if path.is_empty() || path.ends_with('/') || path.split('/').any(|p| p == ".." || p == ".") || path.chars().any(char::is_control) {
        return Err(format!("{key:?} names no file in a drop zone"));
    }
    Ok((tenant, path.to_string()))
}

/// The title a dropped file gets: its name without folders and extension.
fn title_of(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let title: String =
        stem.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(crate::ingest::upload::MAX_TITLE_CHARS).collect();
    if title.is_empty() {
        "Untitled".into()
    } else {
        title
    }
}

/// What a finished upload became.
#[derive(Debug, Clone)]
pub enum Dropped {
    /// A title, importing (or imported: the same upload reported again).
    Accepted(Box<ImportGrant>),
    /// Not a media file (a checksum, a note): left where it is.
    Ignored(String),
}

pub struct DropService {
    pub imports: crate::ingest::import::ImportService,
    pub sources: Arc<dyn SourceStore>,
    pub drops: Arc<dyn DropBox>,
    pub audit: Arc<dyn AuditSink>,
}

impl DropService {
    /// A finished upload of `key` by `username` (the drop zone's login name, the tenant).
    pub async fn finished(&self, key: &str, username: &str, meta: &RequestMeta) -> Result<Dropped, AccessError> {
        let (tenant, path) = parse_drop_key(key).map_err(AccessError::BadRequest)?;
        if username != tenant.as_str() {
            // The identity provider confines each login to its tenant's folder: a mismatch means
            // someone wrote there by other means. Refused and recorded, never imported.
            let reason = format!("{key:?} was reported as uploaded by {username:?}, who may not write in {tenant}'s drop zone");
            let decided = Decided { tenant: tenant.clone(), actor: "drop_zone", action: "drop.upload", resource: format!("drop/{path}") };
            return record(self.audit.as_ref(), decided, meta, Err(AccessError::Forbidden(reason))).await;
        }
        if media_types::for_file_name(&path).is_none() {
            return Ok(Dropped::Ignored(format!(
                "{path:?} is not a media file by its name ({}); it stays in the drop zone",
                media_types::accepted_list()
            )));
        }
        let head = match self.sources.head(key).await {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(Dropped::Ignored(format!("{path:?} is no longer in the drop zone"))),
            Err(e) => return Err(AccessError::Unavailable(e.to_string())),
        };
        let etag = head.etag.trim_matches('"').to_string();
        let named = Metadata { title: Some(title_of(&path)), ..Default::default() };
        let described = crate::metadata::merge([(Source::Request, named)]);
        let claim =
            IdempotencyClaim { key_hash: sha256_hex(format!("drop/{key}/{etag}").as_bytes()), request_hash: sha256_hex(key.as_bytes()) };
        let dropped = DroppedFile { key: key.to_string(), etag };
        let grant = self.imports.start_for_drop(&tenant, &path, dropped, described, &claim, meta).await?;
        if grant.replayed && grant.record.status != ContentStatus::AwaitingUpload {
            // The same file, uploaded again after its import: its title exists; the copy goes.
            if let Err(e) = self.drops.remove_dropped(key).await {
                tracing::warn!(error = %e, "could not remove a file dropped twice");
            }
        }
        Ok(Dropped::Accepted(Box::new(grant)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_keys_name_a_tenant_and_a_file_inside_its_folder() {
        let (tenant, path) = parse_drop_key("drop/acme/in/Launch day.mov").unwrap();
        assert_eq!((tenant.as_str(), path.as_str()), ("acme", "in/Launch day.mov"));
        for bad in ["source/acme/x/original", "drop/acme/", "drop/acme", "drop/../x.mp4", "drop/acme/../globex/x.mp4", "drop/acme/dir/"] {
            assert!(parse_drop_key(bad).is_err(), "{bad}");
        }
        assert_eq!(title_of("in/Launch  day.mov"), "Launch day");
    }

    #[test]
    fn the_transfer_answer_confines_the_session_to_the_tenants_folder() {
        let user = DropUser { tenant: TenantId::parse("acme").unwrap(), subject: "ops".into() };
        let answer = transfer_identity(&user, "vs-source", "arn:aws:iam::123456789012:role/drop");
        assert_eq!(answer["HomeDirectoryType"], "LOGICAL");
        let home: serde_json::Value = serde_json::from_str(answer["HomeDirectoryDetails"].as_str().unwrap()).unwrap();
        assert_eq!(home, json!([{"Entry": "/", "Target": "/vs-source/drop/acme"}]));
        let policy = answer["Policy"].as_str().unwrap();
        assert!(policy.contains("arn:aws:s3:::vs-source/drop/acme/*") && !policy.contains("source/*\""), "{policy}");
    }
}
