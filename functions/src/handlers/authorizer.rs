//! API Gateway HTTP API Lambda authorizer (payload 2.0, simple responses). Passes tenant,
//! subject, session and scopes to the routes behind it as `requestContext.authorizer.lambda`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request};
use serde_json::Value;
use tracing::Instrument;
use vaultstream::access::{authorize::authorize, AccessError, RequestMeta};
use vaultstream::audit::AuditSink;
use vaultstream::identity::Authenticator;

use crate::env::{ConfigError, Env};
use crate::http::now;
use crate::wiring::{self, Aws};

pub struct Authorizer {
    pub authenticator: Authenticator,
    pub audit: Arc<dyn AuditSink>,
}

/// Raised to the runtime so API Gateway answers 500 rather than a false 403 when credentials
/// cannot be checked (identity provider or token table unreachable).
#[derive(Debug, thiserror::Error)]
#[error("authorization unavailable: {0}")]
pub struct Unavailable(String);

impl Authorizer {
    pub async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(Authorizer { authenticator: wiring::authenticator(env, aws)?, audit: wiring::audit(env, aws)? })
    }

    pub async fn handle(
        &self,
        event: ApiGatewayV2CustomAuthorizerV2Request,
    ) -> Result<ApiGatewayV2CustomAuthorizerSimpleResponse<HashMap<String, Value>>, Unavailable> {
        let ctx = &event.request_context;
        let meta =
            RequestMeta { request_id: ctx.request_id.clone().unwrap_or_default(), source_ip: ctx.http.source_ip.clone(), now: now() };
        let route = event.route_key.clone().unwrap_or_else(|| "-".into());
        let authorization = event.headers.get("authorization").and_then(|v| v.to_str().ok());
        let span = tracing::info_span!("authorizer", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = tracing::field::Empty);
        let outcome = authorize(&self.authenticator, self.audit.as_ref(), authorization, &route, &meta).instrument(span.clone()).await;
        let _entered = span.enter();
        let mut response = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
        match outcome {
            Ok(principal) => {
                tracing::info!(decision = "allow", "session authorized");
                response.is_authorized = true;
                response.context = principal.to_context();
            }
            Err(AccessError::Unavailable(detail)) => {
                tracing::error!(%detail, "cannot authorize");
                return Err(Unavailable(detail));
            }
            Err(err) => {
                tracing::info!(decision = "deny", reason = %err, "session refused");
                response.is_authorized = false;
            }
        }
        Ok(response)
    }
}
