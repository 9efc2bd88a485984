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
//! - **A login holds only while its token does.** Each login is confined to a folder of its own
//!   inside the tenant's, named for the token's session and expiry
//!   (`drop/{tenant}/{session}.{expires_at}/`, see [`DropGrant`]): the session policy Transfer
//!   enforces (or the local server) lets it write nowhere else, so the key of every finished upload
//!   says which session made it. An upload that ended after that session expired or while it is
//!   revoked is not imported: it is copied to `quarantine/` (nothing is deleted), and the refusal
//!   is in the ledger with its reason. The local server also refuses every command of a login
//!   whose session has ended.
//! - **A finished upload** (Transfer's `… Server File Upload Completed` event, or the local
//!   server's end of a `STOR`) names its object; only `drop/{tenant}/{grant}/…` with a media
//!   extension and the uploader's own tenant is taken. The title is named after the file; the
//!   import is idempotent per object version (path in the tenant's zone and ETag), so a repeated
//!   event makes one title.

use std::sync::Arc;

use serde_json::json;

use crate::access::{record, AccessError, Decided, RequestMeta};
use crate::audit::AuditSink;
use crate::catalog::ContentStatus;
use crate::catalog::IdempotencyClaim;
use crate::identity::{Authenticator, SessionRevocations};
use crate::ids::{SessionId, TenantId};
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

/// Where quarantined uploads go: `quarantine/{tenant}/{grant}/{path}`, out of every login's
/// reach and of dispatch's.
pub const QUARANTINE_ROOT: &str = "quarantine";

/// What a login may do, and until when: the token's session and expiry. It names the login's
/// folder, `{session}.{expires_at}` (a session id holds no `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropGrant {
    pub session: SessionId,
    pub expires_at: u64,
}

impl DropGrant {
    pub fn folder(&self) -> String {
        format!("{}.{}", self.session, self.expires_at)
    }

    pub fn parse(folder: &str) -> Option<Self> {
        let (session, expires_at) = folder.split_once('.')?;
        Some(DropGrant { session: SessionId::parse(session).ok()?, expires_at: expires_at.parse().ok()? })
    }
}

/// Why a login's session no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionEnded {
    #[error("the login's token expired; log in again with a fresh token")]
    Expired,
    #[error("the login's session was revoked; log in again with a new token")]
    Revoked,
    #[error("the login's session cannot be checked right now: {0}")]
    Unavailable(String),
}

impl SessionEnded {
    /// The short reason a quarantined file is tagged with.
    pub fn code(&self) -> &'static str {
        match self {
            SessionEnded::Expired => "session_expired",
            SessionEnded::Revoked => "session_revoked",
            SessionEnded::Unavailable(_) => "session_unchecked",
        }
    }
}

/// Whether `grant` still holds at `at` (Unix seconds): unexpired and not revoked.
pub async fn session_holds(
    revocations: &dyn SessionRevocations,
    tenant: &TenantId,
    grant: &DropGrant,
    at: u64,
) -> Result<(), SessionEnded> {
    if at >= grant.expires_at {
        return Err(SessionEnded::Expired);
    }
    match revocations.is_revoked(tenant, &grant.session).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(SessionEnded::Revoked),
        Err(e) => Err(SessionEnded::Unavailable(e)),
    }
}

/// Who logged in to a drop zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropUser {
    pub tenant: TenantId,
    /// The token's subject, for the ledger.
    pub subject: String,
    pub grant: DropGrant,
}

impl DropUser {
    /// `drop/{tenant}/{grant}/`: all this login may write.
    pub fn folder(&self) -> String {
        format!("{}{}/", drop_prefix(&self.tenant), self.grant.folder())
    }
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
        let (principal, expires_at) = authenticator
            .authenticate_until(Some(&format!("Bearer {}", password.trim())), meta.now)
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
        Ok(DropUser { tenant, subject: principal.subject, grant: DropGrant { session: principal.session, expires_at } })
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
    let folder = user.folder();
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

/// A key under [`DROP_ROOT`], taken apart: whose zone, which login's folder, which file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropKey {
    pub tenant: TenantId,
    pub grant: DropGrant,
    /// The file's path within the login's folder, as the uploader named it.
    pub path: String,
}

pub fn parse_drop_key(key: &str) -> Result<DropKey, String> {
    let rest = key.strip_prefix(&format!("{DROP_ROOT}/")).ok_or_else(|| format!("{key:?} is not in a drop zone"))?;
    let (tenant, rest) = rest.split_once('/').ok_or_else(|| format!("{key:?} names no file in a drop zone"))?;
    let tenant = TenantId::parse(tenant).map_err(|e| format!("{key:?}: {e}"))?;
    let (grant, path) = rest.split_once('/').ok_or_else(|| format!("{key:?} is not in a login's folder of the drop zone"))?;
    let grant = DropGrant::parse(grant).ok_or_else(|| format!("{key:?} is not in a login's folder of the drop zone"))?;
    if path.is_empty() || path.ends_with('/') || path.split('/').any(|p| p == ".." || p == ".") || path.chars().any(char::is_control) {
        return Err(format!("{key:?} names no file in a drop zone"));
    }
    Ok(DropKey { tenant, grant, path: path.to_string() })
}

/// Where a refused upload of `key` (a drop key) is kept: `quarantine/{tenant}/{grant}/{path}`.
pub fn quarantine_key(key: &str) -> String {
    format!("{QUARANTINE_ROOT}/{}", key.strip_prefix(&format!("{DROP_ROOT}/")).unwrap_or(key))
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
    /// Uploaded by a session that had ended: kept under the quarantine key, not imported.
    Quarantined { key: String, reason: String },
}

pub struct DropService {
    pub imports: crate::ingest::import::ImportService,
    pub sources: Arc<dyn SourceStore>,
    pub drops: Arc<dyn DropBox>,
    pub revocations: Arc<dyn SessionRevocations>,
    pub audit: Arc<dyn AuditSink>,
}

impl DropService {
    /// A finished upload of `key` by `username` (the drop zone's login name, the tenant), which
    /// ended at `ended_at` (Unix seconds).
    pub async fn finished(&self, key: &str, username: &str, ended_at: u64, meta: &RequestMeta) -> Result<Dropped, AccessError> {
        let DropKey { tenant, grant, path } = parse_drop_key(key).map_err(AccessError::BadRequest)?;
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
        match session_holds(self.revocations.as_ref(), &tenant, &grant, ended_at).await {
            Ok(()) => {}
            Err(SessionEnded::Unavailable(why)) => return Err(AccessError::Unavailable(why)),
            Err(ended) => return self.quarantine(key, &etag, &tenant, &path, &ended, meta).await,
        }
        let named = Metadata { title: Some(title_of(&path)), ..Default::default() };
        let described = crate::metadata::merge([(Source::Request, named)]);
        // One title per file and version in the tenant's zone, whichever login dropped it.
        let zone_path = format!("{}{path}", drop_prefix(&tenant));
        let claim = IdempotencyClaim {
            key_hash: sha256_hex(format!("drop/{zone_path}/{etag}").as_bytes()),
            request_hash: sha256_hex(zone_path.as_bytes()),
        };
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

    /// Keeps a file its session may no longer deliver where no login or dispatch reaches it,
    /// deletes nothing, and records why.
    async fn quarantine(
        &self,
        key: &str,
        etag: &str,
        tenant: &TenantId,
        path: &str,
        ended: &SessionEnded,
        meta: &RequestMeta,
    ) -> Result<Dropped, AccessError> {
        let kept = quarantine_key(key);
        self.drops
            .quarantine_dropped(key, etag, &kept, ended.code())
            .await
            .map_err(|e| AccessError::Unavailable(format!("the file could not be quarantined: {e}")))?;
        let reason = format!("{path:?} was not imported ({ended}); it is kept at {kept}");
        let decided = Decided { tenant: tenant.clone(), actor: "drop_zone", action: "drop.upload", resource: format!("drop/{path}") };
        // Recorded as a denial (`record` hands the refusal back; the upload's outcome is the quarantine).
        let _ = record::<()>(self.audit.as_ref(), decided, meta, Err(AccessError::Forbidden(reason.clone()))).await;
        Ok(Dropped::Quarantined { key: kept, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_keys_name_a_tenant_a_login_and_a_file_inside_its_folder() {
        let key = parse_drop_key("drop/acme/s-42.1900000000/in/Launch day.mov").unwrap();
        assert_eq!((key.tenant.as_str(), key.path.as_str()), ("acme", "in/Launch day.mov"));
        assert_eq!(key.grant, DropGrant { session: SessionId::parse("s-42").unwrap(), expires_at: 1_900_000_000 });
        assert_eq!(key.grant.folder(), "s-42.1900000000");
        for bad in [
            "source/acme/x/original",
            "drop/acme/",
            "drop/acme",
            "drop/acme/x.mp4",
            "drop/acme/s.notanumber/x.mp4",
            "drop/../s.1/x.mp4",
            "drop/acme/s.1/../globex/x.mp4",
            "drop/acme/s.1/dir/",
        ] {
            assert!(parse_drop_key(bad).is_err(), "{bad}");
        }
        assert_eq!(title_of("in/Launch  day.mov"), "Launch day");
        assert_eq!(quarantine_key("drop/acme/s.1/x.mp4"), "quarantine/acme/s.1/x.mp4");
    }

    #[test]
    fn the_transfer_answer_confines_the_session_to_its_logins_folder() {
        let grant = DropGrant { session: SessionId::parse("s1").unwrap(), expires_at: 1_900_000_000 };
        let user = DropUser { tenant: TenantId::parse("acme").unwrap(), subject: "ops".into(), grant };
        let answer = transfer_identity(&user, "vs-source", "arn:aws:iam::123456789012:role/drop");
        assert_eq!(answer["HomeDirectoryType"], "LOGICAL");
        let home: serde_json::Value = serde_json::from_str(answer["HomeDirectoryDetails"].as_str().unwrap()).unwrap();
        assert_eq!(home, json!([{"Entry": "/", "Target": "/vs-source/drop/acme/s1.1900000000"}]));
        let policy = answer["Policy"].as_str().unwrap();
        assert!(policy.contains("arn:aws:s3:::vs-source/drop/acme/s1.1900000000/*") && !policy.contains("drop/acme/*"), "{policy}");
    }
}
