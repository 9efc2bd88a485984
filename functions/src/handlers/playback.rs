//! `POST /v1/content/{content_id}/playback`: signed cookies and a manifest URL.

use lambda_http::http::header::SET_COOKIE;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use tracing::Instrument;
use vaultstream::access::playback::PlaybackService;
use vaultstream::access::AccessError;
use vaultstream::principal::Principal;
use vaultstream::session_token::Delivery;

use crate::env::{ConfigError, Env};
use crate::runtime::HttpFunction;
use crate::http::{finish, access_error, meta, path_after, private};
use crate::wiring::{self, Aws};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlaybackRequest {
    #[serde(default)]
    delivery: Delivery,
}

pub struct Playback {
    pub service: PlaybackService,
}

#[async_trait::async_trait]
impl HttpFunction for Playback {
    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        let secret = wiring::service_secret(env, aws).await?;
        let service = PlaybackService {
            catalog: wiring::catalog(env, aws)?,
            audit: wiring::audit(env, aws)?,
            signer: wiring::policy_signer(env, aws).await?,
            hosts: wiring::tenant_hosts(env, &secret)?,
            tokens: wiring::token_signer(&secret),
            secret,
            api_base_url: wiring::api_base_url(env)?,
            ttl_seconds: env.number("VAULTSTREAM_PLAYBACK_TTL_SECONDS", 1800u64)?,
        };
        Ok(Playback { service })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        let meta = meta(&request);
        let content_id = path_after(&request, "/v1/content/").and_then(|parts| match parts.as_slice() {
            [id, "playback"] => Some(id.to_string()),
            _ => None,
        });
        let span = tracing::info_span!("playback", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = content_id.as_deref().unwrap_or("-"));
        async {
            let Some(content_id) = content_id else {
                return access_error(&AccessError::NotFound("route".into()));
            };
            // Only API Gateway writes the authorizer context: it is the verified principal.
            let principal = match &request.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| Principal::from_context(&a.fields).ok()),
                _ => None,
            };
            let Some(principal) = principal else {
                return access_error(&AccessError::Unauthenticated("no verified session reached this route".into()));
            };
            tracing::Span::current().record("tenant", principal.tenant.as_str());
            let body: PlaybackRequest = match request.body() {
                Body::Empty => PlaybackRequest::default(),
                Body::Text(t) if t.trim().is_empty() => PlaybackRequest::default(),
                Body::Text(t) => match serde_json::from_str(t) {
                    Ok(b) => b,
                    Err(e) => return access_error(&AccessError::BadRequest(format!("the request body is not valid: {e}"))),
                },
                Body::Binary(b) => match serde_json::from_slice(b) {
                    Ok(b) => b,
                    Err(e) => return access_error(&AccessError::BadRequest(format!("the request body is not valid: {e}"))),
                },
                _ => PlaybackRequest::default(),
            };
            match self.service.start(&principal, &content_id, body.delivery, &meta).await {
                Ok(grant) => {
                    let expires_at = time::OffsetDateTime::from_unix_timestamp(grant.expires_at as i64).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default();
                    let mut json = serde_json::json!({
                        "manifest_url": grant.manifest_url,
                        "expires_at": expires_at,
                        "cookies": grant.cookies.to_json(),
                    });
                    if let Some(key) = &grant.session_key {
                        json["session_key"] = serde_json::Value::from(key.as_str());
                    }
                    let mut response = private(200, "application/json");
                    for cookie in grant.cookies.set_cookie_headers(&grant.cookie_domain, &grant.cookie_path) {
                        response = response.header(SET_COOKIE, cookie);
                    }
                    tracing::info!(status = 200, "playback granted");
                    finish(response, Body::Text(json.to_string()))
                }
                Err(e) => access_error(&e),
            }
        }
        .instrument(span)
        .await
    }
}
