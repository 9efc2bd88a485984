//! `POST /v1/content/{content_id}/playback`: signed cookies and a manifest URL.

use lambda_http::http::header::SET_COOKIE;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use tracing::Instrument;
use vaultstream::access::playback::PlaybackService;
use vaultstream::access::AccessError;
use vaultstream::session_token::Delivery;

use crate::env::{ConfigError, Env};
use crate::http::{access_error, finish, json_body, meta, path_after, principal, private, rfc3339};
use crate::runtime::HttpFunction;
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
    const NAME: &'static str = "playback";

    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        // Both call AWS at cold start (Secrets Manager, KMS's public key): at once.
        let (secret, signer) = tokio::try_join!(wiring::service_secret(env, aws), wiring::policy_signer(env, aws))?;
        let service = PlaybackService {
            catalog: wiring::catalog(env, aws)?,
            revocations: wiring::sessions(env, aws)?,
            audit: wiring::audit(env, aws)?,
            signer,
            hosts: wiring::tenant_hosts(env, &secret)?,
            tokens: wiring::token_signer(&secret),
            secret,
            api_base_url: wiring::api_base_url(env)?,
            ttl_seconds: env.number("VAULTSTREAM_PLAYBACK_TTL_SECONDS", 1800u64)?,
            licenses: wiring::license_servers(env)?,
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
            let Some(principal) = principal(&request) else {
                return access_error(&AccessError::Unauthenticated("no verified session reached this route".into()));
            };
            tracing::Span::current().record("tenant", principal.tenant.as_str());
            let body: PlaybackRequest = match json_body(&request) {
                Ok(body) => body.unwrap_or_default(),
                Err(e) => return access_error(&e),
            };
            match self.service.start(&principal, &content_id, body.delivery, &meta).await {
                Ok(grant) => {
                    let mut json = serde_json::json!({
                        "manifest_url": grant.manifest_url,
                        "expires_at": rfc3339(grant.expires_at),
                        "cookies": grant.cookies.to_json(),
                    });
                    if let Some(cmaf) = &grant.cmaf {
                        json["cmaf_manifest_url"] = cmaf.hls_url.clone().into();
                        json["dash_url"] = cmaf.dash_url.clone().into();
                        let mut systems = serde_json::Map::new();
                        for (system, url) in &cmaf.systems {
                            let mut entry = serde_json::json!({"license_url": url});
                            if *system == vaultstream::drm::DrmSystem::FairPlay {
                                entry["certificate_url"] = cmaf.fairplay_certificate_url.clone().into();
                            }
                            systems.insert(system.name().to_string(), entry);
                        }
                        json["drm"] = serde_json::json!({
                            "scheme": "cbcs",
                            "kid": cmaf.kid,
                            "clearkey": cmaf.clearkey_license_url.as_ref().map(|url| serde_json::json!({"license_url": url})),
                            "systems": systems,
                        });
                    }
                    if let Some(key) = &grant.session_key {
                        json["session_key"] = serde_json::Value::from(key.as_str());
                    }
                    let mut response = private(200, "application/json");
                    for cookie in grant.cookies.set_cookie_headers(&grant.cookie_domain, &grant.cookie_path) {
                        response = response.header(SET_COOKIE, cookie);
                    }
                    for cookie in grant.session_cookies() {
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
