//! `ftp_auth`: AWS Transfer Family's custom identity provider for the drop zones. Transfer sends
//! `{"username","password","protocol","serverId","sourceIp"}`; a login with a write token of the
//! tenant named gets the drop-zone role, `/` mapped to `drop/{tenant}/` and a session policy
//! for that folder alone; anything else gets `{}`, which Transfer takes as a refusal.

use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;
use vaultstream::access::RequestMeta;
use vaultstream::audit::AuditSink;
use vaultstream::identity::Authenticator;
use vaultstream::ingest::drop_zone;

use crate::env::{ConfigError, Env};
use crate::wiring::{self, Aws};

/// What Transfer sends (its field names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferLogin {
    pub username: String,
    /// Absent for an SSH key login, which drop zones do not take.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub server_id: String,
    #[serde(default)]
    pub source_ip: Option<String>,
}

pub struct FtpAuth {
    pub authenticator: Authenticator,
    pub audit: std::sync::Arc<dyn AuditSink>,
    pub bucket: String,
    pub role_arn: String,
}

impl FtpAuth {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(FtpAuth {
            authenticator: wiring::authenticator(env, aws)?,
            audit: wiring::audit(env, aws)?,
            bucket: wiring::name(env, "VAULTSTREAM_SOURCE_BUCKET")?,
            role_arn: wiring::name(env, "VAULTSTREAM_DROP_ROLE_ARN")?,
        })
    }

    /// Transfer's answer: the session's settings, or `{}`.
    pub async fn handle(&self, login: TransferLogin, request_id: &str) -> Value {
        let span = tracing::info_span!("ftp_auth", request_id = %request_id, tenant = tracing::field::Empty, server_id = %login.server_id);
        async {
            if !matches!(login.protocol.as_str(), "SFTP" | "FTPS") {
                tracing::warn!(protocol = %login.protocol, "refused: drop zones take SFTP and FTPS only");
                return json!({});
            }
            let Some(password) = login.password.as_deref().filter(|p| !p.is_empty()) else {
                tracing::info!("refused: no password (drop zones log in with a token, not an SSH key)");
                return json!({});
            };
            let now = vaultstream::clock::now_seconds();
            let meta = RequestMeta { request_id: request_id.to_string(), source_ip: login.source_ip.clone(), now };
            match drop_zone::login(&self.authenticator, self.audit.as_ref(), &login.username, password, &meta).await {
                Ok(user) => {
                    tracing::Span::current().record("tenant", user.tenant.as_str());
                    tracing::info!("drop zone login");
                    drop_zone::transfer_identity(&user, &self.bucket, &self.role_arn)
                }
                Err(e) => {
                    tracing::info!(reason = %e, "drop zone login refused");
                    json!({})
                }
            }
        }
        .instrument(span)
        .await
    }
}
