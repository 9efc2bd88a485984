//! `GET /v1/keys/{content_id}/{key_id}?token=…`: 16 key bytes (or 24 wrapped bytes), and
//! `POST /v1/licenses/{content_id}/clearkey?token=…`: a ClearKey licence for the CMAF key;
//! `Cache-Control: no-store`. The request must also prove the token's session: an
//! `Authorization` header, or the `VaultStream-Session` cookie playback set.

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;
use vaultstream::access::key_delivery::{KeyDeliveryService, PresentedSession, SessionProof};
use vaultstream::access::AccessError;
use vaultstream::identity::Authenticator;
use vaultstream::session_token::SESSION_COOKIE;

use crate::env::{ConfigError, Env};
use crate::http::{access_error, cookie, finish, header, meta, path_after, private, query};
use crate::runtime::HttpFunction;
use crate::wiring::{self, Aws};

pub struct KeyDelivery {
    pub service: KeyDeliveryService,
    pub authenticator: Authenticator,
}

#[async_trait::async_trait]
impl HttpFunction for KeyDelivery {
    const NAME: &'static str = "key_delivery";

    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let secret = wiring::service_secret(env, aws).await?;
        let vault = Arc::new(vaultstream::aws::KmsKeyVault::new(aws.kms().clone(), None));
        let service = KeyDeliveryService {
            tokens: wiring::token_signer(&secret),
            revocations: wiring::sessions(env, aws)?,
            catalog: wiring::catalog(env, aws)?,
            vault,
            audit: wiring::audit(env, aws)?,
            secret,
        };
        Ok(KeyDelivery { service, authenticator: wiring::authenticator(env, aws)? })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        if let Some(parts) = path_after(&request, "/v1/licenses/") {
            return self.license(&request, parts.as_slice()).await;
        }
        let meta = meta(&request);
        let parts = path_after(&request, "/v1/keys/").unwrap_or_default();
        let ids = match parts.as_slice() {
            [content, key] => Some((content.to_string(), key.to_string())),
            _ => None,
        };
        let span = tracing::info_span!("key_delivery", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = ids.as_ref().map(|i| i.0.as_str()).unwrap_or("-"));
        async {
            let Some((content_id, key_id)) = ids else {
                return access_error(&AccessError::NotFound("key".into()));
            };
            let cookie = cookie(&request, SESSION_COOKIE);
            let proof = match self.proof(&request, cookie.as_deref(), meta.now).await {
                Ok(proof) => proof,
                Err(e) => return access_error(&e),
            };
            let token = query(&request, "token");
            match self.service.deliver(&content_id, &key_id, token.as_deref(), &proof, &meta).await {
                Ok(bytes) => {
                    tracing::info!(status = 200, key_id = %key_id, "key delivered");
                    finish(private(200, "application/octet-stream"), Body::Binary(bytes.as_bytes().to_vec()))
                }
                Err(e) => access_error(&e),
            }
        }
        .instrument(span)
        .await
    }
}

impl KeyDelivery {
    async fn proof<'a>(&self, request: &Request, cookie: Option<&'a str>, now: u64) -> Result<SessionProof<'a>, AccessError> {
        match header(request, "authorization") {
            Some(value) => match self.authenticator.authenticate(Some(value), now).await {
                Ok(p) => Ok(SessionProof::Bearer(PresentedSession { tenant: p.tenant, session: p.session })),
                Err(e) => Err(AccessError::from(e)),
            },
            None => Ok(cookie.map_or(SessionProof::Missing, SessionProof::Cookie)),
        }
    }

    /// `POST /v1/licenses/{content_id}/clearkey?token=…`: a W3C ClearKey licence (JSON Web Key
    /// set) for the CMAF key, on the same proof of session as a key.
    async fn license(&self, request: &Request, parts: &[&str]) -> Response<Body> {
        let meta = meta(request);
        let content_id = match parts {
            [content, "clearkey"] => Some(content.to_string()),
            _ => None,
        };
        let span = tracing::info_span!("license", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = content_id.as_deref().unwrap_or("-"));
        async {
            let Some(content_id) = content_id else {
                return access_error(&AccessError::NotFound("licence server (POST /v1/licenses/{content_id}/clearkey)".into()));
            };
            let cookie = cookie(request, SESSION_COOKIE);
            let proof = match self.proof(request, cookie.as_deref(), meta.now).await {
                Ok(proof) => proof,
                Err(e) => return access_error(&e),
            };
            let token = query(request, "token");
            match self.service.license(&content_id, token.as_deref(), &proof, request.body().as_ref(), &meta).await {
                Ok(license) => {
                    tracing::info!(status = 200, "licence issued");
                    let body = serde_json::to_string(&license).unwrap_or_default();
                    finish(private(200, "application/json"), Body::Text(body))
                }
                Err(e) => access_error(&e),
            }
        }
        .instrument(span)
        .await
    }
}
