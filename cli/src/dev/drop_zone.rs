//! The drop zone as the local stack (and an on-premise install) serves it: an FTPS server
//! (libunftp) whose logins are checked by the same rule as AWS Transfer Family's identity
//! provider (`ftp_auth`: the user name is the tenant, the password a write token of it), and whose
//! storage is the tenant's folder `drop/{tenant}/` in the source bucket. When a `STOR` finishes,
//! the file is handed to the `drop_zone` function as Transfer's `FTPS Server File Upload
//! Completed` event would be, before the client hears `226`.
//!
//! TLS is required on the control and data channels, so a token never crosses the network in
//! clear; the certificate is self-signed, made once per state directory. Paths never leave the
//! login's folder: `..` is refused, and every key is built under `drop/{tenant}/{grant}/`. Files
//! can be written, listed and deleted, never read back (a drop zone is not a download server).
//!
//! A login lasts only as long as its token: every command is refused once the token has expired
//! or its session was revoked, and a `STOR` that ends after that is quarantined, not imported.

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use tokio::io::AsyncReadExt;
use unftp_core::auth::{
    AuthenticationError, Authenticator as FtpAuthenticator, Credentials, Principal, UserDetail, UserDetailError, UserDetailProvider,
};
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Metadata, StorageBackend};
use vaultstream::access::RequestMeta;
use vaultstream::audit::AuditSink;
use vaultstream::identity::{Authenticator, SessionRevocations};
use vaultstream::ids::TenantId;
use vaultstream::ingest::drop_zone::{self, SessionEnded};
use vaultstream::ingest::ports::{CompletedPart, SourceStore, SourceWriter};
use vaultstream_functions::handlers::drop_zone::DropZone;

/// Bytes held in memory per part while a file streams into S3 (S3's smallest part).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// A logged-in tenant, and the session its login holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropUser {
    pub login: drop_zone::DropUser,
}

impl fmt::Display for DropUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.login.tenant)
    }
}

impl UserDetail for DropUser {}

/// Logins between the password check and the session's start: libunftp hands only a name from
/// one to the other, so the name is a one-time handle on what the check found.
#[derive(Debug, Default)]
pub struct Logins(Mutex<HashMap<String, drop_zone::DropUser>>);

impl Logins {
    fn admit(&self, user: drop_zone::DropUser) -> String {
        let handle = uuid::Uuid::new_v4().simple().to_string();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(handle.clone(), user);
        handle
    }

    fn take(&self, handle: &str) -> Option<drop_zone::DropUser> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(handle)
    }
}

/// Logins: the drop-zone rule, audited like `ftp_auth`'s.
pub struct TokenLogin {
    pub authenticator: Arc<Authenticator>,
    pub audit: Arc<dyn AuditSink>,
    pub logins: Arc<Logins>,
}

impl fmt::Debug for TokenLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenLogin")
    }
}

#[async_trait]
impl FtpAuthenticator for TokenLogin {
    async fn authenticate(&self, username: &str, creds: &Credentials) -> Result<Principal, AuthenticationError> {
        let password = creds.password.as_deref().unwrap_or_default();
        let meta = RequestMeta {
            request_id: uuid::Uuid::now_v7().to_string(),
            source_ip: Some(creds.source_ip.to_string()),
            now: vaultstream::clock::now_seconds(),
        };
        match drop_zone::login(&self.authenticator, self.audit.as_ref(), username, password, &meta).await {
            Ok(user) => Ok(Principal { username: self.logins.admit(user) }),
            Err(e) => {
                tracing::info!(reason = %e, "drop zone login refused");
                Err(AuthenticationError::BadPassword)
            }
        }
    }
}

/// The login the password check admitted.
#[derive(Debug)]
pub struct Tenants(pub Arc<Logins>);

#[async_trait]
impl UserDetailProvider for Tenants {
    type User = DropUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<DropUser, UserDetailError> {
        self.0
            .take(&principal.username)
            .map(|login| DropUser { login })
            .ok_or_else(|| UserDetailError::Generic("no such login; log in again".into()))
    }
}

#[derive(Debug, Clone)]
pub struct Meta {
    len: u64,
    dir: bool,
}

impl Metadata for Meta {
    fn len(&self) -> u64 {
        self.len
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> unftp_core::storage::Result<SystemTime> {
        Ok(SystemTime::now())
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
}

/// The tenant's folder in the source bucket.
pub struct DropStorage {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub sources: Arc<vaultstream::aws::S3SourceStore>,
    pub drops: Arc<DropZone>,
    pub revocations: Arc<dyn SessionRevocations>,
    pub max_bytes: u64,
}

impl fmt::Debug for DropStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DropStorage({})", self.bucket)
    }
}

fn denied(why: &str) -> Error {
    Error::new(ErrorKind::PermissionDenied, std::io::Error::other(why.to_string()))
}

fn local(e: impl fmt::Display) -> Error {
    Error::new(ErrorKind::LocalError, std::io::Error::other(e.to_string()))
}

/// The path inside the tenant's folder (`a/b.mp4`), or a refusal for one that would leave it.
fn inside(path: &Path) -> Result<String, Error> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_str().ok_or_else(|| denied("file names must be UTF-8"))?.to_string()),
            Component::ParentDir | Component::Prefix(_) => return Err(denied("paths stay inside the drop zone; `..` is not allowed")),
        }
    }
    Ok(parts.join("/"))
}

impl DropStorage {
    fn key(&self, user: &DropUser, path: &Path) -> Result<String, Error> {
        Ok(format!("{}{}", user.login.folder(), inside(path)?))
    }

    /// Refuses a command of a login whose token has expired or whose session was revoked.
    async fn holds(&self, user: &DropUser) -> Result<(), Error> {
        let login = &user.login;
        drop_zone::session_holds(self.revocations.as_ref(), &login.tenant, &login.grant, vaultstream::clock::now_seconds()).await.map_err(
            |e| match e {
                SessionEnded::Unavailable(_) => local(e),
                ended => denied(&ended.to_string()),
            },
        )
    }

    /// Streams `input` into `key`: one PUT when it fits a part, else a multipart upload (aborted
    /// on failure, so nothing half-written appears).
    async fn store<R: tokio::io::AsyncRead + Unpin>(&self, key: &str, mut input: R) -> Result<u64, Error> {
        let mut total = 0u64;
        let mut upload: Option<(String, Vec<CompletedPart>)> = None;
        let outcome = async {
            loop {
                let mut part = Vec::with_capacity(PART_BYTES);
                while part.len() < PART_BYTES {
                    let mut chunk = vec![0u8; (PART_BYTES - part.len()).min(256 * 1024)];
                    let n = input.read(&mut chunk).await.map_err(|e| Error::new(ErrorKind::ConnectionClosed, e))?;
                    if n == 0 {
                        break;
                    }
                    part.extend_from_slice(&chunk[..n]);
                }
                total += part.len() as u64;
                if total > self.max_bytes {
                    return Err(Error::new(
                        ErrorKind::ExceededStorageAllocationError,
                        std::io::Error::other(format!("the file is larger than the accepted {} bytes", self.max_bytes)),
                    ));
                }
                let last = part.len() < PART_BYTES;
                match (&mut upload, last) {
                    (None, true) => {
                        self.sources.put_object(key, "application/octet-stream", part).await.map_err(local)?;
                        return Ok(());
                    }
                    (None, false) => {
                        let id = self.sources.start_multipart(key, "application/octet-stream").await.map_err(local)?;
                        let etag = self.sources.upload_part(key, &id, 1, part).await.map_err(local)?;
                        upload = Some((id, vec![CompletedPart { part_number: 1, etag }]));
                    }
                    (Some((id, parts)), _) => {
                        if !part.is_empty() {
                            let number = parts.len() as u32 + 1;
                            let etag = self.sources.upload_part(key, id, number, part).await.map_err(local)?;
                            parts.push(CompletedPart { part_number: number, etag });
                        }
                        if last {
                            self.sources.complete_multipart(key, id, parts).await.map_err(local)?;
                            upload = None;
                            return Ok(());
                        }
                    }
                }
            }
        }
        .await;
        if let (Err(_), Some((id, _))) = (&outcome, &upload) {
            let _ = self.sources.abort_multipart(key, id).await;
        }
        outcome.map(|()| total)
    }

    /// What Transfer Family would send when the upload of `key` by `tenant` finished.
    fn upload_completed(&self, key: &str, tenant: &TenantId, bytes: u64) -> EventBridgeEvent<serde_json::Value> {
        let event = serde_json::json!({
            "version": "0", "id": uuid::Uuid::now_v7().to_string(), "detail-type": "FTPS Server File Upload Completed",
            "source": "aws.transfer", "account": "000000000000", "time": vaultstream::clock::now_rfc3339(), "region": "us-east-1",
            "resources": [], "detail": {"status-code": "COMPLETED", "file-path": format!("/{}/{key}", self.bucket),
            "username": tenant.as_str(), "protocol": "FTPS", "bytes": bytes, "server-id": "local"}
        });
        serde_json::from_value(event).unwrap_or_default()
    }
}

#[async_trait]
impl StorageBackend<DropUser> for DropStorage {
    type Metadata = Meta;

    async fn metadata<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &DropUser, path: P) -> unftp_core::storage::Result<Meta> {
        self.holds(user).await?;
        let inner = inside(path.as_ref())?;
        if inner.is_empty() {
            return Ok(Meta { len: 0, dir: true });
        }
        match self.sources.head(&self.key(user, path.as_ref())?).await.map_err(local)? {
            Some(head) => Ok(Meta { len: head.size, dir: false }),
            // Folders are prefixes: any other name may be one.
            None => Ok(Meta { len: 0, dir: true }),
        }
    }

    async fn list<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &DropUser,
        path: P,
    ) -> unftp_core::storage::Result<Vec<Fileinfo<std::path::PathBuf, Meta>>> {
        self.holds(user).await?;
        let mut prefix = self.key(user, path.as_ref())?;
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let out = self.s3.list_objects_v2().bucket(&self.bucket).prefix(&prefix).delimiter("/").send().await.map_err(local)?;
        let mut found: Vec<Fileinfo<std::path::PathBuf, Meta>> = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .map(|p| Fileinfo {
                path: p.trim_end_matches('/').rsplit('/').next().unwrap_or(p).into(),
                metadata: Meta { len: 0, dir: true },
            })
            .collect();
        found.extend(out.contents().iter().filter_map(|o| {
            let name = o.key()?.strip_prefix(&prefix)?;
            Some(Fileinfo { path: name.into(), metadata: Meta { len: o.size().unwrap_or_default().max(0) as u64, dir: false } })
        }));
        Ok(found)
    }

    async fn get<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &DropUser,
        _path: P,
        _start_pos: u64,
    ) -> unftp_core::storage::Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        Err(denied("a drop zone takes files in; it does not give them back"))
    }

    async fn put<P: AsRef<Path> + Send + fmt::Debug, R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &DropUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> unftp_core::storage::Result<u64> {
        if start_pos != 0 {
            return Err(denied("resuming an upload is not supported; send the whole file again"));
        }
        self.holds(user).await?;
        let key = self.key(user, path.as_ref())?;
        if key.ends_with('/') {
            return Err(denied("name a file"));
        }
        let bytes = self.store(&key, input).await?;
        // The session may have ended while the bytes came: then the file is quarantined, not
        // taken in, and the client hears why instead of 226.
        let ended = self.holds(user).await.err();
        // As Transfer's event would: the file becomes a title before the client hears 226.
        if let Err(e) = self.drops.handle(self.upload_completed(&key, &user.login.tenant, bytes)).await {
            tracing::error!(error = %e, key, "the finished upload could not be taken in; it stays in the drop zone");
            return Err(Error::new(ErrorKind::TransientFileNotAvailable, std::io::Error::other(e.to_string())));
        }
        match ended {
            Some(refusal) => Err(refusal),
            None => Ok(bytes),
        }
    }

    async fn del<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &DropUser, path: P) -> unftp_core::storage::Result<()> {
        self.holds(user).await?;
        let key = self.key(user, path.as_ref())?;
        self.s3.delete_object().bucket(&self.bucket).key(key).send().await.map_err(local)?;
        Ok(())
    }

    async fn mkd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &DropUser, path: P) -> unftp_core::storage::Result<()> {
        self.holds(user).await?;
        // Folders are key prefixes: nothing to create, only a path to check.
        self.key(user, path.as_ref()).map(|_| ())
    }

    async fn rename<P: AsRef<Path> + Send + fmt::Debug>(&self, _user: &DropUser, _from: P, _to: P) -> unftp_core::storage::Result<()> {
        Err(denied("renaming is not supported; upload the file under its final name"))
    }

    async fn rmd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &DropUser, path: P) -> unftp_core::storage::Result<()> {
        self.holds(user).await?;
        self.key(user, path.as_ref()).map(|_| ())
    }

    async fn cwd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &DropUser, path: P) -> unftp_core::storage::Result<()> {
        self.holds(user).await?;
        self.key(user, path.as_ref()).map(|_| ())
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, made once per state directory.
pub fn certificate(dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509NameBuilder, X509};
    let (cert_path, key_path) = (dir.join("ftps-cert.pem"), dir.join("ftps-key.pem"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "VaultStream local drop zone")?;
    let name = name.build();
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&key)?;
    cert.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    cert.set_not_after(&*Asn1Time::days_from_now(825)?)?;
    let serial = openssl::bn::BigNum::from_u32(1)?.to_asn1_integer()?;
    cert.set_serial_number(&serial)?;
    let san = SubjectAlternativeName::new().ip("127.0.0.1").dns("localhost").build(&cert.x509v3_context(None, None))?;
    cert.append_extension(san)?;
    cert.sign(&key, MessageDigest::sha256())?;
    let cert = cert.build();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8()?).with_context(|| format!("writing {}", key_path.display()))?;
    std::fs::write(&cert_path, cert.to_pem()?).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok((cert_path, key_path))
}

/// Serves the drop zone on 127.0.0.1:`port` until `shutdown` turns true.
pub fn serve(
    storage: impl Fn() -> DropStorage + Send + Sync + 'static,
    login: TokenLogin,
    (cert, key): (std::path::PathBuf, std::path::PathBuf),
    port: u16,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let tenants = Tenants(Arc::clone(&login.logins));
    let server = libunftp::ServerBuilder::with_user_detail_provider(Box::new(storage), Arc::new(tenants))
        .authenticator(Arc::new(login))
        .ftps(cert, key)
        .ftps_required(libunftp::options::FtpsRequired::All, libunftp::options::FtpsRequired::All)
        .greeting("VaultStream drop zone: log in with your tenant id and a content:write token")
        .passive_ports(49152..=65534)
        .idle_session_timeout(600)
        .shutdown_indicator(async move {
            let _ = shutdown.changed().await;
            libunftp::options::Shutdown::new().grace_period(std::time::Duration::from_secs(2))
        })
        .build()
        .map_err(|e| anyhow::anyhow!("the drop zone server: {e}"))?;
    Ok(tokio::spawn(async move {
        if let Err(e) = server.listen(format!("127.0.0.1:{port}")).await {
            tracing::error!(error = %e, "the drop zone server stopped");
        }
    }))
}
