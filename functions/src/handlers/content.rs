//! `GET /v1/content/{content_id}` (status, progress, renditions, failure) and
//! `GET /v1/content?limit=&cursor=` (the caller's tenant's titles, newest first).

use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;
use vaultstream::access::AccessError;
use vaultstream::ingest::status::ContentQueries;

use crate::env::{ConfigError, Env};
use crate::http::{access_error, json_response, meta, principal, query};
use crate::runtime::HttpFunction;
use crate::wiring::{self, Aws};

pub struct Content {
    pub queries: ContentQueries,
}

#[async_trait::async_trait]
impl HttpFunction for Content {
    const NAME: &'static str = "content";

    async fn from_env(env: &Env, aws: &Aws) -> Result<Self, ConfigError> {
        Ok(Content { queries: ContentQueries { catalog: wiring::catalog(env, aws)?, audit: wiring::audit(env, aws)? } })
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        let meta = meta(&request);
        let path = request.raw_http_path().trim_end_matches('/').to_string();
        let content_id = path.strip_prefix("/v1/content/").filter(|id| !id.contains('/')).map(str::to_string);
        let span = tracing::info_span!("content", request_id = %meta.request_id, tenant = tracing::field::Empty, content_id = content_id.as_deref().unwrap_or("-"));
        async {
            let Some(principal) = principal(&request) else {
                return access_error(&AccessError::Unauthenticated("no verified session reached this route".into()));
            };
            tracing::Span::current().record("tenant", principal.tenant.as_str());
            let result = match (path.as_str(), &content_id) {
                ("/v1/content", _) => {
                    let (limit, cursor) = (query(&request, "limit"), query(&request, "cursor"));
                    self.queries.list(&principal, limit.as_deref(), cursor.as_deref(), &meta).await.map(serde_json::to_value)
                }
                (_, Some(id)) => self.queries.get(&principal, id, &meta).await.map(serde_json::to_value),
                _ => Err(AccessError::NotFound("route".into())),
            };
            match result {
                Ok(Ok(body)) => {
                    tracing::info!(status = 200, "content read");
                    json_response(200, &body)
                }
                Ok(Err(e)) => access_error(&AccessError::Internal(e.to_string())),
                Err(e) => access_error(&e),
            }
        }
        .instrument(span)
        .await
    }
}
